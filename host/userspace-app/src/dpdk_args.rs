//! `dpdk-args`: the DPDK EAL arguments that give an unmodified DPDK app
//! (dpdk-testpmd, VPP, a CNF) the interfaces the plugin published, as
//! `net_memif` and `virtio_user` vdevs with the container's side of each.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::spec::{mac_text, InterfaceSpec, Kind, Role};

/// `sun_path` holds 108 bytes with its terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// DPDK's memif keeps 24 bytes with the NUL.
const MAX_MEMIF_SECRET: usize = 23;

/// The EAL arguments for `specs` (all of them, or the one named `only`),
/// and the same as data. Every value is checked before anything is
/// returned: an error, never a half-formed argument list.
pub fn build(specs: &[InterfaceSpec], only: Option<&str>) -> Result<(Vec<String>, Value)> {
    let chosen = chosen(specs, only)?;
    let first = chosen[0].1;

    // In memory: no runtime dir or hugepage files shared with (or left
    // for) another DPDK process, ovs-vswitchd's own included; the memory
    // is memfd-backed, so vhost-user can still share it. One file per
    // segment list keeps a vhost-user peer within its 8 memory regions.
    let mut args = vec![
        "--in-memory".to_string(),
        format!("--file-prefix={}", file_prefix(&first.container_id)),
    ];
    if chosen.iter().any(|(_, s)| s.kind == Kind::VhostUser) {
        args.push("--single-file-segments".to_string());
    }
    let mut shown = Vec::new();
    for (index, spec) in chosen {
        let vdev = vdev(index, spec)?;
        let (rx, tx) = queues(spec);
        shown.push(json!({
            "rxQueues": rx,
            "txQueues": tx,
            "ifName": spec.if_name,
            "network": spec.network,
            "kind": match spec.kind { Kind::Memif => "memif", Kind::VhostUser => "vhostuser" },
            "role": match spec.role { Role::Client => "client", Role::Server => "server" },
            "socket": spec.socket,
            "mac": mac_text(&spec.mac),
            "address": spec.cidr(),
            "vdev": vdev,
        }));
        args.push(format!("--vdev={vdev}"));
    }
    let data = json!({"args": args, "interfaces": shown});
    Ok((args, data))
}

/// testpmd's queue arguments for the chosen interfaces (`--rxq=N
/// --txq=N`): as many as the vSwitch's port has, as an app must poll
/// every queue the vSwitch transmits on. testpmd takes one count for all
/// its ports.
pub fn testpmd_args(specs: &[InterfaceSpec], only: Option<&str>) -> Result<Vec<String>> {
    let chosen = chosen(specs, only)?;
    let (rx, tx) = queues(chosen[0].1);
    if let Some((_, other)) = chosen.iter().find(|(_, s)| queues(s) != (rx, tx)) {
        bail!(
            "interfaces {} and {} have different queue counts and testpmd takes one for all ports: pick one with --ifname",
            chosen[0].1.if_name,
            other.if_name
        );
    }
    Ok(vec![format!("--rxq={rx}"), format!("--txq={tx}")])
}

/// The interfaces asked for, with their index in the container data.
fn chosen<'a>(
    specs: &'a [InterfaceSpec],
    only: Option<&str>,
) -> Result<Vec<(usize, &'a InterfaceSpec)>> {
    if let Some(name) = only {
        if !specs.iter().any(|s| s.if_name == name) {
            let known: Vec<&str> = specs.iter().map(|s| s.if_name.as_str()).collect();
            bail!(
                "no interface {name:?} in the container data (it has {})",
                known.join(", ")
            );
        }
    }
    let chosen: Vec<(usize, &InterfaceSpec)> = specs
        .iter()
        .enumerate()
        .filter(|(_, s)| only.is_none_or(|name| s.if_name == name))
        .collect();
    if chosen.is_empty() {
        bail!("the container data lists no interface");
    }
    Ok(chosen)
}

/// The (receive, transmit) queues the vSwitch's port has for us: a
/// memif's as published, else one pair (virtio_user's `queues=1`).
fn queues(spec: &InterfaceSpec) -> (u16, u16) {
    spec.queues.unwrap_or((1, 1))
}

/// One interface's vdev string: `net_memif<index>,...` or
/// `virtio_user<index>,...`, with the role the container has.
fn vdev(index: usize, spec: &InterfaceSpec) -> Result<String> {
    let name = &spec.if_name;
    let socket = spec
        .socket
        .to_str()
        .filter(|s| devargs_value(s))
        .with_context(|| {
            format!(
                "interface {name}: socket path {:?} cannot be a DPDK devargs value (only A-Z a-z 0-9 . _ / : @ + -)",
                spec.socket
            )
        })?;
    // DPDK copies it into a sockaddr_un: longer would be cut, silently.
    if socket.len() > MAX_SOCKET_PATH {
        bail!("interface {name}: socket path {socket} is over {MAX_SOCKET_PATH} bytes, too long for a unix socket");
    }
    if spec.role == Role::Client {
        must_be_listening(name, &spec.socket)?;
    } else {
        let dir = spec.socket.parent().unwrap_or(Path::new("/"));
        if !dir.is_dir() {
            bail!(
                "interface {name}: the socket's dir {} does not exist here (is the plugin's shared dir mounted?)",
                dir.display()
            );
        }
    }
    let mac = mac_text(&spec.mac);
    Ok(match spec.kind {
        Kind::Memif => {
            let role = match spec.role {
                Role::Client => "client",
                Role::Server => "server",
            };
            let mut vdev = format!(
                "net_memif{index},role={role},id=0,socket={socket},socket-abstract=no,mac={mac}"
            );
            if !spec.secret.is_empty() {
                if !devargs_value(&spec.secret) || spec.secret.len() > MAX_MEMIF_SECRET {
                    bail!("interface {name}: the memif secret cannot be a DPDK devargs value (at most {MAX_MEMIF_SECRET} of A-Z a-z 0-9 . _ / : @ + -)");
                }
                vdev += &format!(",secret={}", spec.secret);
            }
            vdev
        }
        Kind::VhostUser => {
            // virtio_user's server=1 listens: the container is the
            // vhost-user server when OVS is the client.
            let server = u8::from(spec.role == Role::Server);
            format!("virtio_user{index},path={socket},server={server},queues=1,mac={mac}")
        }
    })
}

/// A client connects to the vSwitch's socket: say so now, not as a
/// DPDK probe failure deep in the app's start-up.
fn must_be_listening(name: &str, socket: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(socket).with_context(|| {
        format!(
            "interface {name}: no socket at {} (is the plugin's shared dir mounted here?)",
            socket.display()
        )
    })?;
    if !meta.file_type().is_socket() {
        bail!("interface {name}: {} is not a socket", socket.display());
    }
    Ok(())
}

/// What DPDK's kvargs parser takes as one value (no `,` `=` or `[`
/// list), and an unquoted `$(userspace-app dpdk-args)` keeps as one word
/// (no spaces, no glob characters): a conservative set.
fn devargs_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:@+-".contains(c))
}

/// A file prefix of the container's own, so two DPDK apps never share
/// one (DPDK's default is `rte`).
fn file_prefix(container_id: &str) -> String {
    let id: String = container_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    if id.is_empty() {
        "userspace".to_string()
    } else {
        format!("userspace-{id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    fn spec(dir: &Path, kind: Kind, role: Role, file: &str) -> InterfaceSpec {
        InterfaceSpec {
            if_name: "net1".into(),
            container_id: "3f2a9c0b1d4e5f60".into(),
            network: "n".into(),
            kind,
            role,
            socket: dir.join(file),
            secret: String::new(),
            queues: None,
            mac: [2, 0, 0, 0, 0, 9],
            address: "10.0.0.2".parse().unwrap(),
            prefix_len: 24,
            gateway: None,
            routes: Vec::new(),
        }
    }

    #[test]
    fn memif_client_and_vhost_server_args() {
        let dir = tempfile::tempdir().unwrap();
        let _listener = UnixListener::bind(dir.path().join("m.sock")).unwrap();
        let mut memif = spec(dir.path(), Kind::Memif, Role::Client, "m.sock");
        memif.secret = "s3cr3t".into();
        let mut vhost = spec(dir.path(), Kind::VhostUser, Role::Server, "v.sock");
        vhost.if_name = "net2".into();
        let (args, data) = build(&[memif, vhost], None).unwrap();
        let d = dir.path().display();
        assert_eq!(
            args,
            [
                "--in-memory".to_string(),
                "--file-prefix=userspace-3f2a9c0b1d4e".into(),
                "--single-file-segments".into(),
                format!("--vdev=net_memif0,role=client,id=0,socket={d}/m.sock,socket-abstract=no,mac=02:00:00:00:00:09,secret=s3cr3t"),
                format!("--vdev=virtio_user1,path={d}/v.sock,server=1,queues=1,mac=02:00:00:00:00:09"),
            ]
        );
        assert_eq!(data["interfaces"][1]["ifName"], "net2");
        assert_eq!(data["interfaces"][0]["rxQueues"], 1);
        assert_eq!(data["args"], json!(args));
    }

    #[test]
    fn one_interface_keeps_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let a = spec(dir.path(), Kind::Memif, Role::Server, "a.sock");
        let mut b = spec(dir.path(), Kind::Memif, Role::Server, "b.sock");
        b.if_name = "net2".into();
        let (args, _) = build(&[a.clone(), b.clone()], Some("net2")).unwrap();
        assert!(args
            .last()
            .unwrap()
            .starts_with("--vdev=net_memif1,role=server"));
        assert!(!args.contains(&"--single-file-segments".to_string()));
        let error = build(&[a, b], Some("net9")).unwrap_err().to_string();
        assert!(
            error.contains("net9") && error.contains("net1, net2"),
            "{error}"
        );
    }

    #[test]
    fn testpmd_polls_every_queue_the_vswitch_has() {
        let dir = tempfile::tempdir().unwrap();
        let mut memif = spec(dir.path(), Kind::Memif, Role::Server, "a.sock");
        memif.queues = Some((2, 2));
        assert_eq!(
            testpmd_args(std::slice::from_ref(&memif), None).unwrap(),
            ["--rxq=2", "--txq=2"]
        );
        let mut vhost = spec(dir.path(), Kind::VhostUser, Role::Server, "v.sock");
        vhost.if_name = "net2".into();
        let both = [memif, vhost];
        let error = testpmd_args(&both, None).unwrap_err().to_string();
        assert!(error.contains("--ifname"), "{error}");
        assert_eq!(
            testpmd_args(&both, Some("net2")).unwrap(),
            ["--rxq=1", "--txq=1"]
        );
    }

    #[test]
    fn values_that_would_split_or_inject_devargs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "a,role=server.sock",
            "a b.sock",
            "a=b.sock",
            "a\nb.sock",
            "*.sock",
            "[x].sock",
        ] {
            let s = spec(dir.path(), Kind::Memif, Role::Server, file);
            let error = build(&[s], None).unwrap_err().to_string();
            assert!(error.contains("devargs"), "{file:?}: {error}");
        }
        for secret in ["x,role=server", "[x", "a*", "012345678901234567890123"] {
            let mut s = spec(dir.path(), Kind::Memif, Role::Server, "a.sock");
            s.secret = secret.into();
            let error = build(&[s], None).unwrap_err().to_string();
            assert!(error.contains("secret"), "{secret}: {error}");
        }
        let long = "x".repeat(108);
        let s = spec(dir.path(), Kind::Memif, Role::Server, &long);
        assert!(build(&[s], None)
            .unwrap_err()
            .to_string()
            .contains("too long"));
    }

    #[test]
    fn a_client_needs_the_vswitchs_socket_and_a_server_its_dir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = spec(dir.path(), Kind::Memif, Role::Client, "absent.sock");
        let error = build(&[missing], None).unwrap_err().to_string();
        assert!(error.contains("no socket at"), "{error}");
        std::fs::write(dir.path().join("file"), "").unwrap();
        let not_socket = spec(dir.path(), Kind::VhostUser, Role::Client, "file");
        let error = build(&[not_socket], None).unwrap_err().to_string();
        assert!(error.contains("not a socket"), "{error}");
        let mut no_dir = spec(dir.path(), Kind::Memif, Role::Server, "x.sock");
        no_dir.socket = PathBuf::from("/nonexistent-dir/x.sock");
        let error = build(&[no_dir], None).unwrap_err().to_string();
        assert!(error.contains("does not exist"), "{error}");
    }
}
