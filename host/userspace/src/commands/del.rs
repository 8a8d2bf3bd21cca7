//! DEL: undo what ADD did, driven by the attachment record (not by the
//! config, which may have changed). Succeeds when things are already
//! gone, and when called twice.

use cni_protocol::{CniError, Environment};
use netconf::NetConf;

use super::{key, load_record, open_store};
use crate::{ipam, rollback, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let store = open_store(conf)?;
    let key = key(conf, env);
    match load_record(&store, &key)? {
        Some(record) => rollback::undo_attachment(&store, record, &env.path)?,
        None => {
            tracing::info!("no record of this attachment; releasing any IPAM allocation");
            release_ipam_without_record(env, conf)?;
        }
    }
    Ok(Output::Nothing)
}

/// Without a record (never added, or already deleted) IPAM may still hold
/// an address from an ADD that crashed before its record was written;
/// IPAM DEL is idempotent, so ask it to release.
fn release_ipam_without_record(env: &Environment, conf: &NetConf) -> Result<(), CniError> {
    // Every plugin of an IPAM list is asked, even after one fails.
    let mut first_error = None;
    for config in ipam::configs(conf) {
        if let Err(e) = ipam_delegate::exec(&ipam::call(env, "DEL"), &config) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}
