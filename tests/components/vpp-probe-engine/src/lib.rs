//! A test engine for the `vpp` capability: ADD checks the running VPP
//! knows control_ping, journals a control_ping as its "undo" (harmless, and
//! visible to the VPP test double), then pings; CHECK and STATUS ping.

use userspace_cni_sdk::vpp::call;
use userspace_cni_sdk::vpp::{ControlPing, ControlPingReply};
use userspace_cni_sdk::{codes, export_engine, undo, AddResult, Attachment, CniError, Engine};

struct VppProbe;

fn ping() -> Result<(), CniError> {
    let reply: ControlPingReply = call::request(&ControlPing {})?;
    match reply.retval {
        0 => Ok(()),
        r => Err(CniError::new(
            codes::VSWITCH_FAILURE,
            format!("control_ping answered {r}"),
            "",
        )),
    }
}

impl Engine for VppProbe {
    fn add(att: Attachment) -> Result<AddResult, CniError> {
        if !call::knows::<ControlPing>()? {
            return Err(CniError::new(
                codes::VSWITCH_FAILURE,
                "VPP lacks control_ping",
                "",
            ));
        }
        call::record_undo("ping VPP on undo", &ControlPing {}, &[])?;
        undo::record_engine("ping VPP from the engine on undo", "ping")?;
        ping()?;
        Ok(AddResult {
            host_interface: att.port_name,
            socket_moves: Vec::new(),
        })
    }

    fn check(_att: Attachment) -> Result<(), CniError> {
        ping()
    }

    fn status(_host_config: String) -> Result<(), CniError> {
        ping().map_err(|mut e| {
            e.code = codes::PLUGIN_NOT_AVAILABLE;
            e
        })
    }

    fn undo(_att: Attachment, step: String) -> Result<(), CniError> {
        match step.as_str() {
            "ping" => ping(),
            other => Err(CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                format!("unknown undo step {other:?}"),
                "",
            )),
        }
    }
}

export_engine!(VppProbe);
