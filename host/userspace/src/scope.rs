//! The scopes of the `ovsdb` and `vpp` grants: what a component may ask of
//! the vSwitch, checked before anything reaches it. The default scope is
//! what the built-in engines need. Beyond it, an OVSDB transaction can make
//! ovs-vswitchd listen on TCP (`Manager`) or read and write host files
//! (`net_pcap` devargs), and a VPP message can run any CLI (`cli_inband`).
//! The node policy may widen the scopes for one engine, pinned by sha256;
//! the checks on paths hold whatever it adds.

use node_policy::ScopeWidening;
use serde_json::Value;

/// The scopes one engine works in: the defaults, and what the node policy
/// adds for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    wider: ScopeWidening,
}

impl Scope {
    /// The scope of the engine the config pins with `sha256` (unpinned or
    /// built in: the defaults).
    pub(crate) fn of_engine(sha256: Option<&str>) -> Scope {
        Scope {
            wider: crate::policy::node()
                .scope_widening(sha256)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Checks an OVSDB transaction. `socket_path` is the attachment's
    /// socket: the only one a new interface may name (`None`: no interface
    /// may be made, as in CHECK and undo).
    pub(crate) fn ovsdb_ops(&self, ops: &[Value], socket_path: Option<&str>) -> Result<(), String> {
        for (index, op) in ops.iter().enumerate() {
            self.ovsdb_op(op, socket_path)
                .map_err(|why| format!("ovsdb scope: operation {index}: {why}"))?;
        }
        Ok(())
    }

    /// Checks a VPP message (`name_crc`).
    pub(crate) fn vpp_message(&self, name_crc: &str) -> Result<(), String> {
        let name = name_crc
            .rsplit_once('_')
            .filter(|(_, crc)| crc.len() == 8 && crc.bytes().all(|b| b.is_ascii_hexdigit()))
            .map_or(name_crc, |(name, _)| name);
        if VPP_MESSAGES.contains(&name)
            || VPP_DUMPS.contains(&name)
            || self.wider.vpp_messages.iter().any(|m| m == name)
        {
            Ok(())
        } else {
            Err(format!("vpp scope: message {name:?} is outside the scope"))
        }
    }

    /// The columns of `table` an engine may write; `None` when it may not
    /// even read the table.
    fn writable(&self, table: &str) -> Option<Vec<&str>> {
        let default = OVSDB_TABLES.iter().find(|(t, _)| *t == table);
        let wider = self.wider.ovsdb_columns.get(table);
        if default.is_none() && wider.is_none() {
            return None;
        }
        let mut columns: Vec<&str> = default.map(|(_, c)| c.to_vec()).unwrap_or_default();
        columns.extend(wider.into_iter().flatten().map(String::as_str));
        Some(columns)
    }
}

/// Tables a component may read, and which columns it may write in each.
const OVSDB_TABLES: [(&str, &[&str]); 4] = [
    ("Open_vSwitch", &["bridges"]),
    (
        "Bridge",
        &["name", "datapath_type", "ports", "external_ids"],
    ),
    ("Port", &["name", "interfaces", "tag", "external_ids"]),
    (
        "Interface",
        &["name", "type", "options", "mtu_request", "external_ids"],
    ),
];

/// Interface types: memif through DPDK, vhost-user either way.
const INTERFACE_TYPES: [&str; 3] = ["dpdk", "dpdkvhostuser", "dpdkvhostuserclient"];

/// The most queues a memif port may poll: OVS's PMD threads poll every
/// one of every port, whoever's pod it is.
const MAX_MEMIF_QUEUES: u8 = 16;

/// `net_memif` devargs keys (DPDK's memif PMD).
const MEMIF_DEVARGS: [&str; 7] = [
    "role",
    "id",
    "socket",
    "socket-abstract",
    "rsize",
    "bsize",
    "secret",
];

impl Scope {
    fn ovsdb_op(&self, op: &Value, socket_path: Option<&str>) -> Result<(), String> {
        let kind = op["op"].as_str().unwrap_or_default();
        if matches!(kind, "comment" | "commit") {
            return Ok(());
        }
        let table = op["table"].as_str().unwrap_or_default();
        let Some(writable) = self.writable(table) else {
            return Err(format!("table {table:?} is outside the scope"));
        };
        match (kind, table) {
            ("select" | "wait" | "mutate" | "update", _) => {}
            // The root row is joined, never made or removed.
            ("insert" | "delete", "Open_vSwitch") => {
                return Err(format!("{kind} on Open_vSwitch is outside the scope"))
            }
            ("insert" | "delete", _) => {}
            (other, _) => return Err(format!("operation {other:?} is outside the scope")),
        }
        self.check_columns(op, kind, table, &writable, socket_path)
    }

    fn check_columns(
        &self,
        op: &Value,
        kind: &str,
        table: &str,
        writable: &[&str],
        socket_path: Option<&str>,
    ) -> Result<(), String> {
        let columns: Vec<String> = match kind {
            "insert" | "update" => op["row"]
                .as_object()
                .map(|row| row.keys().cloned().collect())
                .unwrap_or_default(),
            "mutate" => op["mutations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.get(0).and_then(Value::as_str).map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if matches!(table, "Open_vSwitch" | "Bridge") && kind == "update" {
            // Bridges are made by insert and joined by mutate.
            if columns.iter().any(|c| c != "ports" && c != "external_ids") {
                return Err(format!("an update of {table} is outside the scope"));
            }
        }
        if let Some(column) = columns.iter().find(|c| !writable.contains(&c.as_str())) {
            return Err(format!("column {table}.{column} is outside the scope"));
        }
        if table == "Interface" && matches!(kind, "insert" | "update") {
            self.interface_row(&op["row"], socket_path)?;
        }
        // Options carry paths (devargs sockets, vhost-server-path): they
        // are set whole, by insert or update, where the checks above read
        // them; a mutation could slip a key in past those checks.
        if table == "Interface" && kind == "mutate" && columns.iter().any(|c| c == "options") {
            return Err("a mutate of Interface.options is outside the scope (set options by insert or update)".into());
        }
        Ok(())
    }

    /// A new or changed Interface: a type in scope, and options that name no
    /// path but the attachment's socket.
    fn interface_row(&self, row: &Value, socket_path: Option<&str>) -> Result<(), String> {
        if let Some(kind) = row.get("type") {
            let kind = kind.as_str().unwrap_or_default();
            if !INTERFACE_TYPES.contains(&kind)
                && !self.wider.interface_types.iter().any(|t| t == kind)
            {
                return Err(format!("interface type {kind:?} is outside the scope"));
            }
        }
        let Some(options) = row.get("options") else {
            return Ok(());
        };
        let pairs = ovsdb_map(options).ok_or("options is not an OVSDB map")?;
        let socket_is_ours = |path: &str| socket_path.is_some_and(|ours| ours == path);
        for (key, value) in pairs {
            match key {
                "vhost-server-path" if socket_is_ours(value) => {}
                "vhost-server-path" => {
                    return Err(format!(
                        "vhost-server-path {value:?} is not this attachment's socket"
                    ))
                }
                "dpdk-devargs" => memif_devargs(value, &socket_is_ours)?,
                // A memif port's rx queues (the ovs-dpdk engine's queue pairs).
                "n_rxq"
                    if value
                        .parse::<u8>()
                        .is_ok_and(|n| (1..=MAX_MEMIF_QUEUES).contains(&n)) => {}
                "n_rxq" => return Err(format!("n_rxq {value:?} is not 1-{MAX_MEMIF_QUEUES}")),
                other if self.wider.interface_options.iter().any(|o| o == other) => {}
                other => return Err(format!("interface option {other:?} is outside the scope")),
            }
        }
        Ok(())
    }
}

/// `net_memif<name>,key=value,...` with known keys and our socket only.
fn memif_devargs(devargs: &str, socket_is_ours: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let mut parts = devargs.split(',');
    let driver = parts.next().unwrap_or_default();
    let name_ok = driver
        .strip_prefix("net_memif")
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if !name_ok {
        return Err(format!(
            "devargs {driver:?}: only a net_memif device is in the scope"
        ));
    }
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        if !MEMIF_DEVARGS.contains(&key) {
            return Err(format!(
                "net_memif devargs key {key:?} is outside the scope"
            ));
        }
        if key == "socket" && !socket_is_ours(value) {
            return Err(format!(
                "net_memif socket {value:?} is not this attachment's socket"
            ));
        }
    }
    Ok(())
}

/// The pairs of an OVSDB map (`["map", [[k, v], ...]]`) with string values.
fn ovsdb_map(value: &Value) -> Option<Vec<(&str, &str)>> {
    let [kind, pairs] = value.as_array()?.as_slice() else {
        return None;
    };
    if kind != "map" {
        return None;
    }
    pairs
        .as_array()?
        .iter()
        .map(|pair| Some((pair.get(0)?.as_str()?, pair.get(1)?.as_str()?)))
        .collect()
}

/// VPP messages a component may send: those the built-in engine uses
/// (names without their CRC; the CRC is the connection's business).
const VPP_MESSAGES: [&str; 16] = [
    "bridge_domain_add_del",
    "bridge_domain_add_del_v2",
    "bridge_domain_dump",
    "create_vhost_user_if",
    "create_vhost_user_if_v2",
    "delete_vhost_user_if",
    "memif_create",
    "memif_create_v2",
    "memif_delete",
    "memif_dump",
    "memif_socket_filename_add_del",
    "memif_socket_filename_add_del_v2",
    "memif_socket_filename_dump",
    "sw_interface_add_del_address",
    "sw_interface_set_flags",
    "sw_interface_set_l2_bridge",
];

/// Reads a component may do besides those above.
const VPP_DUMPS: [&str; 4] = [
    "sw_interface_vhost_user_dump",
    "sw_interface_dump",
    "control_ping",
    "show_version",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SOCKET: &str = "/run/c1/memif.sock";

    fn check(ops: Value) -> Result<(), String> {
        Scope::default().ovsdb_ops(ops.as_array().unwrap(), Some(SOCKET))
    }

    #[test]
    fn what_the_built_in_engine_writes_is_in_the_scope() {
        check(json!([
            {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["_uuid"]},
            {"op": "insert", "table": "Interface", "uuid-name": "i",
             "row": {"name": "p", "type": "dpdk", "external_ids": ["map", []],
                     "options": ["map", [["dpdk-devargs",
                       format!("net_memif00ab,role=server,id=0,socket={SOCKET},socket-abstract=no,secret=x")],
                       ["n_rxq", "2"]]]}},
            {"op": "insert", "table": "Port", "uuid-name": "p", "row": {"name": "p", "interfaces": ["named-uuid", "i"], "tag": 5}},
            {"op": "mutate", "table": "Bridge", "where": [], "mutations": [["ports", "insert", ["set", []]]]},
            {"op": "insert", "table": "Interface", "row": {"name": "v", "type": "dpdkvhostuserclient",
             "options": ["map", [["vhost-server-path", SOCKET]]]}},
            {"op": "delete", "table": "Port", "where": []},
            {"op": "wait", "table": "Interface", "timeout": 0, "where": [], "columns": ["name"], "until": "==", "rows": []},
        ]))
        .unwrap();
    }

    #[test]
    fn a_manager_pcap_devargs_another_socket_or_a_new_column_is_refused() {
        for (ops, expect) in [
            (
                json!([{"op": "insert", "table": "Manager", "row": {"target": "ptcp:6640"}}]),
                "table \"Manager\"",
            ),
            (
                json!([{"op": "insert", "table": "Interface", "row": {"name": "x", "type": "dpdk",
                "options": ["map", [["dpdk-devargs", "net_pcap0,rx_pcap=/etc/shadow"]]]}}]),
                "net_memif",
            ),
            (
                json!([{"op": "insert", "table": "Interface", "row": {"name": "x", "type": "dpdk",
                "options": ["map", [["dpdk-devargs", "net_memif0,socket=/run/openvswitch/db.sock"]]]}}]),
                "not this attachment's socket",
            ),
            (
                json!([{"op": "insert", "table": "Interface", "row": {"name": "x", "type": "internal"}}]),
                "type \"internal\"",
            ),
            (
                json!([{"op": "insert", "table": "Interface", "row": {"name": "x", "type": "dpdk",
                "options": ["map", [["n_rxq", "0"]]]}}]),
                "n_rxq \"0\" is not 1-16",
            ),
            (
                json!([{"op": "update", "table": "Interface", "where": [], "row": {"options": ["map", [["vhost-server-path", "/etc/x"]]]}}]),
                "vhost-server-path",
            ),
            (
                json!([{"op": "mutate", "table": "Open_vSwitch", "where": [], "mutations": [["manager_options", "insert", ["set", []]]]}]),
                "Open_vSwitch.manager_options",
            ),
            (
                json!([{"op": "update", "table": "Bridge", "where": [], "row": {"datapath_type": "system"}}]),
                "update of Bridge",
            ),
            (
                json!([{"op": "insert", "table": "Port", "row": {"name": "p", "trunks": ["set", [1]]}}]),
                "Port.trunks",
            ),
            (
                json!([{"op": "mutate", "table": "Interface", "where": [], "mutations": [
                    ["options", "insert", ["map", [["dpdk-devargs", "net_pcap0,rx_pcap=/etc/shadow"]]]]]}]),
                "mutate of Interface.options",
            ),
        ] {
            let err = check(ops.clone()).unwrap_err();
            assert!(
                err.starts_with("ovsdb scope: ") && err.contains(expect),
                "{ops}: {err}"
            );
        }
    }

    #[test]
    fn no_interface_may_be_made_without_an_attachment_socket() {
        let ops = json!([{"op": "insert", "table": "Interface", "row": {"name": "v",
            "type": "dpdkvhostuserclient", "options": ["map", [["vhost-server-path", SOCKET]]]}}]);
        assert!(Scope::default()
            .ovsdb_ops(ops.as_array().unwrap(), None)
            .is_err());
    }

    #[test]
    fn vpp_messages_outside_the_engines_are_refused() {
        let scope = Scope::default();
        scope.vpp_message("memif_create_v2_8c7de5f7").unwrap();
        scope.vpp_message("sw_interface_dump").unwrap();
        let err = scope.vpp_message("cli_inband_f8377302").unwrap_err();
        assert!(err.contains("\"cli_inband\""), "{err}");
        assert!(scope.vpp_message("exec_bbf0c23f").is_err());
    }

    /// What the node policy adds for an engine is in its scope, nothing
    /// else is, and the path checks hold whatever it adds.
    #[test]
    fn a_widening_adds_exactly_what_it_names() {
        let scope = Scope {
            wider: ScopeWidening {
                ovsdb_columns: [
                    ("QoS".to_string(), vec!["type".to_string()]),
                    ("Port".to_string(), vec!["qos".to_string()]),
                ]
                .into(),
                interface_types: vec!["internal".into()],
                interface_options: vec!["n_rxq".into()],
                vpp_messages: vec!["sw_interface_set_rx_mode".into()],
            },
        };
        let check = |ops: Value| scope.ovsdb_ops(ops.as_array().unwrap(), Some(SOCKET));
        check(json!([
            {"op": "insert", "table": "QoS", "row": {"type": "linux-htb"}},
            {"op": "update", "table": "Port", "where": [], "row": {"qos": ["set", []], "tag": 3}},
            {"op": "insert", "table": "Interface", "row": {"name": "i", "type": "internal",
             "options": ["map", [["n_rxq", "2"], ["vhost-server-path", SOCKET]]]}},
        ]))
        .unwrap();
        for (ops, expect) in [
            (
                json!([{"op": "insert", "table": "QoS", "row": {"other_config": ["map", []]}}]),
                "QoS.other_config",
            ),
            (
                json!([{"op": "insert", "table": "Manager", "row": {"target": "ptcp:6640"}}]),
                "table \"Manager\"",
            ),
            (
                json!([{"op": "insert", "table": "Interface", "row": {"name": "x", "type": "internal",
                "options": ["map", [["vhost-server-path", "/etc/x"]]]}}]),
                "vhost-server-path",
            ),
            (
                json!([{"op": "insert", "table": "Interface", "row": {"name": "x", "type": "dpdk",
                "options": ["map", [["dpdk-devargs", "net_pcap0,rx_pcap=/etc/shadow"]]]}}]),
                "net_memif",
            ),
        ] {
            let err = check(ops.clone()).unwrap_err();
            assert!(err.contains(expect), "{ops}: {err}");
        }
        scope
            .vpp_message("sw_interface_set_rx_mode_b04d1cfe")
            .unwrap();
        assert!(scope.vpp_message("cli_inband_f8377302").is_err());
        assert!(Scope::default()
            .vpp_message("sw_interface_set_rx_mode_b04d1cfe")
            .is_err());
    }
}
