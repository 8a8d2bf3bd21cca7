//! STATUS: can this plugin serve an ADD now? The engine probes its
//! vSwitch, and each IPAM plugin that speaks 1.1.0 answers for itself.

use cni_protocol::{CniError, Environment};
use netconf::NetConf;

use crate::capabilities::ProbeCaps;
use crate::components::{engine_spec, open_runtime};
use crate::scope::Scope;
use crate::wit_host::{component_error, from_wit, limits};
use crate::{components, Output};

pub(crate) fn run(env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let runtime = open_runtime()?;
    let spec = engine_spec(conf)?;
    let engine = components::load_engine(&runtime, &spec)?;
    let scope = Scope::of_engine(spec.sha256.as_deref());
    let caps = ProbeCaps::probe(&conf.host.ovs.db_socket, &conf.host.vpp.api_socket, scope);
    let (_, status) = engine.status(caps, limits(conf), &conf.host.to_json().to_string());
    status.map_err(component_error)?.map_err(from_wit)?;
    crate::ipam::status(env, conf)?;
    Ok(Output::Nothing)
}
