//! A site's naming policy, as an operator would drop one in: sockets in a
//! per-pod directory (`<base>/<namespace>/<pod>`, or `<base>/tenant-<cid8>`
//! without a pod), `t-<cid8>-<ifname>.sock`, ports `tenant-<cid8>-<ifname>`
//! and MACs `02:7e:` + a hash of the container ID.
//!
//! A network whose name starts with `escape` gets a socket dir outside the
//! base: the host must refuse it.

use userspace_cni_sdk::{export_naming, CniError, Names, Naming, NamingRequest};

struct Tenant;

impl Naming for Tenant {
    fn name(request: NamingRequest) -> Result<Names, CniError> {
        let cid8: String = request.container_id.chars().take(8).collect();
        let base = request.base_dir.trim_end_matches('/');
        let socket_dir = match (&request.pod, request.network.starts_with("escape")) {
            (_, true) => "/etc/uscni-escape".to_string(),
            (Some(pod), false) => format!("{base}/{}/{}", pod.namespace, pod.name),
            (None, false) => format!("{base}/tenant-{cid8}"),
        };
        let hash = fnv1a(request.container_id.as_bytes()).to_be_bytes();
        Ok(Names {
            socket_dir,
            socket_file: format!("t-{cid8}-{}.sock", request.ifname),
            port_name: format!("tenant-{cid8}-{}", request.ifname),
            mac: format!(
                "02:7e:{:02x}:{:02x}:{:02x}:{:02x}",
                hash[0], hash[1], hash[2], hash[3]
            ),
        })
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

export_naming!(Tenant);
