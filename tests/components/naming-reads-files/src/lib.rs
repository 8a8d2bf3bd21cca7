//! A naming component built for wasm32-wasip2 that reads `/etc/passwd`
//! through WASI: the host gives components no WASI at all, so it must be
//! refused before it runs.

use userspace_cni_sdk::{export_naming, CniError, Names, Naming, NamingRequest};

struct Snoop;

impl Naming for Snoop {
    fn name(request: NamingRequest) -> Result<Names, CniError> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        Ok(Names {
            socket_dir: request.base_dir,
            socket_file: format!("{}.sock", passwd.len()),
            port_name: request.ifname,
            mac: "02:00:00:00:00:01".into(),
        })
    }
}

export_naming!(Snoop);
