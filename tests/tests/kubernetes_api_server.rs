//! The plugin against a REAL Kubernetes API server (kube-apiserver 1.20.2
//! with etcd, RBAC on; `integration_tests::kube_api`), authenticating as
//! the NADs make it: with Multus's credentials, under Multus's ClusterRole
//! as multus-cni ships it (`deployments/multus-daemonset.yml`: get, list,
//! update, watch on pods, no patch; its rules are in
//! `tests/fixtures/multus-rbac.json`), and under the example's own role
//! (`examples/kubernetes/daemonset.yaml`), which is the minimum: with one
//! verb less ADD fails naming it. The API-double tests (`kubernetes`)
//! keep what a real server cannot be made to do on cue.

use std::path::Path;

use integration_tests::kube_api::{Identity, KubeApi};
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

fn call(net: &Network, command: &str, id: &str, netns: &str, pod: &str, uid: &str) -> Run {
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={uid}"
    );
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
    let args =
        format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};K8S_POD_UID={uid}");
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
    let rbac: Vec<Value> = serde_json::from_slice(
        &std::fs::read(integration_tests::workspace().join("tests/fixtures/multus-rbac.json"))
            .unwrap(),
    )
    .unwrap();
    api.apply(&rbac);
    let net = network(api, Identity::Multus);
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

/// The objects of a YAML manifest, as JSON (through the deployment
/// checks' Python, which has PyYAML).
fn manifests(path: &Path) -> Vec<Value> {
    let out = std::process::Command::new("/opt/userspace-cni-venv/bin/python")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path)
        .output()
        .expect("run the venv's python (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
