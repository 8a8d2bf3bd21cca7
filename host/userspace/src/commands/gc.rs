//! GC: remove every recorded attachment of this network that the runtime
//! no longer knows (`cni.dev/valid-attachments`, or the legacy
//! `cni.dev/attachments`), then forward GC to the IPAM plugins that speak
//! 1.1.0.

use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;

use crate::store::open_store;
use crate::{rollback, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let Some(valid) = &conf.valid_attachments else {
        return Err(CniError::invalid_config(
            "cni.dev/valid-attachments: required for GC (a list of {containerID, ifname})",
        ));
    };
    let store = open_store(conf)?;
    let records = store
        .list(&conf.name)
        .map_err(|e| CniError::io("cannot list attachment records", e))?;
    let mut failures = Vec::new();
    for record in records {
        let id = (record.key.container_id.clone(), record.key.ifname.clone());
        if valid.contains(&id) {
            continue;
        }
        tracing::info!(container = %id.0, ifname = %id.1, "GC: removing stale attachment");
        if let Err(e) = rollback::undo_attachment(&store, record, &env.path) {
            failures.push(e.to_string());
        }
    }
    failures.extend(crate::ipam::gc(env, conf, valid));
    if failures.is_empty() {
        Ok(Output::Nothing)
    } else {
        Err(CniError::new(
            codes::TRY_AGAIN_LATER,
            format!("GC could not finish: {} failure(s)", failures.len()),
            failures.join("; "),
        ))
    }
}
