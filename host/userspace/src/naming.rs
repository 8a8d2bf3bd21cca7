//! Where the sockets and files of an attachment go and what things are
//! called: asked of the naming component (the built-in one keeps the Go
//! Userspace CNI's names), then checked here, because the host creates
//! those files as root.

use cni_protocol::{codes, CniError, Environment};
use netconf::{Engine, IfType, NetConf};
use wasm_runtime::{NamingComponent, NamingRequest};

use crate::names::{cid12, Names};
use crate::wit_host::{component_error, from_wit, limits, pod_of};

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// Longest port / interface name accepted from a naming component.
const MAX_PORT_NAME: usize = 64;

/// The directory the socket dirs of this network live in.
fn base_dir(conf: &NetConf) -> String {
    match (&conf.shared_dir, &conf.host.engine) {
        (Some(dir), _) => dir.trim_end_matches('/').to_string(),
        (None, Engine::Vpp) => "/var/run/vpp".into(),
        (None, _) => "/usr/local/var/run/openvswitch".into(),
    }
}

/// The names of this attachment. `volume_dir`: the host dir of the pod's
/// socket volume, which is the shared dir itself (the container mounts it).
pub(crate) fn names(
    conf: &NetConf,
    env: &Environment,
    naming: &NamingComponent<'_>,
    volume_dir: Option<&str>,
) -> Result<Names, CniError> {
    let base_dir = volume_dir.map_or_else(|| base_dir(conf), str::to_string);
    let request = NamingRequest {
        network: conf.name.clone(),
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
        iftype: conf.host.iftype.as_str().into(),
        engine: conf.host.engine.as_str().into(),
        base_dir: base_dir.clone(),
        socket_file: match conf.host.iftype {
            IfType::Memif => conf.host.memif.socketfile.clone(),
            IfType::VhostUser => conf.host.vhost.socketfile.clone(),
        },
        mac: conf.container.mac.clone(),
        pod: pod_of(env),
    };
    let named = naming
        .names(limits(conf), &request)
        .map_err(component_error)?
        .map_err(from_wit)?;
    let refuse = |what: String| {
        CniError::new(
            codes::COMPONENT_FAILURE,
            format!("naming component {}: {what}", naming.name()),
            "",
        )
    };
    let socket_dir = named.socket_dir.trim_end_matches('/').to_string();
    if !is_dir_within(&socket_dir, &base_dir) {
        return Err(refuse(format!(
            "socket dir {socket_dir:?} is not {base_dir} or a directory below it named with letters, digits, '_', '.', '-'"
        )));
    }
    for (what, name, max) in [
        ("socket file", &named.socket_file, 128),
        ("port name", &named.port_name, MAX_PORT_NAME),
    ] {
        if !netconf::is_safe_name(name) || name.len() > max {
            return Err(refuse(format!(
                "{what} {name:?} is not a name of at most {max} letters, digits, '_', '.', '-'"
            )));
        }
    }
    if !netconf::is_unicast_mac(&named.mac) {
        return Err(refuse(format!(
            "MAC {:?} is not a unicast MAC address",
            named.mac
        )));
    }
    let socket_dir = match volume_dir {
        Some(volume) => volume.to_string(),
        None => socket_dir,
    };
    let mut socket_path = format!("{socket_dir}/{}", named.socket_file);
    let mut socket_mount = None;
    if socket_path.len() > MAX_SOCKET_PATH && volume_dir.is_some() {
        let short = format!(
            "{}/{}-{}",
            conf.kubernetes.socket_mount_dir,
            cid12(&env.container_id),
            env.ifname
        );
        socket_path = format!("{short}/{}", named.socket_file);
        socket_mount = Some(short);
    }
    if socket_path.len() > MAX_SOCKET_PATH {
        return Err(CniError::invalid_config(format!(
            "socket path {socket_path:?} is {} bytes, more than the {MAX_SOCKET_PATH} a unix socket allows; \
             use a shorter sharedDir or socketfile",
            socket_path.len()
        )));
    }
    Ok(Names {
        data_path: format!(
            "{socket_dir}/configData-{}-{}.json",
            cid12(&env.container_id),
            env.ifname
        ),
        shared_dir: socket_dir,
        base_dir,
        socket_path,
        socket_file: named.socket_file,
        port_name: named.port_name,
        mac: named.mac.to_ascii_lowercase(),
        socket_mount,
        in_pod_volume: volume_dir.is_some(),
    })
}

/// `dir` is `base` or below it, each added part a plain name (no `.`,
/// `..`, empty parts or odd characters).
fn is_dir_within(dir: &str, base: &str) -> bool {
    if dir == base {
        return true;
    }
    match dir
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(rest) => rest
            .split('/')
            .all(|part| netconf::is_safe_name(part) && part != "." && part != ".."),
        None => false,
    }
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
    fn socket_dirs_stay_below_the_base() {
        let base = "/run/uscni";
        assert!(is_dir_within("/run/uscni", base));
        assert!(is_dir_within("/run/uscni/abc/def", base));
        for bad in [
            "/run/uscni/..",
            "/run/uscni/../etc",
            "/run/uscni//x",
            "/run/uscnix",
            "/etc",
            "/run/uscni/a b",
            "/run/uscni/.hidden",
        ] {
            assert!(!is_dir_within(bad, base), "{bad}");
        }
    }
}
