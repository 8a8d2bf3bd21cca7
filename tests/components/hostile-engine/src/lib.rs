//! A hostile engine for the tests. It does real, journalled work on OVS
//! (creates the configured bridge), then misbehaves as `host.hostile`
//! says: `trap` (panics, which traps), `loop` (spins forever), `wait`
//! (sleeps forever in WASI poll, host code; built for wasm32-wasip2),
//! `alloc` (allocates 1 GiB), `move` (asks the host to move a file of its choice,
//! as root), `remove` (journals the removal of a file of its choice), or
//! goes outside the `ovsdb` scope: `manager`, `pcap`, `undo-manager`,
//! `qos` (a table a node policy may add to one engine's scope).
//! The host must refuse or stop it with a CNI error and roll the bridge
//! back.

use serde_json::json;
use userspace_cni_sdk::ovsdb::{self, uuid};
use userspace_cni_sdk::{export_engine, undo, AddResult, Attachment, CniError, Engine};

struct HostileEngine;

/// Waits on a WASI timer (`monotonic-clock` subscribe + `poll`): the
/// component is then in host code, where an epoch deadline cannot reach.
#[cfg(target_os = "wasi")]
fn wait_forever() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[cfg(not(target_os = "wasi"))]
fn wait_forever() -> ! {
    panic!("hostile-engine: `wait` needs the wasm32-wasip2 build")
}

impl Engine for HostileEngine {
    fn add(att: Attachment) -> Result<AddResult, CniError> {
        let cfg: serde_json::Value = serde_json::from_str(&att.host_config).unwrap();
        let bridge = cfg["bridge"]["bridgeName"].as_str().unwrap().to_string();
        let bridge_uuid = "6b8a1f2e-0000-4000-8000-000000000001";
        let undo_ops = json!([ovsdb::mutate(
            "Open_vSwitch",
            vec![],
            "bridges",
            "delete",
            ovsdb::set(vec![uuid(bridge_uuid)])
        )]);
        undo::record_ovsdb("remove the bridge", &undo_ops, false, false)?;
        ovsdb::transact(
            "create bridge",
            &[
                ovsdb::insert_with_uuid(
                    "Bridge",
                    bridge_uuid,
                    json!({"name": bridge, "datapath_type": "netdev"}),
                ),
                ovsdb::mutate(
                    "Open_vSwitch",
                    vec![],
                    "bridges",
                    "insert",
                    ovsdb::set(vec![uuid(bridge_uuid)]),
                ),
            ],
            false,
        )?;
        let text = |key: &str| cfg[key].as_str().unwrap_or_default().to_string();
        match cfg["hostile"].as_str() {
            // Asks the host to move `hostileFrom` to `hostileTo` (default:
            // its own socket path), as root.
            Some("move") => {
                let to = match text("hostileTo") {
                    to if to.is_empty() => att.socket_path.clone(),
                    to => to,
                };
                Ok(AddResult {
                    host_interface: bridge,
                    socket_moves: vec![(text("hostileFrom"), to)],
                })
            }
            // Journals the removal of `hostileFrom`, then traps so that
            // the host replays the journal.
            Some("remove") => {
                undo::record_remove_file("remove a file", &text("hostileFrom"))?;
                panic!("hostile-engine: trap after journalling a removal")
            }
            // Outside the `ovsdb` scope: a Manager (ovs-vswitchd would
            // listen on TCP), a pcap device (it would read a host file),
            // and the same Manager journalled as an "undo" for DEL to run.
            Some("manager") => {
                ovsdb::transact(
                    "add a manager",
                    &[ovsdb::insert_with_uuid(
                        "Manager",
                        "6b8a1f2e-0000-4000-8000-000000000002",
                        json!({"target": "ptcp:6640"}),
                    )],
                    false,
                )?;
                panic!("hostile-engine: the host let a Manager through")
            }
            Some("pcap") => {
                ovsdb::transact(
                    "add a pcap port",
                    &[ovsdb::insert_with_uuid(
                        "Interface",
                        "6b8a1f2e-0000-4000-8000-000000000003",
                        json!({"name": "pcap0", "type": "dpdk",
                               "options": ovsdb::map([("dpdk-devargs", "net_pcap0,rx_pcap=/etc/shadow")])}),
                    )],
                    false,
                )?;
                panic!("hostile-engine: the host let a pcap device through")
            }
            Some("undo-manager") => {
                let ops = json!([ovsdb::insert_with_uuid(
                    "Manager",
                    "6b8a1f2e-0000-4000-8000-000000000004",
                    json!({"target": "ptcp:6641"}),
                )]);
                undo::record_ovsdb("an undo that adds a manager", &ops, false, false)?;
                panic!("hostile-engine: the host journalled a Manager")
            }
            Some("loop") => loop {
                std::hint::black_box(0u64);
            },
            Some("wait") => wait_forever(),
            // A QoS row, referenced by nothing (ovsdb-server drops it at
            // commit): outside the default scope, inside a widened one.
            Some("qos") => {
                ovsdb::transact(
                    "add a QoS row",
                    &[ovsdb::insert_with_uuid(
                        "QoS",
                        "6b8a1f2e-0000-4000-8000-000000000005",
                        json!({"type": "linux-htb"}),
                    )],
                    false,
                )?;
                // An error, not a trap: its message reaches the test.
                Err(CniError::new(
                    userspace_cni_sdk::codes::COMPONENT_FAILURE,
                    "hostile-engine: the host let a QoS row through",
                    "",
                ))
            }
            Some("alloc") => {
                let big = vec![1u8; 1 << 30];
                std::hint::black_box(&big);
                panic!("allocated 1 GiB")
            }
            _ => panic!("hostile-engine: deliberate trap after creating bridge {bridge}"),
        }
    }

    fn check(_att: Attachment) -> Result<(), CniError> {
        Ok(())
    }

    fn status(_host_config: String) -> Result<(), CniError> {
        Ok(())
    }

    fn undo(_att: Attachment, _step: String) -> Result<(), CniError> {
        Ok(())
    }
}

export_engine!(HostileEngine);
