//! The network configuration of a `userspace` network, as the Go
//! Userspace CNI defined it plus this plugin's additions.
//!
//! Parsing works on the JSON value field by field so that every invalid
//! value is reported as CNI error 7 naming the field and what it accepts.
//! Unknown keys are ignored (the runtime adds its own; custom engines read
//! theirs from the raw `host` section).

mod components;
mod fields;
mod keys;
mod side;

use std::collections::BTreeMap;

use cni_protocol::{codes, CniError, CniResult, Version};
use serde_json::Value;

pub use components::{ComponentChoice, Components};
use fields::Obj;
pub use fields::{is_abs_path, is_safe_name, is_unicast_mac};
pub use side::{
    Bridge, Engine, IfType, Memif, NetType, Ovs, Side, Vhost, Vpp, DEFAULT_OVS_DB_SOCKET,
    DEFAULT_VPP_API_SOCKET,
};

/// Largest network config read from stdin.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// Default state directory (attachment records and journals).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/userspace";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
}

/// `componentLimits`: how long one call into a component may run and how
/// much memory it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentLimits {
    pub timeout_ms: u32,
    pub memory_mib: u32,
}

impl Default for ComponentLimits {
    fn default() -> Self {
        ComponentLimits {
            timeout_ms: 60_000,
            memory_mib: 64,
        }
    }
}

/// `kubernetes`: where a pod's socket volume is found and mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubernetes {
    /// The pod volume holding the sockets (the Go plugin's `shared-dir`).
    pub shared_dir_volume: String,
    /// kubelet's root dir: emptyDir volumes are below it.
    pub kubelet_dir: String,
    /// Where a volume is bind-mounted when its socket paths would be too
    /// long for a unix socket (the Go plugin's `/var/lib/vhost_sockets`).
    pub socket_mount_dir: String,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            shared_dir_volume: "shared-dir".into(),
            kubelet_dir: "/var/lib/kubelet".into(),
            socket_mount_dir: "/var/lib/vhost_sockets".into(),
        }
    }
}

/// A parsed, validated network configuration.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: Version,
    pub name: String,
    pub host: Side,
    pub container: Side,
    /// The `ipam` section, when IPAM is delegated: an object, or (this
    /// plugin's extension) a list of objects run in turn.
    pub ipam: Option<Value>,
    /// Which components run, pinned and granted how.
    pub components: Components,
    pub shared_dir: Option<String>,
    pub kubeconfig: Option<String>,
    pub kubernetes: Kubernetes,
    pub log_file: Option<String>,
    pub log_level: LogLevel,
    pub state_dir: String,
    /// Bounds on each call into a component.
    pub component_limits: ComponentLimits,
    /// `runtimeConfig`, keys lower-cased (containerd sends `HostPort`).
    pub runtime_config: BTreeMap<String, Value>,
    /// `runtimeConfig.CNIDeviceInfoFile`: where Multus wants the NPWG
    /// device information of this attachment.
    pub device_info_file: Option<String>,
    pub prev_result: Option<CniResult>,
    /// GC: the attachments the runtime still knows, as (container ID, ifname).
    pub valid_attachments: Option<Vec<(String, String)>>,
    /// The config as received, for delegation to IPAM.
    pub raw: Value,
}

/// The config as JSON; error 6 when it is not.
fn decode(stdin: &[u8]) -> Result<Value, CniError> {
    serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            codes::DECODING_FAILURE,
            "network config is not valid JSON",
            e.to_string(),
        )
    })
}

/// Reads just enough of a config to answer VERSION or report an error in
/// the version the runtime asked for.
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(stdin).ok()?;
    value.get("cniVersion")?.as_str().map(str::to_string)
}

impl NetConf {
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        if stdin.len() > MAX_CONFIG_BYTES {
            return Err(CniError::new(
                codes::DECODING_FAILURE,
                format!(
                    "network config is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
                    stdin.len()
                ),
                "",
            ));
        }
        let mut raw = decode(stdin)?;
        // Every reader, from here on, sees each key in one spelling.
        keys::canonicalize(&mut raw)?;
        let top = Obj::root(&raw)?;

        // The runtime picks the version (libcni from `cniVersions`) and
        // writes it into `cniVersion`: that one, when present, is the call's.
        let cni_version = match (top.opt_str("cniVersion")?, top.get("cniVersions")) {
            (Some(v), _) => Version::parse(v)?,
            (None, Some(list)) if list.is_array() => {
                let offered: Vec<String> = top.str_list("cniVersions")?;
                Version::negotiate(&offered)?
            }
            (None, _) => {
                return Err(CniError::invalid_config(
                    "cniVersion: required (one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)",
                ))
            }
        };
        let name = top.req_str("name")?;
        if !fields::is_safe_name(name) {
            return Err(CniError::invalid_config(format!(
                "name: {name:?} must start with a letter or digit and hold only letters, digits, '_', '.', '-' (at most 128)"
            )));
        }
        let plugin_type = top.req_str("type")?;
        if plugin_type != "userspace" {
            return Err(CniError::invalid_config(format!(
                "type: {plugin_type:?} is not \"userspace\""
            )));
        }

        let ipam = match top.get("ipam") {
            None | Some(Value::Null) => None,
            Some(Value::Object(obj)) if obj.is_empty() => None,
            Some(Value::Array(list)) if !list.is_empty() => {
                for (index, section) in list.iter().enumerate() {
                    ipam_type(section, &format!("ipam[{index}]"))?;
                }
                Some(Value::Array(list.clone()))
            }
            Some(v) => {
                ipam_type(v, "ipam")?;
                Some(v.clone())
            }
        };

        let mtu = top.opt_u32_in("mtu", 68, 65535)?;
        let mac = top.opt_mac("mac")?;
        // The top-level `mac` is the container's: a host-side interface
        // with the same MAC would shadow it (VPP's `netType: interface`).
        let host = Side::parse(&top, "host", None, mtu, None)?;
        let container = Side::parse(&top, "container", Some((&host, ipam.is_some())), mtu, mac)?;
        // The container maps the rings an ovs-dpdk memif port was made
        // with: other counts would have DPDK map a missing ring onto ring 0.
        if host.engine == Engine::OvsDpdk
            && host.iftype == IfType::Memif
            && (container.memif.rx_queues, container.memif.tx_queues)
                != (host.memif.rx_queues, host.memif.tx_queues)
        {
            return Err(CniError::invalid_config(
                "container.memif.rxQueues, txQueues: with engine ovs-dpdk they are the host's (the rings the port has)",
            ));
        }
        keys::refuse_unsupported(&raw)?;

        let log_level = match top
            .opt_str("logLevel")?
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("warning") | Some("warn") => LogLevel::Warning,
            Some("panic") | Some("error") => LogLevel::Error,
            Some("info") => LogLevel::Info,
            Some("debug") | Some("verbose") => LogLevel::Debug,
            Some(other) => {
                return Err(CniError::invalid_config(format!(
                    "logLevel: {other:?} is not one of panic, error, warning, info, debug, verbose"
                )))
            }
        };

        let runtime_config = match top.get("runtimeConfig") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(_) => top
                .child("runtimeConfig")?
                .entries()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        };

        let device_info_file = match runtime_config.get("cnideviceinfofile") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if fields::is_abs_path(p) => Some(p.clone()),
            Some(other) => {
                return Err(CniError::invalid_config(format!(
                    "runtimeConfig.CNIDeviceInfoFile: {other} is not an absolute path without '..'"
                )))
            }
        };

        let prev_result = match top.get("prevResult") {
            None | Some(Value::Null) => None,
            // Content that does not decode is the spec's error 6.
            Some(v) => Some(CniResult::from_value(v).map_err(|e| {
                CniError::new(
                    codes::DECODING_FAILURE,
                    "prevResult: not a CNI result",
                    e.details,
                )
            })?),
        };

        let valid_attachments = ["cni.dev/valid-attachments", "cni.dev/attachments"]
            .iter()
            .find(|key| top.get(key).is_some())
            .map(|key| top.attachments(key))
            .transpose()?;

        Ok(NetConf {
            cni_version,
            name: name.to_string(),
            host,
            container,
            ipam,
            components: Components::parse(&top)?,
            shared_dir: top.opt_abs_path("sharedDir")?,
            kubeconfig: top.opt_abs_path("kubeconfig")?,
            kubernetes: {
                let k8s = top.child("kubernetes")?;
                let default = Kubernetes::default();
                let volume = k8s.opt_str("sharedDirVolume")?;
                if let Some(name) = volume.filter(|n| !fields::is_safe_name(n)) {
                    return Err(CniError::invalid_config(format!(
                        "kubernetes.sharedDirVolume: {name:?} is not a volume name"
                    )));
                }
                Kubernetes {
                    shared_dir_volume: volume.map_or(default.shared_dir_volume, str::to_string),
                    kubelet_dir: k8s
                        .opt_abs_path("kubeletDir")?
                        .unwrap_or(default.kubelet_dir),
                    socket_mount_dir: k8s
                        .opt_abs_path("socketMountDir")?
                        .unwrap_or(default.socket_mount_dir),
                }
            },
            log_file: top.opt_abs_path("logFile")?,
            log_level,
            component_limits: {
                let limits = top.child("componentLimits")?;
                let default = ComponentLimits::default();
                ComponentLimits {
                    timeout_ms: limits
                        .opt_u32_in("timeoutMs", 100, 600_000)?
                        .unwrap_or(default.timeout_ms),
                    memory_mib: limits
                        .opt_u32_in("memoryMiB", 1, 4096)?
                        .unwrap_or(default.memory_mib),
                }
            },
            state_dir: top
                .opt_abs_path("stateDir")?
                .unwrap_or_else(|| DEFAULT_STATE_DIR.to_string()),
            runtime_config,
            device_info_file,
            prev_result,
            valid_attachments,
            raw,
        })
    }
}

impl NetConf {
    /// For a DEL whose config no longer parses (an edited NAD, a newer
    /// plugin's keys): only what locates the attachment record (`name`,
    /// `stateDir`), the IPAM section (to release an allocation that has no
    /// record) and where to log, each kept only if valid. DEL then undoes
    /// what the record holds; nothing else of the config is used.
    pub fn locating_record(stdin: &[u8]) -> Result<NetConf, CniError> {
        let mut raw = decode(stdin)?;
        // A field given in two spellings is left as given: the exact one wins.
        keys::canonicalize_leniently(&mut raw);
        let version = raw["cniVersion"]
            .as_str()
            .filter(|v| Version::parse(v).is_ok())
            .unwrap_or("1.1.0");
        let minimal = serde_json::json!({
            "cniVersion": version,
            "name": raw["name"],
            "type": "userspace",
            "host": {"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge"},
        });
        let with = |keys: &[&str]| {
            let mut config = minimal.clone();
            for key in keys {
                if let Some(value) = raw.get(*key) {
                    config[*key] = value.clone();
                }
            }
            NetConf::parse(config.to_string().as_bytes())
        };
        // stateDir is needed to find the record; the IPAM section releases
        // an allocation that has no record; logging is a nicety.
        with(&["stateDir", "ipam", "logFile", "logLevel"])
            .or_else(|_| with(&["stateDir", "ipam"]))
            .or_else(|_| with(&["stateDir"]))
    }

    /// The IPAM plugin names the config delegates to, in order.
    pub fn ipam_types(&self) -> Vec<&str> {
        match &self.ipam {
            Some(Value::Array(list)) => list.iter().filter_map(|s| s["type"].as_str()).collect(),
            Some(section) => section["type"].as_str().into_iter().collect(),
            None => Vec::new(),
        }
    }
}

/// Checks one IPAM section: an object whose `type` names a plugin file.
fn ipam_type<'a>(section: &'a Value, field: &str) -> Result<&'a str, CniError> {
    let Some(obj) = section.as_object() else {
        return Err(CniError::invalid_config(format!(
            "{field}: must be an object (or ipam a list of objects)"
        )));
    };
    match obj.get("type").and_then(Value::as_str) {
        Some(t) if fields::is_safe_name(t) => Ok(t),
        Some(t) => Err(CniError::invalid_config(format!(
            "{field}.type: {t:?} must be a plugin file name in CNI_PATH"
        ))),
        None => Err(CniError::invalid_config(format!("{field}.type: required"))),
    }
}

#[cfg(test)]
mod tests;
