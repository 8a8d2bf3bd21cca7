//! Kubernetes: the plugin against the API server TEST DOUBLE
//! (`kube-api-double`: HTTPS, its own CA, a bearer token) and the real
//! private OVS-DPDK, host-local and netns. Pod identity comes from
//! CNI_ARGS as the kubelet (via Multus) sends it. The real API server's
//! tests are in `kubernetes_api_server`, real pods on a real kubelet in
//! `kubernetes_node`; the double stays for what a real server cannot be
//! made to do on cue (a write injected between read and write, trickled,
//! flooding or no answers, a 409 storm, a pod over 4 MiB, counting
//! requests) and for the crash points, whose many ADDs it keeps fast.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use integration_tests::app::App;
use integration_tests::{
    cni_call, cni_call_crashing_at, first_address, list, Netns, Network, Ovs, Run,
};
use kube_api_double::{KubeApiDouble, Misbehaviour};
use serde_json::{json, Value};

const UID: &str = "4f3c2b1a-0000-4000-8000-00000000a11c";
const DATA: &str = "userspace/configuration-data";
const MAPPED: &str = "userspace/mapped-dir";
/// Where the pod's container mounts its socket volume (not the Go
/// plugin's default, so the tests see it taken from the pod).
const MOUNT_PATH: &str = "/run/app/sockets";

/// A memif network whose config points at the double's kubeconfig, and
/// the double with pod `default/app` (uid [`UID`]) holding `volumes`.
fn setup(volumes: impl FnOnce(&Network) -> Value) -> (Network, KubeApiDouble) {
    let mut net = Network::memif(Ovs::shared());
    std::fs::create_dir_all(net.dir("api")).unwrap();
    let double = KubeApiDouble::start(&net.dir("api"));
    net.config["kubeconfig"] = json!(double.kubeconfig());
    double.add_pod(
        "default",
        "app",
        UID,
        json!({
            "containers": [{"name": "app", "volumeMounts": [{"name": "shared-dir", "mountPath": MOUNT_PATH}]}],
            "volumes": volumes(&net),
        }),
    );
    (net, double)
}

/// No socket volume: the shared dir is `sharedDir/<cid12>` as without
/// Kubernetes.
fn no_volume(_: &Network) -> Value {
    json!([])
}

/// The socket volume as a hostPath (`podvol` of the network's dirs).
fn host_path_volume(net: &Network) -> Value {
    let dir = net.dir("podvol");
    std::fs::create_dir_all(&dir).unwrap();
    json!([{"name": "shared-dir", "hostPath": {"path": dir, "type": "DirectoryOrCreate"}}])
}

/// The socket volume as an emptyDir, made where kubelet would (in the
/// network's `kubelet` dir, which the config names).
fn empty_dir_volume(net: &Network) -> Value {
    std::fs::create_dir_all(empty_dir(net)).unwrap();
    json!([{"name": "shared-dir", "emptyDir": {}}])
}

fn empty_dir(net: &Network) -> std::path::PathBuf {
    net.dir("kubelet").join(format!(
        "pods/{UID}/volumes/kubernetes.io~empty-dir/shared-dir"
    ))
}

const POD_ARGS: &str =
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=app;K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=4f3c2b1a-0000-4000-8000-00000000a11c";

fn call(net: &Network, command: &str, id: &str, ifname: &str, netns: &str) -> Run {
    cni_call(
        command,
        id,
        ifname,
        netns,
        &net.stdin(),
        &[("CNI_ARGS", POD_ARGS)],
    )
}

/// The pod's `userspace/configuration-data` entries.
fn entries(annotations: &BTreeMap<String, String>) -> Vec<Value> {
    annotations
        .get(DATA)
        .map(|text| serde_json::from_str(text).unwrap())
        .unwrap_or_default()
}

/// The writes the plugin made (updates; it never patches).
fn writes(double: &KubeApiDouble) -> usize {
    double
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" || r.method == "PATCH")
        .count()
}

#[test]
fn annotations_follow_add_retried_add_two_interfaces_and_del() {
    let (net, double) = setup(host_path_volume);
    let ns = Netns::new();
    let id = "k8sannot00001";
    let first = call(&net, "ADD", id, "net1", &ns.path()).ok();

    let annotations = double.annotations("default", "app");
    assert_eq!(annotations[MAPPED], MOUNT_PATH);
    let list1 = entries(&annotations);
    assert_eq!(list1.len(), 1, "{list1:?}");
    let entry = &list1[0];
    assert_eq!(entry["containerId"], id);
    assert_eq!(entry["ifName"], "net1");
    assert_eq!(entry["name"], net.name);
    assert_eq!(entry["config"]["iftype"], "memif");
    assert_eq!(entry["config"]["memif"]["role"], "slave");
    let socket_file = entry["config"]["memif"]["socketfile"].as_str().unwrap();
    assert_eq!(socket_file, "memif-k8sannot0000-net1.sock");
    assert_eq!(
        entry["ipResult"]["ips"][0]["address"],
        first["ips"][0]["address"]
    );
    // The socket is in the pod's volume, where the container mounts it.
    assert!(
        net.dir("podvol").join(socket_file).exists(),
        "{:?}",
        list(&net.dir("podvol"))
    );
    assert!(double
        .annotations("default", "app")
        .contains_key("k8s.v1.cni.cncf.io/networks"));

    // CHECK finds the entry; without it, CHECK says so.
    net.check(id, &ns, &first).ok();
    let saved = double.annotations("default", "app")[DATA].clone();
    double.set_annotation("default", "app", DATA, None);
    let error = net.check(id, &ns, &first).err(111);
    assert!(
        error["msg"].as_str().unwrap().contains("has no entry"),
        "{error}"
    );
    double.set_annotation("default", "app", DATA, Some(&saved));

    // A retried ADD: the same answer, still one entry, no write.
    let written = writes(&double);
    assert_eq!(call(&net, "ADD", id, "net1", &ns.path()).ok(), first);
    assert_eq!(entries(&double.annotations("default", "app")).len(), 1);
    assert_eq!(writes(&double), written);

    // A second interface of the same pod.
    call(&net, "ADD", id, "net2", &ns.path()).ok();
    let both = entries(&double.annotations("default", "app"));
    let ifnames: Vec<&str> = both.iter().map(|e| e["ifName"].as_str().unwrap()).collect();
    assert_eq!(ifnames, ["net1", "net2"]);

    // DEL of one removes its entry only.
    call(&net, "DEL", id, "net1", "").ok();
    let annotations = double.annotations("default", "app");
    let left = entries(&annotations);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["ifName"], "net2");
    assert_eq!(annotations[MAPPED], MOUNT_PATH);

    // The last DEL removes both annotations; others' keys stay.
    call(&net, "DEL", id, "net2", "").ok();
    call(&net, "DEL", id, "net2", "").ok();
    let annotations = double.annotations("default", "app");
    assert!(!annotations.contains_key(DATA) && !annotations.contains_key(MAPPED));
    assert!(annotations.contains_key("k8s.v1.cni.cncf.io/networks"));
    assert!(
        list(&net.dir("podvol")).is_empty(),
        "{:?}",
        list(&net.dir("podvol"))
    );
    net.assert_nothing_left(id);
}

#[test]
fn a_concurrent_writer_keeps_its_keys_and_ours_lands_once() {
    let (net, double) = setup(host_path_volume);

    double.write_before_next_write(&[("example.com/other-writer", "kept")]);
    let ns = Netns::new();
    let id = "k8sconflict01";
    call(&net, "ADD", id, "net1", &ns.path()).ok();
    let annotations = double.annotations("default", "app");
    assert_eq!(annotations["example.com/other-writer"], "kept");
    assert_eq!(entries(&annotations).len(), 1);
    assert_eq!(
        writes(&double),
        2,
        "the first write conflicted, the second landed"
    );

    double.write_before_next_write(&[("example.com/other-writer", "changed")]);
    call(&net, "DEL", id, "net1", "").ok();
    let annotations = double.annotations("default", "app");
    assert_eq!(annotations["example.com/other-writer"], "changed");
    assert!(!annotations.contains_key(DATA));
    net.assert_nothing_left(id);
}

#[test]
fn a_long_emptydir_path_is_bind_mounted_short_for_the_socket() {
    let (mut net, _double) = setup(empty_dir_volume);
    net.config["kubernetes"] = json!({
        "kubeletDir": net.dir("kubelet"),
        "socketMountDir": net.dir("vs"),
    });
    let device_info = net.dir("devinfo/net-k8smount00001_net1");
    net.config["runtimeConfig"] = json!({"CNIDeviceInfoFile": device_info});
    let volume = empty_dir(&net);
    let socket_in_volume = volume.join("memif-k8smount0000-net1.sock");
    assert!(
        socket_in_volume.as_os_str().len() > 107,
        "the test needs a path too long for sun_path"
    );
    let short = net.dir("vs/k8smount0000-net1");

    let ns = Netns::new();
    let id = "k8smount00001";
    call(&net, "ADD", id, "net1", &ns.path()).ok();
    assert!(mounted(&short), "{} is not a mount point", short.display());
    // OVS made the socket through the short path; the container sees it
    // in its volume.
    assert!(socket_in_volume.exists(), "{:?}", list(&volume));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(&device_info).unwrap()).unwrap();
    // The path the pod's application opens: where its container mounts
    // the volume (the example's mountPath).
    assert_eq!(
        info["memif"]["path"],
        format!("{MOUNT_PATH}/memif-k8smount0000-net1.sock")
    );

    call(&net, "DEL", id, "net1", "").ok();
    assert!(!mounted(&short), "mount left");
    assert!(!short.exists(), "mount point left");
    assert!(list(&volume).is_empty(), "{:?}", list(&volume));
    assert!(!device_info.exists());
    net.assert_nothing_left(id);
}

fn mounted(path: &std::path::Path) -> bool {
    let path = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(4) == Some(path.as_str()))
}

#[test]
fn forbidden_or_missing_pods_fail_add_and_leave_nothing() {
    let (net, double) = setup(no_volume);
    let ns = Netns::new();

    double.forbid(&["get"]);
    let error = call(&net, "ADD", "k8sforbid0001", "net1", &ns.path()).err(104);
    assert!(error["msg"].as_str().unwrap().contains("403"), "{error}");
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .contains("get and update on pods"),
        "{error}"
    );
    call(&net, "DEL", "k8sforbid0001", "net1", "").ok();
    net.assert_nothing_left("k8sforbid0001");

    // Reading is allowed, writing is not: the port was made, then undone.
    double.forbid(&["update"]);
    let error = call(&net, "ADD", "k8sforbid0002", "net1", &ns.path()).err(104);
    assert!(
        error["msg"].as_str().unwrap().contains("cannot update"),
        "{error}"
    );
    net.assert_nothing_left("k8sforbid0002");
    assert!(!net.ovs.bridge_exists(&net.bridge), "bridge left");

    double.forbid(&[]);
    double.delete_pod("default", "app");
    let error = call(&net, "ADD", "k8smissing001", "net1", &ns.path()).err(104);
    assert!(
        error["msg"].as_str().unwrap().contains("not found"),
        "{error}"
    );
    net.assert_nothing_left("k8smissing001");
    assert!(!net.ovs.bridge_exists(&net.bridge), "bridge left");
}

#[test]
fn the_kubeconfig_token_never_reaches_logs_or_output() {
    let (mut net, double) = setup(no_volume);
    let log = net.dir("plugin.log");
    net.config["logLevel"] = json!("debug");
    net.config["logFile"] = json!(log);
    let ns = Netns::new();
    let token = double.token().to_string();
    let mut runs = vec![
        call(&net, "ADD", "k8ssecret0001", "net1", &ns.path()),
        call(&net, "DEL", "k8ssecret0001", "net1", ""),
    ];
    double.forbid(&["update"]);
    runs.push(call(&net, "ADD", "k8ssecret0002", "net1", &ns.path()));
    // A kubeconfig the YAML parser rejects right at the token.
    let broken = net.dir("api/broken");
    let text = std::fs::read_to_string(double.kubeconfig()).unwrap();
    std::fs::write(
        &broken,
        text.replace(&format!("token: {token}"), &format!("token: [{token}")),
    )
    .unwrap();
    net.config["kubeconfig"] = json!(broken);
    let run = call(&net, "ADD", "k8ssecret0003", "net1", &ns.path());
    run.err(7);
    runs.push(run);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("DEBUG"), "debug logging was on");
    for (n, run) in runs.iter().enumerate() {
        for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(!text.contains(&token), "run {n} {what}: {text}");
        }
    }
    assert!(!logged.contains(&token), "the log holds the token");
    net.assert_nothing_left("k8ssecret0002");
}

/// Two pods, each with a hostPath volume it mounts at the same path (so
/// the host sees what the container sees), ADDed with their pod identity;
/// each app reads only its downward-API annotations file, written from
/// what the API double holds as kubelet writes it, and they ping.
#[test]
fn apps_find_their_interfaces_in_the_annotations_the_plugin_wrote_and_ping() {
    let mut net = Network::memif(Ovs::shared());
    std::fs::create_dir_all(net.dir("api")).unwrap();
    let double = KubeApiDouble::start(&net.dir("api"));
    net.config["kubeconfig"] = json!(double.kubeconfig());
    let pods = [("pod-a", "k8spinga00001"), ("pod-b", "k8spingb00001")];
    let mut addresses = Vec::new();
    let mut namespaces = Vec::new();
    for (n, (pod, id)) in pods.iter().enumerate() {
        let volume = net.dir(&format!("{pod}-vol"));
        std::fs::create_dir_all(&volume).unwrap();
        let uid = format!("00000000-0000-4000-8000-00000000000{n}");
        double.add_pod(
            "default",
            pod,
            &uid,
            json!({
                "containers": [{"name": "app", "volumeMounts": [{"name": "shared-dir", "mountPath": volume}]}],
                "volumes": [{"name": "shared-dir", "hostPath": {"path": volume}}],
            }),
        );
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_UID={uid}"
        );
        let ns = Netns::new();
        let result = cni_call(
            "ADD",
            id,
            "net1",
            &ns.path(),
            &net.stdin(),
            &[("CNI_ARGS", &args)],
        )
        .ok();
        addresses.push(first_address(&result));
        namespaces.push(ns);
    }
    let apps: Vec<App> = pods
        .iter()
        .zip(&namespaces)
        .map(|((pod, _), ns)| {
            let podinfo = net.dir(&format!("{pod}-podinfo"));
            std::fs::create_dir_all(&podinfo).unwrap();
            let file = podinfo.join("annotations");
            std::fs::write(
                &file,
                downward_api_file(&double.annotations("default", pod)),
            )
            .unwrap();
            App::start_with(ns, &podinfo, &["--annotations", file.to_str().unwrap()])
        })
        .collect();
    assert_eq!(apps[0].ping(&addresses[1], 5), 5);
    assert_eq!(apps[1].ping(&addresses[0], 5), 5);
    drop(apps);
    for (_, id) in pods {
        cni_call("DEL", id, "net1", "", &net.stdin(), &[]).ok();
        net.assert_nothing_left(id);
    }
}

/// kubelet's downward-API rendering of annotations: `key="value"` lines,
/// the value quoted as Go's strconv.Quote does. The values here are JSON
/// and paths, printable ASCII, where Rust's `{:?}` quotes the same way.
fn downward_api_file(annotations: &BTreeMap<String, String>) -> String {
    annotations
        .iter()
        .map(|(key, value)| format!("{key}={value:?}\n"))
        .collect()
}

/// SIGKILL at every crash point of an ADD for a pod whose emptyDir needs
/// the short bind mount and whose annotations get the entry; after each
/// kill a DEL leaves no port, file, mount, IPAM reservation or entry.
#[test]
fn killed_at_every_step_a_pod_add_is_undone_by_del() {
    let (mut net, double) = setup(empty_dir_volume);
    net.config["kubernetes"] = json!({
        "kubeletDir": net.dir("kubelet"),
        "socketMountDir": net.dir("vs"),
    });
    let ns = Netns::new();
    let mut points = 0;
    for n in 1.. {
        let id = format!("k8scrash{n:03}xx");
        let run = cni_call_crashing_at(
            n,
            "ADD",
            &id,
            "net1",
            &ns.path(),
            &net.stdin(),
            &[("CNI_ARGS", POD_ARGS)],
        );
        let finished = run.success;
        if !finished {
            assert!(
                run.stderr
                    .contains(&format!("USERSPACE_CRASH_AT={n}: killed at")),
                "ADD did not die at crash point {n}: {run:?}"
            );
            points += 1;
        }
        call(&net, "DEL", &id, "net1", "").ok();
        net.assert_nothing_left(&id);
        assert!(
            list(&net.dir("vs")).is_empty(),
            "mount point left: {:?}",
            list(&net.dir("vs"))
        );
        assert!(
            list(&empty_dir(&net)).is_empty(),
            "{:?}",
            list(&empty_dir(&net))
        );
        assert!(
            !double.annotations("default", "app").contains_key(DATA),
            "annotation entry left after a kill at point {n}"
        );
        if finished {
            break;
        }
    }
    // The README quotes this count.
    assert_eq!(
        points, 18,
        "crash points of a pod's ADD (bind mount, annotations)"
    );
    integration_tests::figure("crash points, a pod's ADD, then DEL", points);
}

/// With a pod volume the shared dir is the pod's: `vhost.group` goes on
/// the socket only, the volume keeps its owner and mode.
#[test]
fn a_pod_volume_keeps_its_owner_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (mut net, _double) = setup(host_path_volume);
    net.config["host"]["iftype"] = json!("vhostuser");
    net.config["container"]["iftype"] = json!("vhostuser");
    net.config["host"]["vhost"] = json!({"mode": "server", "group": "daemon"});
    let volume = net.dir("podvol");
    std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o775)).unwrap();
    let before = std::fs::metadata(&volume).unwrap();
    let ns = Netns::new();
    let id = "k8sowner00001";
    call(&net, "ADD", id, "net1", &ns.path()).ok();
    let socket = std::fs::symlink_metadata(volume.join("k8sowner0000-net1")).unwrap();
    assert_eq!(socket.gid(), 1, "daemon's gid on the socket");
    assert_eq!(socket.mode() & 0o777, 0o660);
    let after = std::fs::metadata(&volume).unwrap();
    assert_eq!((after.gid(), after.mode()), (before.gid(), before.mode()));
    call(&net, "DEL", id, "net1", "").ok();
    net.assert_nothing_left(id);
    assert!(list(&volume).is_empty(), "{:?}", list(&volume));
}

/// Two pods on one node, each with its own emptyDir socket volume as the
/// examples give them: each volume holds only that pod's socket and
/// container data, nothing lands in the node-wide shared dir, each pod's
/// annotations name only its own interface, and OVS-DPDK refuses the other
/// pod's memif secret on a pod's socket.
#[test]
fn two_pods_on_one_node_cannot_reach_each_others_sockets_or_data() {
    const UID_B: &str = "4f3c2b1a-0000-4000-8000-00000000b22c";
    let (mut net, double) = setup(empty_dir_volume);
    net.config["kubernetes"] = json!({
        "kubeletDir": net.dir("kubelet"),
        "socketMountDir": net.dir("vs"),
    });
    double.add_pod(
        "default",
        "app-b",
        UID_B,
        json!({
            "containers": [{"name": "app", "volumeMounts": [{"name": "shared-dir", "mountPath": MOUNT_PATH}]}],
            "volumes": [{"name": "shared-dir", "emptyDir": {}}],
        }),
    );
    let volume_a = empty_dir(&net);
    let volume_b = net.dir("kubelet").join(format!(
        "pods/{UID_B}/volumes/kubernetes.io~empty-dir/shared-dir"
    ));
    std::fs::create_dir_all(&volume_b).unwrap();
    let args_b = POD_ARGS
        .replace("K8S_POD_NAME=app;", "K8S_POD_NAME=app-b;")
        .replace(UID, UID_B);
    let (ns_a, ns_b) = (Netns::new(), Netns::new());
    let (id_a, id_b) = ("k8stwopodA001", "k8stwopodB001");
    call(&net, "ADD", id_a, "net1", &ns_a.path()).ok();
    let stdin = net.stdin();
    let b_args = [("CNI_ARGS", args_b.as_str())];
    cni_call("ADD", id_b, "net1", &ns_b.path(), &stdin, &b_args).ok();

    let mut secrets = Vec::new();
    for (volume, id, other_id, pod) in [
        (&volume_a, id_a, id_b, "app"),
        (&volume_b, id_b, id_a, "app-b"),
    ] {
        let (own, other) = (&id[..12], &other_id[..12]);
        let files = list(volume);
        assert!(
            files.len() >= 2 && files.iter().all(|f| f.contains(own) && !f.contains(other)),
            "{pod}'s volume holds only its own socket and data: {files:?}"
        );
        let entries = entries(&double.annotations("default", pod));
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0]["containerId"], id);
        secrets.push(
            entries[0]["config"]["memif"]["secret"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_ne!(secrets[0], secrets[1], "one secret per attachment");
    assert!(
        list(&net.dir("shared")).is_empty(),
        "the node-wide shared dir: {:?}",
        list(&net.dir("shared"))
    );

    // Pod A's socket, through the short path the vSwitch uses: B's secret
    // is refused, A's taken.
    let socket = net.dir(&format!(
        "vs/{}-net1/memif-{}-net1.sock",
        &id_a[..12],
        &id_a[..12]
    ));
    let connect = |secret: &str| {
        let mut cfg = memif::ClientConfig::new(&socket);
        cfg.secret = secret.to_string();
        memif::Client::connect(&cfg)
    };
    assert!(connect(&secrets[1]).is_err(), "OVS took pod B's secret");
    drop(connect(&secrets[0]).expect("OVS takes pod A's secret"));

    call(&net, "DEL", id_a, "net1", "").ok();
    cni_call("DEL", id_b, "net1", "", &stdin, &b_args).ok();
    for (id, volume) in [(id_a, &volume_a), (id_b, &volume_b)] {
        net.assert_nothing_left(id);
        assert!(list(volume).is_empty(), "{:?}", list(volume));
    }
}

/// An API server that trickles its answer a byte a second, answers 100
/// MiB, never answers, or answers every write with 409: the ADD fails
/// within the request's one deadline (10 s; the storm after its 10
/// attempts) with the API named, the flood cut at the 4 MiB cap, the port
/// rolled back, nothing left behind.
#[test]
fn a_hostile_or_broken_api_server_fails_add_within_its_bound() {
    let (net, double) = setup(no_volume);
    let ns = Netns::new();
    for (misbehaviour, id, code, expect) in [
        (
            Misbehaviour::Trickle {
                interval: Duration::from_secs(1),
            },
            "k8strickle001",
            11,
            "unreachable",
        ),
        (
            Misbehaviour::Flood { bytes: 100 << 20 },
            "k8sflood00001",
            104,
            "more than 4194304 bytes",
        ),
        (Misbehaviour::Silent, "k8ssilent0001", 11, "unreachable"),
        (
            Misbehaviour::ConflictStorm,
            "k8sstorm00001",
            104,
            "409 Conflict",
        ),
    ] {
        double.misbehave(Some(misbehaviour));
        let before = double.requests().len();
        let started = Instant::now();
        let err = call(&net, "ADD", id, "net1", &ns.path()).err(code);
        let took = started.elapsed();
        let msg = err["msg"].as_str().unwrap();
        assert!(msg.contains(expect), "{misbehaviour:?}: {msg}");
        assert!(took < Duration::from_secs(15), "{misbehaviour:?}: {took:?}");
        if let Misbehaviour::ConflictStorm = misbehaviour {
            let writes = double.requests()[before..]
                .iter()
                .filter(|r| r.method == "PUT")
                .count();
            assert_eq!(writes, 10, "the storm outlasts the 10 attempts");
        }
        net.assert_nothing_left(id);
    }
    double.misbehave(None);
}
