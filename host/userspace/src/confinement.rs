//! The node policy applied to a network config: every host path, socket,
//! component, grant and IPAM plugin the config names is checked against
//! what the node's operator allows, before anything is touched. A refusal
//! is CNI error 7 naming the field and the policy.

use cni_protocol::{CniError, Environment};
use netconf::{Engine, NetConf};
use node_policy::{NodePolicy, Refusal, Rule};
use wasm_runtime::{Capability, Role, Source};

fn refused(refusal: Box<Refusal>) -> CniError {
    CniError::invalid_config(refusal.to_string())
}

/// For a DEL that goes by the attachment record alone (its config no
/// longer parses; `NetConf::locating_record`): the state dir must be one
/// the policy allows, as it locates the record; a log file or an IPAM
/// plugin the policy does not allow is dropped (no log there; no release
/// without a record), not a reason to leave the attachment behind.
pub(crate) fn confine_record_locator(
    conf: &mut NetConf,
    policy: &NodePolicy,
) -> Result<(), CniError> {
    if conf.raw.get("stateDir").is_some_and(|v| !v.is_null()) {
        policy
            .check("stateDir", &conf.state_dir, Rule::StateDir)
            .map_err(refused)?;
    } else {
        conf.state_dir = policy.state_dir.display().to_string();
    }
    if let Some(log) = &conf.log_file {
        if policy.check("logFile", log, Rule::LogFile).is_err() {
            conf.log_file = None;
        }
    }
    if conf.ipam_types().iter().any(|t| !policy.allows_ipam(t)) {
        conf.ipam = None;
    }
    Ok(())
}

/// Checks `conf` against `policy`, and puts the config's state dir in the
/// policy's when the config names none.
pub(crate) fn confine(
    conf: &mut NetConf,
    policy: &NodePolicy,
    env: &Environment,
) -> Result<(), CniError> {
    let set = |key: &str| conf.raw.get(key).is_some_and(|v| !v.is_null());
    if set("stateDir") {
        policy
            .check("stateDir", &conf.state_dir, Rule::StateDir)
            .map_err(refused)?;
    } else {
        conf.state_dir = policy.state_dir.display().to_string();
    }
    let mut paths: Vec<(&str, &str, Rule)> = Vec::new();
    if let Some(log) = &conf.log_file {
        paths.push(("logFile", log, Rule::LogFile));
    }
    if let Some(dir) = &conf.shared_dir {
        paths.push(("sharedDir", dir, Rule::SharedDir));
    }
    if let Some(path) = &conf.device_info_file {
        // Multus names it `<network>-<container ID>_<ifname>`: one naming
        // another container's would overwrite (and DEL remove) its file.
        let name = path.rsplit('/').next().unwrap_or_default();
        if !env.container_id.is_empty() && !name.contains(&env.container_id) {
            return Err(CniError::invalid_config(format!(
                "runtimeConfig.CNIDeviceInfoFile: {path:?} does not name this container ({}); \
                 Multus names it <network>-<container ID>_<ifname>",
                env.container_id
            )));
        }
        paths.push((
            "runtimeConfig.CNIDeviceInfoFile",
            path,
            Rule::DeviceInfoFile,
        ));
    }
    // Kubernetes paths matter once a pod is named or there is a
    // kubeconfig (and whenever the config names them).
    let k8s = conf.raw.get("kubernetes");
    let named = |key: &str| k8s.and_then(|k| k.get(key)).is_some_and(|v| !v.is_null());
    let pod = conf.kubeconfig.is_some() || crate::wit_host::pod_of(env).is_some();
    if let Some(path) = &conf.kubeconfig {
        paths.push(("kubeconfig", path, Rule::Kubeconfig));
    }
    if pod || named("kubeletDir") {
        paths.push((
            "kubernetes.kubeletDir",
            &conf.kubernetes.kubelet_dir,
            Rule::KubeletDir,
        ));
    }
    if pod || named("socketMountDir") {
        paths.push((
            "kubernetes.socketMountDir",
            &conf.kubernetes.socket_mount_dir,
            Rule::SocketMountDir,
        ));
    }
    // The vSwitch the engine drives; a field the config sets is checked
    // whatever the engine.
    let host = conf.raw.get("host");
    let host_set = |section: &str, key: &str| {
        host.and_then(|h| h.get(section))
            .and_then(|s| s.get(key))
            .is_some_and(|v| !v.is_null() && v != "")
    };
    // A component engine reaches what it is granted.
    let granted = match conf.host.engine {
        Engine::Component(_) => crate::components::engine_spec(conf)?.grants,
        _ => Vec::new(),
    };
    let ovs = conf.host.engine == Engine::OvsDpdk || granted.contains(&Capability::Ovsdb);
    let vpp = conf.host.engine == Engine::Vpp || granted.contains(&Capability::Vpp);
    let db_socket = conf.host.ovs.db_socket.as_str();
    if ovs || host_set("ovs", "dbSocket") {
        let path = db_socket.strip_prefix("unix:").unwrap_or(db_socket);
        paths.push(("host.ovs.dbSocket", path, Rule::OvsDbSocket));
    }
    if ovs || host_set("ovs", "vhostSockDir") {
        paths.push((
            "host.ovs.vhostSockDir",
            &conf.host.ovs.vhost_sock_dir,
            Rule::VhostSockDir,
        ));
    }
    if vpp || host_set("vpp", "apiSocket") {
        paths.push((
            "host.vpp.apiSocket",
            &conf.host.vpp.api_socket,
            Rule::VppApiSocket,
        ));
    }
    if let Some(dir) = &conf.components.dir {
        paths.push(("components.dir", dir, Rule::ComponentDir));
    }
    for (field, value, rule) in paths {
        policy.check(field, value, rule).map_err(refused)?;
    }
    // A delegate runs as root with the config's section: which plugins may
    // run is the operator's to say (`host-device` would move the uplink).
    for (index, ipam_type) in conf.ipam_types().into_iter().enumerate() {
        if !policy.allows_ipam(ipam_type) {
            let field = match &conf.ipam {
                Some(serde_json::Value::Array(_)) => format!("ipam[{index}].type"),
                _ => "ipam.type".to_string(),
            };
            return Err(CniError::invalid_config(format!(
                "{field}: {ipam_type:?} is not an IPAM plugin the node policy ({}) allows: [{}]",
                policy.source,
                policy.ipam_types.join(", ")
            )));
        }
    }
    confine_components(conf, policy)
}

/// Components given as paths lie in the policy's component dirs and are
/// pinned (unless the policy allows unpinned ones); the files granted to
/// them and their grants are the policy's to allow.
fn confine_components(conf: &NetConf, policy: &NodePolicy) -> Result<(), CniError> {
    let c = &conf.components;
    let roles = [
        (Role::Engine, "components.engine", &c.engine, "host.engine"),
        (
            Role::Naming,
            "components.naming",
            &c.naming,
            "components.naming.source",
        ),
        (
            Role::IpamChain,
            "components.ipamChain",
            &c.ipam_chain,
            "components.ipamChain.source",
        ),
    ];
    for (role, field, choice, source_field) in roles {
        // Resolved as the call will load it: a path, or a name in `dir`.
        let spec = crate::components::spec(role, conf)?;
        if let Source::File(path) = &spec.source {
            let path = path.display().to_string();
            policy
                .check(source_field, &path, Rule::ComponentFile)
                .map_err(refused)?;
            if choice.sha256.is_none() && !policy.unpinned_components {
                return Err(CniError::invalid_config(format!(
                    "{source_field}: {path:?} is a component file without a pin: give {field}.sha256; \
                     the node policy ({}) allows unpinned components only with unpinnedComponents: true",
                    policy.source
                )));
            }
        }
        for (index, (host_dir, _)) in choice.files.iter().enumerate() {
            policy
                .check(
                    &format!("{field}.files[{index}].path"),
                    host_dir,
                    Rule::ComponentFiles,
                )
                .map_err(refused)?;
        }
        // Defaults are narrowed to the policy's grants (`components`); a
        // grant the config asks for outright must be allowed.
        if let Some(grant) = choice
            .grants
            .iter()
            .flatten()
            .find(|g| Capability::parse(g).is_some() && !policy.allows_grant(g))
        {
            return Err(CniError::invalid_config(format!(
                "{field}.grants: {grant:?} is not a grant the node policy ({}) allows: [{}]",
                policy.source,
                policy.grants.join(", ")
            )));
        }
    }
    Ok(())
}
