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
    checked(conf, env, naming.name(), named, base_dir, volume_dir)
}

/// What a naming component answered, checked (the host creates these
/// files as root) and completed: the shared dir is the pod's volume when
/// there is one, and a socket path too long for a unix socket goes
/// through a short bind-mounted dir.
fn checked(
    conf: &NetConf,
    env: &Environment,
    component: &str,
    named: wasm_runtime::Names,
    base_dir: String,
    volume_dir: Option<&str>,
) -> Result<Names, CniError> {
    let refuse = |what: String| {
        CniError::new(
            codes::COMPONENT_FAILURE,
            format!("naming component {component}: {what}"),
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

    fn conf() -> NetConf {
        NetConf::parse(
            br#"{"cniVersion": "1.0.0", "name": "n", "type": "userspace",
                 "host": {"engine": "ovs-dpdk", "iftype": "vhostuser"},
                 "container": {"engine": "ovs-dpdk", "iftype": "vhostuser"}}"#,
        )
        .unwrap()
    }

    fn env() -> Environment {
        Environment::from_vars(|k| {
            Some(
                match k {
                    "CNI_COMMAND" => "ADD",
                    "CNI_CONTAINERID" => "0123456789abcdef",
                    "CNI_NETNS" => "/var/run/netns/x",
                    "CNI_IFNAME" => "net1",
                    "CNI_PATH" => "/usr/lib/cni",
                    _ => return None,
                }
                .to_string(),
            )
        })
        .unwrap()
    }

    fn named(socket_dir: &str, socket_file: &str, port: &str, mac: &str) -> wasm_runtime::Names {
        wasm_runtime::Names {
            socket_dir: socket_dir.into(),
            socket_file: socket_file.into(),
            port_name: port.into(),
            mac: mac.into(),
        }
    }

    /// As `names` calls it: a pod's volume is the base.
    fn check(n: wasm_runtime::Names, volume: Option<&str>) -> Result<Names, CniError> {
        let base = volume.unwrap_or("/run/base").to_string();
        checked(&conf(), &env(), "test", n, base, volume)
    }

    #[test]
    fn a_naming_answer_inside_the_base_is_taken_and_completed() {
        let n = check(
            named(
                "/run/base/0123456789ab",
                "s.sock",
                "p1",
                "02:AA:00:00:00:01",
            ),
            None,
        )
        .unwrap();
        assert_eq!(n.shared_dir, "/run/base/0123456789ab");
        assert_eq!(n.socket_path, "/run/base/0123456789ab/s.sock");
        assert_eq!(
            n.data_path,
            "/run/base/0123456789ab/configData-0123456789ab-net1.json"
        );
        assert_eq!(n.mac, "02:aa:00:00:00:01", "lower-cased");
        assert_eq!(n.socket_mount, None);
        assert!(!n.in_pod_volume);
    }

    #[test]
    fn what_a_naming_component_may_not_name_is_refused() {
        for (bad, what) in [
            (
                named("/etc", "s.sock", "p1", "02:00:00:00:00:01"),
                "socket dir",
            ),
            (
                named("/run/base/../etc", "s.sock", "p1", "02:00:00:00:00:01"),
                "socket dir",
            ),
            (
                named("/run/base", "../s.sock", "p1", "02:00:00:00:00:01"),
                "socket file",
            ),
            (
                named("/run/base", "s.sock", "p 1", "02:00:00:00:00:01"),
                "port name",
            ),
            (
                named("/run/base", "s.sock", &"p".repeat(65), "02:00:00:00:00:01"),
                "port name",
            ),
            (
                named("/run/base", "s.sock", "p1", "01:00:00:00:00:01"),
                "MAC",
            ),
        ] {
            let err = check(bad, None).unwrap_err();
            assert_eq!(err.code, codes::COMPONENT_FAILURE, "{}", err.msg);
            assert!(err.msg.contains(what), "{what}: {}", err.msg);
        }
    }

    /// A pod volume deep in kubelet's tree: the socket goes through a
    /// short bind-mounted dir; without a volume, a path too long for a
    /// unix socket is a config error.
    #[test]
    fn a_socket_path_too_long_for_a_unix_socket() {
        let volume = format!("/var/lib/kubelet/pods/{}/volumes/shared", "u".repeat(80));
        let n = check(
            named(&volume, "s.sock", "p1", "02:00:00:00:00:01"),
            Some(&volume),
        );
        let n = n.unwrap();
        assert!(n.in_pod_volume);
        assert_eq!(n.shared_dir, volume);
        let mount = n.socket_mount.unwrap();
        assert!(mount.ends_with("/0123456789ab-net1"), "{mount}");
        assert_eq!(n.socket_path, format!("{mount}/s.sock"));

        let long = format!("/run/base/{}", "d".repeat(100));
        let err = check(named(&long, "s.sock", "p1", "02:00:00:00:00:01"), None).unwrap_err();
        assert_eq!(err.code, codes::INVALID_NETWORK_CONFIG);
        assert!(err.msg.contains("unix socket"), "{}", err.msg);
    }

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
