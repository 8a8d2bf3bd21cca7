//! How the plugin runs IPAM plugins: the network config each one gets and
//! the CNI variables it runs with. (The IPAM chain component decides which
//! to run; `capabilities` execs them for it, journalling each release
//! before its allocation.)

use cni_protocol::Environment;
use netconf::NetConf;
use serde_json::Value;

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
