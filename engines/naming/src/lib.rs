//! The built-in naming policy: the Go Userspace CNI's names, so existing
//! container apps and scripts find their sockets where they always did.
//!
//! - socket dir: `<base>/<cid12>` (cid12: the container ID's first 12
//!   characters)
//! - memif socket: `memif-<cid12>-<ifname>.sock`; vhost-user socket:
//!   `<cid12>-<ifname>`; a `socketfile` in the config wins
//! - port name: the socket file name without `.sock`
//! - MAC: the configured one, else a locally administered unicast address
//!   derived from (network, container ID, ifname), stable across retries

use sha2::{Digest, Sha256};
use userspace_cni_sdk::{export_naming, CniError, Names, Naming, NamingRequest};

struct GoCompatible;

impl Naming for GoCompatible {
    fn name(request: NamingRequest) -> Result<Names, CniError> {
        let cid12 = cid12(&request.container_id);
        let ifname = &request.ifname;
        let socket_file =
            request
                .socket_file
                .clone()
                .unwrap_or_else(|| match request.iftype.as_str() {
                    "memif" => format!("memif-{cid12}-{ifname}.sock"),
                    _ => format!("{cid12}-{ifname}"),
                });
        let port_name = socket_file
            .strip_suffix(".sock")
            .unwrap_or(&socket_file)
            .to_string();
        let mac = request
            .mac
            .clone()
            .unwrap_or_else(|| derived_mac(&request.network, &request.container_id, ifname));
        Ok(Names {
            socket_dir: format!("{}/{cid12}", request.base_dir.trim_end_matches('/')),
            socket_file,
            port_name,
            mac,
        })
    }
}

/// The first 12 characters of the container ID (or all of a shorter one).
fn cid12(container_id: &str) -> &str {
    let end = container_id
        .char_indices()
        .nth(12)
        .map_or(container_id.len(), |(i, _)| i);
    &container_id[..end]
}

/// A stable, locally administered unicast MAC, so a retried ADD gives the
/// container the same address.
fn derived_mac(network: &str, container_id: &str, ifname: &str) -> String {
    let digest = Sha256::digest(format!("{network}/{container_id}/{ifname}"));
    let first = (digest[0] & 0xfc) | 0x02;
    format!(
        "{first:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        digest[1], digest[2], digest[3], digest[4], digest[5]
    )
}

export_naming!(GoCompatible);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_container_ids_are_whole() {
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
