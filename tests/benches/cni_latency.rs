//! ADD / DEL latency of the plugin against the command sequence the Go
//! Userspace CNI forks for the same attachment, on one private OVS-DPDK,
//! in one run; and the plugin's cold start with a warm component cache.
//!
//!     cargo bench -p integration-tests --bench cni_latency
//!
//! Prints figures; asserts nothing about them (see the README for targets).

use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::{run_plugin, Netns, Network, Ovs, CNI_PATH};
use serde_json::json;

const ROUNDS: usize = 15;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Figures {
    add: Vec<Duration>,
    del: Vec<Duration>,
}

impl Figures {
    fn row(&mut self, label: &str) -> (f64, f64) {
        let (a50, a90) = (
            percentile(&mut self.add, 0.5),
            percentile(&mut self.add, 0.9),
        );
        let (d50, d90) = (
            percentile(&mut self.del, 0.5),
            percentile(&mut self.del, 0.9),
        );
        println!(
            "{label:<52} ADD p50 {:>7.2} ms  p90 {:>7.2} ms   DEL p50 {:>7.2} ms  p90 {:>7.2} ms",
            ms(a50),
            ms(a90),
            ms(d50),
            ms(d90)
        );
        (ms(a50), ms(d50))
    }
}

/// Our plugin: ADD then DEL, ROUNDS times, on a bridge that exists.
fn ours(net: &Network, ns: &Netns, tag: &str) -> Figures {
    let mut f = Figures {
        add: Vec::new(),
        del: Vec::new(),
    };
    for round in 0..=ROUNDS {
        let id = format!("{tag}{round:02}{}", "0".repeat(10));
        let t = Instant::now();
        net.add(&id, ns).ok();
        let add = t.elapsed();
        let t = Instant::now();
        net.del(&id).ok();
        let del = t.elapsed();
        // Round 0 warms up (the first DPDK port starts the PMD thread).
        if round > 0 {
            f.add.push(add);
            f.del.push(del);
        }
    }
    f
}

/// The Go plugin's sequence (cniovs): find the bridge (and on a new one
/// add-br, datapath netdev, ovs-ofctl add-flow NORMAL), add-port with the
/// interface options, read the port's mac; DEL: del-port, list-ports (and
/// del-br when empty).
fn go_sequence(
    ovs: &Ovs,
    bridge: &str,
    new_bridge: bool,
    iface_args: &dyn Fn(&str) -> Vec<String>,
) -> Figures {
    let mut f = Figures {
        add: Vec::new(),
        del: Vec::new(),
    };
    for round in 0..=ROUNDS {
        let port = format!("go{round:02}-net1");
        let t = Instant::now();
        ovs.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "bridge",
            &format!("name={bridge}"),
        ]);
        if new_bridge {
            ovs.add_netdev_bridge(bridge);
            let mgmt = format!("unix:{}/{bridge}.mgmt", ovs.dir.display());
            let status = Command::new("ovs-ofctl")
                .args(["add-flow", &mgmt, "actions=NORMAL"])
                .status()
                .unwrap();
            assert!(status.success(), "ovs-ofctl add-flow");
        }
        let mut add: Vec<String> = ["add-port", bridge, &port, "--", "set", "Interface", &port]
            .map(String::from)
            .to_vec();
        add.extend(iface_args(&port));
        ovs.vsctl(&add.iter().map(String::as_str).collect::<Vec<_>>());
        ovs.vsctl(&[
            "--bare",
            "--columns=mac",
            "find",
            "port",
            &format!("name={port}"),
        ]);
        let add = t.elapsed();
        let t = Instant::now();
        ovs.vsctl(&["--if-exists", "del-port", bridge, &port]);
        let left = ovs.vsctl(&["list-ports", bridge]);
        if new_bridge && left.trim().is_empty() {
            ovs.vsctl(&["del-br", bridge]);
        }
        let del = t.elapsed();
        if round > 0 {
            f.add.push(add);
            f.del.push(del);
        }
    }
    f
}

/// The `micros=` of the plugin's debug line that contains `event`.
fn logged_micros(stderr: &str, event: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.contains(event))
        .and_then(|l| l.split("micros=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the plugin logs {event:?}: {stderr}"))
}

/// Cold start: STATUS with a warm cache; the plugin logs how long after
/// exec its engine made the first host call. Also the whole process.
fn cold_start(net: &Network) -> (Vec<Duration>, Vec<Duration>) {
    let mut conf = net.config.clone();
    conf["cniVersion"] = json!("1.1.0");
    conf["logLevel"] = json!("debug");
    let stdin = conf.to_string().into_bytes();
    let (mut first_call, mut whole) = (Vec::new(), Vec::new());
    for round in 0..=30 {
        let t = Instant::now();
        let run = run_plugin(&[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)], &stdin);
        let elapsed = t.elapsed();
        run.ok();
        let micros = logged_micros(&run.stderr, "cold start: first host call");
        if round > 0 {
            first_call.push(Duration::from_micros(micros));
            whole.push(elapsed);
        }
    }
    (first_call, whole)
}

/// Cold start of an ADD that uses three components (naming, IPAM chain,
/// engine) with a warm cache: exec until all three are loaded and admitted
/// and naming has run, as the plugin logs it; and the whole ADD+DEL pair.
fn three_components(net: &Network, ns: &Netns) -> (Vec<Duration>, Vec<Duration>) {
    let mut conf = net.config.clone();
    conf["logLevel"] = json!("debug");
    let stdin = conf.to_string().into_bytes();
    let (mut ready, mut whole) = (Vec::new(), Vec::new());
    for round in 0..=30 {
        let id = format!("three{round:08}");
        let t = Instant::now();
        let run = net.call("ADD", &id, "net1", &ns.path(), &stdin);
        let elapsed = t.elapsed();
        run.ok();
        net.call("DEL", &id, "net1", "", &stdin).ok();
        let micros = logged_micros(&run.stderr, "cold start: 3 components loaded");
        if round > 0 {
            ready.push(Duration::from_micros(micros));
            whole.push(elapsed);
        }
    }
    (ready, whole)
}

fn compare(ovs: &'static Ovs, ns: &Netns, label: &str, mut net: Network, new_bridge: bool) -> f64 {
    // Compare the vSwitch work: IPAM is the same exec for both plugins.
    net.config.as_object_mut().unwrap().remove("ipam");
    if !new_bridge {
        ovs.add_netdev_bridge(&net.bridge);
    }
    let mut mine = ours(&net, ns, &label[..1]);
    let socket_dir = net.dir("go-sockets");
    std::fs::create_dir_all(&socket_dir).unwrap();
    let dir = socket_dir.display().to_string();
    let memif = net.config["host"]["iftype"] == "memif";
    let iface_args = move |port: &str| -> Vec<String> {
        if memif {
            vec![
                "type=dpdk".into(),
                format!("options:dpdk-devargs=net_memif_go{port},role=server,id=0,socket={dir}/{port}.sock,socket-abstract=no"),
            ]
        } else {
            vec![
                "type=dpdkvhostuserclient".into(),
                format!("options:vhost-server-path={dir}/{port}"),
            ]
        }
    };
    let mut go = go_sequence(ovs, &net.bridge, new_bridge, &iface_args);
    let (oa, od) = mine.row(&format!("{label}: userspace"));
    let (ga, gd) = go.row(&format!("{label}: ovs-vsctl sequence"));
    let speedup = (ga + gd) / (oa + od);
    println!("{:<52} ADD+DEL {speedup:.1}x faster\n", "");
    if !new_bridge {
        ovs.vsctl(&["del-br", &net.bridge]);
    }
    speedup
}

fn main() {
    let ovs = Ovs::shared();
    let ns = Netns::new();
    println!(
        "ADD/DEL latency, {ROUNDS} rounds each after one warm-up, one private OVS-DPDK, no IPAM"
    );
    println!("{}", "-".repeat(126));
    let results = [
        (
            "memif, bridge exists",
            compare(ovs, &ns, "memif, bridge exists", Network::memif(ovs), false),
        ),
        (
            "vhost-user client, bridge exists",
            compare(
                ovs,
                &ns,
                "vhost-user client, bridge exists",
                Network::vhostuser(ovs, Some("client")),
                false,
            ),
        ),
        (
            "vhost-user client, new bridge",
            compare(
                ovs,
                &ns,
                "vhost-user client, new bridge",
                Network::vhostuser(ovs, Some("client")),
                true,
            ),
        ),
    ];

    let net = Network::vhostuser(ovs, Some("client"));
    ovs.add_netdev_bridge(&net.bridge);
    let mut with_ipam = ours(&net, &ns, "i");
    with_ipam.row("vhost-user client + host-local IPAM: userspace");

    let (mut first_call, mut whole) = cold_start(&Network::memif(ovs));
    println!(
        "\ncold start (warm cache): exec to the engine's first host call p50 {:.2} ms p90 {:.2} ms; \
         whole STATUS process p50 {:.2} ms (target: under 3 ms)",
        ms(percentile(&mut first_call, 0.5)),
        ms(percentile(&mut first_call, 0.9)),
        ms(percentile(&mut whole, 0.5)),
    );
    let (mut ready, mut add) = three_components(&net, &ns);
    println!(
        "cold start (warm cache), ADD with 3 components (naming, IPAM chain, engine): exec to all \
         three loaded and admitted, naming run p50 {:.2} ms p90 {:.2} ms (target: under 4 ms); \
         whole ADD incl. host-local and OVS p50 {:.2} ms",
        ms(percentile(&mut ready, 0.5)),
        ms(percentile(&mut ready, 0.9)),
        ms(percentile(&mut add, 0.5)),
    );
    for (label, speedup) in results {
        println!("ADD+DEL vs the ovs-vsctl sequence (target 3x), {label}: {speedup:.1}x");
    }
}
