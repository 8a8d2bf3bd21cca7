//! CHECK: the attachment is still as ADD left it: the vSwitch port (engine),
//! the socket, the container data, the IPAM allocation and, for a pod, its
//! annotation entry.

use attachment_store::Phase;
use cni_protocol::{codes, CniError, Environment};
use netconf::NetConf;
use serde_json::Value;

use crate::capabilities::ProbeCaps;
use crate::components::{engine_spec, open_runtime};
use crate::record::Details;
use crate::scope::Scope;
use crate::store::{key, load_record, open_store};
use crate::wit_host::{component_error, from_wit, limits};
use crate::{components, ipam, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let runtime = open_runtime()?;
    let spec = engine_spec(conf)?;
    let engine = components::load_engine(&runtime, &spec)?;
    let store = open_store(conf)?;
    let key = key(conf, env);
    let record = match load_record(&store, &key)? {
        Some(r) if r.phase == Phase::Committed => r,
        _ => {
            return Err(CniError::new(
                codes::UNKNOWN_CONTAINER,
                format!(
                    "no attachment of container {} as {} on network {}",
                    env.container_id, env.ifname, conf.name
                ),
                "",
            ))
        }
    };
    let failed = |msg: String| Err(CniError::new(codes::CHECK_FAILED, msg, ""));
    let details = Details::of(&record)?;

    if let Some(prev) = &conf.prev_result {
        if !prev.interfaces.iter().any(|i| i.name == env.ifname) {
            return failed(format!("prevResult has no interface {}", env.ifname));
        }
    }
    let attachment = details.attachment(&record.key);
    let scope = Scope::of_engine(spec.sha256.as_deref());
    let caps = ProbeCaps::probe(details.ovs_db_socket(), details.vpp_api_socket(), scope);
    let (_, checked) = engine.check(caps, limits(conf), &attachment);
    checked.map_err(component_error)?.map_err(from_wit)?;

    let data_path = &details.data_path;
    if !std::path::Path::new(data_path).is_file() {
        return failed(format!("container data {data_path} is missing"));
    }
    if vswitch_owns_socket(&details.host_config)
        && std::fs::symlink_metadata(&attachment.socket_path).is_err()
    {
        return failed(format!("socket {} is missing", attachment.socket_path));
    }

    ipam::check_allocations(&record, env, conf.cni_version)?;
    // The pod's annotation entry, when ADD published one.
    for entry in &record.journal {
        crate::pod::check_entry(&entry.undo, &record.key.container_id, &record.key.ifname)?;
    }
    Ok(Output::Nothing)
}

/// The vSwitch creates the socket when it is the server: memif master,
/// vhost-user with OVS as server (mode unset or server).
fn vswitch_owns_socket(host: &Value) -> bool {
    match host["iftype"].as_str() {
        Some("memif") => host["memif"]["role"].as_str() != Some("slave"),
        _ => host["vhost"]["mode"].as_str() != Some("client"),
    }
}
