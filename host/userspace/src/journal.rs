//! Where the undo steps of what the host and components do go: the
//! attachment's record for ADD (each step durable before its mutation),
//! nowhere for CHECK, STATUS and undo steps, which change nothing.

use attachment_store::{JournalEntry, Record, Store};

use crate::record::Details;

/// Where journalled undo steps go.
pub(crate) trait Journal: Send + 'static {
    fn append(&mut self, description: String, undo: attachment_store::Undo) -> Result<(), String>;
    /// Drops the newest step: what it undoes is known not to exist.
    fn retract_last(&mut self) -> Result<(), String>;
    /// Whether a component may journal the removal of `path`: only inside
    /// the attachment's own dirs (its shared dir, its socket mount).
    fn may_remove(&self, path: &str) -> Result<(), String>;
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

    fn may_remove(&self, path: &str) -> Result<(), String> {
        let details = Details::of(&self.record).map_err(|e| e.msg)?;
        let own = [Some(&details.shared_dir), details.socket_mount.as_ref()];
        if own
            .into_iter()
            .flatten()
            .any(|dir| crate::shared_dir::holds(dir, path))
        {
            return Ok(());
        }
        Err(format!(
            "{path} is not in this attachment's shared dir {}: a component may journal the removal \
             of its own files only",
            details.shared_dir
        ))
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

    fn may_remove(&self, path: &str) -> Result<(), String> {
        Err(format!(
            "remove {path}: CHECK, STATUS and undo steps journal nothing"
        ))
    }
}
