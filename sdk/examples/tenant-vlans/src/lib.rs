//! An engine for sites where Kubernetes namespaces are tenants: the port
//! of a pod in namespace `N` gets the VLAN tag `host.tenantVlans[N]`;
//! everything else is the built-in OVS-DPDK engine's work, reused as a
//! library. With `host.tenantVlansRequired: true`, a pod of a namespace
//! without a VLAN is refused before anything is created.
//!
//! ```json
//! "host": {
//!   "engine": "/opt/cni/components/tenant_vlans_engine.wasm",
//!   "iftype": "memif", "netType": "bridge", "bridge": {"bridgeName": "br-tenants"},
//!   "tenantVlans": {"team-a": 101, "team-b": 102},
//!   "tenantVlansRequired": true
//! }
//! ```

use engine_ovs_dpdk::OvsDpdk;
use serde_json::Value;
use userspace_cni_sdk::{codes, export_engine, log, AddResult, Attachment, CniError, Engine};

struct TenantVlans;

impl Engine for TenantVlans {
    fn add(attachment: Attachment) -> Result<AddResult, CniError> {
        OvsDpdk::add(with_tenant_vlan(attachment)?)
    }

    fn check(attachment: Attachment) -> Result<(), CniError> {
        OvsDpdk::check(with_tenant_vlan(attachment)?)
    }

    fn status(host_config: String) -> Result<(), CniError> {
        OvsDpdk::status(host_config)
    }

    fn undo(attachment: Attachment, step: String) -> Result<(), CniError> {
        // Undo steps name what to remove; the tag does not matter there.
        OvsDpdk::undo(attachment, step)
    }
}

/// The attachment with its tenant's VLAN as `bridge.vlanId`.
fn with_tenant_vlan(mut attachment: Attachment) -> Result<Attachment, CniError> {
    let invalid = |msg: String| CniError::new(codes::INVALID_NETWORK_CONFIG, msg, "");
    let mut host: Value = serde_json::from_str(&attachment.host_config)
        .map_err(|e| invalid(format!("host section is not JSON: {e}")))?;
    let required = host["tenantVlansRequired"].as_bool().unwrap_or(false);
    let tenant = attachment.pod.as_ref().map(|pod| pod.namespace.clone());
    let tag = match tenant.as_deref().map(|t| (t, &host["tenantVlans"][t])) {
        Some((_, Value::Number(n))) => match n.as_u64() {
            Some(tag @ 1..=4094) => tag,
            _ => {
                return Err(invalid(format!(
                    "host.tenantVlans: {n} is not a VLAN in 1..=4094"
                )))
            }
        },
        Some((tenant, _)) if required => {
            return Err(invalid(format!(
                "namespace {tenant} has no VLAN in host.tenantVlans, and tenantVlansRequired is set"
            )))
        }
        None if required => {
            return Err(invalid(
                "no pod namespace in CNI_ARGS, and tenantVlansRequired is set".into(),
            ))
        }
        _ => return Ok(attachment),
    };
    log::info(&format!(
        "namespace {}: VLAN {tag}",
        tenant.unwrap_or_default()
    ));
    host["bridge"]["vlanId"] = tag.into();
    attachment.host_config = host.to_string();
    Ok(attachment)
}

export_engine!(TenantVlans);
