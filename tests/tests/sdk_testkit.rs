//! The SDK's testkit: an engine's ADD recorded against the real OVS-DPDK
//! once, then replayed with no vSwitch; a replay fails on the first host
//! call that differs from the recording.

use integration_tests::{component, Ovs};
use serde_json::json;
use userspace_cni_testkit::{
    record_add, replay_add, Attachment, Cassette, Failure, HostCall, LiveHost,
};

fn attachment(ovs: &Ovs, bridge: &str, port: &str, dir: &std::path::Path) -> Attachment {
    Attachment {
        network: "testkit".into(),
        container_id: "testkit000001".into(),
        ifname: "net1".into(),
        netns: String::new(),
        host_config: json!({
            "engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
            "vhost": {"mode": "client"}, "bridge": {"bridgeName": bridge},
            "ovs": {"dbSocket": ovs.db_socket(), "vhostSockDir": ovs.dir},
        })
        .to_string(),
        socket_path: dir.join(port).display().to_string(),
        port_name: port.into(),
        mac: "02:00:00:00:00:42".into(),
        mtu: None,
        nonce: 42,
        ipam_result: None,
        pod: None,
    }
}

#[test]
fn an_add_recorded_against_ovs_replays_without_it_and_catches_changes() {
    let ovs = Ovs::shared();
    let engine = component::build_sdk_example("tenant-vlans");
    let dir = tempfile::tempdir().unwrap();
    let bridge = format!("brkit{}", std::process::id() % 100000);
    let att = attachment(ovs, &bridge, "kitport0", dir.path());

    let (added, cassette) = record_add(&engine, &att, LiveHost::ovsdb(&ovs.db_socket())).unwrap();
    assert_eq!(added.host_interface, "kitport0");
    assert_eq!(
        ovs.ports(&bridge),
        vec!["kitport0".to_string()],
        "recorded against the real OVS"
    );
    let transacts = cassette
        .calls
        .iter()
        .filter(|c| matches!(c, HostCall::OvsdbTransact { .. }))
        .count();
    let journalled = cassette
        .calls
        .iter()
        .filter(|c| matches!(c, HostCall::JournalAppend { .. }))
        .count();
    assert!(transacts >= 2 && journalled >= 2, "{}", cassette.to_json());
    ovs.vsctl(&["del-br", &bridge]);

    // Replayed from its JSON, with the bridge gone: the same answer.
    let cassette = Cassette::from_json(&cassette.to_json()).unwrap();
    let replayed = replay_add(&engine, &att, cassette.clone()).unwrap();
    assert_eq!(replayed.host_interface, added.host_interface);
    assert!(!ovs.bridge_exists(&bridge), "a replay touches no vSwitch");

    // The engine asked something else: the first differing call is named.
    let renamed = attachment(ovs, &bridge, "kitport9", dir.path());
    match replay_add(&engine, &renamed, cassette.clone()) {
        Err(Failure::Mismatch { recorded, made, .. }) => {
            assert!(
                recorded.contains("kitport0") && made.contains("kitport9"),
                "{recorded}\n{made}"
            )
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }

    // The vSwitch answered differently: the engine's own error comes back.
    let mut refused = cassette.clone();
    let last_transact = refused
        .calls
        .iter_mut()
        .rev()
        .find_map(|c| match c {
            HostCall::OvsdbTransact { reply, .. } => Some(reply),
            _ => None,
        })
        .unwrap();
    *last_transact = Err("constraint violation".into());
    assert!(matches!(
        replay_add(&engine, &att, refused),
        Err(Failure::Engine(_))
    ));

    // A recorded call the engine no longer makes is a failure too.
    let mut longer = cassette;
    longer.calls.push(HostCall::VppKnows {
        name_crc: "control_ping_51077d14".into(),
        reply: Ok(true),
    });
    assert!(matches!(
        replay_add(&engine, &att, longer),
        Err(Failure::Unused { .. })
    ));
}
