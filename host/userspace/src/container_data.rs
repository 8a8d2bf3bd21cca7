//! What ADD publishes for the container: the sockets the vSwitch made,
//! moved into the shared dir; the Go plugin's
//! `configData-<cid12>-<ifname>.json` there; the NPWG device info.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use attachment_store::Undo;
use cni_protocol::{codes, CniError, CniResult, Environment, Interface, Version};
use netconf::{IfType, NetConf};

use crate::capabilities::AttachmentCaps;
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
/// it: memif `role` and vhost-user `mode` are the container side's.
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
        .and_then(|_| file.sync_all())
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
pub(crate) fn publish(
    caps: &mut AttachmentCaps,
    env: &Environment,
    conf: &NetConf,
    names: &Names,
    socket_moves: &[(String, String)],
    ipam_result: Option<CniResult>,
) -> Result<(CniResult, Value), CniError> {
    for (from, to) in socket_moves {
        let journalled = caps
            .journal
            .record
            .journal
            .iter()
            .any(|e| matches!(&e.undo, Undo::RemoveFile { path } if path == to));
        if !journalled {
            caps.record_undo(
                format!("remove socket {to}"),
                Undo::RemoveFile { path: to.clone() },
            )?;
        }
        std::fs::rename(from, to)
            .or_else(|_| std::os::unix::fs::symlink(from, to))
            .map_err(|e| {
                CniError::new(
                    codes::CONTAINER_DATA_FAILURE,
                    format!("cannot publish socket {from} as {to}"),
                    e.to_string(),
                )
            })?;
    }

    let mut result = conf.prev_result.clone().unwrap_or_default();
    let index = result.interfaces.len();
    result.interfaces.push(Interface {
        name: env.ifname.clone(),
        mac: names.mac.clone(),
        mtu: conf.container.mtu,
        sandbox: env.netns.clone(),
        socket_path: names.socket_path.clone(),
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
        write(path, &device_info(conf, &names.socket_path))?;
    }
    Ok((result, doc))
}
