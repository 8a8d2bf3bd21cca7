//! Field-by-field reading of a JSON object with errors that name the field.

use cni_protocol::CniError;
use serde_json::{Map, Value};

/// A JSON object and the dotted path that reached it (for messages).
pub(crate) struct Obj<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
}

fn invalid(msg: String) -> CniError {
    CniError::invalid_config(msg)
}

impl<'a> Obj<'a> {
    pub(crate) fn root(value: &'a Value) -> Result<Obj<'a>, CniError> {
        match value {
            Value::Object(map) => Ok(Obj {
                path: String::new(),
                map: Some(map),
            }),
            _ => Err(invalid("network config must be a JSON object".into())),
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key))
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map.into_iter().flat_map(|m| m.iter())
    }

    /// A child object; an absent or null child reads as empty.
    pub(crate) fn child(&self, key: &str) -> Result<Obj<'a>, CniError> {
        let path = self.field(key);
        match self.get(key) {
            None | Some(Value::Null) => Ok(Obj { path, map: None }),
            Some(Value::Object(map)) => Ok(Obj {
                path,
                map: Some(map),
            }),
            Some(other) => Err(invalid(format!(
                "{path}: must be an object, not {}",
                kind(other)
            ))),
        }
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, CniError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(format!(
                "{}: must be a string, not {}",
                self.field(key),
                kind(other)
            ))),
        }
    }

    /// A non-empty string, required.
    pub(crate) fn req_str(&self, key: &str) -> Result<&'a str, CniError> {
        match self.opt_str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(invalid(format!("{}: required", self.field(key)))),
        }
    }

    /// An optional string that must be one of `allowed` (empty = absent).
    pub(crate) fn opt_enum(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, CniError> {
        match self.opt_str(key)? {
            None | Some("") => Ok(None),
            Some(s) if allowed.contains(&s) => Ok(Some(s.to_string())),
            Some(s) => Err(invalid(format!(
                "{}: {s:?} is not one of {}",
                self.field(key),
                allowed.join(", ")
            ))),
        }
    }

    pub(crate) fn opt_u32_in(
        &self,
        key: &str,
        min: u32,
        max: u32,
    ) -> Result<Option<u32>, CniError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (min as u64..=max as u64).contains(&v) => Ok(Some(v as u32)),
                _ => Err(invalid(format!(
                    "{}: {n} is not an integer in {min}..={max}",
                    self.field(key)
                ))),
            },
            Some(other) => Err(invalid(format!(
                "{}: must be an integer, not {}",
                self.field(key),
                kind(other)
            ))),
        }
    }

    pub(crate) fn opt_abs_path(&self, key: &str) -> Result<Option<String>, CniError> {
        match self.opt_str(key)? {
            None | Some("") => Ok(None),
            Some(p) if is_abs_path(p) => Ok(Some(p.to_string())),
            Some(p) => Err(invalid(format!(
                "{}: {p:?} must be an absolute path without '..'",
                self.field(key)
            ))),
        }
    }

    /// A file name (no directory part), as `socketfile` is.
    pub(crate) fn opt_file_name(&self, key: &str) -> Result<Option<String>, CniError> {
        match self.opt_str(key)? {
            None | Some("") => Ok(None),
            Some(name) if is_safe_name(name) && name.len() <= 64 => Ok(Some(name.to_string())),
            Some(name) => Err(invalid(format!(
                "{}: {name:?} must be a file name of at most 64 letters, digits, '_', '.', '-' (no '/')",
                self.field(key)
            ))),
        }
    }

    pub(crate) fn opt_mac(&self, key: &str) -> Result<Option<String>, CniError> {
        match self.opt_str(key)? {
            None | Some("") => Ok(None),
            Some(mac) if is_unicast_mac(mac) => Ok(Some(mac.to_ascii_lowercase())),
            Some(mac) => Err(invalid(format!(
                "{}: {mac:?} is not a unicast MAC address like 02:00:00:00:00:01",
                self.field(key)
            ))),
        }
    }

    pub(crate) fn str_list(&self, key: &str) -> Result<Vec<String>, CniError> {
        let bad = || invalid(format!("{}: must be a list of strings", self.field(key)));
        // An explicit null is an empty list (the runtime keeps nothing).
        if self.get(key).is_some_and(Value::is_null) {
            return Ok(Vec::new());
        }
        let list = self.get(key).and_then(Value::as_array).ok_or_else(bad)?;
        list.iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect()
    }

    /// GC's attachment list: `[{"containerID": ..., "ifname": ...}]`.
    pub(crate) fn attachments(&self, key: &str) -> Result<Vec<(String, String)>, CniError> {
        let bad = || {
            invalid(format!(
                "{}: must be a list of {{containerID, ifname}}",
                self.field(key)
            ))
        };
        // An explicit null is an empty list (the runtime keeps nothing).
        if self.get(key).is_some_and(Value::is_null) {
            return Ok(Vec::new());
        }
        let list = self.get(key).and_then(Value::as_array).ok_or_else(bad)?;
        list.iter()
            .map(|item| {
                let id = item
                    .get("containerID")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?;
                let ifname = item.get("ifname").and_then(Value::as_str).ok_or_else(bad)?;
                Ok((id.to_string(), ifname.to_string()))
            })
            .collect()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An absolute path without `..` parts.
pub fn is_abs_path(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|part| part == "..")
}

/// Letters, digits, `_`, `.`, `-`; starts with a letter or digit; at most 128.
pub fn is_safe_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub fn is_unicast_mac(mac: &str) -> bool {
    let octets: Vec<&str> = mac.split(':').collect();
    octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()))
        && u8::from_str_radix(octets[0], 16).is_ok_and(|first| first & 1 == 0)
}
