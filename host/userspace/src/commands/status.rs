//! STATUS: can this plugin serve an ADD now? The engine probes its vSwitch.

use cni_protocol::{CniError, Environment};
use netconf::NetConf;

use super::{component_error, from_wit, limits, load_engine, runtime};
use crate::capabilities::{NoJournal, Ovsdb, ProbeCaps, Vpp};
use crate::Output;

pub(crate) fn run(_env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let runtime = runtime(conf)?;
    let engine = load_engine(&runtime, conf)?;
    let caps = ProbeCaps {
        ovsdb: Ovsdb::new(&conf.host.ovs.db_socket),
        vpp: Vpp::new(&conf.host.vpp.api_socket),
        journal: NoJournal,
        ipam: None,
    };
    let (_, status) = engine.status(caps, limits(conf), &conf.host.to_json().to_string());
    status.map_err(component_error)?.map_err(from_wit)?;
    Ok(Output::Nothing)
}
