//! The host's `vpp` capability end to end: a component talks to the VPP
//! test double through the plugin, journals a VPP request and a step of
//! its own as undo, and DEL replays both (the second through the engine's
//! `undo` export).

use integration_tests::{cni_call, component, run_plugin, Netns, CNI_PATH};
use serde_json::json;
use vpp_test_double::{Options, VppDouble};

#[test]
fn a_component_reaches_vpp_and_its_vpp_undo_runs_on_del() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let engine = component::build("vpp-probe-engine");
    let conf = json!({
        "cniVersion": "1.1.0", "type": "userspace", "name": "vpp-probe",
        "stateDir": dir.path().join("state"), "sharedDir": dir.path().join("shared"),
        "host": {"engine": engine, "iftype": "memif", "netType": "bridge",
                 "vpp": {"apiSocket": api}},
        "container": {"iftype": "memif", "memif": {"role": "slave"}}
    })
    .to_string();
    let ns = Netns::new();
    let call = |command: &str| {
        cni_call(
            command,
            "vppprobe00001",
            "net1",
            &ns.path(),
            conf.as_bytes(),
            &[],
        )
    };
    let pings = |d: &VppDouble| {
        d.calls()
            .iter()
            .filter(|c| c.as_str() == vpp_api::CONTROL_PING)
            .count()
    };

    call("ADD").ok();
    assert_eq!(pings(&double), 1, "ADD pinged once: {:?}", double.calls());
    assert_eq!(double.calls()[0], vpp_api::SOCKCLNT_CREATE);

    call("DEL").ok();
    // The engine's own undo step (it pings from its `undo` export) and the
    // journalled VPP request both ran.
    assert_eq!(
        pings(&double),
        3,
        "DEL replayed both steps: {:?}",
        double.calls()
    );
    assert!(
        !dir.path().join("state/attachments/vpp-probe").exists(),
        "the record is gone"
    );

    // With VPP gone, STATUS says the plugin is not available.
    drop(double);
    let status = run_plugin(
        &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)],
        conf.as_bytes(),
    );
    let err = status.err(50);
    assert!(
        err["details"].as_str().unwrap().contains("is VPP running"),
        "{err}"
    );
}

/// The `vpp` grant is scoped to the messages the built-in engine sends:
/// `cli_inband` (which runs any VPP CLI) is refused by the host before
/// the double sees it.
#[test]
fn a_component_cannot_send_vpp_a_message_outside_the_scope() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let engine = component::build("vpp-probe-engine");
    let conf = json!({
        "cniVersion": "1.1.0", "type": "userspace", "name": "vpp-cli",
        "stateDir": dir.path().join("state"), "sharedDir": dir.path().join("shared"),
        "host": {"engine": engine, "iftype": "memif", "netType": "bridge",
                 "vpp": {"apiSocket": api}, "probe": "cli"},
        "container": {"iftype": "memif", "memif": {"role": "slave"}}
    })
    .to_string();
    let ns = Netns::new();
    let run = cni_call(
        "ADD",
        "vppcli0000001",
        "net1",
        &ns.path(),
        conf.as_bytes(),
        &[],
    );
    let err = run.err(102);
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains("vpp scope") && msg.contains("\"cli_inband\""),
        "{err}"
    );
    assert!(
        !double.calls().iter().any(|c| c.starts_with("cli_inband")),
        "the double got cli_inband: {:?}",
        double.calls()
    );
    assert!(integration_tests::list(&dir.path().join("state/attachments/vpp-cli")).is_empty());
}
