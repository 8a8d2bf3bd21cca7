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

use std::os::unix::fs::DirBuilderExt;

use attachment_store::{JournalEntry, Phase, Record, Undo};
use cni_protocol::{codes, CniError, CniResult, Environment, Interface, Version};
use netconf::{IfType, NetConf};
use serde_json::{json, Value};
use wasm_runtime::{EngineComponent, IpamChainComponent, Role};

use super::{
    attachment, component_error, from_wit, ipam_config, key, limits, load_record, open_store,
    runtime,
};
use crate::capabilities::{AttachmentCaps, IpamDelegate, Ovsdb, RecordJournal, Vpp};
use crate::naming::{self, Names};
use crate::{components, container_data, permissions, rollback, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let group = match (&conf.host.iftype, &conf.host.vhost.group) {
        (IfType::VhostUser, Some(group)) => Some(permissions::resolve_group(group)?),
        _ => None,
    };
    for plugin in conf.ipam_types() {
        ipam_delegate::find_plugin(plugin, &env.path)?;
    }
    let runtime = runtime(conf)?;
    let engine_spec = components::spec(Role::Engine, conf)?;
    let engine = runtime.load_engine(&engine_spec).map_err(component_error)?;
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
            if let Some(answer) = recorded_answer(recorded.as_ref(), conf) {
                return answer;
            }
            Some(crate::pod::read(lookup, conf)?)
        }
        None => None,
    };
    let volume_dir = pod.as_ref().and_then(|p| p.volume_dir.as_deref());
    let names = naming::names(conf, env, &naming, volume_dir)?;
    if let Some(started) = crate::STARTED.get() {
        let components = 2 + usize::from(ipam_chain.is_some());
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            "cold start: {components} components loaded, naming run"
        );
    }

    let store = open_store(conf)?;
    let key = key(conf, env);
    let recorded = load_record(&store, &key)?;
    if let Some(answer) = recorded_answer(recorded.as_ref(), conf) {
        return answer;
    }
    // An ADD that crashed half-way: finish its rollback first.
    if let Some(stale) = recorded {
        rollback::undo_attachment(&store, stale, &env.path)?;
    }
    let new_dirs = check_shared_dir(env, &names)?;

    let nonce = naming::nonce();
    let mut record = Record::new(key, details(conf, env, &names, nonce));
    record.details["engineComponent"] = components::to_record(&engine_spec);
    record.journal = host_undo_plan(
        &names,
        &new_dirs,
        conf.device_info_file.as_ref(),
        pod.as_ref(),
    );
    store
        .save(&record)
        .map_err(|e| CniError::io("cannot write the attachment record", e))?;
    crate::crash::point("after the attachment record");
    let caps = AttachmentCaps {
        ovsdb: Ovsdb::new(&conf.host.ovs.db_socket),
        vpp: Vpp::new(&conf.host.vpp.api_socket),
        journal: RecordJournal { store, record },
        ipam: None,
    };

    let components = Components {
        engine: &engine,
        ipam_chain: ipam_chain.as_ref(),
        pod: pod.as_ref(),
    };
    let (mut caps, outcome) = add_steps(caps, env, conf, &names, nonce, components, group);
    match outcome {
        Ok(result) => {
            crate::crash::point("before committing the record");
            caps.journal.record.phase = Phase::Committed;
            caps.journal.record.result = Some(result.to_value(Version::V1_1_0));
            caps.journal
                .store
                .save(&caps.journal.record)
                .map_err(|e| CniError::io("cannot commit the attachment record", e))?;
            Ok(Output::Json(result.to_value(conf.cni_version).to_string()))
        }
        Err(mut error) => {
            tracing::warn!("ADD failed, rolling back: {error}");
            let RecordJournal { store, record } = caps.journal;
            if let Err(undo) = rollback::undo_attachment(&store, record, &env.path) {
                error.details = format!("{}; rollback incomplete: {undo}", error.details);
            }
            Err(error)
        }
    }
}

/// The answer of a committed ADD of this attachment, for a retried ADD.
fn recorded_answer(record: Option<&Record>, conf: &NetConf) -> Option<Result<Output, CniError>> {
    let record = record.filter(|r| r.phase == Phase::Committed)?;
    let result = record.result.as_ref()?;
    tracing::info!("attachment exists; returning its recorded result");
    Some(
        CniResult::from_value(result)
            .map(|result| Output::Json(result.to_value(conf.cni_version).to_string())),
    )
}

/// What CHECK and the container data need to know about the attachment.
fn details(conf: &NetConf, env: &Environment, names: &Names, nonce: u64) -> Value {
    json!({
        "engine": conf.host.engine.as_str(),
        "netns": env.netns,
        "hostConfig": conf.host.to_json(),
        "sharedDir": names.shared_dir,
        "socketPath": names.socket_path,
        "portName": names.port_name,
        "mac": names.mac,
        "dataPath": names.data_path,
        "socketMount": names.socket_mount,
        "nonce": nonce,
        "pod": super::pod_of(env).as_ref().map(super::PodRecord::of),
    })
}

/// The undo of every host-side step ADD takes, in the order taken (IPAM
/// allocations are journalled one by one as the IPAM chain makes them).
fn host_undo_plan(
    names: &Names,
    new_dirs: &[String],
    device_info_file: Option<&String>,
    pod: Option<&crate::pod::Pod>,
) -> Vec<JournalEntry> {
    let mut plan = Vec::new();
    let mut step = |description: String, undo: Undo| plan.push(JournalEntry { description, undo });
    for dir in new_dirs {
        step(
            format!("remove shared dir {dir}"),
            Undo::RemoveEmptyDir { path: dir.clone() },
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

/// Refuses a shared dir (or a directory between it and the base dir) that
/// is a symlink or not a directory, and files of another container.
/// Returns the directories ADD must create, outermost first.
fn check_shared_dir(env: &Environment, names: &Names) -> Result<Vec<String>, CniError> {
    let mut missing = Vec::new();
    let mut dir = std::path::Path::new(&names.shared_dir);
    loop {
        match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(CniError::new(
                    codes::CONTAINER_DATA_FAILURE,
                    format!(
                        "{} exists and is not a directory (a symlink is not followed)",
                        dir.display()
                    ),
                    "",
                ))
            }
            Ok(_) => break,
            Err(_) => missing.push(dir.display().to_string()),
        }
        if dir.as_os_str() == names.base_dir.as_str() {
            break;
        }
        match dir.parent() {
            Some(parent) if parent.starts_with(&names.base_dir) => dir = parent,
            _ => break,
        }
    }
    if missing.is_empty() {
        refuse_foreign_files(env, names)?;
    }
    missing.reverse();
    Ok(missing)
}

/// The components an ADD runs after naming.
struct Components<'a, 'r> {
    engine: &'a EngineComponent<'r>,
    /// Present when the config has an `ipam` section.
    ipam_chain: Option<&'a IpamChainComponent<'r>>,
    /// The pod, when its annotations carry the container data.
    pod: Option<&'a crate::pod::Pod>,
}

fn add_steps(
    mut caps: AttachmentCaps,
    env: &Environment,
    conf: &NetConf,
    names: &Names,
    nonce: u64,
    components: Components<'_, '_>,
    group: Option<u32>,
) -> (AttachmentCaps, Result<CniResult, CniError>) {
    if let Err(e) = prepare_shared_dir(names) {
        return (caps, Err(e));
    }
    let ipam_result = match components.ipam_chain {
        None => conf.prev_result.clone(),
        Some(chain) => {
            caps.ipam = Some(IpamDelegate::new(env));
            let config = ipam_config(conf).to_string();
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

    let ipam_json = ipam_result
        .as_ref()
        .map(|r| r.to_value(Version::V1_0_0).to_string());
    let att = attachment(conf, env, names, nonce, ipam_json);
    let (returned, added) = components.engine.add(caps, limits(conf), &att);
    caps = returned;
    let added = match added {
        Ok(Ok(added)) => added,
        Ok(Err(e)) => return (caps, Err(from_wit(e))),
        Err(e) => return (caps, Err(component_error(e))),
    };
    let published = publish(
        &mut caps,
        env,
        conf,
        names,
        &added.socket_moves,
        ipam_result,
    )
    .and_then(|(result, doc)| match components.pod {
        Some(pod) => pod.publish(&doc).map(|_| result),
        None => Ok(result),
    });
    let published = published.and_then(|result| {
        let own_dir = (!names.in_pod_volume).then_some(names.shared_dir.as_str());
        permissions::apply(own_dir, &names.socket_path, group).map(|_| result)
    });
    (caps, published)
}

/// The shared dir, without a stale socket (their undo is already journalled).
fn prepare_shared_dir(names: &Names) -> Result<(), CniError> {
    let dir_error = |e: std::io::Error| {
        CniError::new(
            codes::CONTAINER_DATA_FAILURE,
            format!("shared dir {}", names.shared_dir),
            e.to_string(),
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&names.shared_dir)
        .map_err(dir_error)?;
    if let Some(short) = &names.socket_mount {
        mount_shared_dir(&names.shared_dir, short)?;
    }
    // A socket left by an earlier run (or a vSwitch that exited) makes
    // the vSwitch fail with "Address already in use".
    match std::fs::remove_file(&names.socket_path) {
        Ok(()) => tracing::info!(path = %names.socket_path, "removed a stale socket file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(dir_error(e)),
    }
    Ok(())
}

/// Bind-mounts the shared dir on `short`, so the vSwitch gets a socket
/// path that fits a unix socket (its undo is already journalled).
fn mount_shared_dir(shared_dir: &str, short: &str) -> Result<(), CniError> {
    let failed = |what: &str, e: std::io::Error| {
        CniError::new(
            codes::CONTAINER_DATA_FAILURE,
            format!("cannot {what} {short} for the sockets of {shared_dir}"),
            e.to_string(),
        )
    };
    if let Some(parent) = std::path::Path::new(short).parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("create the parent of", e))?;
    }
    match std::fs::DirBuilder::new().mode(0o750).create(short) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(failed("create", e)),
        _ => {}
    }
    // A leftover mount (an ADD killed after mounting) is replaced.
    let _ = rustix::mount::unmount(short, rustix::mount::UnmountFlags::DETACH);
    rustix::mount::mount_bind(shared_dir, short).map_err(|e| failed("bind-mount on", e.into()))?;
    crate::crash::point("after bind-mounting the shared dir");
    Ok(())
}

/// Two container IDs with the same first 12 characters get the same
/// shared dir and socket names (the Go plugin's naming). Refuse the second
/// rather than take over the first one's socket.
fn refuse_foreign_files(env: &Environment, names: &Names) -> Result<(), CniError> {
    let Ok(bytes) = std::fs::read(&names.data_path) else {
        return Ok(());
    };
    let owner = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|doc| doc["containerId"].as_str().map(str::to_string));
    match owner {
        Some(owner) if owner != env.container_id => Err(CniError::new(
            codes::INVALID_NETWORK_CONFIG,
            format!(
                "container {} would reuse the socket and data of container {owner}: their IDs share the first 12 characters",
                env.container_id
            ),
            format!(
                "{} is in use; set memif/vhost socketfile or use distinct container IDs",
                names.data_path
            ),
        )),
        _ => Ok(()),
    }
}

/// Moves vSwitch-made sockets into the shared dir, builds the result and
/// writes the container data (returned too, for the pod's annotations).
fn publish(
    caps: &mut AttachmentCaps,
    env: &Environment,
    conf: &NetConf,
    names: &Names,
    socket_moves: &[(String, String)],
    ipam_result: Option<CniResult>,
) -> Result<(CniResult, Value), CniError> {
    for (from, to) in socket_moves {
        let journalled = caps
            .journal
            .record
            .journal
            .iter()
            .any(|e| matches!(&e.undo, Undo::RemoveFile { path } if path == to));
        if !journalled {
            caps.record_undo(
                format!("remove socket {to}"),
                Undo::RemoveFile { path: to.clone() },
            )?;
        }
        std::fs::rename(from, to)
            .or_else(|_| std::os::unix::fs::symlink(from, to))
            .map_err(|e| {
                CniError::new(
                    codes::CONTAINER_DATA_FAILURE,
                    format!("cannot publish socket {from} as {to}"),
                    e.to_string(),
                )
            })?;
    }

    let mut result = conf.prev_result.clone().unwrap_or_default();
    let index = result.interfaces.len();
    result.interfaces.push(Interface {
        name: env.ifname.clone(),
        mac: names.mac.clone(),
        mtu: conf.container.mtu,
        sandbox: env.netns.clone(),
        socket_path: names.socket_path.clone(),
    });
    if let Some(ipam) = ipam_result.filter(|_| conf.ipam.is_some()) {
        result.ips.extend(ipam.ips.into_iter().map(|mut ip| {
            ip.interface = Some(index);
            ip
        }));
        result.routes.extend(ipam.routes);
        if ipam.dns != Default::default() {
            result.dns = ipam.dns;
        }
    }

    let doc = container_data::document(
        conf,
        &env.container_id,
        &env.ifname,
        &names.socket_file,
        &result,
    );
    container_data::write(&names.data_path, &doc)?;
    if let Some(path) = &conf.device_info_file {
        // The spec asks the writer to create the directory when missing.
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CniError::new(
                    codes::CONTAINER_DATA_FAILURE,
                    format!("cannot create {}", dir.display()),
                    e.to_string(),
                )
            })?;
        }
        container_data::write(path, &container_data::device_info(conf, &names.socket_path))?;
    }
    Ok((result, doc))
}
