//! A real Kubernetes API server (kube-apiserver 1.20.2 from Debian's
//! source package, built by `tests/support/kubernetes/build.sh`, and
//! Debian's etcd) on loopback, one per test binary, stopped when the test
//! process exits. RBAC is on; identities are static bearer tokens:
//! `admin` (system:masters, for set-up and assertions) and the service
//! accounts in [`Identity`], which hold only what RBAC objects the tests
//! create grant them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// Where build.sh leaves the binaries (`K8S_DIR`, as the scripts take it).
pub fn k8s_dir() -> PathBuf {
    std::env::var_os("K8S_DIR").map_or_else(|| "/opt/userspace-cni-k8s".into(), PathBuf::from)
}

/// Who the plugin authenticates as: a service account of kube-system,
/// as the static token file maps it (user
/// `system:serviceaccount:kube-system:<name>`, groups
/// `system:serviceaccounts` and `system:serviceaccounts:kube-system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Multus's service account, `kube-system/multus`.
    Multus,
    /// This plugin's own, `kube-system/userspace-cni` (examples/kubernetes).
    UserspaceCni,
    /// A service account the tests give a role with one verb less.
    Restricted,
}

impl Identity {
    const ALL: [Identity; 3] = [
        Identity::Multus,
        Identity::UserspaceCni,
        Identity::Restricted,
    ];

    pub fn service_account(self) -> &'static str {
        match self {
            Identity::Multus => "multus",
            Identity::UserspaceCni => "userspace-cni",
            Identity::Restricted => "restricted",
        }
    }

    fn token(self) -> String {
        format!("token-{}-{}", self.service_account(), std::process::id())
    }
}

pub struct KubeApi {
    pub dir: PathBuf,
    pub url: String,
    admin_token: String,
    /// The network namespace it listens in (its loopback), if not ours.
    netns: Option<String>,
    _guard: Child,
}

impl KubeApi {
    /// The API server shared by every test of this test binary.
    pub fn shared() -> &'static KubeApi {
        static API: OnceLock<KubeApi> = OnceLock::new();
        API.get_or_init(|| KubeApi::start(None))
    }

    /// An API server of its own on the loopback of network namespace
    /// `netns` (a path), for a node whose daemons run there.
    pub fn in_netns(netns: &str) -> KubeApi {
        KubeApi::start(Some(netns.to_string()))
    }

    /// An API server of the caller's own, which it may [`KubeApi::stop`].
    pub fn own() -> KubeApi {
        KubeApi::start(None)
    }

    /// Stops the server and its etcd now: a control plane gone away.
    pub fn stop(&self) {
        let status = Command::new(script())
            .arg("stop")
            .arg(&self.dir)
            .status()
            .expect("run api-server.sh");
        assert!(status.success(), "api-server.sh stop");
    }

    /// `program`, run in this server's network namespace.
    fn command(&self, program: &str) -> Command {
        in_netns(self.netns.as_deref(), program)
    }

    fn start(netns: Option<String>) -> KubeApi {
        let apiserver = k8s_dir().join("bin/kube-apiserver");
        assert!(
            apiserver.is_file() && Path::new("/usr/bin/etcd").is_file(),
            "{} or etcd is missing: run tests/support/kubernetes/build.sh (.ci/setup does)",
            apiserver.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("kube-api-")
            .tempdir()
            .unwrap()
            .keep();
        let admin_token = format!("token-admin-{}", std::process::id());
        let mut tokens = format!("{admin_token},admin,admin,\"system:masters\"\n");
        for identity in Identity::ALL {
            let account = identity.service_account();
            tokens.push_str(&format!(
                "{},system:serviceaccount:kube-system:{account},{account},\"system:serviceaccounts,system:serviceaccounts:kube-system\"\n",
                identity.token()
            ));
        }
        std::fs::write(dir.join("tokens.csv"), tokens).unwrap();
        let [etcd, peer, api] = free_ports();
        let script = script();
        let status = in_netns(netns.as_deref(), &script)
            .arg("start")
            .arg(&dir)
            .args([etcd, peer, api].map(|p| p.to_string()))
            .status()
            .expect("run api-server.sh");
        assert!(status.success(), "the API server did not start");
        let guard = crate::stop_guard(&script, &dir);
        KubeApi {
            dir,
            url: format!("https://127.0.0.1:{api}"),
            admin_token,
            netns,
            _guard: guard,
        }
    }

    /// A kubeconfig (in `dir`) that authenticates as `identity`, as
    /// Multus's own kubeconfig does: the server, its CA, a bearer token.
    pub fn kubeconfig(&self, dir: &Path, identity: Identity) -> PathBuf {
        let path = dir.join(format!("{}.kubeconfig", identity.service_account()));
        self.write_kubeconfig(&path, &identity.token());
        path
    }

    /// A kubeconfig (in `dir`) that authenticates as admin (system:masters).
    pub fn admin_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("admin.kubeconfig");
        self.write_kubeconfig(&path, &self.admin_token);
        path
    }

    fn write_kubeconfig(&self, path: &Path, token: &str) {
        std::fs::write(
            path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: cni\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: cni\n  user:\n    token: {}\ncontexts:\n- name: cni\n  context:\n    cluster: local\n    user: cni\n",
                self.url,
                self.dir.join("ca.crt").display(),
                token
            ),
        )
        .unwrap();
    }

    /// One request as admin: (HTTP status, JSON body).
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request(method, path, "application/json", body)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut curl = self.command("curl");
        curl.args(["--silent", "--show-error", "--max-time", "20"])
            .arg("--cacert")
            .arg(self.dir.join("ca.crt"))
            .args(["-H", &format!("Authorization: Bearer {}", self.admin_token)])
            .args(["-H", &format!("Content-Type: {content_type}"), "-X", method])
            .args(["--write-out", "\n%{http_code}"]);
        if let Some(body) = body {
            curl.args(["--data-binary", &body.to_string()]);
        }
        let out = curl
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code = code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {method} {path}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// As [`KubeApi::admin`], asserting one of `expected` statuses.
    fn admin_expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        expected: &[u16],
    ) -> Value {
        let (code, answer) = self.admin(method, path, body);
        assert!(expected.contains(&code), "{method} {path}: {code} {answer}");
        answer
    }

    /// Creates (or replaces) the objects in `objects`: ClusterRoles,
    /// ClusterRoleBindings, ServiceAccounts.
    pub fn apply(&self, objects: &[Value]) {
        for object in objects {
            let name = object["metadata"]["name"].as_str().unwrap();
            let collection = match object["kind"].as_str().unwrap() {
                "ClusterRole" => "/apis/rbac.authorization.k8s.io/v1/clusterroles".to_string(),
                "ClusterRoleBinding" => {
                    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings".to_string()
                }
                "ServiceAccount" => format!(
                    "/api/v1/namespaces/{}/serviceaccounts",
                    object["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default")
                ),
                other => panic!("apply: {other} is not modelled"),
            };
            // Created, or replaced in place: tests running at once apply the
            // same objects, and none may see them missing for a moment.
            if self.admin("POST", &collection, Some(object)).0 == 409 {
                let path = format!("{collection}/{name}");
                let current = self.admin_expect("GET", &path, None, &[200]);
                let mut object = object.clone();
                object["metadata"]["resourceVersion"] =
                    current["metadata"]["resourceVersion"].clone();
                self.admin_expect("PUT", &path, Some(&object), &[200]);
            }
        }
    }

    /// Whether RBAC, as the server's authorizer sees it now, lets
    /// `identity` do `verb` on pods in `default` (a SubjectAccessReview).
    pub fn can(&self, identity: Identity, verb: &str) -> bool {
        let account = identity.service_account();
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {
                "user": format!("system:serviceaccount:kube-system:{account}"),
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
                "resourceAttributes": {"namespace": "default", "verb": verb, "resource": "pods"},
            },
        });
        let answer = self.admin_expect(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            Some(&review),
            &[201],
        );
        answer["status"]["allowed"] == true
    }

    /// Waits until the authorizer has caught up with RBAC objects just
    /// applied: `identity` may do the verbs in `allowed` and none in
    /// `denied`.
    pub fn wait_for_rbac(&self, identity: Identity, allowed: &[&str], denied: &[&str]) {
        crate::wait_for(&format!("RBAC for {identity:?}"), || {
            allowed.iter().all(|v| self.can(identity, v))
                && !denied.iter().any(|v| self.can(identity, v))
        });
    }

    /// Creates pod `namespace/name` with `spec`; returns its uid.
    pub fn create_pod(&self, namespace: &str, name: &str, spec: Value) -> String {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"k8s.v1.cni.cncf.io/networks": "userspace"}},
            "spec": spec,
        });
        let created = self.admin_expect(
            "POST",
            &format!("/api/v1/namespaces/{namespace}/pods"),
            Some(&pod),
            &[201],
        );
        created["metadata"]["uid"].as_str().unwrap().to_string()
    }

    /// Asks for the pod's deletion as `kubectl delete` does (its grace
    /// period, the kubelet stopping it); see [`KubeApi::pod_is_gone`].
    pub fn delete_pod_gracefully(&self, namespace: &str, name: &str) {
        self.admin_expect(
            "DELETE",
            &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
            None,
            &[200, 404],
        );
    }

    pub fn pod_is_gone(&self, namespace: &str, name: &str) -> bool {
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        self.admin("GET", &path, None).0 == 404
    }

    /// Multus's ClusterRole, binding and service account as multus-cni
    /// ships them (`tests/fixtures/multus-rbac.json`), in force once this
    /// returns.
    pub fn apply_multus_rbac(&self) {
        let fixture = crate::workspace().join("tests/fixtures/multus-rbac.json");
        let rbac: Vec<Value> = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
        self.apply(&rbac);
        self.wait_for_rbac(Identity::Multus, &["get", "update"], &[]);
    }

    pub fn delete_pod(&self, namespace: &str, name: &str) {
        // No kubelet: the pod goes at once with a zero grace period.
        self.admin_expect(
            "DELETE",
            &format!("/api/v1/namespaces/{namespace}/pods/{name}?gracePeriodSeconds=0"),
            None,
            &[200, 404],
        );
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Value {
        self.admin_expect(
            "GET",
            &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
            None,
            &[200],
        )
    }

    /// The pod's annotations as the server holds them.
    pub fn annotations(&self, namespace: &str, name: &str) -> BTreeMap<String, String> {
        kube_api_double::annotations_of(&self.pod(namespace, name))
    }

    /// Sets (or with `None` removes) an annotation as another writer
    /// would, with a merge patch as admin.
    pub fn set_annotation(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        let path = format!("/api/v1/namespaces/{namespace}/pods/{name}");
        let (code, answer) =
            self.request("PATCH", &path, "application/merge-patch+json", Some(&patch));
        assert_eq!(code, 200, "{answer}");
    }
}

/// The objects of a YAML manifest, as JSON (through the deployment
/// checks' Python, which has PyYAML).
pub fn manifests(path: &Path) -> Vec<Value> {
    let out = Command::new("/opt/userspace-cni-venv/bin/python")
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

fn script() -> PathBuf {
    crate::workspace().join("tests/support/kubernetes/api-server.sh")
}

/// `program`, run in network namespace `netns` (a path) when there is one.
fn in_netns(netns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        Some(netns) => {
            let mut command = Command::new("nsenter");
            command.arg(format!("--net={netns}")).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Three loopback ports free a moment ago (etcd client, etcd peer, API).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2]]
}
