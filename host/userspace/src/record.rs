//! What an attachment record says about its attachment: the `details` of
//! `attachment_store::Record`, as one versioned type.
//!
//! After the CNI protocol itself this is the plugin's most important
//! contract: DEL, CHECK and GC work from the record alone (the network
//! config may have changed or be gone), and a record outlives the binary
//! that wrote it across upgrades. So:
//!
//! - every read and write of the details goes through [`Details`];
//! - a key that a release adds is optional (`#[serde(default)]`), so the
//!   records of every earlier release still load;
//! - [`DETAILS_VERSION`] goes up when a release changes what a key means or
//!   adds one that DEL needs; a record of a newer version than this binary
//!   reads is refused with a clear error, never misread.
//!
//! The schema (JSON keys, camelCase):
//!
//! | key | meaning |
//! | --- | --- |
//! | `version` | this schema's version (absent: 1, the 0.1.0 release) |
//! | `engine` | `host.engine` as the config spelled it |
//! | `engineComponent` | the engine that ran: `builtIn` name or `file` path, `sha256` pin, `grants`, WASI `files` (absent in the earliest records: the engine named by `engine`, default grants) |
//! | `netns` | `CNI_NETNS` of the ADD |
//! | `hostConfig` | the normalised `host` section (the engine's and CHECK's view of the vSwitch side) |
//! | `sharedDir` | the dir holding the socket and container data |
//! | `socketPath` | the socket as the vSwitch was given it |
//! | `socketMount` | the short bind-mounted dir the socket path goes through, if any |
//! | `portName` | the vSwitch port / interface name |
//! | `mac` | the container side's MAC |
//! | `dataPath` | the container data file |
//! | `nonce` | the random number the naming policy and engine saw |
//! | `pod` | `namespace`, `name`, `uid` from CNI_ARGS, when a pod was named |

use attachment_store::{AttachmentKey, Record};
use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasm_runtime::{Capability, FileGrant, Role, Source, Spec};

use crate::names::Names;

/// The version of [`Details`] this binary writes and the newest it reads.
/// 2: `version` is written (1 had none; same keys otherwise).
pub(crate) const DETAILS_VERSION: u32 = 2;

fn version_one() -> u32 {
    1
}

/// What ADD recorded about the attachment before touching anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Details {
    #[serde(default = "version_one")]
    pub version: u32,
    #[serde(default)]
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_component: Option<EngineRecord>,
    #[serde(default)]
    pub netns: String,
    #[serde(default)]
    pub host_config: Value,
    #[serde(default)]
    pub shared_dir: String,
    #[serde(default)]
    pub socket_path: String,
    #[serde(default)]
    pub socket_mount: Option<String>,
    #[serde(default)]
    pub port_name: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub data_path: String,
    #[serde(default)]
    pub nonce: u64,
    #[serde(default)]
    pub pod: Option<PodRecord>,
}

/// The engine component as the record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EngineRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_in: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Absent: the role's default grants.
    #[serde(default)]
    pub grants: Option<Vec<String>>,
    #[serde(default)]
    pub files: Vec<FileRecord>,
}

/// A host file granted to the engine's WASI, and its name inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub path: String,
    #[serde(rename = "as")]
    pub guest: String,
}

/// The pod as the attachment record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Details {
    /// The details of a new attachment, as ADD records them first.
    pub(crate) fn new(
        conf: &NetConf,
        env: &Environment,
        names: &Names,
        nonce: u64,
        engine: &Spec,
    ) -> Details {
        Details {
            version: DETAILS_VERSION,
            engine: conf.host.engine.as_str().to_string(),
            engine_component: Some(EngineRecord::of(engine)),
            netns: env.netns.clone(),
            host_config: conf.host.to_json(),
            shared_dir: names.shared_dir.clone(),
            socket_path: names.socket_path.clone(),
            socket_mount: names.socket_mount.clone(),
            port_name: names.port_name.clone(),
            mac: names.mac.clone(),
            data_path: names.data_path.clone(),
            nonce,
            pod: crate::wit_host::pod_of(env).as_ref().map(PodRecord::of),
        }
    }

    /// The details of `record`; one of a newer schema is refused.
    pub(crate) fn of(record: &Record) -> Result<Details, CniError> {
        let path = || {
            format!(
                "attachment record of container {} as {} on network {}",
                record.key.container_id, record.key.ifname, record.key.network
            )
        };
        let details: Details = serde_json::from_value(record.details.clone()).map_err(|e| {
            CniError::new(
                codes::IO_FAILURE,
                format!("{} is unreadable", path()),
                e.to_string(),
            )
        })?;
        if details.version > DETAILS_VERSION {
            return Err(CniError::new(
                codes::IO_FAILURE,
                format!(
                    "{} was written by a newer userspace-cni (record version {}; this one reads up to {DETAILS_VERSION})",
                    path(),
                    details.version
                ),
                "run DEL or GC with the version that wrote it, or upgrade this node's plugin",
            ));
        }
        Ok(details)
    }

    pub(crate) fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("details serialize")
    }

    /// The attachment as ADD recorded it (CHECK and engine undo steps work
    /// from the record, not from a config that may have changed).
    pub(crate) fn attachment(&self, key: &AttachmentKey) -> wasm_runtime::Attachment {
        wasm_runtime::Attachment {
            network: key.network.clone(),
            container_id: key.container_id.clone(),
            ifname: key.ifname.clone(),
            netns: self.netns.clone(),
            host_config: self.host_config.to_string(),
            socket_path: self.socket_path.clone(),
            port_name: self.port_name.clone(),
            mac: self.mac.clone(),
            mtu: self.host_config["mtu"].as_u64().map(|m| m as u32),
            nonce: self.nonce,
            ipam_result: None,
            pod: self.pod.clone().map(PodRecord::into_wit),
        }
    }

    /// The OVSDB socket the attachment was made on.
    pub(crate) fn ovs_db_socket(&self) -> &str {
        self.host_config["ovs"]["dbSocket"]
            .as_str()
            .unwrap_or(netconf::DEFAULT_OVS_DB_SOCKET)
    }

    /// The VPP API socket the attachment was made on.
    pub(crate) fn vpp_api_socket(&self) -> &str {
        self.host_config["vpp"]["apiSocket"]
            .as_str()
            .unwrap_or(netconf::DEFAULT_VPP_API_SOCKET)
    }

    /// The engine that ADD ran; the earliest records name only the engine.
    pub(crate) fn engine_spec(&self) -> Result<Spec, CniError> {
        let Some(recorded) = &self.engine_component else {
            return Ok(Spec::new(
                Role::Engine,
                crate::components::engine_source_named(&self.engine),
            ));
        };
        recorded.spec(&self.engine)
    }
}

impl EngineRecord {
    pub(crate) fn of(spec: &Spec) -> EngineRecord {
        let (built_in, file) = match &spec.source {
            Source::BuiltIn(name) => (Some(name.clone()), None),
            Source::File(path) => (None, Some(path.display().to_string())),
        };
        EngineRecord {
            built_in,
            file,
            sha256: spec.sha256.clone(),
            grants: Some(spec.grants.iter().map(|c| c.as_str().to_string()).collect()),
            files: spec
                .files
                .iter()
                .map(|f| FileRecord {
                    path: f.host.display().to_string(),
                    guest: f.guest.clone(),
                })
                .collect(),
        }
    }

    fn spec(&self, engine: &str) -> Result<Spec, CniError> {
        let source = match (&self.built_in, &self.file) {
            (Some(name), _) => Source::BuiltIn(name.clone()),
            (None, Some(path)) => Source::File(path.into()),
            (None, None) => crate::components::engine_source_named(engine),
        };
        let grants = match &self.grants {
            Some(list) => list
                .iter()
                .map(|g| {
                    Capability::parse(g).ok_or_else(|| {
                        CniError::new(
                            codes::IO_FAILURE,
                            format!("attachment record: engine grant {g:?} is unknown"),
                            "",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            None => Role::Engine.default_grants().to_vec(),
        };
        Ok(Spec {
            source,
            sha256: self.sha256.clone(),
            grants,
            files: self
                .files
                .iter()
                .map(|f| FileGrant {
                    host: f.path.clone().into(),
                    guest: f.guest.clone(),
                })
                .collect(),
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use attachment_store::Phase;

    fn fixture() -> Record {
        let text = include_str!("../tests/fixtures/record-0.1.0-vpp-memif.json");
        serde_json::from_str(text).expect("the fixture is a record")
    }

    #[test]
    fn a_record_of_the_previous_release_loads() {
        let record = fixture();
        assert_eq!(record.phase, Phase::Committed);
        let d = Details::of(&record).unwrap();
        assert_eq!(d.version, 1, "no version key: 1");
        assert_eq!(d.engine, "vpp");
        assert_eq!(d.netns, "/var/run/netns/fxns");
        assert_eq!(
            d.socket_path,
            "/tmp/fx/shared/f1xture00000/memif-f1xture00000-net1.sock"
        );
        assert_eq!(d.port_name, "memif-f1xture00000-net1");
        assert_eq!(d.mac, "ea:ad:d8:95:1c:ae");
        assert_eq!(d.nonce, 7143914477234650933);
        assert_eq!(d.socket_mount, None);
        assert_eq!(d.vpp_api_socket(), "/tmp/fx/api.sock");
        assert_eq!(
            d.pod,
            Some(PodRecord {
                namespace: "default".into(),
                name: "p1".into(),
                uid: "1234".into()
            })
        );
        let spec = d.engine_spec().unwrap();
        assert!(matches!(spec.source, Source::BuiltIn(ref n) if n == "vpp"));
        assert_eq!(spec.grants.len(), 6);
        let attachment = d.attachment(&record.key);
        assert_eq!(attachment.container_id, "f1xture000000001");
        assert_eq!(attachment.host_config, d.host_config.to_string());
        // What it says survives being written again (with a version).
        let again = Details::of(&Record {
            details: d.to_value(),
            ..record
        })
        .unwrap();
        assert_eq!(again, Details { version: 1, ..d });
    }

    #[test]
    fn a_record_of_a_newer_version_is_refused_not_misread() {
        let mut record = fixture();
        record.details["version"] = (DETAILS_VERSION + 1).into();
        let err = Details::of(&record).unwrap_err();
        assert_eq!(err.code, codes::IO_FAILURE);
        assert!(err.msg.contains("newer userspace-cni"), "{}", err.msg);
        assert!(err
            .msg
            .contains(&format!("version {}", DETAILS_VERSION + 1)));
    }

    #[test]
    fn the_earliest_records_name_only_the_engine() {
        let mut record = fixture();
        record
            .details
            .as_object_mut()
            .unwrap()
            .remove("engineComponent");
        let spec = Details::of(&record).unwrap().engine_spec().unwrap();
        assert!(matches!(spec.source, Source::BuiltIn(ref n) if n == "vpp"));
        assert_eq!(spec.grants, Role::Engine.default_grants().to_vec());
    }

    #[test]
    fn a_wrongly_typed_key_is_an_error_not_an_empty_string() {
        let mut record = fixture();
        record.details["socketPath"] = 7.into();
        let err = Details::of(&record).unwrap_err();
        assert!(err.msg.contains("unreadable"), "{}", err.msg);
    }
}
