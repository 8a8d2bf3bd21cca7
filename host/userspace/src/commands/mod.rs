//! One module per CNI command, and what every command opens: the state
//! dir's store, the attachment's record, the component runtime.

pub(crate) mod add;
pub(crate) mod check;
pub(crate) mod del;
pub(crate) mod gc;
pub(crate) mod status;

use attachment_store::{AttachmentKey, Store};
use cni_protocol::{CniError, Environment};
use netconf::NetConf;
use wasm_runtime::{Role, Runtime, Spec};

use crate::wit_host::component_error;

pub(crate) fn open_store(conf: &NetConf) -> Result<Store, CniError> {
    Store::open(&conf.state_dir).map_err(|e| CniError::io("cannot open the state dir", e))
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

/// The component runtime, with its artifact cache under the state dir.
pub(crate) fn open_runtime(conf: &NetConf) -> Result<Runtime, CniError> {
    Runtime::new(format!("{}/cache", conf.state_dir)).map_err(component_error)
}

/// The spec of the engine the config names.
pub(crate) fn engine_spec(conf: &NetConf) -> Result<Spec, CniError> {
    crate::components::spec(Role::Engine, conf)
}
