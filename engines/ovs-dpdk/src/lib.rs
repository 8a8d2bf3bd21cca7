//! The OVS-DPDK engine: memif and vhost-user ports on a `netdev` bridge,
//! driven through the host's `ovsdb` capability (no `ovs-vsctl` forks).
//!
//! Every row this engine inserts gets a UUID derived from the attachment's
//! nonce, so the undo of each mutation (which needs those UUIDs) can be
//! journalled before the mutation happens.

use serde_json::{json, Value};
#[cfg(feature = "export")]
use userspace_cni_sdk::export_engine;
use userspace_cni_sdk::ovsdb::{self, cond, uuid};
use userspace_cni_sdk::{codes, log, undo, AddResult, Attachment, CniError, Engine};

/// `external_ids` key that marks the bridges this plugin created.
const OWNER_KEY: &str = "userspace-cni-owner";
const OWNER_VALUE: &str = "userspace-cni";

/// The engine. Public so that a vendor's engine can wrap it (see the
/// SDK's `tenant-vlans` example, which depends on this crate without its
/// `export` feature).
pub struct OvsDpdk;

/// What this engine reads from the normalised `host` section.
struct Settings {
    iftype: String,
    bridge: String,
    vlan: Option<u16>,
    memif_role: String,
    /// net_memif's ring, buffer and secret devargs (`,rsize=..`), or "".
    memif_tuning: String,
    /// The memif port's rx queues (`n_rxq`), equal to its tx queues.
    memif_queues: u64,
    vhost_mode: String,
    vhost_sock_dir: String,
}

impl Settings {
    fn parse(host_config: &str) -> Result<Self, CniError> {
        let cfg: Value = serde_json::from_str(host_config).map_err(|e| {
            CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                "host section is not JSON",
                e.to_string(),
            )
        })?;
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let net_type = text(&cfg["netType"]);
        if !net_type.is_empty() && net_type != "bridge" {
            return Err(CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                format!("host.netType: engine ovs-dpdk supports \"bridge\" only, not {net_type:?}"),
                "OVS-DPDK attaches userspace ports to a netdev bridge",
            ));
        }
        let bridge = match text(&cfg["bridge"]["bridgeName"]) {
            name if name.is_empty() => "br0".to_string(),
            name => name,
        };
        let vlan = match cfg["bridge"]["vlanId"].as_u64() {
            None | Some(0) => None,
            Some(id) => Some(id as u16),
        };
        let memif_mode = match text(&cfg["memif"]["mode"]) {
            m if m.is_empty() => "ethernet".to_string(),
            m => m,
        };
        let iftype = text(&cfg["iftype"]);
        if iftype == "memif" && memif_mode != "ethernet" {
            return Err(CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                format!("host.memif.mode: engine ovs-dpdk supports \"ethernet\" only, not {memif_mode:?}"),
                "DPDK's net_memif driver speaks ethernet mode only",
            ));
        }
        let memif = &cfg["memif"];
        // OVS gives a DPDK port a tx queue per PMD thread plus one and
        // transmits on the PMD's; its rx queues are `n_rxq`. DPDK's memif
        // takes a client's rings only up to those counts and a DPDK app
        // polls as many as it sends on: one count for both.
        let queues = memif["rxQueues"].as_u64().unwrap_or(1);
        if queues > 16 {
            return Err(CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                format!("host.memif.rxQueues: engine ovs-dpdk takes at most 16, not {queues}"),
                "OVS's PMD threads poll every queue of every port",
            ));
        }
        if memif["txQueues"].as_u64().unwrap_or(1) != queues {
            return Err(CniError::new(
                codes::INVALID_NETWORK_CONFIG,
                "host.memif.rxQueues, txQueues: engine ovs-dpdk needs them equal (OVS's PMD threads + 1)",
                "OVS transmits on its PMD threads' queues and polls n_rxq; a DPDK app in the container uses one count for both",
            ));
        }
        let mut memif_tuning = String::new();
        if let Some(ring) = memif["ringSize"].as_u64() {
            // net_memif takes the ring size as a power of two.
            memif_tuning += &format!(",rsize={}", ring.trailing_zeros());
        }
        if let Some(size) = memif["bufferSize"].as_u64() {
            memif_tuning += &format!(",bsize={size}");
        }
        if let Some(secret) = memif["secret"].as_str().filter(|s| !s.is_empty()) {
            if secret.contains([',', '=']) {
                return Err(CniError::new(
                    codes::INVALID_NETWORK_CONFIG,
                    "host.memif.secret: engine ovs-dpdk cannot pass ',' or '=' in a secret",
                    "the secret travels in DPDK's comma-separated devargs",
                ));
            }
            memif_tuning += &format!(",secret={secret}");
        }
        Ok(Settings {
            memif_tuning,
            memif_queues: queues,
            iftype,
            bridge,
            vlan,
            memif_role: text(&cfg["memif"]["role"]),
            vhost_mode: text(&cfg["vhost"]["mode"]),
            vhost_sock_dir: text(&cfg["ovs"]["vhostSockDir"]),
        })
    }

    /// The Interface `type` and `options` for this attachment.
    fn interface_kind(&self, att: &Attachment) -> (&'static str, Value) {
        match self.iftype.as_str() {
            "memif" => {
                // DPDK remembers a vdev name even after the port failed or
                // was deleted: derive a fresh one from the nonce every time.
                let role = if self.memif_role == "slave" {
                    "client"
                } else {
                    "server"
                };
                let devargs = format!(
                    "net_memif{:016x},role={role},id=0,socket={},socket-abstract=no{}",
                    att.nonce, att.socket_path, self.memif_tuning
                );
                let queues = self.memif_queues.to_string();
                let options = if self.memif_queues > 1 {
                    ovsdb::map([("dpdk-devargs", devargs.as_str()), ("n_rxq", &queues)])
                } else {
                    ovsdb::map([("dpdk-devargs", devargs.as_str())])
                };
                ("dpdk", options)
            }
            _ if self.vhost_mode == "client" => (
                "dpdkvhostuserclient",
                ovsdb::map([("vhost-server-path", att.socket_path.as_str())]),
            ),
            _ => ("dpdkvhostuser", ovsdb::map([])),
        }
    }
}

/// A version-4 UUID derived from the nonce and a salt (splitmix64).
fn derived_uuid(nonce: u64, salt: u64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let hi = mix(nonce ^ salt.wrapping_mul(0xA24B_AED4_963E_E407));
    let lo = mix(hi ^ salt);
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

fn bridge_where(name: &str) -> Vec<Value> {
    vec![cond("name", "==", json!(name))]
}

/// Finds the bridge, creating it (marked as ours) when missing, and
/// journals "remove it if it is ours and empty" either way, so that the
/// last DEL on an owned bridge removes it.
fn ensure_bridge(s: &Settings, att: &Attachment) -> Result<String, CniError> {
    let what = format!("bridge {}", s.bridge);
    let found = ovsdb::transact(
        &what,
        &[
            ovsdb::select("Open_vSwitch", vec![], &["_uuid"]),
            ovsdb::select(
                "Bridge",
                bridge_where(&s.bridge),
                &["_uuid", "datapath_type", "external_ids"],
            ),
        ],
        false,
    )?;
    let root = ovsdb::rows(&found[0])
        .first()
        .and_then(|r| ovsdb::uuids(&r["_uuid"]).pop())
        .ok_or_else(|| {
            CniError::new(
                codes::VSWITCH_FAILURE,
                "the Open_vSwitch table is empty",
                "initialise the database (ovs-vsctl init) before attaching ports",
            )
        })?;
    let existing = ovsdb::rows(&found[1]).first().cloned();
    let bridge_uuid = match &existing {
        Some(row) => {
            let datapath = row["datapath_type"].as_str().unwrap_or("");
            if datapath != "netdev" {
                return Err(CniError::new(
                    codes::INVALID_NETWORK_CONFIG,
                    format!(
                        "bridge {}: datapath_type is {datapath:?}, userspace ports need \"netdev\"",
                        s.bridge
                    ),
                    "use another bridgeName or set datapath_type=netdev on this bridge",
                ));
            }
            ovsdb::uuids(&row["_uuid"]).pop().unwrap_or_default()
        }
        None => derived_uuid(att.nonce, 1),
    };
    let ours = match &existing {
        Some(row) => ovsdb::map_get(&row["external_ids"], OWNER_KEY) == Some(OWNER_VALUE),
        None => true,
    };
    if ours {
        let undo_ops = json!([
            ovsdb::wait_now(
                "Bridge",
                vec![
                    cond("_uuid", "==", uuid(&bridge_uuid)),
                    cond(
                        "external_ids",
                        "includes",
                        ovsdb::map([(OWNER_KEY, OWNER_VALUE)])
                    ),
                ],
                &["ports"],
                vec![json!({"ports": ovsdb::set(vec![])})],
            ),
            ovsdb::mutate(
                "Open_vSwitch",
                vec![],
                "bridges",
                "delete",
                ovsdb::set(vec![uuid(&bridge_uuid)])
            ),
        ]);
        undo::record_ovsdb(
            &format!("remove bridge {} if ours and empty", s.bridge),
            &undo_ops,
            true,
            true,
        )?;
    }
    if existing.is_none() {
        log::info(&format!(
            "creating bridge {} (datapath_type=netdev)",
            s.bridge
        ));
        ovsdb::transact(
            &what,
            &[
                ovsdb::insert_with_uuid(
                    "Bridge",
                    &bridge_uuid,
                    json!({"name": s.bridge, "datapath_type": "netdev",
                           "external_ids": ovsdb::map([(OWNER_KEY, OWNER_VALUE)])}),
                ),
                ovsdb::mutate(
                    "Open_vSwitch",
                    vec![cond("_uuid", "==", uuid(&root))],
                    "bridges",
                    "insert",
                    ovsdb::set(vec![uuid(&bridge_uuid)]),
                ),
            ],
            false,
        )?;
    }
    Ok(bridge_uuid)
}

/// Debian's DPDK is built with RTE_MAX_ETHPORTS=32.
const DPDK_MAX_PORTS: usize = 32;

fn interface_failure(s: &Settings, att: &Attachment, error: &str) -> CniError {
    let mut msg = format!(
        "bridge {}: ovs-vswitchd rejected port {}: {error}",
        s.bridge, att.port_name
    );
    if s.iftype == "memif" {
        // DPDK only says it could not attach the device; count the ports
        // to tell the operator when the cause is the port limit.
        let dpdk_ports = ovsdb::transact(
            "count DPDK ports",
            &[ovsdb::select(
                "Interface",
                vec![cond("type", "==", json!("dpdk"))],
                &["name"],
            )],
            false,
        )
        .map(|r| ovsdb::rows(&r[0]).len())
        .unwrap_or(0);
        if dpdk_ports > DPDK_MAX_PORTS || error.contains("Invalid port_id") {
            msg.push_str(&format!(
                " (Debian's DPDK allows at most {DPDK_MAX_PORTS} DPDK ports per ovs-vswitchd; {} exist besides this one)",
                dpdk_ports.saturating_sub(1)
            ));
        }
    }
    CniError::new(codes::VSWITCH_FAILURE, msg, "the port was rolled back")
}

impl Engine for OvsDpdk {
    fn add(att: Attachment) -> Result<AddResult, CniError> {
        let s = Settings::parse(&att.host_config)?;
        let bridge_uuid = ensure_bridge(&s, &att)?;
        let port_uuid = derived_uuid(att.nonce, 2);
        let iface_uuid = derived_uuid(att.nonce, 3);

        undo::record_ovsdb(
            &format!("remove port {} from bridge {}", att.port_name, s.bridge),
            &json!([ovsdb::mutate(
                "Bridge",
                vec![],
                "ports",
                "delete",
                ovsdb::set(vec![uuid(&port_uuid)])
            )]),
            true,
            false,
        )?;

        let (kind, options) = s.interface_kind(&att);
        let ids = ovsdb::map([
            ("userspace-cni-network", att.network.as_str()),
            ("userspace-cni-container-id", att.container_id.as_str()),
            ("userspace-cni-ifname", att.ifname.as_str()),
        ]);
        let mut iface =
            json!({"name": att.port_name, "type": kind, "options": options, "external_ids": ids});
        if let Some(mtu) = att.mtu {
            iface["mtu_request"] = json!(mtu);
        }
        let mut port =
            json!({"name": att.port_name, "interfaces": uuid(&iface_uuid), "external_ids": ids});
        if let Some(tag) = s.vlan {
            port["tag"] = json!(tag);
        }
        log::info(&format!(
            "adding {kind} port {} to bridge {}",
            att.port_name, s.bridge
        ));
        let what = format!("port {} on bridge {}", att.port_name, s.bridge);
        ovsdb::transact(
            &what,
            &[
                ovsdb::insert_with_uuid("Interface", &iface_uuid, iface),
                ovsdb::insert_with_uuid("Port", &port_uuid, port),
                ovsdb::mutate(
                    "Bridge",
                    vec![cond("_uuid", "==", uuid(&bridge_uuid))],
                    "ports",
                    "insert",
                    ovsdb::set(vec![uuid(&port_uuid)]),
                ),
            ],
            true,
        )?;

        // ovs-vswitchd reports a port it could not open in `error` / ofport -1.
        let state = ovsdb::transact(
            &what,
            &[ovsdb::select(
                "Interface",
                vec![cond("_uuid", "==", uuid(&iface_uuid))],
                &["error", "ofport"],
            )],
            false,
        )?;
        let row = ovsdb::rows(&state[0])
            .first()
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(error) = row["error"].as_str() {
            return Err(interface_failure(&s, &att, error));
        }
        // No error but no OpenFlow port either: vswitchd did not attach it
        // (for instance the bridge itself could not be created).
        match row["ofport"].as_i64() {
            Some(port) if port > 0 => {}
            _ => {
                return Err(interface_failure(
                    &s,
                    &att,
                    &format!(
                        "no OpenFlow port assigned (ofport {}); see ovs-vswitchd.log",
                        row["ofport"]
                    ),
                ))
            }
        }

        // DEL then unlinks the memif socket OVS listens on before it removes
        // the port (replayed newest first): a client that reconnects while
        // ovs-vswitchd tears the port down can crash it (OVS 3.1, DPDK
        // 22.11 memif), and one that cannot find the socket cannot.
        if kind == "dpdk" && s.memif_role != "slave" {
            undo::record_remove_file(
                &format!(
                    "remove memif socket {} before its port (no client reconnects meanwhile)",
                    att.socket_path
                ),
                &att.socket_path,
            )?;
        }

        let socket_moves = if kind == "dpdkvhostuser" {
            vec![(
                format!("{}/{}", s.vhost_sock_dir, att.port_name),
                att.socket_path.clone(),
            )]
        } else {
            Vec::new()
        };
        Ok(AddResult {
            host_interface: att.port_name,
            socket_moves,
        })
    }

    fn check(att: Attachment) -> Result<(), CniError> {
        let s = Settings::parse(&att.host_config)?;
        let what = format!("port {} on bridge {}", att.port_name, s.bridge);
        let name = vec![cond("name", "==", json!(att.port_name))];
        let found = ovsdb::transact(
            &what,
            &[
                ovsdb::select("Bridge", bridge_where(&s.bridge), &["ports"]),
                ovsdb::select("Port", name.clone(), &["_uuid", "tag"]),
                ovsdb::select("Interface", name, &["type", "error", "ofport"]),
            ],
            false,
        )?;
        let failed = |msg: String| Err(CniError::new(codes::CHECK_FAILED, msg, ""));
        let Some(bridge) = ovsdb::rows(&found[0]).first() else {
            return failed(format!("bridge {} does not exist", s.bridge));
        };
        let Some(port) = ovsdb::rows(&found[1]).first() else {
            return failed(format!("port {} does not exist", att.port_name));
        };
        let port_uuid = ovsdb::uuids(&port["_uuid"]).pop().unwrap_or_default();
        if !ovsdb::uuids(&bridge["ports"]).contains(&port_uuid) {
            return failed(format!(
                "port {} is not on bridge {}",
                att.port_name, s.bridge
            ));
        }
        let tag = port["tag"].as_u64().map(|t| t as u16);
        if tag != s.vlan {
            return failed(format!(
                "port {}: tag is {tag:?}, config says {:?}",
                att.port_name, s.vlan
            ));
        }
        let Some(iface) = ovsdb::rows(&found[2]).first() else {
            return failed(format!("interface {} does not exist", att.port_name));
        };
        let (kind, _) = s.interface_kind(&att);
        if iface["type"].as_str() != Some(kind) {
            return failed(format!(
                "interface {}: type is {}, expected {kind}",
                att.port_name, iface["type"]
            ));
        }
        if let Some(error) = iface["error"].as_str() {
            return failed(format!(
                "interface {}: ovs-vswitchd reports {error}",
                att.port_name
            ));
        }
        Ok(())
    }

    fn status(_host_config: String) -> Result<(), CniError> {
        ovsdb::transact("status", &[], false)
            .map(|_| ())
            .map_err(|mut e| {
                e.code = codes::PLUGIN_NOT_AVAILABLE;
                e
            })
    }

    fn undo(_att: Attachment, step: String) -> Result<(), CniError> {
        Err(OvsDpdk::no_engine_steps(&step))
    }
}

impl OvsDpdk {
    fn no_engine_steps(step: &str) -> CniError {
        CniError::new(
            codes::INVALID_NETWORK_CONFIG,
            format!("ovs-dpdk journals no engine steps (asked to undo {step:?})"),
            "",
        )
    }
}

#[cfg(feature = "export")]
export_engine!(OvsDpdk);

#[cfg(test)]
mod tests {
    use super::derived_uuid;

    #[test]
    fn derived_uuids_are_v4_and_distinct_per_salt() {
        let a = derived_uuid(42, 1);
        let b = derived_uuid(42, 2);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
