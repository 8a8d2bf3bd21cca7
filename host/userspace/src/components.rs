//! Which component runs in each role for a network: the config's
//! `components` section (and `host.engine`) resolved to runtime specs (the
//! attachment record keeps the engine's: `record::EngineRecord`).

use cni_protocol::CniError;
use netconf::{ComponentChoice, NetConf};
use wasm_runtime::{Capability, EngineComponent, FileGrant, Role, Runtime, Source, Spec};

use crate::wit_host::component_error;

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
        // What the node policy does not allow is not granted by default.
        let policy = crate::policy::node();
        return Ok(role
            .default_grants()
            .iter()
            .copied()
            .filter(|grant| policy.allows_grant(grant.as_str()))
            .collect());
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

/// The engine component of `spec`, loaded and admitted: the one way ADD,
/// CHECK, STATUS and DEL's undo steps load an engine.
pub(crate) fn load_engine<'r>(
    runtime: &'r Runtime,
    spec: &Spec,
) -> Result<EngineComponent<'r>, CniError> {
    runtime.load_engine(spec).map_err(component_error)
}

/// The component runtime, with its artifact cache under the node policy's
/// state dir (never one a network config names).
pub(crate) fn open_runtime() -> Result<Runtime, CniError> {
    Runtime::new(cache_dir()).map_err(component_error)
}

/// Where compiled components are cached.
pub(crate) fn cache_dir() -> std::path::PathBuf {
    crate::policy::node().state_dir.join("cache")
}

/// The spec of the engine the config names.
pub(crate) fn engine_spec(conf: &NetConf) -> Result<Spec, CniError> {
    spec(Role::Engine, conf)
}
