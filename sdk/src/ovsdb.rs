//! Typed builders for RFC 7047 operations on the Open_vSwitch database,
//! and the call that runs them through the host.

use serde_json::{json, Value};

use crate::bindings::userspace::cni::ovsdb::{self as host, OvsdbError};
use crate::{codes, CniError};

/// `["uuid", "<uuid>"]`
pub fn uuid(u: &str) -> Value {
    json!(["uuid", u])
}

/// `["set", [...]]`
pub fn set(items: Vec<Value>) -> Value {
    json!(["set", items])
}

/// `["map", [[k, v], ...]]`
pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let pairs: Vec<Value> = pairs.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!(["map", pairs])
}

/// A where-clause condition `[column, function, value]`.
pub fn cond(column: &str, function: &str, value: Value) -> Value {
    json!([column, function, value])
}

pub fn select(table: &str, conditions: Vec<Value>, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": conditions, "columns": columns})
}

/// Insert with a UUID chosen by the caller, so that its undo can be
/// journalled before the insert happens.
pub fn insert_with_uuid(table: &str, row_uuid: &str, row: Value) -> Value {
    json!({"op": "insert", "table": table, "uuid": row_uuid, "row": row})
}

pub fn mutate(
    table: &str,
    conditions: Vec<Value>,
    column: &str,
    mutator: &str,
    value: Value,
) -> Value {
    json!({"op": "mutate", "table": table, "where": conditions,
           "mutations": [[column, mutator, value]]})
}

/// A `wait` that fails at once unless the selected rows, projected on
/// `columns`, are exactly `rows`.
pub fn wait_now(table: &str, conditions: Vec<Value>, columns: &[&str], rows: Vec<Value>) -> Value {
    json!({"op": "wait", "table": table, "where": conditions, "columns": columns,
           "until": "==", "rows": rows, "timeout": 0})
}

/// Runs `ops` as one transaction and returns the per-operation results.
/// An operation error inside the reply becomes `Err` naming `what`.
pub fn transact(what: &str, ops: &[Value], wait_applied: bool) -> Result<Vec<Value>, CniError> {
    let ops = Value::Array(ops.to_vec()).to_string();
    let reply = host::transact(&ops, wait_applied).map_err(|e| ovsdb_error(what, e))?;
    let results: Vec<Value> = serde_json::from_str(&reply).map_err(|e| {
        CniError::new(
            codes::VSWITCH_FAILURE,
            format!("{what}: unreadable ovsdb reply"),
            e.to_string(),
        )
    })?;
    if let Some(err) = results.iter().find(|r| r.get("error").is_some()) {
        let error = err["error"].as_str().unwrap_or("error");
        let details = err.get("details").and_then(Value::as_str).unwrap_or("");
        return Err(CniError::new(
            codes::VSWITCH_FAILURE,
            format!("{what}: ovsdb-server refused the transaction: {error}"),
            details,
        ));
    }
    Ok(results)
}

/// The rows of a `select` result.
pub fn rows(result: &Value) -> &[Value] {
    result["rows"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Reads `["map", [[k, v]...]]` as pairs.
pub fn map_get<'a>(map: &'a Value, key: &str) -> Option<&'a str> {
    map.get(1)?
        .as_array()?
        .iter()
        .find(|pair| pair[0] == key)
        .and_then(|pair| pair[1].as_str())
}

/// The UUIDs in a column that holds a single UUID or a set of them.
pub fn uuids(value: &Value) -> Vec<String> {
    match value {
        Value::Array(a) if a.first() == Some(&json!("uuid")) => a
            .get(1)
            .and_then(Value::as_str)
            .map(str::to_string)
            .into_iter()
            .collect(),
        Value::Array(a) if a.first() == Some(&json!("set")) => a
            .get(1)
            .and_then(Value::as_array)
            .map(|items| items.iter().flat_map(uuids).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn ovsdb_error(what: &str, error: OvsdbError) -> CniError {
    match error {
        OvsdbError::Unreachable(m) => CniError::new(
            codes::TRY_AGAIN_LATER,
            format!("{what}: ovsdb-server is unreachable"),
            format!("{m}; is ovsdb-server running and is host.ovs.dbSocket right?"),
        ),
        // The host refuses what is outside the `ovsdb` grant's scope
        // before it reaches the vSwitch.
        OvsdbError::Rejected(m) if m.starts_with("ovsdb scope") => {
            CniError::new(codes::COMPONENT_FAILURE, format!("{what}: {m}"), "")
        }
        OvsdbError::Rejected(m) => CniError::new(
            codes::VSWITCH_FAILURE,
            format!("{what}: ovsdb-server refused the request"),
            m,
        ),
        OvsdbError::Timeout(m) => CniError::new(
            codes::TRY_AGAIN_LATER,
            format!("{what}: timed out waiting for the vSwitch"),
            m,
        ),
    }
}
