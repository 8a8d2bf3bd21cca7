//! The client against the Kubernetes API TEST DOUBLE (HTTPS, own CA,
//! bearer token): reads, conditional updates, and the errors.

use kube_api_double::KubeApiDouble;
use pod_api::{Client, Credentials};
use serde_json::json;

fn client(double: &KubeApiDouble) -> Client {
    Client::new(Credentials::from_kubeconfig(double.kubeconfig()).unwrap())
}

#[test]
fn reads_and_updates_a_pod_with_its_resource_version_as_precondition() {
    let dir = tempfile::tempdir().unwrap();
    let double = KubeApiDouble::start(dir.path());
    double.add_pod("default", "app", "uid-1", json!({"containers": []}));
    let client = client(&double);

    let mut pod = client.get_pod("default", "app").unwrap();
    assert_eq!(pod["metadata"]["uid"], "uid-1");
    let version = pod["metadata"]["resourceVersion"].clone();
    pod["metadata"]["annotations"]["a"] = json!("1");
    let updated = client.update_pod("default", "app", &pod).unwrap();
    assert_ne!(updated["metadata"]["resourceVersion"], version);
    assert_eq!(double.annotations("default", "app")["a"], "1");

    // The same precondition again is stale now.
    pod["metadata"]["annotations"]["a"] = json!("2");
    let stale = client.update_pod("default", "app", &pod).unwrap_err();
    assert!(stale.is_conflict(), "{stale}");
    assert_eq!(double.annotations("default", "app")["a"], "1");
}

#[test]
fn missing_pods_forbidden_calls_and_bad_names_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let double = KubeApiDouble::start(dir.path());
    let client = client(&double);
    let missing = client.get_pod("default", "gone").unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        missing.to_string().contains("pods \"gone\" not found"),
        "{missing}"
    );

    double.add_pod("default", "app", "uid-1", json!({}));
    double.forbid(&["get"]);
    let forbidden = client.get_pod("default", "app").unwrap_err();
    assert!(
        forbidden.to_string().contains("403")
            && forbidden.to_string().contains("cannot get resource"),
        "{forbidden}"
    );

    let requests = double.requests().len();
    let bad = client.get_pod("default", "../../secrets").unwrap_err();
    assert!(
        bad.to_string().contains("not a valid Kubernetes name"),
        "{bad}"
    );
    assert_eq!(double.requests().len(), requests, "nothing was sent");
}

#[test]
fn a_server_not_signed_by_the_kubeconfig_ca_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let double = KubeApiDouble::start(dir.path());
    double.add_pod("default", "app", "uid-1", json!({}));
    // Another double's CA in this double's kubeconfig.
    let other_dir = tempfile::tempdir().unwrap();
    let _other = KubeApiDouble::start(other_dir.path());
    let text = std::fs::read_to_string(double.kubeconfig()).unwrap();
    let other_text = std::fs::read_to_string(_other.kubeconfig()).unwrap();
    let ca = |t: &str| {
        t.lines()
            .find(|l| l.contains("certificate-authority-data"))
            .unwrap()
            .to_string()
    };
    let mixed = text.replace(&ca(&text), &ca(&other_text));
    let path = dir.path().join("mixed");
    std::fs::write(&path, mixed).unwrap();
    let client = Client::new(Credentials::from_kubeconfig(&path).unwrap());
    let error = client.get_pod("default", "app").unwrap_err();
    assert!(error.to_string().contains("unreachable"), "{error}");
    assert!(double.requests().is_empty(), "no request got through");
}
