//! The host side of the WIT seam: converting between the plugin's types
//! and what components see (errors both ways, limits, the attachment and
//! its pod). Commands and capabilities use these; nothing here runs a
//! component.

use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;
use wasm_runtime::{CniError as WitCniError, Limits};

use crate::names::Names;

/// A component that could not be loaded, trapped or ran out of a limit.
pub(crate) fn component_error(e: wasm_runtime::Error) -> CniError {
    CniError::new(codes::COMPONENT_FAILURE, e.to_string(), "")
}

/// An error a component returned.
pub(crate) fn from_wit(e: WitCniError) -> CniError {
    CniError::new(e.code, e.msg, e.details)
}

/// An error the host returns to a component.
pub(crate) fn to_wit(e: CniError) -> WitCniError {
    WitCniError {
        code: e.code,
        msg: e.msg,
        details: e.details,
    }
}

/// The config's `componentLimits`.
pub(crate) fn limits(conf: &NetConf) -> Limits {
    Limits {
        timeout: std::time::Duration::from_millis(conf.component_limits.timeout_ms.into()),
        memory_bytes: conf.component_limits.memory_mib as usize * (1 << 20),
    }
}

/// The attachment as the engine sees it during ADD.
pub(crate) fn attachment(
    conf: &NetConf,
    env: &Environment,
    names: &Names,
    nonce: u64,
    ipam_result: Option<String>,
) -> wasm_runtime::Attachment {
    wasm_runtime::Attachment {
        network: conf.name.clone(),
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
        netns: env.netns.clone(),
        host_config: conf.host.to_json().to_string(),
        socket_path: names.socket_path.clone(),
        port_name: names.port_name.clone(),
        mac: names.mac.clone(),
        mtu: conf.host.mtu,
        nonce,
        ipam_result,
        pod: pod_of(env),
    }
}

/// The pod behind the call, from CNI_ARGS (namespace and name required).
pub(crate) fn pod_of(env: &Environment) -> Option<wasm_runtime::Pod> {
    let args = &env.args;
    match (&args.pod_namespace, &args.pod_name) {
        (Some(namespace), Some(name)) => Some(wasm_runtime::Pod {
            namespace: namespace.clone(),
            name: name.clone(),
            uid: args.pod_uid.clone().unwrap_or_default(),
        }),
        _ => None,
    }
}
