//! The Kubernetes pod behind an attachment: its socket volume, and the
//! annotations the container reads (`userspace/configuration-data`, one
//! entry per interface, and `userspace/mapped-dir`).
//!
//! The API is used only when the runtime names a pod (`K8S_POD_*` in
//! CNI_ARGS) and the config gives a `kubeconfig` (or the plugin runs with
//! in-cluster credentials). Annotation writes are updates of the pod as
//! just read, conditioned on its resourceVersion: another writer's change
//! in between is a 409, and the write is redone from a fresh read, so no
//! key of anyone else is lost and an entry is never there twice. Update,
//! not patch: the credentials are Multus's, and Multus's ClusterRole
//! grants `update` on pods but not `patch`.

use attachment_store::Undo;
use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;
use pod_api::{Client, Credentials};
use serde_json::{json, Value};

use crate::wit_host::pod_of;

pub(crate) const CONFIGURATION_DATA: &str = "userspace/configuration-data";
pub(crate) const MAPPED_DIR: &str = "userspace/mapped-dir";
/// The container's socket dir when the pod does not mount the volume (the
/// Go plugin's default).
pub(crate) const DEFAULT_MAPPED_DIR: &str = "/var/lib/cni/usrspcni";
/// Conditional writes tried before giving up on a busy pod.
const WRITE_ATTEMPTS: usize = 10;

/// A pod as ADD found it.
pub(crate) struct Pod {
    client: Client,
    kubeconfig: Option<String>,
    namespace: String,
    name: String,
    uid: String,
    /// Host directory of the pod's socket volume, if it has one.
    pub volume_dir: Option<String>,
    /// Where the container mounts that volume.
    pub mapped_dir: String,
}

/// A pod the call names, with the credentials to read it: nothing asked
/// of the API yet.
pub(crate) struct Lookup {
    pod: wasm_runtime::Pod,
    credentials: Result<Credentials, pod_api::Error>,
}

/// The pod this call names, when there are credentials to read it with;
/// None is file mode, as without Kubernetes (no API call at all).
pub(crate) fn lookup(conf: &NetConf, env: &Environment) -> Option<Lookup> {
    let pod = pod_of(env)?;
    let Some(credentials) = credentials(conf.kubeconfig.as_deref()) else {
        tracing::debug!("a pod is named but no kubeconfig is configured: file mode");
        return None;
    };
    Some(Lookup { pod, credentials })
}

/// Reads the pod from the API: its uid, socket volume and mount path.
pub(crate) fn read(lookup: Lookup, conf: &NetConf) -> Result<Pod, CniError> {
    let Lookup { pod, credentials } = lookup;
    let what = format!("pod {}/{}", pod.namespace, pod.name);
    let client = Client::new(credentials.map_err(|e| api_error(&what, e))?);
    let found = client
        .get_pod(&pod.namespace, &pod.name)
        .map_err(|e| api_error(&what, e))?;
    let uid = found["metadata"]["uid"].as_str().unwrap_or_default();
    if !pod.uid.is_empty() && pod.uid != uid {
        return Err(CniError::new(
            codes::KUBERNETES_FAILURE,
            format!(
                "{what} was replaced: the runtime names uid {}, the API has {uid:?}",
                pod.uid
            ),
            "",
        ));
    }
    let (volume_dir, mapped_dir) = volume(&found, &conf.kubernetes, uid).map_err(|e| match e {
        VolumeError::Refused(refusal) => CniError::invalid_config(format!("{what}: {refusal}")),
        VolumeError::Pod(e) => CniError::new(codes::KUBERNETES_FAILURE, format!("{what}: {e}"), ""),
    })?;
    Ok(Pod {
        client,
        kubeconfig: conf.kubeconfig.clone(),
        namespace: pod.namespace,
        name: pod.name,
        uid: uid.to_string(),
        volume_dir,
        mapped_dir,
    })
}

/// Credentials from the kubeconfig (whose files must lie in the node
/// policy's kubeconfig roots: they are read as root and a token is sent to
/// the server), else the in-cluster service account.
fn credentials(kubeconfig: Option<&str>) -> Option<Result<Credentials, pod_api::Error>> {
    let policy = crate::policy::node();
    let allowed = |key: &str, path: &std::path::Path| {
        policy
            .check(
                key,
                &path.display().to_string(),
                node_policy::Rule::Kubeconfig,
            )
            .map(|_| ())
            .map_err(|refusal| refusal.to_string())
    };
    match kubeconfig {
        // Checked here too: DEL and GC read the path from a record.
        Some(path) => Some(
            allowed("kubeconfig", std::path::Path::new(path))
                .map_err(pod_api::Error::Credentials)
                .and_then(|()| {
                    Credentials::from_kubeconfig_checked(std::path::Path::new(path), &allowed)
                }),
        ),
        None => Credentials::in_cluster(),
    }
}

enum VolumeError {
    /// The node policy does not allow the volume's host path.
    Refused(Box<node_policy::Refusal>),
    /// The pod's spec cannot be used.
    Pod(String),
}

impl From<String> for VolumeError {
    fn from(e: String) -> Self {
        VolumeError::Pod(e)
    }
}

/// The host dir of the pod's socket volume (hostPath as is; emptyDir in
/// kubelet's tree) and where the container mounts it.
fn volume(
    pod: &Value,
    k8s: &netconf::Kubernetes,
    uid: &str,
) -> Result<(Option<String>, String), VolumeError> {
    let wanted = k8s.shared_dir_volume.as_str();
    let mapped_dir = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["volumeMounts"].as_array().into_iter().flatten())
        .find(|m| m["name"] == wanted)
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or(DEFAULT_MAPPED_DIR)
        .to_string();
    let Some(volume) = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == wanted)
    else {
        return Ok((None, mapped_dir));
    };
    let (dir, kind, rule) = if let Some(path) = volume["hostPath"]["path"].as_str() {
        if !netconf::is_abs_path(path) {
            return Err(format!(
                "volume {wanted}: hostPath {path:?} is not an absolute path without '..'"
            )
            .into());
        }
        // The pod's spec is the tenant's: its hostPath is confined like a
        // config's sharedDir.
        let dir = path.trim_end_matches('/').to_string();
        (dir, "hostPath", node_policy::Rule::PodVolume)
    } else if volume.get("emptyDir").is_some() {
        if !netconf::is_safe_name(uid) {
            return Err(format!("uid {uid:?} cannot be part of a path").into());
        }
        let dir = format!(
            "{}/pods/{uid}/volumes/kubernetes.io~empty-dir/{wanted}",
            k8s.kubelet_dir
        );
        (dir, "emptyDir", node_policy::Rule::PodEmptyDir)
    } else {
        return Err(format!("volume {wanted} is neither a hostPath nor an emptyDir").into());
    };
    crate::policy::node()
        .check(&format!("volume {wanted}: {kind}"), &dir, rule)
        .map_err(VolumeError::Refused)?;
    Ok((Some(dir), mapped_dir))
}

impl Pod {
    /// The undo of [`Pod::publish`], journalled before it.
    pub(crate) fn undo(&self) -> Undo {
        Undo::PodAnnotation {
            kubeconfig: self.kubeconfig.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        }
    }

    /// Puts this interface's container data into the pod's annotations,
    /// replacing an entry of the same container and interface.
    pub(crate) fn publish(&self, entry: &Value) -> Result<(), CniError> {
        let (container_id, ifname) = (
            entry["containerId"].as_str().unwrap_or_default(),
            entry["ifName"].as_str().unwrap_or_default(),
        );
        let outcome = update(
            &self.client,
            (&self.namespace, &self.name, &self.uid),
            Some(&self.mapped_dir),
            |entries| {
                entries.retain(|e| !is_entry_of(e, container_id, ifname));
                entries.push(entry.clone());
            },
        );
        let what = format!("pod {}/{}", self.namespace, self.name);
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(CniError::new(
                codes::KUBERNETES_FAILURE,
                format!("{what} was deleted or replaced while its annotations were written"),
                "",
            )),
            Err(e) => Err(api_error(&what, e)),
        }
    }
}

/// Removes an attachment's entry, as its undo step records. A pod that is
/// gone (or replaced, or out of reach) is not an error: its annotations
/// go with it, and a DEL must not wait for an API that may never answer.
pub(crate) fn remove_entry(undo: &Undo, container_id: &str, ifname: &str) {
    let Undo::PodAnnotation {
        kubeconfig,
        namespace,
        name,
        uid,
    } = undo
    else {
        return;
    };
    let Some(credentials) = credentials(kubeconfig.as_deref()) else {
        tracing::warn!("no credentials any more: annotations of pod {namespace}/{name} left");
        return;
    };
    let outcome = credentials.and_then(|credentials| {
        update(
            &Client::new(credentials),
            (namespace, name, uid),
            None,
            |entries| entries.retain(|e| !is_entry_of(e, container_id, ifname)),
        )
    });
    match outcome {
        Ok(true) => tracing::debug!("annotation entry of pod {namespace}/{name} removed"),
        Ok(false) => {
            tracing::info!("pod {namespace}/{name} is gone or replaced: nothing to remove")
        }
        Err(e) => tracing::warn!("annotation entry of pod {namespace}/{name} left: {e}"),
    }
}

/// Reads the pod, edits its entry list and writes the pod back (an
/// update, conditioned on the version read), again from a fresh read
/// after a conflict. Without
/// entries both annotations are removed. Ok(false): the pod is gone or
/// is another pod of the same name.
fn update(
    client: &Client,
    (namespace, name, uid): (&str, &str, &str),
    mapped_dir: Option<&str>,
    edit: impl Fn(&mut Vec<Value>),
) -> Result<bool, pod_api::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut pod = match client.get_pod(namespace, name) {
            Err(e) if e.is_not_found() => return Ok(false),
            other => other?,
        };
        let metadata = &pod["metadata"];
        if metadata["uid"] != uid {
            return Ok(false);
        }
        let annotations = &metadata["annotations"];
        let mut entries: Vec<Value> = match entries_of(annotations) {
            None => Vec::new(),
            Some(Ok(entries)) => entries,
            Some(Err(e)) => {
                tracing::warn!("{CONFIGURATION_DATA} of pod {namespace}/{name} is not a JSON list ({e}); rewriting it");
                Vec::new()
            }
        };
        edit(&mut entries);
        let (data, mapped) = match entries.is_empty() {
            true => (Value::Null, Value::Null),
            false => (
                Value::from(serde_json::to_string(&entries).expect("json")),
                mapped_dir.map_or_else(|| annotations[MAPPED_DIR].clone(), Value::from),
            ),
        };
        if annotations[CONFIGURATION_DATA] == data && annotations[MAPPED_DIR] == mapped {
            return Ok(true);
        }
        // The pod goes back whole, as read (with its resourceVersion), with
        // only our two annotations changed.
        let annotations = match &mut pod["metadata"]["annotations"] {
            Value::Object(map) => map,
            other => {
                *other = json!({});
                other.as_object_mut().expect("just made")
            }
        };
        for (key, value) in [(CONFIGURATION_DATA, data), (MAPPED_DIR, mapped)] {
            match value {
                Value::Null => annotations.remove(key),
                value => annotations.insert(key.to_string(), value),
            };
        }
        match client.update_pod(namespace, name, &pod) {
            Ok(_) => return Ok(true),
            Err(e) if e.is_conflict() && attempt < WRITE_ATTEMPTS => {
                tracing::debug!("pod {namespace}/{name} changed since read (attempt {attempt}); reading it again");
            }
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Whether a `userspace/configuration-data` entry is this attachment's.
fn is_entry_of(entry: &Value, container_id: &str, ifname: &str) -> bool {
    entry["containerId"] == container_id && entry["ifName"] == ifname
}

/// The entries of `userspace/configuration-data`, if the pod has it.
fn entries_of(annotations: &Value) -> Option<serde_json::Result<Vec<Value>>> {
    annotations[CONFIGURATION_DATA]
        .as_str()
        .map(serde_json::from_str)
}

/// CHECK: the pod still carries this attachment's entry (as the undo step
/// ADD journalled names the pod).
pub(crate) fn check_entry(undo: &Undo, container_id: &str, ifname: &str) -> Result<(), CniError> {
    let Undo::PodAnnotation {
        kubeconfig,
        namespace,
        name,
        uid,
    } = undo
    else {
        return Ok(());
    };
    let what = format!("pod {namespace}/{name}");
    let credentials = credentials(kubeconfig.as_deref()).ok_or_else(|| {
        CniError::invalid_config(format!(
            "{what}: no Kubernetes credentials to check it with"
        ))
    })?;
    let client = Client::new(credentials.map_err(|e| api_error(&what, e))?);
    let pod = client
        .get_pod(namespace, name)
        .map_err(|e| api_error(&what, e))?;
    let failed = |msg: String| Err(CniError::new(codes::CHECK_FAILED, msg, ""));
    if pod["metadata"]["uid"] != uid.as_str() {
        return failed(format!("{what} was replaced (uid {uid} is gone)"));
    }
    let entries = entries_of(&pod["metadata"]["annotations"])
        .and_then(Result::ok)
        .unwrap_or_default();
    if !entries.iter().any(|e| is_entry_of(e, container_id, ifname)) {
        return failed(format!(
            "{what}: {CONFIGURATION_DATA} has no entry for container {container_id} interface {ifname}"
        ));
    }
    Ok(())
}

fn api_error(what: &str, e: pod_api::Error) -> CniError {
    let code = match &e {
        pod_api::Error::Transport { .. } => codes::TRY_AGAIN_LATER,
        pod_api::Error::Credentials(_) => codes::INVALID_NETWORK_CONFIG,
        pod_api::Error::BadName { .. } => codes::INVALID_ENVIRONMENT,
        _ => codes::KUBERNETES_FAILURE,
    };
    let hint = match &e {
        pod_api::Error::Status { code: 401 | 403, .. } => {
            "the plugin's credentials need get and update on pods, as Multus's ClusterRole grants (see examples/kubernetes/daemonset.yaml)"
        }
        _ => "",
    };
    CniError::new(code, format!("{what}: {e}"), hint)
}
