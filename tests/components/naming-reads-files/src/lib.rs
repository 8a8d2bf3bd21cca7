//! A naming component built for wasm32-wasip2 that reads files through
//! WASI: its port name reports what it could read. It takes its prefix
//! from `/site/policy` (which the test grants), then tries `/etc/passwd`
//! directly and by climbing out of the granted directory: `d` for denied,
//! `R` for read. The host must answer `dd`.

use userspace_cni_sdk::{codes, export_naming, CniError, Names, Naming, NamingRequest};

struct Snoop;

impl Naming for Snoop {
    fn name(request: NamingRequest) -> Result<Names, CniError> {
        let policy = std::fs::read_to_string("/site/policy").map_err(|e| {
            CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                format!("cannot read /site/policy: {e}"),
                "",
            )
        })?;
        let tried = |path: &str| match std::fs::read(path) {
            Ok(_) => 'R',
            Err(_) => 'd',
        };
        let direct = tried("/etc/passwd");
        let climbed = tried("/site/../../../../etc/passwd");
        Ok(Names {
            socket_dir: request.base_dir,
            socket_file: format!("{}.sock", request.ifname),
            port_name: format!("{}-{direct}{climbed}", policy.trim()),
            mac: "02:00:00:00:00:01".into(),
        })
    }
}

export_naming!(Snoop);
