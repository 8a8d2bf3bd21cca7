//! The kubelet calls the plugin concurrently. 32 ADDs for different
//! containers on one bridge that does not exist yet, started at once: all
//! succeed with one bridge, 32 ports, distinct addresses and sockets; 32
//! concurrent DELs leave nothing. And ADD and DEL of one container racing
//! each other always end consistent: either attached, or nothing left.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use integration_tests::{Netns, Network, Ovs};
use serde_json::Value;

const CONTAINERS: usize = 32;

fn id(i: usize) -> String {
    format!("{i:04}concurrentxyz")
}

#[test]
fn thirty_two_adds_at_once_then_thirty_two_dels() {
    // vhost-user: memif ports are DPDK vdevs, capped at 32 by Debian's DPDK
    // for the whole OVS this binary shares.
    let net = Arc::new(Network::vhostuser(Ovs::shared(), Some("client")));
    assert!(!net.ovs.bridge_exists(&net.bridge));
    let ns = Arc::new(Netns::new());
    let start = Arc::new(Barrier::new(CONTAINERS));
    let results: Vec<Value> = (0..CONTAINERS)
        .map(|i| {
            let (net, ns, start) = (net.clone(), ns.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                net.add(&id(i), &ns).ok()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("ADD thread"))
        .collect();

    assert_eq!(
        net.ovs.ports(&net.bridge).len(),
        CONTAINERS,
        "one bridge, 32 ports"
    );
    let addresses: BTreeSet<&str> = results
        .iter()
        .map(|r| r["ips"][0]["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), CONTAINERS, "distinct addresses");
    let sockets: BTreeSet<String> = (0..CONTAINERS)
        .map(|i| net.dir("shared").join(&id(i)[..12]).display().to_string())
        .filter(|d| std::path::Path::new(d).is_dir())
        .collect();
    assert_eq!(sockets.len(), CONTAINERS, "distinct socket dirs");

    let start = Arc::new(Barrier::new(CONTAINERS));
    let dels: Vec<_> = (0..CONTAINERS)
        .map(|i| {
            let (net, start) = (net.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                net.del(&id(i)).ok();
            })
        })
        .collect();
    for t in dels {
        t.join().expect("DEL thread");
    }
    for i in 0..CONTAINERS {
        net.assert_nothing_left(&id(i));
    }
    assert!(
        !net.ovs.bridge_exists(&net.bridge),
        "the last DEL removed the bridge"
    );
}

#[test]
fn add_and_del_of_one_container_racing_end_consistent() {
    let net = Arc::new(Network::vhostuser(Ovs::shared(), Some("client")));
    let ns = Arc::new(Netns::new());
    for round in 0..10 {
        let container = format!("racing{round:04}abcdef");
        let start = Arc::new(Barrier::new(2));
        let add = {
            let (net, ns, start, container) =
                (net.clone(), ns.clone(), start.clone(), container.clone());
            std::thread::spawn(move || {
                start.wait();
                net.add(&container, &ns).success
            })
        };
        let del = {
            let (net, start, container) = (net.clone(), start.clone(), container.clone());
            std::thread::spawn(move || {
                start.wait();
                net.del(&container).success
            })
        };
        assert!(add.join().unwrap(), "ADD failed in round {round}");
        assert!(del.join().unwrap(), "DEL failed in round {round}");
        // Whichever ran second decided: attached with its port, or nothing.
        let ports = net.ovs.ports(&net.bridge);
        if ports.is_empty() {
            net.assert_nothing_left(&container);
        } else {
            assert_eq!(ports.len(), 1, "{ports:?}");
            net.del(&container).ok();
            net.assert_nothing_left(&container);
        }
    }
    assert!(!net.ovs.bridge_exists(&net.bridge));
}
