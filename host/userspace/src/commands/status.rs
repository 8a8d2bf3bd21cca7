//! STATUS: can this plugin serve an ADD now? The engine probes its vSwitch.

use cni_protocol::{CniError, Environment};
use netconf::NetConf;

use super::{component_error, engine_source, from_wit, limits, runtime};
use crate::capabilities::{NoJournal, Ovsdb, ProbeCaps, Vpp};
use crate::Output;

pub(crate) fn run(_env: &Environment, conf: &NetConf) -> Result<Output, CniError> {
    let runtime = runtime(conf)?;
    let engine = runtime
        .load_engine(&engine_source(conf)?)
        .map_err(component_error)?;
    let caps = ProbeCaps {
        ovsdb: Ovsdb::new(&conf.host.ovs.db_socket),
        vpp: Vpp::new(&conf.host.vpp.api_socket),
        journal: NoJournal,
    };
    let (_, status) = engine.status(caps, limits(conf), &conf.host.to_json().to_string());
    status.map_err(component_error)?.map_err(from_wit)?;
    Ok(Output::Nothing)
}
