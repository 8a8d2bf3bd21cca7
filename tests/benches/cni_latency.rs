//! What one attachment costs, side by side in one run on one private
//! OVS-DPDK, every side with host-local IPAM:
//!
//! - **ours**: the plugin's ADD then DEL;
//! - **Go**: the command sequence the Go Userspace CNI runs for the same
//!   attachment (its `cniovs`: find the bridge; on a new one add-br and
//!   `ovs-ofctl add-flow NORMAL`; add-port; find the port's mac; DEL:
//!   del-port, list-ports, del-br when empty), with host-local's ADD and
//!   DEL as it execs them. vhost-user only: the Go plugin has no memif on
//!   OVS (`cniovs` refuses any other iftype);
//! - **floor**: the same OVSDB work as one transaction each way, waiting
//!   for ovs-vswitchd to apply it, from an already running process (this
//!   one), plus the host-local execs. Nobody can do the attachment for
//!   less on this OVS.
//!
//! Rounds are interleaved (ours, Go, floor, in a rotating order) so that
//! a slow moment of the machine falls on every side alike; medians.
//! Then cold start: from just before the exec (the parent's
//! CLOCK_MONOTONIC) to the engine's first host call, as the plugin logs it
//! on the same clock, and the whole process.
//!
//!     cargo bench -p integration-tests --bench cni_latency
//!
//! Prints figures; asserts nothing about them (targets: README).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{run_plugin, Netns, Network, Ovs, CNI_PATH};
use serde_json::{json, Value};

const ROUNDS: usize = 40;
const COLD_ROUNDS: usize = 30;

fn median(samples: &mut [Duration]) -> Duration {
    percentile(samples, 0.5)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Memif,
    VhostClient,
    VhostServer,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Memif => "memif",
            Kind::VhostClient => "vhost-user, OVS client",
            Kind::VhostServer => "vhost-user, OVS server",
        }
    }

    fn network(self, ovs: &'static Ovs) -> Network {
        match self {
            Kind::Memif => Network::memif(ovs),
            Kind::VhostClient => Network::vhostuser(ovs, Some("client")),
            Kind::VhostServer => Network::vhostuser(ovs, Some("server")),
        }
    }

    /// The Interface row of port `port` (its socket in `dir`).
    fn interface_row(self, port: &str, dir: &Path) -> Value {
        let dir = dir.display();
        match self {
            Kind::Memif => json!({"name": port, "type": "dpdk", "options": ["map", [[
                "dpdk-devargs",
                format!("net_memif{},role=server,id=0,socket={dir}/{port}.sock,socket-abstract=no", port.replace('-', ""))
            ]]]}),
            Kind::VhostClient => json!({"name": port, "type": "dpdkvhostuserclient",
                "options": ["map", [["vhost-server-path", format!("{dir}/{port}")]]]}),
            // OVS makes the socket in its rundir, named as the port.
            Kind::VhostServer => json!({"name": port, "type": "dpdkvhostuser"}),
        }
    }

    /// What the Go plugin's add-port sets on the Interface.
    fn vsctl_interface_args(self, port: &str, dir: &Path) -> Vec<String> {
        match self {
            Kind::VhostClient => vec![
                "type=dpdkvhostuserclient".into(),
                format!("options:vhost-server-path={}/{port}", dir.display()),
            ],
            Kind::VhostServer => vec!["type=dpdkvhostuser".into()],
            Kind::Memif => unreachable!("the Go plugin has no memif on OVS"),
        }
    }
}

/// ADD and DEL wall times of one side, per round.
#[derive(Default)]
struct Times {
    add: Vec<Duration>,
    del: Vec<Duration>,
}

impl Times {
    /// Keeps round `round`'s times, except the warm-up's (round 0).
    fn push(&mut self, round: usize, add: Duration, del: Duration) {
        if round == 0 {
            return;
        }
        self.add.push(add);
        self.del.push(del);
    }

    /// Medians: (ADD, DEL, ADD+DEL).
    fn medians(&self) -> (f64, f64, f64) {
        let mut sum: Vec<Duration> = self
            .add
            .iter()
            .zip(&self.del)
            .map(|(a, d)| *a + *d)
            .collect();
        (
            ms(median(&mut self.add.clone())),
            ms(median(&mut self.del.clone())),
            ms(median(&mut sum)),
        )
    }
}

/// host-local, exec'd as a plugin execs its IPAM delegate.
struct HostLocal {
    stdin: Vec<u8>,
    netns: String,
}

impl HostLocal {
    fn for_network(net: &Network, netns: &Netns) -> HostLocal {
        let conf = json!({"cniVersion": "1.0.0", "name": net.name, "ipam": net.config["ipam"]});
        HostLocal {
            stdin: conf.to_string().into_bytes(),
            netns: netns.path(),
        }
    }

    fn call(&self, command: &str, id: &str) {
        use std::io::Write;
        let mut child = Command::new(Path::new(CNI_PATH).join("host-local"))
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", CNI_PATH)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("exec host-local");
        child.stdin.take().unwrap().write_all(&self.stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "host-local {command}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// One case: an iftype on an existing or a new bridge, its three sides.
struct Case {
    kind: Kind,
    new_bridge: bool,
    net: Network,
    ipam: HostLocal,
    ours: Times,
    go: Times,
    floor: Times,
    db: ovsdb_client::Client,
}

impl Case {
    fn new(ovs: &'static Ovs, ns: &Netns, kind: Kind, new_bridge: bool) -> Case {
        let net = kind.network(ovs);
        std::fs::create_dir_all(net.dir("sockets")).unwrap();
        if !new_bridge {
            // An existing bridge holds another port, as a node's does: the
            // Go plugin's DEL then leaves it (it deletes an empty bridge).
            ovs.add_netdev_bridge(&net.bridge);
            let keeper = format!("keep{}", &net.bridge[3..]);
            ovs.add_vhost_user_client_port(&net.bridge, &keeper, &net.dir("sockets/keeper"));
        }
        let ipam = HostLocal::for_network(&net, ns);
        let db = ovsdb_client::Client::connect(&ovs.db_socket(), Duration::from_secs(20))
            .expect("connect to ovsdb-server");
        Case {
            kind,
            new_bridge,
            net,
            ipam,
            ours: Times::default(),
            go: Times::default(),
            floor: Times::default(),
            db,
        }
    }

    fn label(&self) -> String {
        let bridge = if self.new_bridge {
            "new bridge"
        } else {
            "bridge exists"
        };
        format!("{}, {bridge}", self.kind.label())
    }

    fn round(&mut self, round: usize, ns: &Netns) {
        let go = self.kind != Kind::Memif;
        // A rotating order: no side always runs first after the others.
        for side in (0..3).map(|n| (n + round) % 3) {
            let id = format!("lat{side}r{round:03}{}", "0".repeat(8));
            match side {
                0 => {
                    let t = Instant::now();
                    self.net.add(&id, ns).ok();
                    let add = t.elapsed();
                    let t = Instant::now();
                    self.net.del(&id).ok();
                    self.ours.push(round, add, t.elapsed());
                }
                1 if go => {
                    let (add, del) = self.go_sequence(&id, round);
                    self.go.push(round, add, del);
                }
                2 => {
                    let (add, del) = self.floor(&id, round);
                    self.floor.push(round, add, del);
                }
                _ => {}
            }
        }
    }

    /// The Go plugin's commands (cniovs, ovsctrl.go) and host-local.
    fn go_sequence(&self, id: &str, round: usize) -> (Duration, Duration) {
        let ovs = self.net.ovs;
        let bridge = &self.net.bridge;
        let port = format!("go{round:03}-net1");
        let t = Instant::now();
        let found = ovs.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            "bridge",
            &format!("name={bridge}"),
        ]);
        if found.is_empty() {
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
        add.extend(
            self.kind
                .vsctl_interface_args(&port, &self.net.dir("sockets")),
        );
        ovs.vsctl(&add.iter().map(String::as_str).collect::<Vec<_>>());
        ovs.vsctl(&[
            "--bare",
            "--columns=mac",
            "find",
            "port",
            &format!("name={port}"),
        ]);
        self.ipam.call("ADD", id);
        let add = t.elapsed();
        let t = Instant::now();
        ovs.vsctl(&["--if-exists", "del-port", bridge, &port]);
        if ovs.vsctl(&["list-ports", bridge]).trim().is_empty() {
            ovs.vsctl(&["del-br", bridge]);
        }
        self.ipam.call("DEL", id);
        (add, t.elapsed())
    }

    /// One OVSDB transaction each way, waiting for ovs-vswitchd, over a
    /// connection already open; host-local exec'd.
    fn floor(&mut self, id: &str, round: usize) -> (Duration, Duration) {
        let port = format!("fl{round:03}-net1");
        let bridge = self.net.bridge.clone();
        let interface = self.kind.interface_row(&port, &self.net.dir("sockets"));
        let mut ops = vec![
            json!({"op": "insert", "table": "Interface", "row": interface, "uuid-name": "i"}),
            json!({"op": "insert", "table": "Port", "uuid-name": "p",
                   "row": {"name": port, "interfaces": ["named-uuid", "i"]}}),
        ];
        if self.new_bridge {
            ops.push(json!({"op": "insert", "table": "Bridge", "uuid-name": "b",
                "row": {"name": bridge, "datapath_type": "netdev", "ports": ["named-uuid", "p"]}}));
            ops.push(json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                "mutations": [["bridges", "insert", ["named-uuid", "b"]]]}));
        } else {
            ops.push(
                json!({"op": "mutate", "table": "Bridge", "where": [["name", "==", bridge]],
                "mutations": [["ports", "insert", ["named-uuid", "p"]]]}),
            );
        }
        let t = Instant::now();
        let results = self.db.transact_and_wait(&ops).expect("floor ADD");
        self.ipam.call("ADD", id);
        let add = t.elapsed();
        assert!(
            results.iter().all(|r| r.get("error").is_none()),
            "{results:?}"
        );
        let (table, mutation, uuid) = if self.new_bridge {
            ("Open_vSwitch", "bridges", results[2]["uuid"].clone())
        } else {
            ("Bridge", "ports", results[1]["uuid"].clone())
        };
        let scope = if self.new_bridge {
            json!([])
        } else {
            json!([["name", "==", bridge]])
        };
        // Port, Interface (and the Bridge) are not root tables: OVSDB
        // drops them once nothing refers to them.
        let ops = [json!({"op": "mutate", "table": table, "where": scope,
                          "mutations": [[mutation, "delete", uuid]]})];
        let t = Instant::now();
        let results = self.db.transact_and_wait(&ops).expect("floor DEL");
        self.ipam.call("DEL", id);
        let del = t.elapsed();
        assert_eq!(results[0]["count"], 1, "{results:?}");
        (add, del)
    }

    fn print(&self) {
        let (oa, od, o) = self.ours.medians();
        let (fa, fd, f) = self.floor.medians();
        let go = if self.go.add.is_empty() {
            "      -".to_string()
        } else {
            format!("{:>7.2}", self.go.medians().2)
        };
        let ratio = if self.go.add.is_empty() {
            "     -".to_string()
        } else {
            format!("{:>5.2}x", self.go.medians().2 / o)
        };
        println!(
            "{:<40} {o:>7.2} {go} {f:>7.2}   {ratio}   {:>6.2}    ADD {oa:.2}/{fa:.2}  DEL {od:.2}/{fd:.2}",
            self.label(),
            o - f,
        );
    }
}

/// The plugin's own CPU time per ADD and per DEL, as it logs it (debug);
/// separate rounds, as logging costs a little.
fn own_cpu(net: &Network, ns: &Netns) -> (f64, f64) {
    let mut conf = net.config.clone();
    conf["logLevel"] = json!("debug");
    let stdin = conf.to_string().into_bytes();
    let (mut add, mut del) = (Vec::new(), Vec::new());
    for round in 0..20 {
        let id = format!("cpu{round:03}{}", "0".repeat(10));
        let run = net.call("ADD", &id, "net1", &ns.path(), &stdin);
        add.push(Duration::from_micros(logged(
            &run.ok_stderr(),
            "own cost",
            "cpu_micros",
        )));
        let run = net.call("DEL", &id, "net1", "", &stdin);
        del.push(Duration::from_micros(logged(
            &run.ok_stderr(),
            "own cost",
            "cpu_micros",
        )));
    }
    (ms(median(&mut add)), ms(median(&mut del)))
}

trait OkStderr {
    fn ok_stderr(self) -> String;
}

impl OkStderr for integration_tests::Run {
    fn ok_stderr(self) -> String {
        let stderr = self.stderr.clone();
        self.ok();
        stderr
    }
}

/// The `field=` of the plugin's debug line that contains `event`.
fn logged(stderr: &str, event: &str, field: &str) -> u64 {
    stderr
        .lines()
        .find(|l| l.contains(event))
        .and_then(|l| l.split(&format!("{field}=")).nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("the plugin logs {event:?} with {field}: {stderr}"))
}

/// Cold start, warm component cache: from just before the exec to the
/// engine's first host call (STATUS), and the whole process.
fn cold_start(net: &Network) -> (Vec<Duration>, Vec<Duration>) {
    let mut conf = net.config.clone();
    conf["cniVersion"] = json!("1.1.0");
    conf["logLevel"] = json!("debug");
    let stdin = conf.to_string().into_bytes();
    let (mut first_call, mut whole) = (Vec::new(), Vec::new());
    for round in 0..=COLD_ROUNDS {
        let before_exec = monotonic_ns();
        let t = Instant::now();
        let run = run_plugin(&[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)], &stdin);
        let elapsed = t.elapsed();
        let at = logged(&run.stderr, "cold start: first host call", "monotonic_ns");
        run.ok();
        if round > 0 {
            first_call.push(Duration::from_nanos(at - before_exec));
            whole.push(elapsed);
        }
    }
    (first_call, whole)
}

/// Cold start of an ADD with three components (naming, IPAM chain,
/// engine): from just before the exec to all three loaded and admitted
/// and naming run; and the whole ADD.
fn three_components(net: &Network, ns: &Netns) -> (Vec<Duration>, Vec<Duration>) {
    let mut conf = net.config.clone();
    conf["logLevel"] = json!("debug");
    let stdin = conf.to_string().into_bytes();
    let (mut ready, mut whole) = (Vec::new(), Vec::new());
    for round in 0..=COLD_ROUNDS {
        let id = format!("three{round:08}");
        let before_exec = monotonic_ns();
        let t = Instant::now();
        let run = net.call("ADD", &id, "net1", &ns.path(), &stdin);
        let elapsed = t.elapsed();
        let at = logged(
            &run.stderr,
            "cold start: 3 components loaded",
            "monotonic_ns",
        );
        run.ok();
        net.call("DEL", &id, "net1", "", &stdin).ok();
        if round > 0 {
            ready.push(Duration::from_nanos(at - before_exec));
            whole.push(elapsed);
        }
    }
    (ready, whole)
}

fn main() {
    let ovs = Ovs::shared();
    let ns = Netns::new();
    // Cold start and CPU first, on a vSwitch that has seen nothing yet.
    let client = Kind::VhostClient.network(ovs);
    ovs.add_netdev_bridge(&client.bridge);
    let (cpu_add, cpu_del) = own_cpu(&client, &ns);
    let (mut first_call, mut whole) = cold_start(&client);
    let (mut ready, mut add) = three_components(&client, &ns);
    ovs.vsctl(&["del-br", &client.bridge]);

    let mut cases: Vec<Case> = [Kind::VhostClient, Kind::VhostServer, Kind::Memif]
        .into_iter()
        .flat_map(|kind| [false, true].map(|new_bridge| (kind, new_bridge)))
        .map(|(kind, new_bridge)| Case::new(ovs, &ns, kind, new_bridge))
        .collect();
    // Round 0 warms up (the first DPDK port starts the PMD thread).
    for round in 0..=ROUNDS {
        for case in &mut cases {
            case.round(round, &ns);
        }
    }
    println!(
        "ADD+DEL, median of {ROUNDS} interleaved rounds, ms; one private OVS-DPDK; host-local IPAM on every side"
    );
    println!(
        "{:<40} {:>7} {:>7} {:>7}   {:>6}   {:>6}    (ours/floor)",
        "case", "ours", "Go", "floor", "Go/ours", "ours-floor"
    );
    println!("{}", "-".repeat(118));
    for case in &cases {
        case.print();
    }
    println!(
        "\nthe plugin's own CPU time (vhost-user client, bridge exists): ADD {cpu_add:.2} ms, DEL {cpu_del:.2} ms (target: ADD at most 2 ms)"
    );
    println!(
        "cold start (warm cache), from exec: to the engine's first host call p50 {:.2} ms p90 {:.2} ms; \
         whole STATUS process p50 {:.2} ms",
        ms(median(&mut first_call)),
        ms(percentile(&mut first_call, 0.9)),
        ms(median(&mut whole)),
    );
    println!(
        "cold start (warm cache), ADD with 3 components (naming, IPAM chain, engine), from exec: all \
         three loaded and admitted, naming run p50 {:.2} ms p90 {:.2} ms; whole ADD p50 {:.2} ms",
        ms(median(&mut ready)),
        ms(percentile(&mut ready, 0.9)),
        ms(median(&mut add)),
    );
}
