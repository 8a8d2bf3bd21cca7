//! Failures in the middle of an ADD leave nothing behind: IPAM exhausted,
//! ovs-vswitchd refusing a port, ovsdb-server stopped mid-run, a trap in
//! the engine. These tests stop and start this binary's OVS, so they run
//! one at a time.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use integration_tests::component::{self, Bloat};
use integration_tests::{run_plugin, wait_for, Netns, Network, Ovs, CNI_PATH};
use serde_json::json;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn ipam_exhausted_rolls_back_the_second_add() {
    let _serial = serial();
    let mut net = Network::vhostuser(Ovs::shared(), Some("client"));
    // A /30 holds one address besides the gateway.
    net.config["ipam"]["subnet"] = json!("10.78.0.0/30");
    let (ns1, ns2) = (Netns::new(), Netns::new());
    net.add("exhaustA00001", &ns1).ok();
    let err = net.add("exhaustB00001", &ns2).err(101);
    assert!(err["msg"].as_str().unwrap().contains("host-local"), "{err}");
    net.assert_nothing_left("exhaustB00001");
    assert_eq!(net.ovs.ports(&net.bridge).len(), 1);
    net.del("exhaustA00001").ok();
    net.assert_nothing_left("exhaustA00001");
    assert!(!net.ovs.bridge_exists(&net.bridge));
}

#[test]
fn vswitchd_refusing_the_33rd_memif_port_is_a_clear_error_with_nothing_left() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    let ids: Vec<String> = (0..33).map(|i| format!("limit{i:02}xxxxxxx")).collect();
    let mut added = Vec::new();
    let mut refused = None;
    for id in &ids {
        let run = net.add(id, &ns);
        if run.success {
            added.push(id.clone());
        } else {
            refused = Some((id.clone(), run.err(110)));
            break;
        }
    }
    let (id, err) = refused.expect("Debian's DPDK allows at most 32 DPDK ports");
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains("ovs-vswitchd rejected port") && msg.contains("32 DPDK ports"),
        "{err}"
    );
    assert_eq!(added.len(), 32, "the first 32 memif ports are accepted");
    net.assert_nothing_left(&id);
    assert_eq!(net.ovs.ports(&net.bridge).len(), added.len());
    for id in &added {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
    assert!(!net.ovs.bridge_exists(&net.bridge));
}

#[test]
fn ovsdb_server_stopped_mid_add_leaves_nothing() {
    let _serial = serial();
    let ovs = Ovs::shared();
    let mut net = Network::vhostuser(ovs, Some("client"));
    // An IPAM plugin that stops ovsdb-server on ADD, then runs host-local:
    // the engine's first OVSDB call finds the server gone.
    let bin = net.dir("cni-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("stop-ovsdb-ipam");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && {} stop-ovsdb {} >&2\nexec {CNI_PATH}/host-local\n",
            integration_tests::workspace().join("tests/support/ovs-dpdk.sh").display(),
            ovs.dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(format!("{CNI_PATH}/host-local"), bin.join("host-local")).unwrap();
    net.config["ipam"]["type"] = json!("stop-ovsdb-ipam");
    let ns = Netns::new();
    let path = format!("{}:{CNI_PATH}", bin.display());
    let run = run_plugin(
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "ovsdbgone0001"),
            ("CNI_IFNAME", "net1"),
            ("CNI_NETNS", &ns.path()),
            ("CNI_PATH", &path),
        ],
        &net.stdin(),
    );
    let err = run.err(11);
    assert!(
        err["msg"].as_str().unwrap().contains("unreachable"),
        "{err}"
    );
    ovs.run_script("start-ovsdb");
    net.assert_nothing_left("ovsdbgone0001");
    assert!(!ovs.bridge_exists(&net.bridge));
}

#[test]
fn status_with_ovsdb_server_stopped_is_50() {
    let _serial = serial();
    let ovs = Ovs::shared();
    let mut net = Network::memif(ovs);
    net.config["cniVersion"] = json!("1.1.0");
    let status = || {
        run_plugin(
            &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", CNI_PATH)],
            &net.stdin(),
        )
    };
    status().ok();
    ovs.run_script("stop-ovsdb");
    let err = status().err(50);
    ovs.run_script("start-ovsdb");
    assert!(
        err["details"].as_str().unwrap().contains("ovsdb-server"),
        "{err}"
    );
    status().ok();
}

/// Runs the hostile engine in `mode`; returns the CNI error's message.
fn hostile_add(mode: &str, id: &str) -> String {
    let net = hostile_network(&component::build("hostile-engine"), mode);
    hostile_add_on(&net, id)
}

/// A memif network whose engine is `engine` in `mode`, with tight limits.
fn hostile_network(engine: &Path, mode: &str) -> Network {
    let mut net = Network::memif(Ovs::shared());
    net.config["host"]["engine"] = json!(engine.display().to_string());
    net.config["host"]["hostile"] = json!(mode);
    net.config["componentLimits"] = json!({"timeoutMs": 500, "memoryMiB": 32});
    net
}

/// ADD on a hostile network: error 102, its bridge rolled back, nothing
/// left. Returns the error's message.
fn hostile_add_on(net: &Network, id: &str) -> String {
    let ns = Netns::new();
    let err = net.add(id, &ns).err(102);
    assert!(
        !net.ovs.bridge_exists(&net.bridge),
        "the bridge the engine made is rolled back"
    );
    net.assert_nothing_left(id);
    err["msg"].as_str().unwrap().to_string()
}

#[test]
fn a_trap_in_the_engine_rolls_back_its_journalled_work() {
    let _serial = serial();
    let msg = hostile_add("trap", "trapped000001");
    assert!(
        msg.contains("trapped") && msg.contains("hostile-engine"),
        "{msg}"
    );
}

/// The `ovsdb` grant is scoped: a Manager insert (ovs-vswitchd would
/// listen on TCP), a `net_pcap` device (it would read a host file) and a
/// Manager journalled as an undo step are refused by the host before
/// ovsdb-server sees them; the ADD fails naming the scope and the bridge
/// the engine made is rolled back.
#[test]
fn an_engine_cannot_write_outside_the_ovsdb_scope() {
    let _serial = serial();
    for (mode, id, expect) in [
        (
            "manager",
            "scopemgr00001",
            "table \"Manager\" is outside the scope",
        ),
        (
            "pcap",
            "scopepcap0001",
            "only a net_memif device is in the scope",
        ),
        (
            "undo-manager",
            "scopeundo0001",
            "table \"Manager\" is outside the scope",
        ),
    ] {
        let msg = hostile_add(mode, id);
        assert!(
            msg.contains("ovsdb scope") && msg.contains(expect),
            "{mode}: {msg}"
        );
        assert_eq!(
            Ovs::shared().vsctl(&["get-manager"]),
            "",
            "{mode}: a Manager row"
        );
        assert!(
            !Ovs::shared().dump().contains("pcap0"),
            "{mode}: a pcap interface"
        );
    }
}

#[test]
fn an_engine_that_loops_forever_is_stopped_by_the_deadline() {
    let _serial = serial();
    let msg = hostile_add("loop", "looping000001");
    assert!(msg.contains("time limit of 500ms"), "{msg}");
}

/// An engine asleep on a WASI timer is in host code (`poll`), out of the
/// epoch deadline's reach; the call's wall-clock bound stops it all the
/// same, and releases the node's lock: a second ADD on the same state dir,
/// started while the engine sleeps, completes within the bound.
#[test]
fn an_engine_waiting_in_wasi_is_stopped_and_the_next_call_gets_the_node() {
    let _serial = serial();
    const BOUND: Duration = Duration::from_millis(1500);
    let mut hostile = hostile_network(&component::build_wasip2("hostile-engine"), "wait");
    hostile.config["componentLimits"]["timeoutMs"] = json!(BOUND.as_millis() as u64);
    hostile.config["components"] =
        json!({"engine": {"grants": ["ovsdb", "journal", "log", "wasi", "clocks"]}});
    let mut next = Network::memif(Ovs::shared());
    next.config["stateDir"] = hostile.config["stateDir"].clone();
    let (hostile_ns, next_ns) = (Netns::new(), Netns::new());

    let started = Instant::now();
    std::thread::scope(|s| {
        let stopped = s.spawn(|| {
            let err = hostile.add("waiting00001", &hostile_ns).err(102);
            (err, started.elapsed())
        });
        // The engine holds the node's lock from before it makes the bridge
        // until it is stopped.
        wait_for("the hostile engine's bridge", || {
            hostile.ovs.bridge_exists(&hostile.bridge)
        });
        let queued = Instant::now();
        next.add("waitnext0001", &next_ns).ok();
        let next_took = queued.elapsed();
        let (err, hostile_took) = stopped.join().unwrap();
        let msg = err["msg"].as_str().unwrap();
        assert!(msg.contains("time limit of 1.5s"), "{msg}");
        // Stopped at the bound, plus start-up and the rollback's OVSDB work.
        assert!(
            hostile_took < BOUND + Duration::from_secs(3),
            "{hostile_took:?}"
        );
        assert!(next_took < BOUND + Duration::from_secs(5), "{next_took:?}");
    });
    assert!(!hostile.ovs.bridge_exists(&hostile.bridge));
    hostile.assert_nothing_left("waiting00001");
    next.del("waitnext0001").ok();
    next.assert_nothing_left("waitnext0001");
}

/// The monotonic clock's timers are what let a component wait: not in
/// the default grants, and the refusal names the grant.
#[test]
fn an_engine_importing_timers_needs_the_clocks_grant() {
    let _serial = serial();
    let net = hostile_network(&component::build_wasip2("hostile-engine"), "wait");
    let ns = Netns::new();
    let err = net.add("noclocks0001", &ns).err(102);
    let msg = err["msg"].as_str().unwrap();
    assert!(msg.contains("capability `clocks`"), "{msg}");
    assert!(!net.ovs.bridge_exists(&net.bridge));
    net.assert_nothing_left("noclocks0001");
}

/// Nine hundred core instances, or a thousand tables or memories, in one
/// component are refused when it is instantiated, before it runs:
/// nothing reaches OVS.
#[test]
fn an_engine_bloated_with_instances_tables_or_memories_is_refused() {
    let _serial = serial();
    let engine = component::build("hostile-engine");
    for (bloat, id, expect) in [
        (Bloat::Instances, "bloatinst001", "instance count too high"),
        (Bloat::Tables, "bloattabl001", "table count too high"),
        (Bloat::Memories, "bloatmemo001", "memory count too high"),
    ] {
        let net = hostile_network(&component::bloated(&engine, bloat), "trap");
        let ns = Netns::new();
        let err = net.add(id, &ns).err(102);
        let msg = err["msg"].as_str().unwrap();
        assert!(
            msg.contains("exceeded a store limit") && msg.contains(expect),
            "{bloat:?}: {msg}"
        );
        assert!(!net.ovs.bridge_exists(&net.bridge), "{bloat:?}: a bridge");
        net.assert_nothing_left(id);
    }
}

#[test]
fn an_engine_that_allocates_1_gib_hits_the_memory_limit() {
    let _serial = serial();
    let msg = hostile_add("alloc", "allocating001");
    assert!(msg.contains("memory limit of 33554432 bytes"), "{msg}");
}

/// Thaws this binary's ovs-vswitchd when dropped, a failed assertion too.
struct Thaw(&'static Ovs);

impl Drop for Thaw {
    fn drop(&mut self) {
        self.0.run_script("thaw-vswitchd");
    }
}

/// A stalled ovs-vswitchd (frozen here with SIGSTOP; one that died looks
/// the same to its clients): the ADD fails within its bound (10 s for the
/// port) with error 11 naming the stall; its rollback commits the removals
/// without waiting out the bound again for each, so nothing is left in
/// the database, and ovs-vswitchd applies that when it moves again.
#[test]
fn a_stalled_vswitchd_fails_the_add_within_its_bound_naming_the_stall() {
    let _serial = serial();
    let ovs = Ovs::shared();
    let net = Network::vhostuser(ovs, Some("client"));
    let ns = Netns::new();
    let id = "vsstalled0001";
    ovs.run_script("freeze-vswitchd");
    let thaw = Thaw(ovs);
    let started = Instant::now();
    let run = net.add(id, &ns);
    let took = started.elapsed();
    drop(thaw);
    let err = run.err(11);
    let msg = err["msg"].as_str().unwrap();
    let details = err["details"].as_str().unwrap();
    assert!(msg.contains("timed out waiting for the vSwitch"), "{err}");
    assert!(
        details.contains("stalled or not running") && details.contains("cur_cfg stays at"),
        "{err}"
    );
    assert!(!details.contains("rollback incomplete"), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}: {err}");
    net.assert_nothing_left(id);
    assert!(!ovs.bridge_exists(&net.bridge));
    // ovs-vswitchd, thawed, takes the next attachment.
    net.add(id, &ns).ok();
    net.del(id).ok();
    net.assert_nothing_left(id);
}

#[test]
fn ovs_vswitchd_restarted_between_add_and_del_leaves_nothing_after_del() {
    let _serial = serial();
    let ovs = Ovs::shared();
    for net in [Network::memif(ovs), Network::vhostuser(ovs, Some("client"))] {
        let ns = Netns::new();
        net.add("vsrestart0001", &ns).ok();
        ovs.run_script("stop-vswitchd");
        ovs.run_script("start-vswitchd");
        net.del("vsrestart0001").ok();
        net.assert_nothing_left("vsrestart0001");
        assert!(!ovs.bridge_exists(&net.bridge));
        // And the restarted vSwitch takes new attachments.
        net.add("vsrestart0002", &ns).ok();
        net.del("vsrestart0002").ok();
        net.assert_nothing_left("vsrestart0002");
    }
}

#[test]
fn a_stale_socket_from_an_earlier_run_is_replaced() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let id = "stalesock0001";
    let dir = net.dir("shared").join(&id[..12]);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join(format!("memif-{}-net1.sock", &id[..12]));
    // A socket file whose listener is gone, as a crashed vSwitch leaves it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    net.add(id, &Netns::new()).ok();
    let port = format!("memif-{}-net1", &id[..12]);
    assert_eq!(
        net.ovs.vsctl(&["get", "Interface", &port, "error"]),
        "[]",
        "ovs-vswitchd opened the memif on the reused path"
    );
    net.del(id).ok();
    // The container's own dir goes too, empty, though an earlier run made it.
    assert!(!dir.exists(), "{:?}", integration_tests::list(&dir));
    net.assert_nothing_left(id);
}

/// A canary tree standing for /etc: a root-only key and a dir of it.
struct Canary {
    dir: tempfile::TempDir,
}

impl Canary {
    fn new() -> Canary {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pki")).unwrap();
        let key = dir.path().join("pki/ca.key");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        Canary { dir }
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// Every entry and its bytes (a socket's: none).
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        use std::os::unix::fs::FileTypeExt;
        let mut all = Vec::new();
        for entry in std::fs::read_dir(self.dir.path().join("pki")).unwrap() {
            let entry = entry.unwrap();
            let bytes = if entry.file_type().unwrap().is_socket() {
                Vec::new()
            } else {
                std::fs::read(entry.path()).unwrap()
            };
            all.push((entry.path().display().to_string(), bytes));
        }
        all.sort();
        all
    }
}

/// The hostile engine in `mode` with `extra` host keys; returns the CNI
/// error, after checking that its bridge was rolled back and nothing of
/// the attachment is left.
fn hostile_add_with(mode: &str, id: &str, extra: serde_json::Value) -> serde_json::Value {
    let engine = component::build("hostile-engine");
    let mut net = Network::memif(Ovs::shared());
    net.config["host"]["engine"] = json!(engine.display().to_string());
    net.config["host"]["hostile"] = json!(mode);
    for (key, value) in extra.as_object().unwrap() {
        match key.as_str() {
            "vhostSockDir" => net.config["host"]["ovs"][key] = value.clone(),
            _ => net.config["host"][key] = value.clone(),
        }
    }
    let ns = Netns::new();
    let run = net.add(id, &ns);
    assert!(!run.success, "{mode}: ADD succeeded: {}", run.stdout);
    assert!(!net.ovs.bridge_exists(&net.bridge), "{mode}: bridge left");
    net.assert_nothing_left(id);
    run.json()
}

/// An engine may not have the host move, as root, a file that is not a
/// socket, to anywhere but its socket path, or from anywhere but the
/// vSwitch's socket dir (`host.ovs.vhostSockDir`).
#[test]
fn an_engine_cannot_have_the_host_move_files_for_it() {
    let _serial = serial();
    let canary = Canary::new();
    let before = canary.snapshot();
    let real_socket = canary.path("pki/real.sock");
    drop(std::os::unix::net::UnixListener::bind(&real_socket).unwrap());
    let elsewhere = canary.path("elsewhere.sock");
    drop(std::os::unix::net::UnixListener::bind(&elsewhere).unwrap());
    let socket_dir = canary.path("pki");
    for (id, from, to, why) in [
        (
            "movekey000001",
            canary.path("pki/ca.key"),
            "",
            "not a socket",
        ),
        (
            "moveout000001",
            real_socket.clone(),
            &canary.path("pki/stolen"),
            "only this attachment's socket path",
        ),
        (
            "movefar000001",
            elsewhere.clone(),
            "",
            "directly in the vSwitch's socket dir",
        ),
    ] {
        let err = hostile_add_with(
            "move",
            id,
            json!({"hostileFrom": from, "hostileTo": to, "vhostSockDir": socket_dir}),
        );
        assert_eq!(err["code"], 102, "{id}: {err}");
        assert!(err["msg"].as_str().unwrap().contains(why), "{id}: {err}");
    }
    let mut after = canary.snapshot();
    after.retain(|(path, _)| path != &real_socket);
    assert_eq!(after, before, "the canary tree changed");
    assert!(
        canary
            .snapshot()
            .iter()
            .any(|(path, _)| path == &real_socket),
        "the socket was not moved outward"
    );
    assert!(
        std::path::Path::new(&real_socket).exists() && std::path::Path::new(&elsewhere).exists()
    );
}

/// An engine may journal the removal of its own files only: a removal
/// outward is refused when journalled, so no rollback, DEL or GC runs it.
#[test]
fn an_engine_cannot_journal_the_removal_of_a_host_file() {
    let _serial = serial();
    let canary = Canary::new();
    let before = canary.snapshot();
    let err = hostile_add_with(
        "remove",
        "removekey0001",
        json!({"hostileFrom": canary.path("pki/ca.key")}),
    );
    let text = err.to_string();
    assert!(text.contains("its own files only"), "{err}");
    assert_eq!(canary.snapshot(), before);
}

/// The attack by config alone, with the built-in engine: a network config
/// whose vhostSockDir holds a root-only key and whose socketfile names it
/// (OVS as vhost-user server: the engine asks for the move of
/// `<vhostSockDir>/<port>`). Refused, the key where it was, nothing left.
#[test]
fn a_network_config_cannot_move_a_host_key_into_a_pod() {
    let _serial = serial();
    let canary = Canary::new();
    let before = canary.snapshot();
    let mut net = Network::vhostuser(Ovs::shared(), Some("server"));
    net.config["host"]["ovs"]["vhostSockDir"] = json!(canary.path("pki"));
    net.config["host"]["vhost"]["socketfile"] = json!("ca.key");
    let id = "keythief00001";
    let run = net.add(id, &Netns::new());
    assert!(!run.success, "ADD succeeded: {}", run.stdout);
    let err = run.json();
    assert!(err.to_string().contains("ca.key"), "{err}");
    assert_eq!(canary.snapshot(), before, "the key moved");
    assert!(!net.ovs.bridge_exists(&net.bridge));
    net.assert_nothing_left(id);
}

/// The node policy widens a scope for one engine, by sha256, and only
/// when the config pins the engine with it: the same QoS insert is
/// refused by default, refused for the engine unpinned, and reaches
/// ovsdb-server for the pinned engine (which then traps, as it means to;
/// the bridge it made is rolled back).
#[test]
fn a_node_policy_widens_the_ovsdb_scope_for_one_pinned_engine() {
    use sha2::Digest;
    let _serial = serial();
    let engine = component::build("hostile-engine");
    let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&engine).unwrap()));
    let widened = json!({"scopes": {&sha256: {"ovsdbColumns": {"QoS": ["type"]}}}});
    for (policy, pin, id, expect) in [
        (
            None,
            true,
            "qosdefault001",
            "table \"QoS\" is outside the scope",
        ),
        (
            Some(&widened),
            false,
            "qosunpinned01",
            "table \"QoS\" is outside the scope",
        ),
        (
            Some(&widened),
            true,
            "qoswidened001",
            "the host let a QoS row through",
        ),
    ] {
        let mut net = hostile_network(&engine, "qos");
        if let Some(policy) = policy {
            net.own_policy(policy.clone());
        }
        if pin {
            net.config["components"] = json!({"engine": {"sha256": sha256}});
        }
        let msg = hostile_add_on(&net, id);
        assert!(msg.contains(expect), "{id}: {msg}");
    }
}
