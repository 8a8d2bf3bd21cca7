//! SIGKILL at every step of an ADD (after each journal record, before and
//! after each vSwitch call, around IPAM, between writing the container
//! data and renaming it, before the commit), for memif and vhost-user on
//! OVS-DPDK and for memif on the VPP test double. After each kill, a DEL —
//! and separately a GC — leaves the vSwitch, the files and the IPAM store
//! as they were before the ADD. The plugin built with its crash points
//! (`userspace-crash-points`) kills itself at the N-th crash point when
//! `USERSPACE_CRASH_AT=N` (see host/userspace/src/crash.rs); the shipped
//! binary ignores the variable.

use integration_tests::{
    cni_call, cni_call_crashing_at, run_plugin, Netns, Network, Ovs, Run, CNI_PATH,
};
use serde_json::{json, Value};
use vpp_test_double::{Options, VppDouble};

/// Runs `command` for `id` with `conf`; with `crash_at`, the crash-points
/// build killed at that point.
fn call(command: &str, id: &str, ns: &Netns, conf: &Value, crash_at: Option<usize>) -> Run {
    let (netns, stdin) = (ns.path(), conf.to_string());
    match crash_at {
        Some(n) => cni_call_crashing_at(n, command, id, "net1", &netns, stdin.as_bytes(), &[]),
        None => cni_call(command, id, "net1", &netns, stdin.as_bytes(), &[]),
    }
}

/// How an attachment is cleaned up after the kill.
#[derive(Clone, Copy, Debug)]
enum Cleanup {
    Del,
    Gc,
}

fn clean_up(how: Cleanup, id: &str, ns: &Netns, conf: &Value) {
    match how {
        Cleanup::Del => call("DEL", id, ns, conf, None).ok(),
        Cleanup::Gc => {
            let mut gc = conf.clone();
            gc["cniVersion"] = json!("1.1.0");
            gc["cni.dev/valid-attachments"] = json!([]);
            run_plugin(
                &[("CNI_COMMAND", "GC"), ("CNI_PATH", CNI_PATH)],
                gc.to_string().as_bytes(),
            )
            .ok()
        }
    };
}

/// Kills ADD at crash point 1, 2, ... until an ADD runs to the end;
/// `check` asserts the host is as before after each clean-up. Returns the
/// number of crash points covered.
fn kill_at_every_point(conf: &Value, ns: &Netns, how: Cleanup, check: &dyn Fn(&str)) -> usize {
    for n in 1.. {
        let id = format!("crash{n:03}{how:?}xxxxxxx").to_lowercase();
        let run = call("ADD", &id, ns, conf, Some(n));
        if run.success {
            call("DEL", &id, ns, conf, None).ok();
            check(&id);
            return n - 1;
        }
        assert!(
            run.stdout.is_empty()
                && run
                    .stderr
                    .contains(&format!("USERSPACE_CRASH_AT={n}: killed at")),
            "ADD did not die at crash point {n}: {run:?}"
        );
        clean_up(how, &id, ns, conf);
        check(&id);
    }
    unreachable!()
}

fn on_ovs(net: Network, how: Cleanup) -> usize {
    let ns = Netns::new();
    let check = |id: &str| {
        net.assert_nothing_left(id);
        assert!(
            !net.ovs.bridge_exists(&net.bridge),
            "bridge left after a kill"
        );
        assert!(integration_tests::list(&net.dir("shared")).is_empty());
    };
    kill_at_every_point(&net.config, &ns, how, &check)
}

/// The crash points an ADD passes, as the README quotes them: a change
/// to the ADD's steps changes these, and the README with them.
const OVS_MEMIF_POINTS: usize = 17;
const OVS_VHOSTUSER_POINTS: usize = 16;
const VPP_MEMIF_POINTS: usize = 19;

#[test]
fn memif_on_ovs_killed_at_every_step_then_del() {
    let n = on_ovs(Network::memif(Ovs::shared()), Cleanup::Del);
    assert_eq!(
        n, OVS_MEMIF_POINTS,
        "crash points of a memif ADD on OVS-DPDK"
    );
    integration_tests::figure("crash points, memif on OVS-DPDK, then DEL", n);
}

#[test]
fn memif_on_ovs_killed_at_every_step_then_gc() {
    let n = on_ovs(Network::memif(Ovs::shared()), Cleanup::Gc);
    assert_eq!(
        n, OVS_MEMIF_POINTS,
        "crash points of a memif ADD on OVS-DPDK"
    );
    integration_tests::figure("crash points, memif on OVS-DPDK, then GC", n);
}

#[test]
fn vhostuser_on_ovs_killed_at_every_step_then_del_and_gc() {
    for how in [Cleanup::Del, Cleanup::Gc] {
        let n = on_ovs(Network::vhostuser(Ovs::shared(), Some("client")), how);
        assert_eq!(n, OVS_VHOSTUSER_POINTS, "crash points of a vhost-user ADD");
        integration_tests::figure(
            &format!("crash points, vhost-user on OVS-DPDK, then {how:?}"),
            n,
        );
    }
}

#[test]
fn memif_on_the_vpp_double_killed_at_every_step_then_del_and_gc() {
    let dir = integration_tests::scratch_dir();
    let api = dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    let conf = json!({
        "cniVersion": "1.0.0", "type": "userspace", "name": "crash-vpp",
        "host": {"engine": "vpp", "iftype": "memif", "netType": "bridge",
                 "memif": {"role": "master", "mode": "ethernet"},
                 "bridge": {"bridgeId": 7}, "vpp": {"apiSocket": api}},
        "container": {"engine": "vpp", "iftype": "memif", "netType": "interface",
                      "memif": {"role": "slave", "mode": "ethernet"}},
        "ipam": {"type": "host-local", "subnet": "10.81.0.0/24", "dataDir": dir.path().join("ipam")},
        "stateDir": dir.path().join("state"),
        "sharedDir": dir.path().join("shared"),
    });
    let ns = Netns::new();
    let check = |id: &str| {
        assert_eq!(
            double.state(),
            before,
            "the double's state after cleaning up {id}"
        );
        assert!(integration_tests::list(&dir.path().join("shared")).is_empty());
        assert!(
            integration_tests::list(&dir.path().join("state/attachments/crash-vpp")).is_empty()
        );
        integration_tests::assert_no_ipam_reservation(&dir.path().join("ipam/crash-vpp"), id);
    };
    for how in [Cleanup::Del, Cleanup::Gc] {
        let n = kill_at_every_point(&conf, &ns, how, &check);
        assert_eq!(n, VPP_MEMIF_POINTS, "crash points of a memif ADD on VPP");
        integration_tests::figure(
            &format!("crash points, memif on the VPP test double, then {how:?}"),
            n,
        );
    }
}

/// The shipped binary has no crash points: with `USERSPACE_CRASH_AT=1` in
/// its environment an ADD runs to the end.
#[test]
fn the_shipped_binary_ignores_the_crash_switch() {
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    let id = "crashswitchoff01";
    let run = cni_call(
        "ADD",
        id,
        "net1",
        &ns.path(),
        &net.stdin(),
        &[("USERSPACE_CRASH_AT", "1")],
    );
    assert!(
        run.success && !run.stderr.contains("USERSPACE_CRASH_AT"),
        "{run:?}"
    );
    net.del(id).ok();
    net.assert_nothing_left(id);
}
