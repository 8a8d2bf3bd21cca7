//! ADD: publish a userspace interface for a container.
//!
//! Order: validate everything and load the engine before touching the
//! host. The record is then written with the undo of every host-side step
//! it is about to take (shared dir, socket, IPAM allocation, container
//! data: one durable write instead of one per step; each undo is
//! idempotent, so undoing a step that never happened is harmless). Then
//! the IPAM chain runs (before the engine, so `netType: interface` can use
//! the address; the host journals each allocation's release before making
//! it), the engine does the vSwitch work journalling each mutation first,
//! and the container data is written. Any failure replays the journal and
//! leaves nothing behind.
//!
//! Three components take part: naming (what things are called), the IPAM
//! chain and the engine; all are loaded and admitted before the host is
//! touched.

use attachment_store::{JournalEntry, Phase, Record, Undo};
use cni_protocol::{codes, CniError, CniResult, Environment, Version};
use netconf::{IfType, NetConf};
use serde_json::Value;
use wasm_runtime::{EngineComponent, IpamChainComponent, Role};

use crate::capabilities::AttachmentCaps;
use crate::components::{engine_spec, open_runtime};
use crate::ipam::IpamDelegate;
use crate::journal::RecordJournal;
use crate::names::Names;
use crate::naming;
use crate::record::Details;
use crate::scope::Scope;
use crate::store::{key, load_record, open_store};
use crate::wit_host::{attachment, component_error, from_wit, limits};
use crate::{components, container_data, ipam, permissions, rollback, shared_dir, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let conf = &with_memif_secret(conf);
    // The socket's group, memif or vhost-user alike: an unprivileged pod
    // user connects to either only through it (the key is the Go plugin's).
    let group = conf
        .host
        .vhost
        .group
        .as_deref()
        .map(permissions::resolve_group)
        .transpose()?;
    for plugin in conf.ipam_types() {
        ipam_delegate::find_plugin(plugin, &env.path)?;
    }
    let runtime = open_runtime()?;
    let engine_spec = engine_spec(conf)?;
    let engine = components::load_engine(&runtime, &engine_spec)?;
    let ipam_chain = match conf.ipam {
        Some(_) => Some(
            runtime
                .load_ipam_chain(&components::spec(Role::IpamChain, conf)?)
                .map_err(component_error)?,
        ),
        None => None,
    };
    let naming = runtime
        .load_naming(&components::spec(Role::Naming, conf)?)
        .map_err(component_error)?;
    let pod = match crate::pod::lookup(conf, env) {
        Some(lookup) => {
            // A retried ADD gets the answer the first one gave, also when
            // the Kubernetes API is out of reach now (checked again under
            // the lock; the lock is not held across the API call).
            let recorded = load_record(&open_store(conf)?, &key(conf, env))?;
            if let Some(answer) = answer_of_a_retried_add(recorded.as_ref(), conf) {
                return answer;
            }
            Some(crate::pod::read(lookup, conf)?)
        }
        None => None,
    };
    let volume_dir = pod.as_ref().and_then(|p| p.volume_dir.as_deref());
    let names = naming::names(conf, env, &naming, volume_dir)?;
    if !names.in_pod_volume && conf.shared_dir.is_none() {
        // The engine's default base dir is the policy's to allow too.
        crate::policy::node()
            .check(
                "sharedDir (unset: the engine's default)",
                &names.base_dir,
                node_policy::Rule::SharedDir,
            )
            .map_err(|refusal| CniError::invalid_config(refusal.to_string()))?;
    }
    if let Some(started) = crate::STARTED.get() {
        let components = 2 + usize::from(ipam_chain.is_some());
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            monotonic_ns = crate::monotonic_ns(),
            "cold start: {components} components loaded, naming run"
        );
    }

    let store = open_store(conf)?;
    let key = key(conf, env);
    let recorded = load_record(&store, &key)?;
    if let Some(answer) = answer_of_a_retried_add(recorded.as_ref(), conf) {
        return answer;
    }
    // An ADD that crashed half-way: finish its rollback first.
    if let Some(stale) = recorded {
        rollback::undo_attachment(&store, stale, &env.path)?;
    }
    let new_dirs = shared_dir::check(env, &names)?;

    let nonce = naming::nonce();
    let details = Details::new(conf, env, &names, nonce, &engine_spec);
    let mut record = Record::new(key, details.to_value());
    record.journal = host_undo_plan(
        &env.container_id,
        &names,
        &new_dirs,
        conf.device_info_file.as_ref(),
        pod.as_ref(),
    );
    // Written with the first step journalled (the IPAM release, as a rule)
    // or before the shared dir is made, whichever comes first: nothing is
    // changed before the record that undoes it is on disk.
    crate::crash::point("before the attachment record");
    let mut caps = AttachmentCaps::new(
        &conf.host.ovs.db_socket,
        &conf.host.vpp.api_socket,
        Scope::of_engine(engine_spec.sha256.as_deref()),
        RecordJournal::unsaved(store, record),
    );
    caps.ovsdb = caps.ovsdb.for_attachment(&names.socket_path);

    let steps = Steps {
        env,
        conf,
        names: &names,
        nonce,
        group,
        engine: &engine,
        ipam_chain: ipam_chain.as_ref(),
        pod: pod.as_ref(),
    };
    let (mut caps, outcome) = steps.run(caps);
    match outcome {
        Ok(result) => {
            crate::crash::point("before committing the record");
            caps.journal.record.phase = Phase::Committed;
            caps.journal.record.result = Some(result.to_value(Version::V1_1_0));
            // Not waited for: lost with the machine, the record stays in
            // phase adding with its durable journal, and the next ADD, DEL
            // or GC of it rolls it back (its pod did not survive either).
            caps.journal
                .store
                .save_crash_safe(&caps.journal.record)
                .map_err(|e| CniError::io("cannot commit the attachment record", e))?;
            Ok(Output::Json(result.to_value(conf.cni_version).to_string()))
        }
        Err(mut error) => {
            tracing::warn!("ADD failed, rolling back: {error}");
            let RecordJournal { store, record, .. } = caps.journal;
            if let Err(undo) = rollback::undo_attachment(&store, record, &env.path) {
                error.details = format!("{}; rollback incomplete: {undo}", error.details);
            }
            Err(error)
        }
    }
}

/// A retried ADD (the runtime did not see the first one's answer) gets
/// the answer the committed one gave.
/// A memif attachment gets a secret of its own unless the config gives
/// one (or asks for none with ""): the vSwitch refuses a peer without it,
/// and only this pod's container data carries it, so another tenant on
/// the node that reaches the socket cannot take the port over.
fn with_memif_secret(conf: &NetConf) -> NetConf {
    let mut conf = conf.clone();
    if conf.host.iftype == IfType::Memif && conf.host.memif.secret.is_none() {
        let secret = format!("{:016x}", naming::nonce());
        conf.host.memif.secret = Some(secret.clone());
        if conf.container.memif.secret.is_none() {
            conf.container.memif.secret = Some(secret);
        }
    }
    conf
}

fn answer_of_a_retried_add(
    record: Option<&Record>,
    conf: &NetConf,
) -> Option<Result<Output, CniError>> {
    let record = record.filter(|r| r.phase == Phase::Committed)?;
    let result = record.result.as_ref()?;
    tracing::info!("attachment exists; returning its recorded result");
    Some(
        CniResult::from_value(result)
            .map(|result| Output::Json(result.to_value(conf.cni_version).to_string())),
    )
}

/// The undo of every host-side step ADD takes, in the order taken (IPAM
/// allocations are journalled one by one as the IPAM chain makes them).
fn host_undo_plan(
    container_id: &str,
    names: &Names,
    new_dirs: &[String],
    device_info_file: Option<&String>,
    pod: Option<&crate::pod::Pod>,
) -> Vec<JournalEntry> {
    let mut plan = Vec::new();
    let mut step = |description: String, undo: Undo| plan.push(JournalEntry { description, undo });
    // The dirs this ADD makes; or, when another interface of the container
    // made the container's own dir (`<base>/<cid12>`, nothing else a
    // naming component may name) already, that dir too: whichever
    // interface goes last removes it (only ever when empty).
    let containers_own =
        std::path::Path::new(&names.base_dir).join(crate::names::cid12(container_id));
    let made_by_a_sibling = (new_dirs.is_empty()
        && !names.in_pod_volume
        && std::path::Path::new(&names.shared_dir) == containers_own)
        .then(|| names.shared_dir.clone());
    for dir in new_dirs.iter().cloned().chain(made_by_a_sibling) {
        step(
            format!("remove shared dir {dir}"),
            Undo::RemoveEmptyDir { path: dir },
        );
    }
    if let Some(short) = &names.socket_mount {
        step(
            format!("remove socket mount point {short}"),
            Undo::RemoveEmptyDir {
                path: short.clone(),
            },
        );
        step(
            format!("unmount {short}"),
            Undo::Unmount {
                path: short.clone(),
            },
        );
    }
    step(
        format!("remove socket {}", names.socket_path),
        Undo::RemoveFile {
            path: names.socket_path.clone(),
        },
    );
    let mut written = vec![("container data", names.data_path.clone())];
    written.extend(device_info_file.map(|path| ("device info", path.clone())));
    for (what, path) in written {
        // Also its temp file, in case a crash comes between write and rename.
        for path in [container_data::temp_path(&path), path] {
            step(format!("remove {what} {path}"), Undo::RemoveFile { path });
        }
    }
    if let Some(pod) = pod {
        step("remove the pod's annotation entry".into(), pod.undo());
    }
    plan
}

/// What the journalled part of an ADD works with: the call, the names,
/// and the components that run after naming.
struct Steps<'a, 'r> {
    env: &'a Environment,
    conf: &'a NetConf,
    names: &'a Names,
    nonce: u64,
    /// The group that gets the vhost-user socket.
    group: Option<u32>,
    engine: &'a EngineComponent<'r>,
    /// Present when the config has an `ipam` section.
    ipam_chain: Option<&'a IpamChainComponent<'r>>,
    /// The pod, when its annotations carry the container data.
    pod: Option<&'a crate::pod::Pod>,
}

impl Steps<'_, '_> {
    /// IPAM chain, shared dir, engine, publishing: the capabilities come
    /// back with the outcome, so the journal can be committed or replayed.
    fn run(&self, mut caps: AttachmentCaps) -> (AttachmentCaps, Result<CniResult, CniError>) {
        let Steps {
            env,
            conf,
            names,
            nonce,
            group,
            ..
        } = *self;
        let ipam_result = match self.ipam_chain {
            None => conf.prev_result.clone(),
            Some(chain) => {
                caps.ipam = Some(IpamDelegate::new(env, conf));
                let config = ipam::config(conf).to_string();
                let (returned, allocated) = chain.allocate(caps, limits(conf), &config);
                caps = returned;
                caps.ipam = None;
                let parsed = match allocated {
                    Ok(Ok(json)) => serde_json::from_str::<Value>(&json)
                        .map_err(|e| {
                            CniError::new(
                                codes::IPAM_FAILURE,
                                format!("IPAM chain {} returned no JSON", chain.name()),
                                e.to_string(),
                            )
                        })
                        .and_then(|v| CniResult::from_value(&v)),
                    Ok(Err(e)) => Err(from_wit(e)),
                    Err(e) => Err(component_error(e)),
                };
                match parsed {
                    Ok(result) => Some(result),
                    Err(e) => return (caps, Err(e)),
                }
            }
        };

        if let Err(e) = caps.journal.persist() {
            return (
                caps,
                Err(CniError::io("cannot write the attachment record", e)),
            );
        }
        if let Err(e) = shared_dir::prepare(names) {
            return (caps, Err(e));
        }
        let ipam_json = ipam_result
            .as_ref()
            .map(|r| r.to_value(Version::V1_0_0).to_string());
        let att = attachment(conf, env, names, nonce, ipam_json);
        let (returned, added) = self.engine.add(caps, limits(conf), &att);
        caps = returned;
        let added = match added {
            Ok(Ok(added)) => added,
            Ok(Err(e)) => return (caps, Err(from_wit(e))),
            Err(e) => return (caps, Err(component_error(e))),
        };
        let mapped_dir = self.pod.map(|pod| pod.mapped_dir.as_str());
        let published = container_data::publish(
            env,
            conf,
            names,
            mapped_dir,
            &added.socket_moves,
            ipam_result,
        )
        .and_then(|(result, doc)| match self.pod {
            Some(pod) => pod.publish(&doc).map(|_| result),
            None => Ok(result),
        });
        let published = published.and_then(|result| {
            let own_dir = (!names.in_pod_volume).then_some(names.shared_dir.as_str());
            permissions::apply(own_dir, &names.socket_path, group).map(|_| result)
        });
        (caps, published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(socket_mount: Option<&str>) -> Names {
        Names {
            base_dir: "/run/base".into(),
            shared_dir: "/run/base/c1".into(),
            socket_path: "/run/base/c1/memif.sock".into(),
            socket_file: "memif.sock".into(),
            port_name: "memif-c1-net1".into(),
            mac: "02:00:00:00:00:01".into(),
            data_path: "/run/base/c1/configData-c1-net1.json".into(),
            socket_mount: socket_mount.map(str::to_string),
            in_pod_volume: false,
        }
    }

    /// The steps as DEL replays them: newest first.
    fn replayed(plan: &[JournalEntry]) -> Vec<String> {
        plan.iter().rev().map(|e| e.description.clone()).collect()
    }

    fn position(steps: &[String], what: &str) -> usize {
        steps
            .iter()
            .position(|s| s == what)
            .unwrap_or_else(|| panic!("no step {what:?} in {steps:?}"))
    }

    /// Every file ADD may write is removed before the dirs that hold it,
    /// the temp file of each write too (a crash between write and rename),
    /// and the dirs innermost first.
    #[test]
    fn the_undo_plan_removes_files_before_their_dirs() {
        let new_dirs = ["/run/base".to_string(), "/run/base/c1".to_string()];
        let device_info = "/run/devinfo/net1.json".to_string();
        let plan = host_undo_plan("c1", &names(None), &new_dirs, Some(&device_info), None);
        let steps = replayed(&plan);
        let dir = position(&steps, "remove shared dir /run/base/c1");
        let base = position(&steps, "remove shared dir /run/base");
        assert!(dir < base, "{steps:?}");
        for file in [
            "remove socket /run/base/c1/memif.sock",
            "remove container data /run/base/c1/configData-c1-net1.json",
            "remove container data /run/base/c1/configData-c1-net1.json.tmp",
            "remove device info /run/devinfo/net1.json",
            "remove device info /run/devinfo/net1.json.tmp",
        ] {
            assert!(position(&steps, file) < dir, "{file}: {steps:?}");
        }
        assert_eq!(plan.len(), 7);
    }

    /// A second interface of a container finds the per-container dir the
    /// first one made: it journals its removal too (when empty), so the
    /// dir goes with whichever interface goes last; a pod's volume never.
    #[test]
    fn a_second_interface_also_removes_the_containers_dir_when_empty() {
        let plan = host_undo_plan("c1", &names(None), &[], None, None);
        let steps = replayed(&plan);
        let dir = position(&steps, "remove shared dir /run/base/c1");
        assert!(position(&steps, "remove socket /run/base/c1/memif.sock") < dir);
        let mut in_volume = names(None);
        in_volume.in_pod_volume = true;
        let plan = host_undo_plan("c1", &in_volume, &[], None, None);
        assert!(!replayed(&plan)
            .iter()
            .any(|s| s.starts_with("remove shared dir")));
    }

    /// A bind-mounted short path: unmounted before its mount point is
    /// removed, and after the socket in it.
    #[test]
    fn a_socket_mount_is_unmounted_before_its_mount_point_goes() {
        let plan = host_undo_plan(
            "c1",
            &names(Some("/var/lib/vhost_sockets/c1-net1")),
            &[],
            None,
            None,
        );
        let steps = replayed(&plan);
        let unmount = position(&steps, "unmount /var/lib/vhost_sockets/c1-net1");
        let rmdir = position(
            &steps,
            "remove socket mount point /var/lib/vhost_sockets/c1-net1",
        );
        let socket = position(&steps, "remove socket /run/base/c1/memif.sock");
        assert!(socket < unmount && unmount < rmdir, "{steps:?}");
    }

    /// The plan never removes a dir that existed and is not the
    /// container's own: not the base dir (a shared dir that is the base).
    #[test]
    fn the_base_dir_is_never_in_the_plan() {
        let mut at_base = names(None);
        at_base.shared_dir = at_base.base_dir.clone();
        let plan = host_undo_plan("c1", &at_base, &[], None, None);
        assert!(plan
            .iter()
            .all(|e| !matches!(e.undo, Undo::RemoveEmptyDir { .. })));
    }
}
