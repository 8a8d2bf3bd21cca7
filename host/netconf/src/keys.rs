//! Keys as the Go plugin matched them, and the keys it grew that this
//! plugin does not implement.
//!
//! The Go plugin decodes its config with Go's `encoding/json`, which
//! matches a key to a field whatever its case: `"BridgeName"` worked
//! there. Keys of this plugin's schema are put in their canonical case
//! before anything reads the config (the parser, the node policy's checks
//! of the raw config, the components), so all of them see one spelling.
//! Two keys of one object that mean the same field are refused: which
//! one Go kept depends on their order in the text.
//!
//! The newer Go fork added keys this plugin does not implement; a config
//! that asks for one of them is refused with error 2 rather than served
//! without it.

use cni_protocol::{codes, CniError};
use serde_json::{Map, Value};

const TOP: &[&str] = &[
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "capabilities",
    "ipam",
    "dns",
    "args",
    "runtimeConfig",
    "prevResult",
    "mtu",
    "mac",
    "host",
    "container",
    "kubeconfig",
    "sharedDir",
    "logFile",
    "logLevel",
    "stateDir",
    "kubernetes",
    "components",
    "componentLimits",
];
const SIDE: &[&str] = &[
    "engine", "iftype", "netType", "memif", "vhost", "bridge", "ovs", "vpp", "mtu", "mac",
];
const MEMIF: &[&str] = &[
    "role",
    "mode",
    "socketfile",
    "rxQueues",
    "txQueues",
    "ringSize",
    "bufferSize",
    "secret",
    "noZeroCopy",
    "useDma",
];
const VHOST: &[&str] = &[
    "mode",
    "group",
    "socketfile",
    "enableGso",
    "enablePacked",
    "enableEventIdx",
    "ingressPolicingRate",
    "ingressPolicingBurst",
];
const BRIDGE: &[&str] = &["bridgeName", "bridgeId", "vlanId", "trunks", "vlanMode"];
const OVS: &[&str] = &["dbSocket", "vhostSockDir"];
const VPP: &[&str] = &["apiSocket"];
const KUBERNETES: &[&str] = &["sharedDirVolume", "kubeletDir", "socketMountDir"];
const COMPONENT_LIMITS: &[&str] = &["timeoutMs", "memoryMiB"];

/// The known keys of the object at `path` (keys from the top), if its
/// keys are this plugin's to match.
fn known_keys(path: &[String]) -> Option<&'static [&'static str]> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        [] => Some(TOP),
        ["host" | "container"] => Some(SIDE),
        ["host" | "container", "memif"] => Some(MEMIF),
        ["host" | "container", "vhost"] => Some(VHOST),
        ["host" | "container", "bridge"] => Some(BRIDGE),
        ["host" | "container", "ovs"] => Some(OVS),
        ["host" | "container", "vpp"] => Some(VPP),
        ["kubernetes"] => Some(KUBERNETES),
        ["componentLimits"] => Some(COMPONENT_LIMITS),
        _ => None,
    }
}

/// Puts every key of this plugin's schema in `config` in its canonical
/// case; error 7 when two keys of one object mean the same field.
pub(crate) fn canonicalize(config: &mut Value) -> Result<(), CniError> {
    canonicalize_at(config, &mut Vec::new(), true)
}

/// As [`canonicalize`], leaving a field given in two spellings as it is
/// and going on (a DEL locating its record takes what it can).
pub(crate) fn canonicalize_leniently(config: &mut Value) {
    let _ = canonicalize_at(config, &mut Vec::new(), false);
}

fn canonicalize_at(
    value: &mut Value,
    path: &mut Vec<String>,
    strict: bool,
) -> Result<(), CniError> {
    let Some(known) = known_keys(path) else {
        return Ok(());
    };
    let Value::Object(map) = value else {
        return Ok(());
    };
    rename_keys(map, known, path, strict)?;
    for (key, child) in map.iter_mut() {
        path.push(key.clone());
        canonicalize_at(child, path, strict)?;
        path.pop();
    }
    Ok(())
}

fn rename_keys(
    map: &mut Map<String, Value>,
    known: &[&str],
    path: &[String],
    strict: bool,
) -> Result<(), CniError> {
    for canonical in known {
        let spellings: Vec<String> = map
            .keys()
            .filter(|k| k.eq_ignore_ascii_case(canonical))
            .cloned()
            .collect();
        match spellings.as_slice() {
            [] => {}
            [one] if one == canonical => {}
            [one] => {
                let value = map.remove(one).expect("the key was just listed");
                map.insert(canonical.to_string(), value);
            }
            _ if !strict => {}
            several => {
                let mut field = path.to_vec();
                field.push(canonical.to_string());
                let field = field.join(".");
                return Err(CniError::invalid_config(format!(
                    "{field}: given as {} keys that differ only in case ({}); give it once",
                    several.len(),
                    several.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Error 2 for a key of the newer Go fork that asks for something this
/// plugin does not do. The value that asks for nothing (false, 0, an
/// empty list, `access`) is what this plugin does anyway, and is accepted.
pub(crate) fn refuse_unsupported(config: &Value) -> Result<(), CniError> {
    for side in ["host", "container"] {
        for (section, key) in [
            ("memif", "noZeroCopy"),
            ("memif", "useDma"),
            ("vhost", "enableGso"),
            ("vhost", "enablePacked"),
            ("vhost", "enableEventIdx"),
            ("vhost", "ingressPolicingRate"),
            ("vhost", "ingressPolicingBurst"),
            ("bridge", "trunks"),
            ("bridge", "vlanMode"),
        ] {
            let value = &config[side][section][key];
            let asks = match value {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Array(list) => !list.is_empty(),
                Value::String(s) => !(s.is_empty() || (key == "vlanMode" && s == "access")),
                _ => true,
            };
            if asks {
                return Err(CniError::new(
                    codes::UNSUPPORTED_FIELD,
                    format!("{side}.{section}.{key}: not supported by this plugin"),
                    format!(
                        "{value} asks for what the newer Go fork's {key} does, which this plugin does not implement; \
                         remove the key (or give it false, 0, [] or \"access\")"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_in_any_case_take_their_canonical_spelling() {
        let mut config = json!({
            "CNIVERSION": "1.0.0", "Name": "n", "Host": {"Engine": "ovs-dpdk",
            "BRIDGE": {"bridgename": "br0", "VlanId": 3}, "Memif": {"ROLE": "master"}},
            "ipam": {"Type": "host-local"}, "unknownKey": 1,
            "components": {"Naming": {"x": 1}}
        });
        canonicalize(&mut config).unwrap();
        assert_eq!(
            config,
            json!({
                "cniVersion": "1.0.0", "name": "n", "host": {"engine": "ovs-dpdk",
                "bridge": {"bridgeName": "br0", "vlanId": 3}, "memif": {"role": "master"}},
                // Not this plugin's schema: the delegate's, and unknown keys.
                "ipam": {"Type": "host-local"}, "unknownKey": 1,
                "components": {"Naming": {"x": 1}}
            })
        );
    }

    #[test]
    fn two_spellings_of_one_key_are_refused() {
        let mut config = json!({"host": {"bridge": {"bridgeName": "a", "BridgeName": "b"}}});
        let err = canonicalize(&mut config).unwrap_err();
        assert_eq!(err.code, 7);
        assert!(err.msg.contains("host.bridge.bridgeName"), "{err}");
    }

    #[test]
    fn the_forks_keys_are_error_2_only_when_they_ask_for_something() {
        for (section, key, value) in [
            ("memif", "noZeroCopy", json!(true)),
            ("memif", "useDma", json!(true)),
            ("vhost", "enableGso", json!(true)),
            ("vhost", "enablePacked", json!(true)),
            ("vhost", "enableEventIdx", json!(true)),
            ("vhost", "ingressPolicingRate", json!(1000)),
            ("vhost", "ingressPolicingBurst", json!(100)),
            ("bridge", "trunks", json!([10, 20])),
            ("bridge", "vlanMode", json!("trunk")),
        ] {
            let config = json!({"container": {section: {key: value}}});
            let err = refuse_unsupported(&config).unwrap_err();
            assert_eq!(err.code, 2, "{key}");
            assert!(
                err.msg.contains(&format!("container.{section}.{key}")),
                "{err}"
            );
        }
        let harmless = json!({"host": {"memif": {"noZeroCopy": false, "useDma": false},
            "vhost": {"enableGso": false, "ingressPolicingRate": 0},
            "bridge": {"trunks": [], "vlanMode": "access"}}});
        refuse_unsupported(&harmless).unwrap();
    }
}
