//! Which component runs in each role for a network: the config's
//! `components` section (and `host.engine`) resolved to runtime specs, and
//! the engine's spec as the attachment record keeps it for DEL and GC.

use cni_protocol::{codes, CniError};
use netconf::{ComponentChoice, NetConf};
use serde_json::{json, Value};
use wasm_runtime::{Capability, FileGrant, Role, Source, Spec};

/// The built-in component of each role that runs when the config names none.
fn default_source(role: Role, conf: &NetConf) -> Source {
    match role {
        Role::Engine => engine_source_named(conf.host.engine.as_str()),
        Role::Naming => Source::BuiltIn("go-compatible".into()),
        Role::IpamChain => Source::BuiltIn("delegate".into()),
    }
}

/// The component for an engine name as `host.engine` spells it.
pub(crate) fn engine_source_named(engine: &str) -> Source {
    if wasm_runtime::is_built_in(Role::Engine, engine) {
        Source::BuiltIn(engine.to_string())
    } else {
        Source::File(engine.into())
    }
}

pub(crate) fn spec(role: Role, conf: &NetConf) -> Result<Spec, CniError> {
    let (choice, field) = match role {
        Role::Engine => (&conf.components.engine, "components.engine"),
        Role::Naming => (&conf.components.naming, "components.naming"),
        Role::IpamChain => (&conf.components.ipam_chain, "components.ipamChain"),
    };
    let source = match &choice.source {
        None => default_source(role, conf),
        Some(source) => resolve(role, source, conf.components.dir.as_deref(), field)?,
    };
    Ok(Spec {
        source,
        sha256: choice.sha256.clone(),
        grants: grants(role, choice, field)?,
        files: choice
            .files
            .iter()
            .map(|(host, guest)| FileGrant {
                host: host.into(),
                guest: guest.clone(),
            })
            .collect(),
    })
}

/// A path, a built-in name, or a name in the operator's directory.
fn resolve(role: Role, source: &str, dir: Option<&str>, field: &str) -> Result<Source, CniError> {
    if source.starts_with('/') {
        return Ok(Source::File(source.into()));
    }
    if wasm_runtime::is_built_in(role, source) {
        return Ok(Source::BuiltIn(source.into()));
    }
    match dir {
        Some(dir) => Ok(Source::File(
            format!("{}/{source}.wasm", dir.trim_end_matches('/')).into(),
        )),
        None => Err(CniError::invalid_config(format!(
            "{field}: {source:?} is not a built-in {role} component ({}), and no components.dir is set",
            wasm_runtime::built_ins()
                .filter(|(_, r)| *r == role)
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn grants(role: Role, choice: &ComponentChoice, field: &str) -> Result<Vec<Capability>, CniError> {
    let Some(names) = &choice.grants else {
        return Ok(role.default_grants().to_vec());
    };
    names
        .iter()
        .map(|name| {
            Capability::parse(name).ok_or_else(|| {
                CniError::invalid_config(format!(
                    "{field}.grants: {name:?} is not one of {}",
                    Capability::ALL.map(Capability::as_str).join(", ")
                ))
            })
        })
        .collect()
}

/// The engine's spec as the attachment record keeps it.
pub(crate) fn to_record(spec: &Spec) -> Value {
    let (kind, source) = match &spec.source {
        Source::BuiltIn(name) => ("builtIn", name.clone()),
        Source::File(path) => ("file", path.display().to_string()),
    };
    json!({
        kind: source,
        "sha256": spec.sha256,
        "grants": spec.grants.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "files": spec.files.iter().map(|f| json!({"path": f.host, "as": f.guest})).collect::<Vec<_>>(),
    })
}

/// The engine that ADD ran, from its record; records written before specs
/// were recorded name only the engine.
pub(crate) fn engine_from_record(details: &Value) -> Result<Spec, CniError> {
    let recorded = &details["engineComponent"];
    let source = match (recorded["builtIn"].as_str(), recorded["file"].as_str()) {
        (Some(name), _) => Source::BuiltIn(name.into()),
        (None, Some(path)) => Source::File(path.into()),
        (None, None) => {
            return Ok(Spec::new(
                Role::Engine,
                engine_source_named(details["engine"].as_str().unwrap_or_default()),
            ))
        }
    };
    let grants = match recorded["grants"].as_array() {
        Some(list) => list
            .iter()
            .map(|g| {
                g.as_str().and_then(Capability::parse).ok_or_else(|| {
                    CniError::new(
                        codes::IO_FAILURE,
                        format!("attachment record: engine grant {g} is unknown"),
                        "",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        None => Role::Engine.default_grants().to_vec(),
    };
    let files = recorded["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(FileGrant {
                host: f["path"].as_str()?.into(),
                guest: f["as"].as_str()?.to_string(),
            })
        })
        .collect();
    Ok(Spec {
        source,
        sha256: recorded["sha256"].as_str().map(str::to_string),
        grants,
        files,
    })
}
