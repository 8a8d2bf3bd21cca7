//! The host side of the capabilities a component imports: the OVSDB
//! connection, the attachment's journal and IPAM delegation.

use std::time::Duration;

use attachment_store::{JournalEntry, Record, Store};
use cni_protocol::{codes, CniError};
use serde_json::Value;
use wasm_runtime::{
    Capabilities, CniError as WitCniError, IpamCapability, OvsdbError, Undo as WitUndo, VppError,
};

use crate::wit_host::to_wit;

/// How long one OVSDB exchange (including waiting for ovs-vswitchd) may take.
pub(crate) const OVSDB_TIMEOUT: Duration = Duration::from_secs(10);

/// A lazily opened OVSDB connection.
pub(crate) struct Ovsdb {
    socket: String,
    client: Option<ovsdb_client::Client>,
}

impl Ovsdb {
    pub(crate) fn new(socket: &str) -> Ovsdb {
        Ovsdb {
            socket: socket.to_string(),
            client: None,
        }
    }

    pub(crate) fn socket(&self) -> &str {
        &self.socket
    }

    /// The `ovsdb` capability: a JSON array of operations in, the JSON
    /// array of results out.
    pub(crate) fn transact_json(
        &mut self,
        ops: &str,
        wait_applied: bool,
    ) -> Result<String, OvsdbError> {
        static FIRST_CALL: std::sync::Once = std::sync::Once::new();
        FIRST_CALL.call_once(|| {
            if let Some(started) = crate::STARTED.get() {
                tracing::debug!(
                    micros = started.elapsed().as_micros() as u64,
                    "cold start: first host call"
                );
            }
        });
        let ops: Vec<Value> = serde_json::from_str(ops)
            .map_err(|e| OvsdbError::Rejected(format!("operations are not a JSON array: {e}")))?;
        crate::crash::point("before an OVSDB transaction");
        let result = self.transact(&ops, wait_applied);
        crate::crash::point("after an OVSDB transaction");
        match result {
            Ok(results) => Ok(Value::Array(results).to_string()),
            Err(ovsdb_client::Error::Timeout(m)) => Err(OvsdbError::Timeout(m)),
            Err(ovsdb_client::Error::Rejected(m)) => Err(OvsdbError::Rejected(m)),
            Err(other) => Err(OvsdbError::Unreachable(other.to_string())),
        }
    }

    /// Runs `ops`; on a broken connection the next call reconnects.
    pub(crate) fn transact(
        &mut self,
        ops: &[Value],
        wait_applied: bool,
    ) -> Result<Vec<Value>, ovsdb_client::Error> {
        if self.client.is_none() {
            self.client = Some(ovsdb_client::Client::connect(&self.socket, OVSDB_TIMEOUT)?);
        }
        let client = self.client.as_mut().expect("connected above");
        let result = if wait_applied {
            client.transact_and_wait(ops)
        } else {
            client.transact(ops)
        };
        if result.is_err() {
            self.client = None;
        }
        result
    }
}

/// A lazily opened connection to VPP's API socket.
pub(crate) struct Vpp {
    socket: String,
    conn: Option<vpp_api::Connection>,
}

impl Vpp {
    pub(crate) fn new(socket: &str) -> Vpp {
        Vpp {
            socket: socket.to_string(),
            conn: None,
        }
    }

    pub(crate) fn socket(&self) -> &str {
        &self.socket
    }

    fn conn(&mut self) -> Result<&mut vpp_api::Connection, VppError> {
        if self.conn.is_none() {
            let limits = vpp_api::Limits::within(OVSDB_TIMEOUT);
            let conn = vpp_api::Connection::connect(&self.socket, "userspace-cni", limits)
                .map_err(vpp_error)?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    pub(crate) fn knows(&mut self, name_crc: &str) -> Result<bool, VppError> {
        Ok(self.conn()?.knows(name_crc))
    }

    /// On a broken connection the next call reconnects.
    pub(crate) fn request(&mut self, name_crc: &str, body: &[u8]) -> Result<Vec<u8>, VppError> {
        crate::crash::point("before a VPP request");
        let result = self.conn()?.request(name_crc, body).map_err(vpp_error);
        crate::crash::point("after a VPP request");
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    pub(crate) fn dump(
        &mut self,
        name_crc: &str,
        body: &[u8],
        details: &str,
    ) -> Result<Vec<Vec<u8>>, VppError> {
        let result = self
            .conn()?
            .dump(name_crc, body, details)
            .map_err(vpp_error);
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

fn vpp_error(e: vpp_api::Error) -> VppError {
    match e {
        vpp_api::Error::Unreachable { .. } => VppError::Unreachable(e.to_string()),
        vpp_api::Error::UnknownMessage { .. } => VppError::UnknownMessage(e.to_string()),
        vpp_api::Error::Timeout { .. } => VppError::Timeout(e.to_string()),
        other => VppError::Failed(other.to_string()),
    }
}

/// What a component may use: the vSwitch connections, a journal, and
/// (for the IPAM chain only) IPAM delegation.
pub(crate) struct Caps<J> {
    pub ovsdb: Ovsdb,
    pub vpp: Vpp,
    pub journal: J,
    pub ipam: Option<IpamDelegate>,
}

impl<J: Journal> Caps<J> {
    /// The vSwitch sockets (connected on first use) and `journal`; IPAM
    /// delegation only while the IPAM chain runs.
    pub(crate) fn new(ovs_db_socket: &str, vpp_api_socket: &str, journal: J) -> Caps<J> {
        Caps {
            ovsdb: Ovsdb::new(ovs_db_socket),
            vpp: Vpp::new(vpp_api_socket),
            journal,
            ipam: None,
        }
    }
}

impl ProbeCaps {
    /// Look-only capabilities on these vSwitch sockets.
    pub(crate) fn probe(ovs_db_socket: &str, vpp_api_socket: &str) -> ProbeCaps {
        Caps::new(ovs_db_socket, vpp_api_socket, NoJournal)
    }
}

/// The CNI variables an IPAM plugin is run with.
pub(crate) struct IpamDelegate {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub cni_args: String,
    pub cni_path: Vec<String>,
}

impl IpamDelegate {
    pub(crate) fn new(env: &cni_protocol::Environment) -> IpamDelegate {
        IpamDelegate {
            container_id: env.container_id.clone(),
            netns: env.netns.clone(),
            ifname: env.ifname.clone(),
            cni_args: env.args_raw.clone(),
            cni_path: env.path.clone(),
        }
    }
}

/// Where journalled undo steps go.
pub(crate) trait Journal: Send + 'static {
    fn append(&mut self, description: String, undo: attachment_store::Undo) -> Result<(), String>;
    /// Drops the newest step: what it undoes is known not to exist.
    fn retract_last(&mut self) -> Result<(), String>;
}

/// The attachment's record: every step is persisted (fsync) at once. Owns
/// the store, and with it the state dir's lock.
pub(crate) struct RecordJournal {
    pub store: Store,
    pub record: Record,
}

impl Journal for RecordJournal {
    fn append(&mut self, description: String, undo: attachment_store::Undo) -> Result<(), String> {
        tracing::debug!(%description, "journal");
        let appended = self
            .store
            .append(&mut self.record, JournalEntry { description, undo })
            .map_err(|e| e.to_string());
        crate::crash::point("after a journal record");
        appended
    }

    fn retract_last(&mut self) -> Result<(), String> {
        self.record.journal.pop();
        self.store.save(&self.record).map_err(|e| e.to_string())
    }
}

/// CHECK, STATUS and engine undo steps look and change nothing: they may
/// not journal.
pub(crate) struct NoJournal;

impl Journal for NoJournal {
    fn append(&mut self, description: String, _undo: attachment_store::Undo) -> Result<(), String> {
        Err(format!(
            "{description}: CHECK, STATUS and undo steps change nothing, so they journal nothing"
        ))
    }

    fn retract_last(&mut self) -> Result<(), String> {
        Err("CHECK, STATUS and undo steps journal nothing".into())
    }
}

/// ADD: a component that changes the vSwitch, journalling first.
pub(crate) type AttachmentCaps = Caps<RecordJournal>;
/// CHECK / STATUS / engine undo: a component that only looks.
pub(crate) type ProbeCaps = Caps<NoJournal>;

impl AttachmentCaps {
    /// Persists the undo of a mutation the host is about to make.
    pub(crate) fn record_undo(
        &mut self,
        description: impl Into<String>,
        undo: attachment_store::Undo,
    ) -> Result<(), CniError> {
        self.journal
            .append(description.into(), undo)
            .map_err(|e| CniError::io("cannot write the undo journal", e))
    }
}

impl<J: Journal> Capabilities for Caps<J> {
    fn ovsdb_transact(&mut self, ops: String, wait_applied: bool) -> Result<String, OvsdbError> {
        self.ovsdb.transact_json(&ops, wait_applied)
    }

    fn vpp_knows(&mut self, name_crc: String) -> Result<bool, VppError> {
        self.vpp.knows(&name_crc)
    }

    fn vpp_request(&mut self, name_crc: String, body: Vec<u8>) -> Result<Vec<u8>, VppError> {
        self.vpp.request(&name_crc, &body)
    }

    fn vpp_dump(
        &mut self,
        name_crc: String,
        body: Vec<u8>,
        details: String,
    ) -> Result<Vec<Vec<u8>>, VppError> {
        self.vpp.dump(&name_crc, &body, &details)
    }

    fn journal_append(&mut self, description: String, step: WitUndo) -> Result<(), String> {
        let undo = match step {
            WitUndo::Ovsdb(u) => attachment_store::Undo::Ovsdb {
                db_socket: self.ovsdb.socket().to_string(),
                ops: serde_json::from_str(&u.ops)
                    .map_err(|e| format!("undo operations are not JSON: {e}"))?,
                wait_applied: u.wait_applied,
                skip_if_unmet: u.skip_if_unmet,
            },
            WitUndo::RemoveFile(path) => attachment_store::Undo::RemoveFile { path },
            WitUndo::Engine(step) => attachment_store::Undo::Engine { step },
            WitUndo::Vpp(u) => attachment_store::Undo::Vpp {
                api_socket: self.vpp.socket().to_string(),
                name_crc: u.name_crc,
                body: u.body,
                ok_retvals: u.ok_retvals,
            },
        };
        self.journal.append(description, undo)
    }
}

impl<J: Journal> IpamCapability for Caps<J> {
    /// Runs one IPAM plugin for the IPAM chain; before an ADD, journals
    /// its DEL so that a later failure, a crash, DEL and GC release it.
    fn ipam_exec(
        &mut self,
        command: String,
        network_config: String,
    ) -> Result<String, WitCniError> {
        let Some(delegate) = &self.ipam else {
            // Engines run after IPAM (see commands::add); one asking for
            // it is refused rather than left to guess.
            return Err(to_wit(CniError::new(
                codes::IPAM_FAILURE,
                format!("ipam {command}: IPAM is delegated by the IPAM chain, not by engines"),
                "",
            )));
        };
        let config: Value = serde_json::from_str(&network_config).map_err(|e| {
            to_wit(CniError::invalid_config(format!(
                "IPAM chain: the network config it passed is not JSON: {e}"
            )))
        })?;
        let plugin = match config["ipam"]["type"].as_str() {
            Some(plugin) if netconf::is_safe_name(plugin) => plugin.to_string(),
            _ => {
                return Err(to_wit(CniError::invalid_config(format!(
                    "IPAM chain: ipam.type {} is not a plugin file name",
                    config["ipam"]["type"]
                ))))
            }
        };
        let call = ipam_delegate::Call {
            command: &command,
            container_id: &delegate.container_id,
            netns: &delegate.netns,
            ifname: &delegate.ifname,
            cni_args: &delegate.cni_args,
            cni_path: &delegate.cni_path,
        };
        match command.as_str() {
            "ADD" => {
                ipam_delegate::find_plugin(&plugin, &delegate.cni_path).map_err(to_wit)?;
                let undo = attachment_store::Undo::IpamDel {
                    network_config: config.clone(),
                    netns: delegate.netns.clone(),
                    cni_args: delegate.cni_args.clone(),
                };
                self.journal
                    .append(format!("release the {plugin} allocation"), undo)
                    .map_err(|e| to_wit(CniError::io("cannot write the undo journal", e)))?;
            }
            "CHECK" => {}
            other => {
                return Err(to_wit(CniError::new(
                    codes::IPAM_FAILURE,
                    format!("IPAM chain: ipam {other:?} is not ADD or CHECK (the host releases allocations itself)"),
                    "",
                )))
            }
        }
        crate::crash::point("before an IPAM plugin");
        let output = ipam_delegate::exec(&call, &config);
        crate::crash::point("after an IPAM plugin");
        if let (Err(refused), "ADD") = (&output, command.as_str()) {
            // As the spec asks of a runtime after a failed ADD: release
            // whatever the plugin may hold, now. Its journalled DEL is then
            // retracted: a config the plugin refuses to ADD with is often
            // one it refuses to DEL with, and that must not wedge every
            // later DEL of the attachment.
            let del = ipam_delegate::Call {
                command: "DEL",
                ..call
            };
            if let Err(e) = ipam_delegate::exec(&del, &config) {
                tracing::warn!(
                    plugin,
                    "DEL after the failed ADD ({refused}) failed too: {e}"
                );
            }
            self.journal
                .retract_last()
                .map_err(|e| to_wit(CniError::io("cannot write the undo journal", e)))?;
        }
        output.map(|output| output.to_string()).map_err(to_wit)
    }
}
