//! In-place upgrade from the Go plugin: DEL of an attachment the Go
//! plugin made, which has no record of ours.
//!
//! What the Go plugin's OVS-DPDK engine (`cniovs`) leaves per attachment,
//! from its source: a local data file `<dataDir>/local-<cid12>-<ifname>.json`
//! (`{"vhostname", "vhostmac", "ifmac"}`; `dataDir` is
//! `/var/lib/cni/usrspcni/data`, the node policy's `goPluginDataDir`), an
//! OVS port of that name, of type `dpdkvhostuser` or `dpdkvhostuserclient`,
//! and in `<sharedDir>/<cid12>/` (without `sharedDir`,
//! `/usr/local/var/run/openvswitch/<cid12>/`) the socket of that name and
//! `configData-<cid12>-<ifname>.json`. Its VPP engine's file holds only a
//! memif socket id, not enough to find the interface: not handled.
//!
//! The file is used only if nobody but root could have written it, and the
//! port is removed only if it is a vhost-user port of that name: a name
//! taken from a file is not trusted with anything else. Not handled: a
//! pod's socket volume the Go plugin bind-mounted on
//! `/var/lib/vhost_sockets/<pod uid>` (its name is the pod's, not the
//! attachment's).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use cni_protocol::{codes, CniError, Environment};
use netconf::{Engine, NetConf};
use node_policy::{Rule, What};
use serde_json::{json, Value};

/// The Go plugin's socket dir when the config has no `sharedDir`.
const DEFAULT_OVS_DIR: &str = "/usr/local/var/run/openvswitch";

/// Undoes the Go plugin's attachment `env.container_id`/`env.ifname`, if
/// its local data file is there. Ok(false) when there is none (or it
/// cannot be trusted, which the log says).
pub(crate) fn undo_attachment(env: &Environment, conf: &NetConf) -> Result<bool, CniError> {
    if conf.host.engine != Engine::OvsDpdk || env.container_id.len() < 12 {
        return Ok(false);
    }
    let cid12 = &env.container_id[..12];
    let policy = crate::policy::node();
    let file = policy
        .go_plugin_data_dir
        .join(format!("local-{cid12}-{}.json", env.ifname));
    let Some(port) = port_name(&file) else {
        return Ok(false);
    };
    tracing::info!(port, file = %file.display(), "DEL of an attachment the Go plugin made");
    // Checked here too: a DEL going by the record alone confines only the
    // state dir and the log file.
    let db_socket = conf.host.ovs.db_socket.as_str();
    let path = db_socket.strip_prefix("unix:").unwrap_or(db_socket);
    if let Err(refusal) = policy.check("host.ovs.dbSocket", path, Rule::OvsDbSocket) {
        tracing::warn!("the Go plugin's port is left: {refusal}");
        return Ok(false);
    }
    if !remove_port(db_socket, &port)? {
        return Ok(false);
    }

    let dir = match &conf.shared_dir {
        Some(dir) => format!("{}/{cid12}", dir.trim_end_matches('/')),
        None => format!("{DEFAULT_OVS_DIR}/{cid12}"),
    };
    // What is left may lie where the node policy no longer lets
    // attachments live: the log says so, and DEL goes on (the port, the
    // vSwitch's part, is gone).
    let removals = [
        (format!("{dir}/{port}"), What::File),
        (
            format!("{dir}/configData-{cid12}-{}.json", env.ifname),
            What::File,
        ),
        (dir, What::EmptyDir),
    ];
    for (path, what) in removals {
        if let Err(why) = policy.remove_beneath(&path, what) {
            tracing::warn!("the Go plugin's {path} is left: {why}");
        }
    }
    if let Err(why) = policy.remove_go_plugin_data(&file.display().to_string()) {
        tracing::warn!("the Go plugin's data file is left: {why}");
    }
    Ok(true)
}

/// The port name in the Go plugin's data file, if the file is there, only
/// root could have written it, and it holds a plausible port name.
fn port_name(file: &Path) -> Option<String> {
    let mut opened = match root_owned::open_trusted(file) {
        Ok(opened) => opened,
        Err(root_owned::Refused::Missing) => return None,
        Err(root_owned::Refused::Untrusted(why)) => {
            tracing::warn!("the Go plugin's data file is not used: {why}");
            return None;
        }
    };
    let mut text = String::new();
    let read = (&mut opened).take(64 * 1024).read_to_string(&mut text);
    let data: Option<Value> = read.ok().and_then(|_| serde_json::from_str(&text).ok());
    let name = data.as_ref().and_then(|d| d["vhostname"].as_str());
    match name {
        Some(name) if netconf::is_safe_name(name) => Some(name.to_string()),
        _ => {
            tracing::warn!(file = %file.display(), "the Go plugin's data file names no port: not used");
            None
        }
    }
}

/// Removes vhost-user port `name` from whichever bridge holds it, and
/// waits for ovs-vswitchd to apply it: Ok(true) once it is gone. A port
/// of another type is left alone, and so is the rest: Ok(false).
fn remove_port(db_socket: &str, name: &str) -> Result<bool, CniError> {
    let failed = |e: ovsdb_client::Error| {
        CniError::new(
            codes::VSWITCH_FAILURE,
            format!("cannot remove the Go plugin's port {name}"),
            e.to_string(),
        )
    };
    let mut client =
        ovsdb_client::Client::connect(db_socket, Duration::from_secs(10)).map_err(failed)?;
    let select = |table: &str, column: &str, value: Value, columns: Value| json!({"op": "select", "table": table, "where": [[column, "==", value]], "columns": columns});
    let found = client
        .transact(&[
            select("Port", "name", json!(name), json!(["_uuid"])),
            select("Interface", "name", json!(name), json!(["type"])),
        ])
        .map_err(failed)?;
    let Some(port_uuid) = found[0]["rows"][0]["_uuid"].as_array().cloned() else {
        tracing::info!(port = name, "the Go plugin's port is already gone");
        return Ok(true);
    };
    let kind = found[1]["rows"][0]["type"].as_str().unwrap_or_default();
    if kind != "dpdkvhostuser" && kind != "dpdkvhostuserclient" {
        tracing::warn!(port = name, kind, "the Go plugin's data file names a port that is not vhost-user: nothing of it is touched");
        return Ok(false);
    }
    let bridges = client
        .transact(&[json!({"op": "select", "table": "Bridge",
                           "where": [["ports", "includes", Value::Array(port_uuid.clone())]],
                           "columns": ["_uuid"]})])
        .map_err(failed)?;
    let Some(bridge_uuid) = bridges[0]["rows"][0]["_uuid"].as_array().cloned() else {
        return Ok(true);
    };
    client
        .transact_and_wait(&[json!({"op": "mutate", "table": "Bridge",
            "where": [["_uuid", "==", Value::Array(bridge_uuid)]],
            "mutations": [["ports", "delete", Value::Array(port_uuid)]]})])
        .map_err(failed)?;
    Ok(true)
}
