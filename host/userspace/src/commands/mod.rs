//! One module per CNI command.

pub(crate) mod add;
pub(crate) mod check;
pub(crate) mod del;
pub(crate) mod gc;
pub(crate) mod status;

use attachment_store::{AttachmentKey, Store};
use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;
use wasm_runtime::{EngineComponent, Limits, Role, Runtime};

use crate::naming::Names;

pub(crate) fn open_store(conf: &NetConf) -> Result<Store, CniError> {
    Store::open(&conf.state_dir).map_err(|e| CniError::io("cannot open the state dir", e))
}

/// This attachment's record, if ADD left one.
pub(crate) fn load_record(
    store: &Store,
    key: &AttachmentKey,
) -> Result<Option<attachment_store::Record>, CniError> {
    store
        .load(key)
        .map_err(|e| CniError::io("cannot read the attachment record", e))
}

pub(crate) fn key(conf: &NetConf, env: &Environment) -> AttachmentKey {
    AttachmentKey {
        network: conf.name.clone(),
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
    }
}

/// The runtime, with its artifact cache under the state dir.
pub(crate) fn runtime(conf: &NetConf) -> Result<Runtime, CniError> {
    Runtime::new(format!("{}/cache", conf.state_dir)).map_err(component_error)
}

/// The engine component the config names, loaded and admitted.
pub(crate) fn load_engine<'r>(
    runtime: &'r Runtime,
    conf: &NetConf,
) -> Result<EngineComponent<'r>, CniError> {
    let spec = crate::components::spec(Role::Engine, conf)?;
    runtime.load_engine(&spec).map_err(component_error)
}

/// The attachment as ADD recorded it (CHECK and engine undo steps work
/// from the record, not from a config that may have changed).
pub(crate) fn recorded_attachment(record: &attachment_store::Record) -> wasm_runtime::Attachment {
    let d = &record.details;
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    wasm_runtime::Attachment {
        network: record.key.network.clone(),
        container_id: record.key.container_id.clone(),
        ifname: record.key.ifname.clone(),
        netns: text("netns"),
        host_config: d["hostConfig"].to_string(),
        socket_path: text("socketPath"),
        port_name: text("portName"),
        mac: text("mac"),
        mtu: d["hostConfig"]["mtu"].as_u64().map(|m| m as u32),
        nonce: d["nonce"].as_u64().unwrap_or_default(),
        ipam_result: None,
        pod: serde_json::from_value::<Option<PodRecord>>(d["pod"].clone())
            .ok()
            .flatten()
            .map(PodRecord::into_wit),
    }
}

/// Look-only capabilities on the vSwitch sockets the record names.
pub(crate) fn recorded_probe_caps(
    record: &attachment_store::Record,
) -> crate::capabilities::ProbeCaps {
    let host = &record.details["hostConfig"];
    crate::capabilities::ProbeCaps {
        ovsdb: crate::capabilities::Ovsdb::new(
            host["ovs"]["dbSocket"]
                .as_str()
                .unwrap_or(netconf::DEFAULT_OVS_DB_SOCKET),
        ),
        vpp: crate::capabilities::Vpp::new(
            host["vpp"]["apiSocket"]
                .as_str()
                .unwrap_or(netconf::DEFAULT_VPP_API_SOCKET),
        ),
        journal: crate::capabilities::NoJournal,
        ipam: None,
    }
}

/// The network config as the IPAM plugins get it. Reference IPAM plugins
/// speak up to 1.0.0; their results are converted back to our version.
pub(crate) fn ipam_config(conf: &NetConf) -> serde_json::Value {
    let mut ipam_conf = conf.raw.clone();
    ipam_conf["cniVersion"] = conf
        .cni_version
        .min(cni_protocol::Version::V1_0_0)
        .to_string()
        .into();
    if let Some(obj) = ipam_conf.as_object_mut() {
        obj.remove("cniVersions");
        obj.remove("prevResult");
    }
    ipam_conf
}

/// One network config per IPAM plugin the config lists, each with that
/// plugin's section as `ipam`.
pub(crate) fn ipam_configs(conf: &NetConf) -> Vec<serde_json::Value> {
    let base = ipam_config(conf);
    match &conf.ipam {
        Some(serde_json::Value::Array(sections)) => sections
            .iter()
            .map(|section| {
                let mut one = base.clone();
                one["ipam"] = section.clone();
                one
            })
            .collect(),
        Some(_) => vec![base],
        None => Vec::new(),
    }
}

/// The delegate call for `command` with this CNI call's variables.
pub(crate) fn ipam_call<'a>(env: &'a Environment, command: &'a str) -> ipam_delegate::Call<'a> {
    ipam_delegate::Call {
        command,
        container_id: &env.container_id,
        netns: &env.netns,
        ifname: &env.ifname,
        cni_args: &env.args_raw,
        cni_path: &env.path,
    }
}

pub(crate) fn limits(conf: &NetConf) -> Limits {
    Limits {
        timeout: std::time::Duration::from_millis(conf.component_limits.timeout_ms.into()),
        memory_bytes: conf.component_limits.memory_mib as usize * (1 << 20),
    }
}

pub(crate) fn component_error(e: wasm_runtime::Error) -> CniError {
    CniError::new(codes::COMPONENT_FAILURE, e.to_string(), "")
}

pub(crate) fn from_wit(e: wasm_runtime::CniError) -> CniError {
    CniError::new(e.code, e.msg, e.details)
}

/// The attachment as the engine sees it.
pub(crate) fn attachment(
    conf: &NetConf,
    env: &Environment,
    names: &Names,
    nonce: u64,
    ipam_result: Option<String>,
) -> wasm_runtime::Attachment {
    wasm_runtime::Attachment {
        network: conf.name.clone(),
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
        netns: env.netns.clone(),
        host_config: conf.host.to_json().to_string(),
        socket_path: names.socket_path.clone(),
        port_name: names.port_name.clone(),
        mac: names.mac.clone(),
        mtu: conf.host.mtu,
        nonce,
        ipam_result,
        pod: pod_of(env),
    }
}

/// The pod behind the call, from CNI_ARGS (namespace and name required).
pub(crate) fn pod_of(env: &Environment) -> Option<wasm_runtime::Pod> {
    let args = &env.args;
    match (&args.pod_namespace, &args.pod_name) {
        (Some(namespace), Some(name)) => Some(wasm_runtime::Pod {
            namespace: namespace.clone(),
            name: name.clone(),
            uid: args.pod_uid.clone().unwrap_or_default(),
        }),
        _ => None,
    }
}

/// The pod as the attachment record keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct PodRecord {
    namespace: String,
    name: String,
    uid: String,
}

impl PodRecord {
    pub(crate) fn of(pod: &wasm_runtime::Pod) -> PodRecord {
        PodRecord {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
        }
    }

    fn into_wit(self) -> wasm_runtime::Pod {
        wasm_runtime::Pod {
            namespace: self.namespace,
            name: self.name,
            uid: self.uid,
        }
    }
}
