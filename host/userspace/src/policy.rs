//! The node's policy (`node_policy`), loaded once per call: what the
//! operator allows network configs to name. `confinement` applies it to a
//! config; the rest of the binary asks it where the cache is, which grants
//! and sockets are allowed, and how to remove what a record journals.

use std::sync::OnceLock;

use cni_protocol::{codes, CniError};
use node_policy::NodePolicy;

static POLICY: OnceLock<NodePolicy> = OnceLock::new();

/// Loads the node's policy once for this call.
pub(crate) fn load() -> Result<&'static NodePolicy, CniError> {
    if let Some(policy) = POLICY.get() {
        return Ok(policy);
    }
    let policy = NodePolicy::load().map_err(|e| {
        CniError::new(
            codes::INVALID_NETWORK_CONFIG,
            e.to_string(),
            format!(
                "the node policy is the operator's: a root-owned file at {} (or where {} says)",
                node_policy::DEFAULT_PATH,
                node_policy::PATH_ENV
            ),
        )
    })?;
    Ok(POLICY.get_or_init(|| policy))
}

/// The policy of this call ([`load`] ran first; the defaults otherwise,
/// and in unit tests everything under the temp dir).
pub(crate) fn node() -> &'static NodePolicy {
    POLICY.get_or_init(|| {
        if cfg!(test) {
            NodePolicy::everything_under(&std::env::temp_dir())
        } else {
            NodePolicy::default()
        }
    })
}
