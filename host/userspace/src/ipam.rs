//! IPAM in one place: the network config each IPAM plugin gets, the CNI
//! variables it runs with, and the policy for running one for the IPAM
//! chain component (which decides which to run; `capabilities` only
//! adapts its `ipam` import to [`exec_for_chain`]).

use attachment_store::{Record, Undo};
use cni_protocol::{codes, CniError, CniResult, Environment, Version};
use netconf::NetConf;
use serde_json::Value;

use crate::journal::Journal;

/// The network config as the IPAM plugins get it. Reference IPAM plugins
/// speak up to 1.0.0; their results are converted back to our version.
pub(crate) fn config(conf: &NetConf) -> Value {
    let mut ipam_conf = conf.raw.clone();
    ipam_conf["cniVersion"] = conf
        .cni_version
        .min(cni_protocol::Version::V1_0_0)
        .to_string()
        .into();
    if let Some(obj) = ipam_conf.as_object_mut() {
        obj.remove("cniVersions");
        obj.remove("prevResult");
    }
    ipam_conf
}

/// One network config per IPAM plugin the config lists, each with that
/// plugin's section as `ipam`.
pub(crate) fn configs(conf: &NetConf) -> Vec<Value> {
    let base = config(conf);
    match &conf.ipam {
        Some(Value::Array(sections)) => sections
            .iter()
            .map(|section| {
                let mut one = base.clone();
                one["ipam"] = section.clone();
                one
            })
            .collect(),
        Some(_) => vec![base],
        None => Vec::new(),
    }
}

/// STATUS and GC reach an IPAM plugin only if it speaks 1.1.0, where
/// they exist (host-local up to 1.1.1 speaks 1.0.0 at most): the configs
/// of those plugins, in 1.1.0; the log names the others.
fn configs_speaking_1_1(env: &Environment, conf: &NetConf) -> Vec<Value> {
    let mut speaking = Vec::new();
    for mut config in configs(conf) {
        let plugin = config["ipam"]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match ipam_delegate::supported_versions(&plugin, &env.path) {
            Ok(versions) if versions.iter().any(|v| v == "1.1.0") => {
                config["cniVersion"] = "1.1.0".into();
                speaking.push(config);
            }
            Ok(versions) => {
                tracing::info!(plugin, supported = ?versions, "IPAM plugin does not speak CNI 1.1.0: STATUS and GC are not forwarded to it");
            }
            Err(e) => {
                tracing::warn!(plugin, "IPAM plugin did not answer VERSION ({e}): STATUS and GC are not forwarded to it");
            }
        }
    }
    speaking
}

/// STATUS of every IPAM plugin that speaks 1.1.0: a plugin that relies on
/// a delegate to serve ADD is not ready when its delegate is not (the
/// spec). The first failure is the answer, with the delegate's code.
pub(crate) fn status(env: &Environment, conf: &NetConf) -> Result<(), CniError> {
    for config in configs_speaking_1_1(env, conf) {
        ipam_delegate::exec(&call(env, "STATUS"), &config)?;
    }
    Ok(())
}

/// GC forwarded, with the attachments still valid, to every IPAM plugin
/// that speaks 1.1.0 (the spec: GC goes to delegated plugins). The others
/// are covered by the per-record release GC does anyway. Every plugin is
/// asked; the failures are returned.
pub(crate) fn gc(env: &Environment, conf: &NetConf, valid: &[(String, String)]) -> Vec<String> {
    let list: Vec<Value> = valid
        .iter()
        .map(|(id, ifname)| serde_json::json!({"containerID": id, "ifname": ifname}))
        .collect();
    let mut failures = Vec::new();
    for mut config in configs_speaking_1_1(env, conf) {
        if let Some(obj) = config.as_object_mut() {
            obj.remove("cni.dev/attachments");
        }
        config["cni.dev/valid-attachments"] = Value::Array(list.clone());
        if let Err(e) = ipam_delegate::exec(&call(env, "GC"), &config) {
            failures.push(e.to_string());
        }
    }
    failures
}

/// The delegate call for `command` with this CNI call's variables.
pub(crate) fn call<'a>(env: &'a Environment, command: &'a str) -> ipam_delegate::Call<'a> {
    ipam_delegate::Call {
        command,
        container_id: &env.container_id,
        netns: &env.netns,
        ifname: &env.ifname,
        cni_args: &env.args_raw,
        cni_path: &env.path,
    }
}

/// The CNI variables an IPAM plugin is run with.
pub(crate) struct IpamDelegate {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub cni_args: String,
    pub cni_path: Vec<String>,
    /// The `ipam` scope: the plugin types the network config names; the
    /// IPAM chain may run no other.
    pub plugin_types: Vec<String>,
}

impl IpamDelegate {
    pub(crate) fn new(env: &cni_protocol::Environment, conf: &NetConf) -> IpamDelegate {
        IpamDelegate {
            container_id: env.container_id.clone(),
            netns: env.netns.clone(),
            ifname: env.ifname.clone(),
            cni_args: env.args_raw.clone(),
            cni_path: env.path.clone(),
            plugin_types: conf.ipam_types().into_iter().map(str::to_string).collect(),
        }
    }
}

/// Runs one IPAM plugin for the IPAM chain component. The policy: only
/// ADD and CHECK (the host releases allocations itself); an ADD's release
/// is journalled before the plugin runs, so a later failure, a crash, DEL
/// and GC release it; after a failed ADD the plugin is asked to DEL at
/// once (as the spec asks of a runtime) and that journalled release is
/// retracted.
pub(crate) fn exec_for_chain<J: Journal>(
    delegate: &IpamDelegate,
    journal: &mut J,
    command: &str,
    network_config: &str,
) -> Result<String, CniError> {
    let config: Value = serde_json::from_str(network_config).map_err(|e| {
        CniError::invalid_config(format!(
            "IPAM chain: the network config it passed is not JSON: {e}"
        ))
    })?;
    let plugin = match config["ipam"]["type"].as_str() {
        Some(plugin) if netconf::is_safe_name(plugin) => plugin.to_string(),
        _ => {
            return Err(CniError::invalid_config(format!(
                "IPAM chain: ipam.type {} is not a plugin file name",
                config["ipam"]["type"]
            )))
        }
    };
    if !delegate.plugin_types.contains(&plugin) {
        // A chain that could run any plugin in CNI_PATH as root could run
        // `host-device` and move a host interface into the pod.
        return Err(CniError::new(
            codes::COMPONENT_FAILURE,
            format!(
                "IPAM chain: ipam scope: {plugin:?} is not a plugin the network config names ({})",
                delegate.plugin_types.join(", ")
            ),
            "the ipam capability runs only the ipam.type(s) of the network config",
        ));
    }
    let call = ipam_delegate::Call {
        command,
        container_id: &delegate.container_id,
        netns: &delegate.netns,
        ifname: &delegate.ifname,
        cni_args: &delegate.cni_args,
        cni_path: &delegate.cni_path,
    };
    match command {
            "ADD" => {
                ipam_delegate::find_plugin(&plugin, &delegate.cni_path)?;
                let undo = attachment_store::Undo::IpamDel {
                    network_config: config.clone(),
                    netns: delegate.netns.clone(),
                    cni_args: delegate.cni_args.clone(),
                };
                journal
                    .append(format!("release the {plugin} allocation"), undo)
                    .map_err(|e| CniError::io("cannot write the undo journal", e))?;
            }
            "CHECK" => {}
            other => {
                return Err(CniError::new(
                    codes::IPAM_FAILURE,
                    format!("IPAM chain: ipam {other:?} is not ADD or CHECK (the host releases allocations itself)"),
                    "",
                ))
            }
        }
    crate::crash::point("before an IPAM plugin");
    let output = ipam_delegate::exec(&call, &config);
    crate::crash::point("after an IPAM plugin");
    if let (Err(refused), "ADD") = (&output, command) {
        // As the spec asks of a runtime after a failed ADD: release
        // whatever the plugin may hold, now. Its journalled DEL is then
        // retracted: a config the plugin refuses to ADD with is often
        // one it refuses to DEL with, and that must not wedge every
        // later DEL of the attachment.
        let del = ipam_delegate::Call {
            command: "DEL",
            ..call
        };
        if let Err(e) = ipam_delegate::exec(&del, &config) {
            tracing::warn!(
                plugin,
                "DEL after the failed ADD ({refused}) failed too: {e}"
            );
        }
        journal
            .retract_last()
            .map_err(|e| CniError::io("cannot write the undo journal", e))?;
    }
    output.map(|output| output.to_string())
}

/// Without a record (never added, or already deleted) IPAM may still hold
/// an address from an ADD that crashed before its record was written;
/// IPAM DEL is idempotent, so ask it to release.
pub(crate) fn release_without_record(env: &Environment, conf: &NetConf) -> Result<(), CniError> {
    // Every plugin of an IPAM list is asked, even after one fails.
    let mut first_error = None;
    for config in configs(conf) {
        if let Err(e) = ipam_delegate::exec(&call(env, "DEL"), &config) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// CHECK of every allocation the IPAM chain made (each is journalled with
/// its config), in the CHECK call's version: ADD may have run with one
/// that has no CHECK.
pub(crate) fn check_allocations(
    record: &Record,
    env: &Environment,
    version: Version,
) -> Result<(), CniError> {
    let allocations = record.journal.iter().filter_map(|entry| match &entry.undo {
        Undo::IpamDel { network_config, .. } => Some(network_config),
        _ => None,
    });
    let version = version.min(Version::V1_0_0);
    for network_config in allocations {
        let mut ipam_conf = network_config.clone();
        ipam_conf["cniVersion"] = version.to_string().into();
        if let Some(result) = &record.result {
            ipam_conf["prevResult"] = CniResult::from_value(result)?.to_value(version);
        }
        ipam_delegate::exec(&call(env, "CHECK"), &ipam_conf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A journal that keeps its steps in memory.
    #[derive(Default)]
    struct Steps(Vec<(String, Undo)>);

    impl Journal for Steps {
        fn append(&mut self, description: String, undo: Undo) -> Result<(), String> {
            self.0.push((description, undo));
            Ok(())
        }

        fn retract_last(&mut self) -> Result<(), String> {
            self.0.pop();
            Ok(())
        }

        fn may_remove(&self, _path: &str) -> Result<(), String> {
            Err("not in this test".into())
        }
    }

    /// A CNI_PATH with `fake-ipam`, which logs each command it gets and
    /// fails ADD when `fail` exists next to it.
    struct Plugin {
        dir: tempfile::TempDir,
    }

    impl Plugin {
        fn new() -> Plugin {
            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("fake-ipam");
            let log = dir.path().join("log");
            let fail = dir.path().join("fail");
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\necho \"$CNI_COMMAND\" >> {log}\n\
                     if [ \"$CNI_COMMAND\" = ADD ] && [ -e {fail} ]; then\n\
                     echo '{{\"code\": 11, \"msg\": \"pool busy\"}}'; exit 1; fi\n\
                     [ \"$CNI_COMMAND\" = ADD ] && echo '{{\"cniVersion\": \"1.0.0\", \"ips\": []}}'\n\
                     exit 0\n",
                    log = log.display(),
                    fail = fail.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            Plugin { dir }
        }

        fn delegate(&self) -> IpamDelegate {
            IpamDelegate {
                container_id: "c1".into(),
                netns: "/var/run/netns/x".into(),
                ifname: "net1".into(),
                cni_args: String::new(),
                cni_path: vec![self.dir.path().display().to_string()],
                plugin_types: vec!["fake-ipam".into()],
            }
        }

        fn commands(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    const CONFIG: &str = r#"{"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "fake-ipam"}}"#;

    /// The release is journalled before the plugin allocates.
    #[test]
    fn an_add_journals_its_release_first() {
        let plugin = Plugin::new();
        let mut journal = Steps::default();
        exec_for_chain(&plugin.delegate(), &mut journal, "ADD", CONFIG).unwrap();
        assert_eq!(plugin.commands(), ["ADD"]);
        assert_eq!(journal.0.len(), 1);
        assert!(
            matches!(&journal.0[0].1, Undo::IpamDel { network_config, .. }
            if network_config["ipam"]["type"] == "fake-ipam")
        );
    }

    /// A failed ADD: the plugin is asked to DEL at once, the journalled
    /// release is retracted, and the plugin's error (its code kept) is
    /// what the chain gets.
    #[test]
    fn a_failed_add_is_deleted_at_once_and_its_release_retracted() {
        let plugin = Plugin::new();
        std::fs::write(plugin.dir.path().join("fail"), "").unwrap();
        let mut journal = Steps::default();
        let err = exec_for_chain(&plugin.delegate(), &mut journal, "ADD", CONFIG).unwrap_err();
        assert_eq!(err.code, codes::TRY_AGAIN_LATER, "{}", err.msg);
        assert_eq!(plugin.commands(), ["ADD", "DEL"]);
        assert!(journal.0.is_empty());
    }

    /// The `ipam` scope: a plugin the network config does not name is not
    /// run, even one in CNI_PATH, and nothing is journalled.
    #[test]
    fn the_chain_runs_only_the_plugins_the_config_names() {
        let plugin = Plugin::new();
        let mut journal = Steps::default();
        let scoped = IpamDelegate {
            plugin_types: vec!["host-local".into()],
            ..plugin.delegate()
        };
        let err = exec_for_chain(&scoped, &mut journal, "ADD", CONFIG).unwrap_err();
        assert_eq!(err.code, codes::COMPONENT_FAILURE);
        assert!(
            err.msg.contains("ipam scope") && err.msg.contains("fake-ipam"),
            "{}",
            err.msg
        );
        assert!(plugin.commands().is_empty());
        assert!(journal.0.is_empty());
    }

    /// The host releases allocations itself; a chain may only ADD and
    /// CHECK, and only run a plugin by file name.
    #[test]
    fn the_chain_may_not_delete_nor_name_a_path() {
        let plugin = Plugin::new();
        let mut journal = Steps::default();
        let err = exec_for_chain(&plugin.delegate(), &mut journal, "DEL", CONFIG).unwrap_err();
        assert_eq!(err.code, codes::IPAM_FAILURE);
        let path = CONFIG.replace("fake-ipam", "../bin/sh");
        let err = exec_for_chain(&plugin.delegate(), &mut journal, "ADD", &path).unwrap_err();
        assert_eq!(err.code, codes::INVALID_NETWORK_CONFIG);
        assert!(plugin.commands().is_empty());
        assert!(journal.0.is_empty());
    }
}
