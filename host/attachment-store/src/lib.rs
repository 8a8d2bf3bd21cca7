//! Where the plugin remembers what it did.
//!
//! One record per (network, container ID, ifname) under
//! `<stateDir>/attachments/<network>/<container>/<ifname>.json`. A record
//! holds the undo journal: each step is persisted *before* the mutation it
//! undoes, so a crash at any point leaves a journal that DEL or GC can
//! replay.
//!
//! A record file is a log of the record's versions: each write appends
//! the whole record as one line, and the newest complete line that parses
//! is the record, so a write cut short by a crash (or a power loss) reads
//! as the version before it. A journal step is one `fdatasync` of the
//! append (the file's first version also fsyncs its directory); a write
//! whose loss leaves a version that is still right to replay
//! ([`Store::save_crash_safe`]: the commit, a journal shortened by steps
//! already undone) is appended without waiting for the disk. A log past
//! [`COMPACT_AT`] is rewritten as its newest version (temp file, fsync,
//! rename, directory fsync). A record written whole, pretty-printed (this
//! crate before the log), reads and appends alike.
//!
//! The whole state dir is guarded by one exclusive `flock`, held for the
//! duration of a command: concurrent ADDs on one bridge cannot race.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state dir {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("attachment record {path} is unreadable: {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    /// Another call held the state dir's lock for longer than the wait.
    #[error("state dir {path} is locked by another CNI call for more than {} s", waited.as_secs_f64())]
    Busy { path: String, waited: Duration },
}

/// A record file past this size is rewritten as its newest version. An
/// ADD appends a handful of versions of a few KiB; a journal near its
/// step limit appends many larger ones, and would grow without bound.
pub const COMPACT_AT: u64 = 64 * 1024;

/// How long a call waits for the state dir's lock before giving up (twice
/// the longest a component call may run by default, plus the vSwitch).
pub const LOCK_WAIT: Duration = Duration::from_secs(150);

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Identifies one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentKey {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

/// One step of the undo journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Undo {
    /// Run an ovsdb transaction on `db_socket`.
    Ovsdb {
        db_socket: String,
        ops: Value,
        wait_applied: bool,
        skip_if_unmet: bool,
    },
    /// Send a VPP request on `api_socket`; a reply retval of 0 or one of
    /// `ok_retvals` means done.
    Vpp {
        api_socket: String,
        name_crc: String,
        body: Vec<u8>,
        ok_retvals: Vec<i32>,
    },
    /// Call the engine's `undo` export with this step.
    Engine { step: String },
    /// Remove a file if it exists.
    RemoveFile { path: String },
    /// Remove a directory if it exists and is empty.
    RemoveEmptyDir { path: String },
    /// Detach a bind mount, if mounted.
    Unmount { path: String },
    /// Remove this attachment's entry from the pod's
    /// `userspace/configuration-data` annotation (and the annotations
    /// when none is left). `kubeconfig` None: in-cluster credentials.
    PodAnnotation {
        kubeconfig: Option<String>,
        namespace: String,
        name: String,
        uid: String,
    },
    /// Release the addresses IPAM gave: exec the plugin with DEL.
    IpamDel {
        network_config: Value,
        netns: String,
        cni_args: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub description: String,
    pub undo: Undo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// ADD is in progress (or crashed): the journal may be partial.
    Adding,
    /// ADD succeeded; `result` holds what was printed.
    Committed,
}

/// What the plugin did for one attachment, and how to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: AttachmentKey,
    pub phase: Phase,
    /// Facts about the attachment that CHECK and the container data need
    /// (socket path, port name, MAC, normalised config...).
    pub details: Value,
    /// The ADD result in the 1.x shape.
    pub result: Option<Value>,
    pub journal: Vec<JournalEntry>,
}

impl Record {
    pub fn new(key: AttachmentKey, details: Value) -> Record {
        Record {
            key,
            phase: Phase::Adding,
            details,
            result: None,
            journal: Vec::new(),
        }
    }
}

/// Takes `lock` exclusively within `wait`: `Err(None)` when another holder
/// kept it that long. flock cannot time out, so it is tried without
/// blocking, with a short, growing pause between tries.
fn lock_within(lock: &File, wait: Duration) -> Result<(), Option<rustix::io::Errno>> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::fs::flock(lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => return Err(Some(e)),
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Err(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The state directory, locked for as long as this value lives.
pub struct Store {
    root: PathBuf,
    _lock: File,
}

impl Store {
    /// Opens (creating, mode 0700) the state dir and takes its lock,
    /// waiting up to [`LOCK_WAIT`] for any other plugin process that holds
    /// it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, Error> {
        Self::open_waiting(root, LOCK_WAIT)
    }

    /// [`Store::open`], waiting at most `wait` for the lock.
    pub fn open_waiting(root: impl Into<PathBuf>, wait: Duration) -> Result<Store, Error> {
        let root = root.into();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root.join("attachments"))
            .map_err(io_err(&root))?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock_within(&lock, wait).map_err(|e| match e {
            Some(e) => io_err(&lock_path)(e.into()),
            None => Error::Busy {
                path: root.display().to_string(),
                waited: wait,
            },
        })?;
        Ok(Store { root, _lock: lock })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn network_dir(&self, network: &str) -> PathBuf {
        self.root.join("attachments").join(network)
    }

    fn path(&self, key: &AttachmentKey) -> PathBuf {
        self.network_dir(&key.network)
            .join(&key.container_id)
            .join(format!("{}.json", key.ifname))
    }

    pub fn load(&self, key: &AttachmentKey) -> Result<Option<Record>, Error> {
        read_record(&self.path(key), key)
    }

    /// Appends the record as its newest version and waits until it is on
    /// disk (with the file's directory entry when the file is new): what
    /// must survive the machine's crash, a journal step before the
    /// mutation it undoes.
    pub fn save(&self, record: &Record) -> Result<(), Error> {
        self.write(record, true)
    }

    /// Appends the record as its newest version without waiting for the
    /// disk: lost or cut short with the machine, the version before it is
    /// what is read. For a write after which that version is still right
    /// to replay (the commit after the last journal step; a journal
    /// shortened by steps already undone, whose undo is idempotent).
    pub fn save_crash_safe(&self, record: &Record) -> Result<(), Error> {
        self.write(record, false)
    }

    fn write(&self, record: &Record, durable: bool) -> Result<(), Error> {
        let path = self.path(&record.key);
        let line = version_line(record);
        // Appended to only when a reader would trust the file (root's,
        // writable by nobody else, a regular file with one name); else,
        // or when there is none, it is written whole, and the rename
        // replaces whatever was at the path.
        let (mut file, size) = match root_owned::open_trusted_for_append(&path) {
            Ok(opened) => opened,
            Err(root_owned::Refused::Missing) => return self.write_whole(&path, &line),
            Err(root_owned::Refused::Untrusted(why)) => {
                tracing::warn!(path = %path.display(), "attachment record not trusted ({why}): replaced");
                return self.write_whole(&path, &line);
            }
        };
        if size + line.len() as u64 > COMPACT_AT {
            return self.write_whole(&path, &line);
        }
        file.write_all(&line).map_err(io_err(&path))?;
        if durable {
            file.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Writes a record file holding `line` alone, durably: a temp file
    /// fsynced, renamed over `path`, and the directory fsynced (a new
    /// file's entry, or a compacted log's, must not be lost).
    fn write_whole(&self, path: &Path, line: &[u8]) -> Result<(), Error> {
        let dir = path.parent().expect("record path has a parent");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
        let tmp = path.with_extension("json.tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.write_all(line).map_err(io_err(&tmp))?;
        // Without this a rename can reach the disk before the data (XFS,
        // ext4 without auto_da_alloc): an empty record after a power loss.
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    }

    /// Appends a journal entry and persists it before returning.
    pub fn append(&self, record: &mut Record, entry: JournalEntry) -> Result<(), Error> {
        record.journal.push(entry);
        self.save(record)
    }

    /// Removes the record and the directories it leaves empty.
    pub fn remove(&self, key: &AttachmentKey) -> Result<(), Error> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let container_dir = path.parent().expect("has parent");
        let _ = fs::remove_dir(container_dir);
        let _ = fs::remove_dir(self.network_dir(&key.network));
        Ok(())
    }

    /// The networks that have records.
    pub fn networks(&self) -> Result<Vec<String>, Error> {
        let dir = self.root.join("attachments");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every record of `network` (GC).
    pub fn list(&self, network: &str) -> Result<Vec<Record>, Error> {
        let mut records = Vec::new();
        let dir = self.network_dir(network);
        let containers = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(records),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for container in containers {
            let container = container.map_err(io_err(&dir))?;
            let container_id = container.file_name().to_string_lossy().into_owned();
            let container = container.path();
            for file in fs::read_dir(&container).map_err(io_err(&container))? {
                let file = file.map_err(io_err(&container))?.path();
                if file.extension().is_some_and(|e| e == "json") {
                    let key = AttachmentKey {
                        network: network.to_string(),
                        container_id: container_id.clone(),
                        ifname: file
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    };
                    match read_record(&file, &key) {
                        Ok(record) => records.extend(record),
                        // One unreadable record does not hide the others
                        // from GC or the operator's listing; its own DEL
                        // reports it.
                        Err(e @ Error::Corrupt { .. }) => tracing::error!("{e}: skipped"),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(records)
    }
}

/// `record` as one version of its log: a line between newlines, so that
/// a line a crash cut short ends before this one starts, and reads as no
/// version at all.
fn version_line(record: &Record) -> Vec<u8> {
    let mut line = b"\n".to_vec();
    serde_json::to_writer(&mut line, record).expect("record serialises");
    line.push(b'\n');
    line
}

/// A record whose journal will be replayed as root: used only when nobody
/// else could have written it (`root_owned`); otherwise ignored, and the
/// log says so.
fn read_record(path: &Path, key: &AttachmentKey) -> Result<Option<Record>, Error> {
    let mut file = match root_owned::open_trusted(path) {
        Ok(file) => file,
        Err(root_owned::Refused::Missing) => return Ok(None),
        Err(root_owned::Refused::Untrusted(why)) => {
            tracing::warn!(path = %path.display(), "attachment record not trusted ({why}): ignored");
            return Ok(None);
        }
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io_err(path))?;
    newest_version(&bytes, key)
        .map(Some)
        .map_err(|source| Error::Corrupt {
            path: path.display().to_string(),
            source,
        })
}

/// The newest version of `key`'s record in its file: the last complete
/// line that parses as a record of `key` (the text after the last newline
/// is a write still going on, or cut short; a record of another key is
/// stale data a filesystem without ordered writes left after a power
/// loss), else the record written whole at its start (before the log
/// format), whatever a torn append left after it.
fn newest_version(bytes: &[u8], key: &AttachmentKey) -> Result<Record, serde_json::Error> {
    let mut lines = bytes.rsplit(|b| *b == b'\n');
    lines.next();
    let newest = lines
        .filter(|line| line.first() == Some(&b'{'))
        .filter_map(|line| serde_json::from_slice::<Record>(line).ok())
        .find(|record| record.key == *key);
    match newest {
        Some(record) => Ok(record),
        None => serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Record>()
            .next()
            .unwrap_or_else(|| serde_json::from_slice(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cid: &str, ifname: &str) -> AttachmentKey {
        AttachmentKey {
            network: "net".into(),
            container_id: cid.into(),
            ifname: ifname.into(),
        }
    }

    #[test]
    fn journal_survives_reopen_and_remove_leaves_no_dirs() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut rec = Record::new(key("c1", "net1"), Value::Null);
            store
                .append(
                    &mut rec,
                    JournalEntry {
                        description: "remove x".into(),
                        undo: Undo::RemoveFile { path: "/x".into() },
                    },
                )
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let rec = store.load(&key("c1", "net1")).unwrap().unwrap();
        assert_eq!(rec.journal.len(), 1);
        assert_eq!(rec.phase, Phase::Adding);
        assert_eq!(store.list("net").unwrap().len(), 1);
        store.remove(&key("c1", "net1")).unwrap();
        store.remove(&key("c1", "net1")).unwrap();
        assert!(store.load(&key("c1", "net1")).unwrap().is_none());
        assert_eq!(
            fs::read_dir(dir.path().join("attachments"))
                .unwrap()
                .count(),
            0
        );
    }

    /// A crash-safe save replaces the durable version whole (no temp file
    /// left), and reads back as written.
    #[test]
    fn a_crash_safe_save_replaces_the_record_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rec = Record::new(key("c1", "net1"), Value::Null);
        store.save(&rec).unwrap();
        rec.phase = Phase::Committed;
        rec.result = Some(serde_json::json!({"ips": []}));
        store.save_crash_safe(&rec).unwrap();
        let back = store.load(&key("c1", "net1")).unwrap().unwrap();
        assert_eq!(back.phase, Phase::Committed);
        assert_eq!(back.result, rec.result);
        let files: Vec<_> = fs::read_dir(dir.path().join("attachments/net/c1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["net1.json"]);
    }

    /// Each save appends a version; a version a crash cut short (no
    /// newline after it, or garbage where the disk lost it) reads as the
    /// one before, and the next save is read after it.
    #[test]
    fn a_version_cut_short_reads_as_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rec = Record::new(key("c1", "net1"), Value::Null);
        store.save(&rec).unwrap();
        rec.journal.push(JournalEntry {
            description: "remove x".into(),
            undo: Undo::RemoveFile { path: "/x".into() },
        });
        store.save(&rec).unwrap();
        let path = store.path(&key("c1", "net1"));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().filter(|l| !l.is_empty()).count(), 2, "{text}");

        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"\n{\"key\":{\"network\":\"net\",\"contai")
            .unwrap();
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
        file.write_all(b"\n\0\0\0\0\n").unwrap();
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);

        rec.phase = Phase::Committed;
        store.save_crash_safe(&rec).unwrap();
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
    }

    /// `record` written whole and pretty-printed, as before the log
    /// format, with `tail` after it (an append cut short).
    fn write_the_old_way(store: &Store, record: &Record, tail: &[u8]) {
        let path = store.path(&record.key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = serde_json::to_vec_pretty(record).unwrap();
        bytes.extend_from_slice(tail);
        fs::write(&path, bytes).unwrap();
    }

    /// A record written whole and pretty-printed (before the log format)
    /// is read, and a save appends to it.
    #[test]
    fn a_record_written_whole_reads_and_takes_appends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rec = Record::new(key("c1", "net1"), serde_json::json!({"version": 2}));
        write_the_old_way(&store, &rec, b"");
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
        rec.phase = Phase::Committed;
        store.save(&rec).unwrap();
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
    }

    /// An append cut short on a record written whole reads as that
    /// record, not as a corrupt file.
    #[test]
    fn a_torn_append_to_a_record_written_whole_reads_as_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = Record::new(key("c1", "net1"), serde_json::json!({"version": 2}));
        write_the_old_way(&store, &rec, b"\n{\"key\":{\"netw");
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
        write_the_old_way(&store, &rec, b"\n\0\0\0\0");
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
    }

    /// A complete line holding another attachment's record (stale blocks
    /// a filesystem without ordered writes can leave after a power loss)
    /// is not this attachment's version.
    #[test]
    fn a_line_of_another_attachment_is_not_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = Record::new(key("c1", "net1"), Value::Null);
        store.save(&rec).unwrap();
        let mut other = Record::new(key("c2", "net1"), Value::Null);
        other.phase = Phase::Committed;
        let path = store.path(&key("c1", "net1"));
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&version_line(&other))
            .unwrap();
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
        assert_eq!(store.list("net").unwrap(), [rec]);
    }

    /// A file a reader would not trust (writable by others, a second
    /// name, a FIFO) is replaced by the next save, never appended to or
    /// waited on.
    #[test]
    fn a_file_a_reader_would_not_trust_is_replaced_not_appended_to() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = Record::new(key("c1", "net1"), Value::Null);
        let path = store.path(&key("c1", "net1"));
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let plants: [(&str, &dyn Fn()); 3] = [
            ("writable by others", &|| {
                fs::write(&path, b"planted").unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
            }),
            ("a second name", &|| {
                fs::write(&elsewhere, b"planted").unwrap();
                fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
                fs::hard_link(&elsewhere, &path).unwrap();
            }),
            ("a FIFO", &|| {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .unwrap();
            }),
        ];
        for (what, plant) in plants {
            let _ = fs::remove_file(&path);
            plant();
            store.save(&rec).unwrap();
            let meta = fs::symlink_metadata(&path).unwrap();
            assert!(meta.is_file(), "{what}");
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{what}");
            assert_eq!(
                store.load(&key("c1", "net1")).unwrap().unwrap(),
                rec,
                "{what}"
            );
        }
        assert_eq!(fs::read(&elsewhere).unwrap(), b"planted");
    }

    /// A log does not grow past its bound: it is rewritten as its newest
    /// version, which reads back.
    #[test]
    fn a_log_past_its_bound_is_rewritten_as_its_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rec = Record::new(key("c1", "net1"), Value::Null);
        let path = store.path(&key("c1", "net1"));
        let mut largest = 0;
        for n in 0..400 {
            rec.journal.push(JournalEntry {
                description: format!("step {n}"),
                undo: Undo::RemoveFile {
                    path: format!("/some/file/{n}"),
                },
            });
            store.save(&rec).unwrap();
            largest = largest.max(fs::metadata(&path).unwrap().len());
        }
        let one_version = serde_json::to_vec(&rec).unwrap().len() as u64 + 2;
        assert!(largest <= COMPACT_AT.max(one_version), "{largest}");
        assert_eq!(store.load(&key("c1", "net1")).unwrap().unwrap(), rec);
        let files: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["net1.json"]);
    }

    /// An unreadable record is skipped by a listing (GC, the operator's
    /// commands), not a reason to list nothing.
    #[test]
    fn a_corrupt_record_does_not_hide_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .save(&Record::new(key("c1", "net1"), Value::Null))
            .unwrap();
        store
            .save(&Record::new(key("c2", "net1"), Value::Null))
            .unwrap();
        fs::write(store.path(&key("c2", "net1")), b"").unwrap();
        let listed = store.list("net").unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key.container_id, "c1");
        assert!(matches!(
            store.load(&key("c2", "net1")),
            Err(Error::Corrupt { .. })
        ));
    }

    /// A lock held past the wait is a clear error, not a hang.
    #[test]
    fn a_lock_held_past_the_wait_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let err = Store::open_waiting(dir.path(), Duration::from_millis(300))
            .err()
            .expect("the lock is held");
        let waited = started.elapsed();
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert!(
            err.to_string().contains("locked by another CNI call"),
            "{err}"
        );
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
    }

    #[test]
    fn a_second_store_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let path = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = Store::open(&path).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "lock not held"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("lock released");
        waiter.join().unwrap();
    }
}
