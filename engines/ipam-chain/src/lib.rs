//! The built-in IPAM policy.
//!
//! `ipam` an object: delegate to that plugin, as the CNI spec describes.
//! `ipam` a list of objects (this plugin's extension): run each plugin in
//! turn, each seeing the network config with its own section as `ipam`,
//! and merge: addresses and routes in order, DNS from the first plugin
//! that returns any. When one fails the chain stops; the host releases the
//! allocations that succeeded (it journalled their DEL before each ADD).

use serde_json::{json, Value};
use userspace_cni_sdk::{export_ipam_chain, ipam, log, CniError, IpamChain};

/// This plugin's code for a failed IPAM delegation.
const IPAM_FAILURE: u32 = 101;
const INVALID_NETWORK_CONFIG: u32 = 7;

struct Delegate;

impl IpamChain for Delegate {
    fn allocate(network_config: String) -> Result<String, CniError> {
        let config: Value = serde_json::from_str(&network_config).map_err(|e| {
            CniError::new(
                INVALID_NETWORK_CONFIG,
                "network config is not JSON",
                e.to_string(),
            )
        })?;
        let sections = match &config["ipam"] {
            Value::Array(list) => list.clone(),
            section @ Value::Object(_) => return ipam::exec("ADD", &config_with(&config, section)),
            _ => {
                return Err(CniError::new(
                    INVALID_NETWORK_CONFIG,
                    "ipam: an object, or a list of objects",
                    "",
                ))
            }
        };
        let mut merged = json!({ "cniVersion": "1.0.0", "ips": [], "routes": [] });
        for (index, section) in sections.iter().enumerate() {
            log::debug(&format!("IPAM {index}: {}", section["type"]));
            let output = ipam::exec("ADD", &config_with(&config, section))?;
            let result: Value = serde_json::from_str(&output).map_err(|e| {
                CniError::new(
                    IPAM_FAILURE,
                    format!("ipam[{index}] ({}) returned no JSON", section["type"]),
                    e.to_string(),
                )
            })?;
            merge(&mut merged, &result);
        }
        Ok(merged.to_string())
    }
}

/// The network config with `section` as its `ipam`.
fn config_with(config: &Value, section: &Value) -> String {
    let mut config = config.clone();
    config["ipam"] = section.clone();
    config.to_string()
}

/// Appends `result`'s addresses and routes to `merged`; keeps the first DNS.
fn merge(merged: &mut Value, result: &Value) {
    for key in ["ips", "routes"] {
        if let (Some(into), Some(from)) = (merged[key].as_array_mut(), result[key].as_array()) {
            into.extend(from.iter().cloned());
        }
    }
    let has_dns = |v: &Value| v["dns"].as_object().is_some_and(|d| !d.is_empty());
    if !has_dns(merged) && has_dns(result) {
        merged["dns"] = result["dns"].clone();
    }
}

export_ipam_chain!(Delegate);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_order_and_the_first_dns() {
        let mut merged = json!({ "ips": [], "routes": [] });
        merge(
            &mut merged,
            &json!({"ips": [{"address": "10.0.0.2/24"}], "dns": {"nameservers": ["10.0.0.1"]}}),
        );
        merge(
            &mut merged,
            &json!({"ips": [{"address": "fd00::2/64"}], "routes": [{"dst": "::/0"}], "dns": {"nameservers": ["fd00::1"]}}),
        );
        assert_eq!(merged["ips"][0]["address"], "10.0.0.2/24");
        assert_eq!(merged["ips"][1]["address"], "fd00::2/64");
        assert_eq!(merged["routes"].as_array().unwrap().len(), 1);
        assert_eq!(merged["dns"]["nameservers"][0], "10.0.0.1");
    }
}
