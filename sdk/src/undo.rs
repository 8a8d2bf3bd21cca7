//! Pair every mutation with the journal record of its inverse.
//!
//! The host persists the record before the call returns, so the undo is on
//! disk before the mutation happens: a crash, a trap or an error at any
//! later point leaves a journal the host can replay.

use crate::bindings::userspace::cni::journal::{self, OvsdbUndo, Undo, VppUndo};
use crate::CniError;

/// Records `undo` (an ovsdb transaction) before the caller mutates.
pub fn record_ovsdb(
    description: &str,
    undo_ops: &serde_json::Value,
    wait_applied: bool,
    skip_if_unmet: bool,
) -> Result<(), CniError> {
    let step = Undo::Ovsdb(OvsdbUndo {
        ops: undo_ops.to_string(),
        wait_applied,
        skip_if_unmet,
    });
    journal::append(description, &step).map_err(journal_error)
}

/// Records a VPP request (`name_crc`, encoded `body`) as an undo; see
/// `vpp::call::record_undo` for the typed form.
pub fn record_vpp(
    description: &str,
    name_crc: &str,
    body: Vec<u8>,
    ok_retvals: &[i32],
) -> Result<(), CniError> {
    let step = Undo::Vpp(VppUndo {
        name_crc: name_crc.to_string(),
        body,
        ok_retvals: ok_retvals.to_vec(),
    });
    journal::append(description, &step).map_err(journal_error)
}

/// Records a step the engine's own `undo` export will carry out.
pub fn record_engine(description: &str, step: &str) -> Result<(), CniError> {
    journal::append(description, &Undo::Engine(step.to_string())).map_err(journal_error)
}

/// Records that `path` must be removed on undo.
pub fn record_remove_file(description: &str, path: &str) -> Result<(), CniError> {
    journal::append(description, &Undo::RemoveFile(path.to_string())).map_err(journal_error)
}

fn journal_error(message: String) -> CniError {
    // A step outside a grant's scope is the component's fault, not the
    // disk's.
    if message.starts_with("ovsdb scope") || message.starts_with("vpp scope") {
        return CniError::new(crate::codes::COMPONENT_FAILURE, message, "");
    }
    CniError::new(
        crate::codes::IO_FAILURE,
        "cannot write the undo journal",
        format!("{message}; nothing was changed on the vSwitch"),
    )
}
