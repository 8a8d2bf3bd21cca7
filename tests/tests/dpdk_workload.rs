//! Unmodified DPDK apps as the container's workload: Debian's
//! `dpdk-testpmd` on the interfaces the plugin made on the private
//! OVS-DPDK, its EAL arguments only what `userspace-app dpdk-args` prints
//! from the container data, plus `--no-pci`.
//!
//! Over memif a DPDK app on OVS needs as many queue pairs as OVS has tx
//! queues (README, "DPDK apps in the container"): two with one PMD
//! thread, which the NAD sets.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use integration_tests::app::App;
use integration_tests::testpmd::{rx_pps, TestPmd};
use integration_tests::{app_binary, Netns, Network, Ovs};
use serde_json::Value;

/// One test at a time on this binary's OVS (each testpmd takes a core).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn address(result: &Value) -> String {
    let cidr = result["ips"][0]["address"].as_str().unwrap();
    cidr.split('/').next().unwrap().to_string()
}

/// Pings `ip` from `app` once a second until a reply comes (testpmd is
/// ready when it answers), within 20 s; then the count that must all
/// come back.
fn ping_until_answered(app: &App, ip: &str, testpmd: &TestPmd, count: u16) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !app.command(&["ping", ip, "-c", "1", "-W", "1"]).0 {
        assert!(
            Instant::now() < deadline,
            "testpmd never answered: {}",
            testpmd.log()
        );
    }
    app.ping(ip, count)
}

#[test]
fn testpmd_answers_ping_over_memif_through_ovs_with_only_dpdk_args() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared()).with_memif_queue_pairs(2);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let r1 = net.add("pmdmemifA000001", &ns1).ok();
    net.add("pmdmemifB000001", &ns2).ok();
    {
        // examples/kubernetes/pod-dpdk-testpmd.yaml's own app arguments.
        let testpmd = TestPmd::start(
            &ns1,
            &net.dir("shared/pmdmemifA000"),
            &[
                "--forward-mode=icmpecho",
                "--total-num-mbufs=16384",
                "--stats-period=60",
            ],
        );
        let app = App::start(&ns2, &net.dir("shared/pmdmemifB000"));
        assert_eq!(
            ping_until_answered(&app, &address(&r1), &testpmd, 5),
            5,
            "{}",
            testpmd.log()
        );
    }
    for id in ["pmdmemifA000001", "pmdmemifB000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}

/// testpmd `txonly` in one container, `rxonly` in the other, both on
/// memif through OVS-DPDK: the receiver counts frames every second.
#[test]
fn testpmd_txonly_reaches_testpmd_rxonly_over_memif_through_ovs() {
    let _serial = serial();
    let ovs = Ovs::shared();
    let net = Network::memif(ovs).with_memif_queue_pairs(2);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    net.add("pmdtxonly000001", &ns1).ok();
    let rx = net.add("pmdrxonly000001", &ns2).ok();
    let rx_mac = rx["interfaces"][0]["mac"].as_str().unwrap().to_string();
    // rxonly sends nothing for OVS to learn its MAC from: tell it.
    ovs.fdb_add(&net.bridge, "memif-pmdrxonly000-net1", &rx_mac);
    let (pps, log) = integration_tests::testpmd::txonly_to_rxonly(
        (&ns1, &net.dir("shared/pmdtxonly000")),
        (&ns2, &net.dir("shared/pmdrxonly000")),
        &rx_mac,
        64,
        3,
    );
    assert!(pps > 0, "{log}");
    assert!(
        rx_pps(&log).iter().filter(|&&r| r > 0).count() >= 3,
        "{log}"
    );
    for id in ["pmdtxonly000001", "pmdrxonly000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}

#[test]
fn testpmd_answers_ping_over_vhost_user_through_ovs_in_both_modes() {
    let _serial = serial();
    // "client": OVS connects to testpmd's virtio_user server; unset: OVS
    // is the server and testpmd connects.
    for (mode, tag) in [(Some("client"), "pvc"), (None, "pvs")] {
        let net = Network::vhostuser(Ovs::shared(), mode);
        let (ns1, ns2) = (Netns::new(), Netns::new());
        let (id1, id2) = (format!("{tag}one000000001"), format!("{tag}two000000001"));
        let r1 = net.add(&id1, &ns1).ok();
        net.add(&id2, &ns2).ok();
        {
            let testpmd = TestPmd::start(
                &ns1,
                &net.dir(&format!("shared/{}", &id1[..12])),
                &["--forward-mode=icmpecho"],
            );
            let app = App::start(&ns2, &net.dir(&format!("shared/{}", &id2[..12])));
            assert_eq!(
                ping_until_answered(&app, &address(&r1), &testpmd, 5),
                5,
                "{mode:?}: {}",
                testpmd.log()
            );
        }
        for id in [&id1, &id2] {
            net.del(id).ok();
            net.assert_nothing_left(id);
        }
    }
}

/// Bad container data: exit 2, a message naming what is wrong, and
/// nothing on stdout (never a half-formed argument list).
#[test]
fn dpdk_args_refuses_bad_container_data_with_exit_2_and_prints_nothing() {
    let good = serde_json::json!({
        "containerId": "badargs000001", "ifName": "net1", "name": "n",
        "config": {"iftype": "memif", "memif": {"role": "slave", "socketfile": "m.sock"}},
        "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:07"}],
                     "ips": [{"address": "10.9.0.2/24", "interface": 0}]}
    });
    let with = |pointer: &str, value: Value| {
        let mut doc = good.clone();
        *doc.pointer_mut(pointer).unwrap() = value;
        doc
    };
    let cases: [(&str, Option<Value>, Option<&str>, &str); 6] = [
        ("missing socket", Some(good.clone()), None, "no socket at"),
        (
            "unknown iftype",
            Some(with("/config/iftype", "tap".into())),
            None,
            "iftype \"tap\" is not memif or vhostuser",
        ),
        (
            "a path outside the mapped dir",
            Some(with(
                "/config/memif/socketfile",
                "../../run/openvswitch/db.sock".into(),
            )),
            None,
            "not a file name in the mapped dir",
        ),
        (
            "devargs smuggled in a file name",
            Some(with(
                "/config/memif/socketfile",
                "m.sock,role=server".into(),
            )),
            None,
            "cannot be a DPDK devargs value",
        ),
        (
            "malformed annotations",
            None,
            Some("userspace/configuration-data=[not quoted]\n"),
            "not a quoted string",
        ),
        (
            "annotations whose data is not an array",
            None,
            Some("userspace/configuration-data=\"{}\"\n"),
            "is not a JSON array",
        ),
    ];
    for (what, doc, annotations, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        if let Some(doc) = doc {
            std::fs::write(
                dir.path().join("configData-badargs00000-net1.json"),
                doc.to_string(),
            )
            .unwrap();
        }
        let annotations_file = dir.path().join("annotations");
        if let Some(text) = annotations {
            std::fs::write(&annotations_file, text).unwrap();
        }
        let out = Command::new(app_binary())
            .arg("--dir")
            .arg(dir.path())
            .arg("--annotations")
            .arg(&annotations_file)
            .arg("dpdk-args")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
        assert!(stderr.contains(expect), "{what}: {stderr}");
    }
}
