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
    /// Whether the record is on disk. A new record is first written with
    /// its first step (one durable write, not two), or by
    /// [`RecordJournal::persist`] before a mutation the host makes itself.
    saved: bool,
}

impl RecordJournal {
    /// A record already on disk.
    #[cfg(test)]
    pub(crate) fn saved(store: Store, record: Record) -> RecordJournal {
        RecordJournal {
            store,
            record,
            saved: true,
        }
    }

    /// A new record, not written yet: nothing it undoes exists yet.
    pub(crate) fn unsaved(store: Store, record: Record) -> RecordJournal {
        RecordJournal {
            store,
            record,
            saved: false,
        }
    }

    /// Writes the record durably unless it is on disk: what the host is
    /// about to change is undone by a step it already holds.
    pub(crate) fn persist(&mut self) -> Result<(), attachment_store::Error> {
        if !self.saved {
            self.store.save(&self.record)?;
            self.saved = true;
        }
        Ok(())
    }
}

/// Steps one attachment may journal: far more than an ADD takes (about a
/// dozen), few enough that replaying them stays bounded.
const MAX_STEPS: usize = 256;

impl Journal for RecordJournal {
    fn append(&mut self, description: String, undo: attachment_store::Undo) -> Result<(), String> {
        if self.record.journal.len() >= MAX_STEPS {
            return Err(format!(
                "{description}: the attachment's journal holds {MAX_STEPS} steps, its limit"
            ));
        }
        tracing::debug!(%description, "journal");
        // A file removal the host's plan already holds, repeated to run
        // earlier, is not written on its own: the next write carries it
        // (the commit, as a rule), and lost, the plan's copy still runs,
        // later. Anything else is on disk before the caller goes on.
        let repeated = matches!(undo, attachment_store::Undo::RemoveFile { .. })
            && self.record.journal.iter().any(|e| e.undo == undo);
        self.record.journal.push(JournalEntry { description, undo });
        let appended = if repeated && self.saved {
            Ok(())
        } else {
            self.store.save(&self.record).map_err(|e| e.to_string())
        };
        self.saved |= appended.is_ok();
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

#[cfg(test)]
mod tests {
    use super::*;
    use attachment_store::{AttachmentKey, Record, Store, Undo};

    /// A new record reaches the disk with its first step, or when the host
    /// persists it before changing something itself; once, not twice.
    #[test]
    fn a_new_record_is_written_with_its_first_step_or_on_persist() {
        let tmp = tempfile::tempdir().unwrap();
        let key = AttachmentKey {
            network: "net".into(),
            container_id: "c1".into(),
            ifname: "net1".into(),
        };
        let store = Store::open(tmp.path().join("state")).unwrap();
        let record = Record::new(key.clone(), serde_json::json!({"version": 2}));
        let mut journal = RecordJournal::unsaved(store, record);
        assert!(journal.store.load(&key).unwrap().is_none(), "not yet");
        let step = Undo::Engine {
            step: "noop".into(),
        };
        journal.append("first".into(), step).unwrap();
        let on_disk = journal.store.load(&key).unwrap().expect("written");
        assert_eq!(on_disk.journal.len(), 1);
        journal.persist().unwrap();

        let other = AttachmentKey {
            ifname: "net2".into(),
            ..key
        };
        let record = Record::new(other.clone(), serde_json::json!({"version": 2}));
        let RecordJournal { store, .. } = journal;
        let mut journal = RecordJournal::unsaved(store, record);
        journal.persist().unwrap();
        assert!(journal.store.load(&other).unwrap().is_some());
    }

    /// A component cannot journal without end: the replay stays bounded.
    #[test]
    fn the_journal_stops_at_its_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("state")).unwrap();
        let key = AttachmentKey {
            network: "net".into(),
            container_id: "c1".into(),
            ifname: "net1".into(),
        };
        let record = Record::new(key, serde_json::json!({"version": 2}));
        store.save(&record).unwrap();
        let mut journal = RecordJournal::saved(store, record);
        let step = || Undo::Engine {
            step: "noop".into(),
        };
        for n in 0..MAX_STEPS {
            journal.append(format!("step {n}"), step()).unwrap();
        }
        let err = journal.append("one more".into(), step()).unwrap_err();
        assert!(err.contains("256 steps"), "{err}");
        assert_eq!(journal.record.journal.len(), MAX_STEPS);
    }
}
