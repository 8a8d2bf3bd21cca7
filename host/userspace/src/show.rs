//! `userspace show`: an attachment's record joined with what its vSwitch
//! says about it now (the port or interface, its state, counters and
//! VLAN; for VPP the bridge domain too), so an operator sees in one place
//! what `ovs-vsctl list Interface` or `vppctl show memif` would tell.
//!
//! Read only: one OVSDB `select` transaction or a few VPP dumps, never a
//! change. The record's vSwitch socket is asked only while the node policy
//! still allows it (a record is older than the policy in force).

use std::time::Duration;

use attachment_store::{Record, Undo};
use node_policy::{NodePolicy, Rule};
use serde_json::{json, Value};
use userspace_cni_vpp_binapi as vpp;
use vpp::Message;

use crate::record::Details;

/// How long `show` waits for the vSwitch; it is for a person at a prompt.
const VSWITCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The vSwitch an attachment's engine drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VSwitch {
    Ovs,
    Vpp,
}

impl VSwitch {
    /// The built-in engines by name; a component engine (granted both, by
    /// default) by what its journal undoes, else by its only grant.
    fn of(record: &Record, details: &Details) -> Option<VSwitch> {
        match details.engine.as_str() {
            "ovs-dpdk" => return Some(VSwitch::Ovs),
            "vpp" => return Some(VSwitch::Vpp),
            _ => {}
        }
        for entry in &record.journal {
            match entry.undo {
                Undo::Ovsdb { .. } => return Some(VSwitch::Ovs),
                Undo::Vpp { .. } => return Some(VSwitch::Vpp),
                _ => {}
            }
        }
        let grants = details.engine_spec().ok()?.grants;
        let granted = |name: &str| grants.iter().any(|g| g.as_str() == name);
        match (granted("ovsdb"), granted("vpp")) {
            (true, false) => Some(VSwitch::Ovs),
            (false, true) => Some(VSwitch::Vpp),
            _ => None,
        }
    }
}

/// One attachment as `show --json` prints it.
pub(crate) fn attachment(record: &Record, policy: &NodePolicy) -> Value {
    let key = &record.key;
    let mut shown = json!({
        "network": key.network,
        "containerId": key.container_id,
        "ifName": key.ifname,
        "phase": format!("{:?}", record.phase).to_lowercase(),
        "ips": record.result.as_ref()
            .and_then(|r| r["ips"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|ip| ip["address"].as_str().map(str::to_string))
            .collect::<Vec<_>>(),
    });
    let details = match Details::of(record) {
        Ok(d) => d,
        Err(e) => {
            shown["recordError"] = e.msg.into();
            return shown;
        }
    };
    let present = |path: &str| !path.is_empty() && std::fs::symlink_metadata(path).is_ok();
    shown["engine"] = details.engine.clone().into();
    shown["netns"] = details.netns.clone().into();
    shown["pod"] = details.pod.as_ref().map_or(
        Value::Null,
        |p| json!({"namespace": p.namespace, "name": p.name, "uid": p.uid}),
    );
    shown["iftype"] = details.host_config["iftype"].clone();
    shown["port"] = details.port_name.clone().into();
    shown["mac"] = details.mac.clone().into();
    shown["socket"] =
        json!({"path": details.socket_path, "present": present(&details.socket_path)});
    shown["containerData"] =
        json!({"path": details.data_path, "present": present(&details.data_path)});
    shown["vswitch"] = match VSwitch::of(record, &details) {
        Some(VSwitch::Ovs) => allowed(
            policy,
            "host.ovs.dbSocket",
            details.ovs_db_socket(),
            Rule::OvsDbSocket,
        )
        .map_or_else(|refused| refused, |socket| ovs(&details, socket)),
        Some(VSwitch::Vpp) => allowed(
            policy,
            "host.vpp.apiSocket",
            details.vpp_api_socket(),
            Rule::VppApiSocket,
        )
        .map_or_else(|refused| refused, |socket| vpp(&details, socket)),
        None => {
            json!({"error": "the engine's journal and grants do not say which vSwitch it drives"})
        }
    };
    hide_secrets(&mut shown);
    shown
}

/// A memif secret is the container's credential to its port: OVS repeats
/// it wherever it quotes the devargs (`options`, `error`), and a listing
/// prints none of it.
fn hide_secrets(value: &mut Value) {
    match value {
        Value::String(text) if text.contains("secret=") => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(at) = rest.find("secret=") {
                out.push_str(&rest[..at + "secret=".len()]);
                out.push_str("(hidden)");
                rest = &rest[at + "secret=".len()..];
                let end = rest
                    .find(|c: char| c == ',' || c == '\'' || c == '"' || c.is_whitespace())
                    .unwrap_or(rest.len());
                rest = &rest[end..];
            }
            out.push_str(rest);
            *text = out;
        }
        Value::Array(items) => items.iter_mut().for_each(hide_secrets),
        Value::Object(map) => map.values_mut().for_each(hide_secrets),
        _ => {}
    }
}

/// The vSwitch socket, if the policy still allows it; else why not.
fn allowed<'a>(
    policy: &NodePolicy,
    field: &str,
    socket: &'a str,
    rule: Rule,
) -> Result<&'a str, Value> {
    let path = socket.strip_prefix("unix:").unwrap_or(socket);
    policy
        .check(field, path, rule)
        .map(|_| socket)
        .map_err(|refusal| json!({"socket": socket, "error": format!("not asked: {refusal}")}))
}

/// The port's Interface and Port rows and the bridge holding it, from
/// the OVSDB `socket` the policy allows.
fn ovs(details: &Details, socket: &str) -> Value {
    let mut shown = json!({"kind": "ovs-dpdk", "socket": socket});
    let port = &details.port_name;
    let ops = [
        json!({"op": "select", "table": "Interface", "where": [["name", "==", port]],
               "columns": ["type", "options", "admin_state", "link_state", "mtu", "ofport",
                           "statistics", "error", "mac_in_use"]}),
        json!({"op": "select", "table": "Port", "where": [["name", "==", port]],
               "columns": ["_uuid", "tag", "trunks", "vlan_mode"]}),
        json!({"op": "select", "table": "Bridge", "where": [], "columns": ["name", "ports"]}),
    ];
    let results = ovsdb_client::Client::connect(socket, VSWITCH_TIMEOUT)
        .and_then(|mut client| client.transact(&ops));
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            shown["error"] = e.to_string().into();
            return shown;
        }
    };
    if let Some(error) = results.iter().find_map(|r| r.get("error")) {
        shown["error"] = format!("ovsdb-server refused the query: {error}").into();
        return shown;
    }
    let first_row = |n: usize| results.get(n).and_then(|r| r["rows"].get(0)).cloned();
    let Some(interface) = first_row(0) else {
        shown["error"] = format!("no interface {port} on the vSwitch").into();
        return shown;
    };
    shown["interface"] = json!({
        "type": interface["type"],
        "options": ovs_map(&interface["options"]),
        "adminState": ovs_scalar(&interface["admin_state"]),
        "linkState": ovs_scalar(&interface["link_state"]),
        "mtu": ovs_scalar(&interface["mtu"]),
        "ofport": ovs_scalar(&interface["ofport"]),
        "error": ovs_scalar(&interface["error"]),
        "macInUse": ovs_scalar(&interface["mac_in_use"]),
        "statistics": ovs_map(&interface["statistics"]),
    });
    if let Some(row) = first_row(1) {
        let uuid = row["_uuid"].clone();
        shown["port"] = json!({
            "tag": ovs_scalar(&row["tag"]),
            "trunks": ovs_set(&row["trunks"]),
            "vlanMode": ovs_scalar(&row["vlan_mode"]),
        });
        let bridges = results.get(2).and_then(|r| r["rows"].as_array().cloned());
        shown["bridge"] = bridges
            .unwrap_or_default()
            .iter()
            .find(|b| ovs_set(&b["ports"]).contains(&uuid))
            .map_or(Value::Null, |b| b["name"].clone());
    }
    shown
}

/// An OVSDB `["map", [[k, v], ...]]` as a JSON object.
fn ovs_map(value: &Value) -> Value {
    let pairs = value.get(1).and_then(Value::as_array);
    Value::Object(
        pairs
            .into_iter()
            .flatten()
            .filter_map(|pair| Some((pair.get(0)?.as_str()?.to_string(), pair.get(1)?.clone())))
            .collect(),
    )
}

/// An OVSDB optional value: the atom, or null for the empty set.
fn ovs_scalar(value: &Value) -> Value {
    match value {
        Value::Array(a) if a.first() == Some(&json!("set")) => a
            .get(1)
            .and_then(|s| s.get(0))
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// An OVSDB set (or single atom) as a list.
fn ovs_set(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(a) if a.first() == Some(&json!("set")) => a
            .get(1)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        other => vec![other.clone()],
    }
}

/// The memif or vhost-user interface on the record's socket, its
/// sw_interface state and the bridge domain it is in, from the VPP API
/// `socket` the policy allows.
fn vpp(details: &Details, socket: &str) -> Value {
    let mut shown = json!({"kind": "vpp", "socket": socket});
    let path = socket.strip_prefix("unix:").unwrap_or(socket);
    match vpp_interface(details, path) {
        Ok(found) => {
            for (key, value) in found {
                shown[key] = value;
            }
        }
        Err(e) => shown["error"] = e.into(),
    }
    shown
}

fn vpp_interface(details: &Details, socket: &str) -> Result<Vec<(&'static str, Value)>, String> {
    let limits = vpp_api::Limits::within(VSWITCH_TIMEOUT);
    let mut conn = vpp_api::Connection::connect(socket, "userspace-show", limits)
        .map_err(|e| e.to_string())?;
    let path = details.socket_path.as_str();
    let mut found = Vec::new();
    let sw_if_index = if details.host_config["iftype"] == "vhostuser" {
        let all: Vec<vpp::SwInterfaceVhostUserDetails> = dump(
            &mut conn,
            &vpp::SwInterfaceVhostUserDump { sw_if_index: !0 },
        )?;
        let Some(v) = all.into_iter().find(|v| v.sock_filename == path) else {
            return Err(format!("no vhost-user interface on {path}"));
        };
        found.push((
            "vhostUser",
            json!({"isServer": v.is_server, "regions": v.num_regions, "socketErrno": v.sock_errno}),
        ));
        v.sw_if_index
    } else {
        let sockets: Vec<vpp::MemifSocketFilenameDetails> =
            dump(&mut conn, &vpp::MemifSocketFilenameDump {})?;
        let Some(socket_id) = sockets
            .iter()
            .find(|s| s.socket_filename == path)
            .map(|s| s.socket_id)
        else {
            return Err(format!("no memif socket {path} registered"));
        };
        let memifs: Vec<vpp::MemifDetails> = dump(&mut conn, &vpp::MemifDump {})?;
        let Some(m) = memifs.into_iter().find(|m| m.socket_id == socket_id) else {
            return Err(format!("no memif on socket {path} (id {socket_id})"));
        };
        let role = if m.role == vpp::memif_role::MEMIF_ROLE_API_SLAVE {
            "slave"
        } else {
            "master"
        };
        found.push((
            "memif",
            json!({"id": m.id, "socketId": socket_id, "role": role, "ringSize": m.ring_size,
                   "bufferSize": m.buffer_size, "zeroCopy": m.zero_copy}),
        ));
        m.sw_if_index
    };
    let interfaces: Vec<vpp::SwInterfaceDetails> = dump(
        &mut conn,
        &vpp::SwInterfaceDump {
            sw_if_index,
            ..Default::default()
        },
    )?;
    if let Some(i) = interfaces.iter().find(|i| i.sw_if_index == sw_if_index) {
        use vpp::if_status_flags::{IF_STATUS_API_FLAG_ADMIN_UP, IF_STATUS_API_FLAG_LINK_UP};
        let state = |up: bool| if up { "up" } else { "down" };
        found.push((
            "interface",
            json!({"name": i.interface_name, "swIfIndex": sw_if_index,
                   "adminState": state(i.flags & IF_STATUS_API_FLAG_ADMIN_UP != 0),
                   "linkState": state(i.flags & IF_STATUS_API_FLAG_LINK_UP != 0),
                   "mtu": i.link_mtu}),
        ));
    }
    let domains: Vec<vpp::BridgeDomainDetails> = dump(
        &mut conn,
        &vpp::BridgeDomainDump {
            bd_id: !0,
            sw_if_index: !0,
        },
    )?;
    found.push((
        "bridgeDomain",
        domains
            .iter()
            .find(|d| d.sw_if_details.iter().any(|m| m.sw_if_index == sw_if_index))
            .map_or(
                Value::Null,
                |d| json!({"id": d.bd_id, "tag": d.bd_tag, "members": d.n_sw_ifs}),
            ),
    ));
    let _ = conn.disconnect();
    Ok(found)
}

fn dump<Q: Message, D: Message>(
    conn: &mut vpp_api::Connection,
    request: &Q,
) -> Result<Vec<D>, String> {
    let details = conn
        .dump(&Q::name_crc(), &request.encode(), &D::name_crc())
        .map_err(|e| e.to_string())?;
    details
        .iter()
        .map(|d| D::decode(d).map_err(|e| format!("{}: {e}", D::NAME)))
        .collect()
}

/// `show` as text: one block per attachment.
pub(crate) fn render(shown: &Value) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<15}{value}\n"));
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let head = format!(
        "{} {} {}\n",
        text(&shown["network"]),
        text(&shown["containerId"]),
        text(&shown["ifName"])
    );
    line("phase", text(&shown["phase"]));
    if let Some(e) = shown.get("recordError") {
        line("record", format!("unreadable: {}", text(e)));
        return head + &out;
    }
    if let Some(pod) = shown["pod"].as_object() {
        line(
            "pod",
            format!(
                "{}/{} (uid {})",
                text(&pod["namespace"]),
                text(&pod["name"]),
                text(&pod["uid"])
            ),
        );
    }
    line("netns", text(&shown["netns"]));
    line("engine", text(&shown["engine"]));
    line("iftype", text(&shown["iftype"]));
    line("port", text(&shown["port"]));
    line("mac", text(&shown["mac"]));
    let ips: Vec<String> = shown["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    line(
        "ips",
        if ips.is_empty() {
            "-".into()
        } else {
            ips.join(", ")
        },
    );
    for (label, key) in [("socket", "socket"), ("container data", "containerData")] {
        let missing = if shown[key]["present"] == true {
            ""
        } else {
            " (missing)"
        };
        line(label, format!("{}{missing}", text(&shown[key]["path"])));
    }
    let v = &shown["vswitch"];
    line(
        "vswitch",
        format!("{} at {}", text(&v["kind"]), text(&v["socket"])),
    );
    if let Some(e) = v.get("error") {
        line("  error", text(e));
    }
    if let Some(i) = v.get("interface") {
        line(
            "  state",
            format!(
                "admin {}, link {}",
                text(&i["adminState"]),
                text(&i["linkState"])
            ),
        );
        line("  mtu", text(&i["mtu"]));
        if let Some(kind) = i.get("type") {
            line("  type", text(kind));
        }
        if let Some(name) = i.get("name") {
            line("  interface", text(name));
        }
        if let Some(options) = i["options"].as_object() {
            let pairs: Vec<String> = options
                .iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect();
            line("  options", pairs.join(" "));
        }
        if let Some(stats) = i["statistics"].as_object() {
            let count = |k: &str| stats.get(k).map_or("-".into(), text);
            line(
                "  rx",
                format!(
                    "{} packets, {} bytes, {} dropped",
                    count("rx_packets"),
                    count("rx_bytes"),
                    count("rx_dropped")
                ),
            );
            line(
                "  tx",
                format!(
                    "{} packets, {} bytes, {} dropped",
                    count("tx_packets"),
                    count("tx_bytes"),
                    count("tx_dropped")
                ),
            );
        }
        if i.get("error").is_some_and(|e| !e.is_null()) {
            line("  ovs error", text(&i["error"]));
        }
    }
    if let Some(bridge) = v.get("bridge") {
        line("  bridge", text(bridge));
    }
    if let Some(port) = v.get("port") {
        let trunks: Vec<String> = port["trunks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        line(
            "  vlan",
            match (port["tag"].as_i64(), trunks.is_empty()) {
                (Some(tag), _) => format!("tag {tag}"),
                (None, false) => format!("trunks {}", trunks.join(",")),
                (None, true) => "none".into(),
            },
        );
    }
    if let Some(m) = v.get("memif") {
        line(
            "  memif",
            format!(
                "id {}, role {}, socket id {}, ring {}, buffers {}",
                text(&m["id"]),
                text(&m["role"]),
                text(&m["socketId"]),
                text(&m["ringSize"]),
                text(&m["bufferSize"])
            ),
        );
    }
    if let Some(u) = v.get("vhostUser") {
        line(
            "  vhost-user",
            format!(
                "{}, {} memory regions",
                if u["isServer"] == true {
                    "server"
                } else {
                    "client"
                },
                text(&u["regions"])
            ),
        );
    }
    if let Some(bd) = v.get("bridgeDomain") {
        line(
            "  bridge domain",
            if bd.is_null() {
                "none".into()
            } else {
                format!("{} ({} members)", text(&bd["id"]), text(&bd["members"]))
            },
        );
    }
    head + &out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OVS quotes the devargs in `error` too when it cannot attach the
    /// device: every string is cleaned, not only `options`.
    #[test]
    fn a_memif_secret_is_hidden_wherever_ovs_quotes_it() {
        let mut shown = json!({"vswitch": {
            "interface": {
                "options": {"dpdk-devargs": "net_memif1,role=server,id=0,socket=/s.sock,secret=abc123"},
                "error": "Error attaching device 'net_memif1,secret=abc123,socket=/s' to DPDK",
            },
            "list": ["secret=x y"]
        }});
        hide_secrets(&mut shown);
        let text = shown.to_string();
        assert!(
            !text.contains("abc123") && !text.contains("secret=x"),
            "{text}"
        );
        assert_eq!(
            shown["vswitch"]["interface"]["error"],
            "Error attaching device 'net_memif1,secret=(hidden),socket=/s' to DPDK"
        );
        assert!(shown["vswitch"]["interface"]["options"]["dpdk-devargs"]
            .as_str()
            .unwrap()
            .ends_with("secret=(hidden)"));
    }
}
