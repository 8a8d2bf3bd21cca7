//! Ordinary programs on the interfaces the plugin made: `userspace-app up
//! --tap` gives each one to the kernel as a TAP device, and Debian's
//! iperf3 and ping(8), which know only kernel interfaces, run over memif
//! through OVS-DPDK.

use std::process::Command;

use integration_tests::app::App;
use integration_tests::{iperf3, Netns, Network, Ovs};
use serde_json::Value;

fn ip_json(ns: &Netns, args: &[&str]) -> Option<Value> {
    let out = Command::new("ip")
        .args(["-n", &ns.name, "-j"])
        .args(args)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn iperf3_and_ping_run_over_memif_through_ovs_on_tap_devices() {
    tap_pair(Network::memif(Ovs::shared()), "memif", "tapm", true);
}

#[test]
fn iperf3_and_ping_run_over_vhost_user_through_ovs_on_tap_devices() {
    tap_pair(
        Network::vhostuser(Ovs::shared(), Some("client")),
        "vhost-user",
        "tapv",
        false,
    );
}

/// Two containers on `net`, each `userspace-app up --tap`: the TAP is the
/// attachment's interface, ping(8) and iperf3 run over it, and it goes
/// away with the app. With `primary`, the first container already has a
/// default route (a pod's primary network, eth0), which stays.
fn tap_pair(net: Network, kind: &str, tag: &str, primary: bool) {
    let (ns1, ns2) = (Netns::new(), Netns::new());
    if primary {
        for args in [
            "link add eth0 type veth peer name eth0-peer",
            "addr add 192.0.2.10/24 dev eth0",
            "link set eth0 up",
            "link set eth0-peer up",
            "route add default via 192.0.2.1 dev eth0",
        ] {
            let status = Command::new("ip")
                .args(["-n", &ns1.name])
                .args(args.split(' '))
                .status()
                .unwrap();
            assert!(status.success(), "ip {args}");
        }
    }
    let (id1, id2) = (format!("{tag}one0000001"), format!("{tag}two0000001"));
    let r1 = net.add(&id1, &ns1).ok();
    net.add(&id2, &ns2).ok();
    let cidr1 = r1["ips"][0]["address"].as_str().unwrap();
    let address1 = cidr1.split('/').next().unwrap();
    {
        let _a1 = App::start_tap(&ns1, &net.dir(&format!("shared/{}", &id1[..12])));
        let a2 = App::start_tap(&ns2, &net.dir(&format!("shared/{}", &id2[..12])));

        // The TAP is the attachment's interface: its name, MAC, address
        // and the IPAM result's default route.
        let link = ip_json(&ns1, &["addr", "show", "dev", "net1"]).expect("a TAP named net1");
        assert_eq!(link[0]["address"], r1["interfaces"][0]["mac"], "{link}");
        let local = &link[0]["addr_info"][0];
        assert_eq!(
            format!(
                "{}/{}",
                local["local"].as_str().unwrap(),
                local["prefixlen"]
            ),
            cidr1,
            "{link}"
        );
        let flags = link[0]["flags"].as_array().unwrap();
        assert!(flags.contains(&"UP".into()), "{link}");
        assert!(flags.contains(&"MULTICAST".into()), "flags kept: {link}");
        let routes = ip_json(&ns1, &["route", "show", "default"]).unwrap();
        if primary {
            assert_eq!(routes.as_array().unwrap().len(), 1, "one default: {routes}");
            assert_eq!(routes[0]["dev"], "eth0", "the primary's stays: {routes}");
        } else {
            assert_eq!(routes[0]["dev"], "net1", "{routes}");
            assert_eq!(routes[0]["gateway"], r1["ips"][0]["gateway"], "{routes}");
        }

        // ping(8), the kernel's, both ARP and ICMP through OVS.
        let out = Command::new("ip")
            .args([
                "netns", "exec", &ns2.name, "ping", "-c", "3", "-i", "0.2", "-W", "2",
            ])
            .arg(address1)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(" 0% packet loss"),
            "{text}"
        );

        // iperf3 TCP, 2 s.
        let (bps, report) = iperf3::tcp(&ns1, &ns2, address1, 2);
        let bytes = report["end"]["sum_received"]["bytes"].as_u64().unwrap();
        assert!(bps > 0.0 && bytes > 1_000_000, "{report}");
        eprintln!("iperf3 over TAP over {kind}: {:.2} Gbit/s", bps / 1e9);

        // The app's own ping is the kernel's job here, and says so.
        let (code, text) = a2.command_status(&["ping", address1, "-c", "1"]);
        assert!(code == Some(2) && text.contains("ping(8)"), "{text}");

        // A TAP deleted under the app stops it (its container restarts
        // it) instead of leaving it spinning on a dead descriptor.
        let status = Command::new("ip")
            .args(["-n", &ns2.name, "link", "del", "net1"])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while a2.command(&["show"]).0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the app outlived its TAP"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    // The TAP went away with the app.
    assert!(
        ip_json(&ns1, &["link", "show", "dev", "net1"]).is_none(),
        "net1 outlived the app"
    );
    for id in [&id1, &id2] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}
