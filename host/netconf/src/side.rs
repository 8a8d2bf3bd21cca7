//! The `host` and `container` sections.

use cni_protocol::CniError;
use serde_json::{json, Value};

use crate::fields::{is_safe_name, Obj};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    OvsDpdk,
    Vpp,
    /// A custom engine component: an absolute path to a `.wasm` file.
    Component(String),
}

impl Engine {
    pub fn as_str(&self) -> &str {
        match self {
            Engine::OvsDpdk => "ovs-dpdk",
            Engine::Vpp => "vpp",
            Engine::Component(path) => path,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfType {
    Memif,
    VhostUser,
}

impl IfType {
    pub fn as_str(self) -> &'static str {
        match self {
            IfType::Memif => "memif",
            IfType::VhostUser => "vhostuser",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetType {
    Bridge,
    Interface,
}

impl NetType {
    pub fn as_str(self) -> &'static str {
        match self {
            NetType::Bridge => "bridge",
            NetType::Interface => "interface",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memif {
    /// `master` or `slave`.
    pub role: String,
    /// `ethernet`, `ip` or `inject-punt`.
    pub mode: String,
    pub socketfile: Option<String>,
    /// The 2026 fork's tuning knobs; `None` leaves the vSwitch's default.
    /// The container side copies the host's: both ends must agree.
    pub rx_queues: Option<u32>,
    pub tx_queues: Option<u32>,
    /// Descriptors per ring, a power of two.
    pub ring_size: Option<u32>,
    pub buffer_size: Option<u32>,
    /// The memif secret: `None` on the host side until ADD draws one for
    /// the attachment; `Some("")` when the config asks for none.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vhost {
    /// `client` or `server`; absent means the vSwitch is the server.
    pub mode: Option<String>,
    pub group: Option<String>,
    pub socketfile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bridge {
    pub bridge_name: Option<String>,
    pub bridge_id: Option<u32>,
    pub vlan_id: Option<u16>,
}

/// How to reach OVS (host side, engine ovs-dpdk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ovs {
    pub db_socket: String,
    /// Where ovs-vswitchd creates `dpdkvhostuser` sockets (its rundir).
    pub vhost_sock_dir: String,
}

/// How to reach VPP (host side, engine vpp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpp {
    /// VPP's binary API socket.
    pub api_socket: String,
}

/// Both VPP and DPDK's net_memif cap a memif ring at 2^14 descriptors.
const MAX_MEMIF_RING: u32 = 1 << 14;
/// VPP carries the secret in a `string[24]`: 23 bytes and the NUL.
const MAX_MEMIF_SECRET: usize = 23;

pub const DEFAULT_VPP_API_SOCKET: &str = "/run/vpp/api.sock";
pub const DEFAULT_OVS_DB_SOCKET: &str = "unix:/var/run/openvswitch/db.sock";
pub const DEFAULT_OVS_VHOST_SOCK_DIR: &str = "/var/run/openvswitch";

#[derive(Debug, Clone)]
pub struct Side {
    pub engine: Engine,
    pub iftype: IfType,
    pub net_type: NetType,
    pub memif: Memif,
    pub vhost: Vhost,
    pub bridge: Bridge,
    pub ovs: Ovs,
    pub vpp: Vpp,
    pub mtu: Option<u32>,
    pub mac: Option<String>,
    /// The section as written, for keys this host does not know.
    raw: Value,
}

fn flip(value: &str, a: &str, b: &str) -> String {
    if value == a { b } else { a }.to_string()
}

impl Side {
    /// Parses `top[key]`. For the container section, `derive_from` is the
    /// host side and whether IPAM is configured: unset fields take the Go
    /// plugin's defaults (iftype copied, memif role and vhost mode flipped,
    /// mode and socket file copied, netType `interface`).
    pub(crate) fn parse(
        top: &Obj<'_>,
        key: &str,
        derive_from: Option<(&Side, bool)>,
        default_mtu: Option<u32>,
        default_mac: Option<String>,
    ) -> Result<Side, CniError> {
        let s = top.child(key)?;
        let host = derive_from.map(|(h, _)| h);
        let engine = match (s.opt_str("engine")?, host) {
            (Some("ovs-dpdk"), _) => Engine::OvsDpdk,
            (Some("vpp"), _) => Engine::Vpp,
            (Some(path), _) if path.starts_with('/') && path.ends_with(".wasm") && !path.contains("/../") => {
                Engine::Component(path.to_string())
            }
            (None | Some(""), Some(h)) => h.engine.clone(),
            (None | Some(""), None) => {
                return Err(CniError::invalid_config(format!("{key}.engine: required (ovs-dpdk or vpp)")))
            }
            (Some(other), _) => {
                return Err(CniError::invalid_config(format!(
                    "{key}.engine: {other:?} is not one of ovs-dpdk, vpp, or an absolute path to a .wasm component"
                )))
            }
        };
        let iftype = match (
            s.opt_enum("iftype", &["memif", "vhostuser"])?.as_deref(),
            host,
        ) {
            (Some("memif"), _) => IfType::Memif,
            (Some(_), _) => IfType::VhostUser,
            (None, Some(h)) => h.iftype,
            (None, None) => {
                return Err(CniError::invalid_config(format!(
                    "{key}.iftype: required (memif or vhostuser)"
                )))
            }
        };
        let net_type = match (
            s.opt_enum("netType", &["bridge", "interface"])?.as_deref(),
            host,
        ) {
            (Some("interface"), _) | (None, Some(_)) => NetType::Interface,
            (Some(_), _) | (None, None) => NetType::Bridge,
        };

        let m = s.child("memif")?;
        let memif = Memif {
            role: match (m.opt_enum("role", &["master", "slave", "client", "server"])?, host) {
                // The Go plugin passed the container's role through
                // unchecked, and its VPP examples give `client`: memif's
                // newer names for slave and master, taken as those.
                (Some(role), Some(_)) if role == "client" => "slave".to_string(),
                (Some(role), Some(_)) if role == "server" => "master".to_string(),
                (Some(role), None) if role == "client" || role == "server" => {
                    return Err(CniError::invalid_config(format!(
                        "{key}.memif.role: {role:?} is not one of master, slave \
                         (client and server are taken on the container side only, as the Go plugin did)"
                    )))
                }
                (Some(role), _) => role,
                (None, Some(h)) => flip(&h.memif.role, "slave", "master"),
                (None, None) => "master".to_string(),
            },
            mode: m
                .opt_enum("mode", &["ethernet", "ip", "inject-punt"])?
                .or_else(|| host.map(|h| h.memif.mode.clone()))
                .unwrap_or_else(|| "ethernet".to_string()),
            socketfile: m
                .opt_file_name("socketfile")?
                .or_else(|| host.and_then(|h| h.memif.socketfile.clone())),
            rx_queues: m
                .opt_u32_in("rxQueues", 1, 255)?
                .or_else(|| host.and_then(|h| h.memif.rx_queues)),
            tx_queues: m
                .opt_u32_in("txQueues", 1, 255)?
                .or_else(|| host.and_then(|h| h.memif.tx_queues)),
            ring_size: match m.opt_u32_in("ringSize", 2, MAX_MEMIF_RING)? {
                Some(n) if !n.is_power_of_two() => {
                    return Err(CniError::invalid_config(format!(
                        "{key}.memif.ringSize: {n} is not a power of two"
                    )))
                }
                n => n.or_else(|| host.and_then(|h| h.memif.ring_size)),
            },
            buffer_size: m
                .opt_u32_in("bufferSize", 64, 65535)?
                .or_else(|| host.and_then(|h| h.memif.buffer_size)),
            // Host side: absent = a random one per attachment (the plugin
            // makes it), "" = none. Container side: the host's.
            secret: match m.opt_str("secret")? {
                None if host.is_none() => None,
                Some("") if host.is_none() => Some(String::new()),
                None | Some("") => host.and_then(|h| h.memif.secret.clone()),
                Some(s) if s.len() <= MAX_MEMIF_SECRET && s.bytes().all(|b| b.is_ascii_graphic()) => {
                    Some(s.to_string())
                }
                Some(_) => {
                    return Err(CniError::invalid_config(format!(
                        "{key}.memif.secret: must be at most {MAX_MEMIF_SECRET} printable ASCII characters"
                    )))
                }
            },
        };

        let v = s.child("vhost")?;
        let vhost = Vhost {
            mode: match (v.opt_enum("mode", &["client", "server"])?, host) {
                (Some(mode), _) => Some(mode),
                (None, Some(h)) => Some(flip(
                    h.vhost.mode.as_deref().unwrap_or("server"),
                    "server",
                    "client",
                )),
                (None, None) => None,
            },
            group: match v.opt_str("group")? {
                Some(g) if !g.is_empty() && !is_safe_name(g) => {
                    return Err(CniError::invalid_config(format!(
                        "{key}.vhost.group: {g:?} is not a group name"
                    )))
                }
                g => g.filter(|g| !g.is_empty()).map(str::to_string),
            },
            socketfile: v
                .opt_file_name("socketfile")?
                .or_else(|| host.and_then(|h| h.vhost.socketfile.clone())),
        };

        let b = s.child("bridge")?;
        let bridge = Bridge {
            bridge_name: match b.opt_str("bridgeName")? {
                None | Some("") => None,
                Some(n) if is_safe_name(n) && n.len() <= 15 => Some(n.to_string()),
                Some(n) => {
                    return Err(CniError::invalid_config(format!(
                        "{key}.bridge.bridgeName: {n:?} must be 1-15 letters, digits, '_', '.', '-'"
                    )))
                }
            },
            bridge_id: b.opt_u32_in("bridgeId", 0, u32::MAX)?,
            vlan_id: b.opt_u32_in("vlanId", 0, 4095)?.map(|v| v as u16),
        };

        let o = s.child("ovs")?;
        let ovs = Ovs {
            db_socket: match o.opt_str("dbSocket")? {
                None | Some("") => DEFAULT_OVS_DB_SOCKET.to_string(),
                Some(p) if p.strip_prefix("unix:").unwrap_or(p).starts_with('/') => p.to_string(),
                Some(p) => {
                    return Err(CniError::invalid_config(format!(
                        "{key}.ovs.dbSocket: {p:?} must be unix:/absolute/path (only unix sockets are supported)"
                    )))
                }
            },
            vhost_sock_dir: o.opt_abs_path("vhostSockDir")?.unwrap_or_else(|| DEFAULT_OVS_VHOST_SOCK_DIR.to_string()),
        };

        let vpp = Vpp {
            api_socket: s
                .child("vpp")?
                .opt_abs_path("apiSocket")?
                .unwrap_or_else(|| DEFAULT_VPP_API_SOCKET.to_string()),
        };

        Ok(Side {
            engine,
            iftype,
            net_type,
            memif,
            vhost,
            bridge,
            ovs,
            vpp,
            mtu: s.opt_u32_in("mtu", 68, 65535)?.or(default_mtu),
            mac: s.opt_mac("mac")?.or(default_mac),
            raw: s_raw(top, key),
        })
    }

    /// The normalised section as JSON: the fields above with their defaults
    /// filled in, plus any keys this host does not know.
    pub fn to_json(&self) -> Value {
        let mut out = match &self.raw {
            Value::Object(_) => self.raw.clone(),
            _ => json!({}),
        };
        out["engine"] = self.engine.as_str().into();
        out["iftype"] = self.iftype.as_str().into();
        out["netType"] = self.net_type.as_str().into();
        out["memif"] = json!({"role": self.memif.role, "mode": self.memif.mode,
                              "socketfile": self.memif.socketfile,
                              "rxQueues": self.memif.rx_queues, "txQueues": self.memif.tx_queues,
                              "ringSize": self.memif.ring_size, "bufferSize": self.memif.buffer_size,
                              "secret": self.memif.secret});
        out["vhost"] = json!({"mode": self.vhost.mode, "group": self.vhost.group,
                              "socketfile": self.vhost.socketfile});
        out["bridge"] = json!({"bridgeName": self.bridge.bridge_name, "bridgeId": self.bridge.bridge_id,
                               "vlanId": self.bridge.vlan_id});
        out["ovs"] =
            json!({"dbSocket": self.ovs.db_socket, "vhostSockDir": self.ovs.vhost_sock_dir});
        out["vpp"] = json!({"apiSocket": self.vpp.api_socket});
        if let Some(mtu) = self.mtu {
            out["mtu"] = mtu.into();
        }
        if let Some(mac) = &self.mac {
            out["mac"] = mac.as_str().into();
        }
        out
    }

    /// The section in the Go plugin's container-data shape.
    pub fn to_go_json(&self) -> Value {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut out = json!({
            "engine": self.engine.as_str(),
            "iftype": self.iftype.as_str(),
            "netType": self.net_type.as_str(),
            "memif": {"role": self.memif.role, "mode": self.memif.mode, "socketfile": opt(&self.memif.socketfile),
                      "secret": opt(&self.memif.secret)},
            "vhost": {"mode": opt(&self.vhost.mode), "group": opt(&self.vhost.group), "socketfile": opt(&self.vhost.socketfile)},
            "bridge": {"bridgeName": opt(&self.bridge.bridge_name), "bridgeId": self.bridge.bridge_id.unwrap_or(0),
                       "vlanId": self.bridge.vlan_id.unwrap_or(0)},
        });
        // The queue pairs both ends must agree on, when known.
        for (key, queues) in [
            ("rxQueues", self.memif.rx_queues),
            ("txQueues", self.memif.tx_queues),
        ] {
            if let Some(n) = queues {
                out["memif"][key] = n.into();
            }
        }
        out
    }
}

fn s_raw(top: &Obj<'_>, key: &str) -> Value {
    top.get(key).cloned().unwrap_or(Value::Null)
}
