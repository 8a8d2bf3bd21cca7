//! The state dir: its store (and with it the node's lock), and the
//! attachment's key and record in it.

use attachment_store::{AttachmentKey, Store};
use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;

pub(crate) fn open_store(conf: &NetConf) -> Result<Store, CniError> {
    Store::open(&conf.state_dir).map_err(|e| match e {
        attachment_store::Error::Busy { .. } => CniError::new(
            codes::TRY_AGAIN_LATER,
            e.to_string(),
            "a call on this node is taking longer than its bounds allow; try again",
        ),
        e => CniError::io("cannot open the state dir", e),
    })
}

/// This attachment's record, if ADD left one.
pub(crate) fn load_record(
    store: &Store,
    key: &AttachmentKey,
) -> Result<Option<attachment_store::Record>, CniError> {
    store
        .load(key)
        .map_err(|e| CniError::io("cannot read the attachment record", e))
}

pub(crate) fn key(conf: &NetConf, env: &Environment) -> AttachmentKey {
    AttachmentKey {
        network: conf.name.clone(),
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
    }
}
