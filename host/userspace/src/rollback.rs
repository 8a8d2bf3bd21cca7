//! Replays an undo journal, newest step first.
//!
//! Every step is idempotent, so a replay after a crash, a second DEL or a
//! GC after a DEL are all safe. Failures do not stop the replay: each step
//! is tried and every failure reported, and the steps that failed stay in
//! the record for the next DEL or GC.

use attachment_store::{JournalEntry, Record, Store, Undo};
use cni_protocol::{codes, CniError};
use serde_json::Value;

use wasm_runtime::Runtime;

use node_policy::What;

use crate::capabilities::{Ovsdb, ProbeCaps, Vpp};
use crate::record::Details;
use crate::scope::Scope;

/// Undoes what `record` journals and removes the record when all went well.
pub(crate) fn undo_attachment(
    store: &Store,
    mut record: Record,
    cni_path: &[String],
) -> Result<(), CniError> {
    // A record this binary cannot read is not replayed half-understood.
    let details = Details::of(&record)?;
    let mut failed: Vec<(JournalEntry, String)> = Vec::new();
    let mut ovsdb: Option<Ovsdb> = None;
    let mut vpp: Option<Vpp> = None;
    let mut runtime: Option<Runtime> = None;
    let cache_dir = crate::components::cache_dir();
    // All engine steps of one replay share one component time limit, so a
    // journal of many cannot hold the node's lock for each in turn.
    let engine_deadline = std::time::Instant::now() + default_limits().timeout;
    let scope = engine_scope(&details);
    for entry in record.journal.iter().rev() {
        tracing::debug!(step = %entry.description, "undo");
        let connections = Connections {
            ovsdb: &mut ovsdb,
            vpp: &mut vpp,
            runtime: &mut runtime,
            cache_dir: &cache_dir,
            engine_deadline,
            scope: &scope,
        };
        if let Err(e) = undo_step(&entry.undo, &record, &details, connections, cni_path) {
            tracing::warn!(step = %entry.description, "undo failed: {e}");
            failed.push((entry.clone(), e));
        }
    }
    if failed.is_empty() {
        return store
            .remove(&record.key)
            .map_err(|e| CniError::io("cannot remove the attachment record", e));
    }
    let summary = failed
        .iter()
        .map(|(entry, e)| format!("{}: {e}", entry.description))
        .collect::<Vec<_>>()
        .join("; ");
    failed.reverse();
    record.journal = failed.into_iter().map(|(entry, _)| entry).collect();
    // Lost with the machine, the longer journal is left: undoing a step
    // again is a no-op.
    if let Err(e) = store.save_crash_safe(&record) {
        tracing::error!("cannot save the remaining undo steps: {e}");
    }
    Err(CniError::new(
        codes::TRY_AGAIN_LATER,
        format!(
            "could not undo {} step(s) of attachment {}/{}; they are kept for the next DEL or GC",
            record.journal.len(),
            record.key.container_id,
            record.key.ifname
        ),
        summary,
    ))
}

/// What undo steps reach, opened on first use and kept for the next.
struct Connections<'a> {
    ovsdb: &'a mut Option<Ovsdb>,
    vpp: &'a mut Option<Vpp>,
    runtime: &'a mut Option<Runtime>,
    cache_dir: &'a std::path::Path,
    /// When the engine steps of this replay must be done by.
    engine_deadline: std::time::Instant,
    /// The scope of the record's engine, which its steps stay within.
    scope: &'a Scope,
}

/// Engine undo steps run with the default component limits: the config
/// that set others may be gone by the time of a DEL or GC.
fn default_limits() -> wasm_runtime::Limits {
    let d = netconf::ComponentLimits::default();
    wasm_runtime::Limits {
        timeout: std::time::Duration::from_millis(d.timeout_ms.into()),
        memory_bytes: d.memory_mib as usize * (1 << 20),
    }
}

/// The scope of the engine the record names (its pin picks the node
/// policy's widening); a record whose engine cannot be read gets the
/// defaults.
fn engine_scope(details: &Details) -> Scope {
    let spec = details.engine_spec().ok();
    Scope::of_engine(spec.as_ref().and_then(|s| s.sha256.as_deref()))
}

fn undo_step(
    undo: &Undo,
    record: &Record,
    details: &Details,
    connections: Connections<'_>,
    cni_path: &[String],
) -> Result<(), String> {
    let Connections {
        ovsdb,
        vpp,
        runtime,
        cache_dir,
        engine_deadline,
        scope,
    } = connections;
    match undo {
        Undo::Ovsdb {
            db_socket,
            ops,
            wait_applied,
            skip_if_unmet,
        } => {
            let client = match ovsdb {
                Some(c) if c.socket() == db_socket => c,
                _ => ovsdb.insert(Ovsdb::new(db_socket)),
            };
            let ops = ops.as_array().cloned().unwrap_or_default();
            // A record is input: its steps stay within the `ovsdb` scope.
            scope.ovsdb_ops(&ops, None)?;
            let results = client
                .transact(&ops, *wait_applied)
                .map_err(|e| e.to_string())?;
            match results.iter().find_map(|r| r.get("error")) {
                None => Ok(()),
                Some(Value::String(e)) if *skip_if_unmet && e == "timed out" => {
                    tracing::debug!("undo condition not met; nothing to undo");
                    Ok(())
                }
                Some(e) => Err(format!("ovsdb-server refused: {e}")),
            }
        }
        Undo::Vpp {
            api_socket,
            name_crc,
            body,
            ok_retvals,
        } => {
            scope.vpp_message(name_crc)?;
            let vpp = match vpp {
                Some(v) if v.socket() == api_socket => v,
                _ => vpp.insert(Vpp::new(api_socket)),
            };
            let reply = vpp.request(name_crc, body).map_err(|e| format!("{e:?}"))?;
            let retval = reply
                .get(..4)
                .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
            match retval {
                Some(0) => Ok(()),
                Some(r) if ok_retvals.contains(&r) => Ok(()),
                Some(r) => Err(format!("VPP answered {name_crc} with retval {r}")),
                None => Err(format!("VPP's reply to {name_crc} has no retval")),
            }
        }
        Undo::Engine { step } => {
            let left = engine_deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(
                    "no time left for engine steps in this replay (one component time limit \
                     for all of them); kept for the next DEL or GC"
                        .into(),
                );
            }
            let runtime = match runtime {
                Some(r) => r,
                None => runtime
                    .insert(Runtime::new(cache_dir.to_path_buf()).map_err(|e| e.to_string())?),
            };
            let spec = details.engine_spec().map_err(|e| e.to_string())?;
            let engine =
                crate::components::load_engine(runtime, &spec).map_err(|e| e.to_string())?;
            let caps = ProbeCaps::probe(
                details.ovs_db_socket(),
                details.vpp_api_socket(),
                scope.clone(),
            );
            let attachment = details.attachment(&record.key);
            let limits = wasm_runtime::Limits {
                timeout: left,
                ..default_limits()
            };
            let (_, result) = engine.undo(caps, limits, &attachment, step);
            match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("{}: {}", e.msg, e.details)),
                Err(e) => Err(e.to_string()),
            }
        }
        // A record is input too: removals only below where the node policy
        // lets attachments live, and through no link a pod swapped in; a
        // refused step is kept for the operator to see.
        Undo::RemoveFile { path } => crate::policy::node().remove_beneath(path, What::File),
        Undo::RemoveEmptyDir { path } => crate::policy::node().remove_beneath(path, What::EmptyDir),
        Undo::Unmount { path } => {
            // The mount point is the operator's socket mount dir (named
            // exactly by the policy); its last component is not followed.
            if !crate::policy::node().is_socket_mount(path) {
                return Err(format!(
                    "unmount {path}: not in the node policy's socketMountRoots"
                ));
            }
            let flags = rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW;
            match rustix::mount::unmount(path.as_str(), flags) {
                // EINVAL: not a mount point (never mounted, or done).
                Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
                Err(e) => Err(format!("unmount {path}: {e}")),
            }
        }
        Undo::PodAnnotation { .. } => {
            crate::pod::remove_entry(undo, &record.key.container_id, &record.key.ifname);
            Ok(())
        }
        Undo::IpamDel {
            network_config,
            netns,
            cni_args,
        } => {
            let call = ipam_delegate::Call {
                command: "DEL",
                container_id: &record.key.container_id,
                netns,
                ifname: &record.key.ifname,
                cni_args,
                cni_path,
            };
            ipam_delegate::exec(&call, network_config)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attachment_store::AttachmentKey;

    fn record(journal: Vec<(&str, Undo)>) -> Record {
        let key = AttachmentKey {
            network: "net".into(),
            container_id: "c1".into(),
            ifname: "net1".into(),
        };
        let mut record = Record::new(key, serde_json::json!({"version": 2}));
        record.journal = journal
            .into_iter()
            .map(|(d, undo)| JournalEntry {
                description: d.into(),
                undo,
            })
            .collect();
        record
    }

    fn path(p: &std::path::Path) -> String {
        p.display().to_string()
    }

    /// A record is input too: a removal it journals outside where the node
    /// policy lets attachments live is refused at replay, the file stays,
    /// and the step is kept. (Unit tests run under "everything under the
    /// temp dir"; /dev/shm is outside it.)
    #[test]
    fn a_journalled_removal_outside_the_policy_is_refused_at_replay() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("state")).unwrap();
        let outside = tempfile::Builder::new()
            .prefix("uscni-outside-")
            .tempfile_in("/dev/shm")
            .unwrap();
        let record = record(vec![(
            "planted",
            Undo::RemoveFile {
                path: path(outside.path()),
            },
        )]);
        store.save(&record).unwrap();
        let err = undo_attachment(&store, record.clone(), &[]).unwrap_err();
        assert_eq!(err.code, codes::TRY_AGAIN_LATER);
        assert!(err.details.contains("outside every root"), "{err:?}");
        assert!(outside.path().exists(), "the file outside was removed");
        assert_eq!(store.load(&record.key).unwrap().unwrap().journal.len(), 1);
    }

    /// Newest first: the file goes before the dir that holds it, so the
    /// dir is empty when its turn comes; then the record goes too.
    #[test]
    fn a_journal_is_replayed_newest_first_and_the_record_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("state")).unwrap();
        let dir = tmp.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("data.json"), "{}").unwrap();
        let record = record(vec![
            ("dir", Undo::RemoveEmptyDir { path: path(&dir) }),
            (
                "file",
                Undo::RemoveFile {
                    path: path(&dir.join("data.json")),
                },
            ),
        ]);
        store.save(&record).unwrap();
        undo_attachment(&store, record.clone(), &[]).unwrap();
        assert!(!dir.exists(), "replayed oldest first, the dir would stay");
        assert_eq!(store.load(&record.key).unwrap(), None);
    }

    /// A step that fails does not stop the others; it alone stays in the
    /// record, for the next DEL or GC, and the error says so (11: retry).
    #[test]
    fn failed_steps_stay_recorded_and_the_rest_run() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("state")).unwrap();
        let stuck = tmp.path().join("not-a-file");
        std::fs::create_dir(&stuck).unwrap();
        std::fs::write(stuck.join("x"), "").unwrap();
        let gone = tmp.path().join("gone");
        std::fs::write(&gone, "").unwrap();
        let record = record(vec![
            ("stuck", Undo::RemoveFile { path: path(&stuck) }),
            ("gone", Undo::RemoveFile { path: path(&gone) }),
        ]);
        store.save(&record).unwrap();
        let err = undo_attachment(&store, record.clone(), &[]).unwrap_err();
        assert_eq!(err.code, codes::TRY_AGAIN_LATER);
        assert!(
            err.msg.contains("kept for the next DEL or GC"),
            "{}",
            err.msg
        );
        assert!(!gone.exists(), "the step after the failing one still ran");
        let kept = store.load(&record.key).unwrap().unwrap();
        assert_eq!(kept.journal.len(), 1);
        assert_eq!(kept.journal[0].description, "stuck");
    }

    /// Steps that find nothing to undo succeed: a second DEL is harmless.
    #[test]
    fn undoing_what_is_already_gone_succeeds() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("state")).unwrap();
        let missing = path(&tmp.path().join("missing"));
        let record = record(vec![
            (
                "dir",
                Undo::RemoveEmptyDir {
                    path: missing.clone(),
                },
            ),
            ("file", Undo::RemoveFile { path: missing }),
        ]);
        undo_attachment(&store, record, &[]).unwrap();
    }

    /// A record this binary cannot read is not replayed at all.
    #[test]
    fn a_record_of_a_newer_version_is_not_replayed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("state")).unwrap();
        let file = tmp.path().join("kept");
        std::fs::write(&file, "").unwrap();
        let mut record = record(vec![("file", Undo::RemoveFile { path: path(&file) })]);
        record.details["version"] = (crate::record::DETAILS_VERSION + 1).into();
        let err = undo_attachment(&store, record, &[]).unwrap_err();
        assert!(err.msg.contains("newer userspace-cni"), "{}", err.msg);
        assert!(file.exists());
    }
}
