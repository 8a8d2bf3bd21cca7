//! The tutorial's network config, byte for byte as the tutorial prints it,
//! against the VPP test double on VPP's default API socket, with every
//! default path (state dir, shared dir, host-local's data dir): two
//! containers are added, ping each other, and DEL leaves the double and
//! the disk as they were. Then the same with `"bridgeName": "4"`. VPP's
//! own Python client (`vpp_papi`) looks at the double in between, as the
//! seed looks at VPP with `vppctl show`: the two memifs (master, ethernet,
//! on the socket the container data names, admin up) in bridge domain 4;
//! after DEL none, and no socket id of ours registered.

use std::path::Path;

use integration_tests::app::App;
use integration_tests::{cni_call, Netns};
use serde_json::{json, Value};
use vpp_test_double::{papi, Options, VppDouble};

/// As printed in the tutorial (`/etc/alternate.net.d/90-userspace.conf`).
const TUTORIAL_CONFIG: &str = r#"{
       "cniVersion": "0.3.1",
       "type": "userspace",
       "name": "memif-network",
       "host": {
               "engine": "vpp",
               "iftype": "memif",
               "netType": "bridge",
               "memif": {
                       "role": "master",
                       "mode": "ethernet"
               },
               "bridge": {
                       "bridgeId": 4
               }
       },
       "container": {
               "engine": "vpp",
               "iftype": "memif",
               "netType": "interface",
               "memif": {
                       "role": "slave",
                       "mode": "ethernet"
               }
       },
       "ipam": {
               "type": "host-local",
               "subnet": "192.168.210.0/24",
               "routes": [
                       { "dst": "0.0.0.0/0" }
               ]
       }
}"#;

fn call(command: &str, id: &str, ns: &Netns, conf: &str) -> integration_tests::Run {
    cni_call(command, id, "net1", &ns.path(), conf.as_bytes(), &[])
}

fn run(conf: &str) {
    std::fs::create_dir_all("/run/vpp").unwrap();
    let api = Path::new("/run/vpp/api.sock");
    let double = VppDouble::start(api, Options::default());
    let defs = papi::definitions();
    let before = double.state();
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let ids = ["7utorial00000001", "8utorial00000002"];
    let r1 = call("ADD", ids[0], &ns1, conf).ok();
    let r2 = call("ADD", ids[1], &ns2, conf).ok();
    assert_eq!(r1["cniVersion"], "0.3.1");
    let peer = integration_tests::first_address(&r1);
    assert!(peer.starts_with("192.168.210."), "{r1}");
    // CHECK exists from 0.4.0 on: the runtime's CHECK carries its version.
    for (id, ns, result) in [(ids[0], &ns1, &r1), (ids[1], &ns2, &r2)] {
        let mut check: Value = serde_json::from_str(conf).unwrap();
        check["cniVersion"] = json!("0.4.0");
        check["prevResult"] = result.clone();
        call("CHECK", id, ns, &check.to_string()).ok();
    }

    // What the seed checks with `vppctl show interface / show mode / show
    // memif`, asked through VPP's own client.
    let seen = papi::show(defs.path(), api);
    let memifs = seen["memifs"].as_array().unwrap();
    assert_eq!(memifs.len(), 2, "{seen}");
    for id in ids {
        let shared = Path::new("/var/run/vpp").join(&id[..12]);
        let data: Value = serde_json::from_slice(
            &std::fs::read(shared.join(format!("configData-{}-net1.json", &id[..12]))).unwrap(),
        )
        .unwrap();
        let socket = shared.join(data["config"]["memif"]["socketfile"].as_str().unwrap());
        let memif = memifs
            .iter()
            .find(|m| m["socket"] == socket.to_str().unwrap())
            .unwrap_or_else(|| panic!("no memif on {} in {seen}", socket.display()));
        assert_eq!(memif["role"], "master", "{memif}");
        assert_eq!(memif["mode"], "ethernet", "{memif}");
        assert_eq!(memif["admin_up"], true, "{memif}");
        let interface = seen["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["sw_if_index"] == memif["sw_if_index"])
            .unwrap();
        assert_eq!(interface["bridge_domain"], 4, "{interface}");
        assert_eq!(interface["admin_up"], true, "{interface}");
    }
    let bd = &seen["bridge_domains"][0];
    assert_eq!(bd["bd_id"], 4);
    assert_eq!(bd["members"].as_array().unwrap().len(), 2);
    {
        let _a1 = App::start(&ns1, &Path::new("/var/run/vpp").join(&ids[0][..12]));
        let a2 = App::start(&ns2, &Path::new("/var/run/vpp").join(&ids[1][..12]));
        assert_eq!(a2.ping(&peer, 5), 5);
    }
    for (id, ns) in ids.iter().zip([&ns1, &ns2]) {
        call("DEL", id, ns, conf).ok();
        let shared = Path::new("/var/run/vpp").join(&id[..12]);
        assert!(!shared.exists(), "{} left", shared.display());
        let record = Path::new("/var/lib/cni/userspace/attachments/memif-network").join(id);
        assert!(!record.exists(), "{} left", record.display());
    }
    let reservations = Path::new("/var/lib/cni/networks/memif-network");
    for entry in std::fs::read_dir(reservations)
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !ids.iter().any(|id| text.contains(id)),
            "IPAM reservation {:?} left",
            entry.path()
        );
    }
    assert_eq!(double.state(), before, "the double is as it was");
    let seen = papi::show(defs.path(), api);
    assert_eq!(seen["memifs"], json!([]), "{seen}");
    assert_eq!(seen["bridge_domains"], json!([]), "{seen}");
    assert_eq!(
        seen["memif_sockets"],
        json!({"0": "/run/vpp/memif.sock"}),
        "only VPP's default socket id stays registered"
    );
}

#[test]
fn the_tutorial_config_byte_for_byte_then_with_bridge_name() {
    // One test: both runs use VPP's one default socket.
    let made_run_vpp = !Path::new("/run/vpp").exists();
    run(TUTORIAL_CONFIG);
    run(&TUTORIAL_CONFIG.replace(r#""bridgeId": 4"#, r#""bridgeName": "4""#));
    if made_run_vpp {
        std::fs::remove_dir("/run/vpp").unwrap();
    }
}
