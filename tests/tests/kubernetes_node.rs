//! Real pods on a REAL kubelet: the kubelet and kube-apiserver 1.20.2
//! (`tests/support/kubernetes/build.sh`), Debian's containerd 1.6 (CRI)
//! and runc, one node (`tests/support/kubernetes/node.sh`), the private
//! OVS-DPDK. containerd runs the node's networks as a kubelet node's
//! runtime does: the first (ptp + host-local) makes `eth0`, the second is
//! the plugin with `examples/kubernetes/nad-ovs-dpdk-memif.yaml`'s config,
//! authenticating with Multus's credentials under Multus's ClusterRole.
//! The pods are `examples/kubernetes/pod-memif.yaml`'s, and
//! `pod-tap-sidecar.yaml`'s (its workload container on the node's image).
//!
//! Multus is not here (it cannot be built offline): containerd calls the
//! plugin itself, for every pod, as `eth1`. What Multus would add: the
//! network chosen per pod from its `k8s.v1.cni.cncf.io/networks`
//! annotation and the NAD, `net1` as the name, its network-status
//! annotation and the `CNIDeviceInfoFile`.
//!
//! The daemons run in a network namespace of the test's own (the API
//! server on its loopback, the pods' `eth0` veths in it), nothing in the
//! host's.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::kube_api::{k8s_dir, manifests, Identity, KubeApi};
use integration_tests::{
    app_rootfs, assert_no_ipam_reservation, list, plugin_binary, require_environment, scratch_dir,
    test_policy, wait_for_within, workspace, Netns, Ovs, CNI_PATH, POLICY_ENV,
};
use serde_json::{json, Value};

const NODE: &str = "uscni-node";
const NODE_IP: &str = "192.168.231.1";
const DATA: &str = "userspace/configuration-data";
/// The group the example pod runs as, and the example NAD gives sockets.
const POD_GROUP: u32 = 2000;

/// A running node: containerd and the kubelet, stopped (and whatever they
/// left mounted unmounted) when dropped, before its dir goes.
struct Node {
    dir: PathBuf,
    plugin_log: PathBuf,
    /// The pods that ran here, (name, uid): the kubelet's logs of them in
    /// /var/log go with the node.
    pods: Vec<(String, String)>,
    scratch: tempfile::TempDir,
}

impl Node {
    /// Writes the node's inputs (CNI configs and plugins, the kubelet's
    /// kubeconfig, the app's root filesystem) and starts it in `netns`.
    fn start(
        api: &KubeApi,
        netns: &Netns,
        scratch: tempfile::TempDir,
        plugin_config: &Value,
    ) -> Node {
        let dir = node_dir(&scratch);
        for sub in ["net.d", "cni-bin"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for plugin in ["ptp", "host-local", "loopback"] {
            std::os::unix::fs::symlink(
                Path::new(CNI_PATH).join(plugin),
                dir.join("cni-bin").join(plugin),
            )
            .unwrap();
        }
        std::os::unix::fs::symlink(plugin_binary(), dir.join("cni-bin/userspace")).unwrap();
        let eth0 = json!({"cniVersion": "1.0.0", "name": "node-eth0", "plugins": [{
            "type": "ptp", "ipMasq": false,
            "ipam": {"type": "host-local", "subnet": "10.233.0.0/24",
                     "dataDir": scratch.path().join("ipam-eth0")}}]});
        let memif = json!({"cniVersion": plugin_config["cniVersion"], "name": plugin_config["name"],
                           "plugins": [plugin_config]});
        std::fs::write(dir.join("net.d/10-eth0.conflist"), eth0.to_string()).unwrap();
        std::fs::write(dir.join("net.d/20-memif.conflist"), memif.to_string()).unwrap();
        // The kubelet as admin: no controller-manager here to approve a
        // node's own credentials, and the node authorizer is not what is
        // under test.
        let kubeconfig = api.admin_kubeconfig(scratch.path());
        std::fs::copy(kubeconfig, dir.join("kubelet.kubeconfig")).unwrap();
        app_rootfs(&dir);

        let node = Node {
            plugin_log: PathBuf::from(plugin_config["logFile"].as_str().unwrap()),
            dir,
            pods: Vec::new(),
            scratch,
        };
        let out = Command::new(node_script())
            .arg("start")
            .arg(&node.dir)
            .args([&netns.path(), NODE, NODE_IP])
            // containerd hands its environment to the CNI plugins.
            .env(POLICY_ENV, test_policy())
            .env("K8S_DIR", k8s_dir())
            .output()
            .expect("run node.sh");
        assert!(
            out.status.success(),
            "the node did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        node
    }

    /// `ctr` against this node's containerd, in the kubelet's namespace.
    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr")
    }

    /// Runs `command` in the pod's container as `kubectl exec` would:
    /// (succeeded, stdout and stderr).
    fn exec(&self, pod: &Value, exec_id: &str, command: &[&str]) -> (bool, String) {
        let first = pod["status"]["containerStatuses"][0]["name"]
            .as_str()
            .unwrap();
        self.exec_in(pod, first, exec_id, command)
    }

    /// [`Node::exec`] in the pod's container named `name`.
    fn exec_in(&self, pod: &Value, name: &str, exec_id: &str, command: &[&str]) -> (bool, String) {
        let statuses = pod["status"]["containerStatuses"].as_array().unwrap();
        let status = statuses
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in {statuses:?}"));
        let container = status["containerID"]
            .as_str()
            .unwrap()
            .trim_start_matches("containerd://");
        let mut args = vec!["task", "exec", "--exec-id", exec_id, container];
        args.extend_from_slice(command);
        let out = self.ctr(&args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// A volume of the pod as the kubelet mounted it.
    fn volume(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.dir
            .join("kubelet/pods")
            .join(uid)
            .join("volumes")
            .join(plugin)
            .join(name)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in [
                self.dir.join("kubelet.log"),
                self.dir.join("containerd.log"),
                self.plugin_log.clone(),
            ] {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!("--- {} (last 40 lines)", log.display());
                for line in &lines[lines.len().saturating_sub(40)..] {
                    eprintln!("{line}");
                }
            }
        }
        let _ = Command::new(node_script())
            .arg("stop")
            .arg(&self.dir)
            .status();
        // What a failed test leaves mounted beside the node (the plugin's
        // socket mounts), deepest first.
        let mounts = Command::new("findmnt")
            .args(["-rn", "-o", "TARGET"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let root = format!("{}/", self.scratch.path().display());
        let mut below: Vec<&str> = mounts.lines().filter(|m| m.starts_with(&root)).collect();
        below.sort_unstable_by(|a, b| b.cmp(a));
        for mount in below {
            let _ = rustix::mount::unmount(mount, rustix::mount::UnmountFlags::DETACH);
        }
        // The kubelet keeps pods' logs in /var/log until its next garbage
        // collection; it is stopped, so they go here.
        for (name, uid) in &self.pods {
            let _ = std::fs::remove_dir_all(format!("/var/log/pods/default_{name}_{uid}"));
            for link in integration_tests::list(Path::new("/var/log/containers")) {
                if link.starts_with(&format!("{name}_default_")) {
                    let _ = std::fs::remove_file(Path::new("/var/log/containers").join(link));
                }
            }
        }
    }
}

/// Where a node whose files are in `scratch` keeps them.
fn node_dir(scratch: &tempfile::TempDir) -> PathBuf {
    scratch.path().join("node")
}

fn node_script() -> PathBuf {
    workspace().join("tests/support/kubernetes/node.sh")
}

/// A network namespace for the node: loopback up, and one address that
/// is not loopback (the kubelet refuses a loopback node IP) on a veth
/// pair of its own.
fn node_netns() -> Netns {
    let netns = Netns::new();
    for args in [
        "link set lo up",
        "link add node0 type veth peer name node0-peer",
        &format!("addr add {NODE_IP}/24 dev node0"),
        "link set node0 up",
        "link set node0-peer up",
    ] {
        let status = Command::new("ip")
            .args(["-n", &netns.name])
            .args(args.split(' '))
            .status()
            .unwrap();
        assert!(status.success(), "ip -n {} {args}", netns.name);
    }
    netns
}

/// The example NAD's config, pointed at this test's OVS, dirs and API
/// server (Multus's kubeconfig), the node's kubelet dir, and a log file.
fn plugin_config(api: &KubeApi, ovs: &Ovs, dirs: &Path, node_dir: &Path) -> Value {
    let nad = manifests(&workspace().join("examples/kubernetes/nad-ovs-dpdk-memif.yaml"));
    let mut config: Value = serde_json::from_str(nad[0]["spec"]["config"].as_str().unwrap())
        .expect("the example NAD's config is JSON");
    config["kubeconfig"] = json!(api.kubeconfig(dirs, Identity::Multus));
    config["logFile"] = json!(dirs.join("userspace-cni.log"));
    config["logLevel"] = json!("debug");
    config["stateDir"] = json!(dirs.join("state"));
    config["sharedDir"] = json!(dirs.join("shared"));
    config["kubernetes"] = json!({"kubeletDir": node_dir.join("kubelet"),
                                  "socketMountDir": dirs.join("sockets")});
    config["host"]["bridge"]["bridgeName"] = json!(format!("brk{}", std::process::id() % 100000));
    config["host"]["ovs"] = json!({"dbSocket": ovs.db_socket(), "vhostSockDir": ovs.dir});
    config["ipam"]["dataDir"] = json!(dirs.join("ipam"));
    config
}

fn annotations(pod: &Value) -> BTreeMap<String, String> {
    kube_api_double::annotations_of(pod)
}

/// Two pods of `examples/kubernetes/pod-memif.yaml` on the real kubelet:
/// the plugin (the pod's second network, `eth1`) gives each a memif port
/// on the private OVS-DPDK and publishes its container data on the real
/// API server under Multus's RBAC; the kubelet's downward-API file carries
/// it into the pod; the pod's unprivileged user reaches its socket through
/// the NAD's group; `userspace-app` in each pod pings the other through
/// OVS. Deleting the pods through the API leaves no port, bridge, socket,
/// mount, IPAM reservation or record; stopping the node puts back the
/// host sysctls the kubelet changed.
#[test]
fn two_example_pods_on_a_real_kubelet_ping_over_memif_and_leave_nothing() {
    require_environment();
    let kubelet = k8s_dir().join("bin/kubelet");
    assert!(
        kubelet.is_file(),
        "{} is missing: run tests/support/kubernetes/build.sh",
        kubelet.display()
    );
    assert!(
        Path::new("/usr/bin/containerd").is_file(),
        "containerd is missing: run .ci/setup"
    );
    let ovs = Ovs::shared();
    let netns = node_netns();
    let api = KubeApi::in_netns(&netns.path());
    api.apply_multus_rbac();
    let scratch = scratch_dir();
    let dirs = scratch.path().join("plugin");
    std::fs::create_dir_all(&dirs).unwrap();
    let config = plugin_config(&api, ovs, &dirs, &node_dir(&scratch));
    let bridge = config["host"]["bridge"]["bridgeName"]
        .as_str()
        .unwrap()
        .to_string();
    let tunables = host_sysctls();
    let mut node = Node::start(&api, &netns, scratch, &config);
    wait_for_within("node Ready", 60, || {
        let (code, node) = api.admin("GET", &format!("/api/v1/nodes/{NODE}"), None);
        code == 200
            && node["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    });

    let example = manifests(&workspace().join("examples/kubernetes/pod-memif.yaml"));
    let names = ["memif-app-a", "memif-app-b"];
    let mut uids = Vec::new();
    for name in names {
        let mut pod = example[0].clone();
        pod["metadata"]["name"] = json!(name);
        pod["spec"]["nodeName"] = json!(NODE);
        let (code, created) = api.admin("POST", "/api/v1/namespaces/default/pods", Some(&pod));
        assert_eq!(code, 201, "{created}");
        let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
        node.pods.push((name.to_string(), uid.clone()));
        uids.push(uid);
    }
    // Running, its container started, and the plugin's entry published.
    let pods: Vec<Value> = names
        .iter()
        .map(|name| {
            let mut pod = Value::Null;
            wait_for_within(&format!("pod {name} running with its entry"), 90, || {
                pod = api.pod("default", name);
                pod["status"]["phase"] == "Running"
                    && pod["status"]["containerStatuses"][0]["started"] == true
                    && annotations(&pod).contains_key(DATA)
            });
            pod
        })
        .collect();

    let mut addresses = Vec::new();
    let mut container_ids = Vec::new();
    let mut sandboxes = Vec::new();
    for (pod, uid) in pods.iter().zip(&uids) {
        let entries: Vec<Value> = serde_json::from_str(&annotations(pod)[DATA]).unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let entry = &entries[0];
        // containerd's second network: eth1; the first made eth0.
        assert_eq!(entry["ifName"], "eth1", "{entry}");
        let pod_ip = pod["status"]["podIP"].as_str().unwrap();
        assert!(pod_ip.starts_with("10.233.0."), "eth0's address: {pod_ip}");
        let address = entry["ipResult"]["ips"][0]["address"].as_str().unwrap();
        addresses.push(address.split('/').next().unwrap().to_string());
        container_ids.push(entry["containerId"].as_str().unwrap().to_string());
        sandboxes.push(PathBuf::from(
            entry["ipResult"]["interfaces"][0]["sandbox"]
                .as_str()
                .unwrap(),
        ));

        // The pod's own emptyDir holds its socket (the NAD's group, 0660)
        // and its container data.
        let volume = node.volume(uid, "kubernetes.io~empty-dir", "shared-dir");
        let files = list(&volume);
        let socket = files
            .iter()
            .find(|f| f.starts_with("memif-") && f.ends_with(".sock"))
            .unwrap_or_else(|| panic!("no memif socket in the pod's volume: {files:?}"));
        let meta = std::fs::metadata(volume.join(socket)).unwrap();
        assert_eq!(
            (meta.gid(), meta.mode() & 0o777),
            (POD_GROUP, 0o660),
            "{socket}"
        );
        assert!(
            files.iter().any(|f| f.starts_with("configData-")),
            "{files:?}"
        );
        // The kubelet carries the published entry into the pod's
        // downward-API file.
        let file = node
            .volume(uid, "kubernetes.io~downward-api", "podinfo")
            .join("annotations");
        wait_for_within("the downward-API file to carry the entry", 90, || {
            std::fs::read_to_string(&file).is_ok_and(|t| t.contains(&format!("{DATA}=")))
        });
    }

    // userspace-app in each pod (its unprivileged user, as kubectl exec
    // runs it) pings the other through OVS-DPDK.
    for (n, pod) in pods.iter().enumerate() {
        let ctl = ["/userspace-app", "--ctl", "/tmp/app.ctl"];
        let (ok, out) = node.exec(pod, &format!("wait{n}"), &[&ctl[..], &["wait"]].concat());
        assert!(ok, "{} did not connect its memif: {out}", names[n]);
        let other = &addresses[1 - n];
        let ping = [&ctl[..], &["ping", "-c", "3", "-i", "0.2", other]].concat();
        let (ok, out) = node.exec(pod, &format!("ping{n}"), &ping);
        assert!(
            ok && out.contains("3 received"),
            "{} ping {other}: {out}",
            names[n]
        );
    }

    // examples/kubernetes/pod-tap-sidecar.yaml: `userspace-app up --tap`
    // as a sidecar gives the pod's memif to the kernel; the kernel's ping
    // (busybox's) in the pod reaches the first pod through OVS-DPDK. Its
    // workload container runs the node's image instead of iperf3's, which
    // no registry here serves.
    let mut tap_pod =
        manifests(&workspace().join("examples/kubernetes/pod-tap-sidecar.yaml")).remove(0);
    tap_pod["spec"]["nodeName"] = json!(NODE);
    let workload = &mut tap_pod["spec"]["containers"][1];
    assert_eq!(workload["name"], "app");
    workload["image"] = json!("localhost/userspace-app:latest");
    workload["imagePullPolicy"] = json!("IfNotPresent");
    // A sleep that stops on SIGTERM (as PID 1 it would not by default,
    // and the pod would take its whole grace period to go).
    workload["command"] = json!([
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; /bin/busybox sleep 3600 & wait"
    ]);
    workload.as_object_mut().unwrap().remove("args");
    let (code, created) = api.admin("POST", "/api/v1/namespaces/default/pods", Some(&tap_pod));
    assert_eq!(code, 201, "{created}");
    let tap_uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    node.pods.push(("tap-sidecar".to_string(), tap_uid.clone()));
    let mut pod = Value::Null;
    wait_for_within("pod tap-sidecar running with its entry", 90, || {
        pod = api.pod("default", "tap-sidecar");
        pod["status"]["phase"] == "Running"
            && pod["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["started"] == true))
            && annotations(&pod).contains_key(DATA)
    });
    let entries: Vec<Value> = serde_json::from_str(&annotations(&pod)[DATA]).unwrap();
    let tap_address = entries[0]["ipResult"]["ips"][0]["address"]
        .as_str()
        .unwrap();
    container_ids.push(entries[0]["containerId"].as_str().unwrap().to_string());
    uids.push(tap_uid);
    // The sidecar's TAP, eth1, carries the attachment's address (the
    // sidecar makes it once its memif is connected: wait for that).
    let (ok, out) = node.exec_in(
        &pod,
        "userspace-tap",
        "tapwait",
        &["/userspace-app", "--ctl", "/tmp/app.ctl", "wait"],
    );
    assert!(ok, "the sidecar's memif did not connect: {out}");
    let (ok, out) = node.exec_in(
        &pod,
        "app",
        "tapaddr",
        &["/bin/busybox", "ip", "-o", "addr", "show", "dev", "eth1"],
    );
    assert!(
        ok && out.contains(tap_address),
        "eth1 in the workload container: {out}"
    );
    let (ok, out) = node.exec_in(
        &pod,
        "userspace-tap",
        "tapping",
        &["/bin/busybox", "ping", "-c", "3", "-W", "2", &addresses[0]],
    );
    assert!(
        ok && out.contains("3 packets received"),
        "kernel ping over the TAP: {out}"
    );

    let names = [names[0], names[1], "tap-sidecar"];
    for name in names {
        api.delete_pod_gracefully("default", name);
    }
    for name in names {
        wait_for_within(&format!("pod {name} gone"), 90, || {
            api.pod_is_gone("default", name)
        });
    }
    for (id, uid) in container_ids.iter().zip(&uids) {
        for table in ["Port", "Interface"] {
            assert_eq!(ovs.rows_of_container(table, id), "", "{table} rows of {id}");
        }
        assert_no_ipam_reservation(&dirs.join("ipam/ovs-memif"), id);
        let record = dirs.join("state/attachments/ovs-memif").join(id);
        assert!(!record.exists(), "record left: {}", record.display());
        let pod_dir = node.dir.join("kubelet/pods").join(uid);
        wait_for_within("the kubelet to remove the pod's dir", 60, || {
            !pod_dir.exists()
        });
    }
    assert!(!ovs.bridge_exists(&bridge), "bridge {bridge} left");
    assert_eq!(
        list(&dirs.join("sockets")),
        Vec::<String>::new(),
        "socket mounts left"
    );
    let mounts = String::from_utf8(
        Command::new("findmnt")
            .args(["-rn", "-o", "TARGET"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for sandbox in &sandboxes {
        assert!(!sandbox.exists(), "netns {} left", sandbox.display());
    }
    let left: Vec<&str> = mounts
        .lines()
        .filter(|m| m.starts_with(dirs.to_str().unwrap()))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");

    drop(node);
    assert_eq!(
        host_sysctls(),
        tunables,
        "the kubelet's sysctls are put back"
    );
}

/// The host-wide sysctls the kubelet sets at start.
fn host_sysctls() -> Vec<String> {
    [
        "vm/overcommit_memory",
        "vm/panic_on_oom",
        "kernel/panic",
        "kernel/panic_on_oops",
        "kernel/keys/root_maxkeys",
        "kernel/keys/root_maxbytes",
    ]
    .iter()
    .map(|key| {
        format!(
            "{key}={}",
            std::fs::read_to_string(format!("/proc/sys/{key}"))
                .unwrap()
                .trim()
        )
    })
    .collect()
}
