//! What ADD publishes for the container: the sockets the vSwitch made,
//! moved into the shared dir; the Go plugin's
//! `configData-<cid12>-<ifname>.json` there; the NPWG device info.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use cni_protocol::{codes, CniError, CniResult, Environment, Interface, Version};
use netconf::{IfType, NetConf};

use crate::names::Names;
use serde_json::{json, Value};

/// The container-data object in the Go plugin's shape. `socket_file` is
/// the name the socket got in the shared dir, so the container app finds it
/// without re-deriving the default.
pub(crate) fn document(
    conf: &NetConf,
    container_id: &str,
    ifname: &str,
    socket_file: &str,
    result: &CniResult,
) -> Value {
    let mut config = conf.container.to_go_json();
    let section = match conf.container.iftype {
        IfType::Memif => "memif",
        IfType::VhostUser => "vhost",
    };
    config[section]["socketfile"] = socket_file.into();
    json!({
        "containerId": container_id,
        "ifName": ifname,
        "name": conf.name,
        "config": config,
        "ipResult": result.to_value(Version::V1_0_0),
    })
}

/// The NPWG device information of the interface, as the container sees
/// it: memif `role` and vhost-user `mode` are the container side's, and
/// `socket_path` is the path in the container.
pub(crate) fn device_info(conf: &NetConf, socket_path: &str) -> Value {
    let side = &conf.container;
    match side.iftype {
        IfType::Memif => json!({
            "type": "memif",
            "version": "1.1.0",
            "memif": {"role": side.memif.role, "mode": side.memif.mode, "path": socket_path},
        }),
        IfType::VhostUser => json!({
            "type": "vhost-user",
            "version": "1.1.0",
            "vhost-user": {"mode": side.vhost.mode.as_deref().unwrap_or("client"), "path": socket_path},
        }),
    }
}

/// The temp file `write` goes through for `path`.
pub(crate) fn temp_path(path: &str) -> String {
    format!("{path}.tmp")
}

/// Writes `doc` to `path` through a temp file and a rename, never
/// following a planted symlink (O_NOFOLLOW | O_EXCL on the temp file).
pub(crate) fn write(path: &str, doc: &Value) -> Result<(), CniError> {
    let failed = |e: std::io::Error| {
        CniError::new(
            cni_protocol::codes::CONTAINER_DATA_FAILURE,
            format!("cannot write container data {path}"),
            e.to_string(),
        )
    };
    // A fixed temp name, so its removal can be journalled with the file's;
    // writers of one path are serialised by the state dir's lock. A stale
    // one (a crash) is removed, a planted link with it, never followed.
    let tmp = temp_path(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(failed)?;
    let written = file
        .write_all(serde_json::to_string_pretty(doc).expect("json").as_bytes())
        // Not fsynced: the container that reads it does not outlive the
        // machine, and its next ADD writes it again.
        .and_then(|_| {
            crate::crash::point("between writing container data and renaming it");
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    Ok(())
}

/// Moves vSwitch-made sockets into the shared dir, builds the result and
/// writes the container data (returned too, for the pod's annotations).
/// A socket may only move to this attachment's socket path, whose removal
/// ADD's host plan journalled before anything ran.
pub(crate) fn publish(
    env: &Environment,
    conf: &NetConf,
    names: &Names,
    mapped_dir: Option<&str>,
    socket_moves: &[(String, String)],
    ipam_result: Option<CniResult>,
) -> Result<(CniResult, Value), CniError> {
    for (from, to) in socket_moves {
        check_socket_move(from, to, names, &conf.host.ovs.vhost_sock_dir)?;
        move_socket(from, to)?;
    }

    let mut result = conf.prev_result.clone().unwrap_or_default();
    let index = result.interfaces.len();
    result.interfaces.push(Interface {
        name: env.ifname.clone(),
        mac: names.mac.clone(),
        mtu: conf.container.mtu,
        sandbox: env.netns.clone(),
        socket_path: names.socket_path.clone(),
        ..Default::default()
    });
    if let Some(ipam) = ipam_result.filter(|_| conf.ipam.is_some()) {
        result.ips.extend(ipam.ips.into_iter().map(|mut ip| {
            ip.interface = Some(index);
            ip
        }));
        result.routes.extend(ipam.routes);
        if ipam.dns != Default::default() {
            result.dns = ipam.dns;
        }
    }

    let doc = document(
        conf,
        &env.container_id,
        &env.ifname,
        &names.socket_file,
        &result,
    );
    write(&names.data_path, &doc)?;
    if let Some(path) = &conf.device_info_file {
        // The spec asks the writer to create the directory when missing.
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CniError::new(
                    codes::CONTAINER_DATA_FAILURE,
                    format!("cannot create {}", dir.display()),
                    e.to_string(),
                )
            })?;
        }
        // The path the pod's application opens: the socket in the dir
        // where its container mounts the socket volume.
        let mapped_dir = mapped_dir.unwrap_or(crate::pod::DEFAULT_MAPPED_DIR);
        let in_container = format!("{}/{}", mapped_dir.trim_end_matches('/'), names.socket_file);
        write(path, &device_info(conf, &in_container))?;
    }
    Ok((result, doc))
}

/// A socket move an engine asked for, as the host allows it (the engine
/// names the paths, the host moves as root): to this attachment's socket
/// path only; from a socket (not a link, not a file) directly in the
/// vSwitch's socket dir.
fn check_socket_move(
    from: &str,
    to: &str,
    names: &Names,
    socket_dir: &str,
) -> Result<(), CniError> {
    let refuse = |why: String| {
        CniError::new(
            codes::COMPONENT_FAILURE,
            format!("the engine asked to move {from} to {to}: {why}"),
            "",
        )
    };
    if to != names.socket_path {
        return Err(refuse(format!(
            "only this attachment's socket path {} may receive a socket",
            names.socket_path
        )));
    }
    let source = std::path::Path::new(from);
    let in_socket_dir = source.parent()
        == Some(std::path::Path::new(socket_dir.trim_end_matches('/')))
        && source
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(netconf::is_safe_name);
    if !in_socket_dir {
        return Err(refuse(format!(
            "only a socket directly in the vSwitch's socket dir {socket_dir} may be moved"
        )));
    }
    // Never the vSwitch's own control sockets, which may share that dir.
    if crate::policy::node().is_vswitch_socket(from) {
        return Err(refuse(
            "it is a vSwitch control socket the node policy lists".into(),
        ));
    }
    match std::fs::symlink_metadata(from) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => Ok(()),
        Ok(_) => Err(refuse(
            "it is not a socket (a symlink is not followed)".into(),
        )),
        Err(e) => Err(refuse(e.to_string())),
    }
}

/// Renames the socket into place, never over an existing file, and never
/// a symlink instead: a link to a path outside the container's mounts
/// would not resolve in the container anyway.
fn move_socket(from: &str, to: &str) -> Result<(), CniError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(|e| {
        let hint = if e == rustix::io::Errno::XDEV {
            "; the vSwitch's socket dir and the shared dir must be on one filesystem \
             (or use vhost mode client: then the socket is made in the shared dir)"
        } else {
            ""
        };
        CniError::new(
            codes::CONTAINER_DATA_FAILURE,
            format!("cannot move socket {from} to {to}"),
            format!("{e}{hint}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &std::path::Path) -> Names {
        let shared = dir.join("shared");
        Names {
            base_dir: dir.display().to_string(),
            shared_dir: shared.display().to_string(),
            socket_path: shared.join("vhu.sock").display().to_string(),
            socket_file: "vhu.sock".into(),
            port_name: "vhu".into(),
            mac: "02:00:00:00:00:01".into(),
            data_path: shared.join("configData.json").display().to_string(),
            socket_mount: None,
            in_pod_volume: false,
        }
    }

    /// (tmp dir, the vSwitch's socket dir with a real socket `port`, names)
    fn setup() -> (tempfile::TempDir, String, Names) {
        let tmp = tempfile::tempdir().unwrap();
        let vswitch = tmp.path().join("ovs");
        std::fs::create_dir_all(&vswitch).unwrap();
        std::fs::create_dir_all(tmp.path().join("shared")).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(vswitch.join("port")).unwrap();
        drop(listener);
        std::fs::write(vswitch.join("key"), "secret").unwrap();
        let names = names(tmp.path());
        (tmp, vswitch.display().to_string(), names)
    }

    #[test]
    fn a_socket_in_the_vswitch_dir_moves_to_the_socket_path() {
        let (_tmp, vswitch, names) = setup();
        let from = format!("{vswitch}/port");
        check_socket_move(&from, &names.socket_path, &names, &vswitch).unwrap();
        move_socket(&from, &names.socket_path).unwrap();
        let moved = std::fs::symlink_metadata(&names.socket_path).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_socket(
            &moved.file_type()
        ));
    }

    #[test]
    fn what_the_host_will_not_move_for_an_engine() {
        let (tmp, vswitch, names) = setup();
        let elsewhere = tmp.path().join("elsewhere.sock");
        drop(std::os::unix::net::UnixListener::bind(&elsewhere).unwrap());
        std::os::unix::fs::symlink(format!("{vswitch}/port"), format!("{vswitch}/link")).unwrap();
        let outward = tmp.path().join("outside").display().to_string();
        for (from, to, why) in [
            (
                format!("{vswitch}/key"),
                names.socket_path.clone(),
                "not a socket",
            ),
            (
                format!("{vswitch}/link"),
                names.socket_path.clone(),
                "not a socket",
            ),
            (
                format!("{vswitch}/port"),
                outward,
                "only this attachment's socket path",
            ),
            (
                elsewhere.display().to_string(),
                names.socket_path.clone(),
                "directly in the vSwitch's socket dir",
            ),
            (
                format!("{vswitch}/../ovs/port"),
                names.socket_path.clone(),
                "directly in",
            ),
        ] {
            let err = check_socket_move(&from, &to, &names, &vswitch).unwrap_err();
            assert_eq!(err.code, codes::COMPONENT_FAILURE);
            assert!(err.msg.contains(why), "{from} -> {to}: {}", err.msg);
        }
        assert_eq!(
            std::fs::read_to_string(format!("{vswitch}/key")).unwrap(),
            "secret"
        );
    }

    #[test]
    fn a_socket_never_replaces_a_file() {
        let (_tmp, vswitch, names) = setup();
        std::fs::write(&names.socket_path, "the pod's file").unwrap();
        let err = move_socket(&format!("{vswitch}/port"), &names.socket_path).unwrap_err();
        assert_eq!(err.code, codes::CONTAINER_DATA_FAILURE);
        assert_eq!(
            std::fs::read_to_string(&names.socket_path).unwrap(),
            "the pod's file"
        );
    }
}
