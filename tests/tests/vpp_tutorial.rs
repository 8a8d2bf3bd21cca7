//! The tutorial's network config, byte for byte as the tutorial prints it,
//! against the VPP test double on VPP's default API socket, with every
//! default path (state dir, shared dir, host-local's data dir): two
//! containers are added, ping each other, and DEL leaves the double and
//! the disk as they were. Then the same with `"bridgeName": "4"`.

use std::path::Path;

use integration_tests::app::App;
use integration_tests::{cni_call, Netns};
use vpp_test_double::{Options, VppDouble};

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
    let double = VppDouble::start(Path::new("/run/vpp/api.sock"), Options::default());
    let before = double.state();
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let ids = ["7utorial00000001", "8utorial00000002"];
    let r1 = call("ADD", ids[0], &ns1, conf).ok();
    call("ADD", ids[1], &ns2, conf).ok();
    assert_eq!(r1["cniVersion"], "0.3.1");
    let peer = integration_tests::first_address(&r1);
    assert!(peer.starts_with("192.168.210."), "{r1}");
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
