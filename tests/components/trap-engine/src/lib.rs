//! A hostile engine for the tests: it does real, journalled work on OVS
//! (creates the configured bridge) and then panics, which traps. The host
//! must turn the trap into a CNI error and roll the bridge back.

use serde_json::json;
use userspace_cni_sdk::ovsdb::{self, uuid};
use userspace_cni_sdk::{export_engine, undo, AddResult, Attachment, CniError, Engine};

struct TrapEngine;

impl Engine for TrapEngine {
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
        panic!("trap-engine: deliberate trap after creating bridge {bridge}");
    }

    fn check(_att: Attachment) -> Result<(), CniError> {
        Ok(())
    }

    fn status(_host_config: String) -> Result<(), CniError> {
        Ok(())
    }
}

export_engine!(TrapEngine);
