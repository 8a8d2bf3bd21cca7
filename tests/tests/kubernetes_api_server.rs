//! The plugin against a REAL Kubernetes API server (kube-apiserver 1.20.2
//! with etcd, RBAC on; `integration_tests::kube_api`), authenticating as
//! the NADs make it: with Multus's credentials, under Multus's ClusterRole
//! as multus-cni ships it (`deployments/multus-daemonset.yml`: get, list,
//! update, watch on pods, no patch; its rules are in
//! `tests/fixtures/multus-rbac.json`), and under the example's own role
//! (`examples/kubernetes/daemonset.yaml`), which is the minimum: with one
//! verb less ADD fails naming it. Real pods on a real kubelet are in
//! `kubernetes_node`. The API-double tests (`kubernetes`) keep what a real
//! server cannot be made to do on cue.

use integration_tests::kube_api::{manifests, Identity, KubeApi};
use integration_tests::{cni_call, Netns, Network, Ovs, Run};
use serde_json::{json, Value};

const DATA: &str = "userspace/configuration-data";
const MAPPED: &str = "userspace/mapped-dir";

/// A pod of a container that mounts its socket volume, no volume given
/// (the socket dir is then `sharedDir/<cid12>`).
fn pod_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "localhost/userspace-app:latest",
        "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"}]}],
        "volumes": [{"name": "podinfo", "downwardAPI": {"items": [
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}}]})
}

/// A memif network whose config names a kubeconfig of `identity`.
fn network(api: &KubeApi, identity: Identity) -> Network {
    let mut net = Network::memif(Ovs::shared());
    std::fs::create_dir_all(net.dir("api")).unwrap();
    net.config["kubeconfig"] = json!(api.kubeconfig(&net.dir("api"), identity));
    net
}

/// A memif network whose config names Multus's kubeconfig, with Multus's
/// ClusterRole as shipped in force.
fn multus_network(api: &KubeApi) -> Network {
    api.apply_multus_rbac();
    network(api, Identity::Multus)
}

/// CNI_ARGS as Multus passes them for container `id` of pod
/// `default/<pod>`.
fn pod_args(pod: &str, uid: &str, id: &str) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={uid}"
    )
}

fn call(net: &Network, command: &str, id: &str, netns: &str, pod: &str, uid: &str) -> Run {
    let args = pod_args(pod, uid, id);
    cni_call(
        command,
        id,
        "net1",
        netns,
        &net.stdin(),
        &[("CNI_ARGS", &args)],
    )
}

/// ADD publishes the container's entry, CHECK finds it, DEL removes both
/// annotations; another writer's key survives; nothing is left.
fn add_check_del(api: &KubeApi, net: &Network, pod: &str, id: &str) {
    let uid = api.create_pod("default", pod, pod_spec());
    api.set_annotation("default", pod, "example.com/other-writer", Some("kept"));
    let ns = Netns::new();
    let result = call(net, "ADD", id, &ns.path(), pod, &uid).ok();
    let annotations = api.annotations("default", pod);
    let entries: Vec<Value> = serde_json::from_str(&annotations[DATA]).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["containerId"], id);
    assert_eq!(entries[0]["ifName"], "net1");
    assert_eq!(entries[0]["ipResult"]["ips"], result["ips"]);
    assert!(annotations.contains_key(MAPPED), "{annotations:?}");
    assert_eq!(annotations["example.com/other-writer"], "kept");

    let mut check = net.config.clone();
    check["prevResult"] = result;
    let args = pod_args(pod, &uid, id);
    cni_call(
        "CHECK",
        id,
        "net1",
        &ns.path(),
        check.to_string().as_bytes(),
        &[("CNI_ARGS", &args)],
    )
    .ok();

    call(net, "DEL", id, "", pod, &uid).ok();
    let annotations = api.annotations("default", pod);
    assert!(
        !annotations.contains_key(DATA) && !annotations.contains_key(MAPPED),
        "{annotations:?}"
    );
    assert_eq!(annotations["example.com/other-writer"], "kept");
    net.assert_nothing_left(id);
    api.delete_pod("default", pod);
}

#[test]
fn under_multus_clusterrole_as_shipped_add_publishes_and_del_removes() {
    let api = KubeApi::shared();
    let net = multus_network(api);
    add_check_del(api, &net, "multus-pod", "realmultus001");
}

/// The ClusterRole of examples/kubernetes/daemonset.yaml (get, update on
/// pods) is enough; the same role without `get` or without `update` fails
/// ADD with 104 naming the verb, and leaves nothing.
#[test]
fn the_example_role_is_the_minimum_and_one_verb_less_fails_naming_it() {
    let api = KubeApi::shared();
    let example =
        manifests(&integration_tests::workspace().join("examples/kubernetes/daemonset.yaml"));
    let rbac: Vec<Value> = example
        .into_iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("ClusterRole" | "ClusterRoleBinding" | "ServiceAccount")
            )
        })
        .collect();
    assert_eq!(rbac.len(), 3, "{rbac:?}");
    api.apply(&rbac);
    api.wait_for_rbac(Identity::UserspaceCni, &["get", "update"], &[]);
    let net = network(api, Identity::UserspaceCni);
    add_check_del(api, &net, "example-pod", "realexample01");

    let role = rbac.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    let restricted = network(api, Identity::Restricted);
    for (n, verb) in ["get", "update"].into_iter().enumerate() {
        let mut less = role.clone();
        less["metadata"] = json!({"name": "restricted"});
        for rule in less["rules"].as_array_mut().unwrap() {
            rule["verbs"].as_array_mut().unwrap().retain(|v| v != verb);
        }
        api.apply(&[
            less,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "restricted"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "restricted"},
                   "subjects": [{"kind": "ServiceAccount", "name": "restricted", "namespace": "kube-system"}]}),
        ]);
        let other = if verb == "get" { "update" } else { "get" };
        api.wait_for_rbac(Identity::Restricted, &[other], &[verb]);
        let pod = format!("restricted-{verb}");
        let uid = api.create_pod("default", &pod, pod_spec());
        let id = format!("realless{n:05}");
        let ns = Netns::new();
        let err = call(&restricted, "ADD", &id, &ns.path(), &pod, &uid).err(104);
        let msg = err["msg"].as_str().unwrap();
        assert!(
            msg.contains(&format!("cannot {verb} resource \"pods\"")),
            "without {verb}: {err}"
        );
        assert!(!api.annotations("default", &pod).contains_key(DATA));
        call(&restricted, "DEL", &id, "", &pod, &uid).ok();
        restricted.assert_nothing_left(&id);
        api.delete_pod("default", &pod);
    }
}

/// Two interfaces of one pod while another client keeps annotating it:
/// both entries land and every one of the other writer's keys survives;
/// DEL of one leaves the other; a pod deleted, or replaced by another of
/// the same name, before DEL: DEL succeeds and touches nothing of the new
/// pod; a pod that does not exist fails ADD with 104, nothing left.
#[test]
fn entries_follow_the_pods_life_with_another_writer_at_work() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let api = KubeApi::shared();
    let net = multus_network(api);
    let pod = "busy-pod";
    let uid = api.create_pod("default", pod, pod_spec());
    let ns = Netns::new();
    let id = "realbusy00001";
    let args = pod_args(pod, &uid, id);
    let add = |ifname: &str| {
        cni_call(
            "ADD",
            id,
            ifname,
            &ns.path(),
            &net.stdin(),
            &[("CNI_ARGS", &args)],
        )
        .ok()
    };
    let del =
        |ifname: &str| cni_call("DEL", id, ifname, "", &net.stdin(), &[("CNI_ARGS", &args)]).ok();

    let done = AtomicBool::new(false);
    let written = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                api.set_annotation("default", pod, &format!("example.com/key-{n}"), Some("v"));
                n += 1;
            }
            n
        });
        add("net1");
        add("net2");
        done.store(true, Ordering::SeqCst);
        writer.join().unwrap()
    });
    let annotations = api.annotations("default", pod);
    assert!(written > 0);
    for n in 0..written {
        assert!(
            annotations.contains_key(&format!("example.com/key-{n}")),
            "the other writer's key-{n} was lost"
        );
    }
    let entries: Vec<Value> = serde_json::from_str(&annotations[DATA]).unwrap();
    let ifnames: Vec<&str> = entries
        .iter()
        .map(|e| e["ifName"].as_str().unwrap())
        .collect();
    assert_eq!(ifnames, ["net1", "net2"], "{entries:?}");

    del("net1");
    let entries: Vec<Value> = serde_json::from_str(&api.annotations("default", pod)[DATA]).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["ifName"], "net2");

    // Replaced by another pod of the same name: DEL leaves it alone.
    api.delete_pod("default", pod);
    let new_uid = api.create_pod("default", pod, pod_spec());
    assert_ne!(new_uid, uid);
    api.set_annotation("default", pod, DATA, Some("[]"));
    del("net2");
    assert_eq!(api.annotations("default", pod)[DATA], "[]");
    net.assert_nothing_left(id);

    // Deleted before DEL.
    let id2 = "realbusy00002";
    let args_new = pod_args(pod, &new_uid, id2);
    cni_call(
        "ADD",
        id2,
        "net1",
        &ns.path(),
        &net.stdin(),
        &[("CNI_ARGS", &args_new)],
    )
    .ok();
    api.delete_pod("default", pod);
    cni_call(
        "DEL",
        id2,
        "net1",
        "",
        &net.stdin(),
        &[("CNI_ARGS", &args_new)],
    )
    .ok();
    net.assert_nothing_left(id2);

    // A pod that does not exist.
    let id3 = "realbusy00003";
    let err = cni_call(
        "ADD",
        id3,
        "net1",
        &ns.path(),
        &net.stdin(),
        &[("CNI_ARGS", &args_new)],
    )
    .err(104);
    assert!(err["msg"].as_str().unwrap().contains("not found"), "{err}");
    net.assert_nothing_left(id3);
}

/// The API server stopped (etcd with it) after two ADDs: a retried ADD
/// still gets the recorded answer, DEL succeeds for both and leaves no
/// port, record, shared dir or reservation; the pod's annotations go with
/// the pod, and a DEL that waited for an API that may never come back
/// would hold the kubelet.
#[test]
fn with_the_api_server_stopped_del_succeeds_and_leaves_nothing() {
    let api = KubeApi::own();
    let net = multus_network(&api);
    let pod = "gone-api-pod";
    let uid = api.create_pod("default", pod, pod_spec());
    let ns = Netns::new();
    let (a, b) = ("realgoneapi01", "realgonepod02");
    call(&net, "ADD", a, &ns.path(), pod, &uid).ok();
    let second = call(&net, "ADD", b, &ns.path(), pod, &uid).ok();
    let entries: Vec<Value> = serde_json::from_str(&api.annotations("default", pod)[DATA]).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");

    api.stop();
    assert_eq!(call(&net, "ADD", b, &ns.path(), pod, &uid).ok(), second);
    for id in [a, b] {
        call(&net, "DEL", id, "", pod, &uid).ok();
        net.assert_nothing_left(id);
    }
}

/// Annotations another writer left that are not JSON are rewritten, not
/// a reason to fail the pod: the entry lands, DEL removes it.
#[test]
fn configuration_data_that_is_not_json_is_rewritten() {
    let api = KubeApi::shared();
    let net = multus_network(api);
    let pod = "not-json-pod";
    let uid = api.create_pod("default", pod, pod_spec());
    api.set_annotation("default", pod, DATA, Some("{not json"));
    let ns = Netns::new();
    let id = "realnotjson01";
    call(&net, "ADD", id, &ns.path(), pod, &uid).ok();
    let entries: Vec<Value> = serde_json::from_str(&api.annotations("default", pod)[DATA]).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["containerId"], id);
    call(&net, "DEL", id, "", pod, &uid).ok();
    assert!(!api.annotations("default", pod).contains_key(DATA));
    net.assert_nothing_left(id);
    api.delete_pod("default", pod);
}
