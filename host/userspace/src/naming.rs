//! Where the sockets and files of an attachment go, and what things are
//! called, with the Go Userspace CNI's defaults.

use cni_protocol::CniError;
use netconf::{Engine, IfType, NetConf};
use sha2::{Digest, Sha256};

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The per-container directory holding sockets and container data.
    pub shared_dir: String,
    pub socket_path: String,
    /// The socket's file name in the shared dir.
    pub socket_file: String,
    /// The vSwitch port / interface name.
    pub port_name: String,
    /// MAC address of the container interface.
    pub mac: String,
    /// `configData-<cid12>-<ifname>.json` in the shared dir.
    pub data_path: String,
}

/// The first 12 characters of the container ID (or all of a shorter one).
pub(crate) fn cid12(container_id: &str) -> &str {
    &container_id[..container_id.len().min(12)]
}

pub(crate) fn names(conf: &NetConf, container_id: &str, ifname: &str) -> Result<Names, CniError> {
    let short = cid12(container_id);
    let shared_dir = match (&conf.shared_dir, &conf.host.engine) {
        (Some(dir), _) => format!("{}/{short}", dir.trim_end_matches('/')),
        (None, Engine::Vpp) => format!("/var/run/vpp/{short}"),
        (None, _) => format!("/usr/local/var/run/openvswitch/{short}"),
    };
    let socket_file = match conf.host.iftype {
        IfType::Memif => conf
            .host
            .memif
            .socketfile
            .clone()
            .unwrap_or_else(|| format!("memif-{short}-{ifname}.sock")),
        IfType::VhostUser => conf
            .host
            .vhost
            .socketfile
            .clone()
            .unwrap_or_else(|| format!("{short}-{ifname}")),
    };
    let socket_path = format!("{shared_dir}/{socket_file}");
    if socket_path.len() > MAX_SOCKET_PATH {
        return Err(CniError::invalid_config(format!(
            "socket path {socket_path:?} is {} bytes, more than the {MAX_SOCKET_PATH} a unix socket allows; \
             use a shorter sharedDir or socketfile",
            socket_path.len()
        )));
    }
    let port_name = socket_file
        .strip_suffix(".sock")
        .unwrap_or(&socket_file)
        .to_string();
    let mac = conf
        .container
        .mac
        .clone()
        .unwrap_or_else(|| derived_mac(&conf.name, container_id, ifname));
    Ok(Names {
        data_path: format!("{shared_dir}/configData-{short}-{ifname}.json"),
        shared_dir,
        socket_path,
        socket_file,
        port_name,
        mac,
    })
}

/// A stable, locally administered unicast MAC for the attachment, so a
/// retried ADD gives the container the same address.
fn derived_mac(network: &str, container_id: &str, ifname: &str) -> String {
    let digest = Sha256::digest(format!("{network}/{container_id}/{ifname}"));
    let first = (digest[0] & 0xfc) | 0x02;
    format!(
        "{first:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        digest[1], digest[2], digest[3], digest[4], digest[5]
    )
}

/// 64 random bits from the kernel.
pub(crate) fn nonce() -> u64 {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_container_ids_do_not_panic() {
        assert_eq!(cid12("abc"), "abc");
        assert_eq!(cid12("0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn derived_mac_is_unicast_local_and_stable() {
        let a = derived_mac("n", "c", "net1");
        assert_eq!(a, derived_mac("n", "c", "net1"));
        assert_ne!(a, derived_mac("n", "c", "net10"));
        let first = u8::from_str_radix(&a[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02);
    }
}
