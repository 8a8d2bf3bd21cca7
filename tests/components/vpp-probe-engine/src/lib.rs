//! A test engine for the `vpp` capability: ADD checks the running VPP
//! knows control_ping, journals a control_ping as its "undo" (harmless, and
//! visible to the VPP test double), then pings; CHECK and STATUS ping.
//! With `host.probe: "cli"` it sends `cli_inband` instead, which the host
//! must refuse.

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
        // `host.probe: "cli"`: send VPP a CLI command, which the `vpp`
        // scope does not include (cli_inband runs any VPP CLI).
        let cfg: serde_json::Value = serde_json::from_str(&att.host_config).unwrap_or_default();
        if cfg["probe"] == "cli" {
            use userspace_cni_sdk::bindings::userspace::cni::vpp as host;
            let command = b"set logging class default level debug";
            let mut body = (command.len() as u32).to_be_bytes().to_vec();
            body.extend_from_slice(command);
            return match host::request("cli_inband_f8377302", &body) {
                Ok(_) => panic!("vpp-probe-engine: the host sent cli_inband"),
                Err(host::VppError::Failed(m)) => {
                    Err(CniError::new(codes::COMPONENT_FAILURE, m, ""))
                }
                Err(other) => panic!("vpp-probe-engine: unexpected {other:?}"),
            };
        }
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
