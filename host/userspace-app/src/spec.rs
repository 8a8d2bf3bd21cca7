//! What the plugin published for this container: one `configData-*.json`
//! per interface in the mapped directory (the Go plugin's shape).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connect to the vSwitch's socket (memif "slave", vhost "client").
    Client,
    /// The vSwitch connects to ours (memif "master", vhost "server").
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memif,
    VhostUser,
}

/// A route of the IPAM result (IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Addr,
    pub prefix_len: u8,
    /// The route's `gw`, else the address's gateway; none: on the link.
    pub gateway: Option<Ipv4Addr>,
}

/// One interface to bring up.
#[derive(Debug, Clone)]
pub struct InterfaceSpec {
    pub if_name: String,
    /// The container ID the plugin was called with ("" when absent).
    pub container_id: String,
    pub network: String,
    pub kind: Kind,
    pub role: Role,
    pub socket: PathBuf,
    /// The memif secret the plugin gave this attachment ("" = none).
    pub secret: String,
    /// The memif queues the vSwitch's port has for us (receive, transmit),
    /// when the plugin published them (the Go plugin did not).
    pub queues: Option<(u16, u16)>,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub routes: Vec<Route>,
}

impl InterfaceSpec {
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix_len)
    }

    /// Whether `ip` is on this interface's subnet.
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::from(netmask(self.prefix_len));
        u32::from(ip) & mask == u32::from(self.address) & mask
    }
}

/// The interfaces to bring up: from the downward-API annotations file when
/// it carries `userspace/configuration-data` (sockets in its
/// `userspace/mapped-dir`, else in `dir`), otherwise from every
/// `configData-*.json` in `dir`, sorted by file name.
pub fn load(dir: &Path, annotations: &Path) -> Result<Vec<InterfaceSpec>> {
    if let Ok(text) = std::fs::read_to_string(annotations) {
        let map = crate::annotations::parse(&text)
            .with_context(|| format!("{}", annotations.display()))?;
        if let Some(data) = map.get(crate::annotations::CONFIGURATION_DATA) {
            let docs: Vec<Value> = serde_json::from_str(data).with_context(|| {
                format!(
                    "{}: {} is not a JSON array",
                    annotations.display(),
                    crate::annotations::CONFIGURATION_DATA
                )
            })?;
            let mapped = map
                .get(crate::annotations::MAPPED_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.to_path_buf());
            if !docs.is_empty() {
                return docs.iter().map(|doc| parse(doc, &mapped)).collect();
            }
        }
    }
    read_dir(dir)
}

fn read_dir(dir: &Path) -> Result<Vec<InterfaceSpec>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the mapped dir {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("configData-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "no configData-*.json in {} and no container data in the annotations: was the plugin's ADD run for this container?",
            dir.display()
        );
    }
    files
        .iter()
        .map(|file| {
            let doc: Value = serde_json::from_slice(&std::fs::read(file)?)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            parse(&doc, dir).with_context(|| format!("{}", file.display()))
        })
        .collect()
}

/// Parses one container-data object.
pub fn parse(doc: &Value, dir: &Path) -> Result<InterfaceSpec> {
    let config = &doc["config"];
    let if_name = doc["ifName"]
        .as_str()
        .context("ifName missing")?
        .to_string();
    // Both go into the default socket names: never a way out of the dir.
    if if_name.is_empty() || if_name == "." || if_name == ".." || if_name.contains(['/', '\0']) {
        bail!("ifName {if_name:?} is not an interface name");
    }
    let container_id = doc["containerId"].as_str().unwrap_or_default();
    let cid12: String = container_id.chars().take(12).collect();
    if cid12.contains(['/', '\0']) {
        bail!("interface {if_name}: containerId {container_id:?} is not a container ID");
    }
    let secret = config["memif"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let queue_count = |key: &str| -> Result<Option<u16>> {
        match &config["memif"][key] {
            Value::Null => Ok(None),
            value => value
                .as_u64()
                .filter(|n| (1..=255).contains(n))
                .map(|n| Some(n as u16))
                .with_context(|| format!("interface {if_name}: memif {key} {value} is not 1-255")),
        }
    };
    let (kind, role, socketfile) = match config["iftype"].as_str() {
        Some("memif") => {
            let memif = &config["memif"];
            if memif["mode"]
                .as_str()
                .is_some_and(|m| !m.is_empty() && m != "ethernet")
            {
                bail!(
                    "interface {if_name}: memif mode {} is not supported (ethernet is)",
                    memif["mode"]
                );
            }
            // The Go plugin published a container role as the NAD gave
            // it: `server` is master's newer name.
            let role = if memif["role"] == "master" || memif["role"] == "server" {
                Role::Server
            } else {
                Role::Client
            };
            let file = socket_file(&if_name, &memif["socketfile"])?;
            (
                Kind::Memif,
                role,
                file.unwrap_or_else(|| format!("memif-{cid12}-{if_name}.sock")),
            )
        }
        Some("vhostuser") => {
            let vhost = &config["vhost"];
            let role = if vhost["mode"] == "server" {
                Role::Server
            } else {
                Role::Client
            };
            let file = socket_file(&if_name, &vhost["socketfile"])?;
            (
                Kind::VhostUser,
                role,
                file.unwrap_or_else(|| format!("{cid12}-{if_name}")),
            )
        }
        _ => bail!(
            "interface {if_name}: iftype {} is not memif or vhostuser",
            config["iftype"]
        ),
    };

    let result = &doc["ipResult"];
    let ip = result["ips"]
        .as_array()
        .and_then(|ips| {
            ips.iter()
                .find(|ip| !ip["address"].as_str().unwrap_or("").contains(':'))
        })
        .with_context(|| format!("interface {if_name}: the IPAM result has no IPv4 address"))?;
    let (address, prefix_len) = ip["address"]
        .as_str()
        .and_then(cidr)
        .with_context(|| format!("interface {if_name}: bad address {}", ip["address"]))?;
    let gateway = ip["gateway"].as_str().and_then(|g| g.parse().ok());
    let mut routes = Vec::new();
    for route in result["routes"].as_array().into_iter().flatten() {
        let Some(dst) = route["dst"].as_str() else {
            bail!("interface {if_name}: a route without dst: {route}");
        };
        if dst.contains(':') {
            continue; // IPv6: the interface carries IPv4 only
        }
        let (dst, prefix_len) =
            cidr(dst).with_context(|| format!("interface {if_name}: bad route dst {dst:?}"))?;
        let gateway = match route["gw"].as_str() {
            Some(gw) => Some(
                gw.parse()
                    .with_context(|| format!("interface {if_name}: bad route gw {gw:?}"))?,
            ),
            None => gateway,
        };
        // The network's address, as the kernel wants it (10.9.1.0/16 is
        // 10.9.0.0/16).
        routes.push(Route {
            dst: Ipv4Addr::from(u32::from(dst) & u32::from(netmask(prefix_len))),
            prefix_len,
            gateway,
        });
    }
    let mac_text = ip["interface"]
        .as_u64()
        .and_then(|i| result["interfaces"][i as usize]["mac"].as_str())
        .or_else(|| {
            result["interfaces"]
                .as_array()?
                .iter()
                .find(|i| i["name"] == if_name)?["mac"]
                .as_str()
        })
        .with_context(|| format!("interface {if_name}: the result has no MAC"))?;
    // One count alone (a vSwitch's default for the other): that one is 1.
    let queues = match (queue_count("rxQueues")?, queue_count("txQueues")?) {
        _ if kind != Kind::Memif => None,
        (None, None) => None,
        (rx, tx) => Some((rx.unwrap_or(1), tx.unwrap_or(1))),
    };
    Ok(InterfaceSpec {
        container_id: container_id.to_string(),
        queues,
        network: doc["name"].as_str().unwrap_or_default().to_string(),
        kind,
        role,
        socket: dir.join(socketfile),
        secret,
        mac: parse_mac(mac_text).with_context(|| format!("bad MAC {mac_text}"))?,
        address,
        prefix_len,
        gateway,
        routes,
        if_name,
    })
}

/// The netmask of a prefix length (0-32).
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::MAX.checked_shl(32 - prefix_len as u32).unwrap_or(0))
}

/// `a.b.c.d/n`.
fn cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some((address.parse().ok()?, prefix))
}

/// A `socketfile` as the plugin publishes it: a file name in the mapped
/// dir, never a path out of it (`None` when absent or empty: the Go
/// plugin's default name applies).
fn socket_file(if_name: &str, value: &Value) -> Result<Option<String>> {
    let file = match value {
        Value::Null => return Ok(None),
        Value::String(f) if f.is_empty() => return Ok(None),
        Value::String(f) => f,
        other => bail!("interface {if_name}: socketfile {other} is not a string"),
    };
    if file == "." || file == ".." || file.contains(['/', '\0']) {
        bail!("interface {if_name}: socketfile {file:?} is not a file name in the mapped dir");
    }
    Ok(Some(file.clone()))
}

/// `02:00:5e:00:00:01`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plugins_container_data_parses() {
        let doc = json!({
            "containerId": "3f2a9c0b1d4e5f60", "ifName": "net1", "name": "memif-network",
            "config": {"engine": "ovs-dpdk", "iftype": "memif", "netType": "interface",
                       "memif": {"role": "slave", "mode": "ethernet", "socketfile": "memif-3f2a9c0b1d4e-net1.sock"}},
            "ipResult": {"cniVersion": "1.0.0",
                         "interfaces": [{"name": "net1", "mac": "02:11:22:33:44:55", "sandbox": "/x"}],
                         "ips": [{"address": "192.168.210.2/24", "gateway": "192.168.210.1", "interface": 0}]}
        });
        let spec = parse(&doc, Path::new("/shared")).unwrap();
        assert_eq!(spec.role, Role::Client);
        assert_eq!(
            spec.socket,
            Path::new("/shared/memif-3f2a9c0b1d4e-net1.sock")
        );
        assert_eq!(spec.mac, [2, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(spec.cidr(), "192.168.210.2/24");
        assert!(spec.routes.is_empty());
        assert!(spec.on_link("192.168.210.9".parse().unwrap()));
        assert!(!spec.on_link("192.168.211.9".parse().unwrap()));
    }

    #[test]
    fn a_go_plugin_file_without_socketfile_gets_the_default_name() {
        let doc = json!({
            "containerId": "abc", "ifName": "net1",
            "config": {"iftype": "memif", "memif": {"role": "slave"}},
            "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01"}],
                         "ips": [{"address": "10.0.0.2/8"}]}
        });
        let spec = parse(&doc, Path::new("/d")).unwrap();
        assert_eq!(spec.socket, Path::new("/d/memif-abc-net1.sock"));
    }

    #[test]
    fn the_annotations_file_wins_when_it_carries_container_data() {
        let dir = tempfile::tempdir().unwrap();
        let doc = json!({
            "containerId": "podcontainer", "ifName": "net2",
            "config": {"iftype": "memif", "memif": {"role": "slave", "socketfile": "a.sock"}},
            "ipResult": {"interfaces": [{"name": "net2", "mac": "02:00:00:00:00:09"}],
                         "ips": [{"address": "10.1.0.2/24", "interface": 0}]}
        });
        let quoted = serde_json::to_string(&json!([doc]).to_string()).unwrap();
        let annotations = dir.path().join("annotations");
        std::fs::write(
            &annotations,
            format!("other=\"x\"\nuserspace/configuration-data={quoted}\nuserspace/mapped-dir=\"/var/lib/cni/usrspcni\"\n"),
        )
        .unwrap();
        let specs = load(dir.path(), &annotations).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].if_name, "net2");
        assert_eq!(specs[0].socket, Path::new("/var/lib/cni/usrspcni/a.sock"));

        // Without the annotations file, the directory's files are read.
        assert!(
            load(dir.path(), &dir.path().join("absent")).is_err(),
            "no configData files here"
        );
    }

    #[test]
    fn a_socketfile_cannot_leave_the_mapped_dir() {
        for bad in [
            json!("../x.sock"),
            json!("/etc/passwd"),
            json!(".."),
            json!("a/b"),
            json!(7),
        ] {
            let doc = json!({
                "containerId": "abc", "ifName": "net1",
                "config": {"iftype": "memif", "memif": {"role": "slave", "socketfile": bad}},
                "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01"}],
                             "ips": [{"address": "10.0.0.2/8"}]}
            });
            let error = parse(&doc, Path::new("/d")).unwrap_err().to_string();
            assert!(error.contains("socketfile"), "{bad}: {error}");
        }
    }

    #[test]
    fn routes_take_the_addresss_gateway_unless_they_name_one() {
        let doc = json!({
            "containerId": "abc", "ifName": "net1",
            "config": {"iftype": "memif", "memif": {"role": "slave"}},
            "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01"}],
                         "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1"}],
                         "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.1.0/16", "gw": "10.0.0.9"},
                                    {"dst": "fd00::/8"}]}
        });
        let spec = parse(&doc, Path::new("/d")).unwrap();
        assert_eq!(
            spec.routes,
            [
                Route {
                    dst: Ipv4Addr::UNSPECIFIED,
                    prefix_len: 0,
                    gateway: Some("10.0.0.1".parse().unwrap())
                },
                Route {
                    dst: "10.9.0.0".parse().unwrap(),
                    prefix_len: 16,
                    gateway: Some("10.0.0.9".parse().unwrap())
                },
            ]
        );
    }

    #[test]
    fn queues_published_alone_default_the_other_to_one() {
        let mut doc = json!({
            "containerId": "abc", "ifName": "net1",
            "config": {"iftype": "memif", "memif": {"role": "slave", "rxQueues": 2}},
            "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01"}],
                         "ips": [{"address": "10.0.0.2/8"}]}
        });
        assert_eq!(parse(&doc, Path::new("/d")).unwrap().queues, Some((2, 1)));
        doc["config"]["memif"]["txQueues"] = json!(0);
        assert!(parse(&doc, Path::new("/d"))
            .unwrap_err()
            .to_string()
            .contains("txQueues 0"));
        doc["config"]["memif"] = json!({"role": "slave"});
        assert_eq!(parse(&doc, Path::new("/d")).unwrap().queues, None);
        // Names that make the default socket name: no way out, no panic.
        doc["ifName"] = json!("x/../../..");
        assert!(parse(&doc, Path::new("/d")).is_err());
        doc["ifName"] = json!("net1");
        doc["containerId"] = json!("ééééééééééééé/x");
        assert_eq!(
            parse(&doc, Path::new("/d")).unwrap().socket,
            Path::new("/d/memif-éééééééééééé-net1.sock")
        );
    }

    #[test]
    fn vhost_user_roles_follow_the_container_mode() {
        let mut doc = json!({
            "containerId": "0123456789abcdef", "ifName": "net1",
            "config": {"iftype": "vhostuser", "vhost": {"mode": "server"}},
            "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01"}],
                         "ips": [{"address": "10.0.0.2/8"}]}
        });
        let spec = parse(&doc, Path::new("/d")).unwrap();
        assert_eq!((spec.kind, spec.role), (Kind::VhostUser, Role::Server));
        assert_eq!(spec.socket, Path::new("/d/0123456789ab-net1"));
        doc["config"]["vhost"]["mode"] = json!("client");
        assert_eq!(parse(&doc, Path::new("/d")).unwrap().role, Role::Client);
    }
}
