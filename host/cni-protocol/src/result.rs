//! The result of ADD in the shape of each spec version.
//!
//! Internally a result is held in the 1.x shape; `to_json` prints it in the
//! version the runtime asked for: 0.3.x / 0.4.0 carry `version` on each IP,
//! 1.1.0 adds `socketPath` and `pciID` on interfaces. Keys not modelled
//! here (a previous plugin's, a newer spec's) are kept as given: a
//! `prevResult` passes through a chain losslessly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{codes, CniError, Version};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub socket_path: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl IpConfig {
    pub fn is_ipv6(&self) -> bool {
        self.address.contains(':')
    }
}

/// A route; fields beyond `dst` / `gw` (1.1's mtu, table, scope...) are
/// kept as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CniResult {
    /// Reads a result of any supported version (an IPAM plugin's output or
    /// a `prevResult`).
    pub fn from_value(value: &Value) -> Result<CniResult, CniError> {
        let mut result: CniResult = serde_json::from_value(value.clone()).map_err(|e| {
            CniError::new(
                codes::DECODING_FAILURE,
                "cannot decode CNI result",
                e.to_string(),
            )
        })?;
        // The version is the printer's to set, and 0.x's per-IP version
        // is derived from the address.
        result.extra.remove("cniVersion");
        for ip in &mut result.ips {
            ip.extra.remove("version");
        }
        Ok(result)
    }

    /// The result as `version` prints it.
    pub fn to_value(&self, version: Version) -> Value {
        let mut value = serde_json::to_value(self).expect("result serialises");
        value["cniVersion"] = version.to_string().into();
        if version < Version::V1_0_0 {
            if let Some(ips) = value.get_mut("ips").and_then(Value::as_array_mut) {
                for (ip, typed) in ips.iter_mut().zip(&self.ips) {
                    ip["version"] = if typed.is_ipv6() { "6" } else { "4" }.into();
                }
            }
            // 0.x routes carry dst and gw only.
            if let Some(routes) = value.get_mut("routes").and_then(Value::as_array_mut) {
                for route in routes {
                    if let Some(obj) = route.as_object_mut() {
                        obj.retain(|k, _| k == "dst" || k == "gw");
                    }
                }
            }
        }
        if version < Version::V1_1_0 {
            if let Some(ifaces) = value.get_mut("interfaces").and_then(Value::as_array_mut) {
                for iface in ifaces {
                    if let Some(obj) = iface.as_object_mut() {
                        obj.remove("socketPath");
                        obj.remove("pciID");
                        obj.remove("mtu");
                    }
                }
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> CniResult {
        CniResult::from_value(&json!({
            "cniVersion": "0.3.1",
            "interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01", "sandbox": "/x", "socketPath": "/s"}],
            "ips": [{"version": "4", "address": "10.1.0.2/24", "gateway": "10.1.0.1", "interface": 0},
                    {"address": "fd00::2/64"}],
            "routes": [{"dst": "0.0.0.0/0", "priority": 5}],
            "dns": {}
        }))
        .unwrap()
    }

    #[test]
    fn old_versions_carry_ip_version_and_no_socket_path() {
        let v = sample().to_value(Version::V0_3_0);
        assert_eq!(v["cniVersion"], "0.3.0");
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["ips"][1]["version"], "6");
        assert!(v["interfaces"][0].get("socketPath").is_none());
        assert!(v["routes"][0].get("priority").is_none());
    }

    #[test]
    fn keys_not_modelled_survive_a_round_trip() {
        let given = json!({
            "cniVersion": "1.1.0",
            "interfaces": [{"name": "net1", "pciID": "0000:00:05.0", "socketPath": "/s",
                            "vendor": {"x": 1}}],
            "ips": [{"address": "10.1.0.2/24", "interface": 0, "flags": ["a"]}],
            "routes": [{"dst": "0.0.0.0/0", "table": 10}],
            "dns": {"nameservers": ["10.0.0.1"], "ttl": 5},
            "futureKey": [1, 2]
        });
        let result = CniResult::from_value(&given).unwrap();
        assert_eq!(result.to_value(Version::V1_1_0), given);
        let v1 = result.to_value(Version::V1_0_0);
        assert!(v1["interfaces"][0].get("pciID").is_none());
        assert_eq!(v1["interfaces"][0]["vendor"], json!({"x": 1}));
        assert_eq!(v1["futureKey"], json!([1, 2]));
        // A 0.x result's per-IP version is re-derived, not carried.
        let old = CniResult::from_value(&json!({"cniVersion": "0.4.0",
            "ips": [{"version": "4", "address": "10.1.0.2/24"}]}))
        .unwrap();
        assert!(old.to_value(Version::V1_0_0)["ips"][0]
            .get("version")
            .is_none());
    }

    #[test]
    fn v1_1_carries_socket_path_and_no_ip_version() {
        let v = sample().to_value(Version::V1_1_0);
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(v["interfaces"][0]["socketPath"], "/s");
        assert_eq!(v["routes"][0]["priority"], 5);
        let v = sample().to_value(Version::V1_0_0);
        assert!(v["interfaces"][0].get("socketPath").is_none());
    }
}
