//! The VPP engine against the VPP test double (VPP cannot be installed
//! here): the tutorial's config ADDs two containers (memif master on the
//! host, bridge domain 4, host-local), CHECK passes, and DEL leaves the
//! double exactly as it was — with `bridgeId`, with `bridgeName`, against
//! a VPP without the `_v2` messages, and with vhost-user in both modes.

use integration_tests::{cni_call, Netns};
use serde_json::{json, Value};
use vpp_test_double::{Options, State, VppDouble};

/// The tutorial's network config, plus where this test keeps its files.
fn tutorial_config(dir: &std::path::Path, api: &std::path::Path) -> Value {
    json!({
        "cniVersion": "0.3.1",
        "type": "userspace",
        "name": "memif-network",
        "host": {
            "engine": "vpp", "iftype": "memif", "netType": "bridge",
            "memif": {"role": "master", "mode": "ethernet"},
            "bridge": {"bridgeId": 4},
            "vpp": {"apiSocket": api}
        },
        "container": {
            "engine": "vpp", "iftype": "memif", "netType": "interface",
            "memif": {"role": "slave", "mode": "ethernet"}
        },
        "ipam": {"type": "host-local", "subnet": "192.168.210.0/24",
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": dir.join("ipam")},
        "stateDir": dir.join("state"),
        "sharedDir": dir.join("shared")
    })
}

fn call(command: &str, id: &str, ns: &Netns, conf: &Value) -> integration_tests::Run {
    cni_call(
        command,
        id,
        "net1",
        &ns.path(),
        conf.to_string().as_bytes(),
        &[],
    )
}

fn two_containers_add_check_del(options: Options, bridge: Value) {
    two_containers(options, bridge, None)
}

/// `vhost`: `Some(mode)` for vhost-user with the host (VPP) side's mode.
fn two_containers(options: Options, bridge: Value, vhost: Option<Value>) {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, options);
    let before = double.state();
    let mut conf = tutorial_config(dir.path(), &api);
    conf["host"]["bridge"] = bridge;
    if let Some(mode) = vhost {
        conf["host"]["iftype"] = json!("vhostuser");
        conf["host"]["vhost"] = json!({"mode": mode});
        conf["container"]["iftype"] = json!("vhostuser");
    }
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let ids = ["vppone000000001", "vpptwo000000001"];

    let r1 = call("ADD", ids[0], &ns1, &conf).ok();
    call("ADD", ids[1], &ns2, &conf).ok();
    assert_eq!(r1["cniVersion"], "0.3.1");
    assert_eq!(r1["ips"][0]["version"], "4");

    let state: State = double.state();
    let bd = &state.bridge_domains[&4];
    assert_eq!(bd.tag, "userspace-cni");
    assert!(bd.flood && bd.learn && bd.forward);
    assert_eq!(bd.members.len(), 2);
    if conf["host"]["iftype"] == "vhostuser" {
        let server = conf["host"]["vhost"]["mode"] != "client";
        assert_eq!(state.vhosts.len(), 2, "{state:?}");
        assert!(
            state
                .vhosts
                .values()
                .all(|v| v.admin_up && v.is_server == server),
            "{state:?}"
        );
    } else {
        assert_eq!(state.memifs.len(), 2, "{state:?}");
        assert!(
            state.memifs.values().all(|m| m.admin_up && m.role == 0),
            "master, admin up: {state:?}"
        );
        for id in ids {
            let socket = dir.path().join(format!(
                "shared/{}/memif-{}-net1.sock",
                &id[..12],
                &id[..12]
            ));
            let registered = state
                .sockets
                .values()
                .any(|s| *s == socket.display().to_string());
            assert!(
                registered,
                "socket {} registered: {state:?}",
                socket.display()
            );
        }
    }

    let mut check = conf.clone();
    check["cniVersion"] = json!("0.4.0");
    check["prevResult"] = r1.clone();
    call("CHECK", ids[0], &ns1, &check).ok();

    for (id, ns) in ids.iter().zip([&ns1, &ns2]) {
        call("DEL", id, ns, &conf).ok();
        call("DEL", id, ns, &conf).ok();
    }
    assert_eq!(double.state(), before, "DEL left the double as it was");
    assert!(!dir
        .path()
        .join("shared")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));
}

#[test]
fn tutorial_config_with_bridge_id() {
    two_containers_add_check_del(Options::default(), json!({"bridgeId": 4}));
}

#[test]
fn tutorial_config_with_bridge_name() {
    two_containers_add_check_del(Options::default(), json!({"bridgeName": "4"}));
}

#[test]
fn a_vpp_without_the_v2_messages_gets_the_older_ones() {
    let options = Options {
        without: vec![
            "memif_create_v2".into(),
            "memif_socket_filename_add_del_v2".into(),
            "bridge_domain_add_del_v2".into(),
        ],
        ..Options::default()
    };
    two_containers_add_check_del(options, json!({"bridgeId": 4}));
}

#[test]
fn vhost_user_with_vpp_as_server_and_as_client() {
    two_containers(
        Options::default(),
        json!({"bridgeId": 4}),
        Some(json!("server")),
    );
    two_containers(
        Options::default(),
        json!({"bridgeId": 4}),
        Some(json!("client")),
    );
}

#[test]
fn net_type_interface_puts_the_ipam_address_on_the_vpp_interface() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    let mut conf = tutorial_config(dir.path(), &api);
    conf["host"]["netType"] = json!("interface");
    conf["host"].as_object_mut().unwrap().remove("bridge");
    let ns = Netns::new();
    let result = call("ADD", "vppiface0000001", &ns, &conf).ok();
    let address = result["ips"][0]["address"].as_str().unwrap().to_string();
    let state = double.state();
    assert!(state.bridge_domains.is_empty(), "{state:?}");
    let (sw_if_index, _) = state.memifs.iter().next().expect("one memif");
    assert_eq!(
        state.addresses[sw_if_index],
        [address].into_iter().collect(),
        "{state:?}"
    );
    call("DEL", "vppiface0000001", &ns, &conf).ok();
    assert_eq!(double.state(), before);
}

#[test]
fn two_containers_ping_each_other_through_the_vpp_double() {
    use integration_tests::app::App;
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    let conf = tutorial_config(dir.path(), &api);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let ids = ["vppping0000001", "vpppong0000001"];
    let r1 = call("ADD", ids[0], &ns1, &conf).ok();
    call("ADD", ids[1], &ns2, &conf).ok();
    let peer = integration_tests::first_address(&r1);
    {
        let _a1 = App::start(&ns1, &dir.path().join(format!("shared/{}", &ids[0][..12])));
        let a2 = App::start(&ns2, &dir.path().join(format!("shared/{}", &ids[1][..12])));
        assert_eq!(
            a2.ping(&peer, 5),
            5,
            "5 echoes answered through the double's bridge domain 4"
        );
    }
    for (id, ns) in ids.iter().zip([&ns1, &ns2]) {
        call("DEL", id, ns, &conf).ok();
    }
    assert_eq!(double.state(), before);
}

#[test]
fn add_without_vpp_is_a_clear_error_that_leaves_nothing() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("no-vpp.sock");
    let conf = tutorial_config(dir.path(), &api);
    let ns = Netns::new();
    let err = call("ADD", "novpp000000001", &ns, &conf).err(11);
    assert!(
        err["details"].as_str().unwrap().contains("is VPP running"),
        "{err}"
    );
    assert!(!dir.path().join("shared/novpp0000000").exists());
    assert!(!dir.path().join("state/attachments/memif-network").exists());
    let ipam = dir.path().join("ipam/memif-network");
    for entry in std::fs::read_dir(&ipam).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!text.contains("novpp000000001"), "IPAM reservation left");
    }
}

#[test]
fn vpp_restarting_between_add_and_del_does_not_stop_del() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let conf = tutorial_config(dir.path(), &api);
    let ns = Netns::new();
    let double = VppDouble::start(&api, Options::default());
    call("ADD", "restart0000001", &ns, &conf).ok();
    assert_eq!(double.state().memifs.len(), 1);
    // VPP restarts: its interfaces, sockets and bridge domains are gone.
    drop(double);
    let double = VppDouble::start(&api, Options::default());
    let fresh = double.state();
    call("DEL", "restart0000001", &ns, &conf).ok();
    assert_eq!(double.state(), fresh);
    assert!(!dir.path().join("shared/restart00000").exists());
    assert!(!dir.path().join("state/attachments/memif-network").exists());
}

#[test]
fn memif_queues_ring_buffers_secret_and_mac_reach_vpp() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    let mut conf = tutorial_config(dir.path(), &api);
    let ns = Netns::new();

    // Out of range: refused before anything is touched.
    conf["host"]["memif"]["ringSize"] = json!(1000);
    let err = call("ADD", "tuned000000001", &ns, &conf).err(7);
    assert!(
        err["msg"].as_str().unwrap().contains("host.memif.ringSize"),
        "{err}"
    );
    assert_eq!(double.state(), before);

    conf["host"]["memif"] = json!({
        "role": "master", "mode": "ethernet", "rxQueues": 2, "txQueues": 3,
        "ringSize": 4096, "bufferSize": 9216, "secret": "s3cret"
    });
    conf["host"]["mac"] = json!("02:00:00:00:aa:01");
    call("ADD", "tuned000000001", &ns, &conf).ok();
    let state = double.state();
    let memif = state.memifs.values().next().expect("one memif");
    assert_eq!((memif.rx_queues, memif.tx_queues), (2, 3));
    assert_eq!((memif.ring_size, memif.buffer_size), (4096, 9216));
    assert_eq!(memif.secret, "s3cret");
    assert_eq!(memif.hw_addr, [2, 0, 0, 0, 0xaa, 1]);
    call("DEL", "tuned000000001", &ns, &conf).ok();
    assert_eq!(double.state(), before);
}

/// A VPP that answers garbage (noise, a 1 GiB frame header, replies cut
/// short, replies under unknown ids, replies under another message's id):
/// each ADD fails within a second with 110 naming the message, never a
/// hang or a panic; whatever the garbling VPP already made is found and
/// removed by a DEL against that same VPP once it answers sanely again.
#[test]
fn a_vpp_answering_garbage_is_a_clear_error_and_del_removes_what_it_made() {
    use vpp_test_double::Garbage;
    let mut left_something = Vec::new();
    for garbage in [
        Garbage::Noise,
        Garbage::HugeFrame,
        Garbage::ShortReplies,
        Garbage::WrongIds,
        Garbage::ForeignIds,
    ] {
        let dir = integration_tests::scratch_dir();
        let api = dir.path().join("api.sock");
        let conf = tutorial_config(dir.path(), &api);
        let ns = Netns::new();
        let id = "garbage0000001";
        let double = VppDouble::start(&api, Options::default());
        let before = double.state();
        double.set_garbage(Some(garbage));
        let started = std::time::Instant::now();
        let run = call("ADD", id, &ns, &conf);
        let took = started.elapsed();
        assert!(!run.success, "{garbage:?}: ADD succeeded: {}", run.stdout);
        let error = run.json();
        assert_eq!(error["code"], 110, "{garbage:?}: {error}");
        let msg = error["msg"].as_str().unwrap();
        assert!(
            ["memif_", "bridge_domain_", "sw_interface_", "control_ping"]
                .iter()
                .any(|m| msg.contains(m)),
            "{garbage:?}: the error names no message: {error}"
        );
        eprintln!("{garbage:?}: {error} ({took:?})");
        assert!(
            !run.stderr.contains("panicked"),
            "{garbage:?}: {}",
            run.stderr
        );
        assert!(
            took < std::time::Duration::from_secs(1),
            "{garbage:?}: ADD took {took:?}"
        );
        if double.state() != before {
            left_something.push(garbage);
        }
        // The same VPP, sane again: DEL finds what the garbled ADD made.
        double.set_garbage(None);
        call("DEL", id, &ns, &conf).ok();
        assert_eq!(double.state(), before, "{garbage:?}");
        assert!(
            !dir.path().join("shared/garbage00000").exists(),
            "{garbage:?}"
        );
        assert!(
            !dir.path()
                .join("state/attachments/memif-network")
                .join(id)
                .exists(),
            "{garbage:?}: record left"
        );
        integration_tests::assert_no_ipam_reservation(&dir.path().join("ipam/memif-network"), id);
    }
    assert!(
        !left_something.is_empty(),
        "no garbling VPP made anything before it was found out: the DEL half proved nothing"
    );
    eprintln!("garbled ADDs that left state in VPP for DEL: {left_something:?}");
}

/// A VPP that trickles its answers a byte each 100 ms (its handshake too)
/// cannot hold an ADD past the plugin's deadline for one VPP exchange
/// (10 s): ADD fails with 11 (try again later) naming the message, within
/// that bound and not a second per byte; DEL against the same VPP, sane
/// again, leaves it as it was.
#[test]
fn a_trickling_vpp_is_bounded_by_the_deadline() {
    use vpp_test_double::Garbage;
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let conf = tutorial_config(dir.path(), &api);
    let ns = Netns::new();
    let id = "trickle0000001";
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    double.set_garbage(Some(Garbage::Trickle));
    let started = std::time::Instant::now();
    let run = call("ADD", id, &ns, &conf);
    let took = started.elapsed();
    assert!(!run.success, "ADD succeeded: {}", run.stdout);
    let error = run.json();
    assert_eq!(error["code"], 11, "{error}");
    assert!(
        error.to_string().contains("within 10s"),
        "the error names the bound: {error}"
    );
    assert!(
        took >= std::time::Duration::from_secs(10) && took < std::time::Duration::from_secs(15),
        "ADD took {took:?}"
    );
    double.set_garbage(None);
    call("DEL", id, &ns, &conf).ok();
    assert_eq!(double.state(), before);
    integration_tests::assert_no_ipam_reservation(&dir.path().join("ipam/memif-network"), id);
}

/// `userspace show --json` for container `id`, under the tests' policy.
fn show(state: &std::path::Path, id: &str) -> Value {
    let out = std::process::Command::new(integration_tests::plugin_binary())
        .env_clear()
        .env(
            integration_tests::POLICY_ENV,
            integration_tests::test_policy(),
        )
        .args(["show", id, "--json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str::<Value>(&stdout).unwrap()[0].clone()
}

/// `userspace show` asks VPP (the double, whose dumps VPP's own client
/// reads back in `tests/vpp-papi`) for the memif or vhost-user interface
/// on the record's socket, its state and its bridge domain.
#[test]
fn show_joins_the_record_with_what_vpp_says_now() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    let memif = tutorial_config(dir.path(), &api);
    let mut vhost = memif.clone();
    vhost["host"]["iftype"] = json!("vhostuser");
    vhost["host"]["vhost"] = json!({"mode": "server"});
    vhost["container"]["iftype"] = json!("vhostuser");
    let (ns1, ns2) = (Netns::new(), Netns::new());
    call("ADD", "vppshowmemif001", &ns1, &memif).ok();
    call("ADD", "vppshowvhost001", &ns2, &vhost).ok();
    let state = dir.path().join("state");

    let shown = show(&state, "vppshowmemif001");
    let v = &shown["vswitch"];
    assert_eq!(v["kind"], "vpp", "{shown}");
    assert_eq!(v["memif"]["role"], "master", "{shown}");
    assert_eq!(v["interface"]["adminState"], "up", "{shown}");
    assert_eq!(v["bridgeDomain"]["id"], 4, "{shown}");
    assert_eq!(v["bridgeDomain"]["members"], 2, "{shown}");
    let sw_if_index = v["interface"]["swIfIndex"].as_u64().unwrap() as u32;
    assert!(double.state().memifs.contains_key(&sw_if_index), "{shown}");

    let shown = show(&state, "vppshowvhost001");
    let v = &shown["vswitch"];
    assert_eq!(v["vhostUser"]["isServer"], true, "{shown}");
    assert_eq!(v["bridgeDomain"]["id"], 4, "{shown}");
    let sw_if_index = v["interface"]["swIfIndex"].as_u64().unwrap() as u32;
    assert!(double.state().vhosts.contains_key(&sw_if_index), "{shown}");

    call("DEL", "vppshowmemif001", &ns1, &memif).ok();
    call("DEL", "vppshowvhost001", &ns2, &vhost).ok();
    assert_eq!(double.state(), before, "show changed nothing");
}
