//! The SDK's example engine (`sdk/examples/tenant-vlans`), built with the
//! one command its docs give: what it adds to the OVS-DPDK engine. The
//! lifecycle and container-app suites also run against it
//! (`USERSPACE_TEST_ENGINE=tenant-vlans`, see tests/run.sh).

use integration_tests::{component, workspace, Netns, Network, Ovs};
use serde_json::json;

fn tenant_network() -> Network {
    let mut net = Network::memif(Ovs::shared());
    let engine = component::build_sdk_example("tenant-vlans");
    net.config["host"]["engine"] = json!(engine);
    net.config["host"]["tenantVlans"] = json!({"team-a": 101, "team-b": 102});
    net
}

fn add_in_namespace(net: &Network, id: &str, namespace: &str) -> integration_tests::Run {
    let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME=pod-{id}");
    net.add_with_args(id, &Netns::new(), &args)
}

fn tag_of(net: &Network, id: &str) -> String {
    net.ovs
        .vsctl(&["get", "Port", &format!("memif-{}-net1", &id[..12]), "tag"])
}

#[test]
fn each_namespace_gets_its_vlan_and_check_verifies_it() {
    let net = tenant_network();
    let a = add_in_namespace(&net, "tenantA00000001", "team-a").ok();
    add_in_namespace(&net, "tenantB00000001", "team-b").ok();
    add_in_namespace(&net, "tenantZ00000001", "team-z").ok();
    assert_eq!(tag_of(&net, "tenantA00000001"), "101");
    assert_eq!(tag_of(&net, "tenantB00000001"), "102");
    assert_eq!(
        tag_of(&net, "tenantZ00000001"),
        "[]",
        "no VLAN for an unlisted namespace"
    );

    // CHECK sees the tenant's tag from the recorded pod, and notices a change.
    net.check("tenantA00000001", &Netns::new(), &a).ok();
    net.ovs
        .vsctl(&["set", "Port", "memif-tenantA00000-net1", "tag=7"]);
    net.check("tenantA00000001", &Netns::new(), &a).err(111);

    for id in ["tenantA00000001", "tenantB00000001", "tenantZ00000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
    assert!(!net.ovs.bridge_exists(&net.bridge));
}

#[test]
fn a_namespace_without_a_vlan_is_refused_when_vlans_are_required() {
    let mut net = tenant_network();
    net.config["host"]["tenantVlansRequired"] = json!(true);
    let err = add_in_namespace(&net, "tenantQ00000001", "team-q").err(7);
    assert!(err["msg"].as_str().unwrap().contains("team-q"), "{err}");
    net.assert_nothing_left("tenantQ00000001");
    assert!(!net.ovs.bridge_exists(&net.bridge));
}

#[test]
fn the_example_engine_is_under_200_lines() {
    let source =
        std::fs::read_to_string(workspace().join("sdk/examples/tenant-vlans/src/lib.rs")).unwrap();
    let lines = source.lines().count();
    assert!(lines < 200, "the example is {lines} lines");
}
