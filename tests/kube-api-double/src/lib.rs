//! TEST DOUBLE of the Kubernetes API server: no API server, kubelet or
//! kind can run on the machines these tests run on. It is not Kubernetes.
//!
//! What it models, as the real server does it: HTTPS with a CA of its own
//! (written into a kubeconfig with a bearer token), `GET`, `PUT` (update)
//! and `PATCH` of `/api/v1/namespaces/<ns>/pods/<name>`: an update must
//! carry `metadata.resourceVersion` (422 without) and may change only the
//! metadata (422 for a changed spec); JSON merge patches
//! (`application/merge-patch+json`, RFC 7386: `null` deletes a key) may
//! carry one; a stale resourceVersion is 409 Conflict, every write makes a
//! new one, and errors are `Status` objects (401 without the token, 403
//! when forbidden, 404 for a missing pod, 415 for another body type).
//!
//! Test hooks: [`KubeApiDouble::forbid`] (RBAC says no to a verb),
//! [`KubeApiDouble::write_before_next_patch`] (another writer changes the
//! pod between the plugin's read and its patch), and
//! [`KubeApiDouble::misbehave`] (a hostile or broken server: answers
//! trickled a byte at a time, of 100 MiB, never, or 409 on every write).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<(String, String), Value>,
    resource_version: u64,
    /// Verbs (`get`, `patch`) answered 403.
    forbidden: Vec<String>,
    /// Annotations another writer sets just before the next write is applied.
    pending_foreign_write: Option<BTreeMap<String, Value>>,
    requests: Vec<Request>,
    misbehaviour: Option<Misbehaviour>,
}

/// How a hostile server answers every request.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// The right answer, one byte per `interval`.
    Trickle { interval: Duration },
    /// A 200 whose body is `bytes` long: a JSON object that never ends.
    Flood { bytes: usize },
    /// Takes the request and never answers (until the client hangs up).
    Silent,
    /// Reads as usual; every write is 409 Conflict, as if another writer
    /// always got in first.
    ConflictStorm,
}

pub struct KubeApiDouble {
    state: Arc<Mutex<State>>,
    address: SocketAddr,
    kubeconfig: PathBuf,
    token: String,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeApiDouble {
    /// Starts a server on a loopback port and writes `dir/kubeconfig`
    /// (and `dir/ca.crt`) for it.
    pub fn start(dir: &Path) -> KubeApiDouble {
        let (ca_pem, server_chain, server_key) = certificates();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().unwrap();
        let token = format!("double-token-{}", std::process::id());
        std::fs::write(dir.join("ca.crt"), &ca_pem).unwrap();
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: cni\nclusters:\n- name: double\n  cluster:\n    server: https://{address}\n    certificate-authority-data: {}\nusers:\n- name: cni\n  user:\n    token: {token}\ncontexts:\n- name: cni\n  context:\n    cluster: double\n    user: cni\n",
                base64::engine::general_purpose::STANDARD.encode(&ca_pem)
            ),
        )
        .unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(server_chain, server_key)
                .expect("server certificate"),
        );
        let state = Arc::new(Mutex::new(State {
            resource_version: 1000,
            ..State::default()
        }));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stopping, token) = (state.clone(), stopping.clone(), token.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (state, tls, token) = (state.clone(), tls.clone(), token.clone());
                    std::thread::spawn(move || serve(stream, tls, &state, &token));
                }
            })
        };
        KubeApiDouble {
            state,
            address,
            kubeconfig,
            token,
            stopping,
            thread: Some(thread),
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The bearer token the kubeconfig holds (tests look for it in logs).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Creates a pod with this uid and spec (volumes, containers...).
    pub fn add_pod(&self, namespace: &str, name: &str, uid: &str, spec: Value) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": uid,
                "resourceVersion": state.resource_version.to_string(),
                "annotations": {"k8s.v1.cni.cncf.io/networks": "userspace"},
            },
            "spec": spec,
        });
        state
            .pods
            .insert((namespace.to_string(), name.to_string()), pod);
    }

    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .pods
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// The pod's annotations as the server holds them.
    pub fn annotations(&self, namespace: &str, name: &str) -> BTreeMap<String, String> {
        let state = self.state.lock().unwrap();
        annotations_of(&state.pods[&(namespace.to_string(), name.to_string())])
    }

    /// Sets (or with None removes) an annotation as another writer would.
    pub fn set_annotation(&self, namespace: &str, name: &str, key: &str, value: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let version = state.resource_version.to_string();
        let pod = state
            .pods
            .get_mut(&(namespace.to_string(), name.to_string()))
            .expect("no such pod");
        merge(pod, &json!({"metadata": {"annotations": {key: value}}}));
        pod["metadata"]["resourceVersion"] = version.into();
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// From now on requests with these verbs (`get`, `patch`) are 403
    /// Forbidden; an empty list allows everything again.
    pub fn forbid(&self, verbs: &[&str]) {
        self.state.lock().unwrap().forbidden = verbs.iter().map(|v| v.to_string()).collect();
    }

    /// From now on every answer misbehaves so (`None`: behaves again).
    pub fn misbehave(&self, misbehaviour: Option<Misbehaviour>) {
        self.state.lock().unwrap().misbehaviour = misbehaviour;
    }

    /// Another writer sets these annotations right before the next write
    /// (update or patch) is applied, so a write conditioned on the version
    /// read earlier gets 409 Conflict.
    pub fn write_before_next_write(&self, annotations: &[(&str, &str)]) {
        self.state.lock().unwrap().pending_foreign_write = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        );
    }
}

impl Drop for KubeApiDouble {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A pod object's annotations (a real server's or the double's).
pub fn annotations_of(pod: &Value) -> BTreeMap<String, String> {
    pod["metadata"]["annotations"]
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A CA (its PEM), and a certificate it signed for 127.0.0.1 and
/// localhost with that certificate's key.
fn certificates() -> (
    String,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-api-double CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    (
        ca_cert.pem(),
        vec![server_cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    )
}

/// One request off the wire, with the headers the double looks at.
struct Incoming {
    request: Request,
    authorization: Option<String>,
    content_type: Option<String>,
    keep_alive: bool,
}

/// Answers the requests of one connection.
fn serve(stream: TcpStream, tls: Arc<rustls::ServerConfig>, state: &Mutex<State>, token: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(connection) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(connection, stream);
    while let Some(incoming) = read_request(&mut stream) {
        let misbehaviour = state.lock().unwrap().misbehaviour;
        if let Some(Misbehaviour::Silent) = misbehaviour {
            state.lock().unwrap().requests.push(incoming.request);
            // Holds the connection until the client gives up.
            let mut sink = [0u8; 512];
            while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            return;
        }
        let (status, body) = match misbehaviour {
            Some(Misbehaviour::ConflictStorm) if incoming.request.method != "GET" => {
                state
                    .lock()
                    .unwrap()
                    .requests
                    .push(incoming.request.clone());
                status(409, "Conflict", "the object has been modified".into())
            }
            _ => answer(state, token, &incoming),
        };
        if let Some(misbehaviour @ (Misbehaviour::Trickle { .. } | Misbehaviour::Flood { .. })) =
            misbehaviour
        {
            misbehave(&mut stream, misbehaviour, status, &body.to_string());
            break;
        }
        let text = body.to_string();
        let reply = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{text}",
            reason(status),
            text.len(),
            if incoming.keep_alive { "" } else { "Connection: close\r\n" }
        );
        let sent = stream
            .write_all(reply.as_bytes())
            .and_then(|_| stream.flush());
        if sent.is_err() || !incoming.keep_alive {
            break;
        }
    }
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

/// Sends the answer as `misbehaviour` says, until done or the client
/// hangs up.
fn misbehave(stream: &mut impl Write, misbehaviour: Misbehaviour, status: u16, body: &str) {
    match misbehaviour {
        Misbehaviour::Trickle { interval } => {
            let reply = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                reason(status),
                body.len()
            );
            for byte in reply.as_bytes() {
                if stream
                    .write_all(&[*byte])
                    .and_then(|_| stream.flush())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(interval);
            }
        }
        Misbehaviour::Silent | Misbehaviour::ConflictStorm => {
            unreachable!("answered in serve")
        }
        Misbehaviour::Flood { bytes } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {bytes}\r\n\r\n{{\"kind\": \"Pod\", \"padding\": \""
            );
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = [b'a'; 64 * 1024];
            let mut left = bytes.saturating_sub(head.len());
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
            let _ = stream.flush();
        }
    }
}

/// Reads one HTTP/1.1 request (head, then a Content-Length body); `None`
/// at the end of the stream.
fn read_request(stream: &mut impl Read) -> Option<Incoming> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = parsed.parse(&buffer) {
            let header = |name: &str| {
                parsed
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).to_string())
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut incoming = Incoming {
                request: Request {
                    method: parsed.method.unwrap_or("").to_string(),
                    path: parsed.path.unwrap_or("").to_string(),
                    body: String::new(),
                },
                authorization: header("authorization"),
                content_type: header("content-type"),
                keep_alive: !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
            };
            while buffer.len() < head_len + length {
                let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
                buffer.extend_from_slice(&chunk[..n]);
            }
            incoming.request.body =
                String::from_utf8_lossy(&buffer[head_len..head_len + length]).to_string();
            return Some(incoming);
        }
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        _ => "Bad Request",
    }
}

/// A `Status` object, the API server's error body.
fn status(code: u16, reason: &str, message: String) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn answer(state: &Mutex<State>, token: &str, incoming: &Incoming) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    state.requests.push(incoming.request.clone());
    if incoming.authorization.as_deref() != Some(&format!("Bearer {token}")) {
        return status(401, "Unauthorized", "Unauthorized".into());
    }
    let request = &incoming.request;
    let parts: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let ["api", "v1", "namespaces", namespace, "pods", name] = parts.as_slice() else {
        return status(
            404,
            "NotFound",
            format!("the server could not find {}", request.path),
        );
    };
    let verb = match request.method.as_str() {
        "GET" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        other => return status(405, "MethodNotAllowed", format!("{other} is not modelled")),
    };
    if state.forbidden.iter().any(|v| v == verb) {
        return status(
            403,
            "Forbidden",
            format!("pods \"{name}\" is forbidden: User \"system:serviceaccount:kube-system:userspace-cni\" cannot {verb} resource \"pods\" in API group \"\" in the namespace \"{namespace}\""),
        );
    }
    let key = (namespace.to_string(), name.to_string());
    if !state.pods.contains_key(&key) {
        return status(404, "NotFound", format!("pods \"{name}\" not found"));
    }
    if verb == "get" {
        return (200, state.pods[&key].clone());
    }
    let wanted = if verb == "update" {
        "application/json"
    } else {
        "application/merge-patch+json"
    };
    if incoming.content_type.as_deref() != Some(wanted) {
        return status(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format: {:?}",
                incoming.content_type
            ),
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&request.body) else {
        return status(400, "BadRequest", "the body is not JSON".into());
    };
    if let Some(foreign) = state.pending_foreign_write.take() {
        let foreign_patch = json!({"metadata": {"annotations": foreign}});
        state.resource_version += 1;
        let version = state.resource_version.to_string();
        let pod = state.pods.get_mut(&key).unwrap();
        merge(pod, &foreign_patch);
        pod["metadata"]["resourceVersion"] = version.into();
    }
    let current = state.pods[&key]["metadata"]["resourceVersion"].clone();
    let expected = body["metadata"].get("resourceVersion");
    if verb == "update" {
        if let Some(refusal) = refuse_update(&state.pods[&key], &body, name) {
            return refusal;
        }
    }
    if let Some(expected) = expected {
        if *expected != current {
            return status(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on pods \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
            );
        }
    }
    state.resource_version += 1;
    let version = state.resource_version.to_string();
    let pod = state.pods.get_mut(&key).unwrap();
    if verb == "update" {
        for field in ["annotations", "labels"] {
            pod["metadata"][field] = body["metadata"][field].clone();
        }
    } else {
        merge(pod, &body);
    }
    pod["metadata"]["resourceVersion"] = version.into();
    (200, pod.clone())
}

/// Why the real server would refuse `update` as an update of `stored`, if
/// it would: no resourceVersion (pods allow no unconditional update),
/// another name or uid, or a changed spec.
fn refuse_update(stored: &Value, update: &Value, name: &str) -> Option<(u16, Value)> {
    let metadata = &update["metadata"];
    if metadata.get("resourceVersion").is_none() {
        return Some(status(
            422,
            "Invalid",
            format!("Pod \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"),
        ));
    }
    if metadata["name"] != name {
        return Some(status(
            400,
            "BadRequest",
            "the name of the object does not match the name on the URL".into(),
        ));
    }
    if metadata
        .get("uid")
        .is_some_and(|uid| *uid != stored["metadata"]["uid"])
    {
        return Some(status(
            409,
            "Conflict",
            format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                metadata["uid"], stored["metadata"]["uid"]
            ),
        ));
    }
    if update["spec"] != stored["spec"] {
        return Some(status(
            422,
            "Invalid",
            format!("Pod \"{name}\" is invalid: spec: Forbidden: pod updates may not change fields other than the mutable ones"),
        ));
    }
    None
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().unwrap();
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_follow_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    }
}
