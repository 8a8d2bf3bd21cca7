use crate::{codes, CniError};

/// The CNI command in `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    fn parse(text: &str) -> Result<Command, CniError> {
        Ok(match text {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            other => {
                return Err(CniError::invalid_env(format!(
                    "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, VERSION, STATUS, GC"
                )))
            }
        })
    }

    /// Whether the command concerns one container attachment.
    pub fn is_per_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// Longest container ID accepted. IDs become file names in the state dir.
const MAX_CONTAINER_ID: usize = 128;
/// Interface names follow the kernel's IFNAMSIZ (16 with the NUL).
const MAX_IFNAME: usize = 15;

/// The plugin's environment, validated.
#[derive(Debug, Clone)]
pub struct Environment {
    pub command: Command,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: CniArgs,
    /// CNI_ARGS as given, for delegates.
    pub args_raw: String,
    pub path: Vec<String>,
}

impl Environment {
    /// Reads and validates the CNI variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Environment, CniError> {
        let command = Command::parse(
            &var("CNI_COMMAND").ok_or_else(|| CniError::invalid_env("CNI_COMMAND is not set"))?,
        )?;
        let required = |name: &str| -> Result<String, CniError> {
            match var(name) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(CniError::invalid_env(format!(
                    "{name} is not set (required for this command)"
                ))),
            }
        };
        let per_attachment = command.is_per_attachment();
        let container_id = if per_attachment {
            required("CNI_CONTAINERID")?
        } else {
            String::new()
        };
        if per_attachment {
            validate_container_id(&container_id)?;
        }
        let ifname = if per_attachment {
            required("CNI_IFNAME")?
        } else {
            String::new()
        };
        if per_attachment {
            validate_ifname(&ifname)?;
        }
        let netns = match command {
            Command::Add | Command::Check => required("CNI_NETNS")?,
            _ => var("CNI_NETNS").unwrap_or_default(),
        };
        let path = match command {
            Command::Version => Vec::new(),
            _ => required("CNI_PATH")?
                .split(':')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        };
        let args_raw = var("CNI_ARGS").unwrap_or_default();
        let args = CniArgs::parse(&args_raw)?;
        Ok(Environment {
            command,
            container_id,
            netns,
            ifname,
            args,
            args_raw,
            path,
        })
    }
}

/// CNI_CONTAINERID: the spec's charset, bounded so it is a safe file name.
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let valid = id.len() <= MAX_CONTAINER_ID
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(ok_char);
    if valid {
        Ok(())
    } else {
        Err(CniError::invalid_env(format!(
            "CNI_CONTAINERID {:?} is invalid: it must start with a letter or digit, hold only \
             letters, digits, '_', '.', '-' and be at most {MAX_CONTAINER_ID} characters",
            shorten(id)
        )))
    }
}

/// CNI_IFNAME: at most 15 bytes, not `.` or `..`, no `/`, `:`, whitespace or control characters.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(CniError::invalid_env(format!(
            "CNI_IFNAME {:?} is invalid: it must be 1-{MAX_IFNAME} bytes, not \".\" or \"..\", \
             without '/', ':', whitespace or control characters",
            shorten(name)
        )))
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text.to_string()
    }
}

/// `CNI_ARGS`: `KEY=VALUE;KEY=VALUE`.
#[derive(Debug, Clone, Default)]
pub struct CniArgs {
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    pub pod_uid: Option<String>,
    pub pod_infra_container_id: Option<String>,
}

impl CniArgs {
    /// Unknown keys are an error unless `IgnoreUnknown` is true. As libcni
    /// reads it: `1` or `true` in any case is true, `0` or `false` false,
    /// anything else an error.
    pub fn parse(text: &str) -> Result<CniArgs, CniError> {
        let mut args = CniArgs::default();
        let mut unknown = Vec::new();
        let mut ignore_unknown = false;
        for pair in text.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                CniError::invalid_env(format!("CNI_ARGS: {pair:?} is not KEY=VALUE"))
            })?;
            let raw = value;
            let value = Some(raw.to_string());
            match key {
                "IgnoreUnknown" => {
                    ignore_unknown = match raw.to_ascii_lowercase().as_str() {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => {
                            return Err(CniError::invalid_env(format!(
                                "CNI_ARGS: IgnoreUnknown={raw} is not 1, 0, true or false"
                            )))
                        }
                    };
                }
                "K8S_POD_NAMESPACE" => args.pod_namespace = value,
                "K8S_POD_NAME" => args.pod_name = value,
                "K8S_POD_UID" => args.pod_uid = value,
                "K8S_POD_INFRA_CONTAINER_ID" => args.pod_infra_container_id = value,
                other => unknown.push(other.to_string()),
            }
        }
        if !unknown.is_empty() && !ignore_unknown {
            return Err(CniError::new(
                codes::INVALID_ENVIRONMENT,
                format!("CNI_ARGS: unknown keys {unknown:?}"),
                "set IgnoreUnknown=1 to ignore them",
            ));
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ignore_unknown_is_read_as_libcni_reads_it() {
        for yes in ["1", "true", "TRUE", "True", "tRuE"] {
            let args = CniArgs::parse(&format!("IgnoreUnknown={yes};FOO=bar")).unwrap();
            assert_eq!(args.pod_name, None, "{yes}");
        }
        for no in ["0", "false", "FALSE"] {
            let err = CniArgs::parse(&format!("IgnoreUnknown={no};FOO=bar")).unwrap_err();
            assert!(err.msg.contains("unknown keys"), "{no}: {}", err.msg);
        }
        for bad in ["yes", "2", ""] {
            let err = CniArgs::parse(&format!("IgnoreUnknown={bad}")).unwrap_err();
            assert_eq!(err.code, codes::INVALID_ENVIRONMENT, "{bad:?}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Result<Environment, CniError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn add_needs_container_ifname_netns_and_path() {
        let full = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "net1"),
            ("CNI_NETNS", "/var/run/netns/x"),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
        ];
        let e = env(&full).unwrap();
        assert_eq!(e.path, vec!["/opt/cni/bin", "/usr/lib/cni"]);
        for skip in 1..full.len() {
            let partial: Vec<_> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, p)| *p)
                .collect();
            assert_eq!(
                env(&partial).unwrap_err().code,
                4,
                "without {}",
                full[skip].0
            );
        }
    }

    #[test]
    fn version_needs_nothing_else() {
        assert_eq!(
            env(&[("CNI_COMMAND", "VERSION")]).unwrap().command,
            Command::Version
        );
    }

    #[test]
    fn hostile_ids_and_names_are_refused() {
        for id in ["../etc", "a/b", "", "-x", &"a".repeat(300)] {
            assert!(validate_container_id(id).is_err(), "{id}");
        }
        for name in [
            "..",
            ".",
            "a/b",
            "a:b",
            "a b",
            "sixteen-chars-xx",
            "a\u{0}b",
        ] {
            assert!(validate_ifname(name).is_err(), "{name}");
        }
        validate_ifname("net1").unwrap();
        validate_container_id("3f2a_b.c-d").unwrap();
    }

    #[test]
    fn cni_args_unknown_keys_need_ignore_unknown() {
        assert_eq!(CniArgs::parse("FOO=bar").unwrap_err().code, 4);
        let args = CniArgs::parse("IgnoreUnknown=1;FOO=bar;K8S_POD_NAME=p").unwrap();
        assert_eq!(args.pod_name.as_deref(), Some("p"));
        assert!(CniArgs::parse("novalue").is_err());
    }
}
