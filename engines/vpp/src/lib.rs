//! The VPP engine: memif and vhost-user interfaces on a VPP bridge domain,
//! driven through
//! the host's `vpp` capability with the SDK's generated message codecs.
//!
//! It adapts to the VPP it finds: the `_v2` messages when the running VPP
//! offers them, the older ones otherwise. Undo steps that must look things
//! up when they run (the memif whose socket is P, the socket id of P, the
//! bridge domain if it is ours and empty) are journalled as engine steps
//! and carried out by `undo`, so DEL never trusts a saved index.

use serde_json::Value;
use userspace_cni_sdk::vpp::call;
use userspace_cni_sdk::vpp::*;
use userspace_cni_sdk::{codes, export_engine, undo, AddResult, Attachment, CniError, Engine};

/// `bd_tag` of the bridge domains this plugin created.
const BD_TAG: &str = "userspace-cni";
/// VPP's "any" / "let VPP choose" index.
const ANY: u32 = u32::MAX;

struct VppEngine;

struct Settings {
    vhost: bool,
    /// vhost-user: VPP listens on the socket (`vhost.mode` server or unset).
    vhost_server: bool,
    bridge: Option<u32>,
    role: u32,
    mode: u32,
    /// The memif's queues, ring, buffers, secret and MAC: VPP's defaults
    /// unless the config sets them (netconf has checked the ranges).
    rx_queues: u8,
    tx_queues: u8,
    ring_size: u32,
    buffer_size: u16,
    secret: String,
    /// All zero: VPP picks a MAC.
    hw_addr: [u8; 6],
}

fn invalid(msg: String) -> CniError {
    CniError::new(codes::INVALID_NETWORK_CONFIG, msg, "")
}

impl Settings {
    fn parse(host_config: &str) -> Result<Settings, CniError> {
        let cfg: Value =
            serde_json::from_str(host_config).map_err(|e| invalid(format!("host section: {e}")))?;
        let vhost = match cfg["iftype"].as_str() {
            Some("memif") => false,
            Some("vhostuser") => true,
            other => {
                return Err(invalid(format!(
                    "host.iftype: {other:?} is not memif or vhostuser"
                )))
            }
        };
        let vhost_server = cfg["vhost"]["mode"].as_str() != Some("client");
        // bridgeName is a numeric bridge-domain id for VPP; bridgeId is the
        // older key, used when bridgeName is empty.
        let bridge = match (cfg["bridge"]["bridgeName"].as_str(), cfg["bridge"]["bridgeId"].as_u64()) {
            (Some(name), _) if !name.is_empty() => Some(name.parse::<u32>().map_err(|_| {
                invalid(format!("host.bridge.bridgeName: engine vpp needs a numeric bridge-domain id, not {name:?}"))
            })?),
            (_, Some(id)) => Some(id as u32),
            _ => None,
        };
        let bridge = match cfg["netType"].as_str() {
            Some("interface") => None,
            _ => Some(bridge.ok_or_else(|| {
                invalid("host.bridge: engine vpp needs bridgeName (numeric) or bridgeId for netType bridge".into())
            })?),
        };
        let role = match cfg["memif"]["role"].as_str() {
            Some("slave") => memif_role::MEMIF_ROLE_API_SLAVE,
            _ => memif_role::MEMIF_ROLE_API_MASTER,
        };
        let mode = match cfg["memif"]["mode"].as_str() {
            Some("ip") => memif_mode::MEMIF_MODE_API_IP,
            Some("inject-punt") => memif_mode::MEMIF_MODE_API_PUNT_INJECT,
            _ => memif_mode::MEMIF_MODE_API_ETHERNET,
        };
        let memif = &cfg["memif"];
        let number = |key: &str, default: u64| memif[key].as_u64().unwrap_or(default);
        Ok(Settings {
            vhost,
            vhost_server,
            bridge,
            role,
            mode,
            rx_queues: number("rxQueues", 1).min(255) as u8,
            tx_queues: number("txQueues", 1).min(255) as u8,
            ring_size: number("ringSize", 1024).min(1 << 14) as u32,
            buffer_size: number("bufferSize", 2048).min(65535) as u16,
            secret: memif["secret"].as_str().unwrap_or("").to_string(),
            hw_addr: match cfg["mac"].as_str() {
                Some(mac) => parse_mac(mac)
                    .ok_or_else(|| invalid(format!("host.mac: {mac:?} is not a MAC address")))?,
                None => [0; 6],
            },
        })
    }
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn check_retval(what: &str, retval: i32) -> Result<(), CniError> {
    match retval {
        0 => Ok(()),
        r => Err(CniError::new(
            codes::VSWITCH_FAILURE,
            format!("VPP refused {what}: retval {r}"),
            "",
        )),
    }
}

/// The socket id registered for `path`, if any.
fn socket_id(path: &str) -> Result<Option<u32>, CniError> {
    let sockets: Vec<MemifSocketFilenameDetails> = call::dump(&MemifSocketFilenameDump {})?;
    Ok(sockets
        .into_iter()
        .find(|s| s.socket_filename == path)
        .map(|s| s.socket_id))
}

fn register_socket(path: &str) -> Result<u32, CniError> {
    if call::knows::<MemifSocketFilenameAddDelV2>()? {
        let reply: MemifSocketFilenameAddDelV2Reply =
            call::request(&MemifSocketFilenameAddDelV2 {
                is_add: true,
                socket_id: ANY,
                socket_filename: path.to_string(),
            })?;
        check_retval("memif_socket_filename_add_del_v2", reply.retval)?;
        return Ok(reply.socket_id);
    }
    // Older VPPs want the id chosen by the client: the first free one.
    let sockets: Vec<MemifSocketFilenameDetails> = call::dump(&MemifSocketFilenameDump {})?;
    let id = (1..)
        .find(|id| !sockets.iter().any(|s| s.socket_id == *id))
        .expect("a free id");
    let reply: MemifSocketFilenameAddDelReply = call::request(&MemifSocketFilenameAddDel {
        is_add: true,
        socket_id: id,
        socket_filename: path.to_string(),
    })?;
    check_retval("memif_socket_filename_add_del", reply.retval)?;
    Ok(id)
}

/// Registers the socket (unless known) and creates the memif on it, each
/// step journalled first; returns the memif's sw_if_index.
fn add_memif(s: &Settings, path: &str) -> Result<u32, CniError> {
    let sid = match socket_id(path)? {
        Some(id) => id,
        None => {
            undo::record_engine(
                "unregister the memif socket",
                &format!("release-socket {path}"),
            )?;
            register_socket(path)?
        }
    };
    undo::record_engine("delete the memif", &format!("delete-memif {path}"))?;
    let sw_if_index = create_memif(s, sid)?;
    Ok(sw_if_index)
}

/// Sends the newest of two messages the running VPP knows, with the same
/// fields (they are two generated types), and evaluates `$out` on the
/// reply `$r` (both replies have the fields it reads).
macro_rules! request_newest {
    ($new:ident => $new_reply:ident, $old:ident => $old_reply:ident, { $($field:tt)* }, |$r:ident| $out:expr) => {
        if call::knows::<$new>()? {
            let $r: $new_reply = call::request(&$new { $($field)* ..Default::default() })?;
            $out
        } else {
            let $r: $old_reply = call::request(&$old { $($field)* ..Default::default() })?;
            $out
        }
    };
}

fn create_vhost(s: &Settings, path: &str) -> Result<u32, CniError> {
    let (retval, sw_if_index) = request_newest!(
        CreateVhostUserIfV2 => CreateVhostUserIfV2Reply,
        CreateVhostUserIf => CreateVhostUserIfReply,
        {
            is_server: s.vhost_server,
            sock_filename: path.to_string(),
            tag: BD_TAG.into(),
        },
        |r| (r.retval, r.sw_if_index)
    );
    check_retval("create_vhost_user_if", retval)?;
    Ok(sw_if_index)
}

/// The vhost-user interface whose socket is `path`, if any.
fn vhost_at(path: &str) -> Result<Option<u32>, CniError> {
    let all: Vec<SwInterfaceVhostUserDetails> =
        call::dump(&SwInterfaceVhostUserDump { sw_if_index: ANY })?;
    Ok(all
        .into_iter()
        .find(|v| v.sock_filename == path)
        .map(|v| v.sw_if_index))
}

fn create_memif(s: &Settings, socket_id: u32) -> Result<u32, CniError> {
    let (retval, sw_if_index) = request_newest!(
        MemifCreateV2 => MemifCreateV2Reply,
        MemifCreate => MemifCreateReply,
        {
            role: s.role,
            mode: s.mode,
            rx_queues: s.rx_queues,
            tx_queues: s.tx_queues,
            id: 0,
            socket_id,
            ring_size: s.ring_size,
            buffer_size: s.buffer_size,
            hw_addr: s.hw_addr,
            secret: s.secret.clone(),
        },
        |r| (r.retval, r.sw_if_index)
    );
    check_retval("memif_create", retval)?;
    Ok(sw_if_index)
}

fn bridge_domain(id: u32) -> Result<Option<BridgeDomainDetails>, CniError> {
    let domains: Vec<BridgeDomainDetails> = call::dump(&BridgeDomainDump {
        bd_id: id,
        sw_if_index: ANY,
    })?;
    Ok(domains.into_iter().find(|d| d.bd_id == id))
}

fn add_bridge_domain(id: u32, is_add: bool) -> Result<(), CniError> {
    let retval = request_newest!(
        BridgeDomainAddDelV2 => BridgeDomainAddDelV2Reply,
        BridgeDomainAddDel => BridgeDomainAddDelReply,
        {
            bd_id: id,
            flood: true,
            uu_flood: true,
            forward: true,
            learn: true,
            bd_tag: BD_TAG.into(),
            is_add,
        },
        |r| r.retval
    );
    check_retval("bridge_domain_add_del", retval)
}

/// The addresses of a CNI 1.0.0 result (IPAM ran before the engine) as
/// VPP prefixes.
fn ipam_prefixes(result: Option<&str>) -> Result<Vec<Prefix>, CniError> {
    let Some(result) = result else {
        return Ok(Vec::new());
    };
    let result: Value =
        serde_json::from_str(result).map_err(|e| invalid(format!("IPAM result: {e}")))?;
    let mut prefixes = Vec::new();
    for ip in result["ips"].as_array().into_iter().flatten() {
        let text = ip["address"].as_str().unwrap_or_default();
        let (addr, len) = text
            .split_once('/')
            .ok_or_else(|| invalid(format!("IPAM address {text:?}")))?;
        let len: u8 = len
            .parse()
            .map_err(|_| invalid(format!("IPAM address {text:?}")))?;
        let mut un = [0u8; 16];
        let af = match addr.parse::<core::net::IpAddr>() {
            Ok(core::net::IpAddr::V4(v4)) => {
                un[..4].copy_from_slice(&v4.octets());
                address_family::ADDRESS_IP4
            }
            Ok(core::net::IpAddr::V6(v6)) => {
                un.copy_from_slice(&v6.octets());
                address_family::ADDRESS_IP6
            }
            Err(_) => return Err(invalid(format!("IPAM address {text:?}"))),
        };
        prefixes.push(Prefix {
            address: Address { af, un },
            len,
        });
    }
    Ok(prefixes)
}

/// The memif whose socket is `path`, if any: (sw_if_index, socket id).
fn memif_at(path: &str) -> Result<Option<(u32, u32)>, CniError> {
    let Some(sid) = socket_id(path)? else {
        return Ok(None);
    };
    let memifs: Vec<MemifDetails> = call::dump(&MemifDump {})?;
    Ok(memifs
        .into_iter()
        .find(|m| m.socket_id == sid)
        .map(|m| (m.sw_if_index, sid)))
}

impl Engine for VppEngine {
    fn add(att: Attachment) -> Result<AddResult, CniError> {
        let s = Settings::parse(&att.host_config)?;
        let path = att.socket_path.as_str();
        // The bridge domain first: its undo must run after the memif's
        // (the journal replays newest first), when the domain is empty.
        if let Some(bd) = s.bridge {
            let existing = bridge_domain(bd)?;
            if existing.as_ref().is_none_or(|d| d.bd_tag == BD_TAG) {
                // The last DEL on a domain we created removes it.
                undo::record_engine(
                    "delete the bridge domain if ours and empty",
                    &format!("delete-bd {bd}"),
                )?;
            }
            if existing.is_none() {
                add_bridge_domain(bd, true)?;
            }
        }
        let sw_if_index = if s.vhost {
            undo::record_engine(
                "delete the vhost-user interface",
                &format!("delete-vhost {path}"),
            )?;
            create_vhost(&s, path)?
        } else {
            add_memif(&s, path)?
        };
        let up: SwInterfaceSetFlagsReply = call::request(&SwInterfaceSetFlags {
            sw_if_index,
            flags: if_status_flags::IF_STATUS_API_FLAG_ADMIN_UP,
        })?;
        check_retval("sw_interface_set_flags", up.retval)?;
        if let Some(bd) = s.bridge {
            let joined: SwInterfaceSetL2BridgeReply = call::request(&SwInterfaceSetL2Bridge {
                rx_sw_if_index: sw_if_index,
                bd_id: bd,
                port_type: l2_port_type::L2_API_PORT_TYPE_NORMAL,
                shg: 0,
                enable: true,
            })?;
            check_retval("sw_interface_set_l2_bridge", joined.retval)?;
        }
        if s.bridge.is_none() {
            // netType interface: the IPAM addresses go on the VPP side.
            for prefix in ipam_prefixes(att.ipam_result.as_deref())? {
                let r: SwInterfaceAddDelAddressReply = call::request(&SwInterfaceAddDelAddress {
                    sw_if_index,
                    is_add: true,
                    del_all: false,
                    prefix,
                })?;
                check_retval("sw_interface_add_del_address", r.retval)?;
            }
        }
        Ok(AddResult {
            host_interface: format!("sw_if_index {sw_if_index}"),
            socket_moves: Vec::new(),
        })
    }

    fn check(att: Attachment) -> Result<(), CniError> {
        let s = Settings::parse(&att.host_config)?;
        let failed = |msg: String| Err(CniError::new(codes::CHECK_FAILED, msg, ""));
        let found = if s.vhost {
            vhost_at(&att.socket_path)?
        } else {
            memif_at(&att.socket_path)?.map(|(i, _)| i)
        };
        let Some(sw_if_index) = found else {
            return failed(format!("no interface on socket {}", att.socket_path));
        };
        if let Some(bd) = s.bridge {
            match bridge_domain(bd)? {
                Some(d) if d.sw_if_details.iter().any(|m| m.sw_if_index == sw_if_index) => {}
                Some(_) => {
                    return failed(format!("memif {sw_if_index} is not in bridge domain {bd}"))
                }
                None => return failed(format!("bridge domain {bd} does not exist")),
            }
        }
        Ok(())
    }

    fn status(_host_config: String) -> Result<(), CniError> {
        let reply: ControlPingReply = call::request(&ControlPing {}).map_err(|mut e| {
            e.code = codes::PLUGIN_NOT_AVAILABLE;
            e
        })?;
        check_retval("control_ping", reply.retval)
    }

    fn undo(_att: Attachment, step: String) -> Result<(), CniError> {
        let (op, arg) = step.split_once(' ').unwrap_or((step.as_str(), ""));
        match op {
            "delete-memif" => {
                if let Some((sw_if_index, _)) = memif_at(arg)? {
                    let r: MemifDeleteReply = call::request(&MemifDelete { sw_if_index })?;
                    check_retval("memif_delete", r.retval)?;
                }
                Ok(())
            }
            "delete-vhost" => {
                if let Some(sw_if_index) = vhost_at(arg)? {
                    let r: DeleteVhostUserIfReply =
                        call::request(&DeleteVhostUserIf { sw_if_index })?;
                    check_retval("delete_vhost_user_if", r.retval)?;
                }
                Ok(())
            }
            "release-socket" => {
                let Some(sid) = socket_id(arg)? else {
                    return Ok(());
                };
                let memifs: Vec<MemifDetails> = call::dump(&MemifDump {})?;
                if memifs.iter().any(|m| m.socket_id == sid) {
                    return Ok(());
                }
                let retval = if call::knows::<MemifSocketFilenameAddDelV2>()? {
                    let r: MemifSocketFilenameAddDelV2Reply =
                        call::request(&MemifSocketFilenameAddDelV2 {
                            is_add: false,
                            socket_id: sid,
                            socket_filename: String::new(),
                        })?;
                    r.retval
                } else {
                    let r: MemifSocketFilenameAddDelReply =
                        call::request(&MemifSocketFilenameAddDel {
                            is_add: false,
                            socket_id: sid,
                            socket_filename: String::new(),
                        })?;
                    r.retval
                };
                check_retval("memif_socket_filename_add_del", retval)
            }
            "delete-bd" => {
                let id: u32 = arg
                    .parse()
                    .map_err(|_| invalid(format!("bad undo step {step:?}")))?;
                match bridge_domain(id)? {
                    Some(d) if d.bd_tag == BD_TAG && d.n_sw_ifs == 0 => {
                        add_bridge_domain(id, false)
                    }
                    _ => Ok(()),
                }
            }
            _ => Err(invalid(format!("unknown undo step {step:?}"))),
        }
    }
}

export_engine!(VppEngine);
