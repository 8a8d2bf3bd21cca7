//! The host side of the capabilities a component imports, as a thin
//! adapter: the OVSDB and VPP connections, the journal (`journal`), IPAM
//! delegation (the policy is in `ipam`).

use std::time::Duration;

use cni_protocol::{codes, CniError};
use serde_json::Value;
use wasm_runtime::{
    Capabilities, CniError as WitCniError, IpamCapability, OvsdbError, Undo as WitUndo, VppError,
};

use crate::ipam::IpamDelegate;
use crate::journal::{Journal, NoJournal, RecordJournal};
use crate::scope::Scope;
use crate::wit_host::to_wit;

/// How long one OVSDB exchange (including waiting for ovs-vswitchd) may take.
pub(crate) const OVSDB_TIMEOUT: Duration = Duration::from_secs(10);

/// A lazily opened OVSDB connection, within the `ovsdb` scope.
pub(crate) struct Ovsdb {
    socket: String,
    client: Option<ovsdb_client::Client>,
    /// The attachment's socket: the only one an interface may name.
    attachment_socket: Option<String>,
}

impl Ovsdb {
    pub(crate) fn new(socket: &str) -> Ovsdb {
        Ovsdb {
            socket: socket.to_string(),
            client: None,
            attachment_socket: None,
        }
    }

    /// Lets interfaces made on this connection name `socket_path` (ADD).
    pub(crate) fn for_attachment(mut self, socket_path: &str) -> Ovsdb {
        self.attachment_socket = Some(socket_path.to_string());
        self
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
        scope: &Scope,
    ) -> Result<String, OvsdbError> {
        static FIRST_CALL: std::sync::Once = std::sync::Once::new();
        FIRST_CALL.call_once(|| {
            if let Some(started) = crate::STARTED.get() {
                tracing::debug!(
                    micros = started.elapsed().as_micros() as u64,
                    monotonic_ns = crate::monotonic_ns(),
                    "cold start: first host call"
                );
            }
        });
        let ops: Vec<Value> = serde_json::from_str(ops)
            .map_err(|e| OvsdbError::Rejected(format!("operations are not a JSON array: {e}")))?;
        scope
            .ovsdb_ops(&ops, self.attachment_socket.as_deref())
            .map_err(OvsdbError::Rejected)?;
        crate::crash::point("before an OVSDB transaction");
        let result = self.transact(&ops, wait_applied);
        crate::crash::point("after an OVSDB transaction");
        match result {
            Ok(results) => Ok(Value::Array(results).to_string()),
            Err(ovsdb_client::Error::Timeout(m) | ovsdb_client::Error::NotApplied(m)) => {
                Err(OvsdbError::Timeout(m))
            }
            Err(ovsdb_client::Error::Rejected(m)) => Err(OvsdbError::Rejected(m)),
            Err(other) => Err(OvsdbError::Unreachable(other.to_string())),
        }
    }

    /// Runs `ops`; on a broken connection the next call reconnects. Once
    /// ovs-vswitchd has not applied a change within its bound, later
    /// changes of this call are committed without waiting for it again:
    /// each would wait out the bound in turn (a rollback of three steps,
    /// 30 s), and ovs-vswitchd applies the database as it stands when it
    /// moves again.
    pub(crate) fn transact(
        &mut self,
        ops: &[Value],
        mut wait_applied: bool,
    ) -> Result<Vec<Value>, ovsdb_client::Error> {
        if wait_applied {
            if let Some(stall) = stalled(&self.socket) {
                tracing::warn!(
                    "not waiting for ovs-vswitchd, stalled earlier in this call: {stall}"
                );
                wait_applied = false;
            }
        }
        if self.client.is_none() {
            self.client = Some(ovsdb_client::Client::connect(&self.socket, OVSDB_TIMEOUT)?);
        }
        let client = self.client.as_mut().expect("connected above");
        let result = if wait_applied {
            client.transact_and_wait(ops)
        } else {
            client.transact(ops)
        };
        match &result {
            Err(ovsdb_client::Error::NotApplied(m)) => {
                record_stall(&self.socket, m);
                self.client = None;
            }
            Err(_) => self.client = None,
            Ok(_) => {}
        }
        result
    }
}

/// The vSwitch (by OVSDB socket) whose ovs-vswitchd did not apply a
/// change within the bound in this call (one CNI command per process),
/// and how.
static STALLS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn stalled(socket: &str) -> Option<String> {
    let stalls = STALLS.lock().unwrap_or_else(|e| e.into_inner());
    stalls
        .iter()
        .find(|(s, _)| s == socket)
        .map(|(_, m)| m.clone())
}

fn record_stall(socket: &str, how: &str) {
    let mut stalls = STALLS.lock().unwrap_or_else(|e| e.into_inner());
    if !stalls.iter().any(|(s, _)| s == socket) {
        stalls.push((socket.to_string(), how.to_string()));
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

    /// On a broken connection the next call reconnects. The caller has
    /// checked the message against the `vpp` scope.
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

/// What a component may use: the vSwitch connections within `scope`, a
/// journal, and (for the IPAM chain only) IPAM delegation.
pub(crate) struct Caps<J> {
    pub ovsdb: Ovsdb,
    pub vpp: Vpp,
    pub scope: Scope,
    pub journal: J,
    pub ipam: Option<IpamDelegate>,
}

impl<J: Journal> Caps<J> {
    /// The vSwitch sockets (connected on first use) within `scope`, and
    /// `journal`; IPAM delegation only while the IPAM chain runs.
    pub(crate) fn new(
        ovs_db_socket: &str,
        vpp_api_socket: &str,
        scope: Scope,
        journal: J,
    ) -> Caps<J> {
        Caps {
            ovsdb: Ovsdb::new(ovs_db_socket),
            vpp: Vpp::new(vpp_api_socket),
            scope,
            journal,
            ipam: None,
        }
    }
}

impl ProbeCaps {
    /// Look-only capabilities on these vSwitch sockets.
    pub(crate) fn probe(ovs_db_socket: &str, vpp_api_socket: &str, scope: Scope) -> ProbeCaps {
        Caps::new(ovs_db_socket, vpp_api_socket, scope, NoJournal)
    }
}

/// ADD: a component that changes the vSwitch, journalling first.
pub(crate) type AttachmentCaps = Caps<RecordJournal>;
/// CHECK / STATUS / engine undo: a component that only looks.
pub(crate) type ProbeCaps = Caps<NoJournal>;

impl<J: Journal> Capabilities for Caps<J> {
    fn ovsdb_transact(&mut self, ops: String, wait_applied: bool) -> Result<String, OvsdbError> {
        self.ovsdb.transact_json(&ops, wait_applied, &self.scope)
    }

    fn vpp_knows(&mut self, name_crc: String) -> Result<bool, VppError> {
        self.vpp.knows(&name_crc)
    }

    fn vpp_request(&mut self, name_crc: String, body: Vec<u8>) -> Result<Vec<u8>, VppError> {
        self.scope
            .vpp_message(&name_crc)
            .map_err(VppError::Failed)?;
        self.vpp.request(&name_crc, &body)
    }

    fn vpp_dump(
        &mut self,
        name_crc: String,
        body: Vec<u8>,
        details: String,
    ) -> Result<Vec<Vec<u8>>, VppError> {
        self.scope
            .vpp_message(&name_crc)
            .map_err(VppError::Failed)?;
        self.vpp.dump(&name_crc, &body, &details)
    }

    fn journal_append(&mut self, description: String, step: WitUndo) -> Result<(), String> {
        let undo = match step {
            WitUndo::Ovsdb(u) => {
                let ops: Vec<Value> = serde_json::from_str(&u.ops)
                    .map_err(|e| format!("undo operations are not a JSON array: {e}"))?;
                // Replayed by DEL without the attachment's socket: within
                // the scope as undo steps are.
                self.scope.ovsdb_ops(&ops, None)?;
                attachment_store::Undo::Ovsdb {
                    db_socket: self.ovsdb.socket().to_string(),
                    ops: Value::Array(ops),
                    wait_applied: u.wait_applied,
                    skip_if_unmet: u.skip_if_unmet,
                }
            }
            WitUndo::RemoveFile(path) => {
                self.journal.may_remove(&path)?;
                attachment_store::Undo::RemoveFile { path }
            }
            WitUndo::Engine(step) => attachment_store::Undo::Engine { step },
            WitUndo::Vpp(u) => {
                self.scope.vpp_message(&u.name_crc)?;
                attachment_store::Undo::Vpp {
                    api_socket: self.vpp.socket().to_string(),
                    name_crc: u.name_crc,
                    body: u.body,
                    ok_retvals: u.ok_retvals,
                }
            }
        };
        self.journal.append(description, undo)
    }
}

impl<J: Journal> IpamCapability for Caps<J> {
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
        crate::ipam::exec_for_chain(delegate, &mut self.journal, &command, &network_config)
            .map_err(to_wit)
    }
}
