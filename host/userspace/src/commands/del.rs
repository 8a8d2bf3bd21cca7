//! DEL: undo what ADD did, driven by the attachment record (not by the
//! config, which may have changed). Succeeds when things are already
//! gone, and when called twice. Without a record: what the Go plugin
//! left for the attachment, if it made it, and the IPAM allocation.

use cni_protocol::{CniError, Environment};
use netconf::NetConf;

use crate::store::{key, load_record, open_store};
use crate::{ipam, rollback, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let store = open_store(conf)?;
    let key = key(conf, env);
    match load_record(&store, &key)? {
        Some(record) => rollback::undo_attachment(&store, record, &env.path)?,
        None => {
            // An attachment the Go plugin made, before an in-place upgrade.
            crate::go_plugin::undo_attachment(env, conf)?;
            tracing::info!("no record of this attachment; releasing any IPAM allocation");
            ipam::release_without_record(env, conf)?;
        }
    }
    Ok(Output::Nothing)
}
