//! `components`: which WebAssembly components run for a network, pinned
//! and granted how. The engine is named by `host.engine` (the Go plugin's
//! key); this section may pin it and restrict its grants.
//!
//! ```json
//! "components": {
//!   "dir": "/etc/cni/userspace/components",
//!   "naming": "go-compatible",
//!   "ipamChain": { "source": "/opt/site/ipam.wasm", "sha256": "…", "grants": ["ipam", "log"] },
//!   "engine": { "sha256": "…" }
//! }
//! ```

use cni_protocol::CniError;
use serde_json::Value;

use crate::fields::{is_abs_path, is_safe_name, Obj};

/// One component choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentChoice {
    /// A built-in name, a name in `components.dir`, or an absolute path.
    /// `None`: the built-in default (for the engine: `host.engine`).
    pub source: Option<String>,
    /// The sha256 the component must have (64 hex digits, lower case).
    pub sha256: Option<String>,
    /// The capabilities granted; `None`: the role's defaults.
    pub grants: Option<Vec<String>>,
    /// Host directories the component may read through WASI, each with
    /// the path it sees them at: `[{"path": "/etc/site", "as": "/site"}]`.
    pub files: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Components {
    /// The operator's directory of components: a source that is a plain
    /// name and not built in is `<dir>/<name>.wasm`.
    pub dir: Option<String>,
    pub engine: ComponentChoice,
    pub naming: ComponentChoice,
    pub ipam_chain: ComponentChoice,
}

impl Components {
    pub(crate) fn parse(top: &Obj<'_>) -> Result<Components, CniError> {
        let section = top.child("components")?;
        let engine = choice(&section, "engine")?;
        if engine.source.is_some() {
            return Err(CniError::invalid_config(
                "components.engine.source: not accepted; host.engine names the engine",
            ));
        }
        Ok(Components {
            dir: section.opt_abs_path("dir")?,
            engine,
            naming: choice(&section, "naming")?,
            ipam_chain: choice(&section, "ipamChain")?,
        })
    }
}

fn choice(section: &Obj<'_>, key: &str) -> Result<ComponentChoice, CniError> {
    let field = format!("components.{key}");
    match section.get(key) {
        None | Some(Value::Null) => Ok(ComponentChoice::default()),
        Some(Value::String(source)) => Ok(ComponentChoice {
            source: Some(checked_source(&field, source)?),
            ..ComponentChoice::default()
        }),
        Some(Value::Object(_)) => {
            let obj = section.child(key)?;
            let source = obj
                .opt_str("source")?
                .map(|s| checked_source(&format!("{field}.source"), s))
                .transpose()?;
            let sha256 = match obj.opt_str("sha256")? {
                None => None,
                Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    Some(h.to_ascii_lowercase())
                }
                Some(h) => {
                    return Err(CniError::invalid_config(format!(
                        "{field}.sha256: {h:?} is not 64 hex digits"
                    )))
                }
            };
            let grants = match obj.get("grants") {
                None | Some(Value::Null) => None,
                Some(_) => Some(obj.str_list("grants")?),
            };
            Ok(ComponentChoice {
                source,
                sha256,
                grants,
                files: files(&obj, &field)?,
            })
        }
        Some(_) => Err(CniError::invalid_config(format!(
            "{field}: must be a component name or path, or an object {{source, sha256, grants}}"
        ))),
    }
}

/// `files`: each an absolute `path` without `..`, seen at `as` (default:
/// the same path).
fn files(obj: &Obj<'_>, field: &str) -> Result<Vec<(String, String)>, CniError> {
    let list = match obj.get("files") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(CniError::invalid_config(format!(
                "{field}.files: must be a list of {{path, as}}"
            )))
        }
    };
    let abs = |v: &Value| v.as_str().filter(|p| is_abs_path(p)).map(str::to_string);
    list.iter()
        .enumerate()
        .map(|(i, grant)| {
            let path = abs(&grant["path"]).ok_or_else(|| {
                CniError::invalid_config(format!(
                    "{field}.files[{i}].path: an absolute directory path without '..' is required"
                ))
            })?;
            let seen_as = match grant.get("as") {
                None | Some(Value::Null) => path.clone(),
                Some(v) => abs(v).ok_or_else(|| {
                    CniError::invalid_config(format!(
                        "{field}.files[{i}].as: must be an absolute path without '..'"
                    ))
                })?,
            };
            Ok((path, seen_as))
        })
        .collect()
}

/// An absolute path to a `.wasm` file, or a plain name.
fn checked_source(field: &str, source: &str) -> Result<String, CniError> {
    let path_ok = is_abs_path(source) && !source.split('/').any(|part| part == ".");
    if path_ok || is_safe_name(source) {
        Ok(source.to_string())
    } else {
        Err(CniError::invalid_config(format!(
            "{field}: {source:?} is neither a component name (letters, digits, '_', '.', '-') \
             nor an absolute path without '..'"
        )))
    }
}
