//! Test helpers for components: run an engine against recorded host calls.
//!
//! Record once against a real vSwitch ([`record_add`] with a [`LiveHost`]),
//! keep the [`Cassette`] (JSON) next to your tests, then [`replay_add`] it
//! in unit tests that need no OVS, no root and no hugepages. A replay fails
//! with the first call that differs from the recording, or a recorded call
//! the engine did not make: a change in what the engine does shows up as
//! a failing test, not as a surprise on a node.
//!
//! ```no_run
//! # use userspace_cni_testkit::*;
//! # fn attachment() -> wasm_runtime::Attachment { unimplemented!() }
//! let engine = std::path::Path::new("target/wasm32-wasip2/release/my_engine.wasm");
//! let (result, cassette) = record_add(engine, &attachment(), LiveHost::ovsdb("unix:/run/openvswitch/db.sock")).unwrap();
//! std::fs::write("tests/add.cassette.json", cassette.to_json()).unwrap();
//! // later, anywhere:
//! let cassette = Cassette::from_json(&std::fs::read_to_string("tests/add.cassette.json").unwrap()).unwrap();
//! replay_add(engine, &attachment(), cassette).unwrap();
//! ```

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
pub use wasm_runtime::{AddResult, Attachment, Pod};
use wasm_runtime::{
    Capabilities, CniError, IpamCapability, Limits, OvsdbError, Role, Runtime, Source, Spec, Undo,
    VppError,
};

/// One call an engine made to the host, and what the host answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum HostCall {
    OvsdbTransact {
        ops: Value,
        wait_applied: bool,
        reply: Result<Value, String>,
    },
    VppKnows {
        name_crc: String,
        reply: Result<bool, String>,
    },
    VppRequest {
        name_crc: String,
        body: String,
        reply: Result<String, String>,
    },
    VppDump {
        name_crc: String,
        body: String,
        details_name_crc: String,
        reply: Result<Vec<String>, String>,
    },
    JournalAppend {
        description: String,
        undo: String,
    },
    IpamExec {
        command: String,
        network_config: Value,
        reply: Result<Value, String>,
    },
}

/// The host calls of one component call, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cassette {
    pub calls: Vec<HostCall>,
}

impl Cassette {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a cassette is JSON")
    }

    pub fn from_json(text: &str) -> Result<Cassette, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Component(#[from] wasm_runtime::Error),
    #[error("the engine returned CNI error {}: {} ({})", .0.code, .0.msg, .0.details)]
    Engine(CniError),
    #[error(
        "host call {index} differs from the recording:\n  recorded: {recorded}\n  made:     {made}"
    )]
    Mismatch {
        index: usize,
        recorded: String,
        made: String,
    },
    #[error("the engine made {made} host calls; the recording has {recorded}")]
    Unused { made: usize, recorded: usize },
}

/// The real host a recording talks to: an OVSDB server. The journal is
/// kept in the cassette only; nothing is undone.
pub struct LiveHost {
    socket: String,
    client: Option<ovsdb_client::Client>,
}

impl LiveHost {
    pub fn ovsdb(socket: &str) -> LiveHost {
        LiveHost {
            socket: socket.to_string(),
            client: None,
        }
    }

    fn transact(&mut self, ops: &Value, wait: bool) -> Result<Value, String> {
        let ops = ops.as_array().cloned().unwrap_or_default();
        if self.client.is_none() {
            let client = ovsdb_client::Client::connect(&self.socket, Duration::from_secs(10))
                .map_err(|e| e.to_string())?;
            self.client = Some(client);
        }
        let client = self.client.as_mut().expect("connected above");
        let result = if wait {
            client.transact_and_wait(&ops)
        } else {
            client.transact(&ops)
        };
        result.map(Value::Array).map_err(|e| e.to_string())
    }
}

/// What stands in for the host: live (recording) or a cassette (replay).
enum Host {
    Live(LiveHost),
    Replay(VecDeque<HostCall>),
}

struct Recorder {
    host: Host,
    calls: Vec<HostCall>,
    mismatch: Option<Failure>,
}

impl Recorder {
    /// Records `made` (with `reply` filled in from the host) and returns
    /// the reply; on replay, the recorded call must equal `made`.
    fn call(&mut self, made: HostCall) -> HostCall {
        let index = self.calls.len();
        let answered = match &mut self.host {
            Host::Live(live) => answer_live(live, made),
            Host::Replay(expected) => match expected.pop_front() {
                Some(recorded) if same_request(&recorded, &made) => recorded,
                recorded => {
                    self.mismatch.get_or_insert(Failure::Mismatch {
                        index,
                        recorded: recorded.map_or("(nothing)".into(), |c| describe(&c)),
                        made: describe(&made),
                    });
                    with_error_reply(made, "host call differs from the recording")
                }
            },
        };
        self.calls.push(answered.clone());
        answered
    }
}

fn answer_live(live: &mut LiveHost, made: HostCall) -> HostCall {
    match made {
        HostCall::OvsdbTransact {
            ops, wait_applied, ..
        } => HostCall::OvsdbTransact {
            reply: live.transact(&ops, wait_applied),
            ops,
            wait_applied,
        },
        other => with_error_reply(other, "LiveHost speaks OVSDB only"),
    }
}

/// `call` with its reply replaced by an error (journal appends succeed).
fn with_error_reply(call: HostCall, error: &str) -> HostCall {
    fn failed<T>(error: &str) -> Result<T, String> {
        Err(error.to_string())
    }
    match call {
        HostCall::OvsdbTransact {
            ops, wait_applied, ..
        } => HostCall::OvsdbTransact {
            ops,
            wait_applied,
            reply: failed(error),
        },
        HostCall::VppKnows { name_crc, .. } => HostCall::VppKnows {
            name_crc,
            reply: failed(error),
        },
        HostCall::VppRequest { name_crc, body, .. } => HostCall::VppRequest {
            name_crc,
            body,
            reply: failed(error),
        },
        HostCall::VppDump {
            name_crc,
            body,
            details_name_crc,
            ..
        } => HostCall::VppDump {
            name_crc,
            body,
            details_name_crc,
            reply: failed(error),
        },
        HostCall::IpamExec {
            command,
            network_config,
            ..
        } => HostCall::IpamExec {
            command,
            network_config,
            reply: failed(error),
        },
        journal @ HostCall::JournalAppend { .. } => journal,
    }
}

/// Two calls ask the same thing (their replies aside).
fn same_request(recorded: &HostCall, made: &HostCall) -> bool {
    with_error_reply(recorded.clone(), "") == with_error_reply(made.clone(), "")
}

fn describe(call: &HostCall) -> String {
    serde_json::to_string(&with_error_reply(call.clone(), "")).unwrap_or_default()
}

impl IpamCapability for Recorder {
    fn ipam_exec(&mut self, command: String, network_config: String) -> Result<String, CniError> {
        let network_config = serde_json::from_str(&network_config).unwrap_or(Value::Null);
        match self.call(HostCall::IpamExec {
            command,
            network_config,
            reply: Ok(Value::Null),
        }) {
            HostCall::IpamExec { reply, .. } => {
                reply.map(|v| v.to_string()).map_err(|msg| CniError {
                    code: 101,
                    msg,
                    details: String::new(),
                })
            }
            _ => unreachable!("answered in kind"),
        }
    }
}

impl Capabilities for Recorder {
    fn ovsdb_transact(&mut self, ops: String, wait_applied: bool) -> Result<String, OvsdbError> {
        let ops = serde_json::from_str(&ops).unwrap_or(Value::Null);
        match self.call(HostCall::OvsdbTransact {
            ops,
            wait_applied,
            reply: Ok(Value::Null),
        }) {
            HostCall::OvsdbTransact { reply, .. } => {
                reply.map(|v| v.to_string()).map_err(OvsdbError::Rejected)
            }
            _ => unreachable!("answered in kind"),
        }
    }

    fn vpp_knows(&mut self, name_crc: String) -> Result<bool, VppError> {
        match self.call(HostCall::VppKnows {
            name_crc,
            reply: Ok(false),
        }) {
            HostCall::VppKnows { reply, .. } => reply.map_err(VppError::Failed),
            _ => unreachable!("answered in kind"),
        }
    }

    fn vpp_request(&mut self, name_crc: String, body: Vec<u8>) -> Result<Vec<u8>, VppError> {
        let body = hex::encode(body);
        match self.call(HostCall::VppRequest {
            name_crc,
            body,
            reply: Ok(String::new()),
        }) {
            HostCall::VppRequest { reply, .. } => reply
                .and_then(|h| hex::decode(h).map_err(|e| e.to_string()))
                .map_err(VppError::Failed),
            _ => unreachable!("answered in kind"),
        }
    }

    fn vpp_dump(
        &mut self,
        name_crc: String,
        body: Vec<u8>,
        details_name_crc: String,
    ) -> Result<Vec<Vec<u8>>, VppError> {
        let body = hex::encode(body);
        match self.call(HostCall::VppDump {
            name_crc,
            body,
            details_name_crc,
            reply: Ok(Vec::new()),
        }) {
            HostCall::VppDump { reply, .. } => reply
                .and_then(|list| {
                    list.iter()
                        .map(|h| hex::decode(h).map_err(|e| e.to_string()))
                        .collect()
                })
                .map_err(VppError::Failed),
            _ => unreachable!("answered in kind"),
        }
    }

    fn journal_append(&mut self, description: String, step: Undo) -> Result<(), String> {
        self.call(HostCall::JournalAppend {
            description,
            undo: format!("{step:?}"),
        });
        Ok(())
    }
}

const LIMITS: Limits = Limits {
    timeout: Duration::from_secs(60),
    memory_bytes: 64 << 20,
};

fn run_add(
    engine: &Path,
    attachment: &Attachment,
    host: Host,
) -> (Recorder, Result<AddResult, Failure>) {
    let recorder = Recorder {
        host,
        calls: Vec::new(),
        mismatch: None,
    };
    let cache = std::env::temp_dir().join("userspace-cni-testkit-cache");
    let runtime = match Runtime::new(cache) {
        Ok(runtime) => runtime,
        Err(e) => return (recorder, Err(e.into())),
    };
    let spec = Spec::new(Role::Engine, Source::File(engine.to_path_buf()));
    let loaded = match runtime.load_engine(&spec) {
        Ok(loaded) => loaded,
        Err(e) => return (recorder, Err(e.into())),
    };
    let (recorder, outcome) = loaded.add(recorder, LIMITS, attachment);
    let result = match outcome {
        Ok(Ok(added)) => Ok(added),
        Ok(Err(e)) => Err(Failure::Engine(e)),
        Err(e) => Err(e.into()),
    };
    (recorder, result)
}

/// Runs the engine's ADD against `host`, recording every host call.
pub fn record_add(
    engine: &Path,
    attachment: &Attachment,
    host: LiveHost,
) -> Result<(AddResult, Cassette), Failure> {
    let (recorder, result) = run_add(engine, attachment, Host::Live(host));
    result.map(|added| {
        (
            added,
            Cassette {
                calls: recorder.calls,
            },
        )
    })
}

/// Runs the engine's ADD against `cassette`: every host call must be the
/// recorded one, in order, and every recorded call must be made.
pub fn replay_add(
    engine: &Path,
    attachment: &Attachment,
    cassette: Cassette,
) -> Result<AddResult, Failure> {
    let recorded = cassette.calls.len();
    let (recorder, result) = run_add(engine, attachment, Host::Replay(cassette.calls.into()));
    if let Some(mismatch) = recorder.mismatch {
        return Err(mismatch);
    }
    let added = result?;
    match &recorder.host {
        Host::Replay(left) if !left.is_empty() => Err(Failure::Unused {
            made: recorder.calls.len(),
            recorded,
        }),
        _ => Ok(added),
    }
}
