//! The node policy: what only the node's operator decides. Network
//! configs come from NetworkAttachmentDefinitions that namespace users may
//! write, yet the plugin runs as root; every host path, socket and
//! component a config names must lie inside what this policy allows.
//!
//! The policy is one JSON file at [`DEFAULT_PATH`] (or the path in
//! [`PATH_ENV`], which only the runtime's environment, never a network
//! config, can set). It is used only when root owns it and nobody else can
//! write it or a directory above it. Without the file the built-in
//! [`NodePolicy::default`] holds: the paths the Go plugin and its example
//! configs use.

mod confine;
mod remove;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use confine::{Kind, Match};
pub use remove::What;

/// Where the operator's policy lives (fixed at install time).
pub const DEFAULT_PATH: &str = "/etc/cni/userspace/policy.json";
/// The environment variable naming another policy file (the runtime's
/// environment is the operator's; test harnesses and demos use it).
pub const PATH_ENV: &str = "USERSPACE_CNI_POLICY";
/// Largest policy file read.
const MAX_POLICY_BYTES: u64 = 256 * 1024;

/// Why the policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("node policy {0}: no such file ({PATH_ENV} names it)")]
    Missing(String),
    #[error("node policy {0} is not used: {1}")]
    Untrusted(String, String),
    #[error("node policy {0}: {1}")]
    Invalid(String, String),
}

/// What network configs may name on this node. Every list holds roots: a
/// path a config names must be one of them or lie below one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NodePolicy {
    /// The state dir (records, journals, the component cache); a config's
    /// `stateDir` must lie inside it.
    pub state_dir: PathBuf,
    /// `logFile`: the directories a log file may be in.
    pub log_dirs: Vec<PathBuf>,
    /// `sharedDir`, and a pod's `hostPath` socket volume.
    pub shared_dir_roots: Vec<PathBuf>,
    /// `kubernetes.kubeletDir` (a pod's emptyDir socket volume lies below).
    pub kubelet_dirs: Vec<PathBuf>,
    /// `kubernetes.socketMountDir`.
    pub socket_mount_roots: Vec<PathBuf>,
    /// `host.ovs.dbSocket` (without `unix:`).
    pub ovs_db_sockets: Vec<PathBuf>,
    /// `host.ovs.vhostSockDir`: where ovs-vswitchd makes its sockets.
    pub vhost_sock_dirs: Vec<PathBuf>,
    /// `host.vpp.apiSocket`.
    pub vpp_api_sockets: Vec<PathBuf>,
    /// `kubeconfig`, and every file it names (token, certificates, key).
    pub kubeconfig_roots: Vec<PathBuf>,
    /// `runtimeConfig.CNIDeviceInfoFile`: Multus's device-info dir.
    pub device_info_dirs: Vec<PathBuf>,
    /// `components.dir`, `host.engine` and `components.*.source` as paths.
    pub component_dirs: Vec<PathBuf>,
    /// `components.*.files`: host dirs a component may be given to read.
    pub component_file_roots: Vec<PathBuf>,
    /// Whether a component given as a path may run without a `sha256` pin.
    pub unpinned_components: bool,
    /// The IPAM plugins (`ipam.type`) a network config may delegate to.
    pub ipam_types: Vec<String>,
    /// The capabilities a network config may grant a component.
    pub grants: Vec<String>,
    /// Where the Go plugin kept its per-attachment data: DEL of an
    /// attachment it made (an in-place upgrade) reads and removes its file.
    pub go_plugin_data_dir: PathBuf,
    /// Wider `ovsdb` and `vpp` scopes for single engines, by sha256: an
    /// engine gets one only when the network config pins it with that
    /// sha256, so the widening follows the code the operator reviewed.
    pub scopes: BTreeMap<String, ScopeWidening>,
    /// Where this policy came from (not part of the file).
    #[serde(skip)]
    pub source: String,
}

/// What the operator adds to the default scopes for one engine. The
/// checks on paths stay: an interface still names no socket but the
/// attachment's, and a `dpdk-devargs` device is still a `net_memif`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ScopeWidening {
    /// OVSDB tables, each with the columns the engine may write there (an
    /// empty list: read only). Columns add to a default table's.
    pub ovsdb_columns: BTreeMap<String, Vec<String>>,
    /// Interface types besides `dpdk`, `dpdkvhostuser`, `dpdkvhostuserclient`.
    pub interface_types: Vec<String>,
    /// Interface option keys besides `dpdk-devargs` and `vhost-server-path`.
    pub interface_options: Vec<String>,
    /// VPP messages (names without the CRC) besides the built-in engine's.
    pub vpp_messages: Vec<String>,
}

fn paths(list: &[&str]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

impl Default for NodePolicy {
    /// The paths of a stock node and of the Go plugin's example configs.
    fn default() -> Self {
        NodePolicy {
            state_dir: "/var/lib/cni/userspace".into(),
            log_dirs: paths(&["/var/log"]),
            shared_dir_roots: paths(&[
                "/var/lib/cni/usrspcni",
                "/var/lib/cni/vhostuser",
                "/run/vpp",
                "/var/run/vpp",
                "/run/openvswitch",
                "/var/run/openvswitch",
                "/usr/local/var/run/openvswitch",
            ]),
            kubelet_dirs: paths(&["/var/lib/kubelet"]),
            socket_mount_roots: paths(&["/var/lib/vhost_sockets"]),
            ovs_db_sockets: paths(&[
                "/run/openvswitch/db.sock",
                "/var/run/openvswitch/db.sock",
                "/usr/local/var/run/openvswitch/db.sock",
            ]),
            vhost_sock_dirs: paths(&[
                "/run/openvswitch",
                "/var/run/openvswitch",
                "/usr/local/var/run/openvswitch",
            ]),
            vpp_api_sockets: paths(&["/run/vpp/api.sock", "/var/run/vpp/api.sock"]),
            // Multus's; not /etc/kubernetes, where admin.conf lives.
            kubeconfig_roots: paths(&["/etc/cni/net.d"]),
            device_info_dirs: paths(&["/var/run/k8s.cni.cncf.io/devinfo/cni"]),
            go_plugin_data_dir: "/var/lib/cni/usrspcni/data".into(),
            component_dirs: paths(&["/etc/cni/userspace/components"]),
            component_file_roots: paths(&["/etc/cni/userspace"]),
            unpinned_components: false,
            ipam_types: ["host-local", "static", "dhcp", "whereabouts"]
                .map(String::from)
                .to_vec(),
            grants: ["ovsdb", "vpp", "ipam", "journal", "log", "wasi", "clocks"]
                .map(String::from)
                .to_vec(),
            scopes: BTreeMap::new(),
            source: "the built-in defaults".into(),
        }
    }
}

/// A host path a config names, and the policy lists that may hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    StateDir,
    LogFile,
    SharedDir,
    KubeletDir,
    SocketMountDir,
    OvsDbSocket,
    VhostSockDir,
    VppApiSocket,
    Kubeconfig,
    DeviceInfoFile,
    ComponentDir,
    ComponentFile,
    ComponentFiles,
    /// A pod's hostPath socket volume.
    PodVolume,
    /// A pod's emptyDir socket volume, in kubelet's tree.
    PodEmptyDir,
}

impl Rule {
    /// The policy key that lists what is allowed.
    pub fn key(self) -> &'static str {
        match self {
            Rule::StateDir => "stateDir",
            Rule::LogFile => "logDirs",
            Rule::SharedDir | Rule::PodVolume => "sharedDirRoots",
            Rule::KubeletDir | Rule::PodEmptyDir => "kubeletDirs",
            Rule::SocketMountDir => "socketMountRoots",
            Rule::OvsDbSocket => "ovsDbSockets",
            Rule::VhostSockDir => "vhostSockDirs",
            Rule::VppApiSocket => "vppApiSockets",
            Rule::Kubeconfig => "kubeconfigRoots",
            Rule::DeviceInfoFile => "deviceInfoDirs",
            Rule::ComponentDir | Rule::ComponentFile => "componentDirs",
            Rule::ComponentFiles => "componentFileRoots",
        }
    }

    /// Sockets and the dirs the plugin only reads from are named exactly;
    /// a pod's hostPath volume lies strictly below a root (a pod that
    /// mounted a root itself would write beside every other attachment and
    /// the vSwitch's own sockets).
    fn matching(self) -> Match {
        match self {
            Rule::KubeletDir
            | Rule::SocketMountDir
            | Rule::VhostSockDir
            | Rule::OvsDbSocket
            | Rule::VppApiSocket => Match::Exact,
            Rule::PodVolume => Match::StrictlyBelow,
            _ => Match::Below,
        }
    }

    fn kind(self) -> Kind {
        match self {
            Rule::StateDir
            | Rule::SharedDir
            | Rule::KubeletDir
            | Rule::SocketMountDir
            | Rule::VhostSockDir
            | Rule::ComponentDir
            | Rule::ComponentFiles => Kind::Dir,
            Rule::LogFile | Rule::DeviceInfoFile => Kind::WrittenFile,
            Rule::Kubeconfig | Rule::ComponentFile => Kind::ReadFile,
            Rule::OvsDbSocket | Rule::VppApiSocket => Kind::Socket,
            Rule::PodVolume | Rule::PodEmptyDir => Kind::Volume,
        }
    }
}

/// A path the policy does not allow: the field, the value and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {value:?} {why}; the node policy ({policy}) allows {key}: {allowed}")]
pub struct Refusal {
    pub field: String,
    pub value: String,
    pub why: String,
    pub key: &'static str,
    /// Where the policy came from.
    pub policy: String,
    pub allowed: String,
}

impl NodePolicy {
    /// A policy whose every list (and state dir) is `root`: for tests and
    /// throwaway nodes.
    pub fn everything_under(root: &Path) -> NodePolicy {
        let r = vec![root.to_path_buf()];
        NodePolicy {
            state_dir: root.to_path_buf(),
            log_dirs: r.clone(),
            shared_dir_roots: r.clone(),
            kubelet_dirs: r.clone(),
            socket_mount_roots: r.clone(),
            ovs_db_sockets: r.clone(),
            vhost_sock_dirs: r.clone(),
            vpp_api_sockets: r.clone(),
            kubeconfig_roots: r.clone(),
            device_info_dirs: r.clone(),
            component_dirs: r.clone(),
            component_file_roots: r,
            source: format!("everything under {}", root.display()),
            ..NodePolicy::default()
        }
    }

    /// The operator's policy: the file [`PATH_ENV`] names, else
    /// [`DEFAULT_PATH`], else the built-in defaults when that is missing.
    pub fn load() -> Result<NodePolicy, Error> {
        match std::env::var_os(PATH_ENV) {
            Some(path) => Self::load_from(Path::new(&path), true),
            None => Self::load_from(Path::new(DEFAULT_PATH), false),
        }
    }

    /// The policy at `path`; a missing file is the defaults unless
    /// `required`.
    pub fn load_from(path: &Path, required: bool) -> Result<NodePolicy, Error> {
        let shown = path.display().to_string();
        let file = match root_owned::open_trusted(path) {
            Ok(file) => file,
            Err(root_owned::Refused::Missing) if !required => {
                return Ok(NodePolicy {
                    source: format!("the built-in defaults: no {shown}"),
                    ..NodePolicy::default()
                })
            }
            Err(root_owned::Refused::Missing) => return Err(Error::Missing(shown)),
            Err(root_owned::Refused::Untrusted(why)) => return Err(Error::Untrusted(shown, why)),
        };
        let mut text = String::new();
        file.take(MAX_POLICY_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::Invalid(shown.clone(), e.to_string()))?;
        if text.len() as u64 > MAX_POLICY_BYTES {
            return Err(Error::Invalid(
                shown,
                format!("larger than {MAX_POLICY_BYTES} bytes"),
            ));
        }
        Self::parse(&text, &shown)
    }

    /// Parses a policy's text; `source` names it in messages.
    pub fn parse(text: &str, source: &str) -> Result<NodePolicy, Error> {
        let mut policy: NodePolicy = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(source.to_string(), e.to_string()))?;
        policy.source = source.to_string();
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |why: String| Err(Error::Invalid(self.source.clone(), why));
        let lists = [
            ("logDirs", &self.log_dirs),
            ("sharedDirRoots", &self.shared_dir_roots),
            ("kubeletDirs", &self.kubelet_dirs),
            ("socketMountRoots", &self.socket_mount_roots),
            ("ovsDbSockets", &self.ovs_db_sockets),
            ("vhostSockDirs", &self.vhost_sock_dirs),
            ("vppApiSockets", &self.vpp_api_sockets),
            ("kubeconfigRoots", &self.kubeconfig_roots),
            ("deviceInfoDirs", &self.device_info_dirs),
            ("componentDirs", &self.component_dirs),
            ("componentFileRoots", &self.component_file_roots),
        ];
        let state = ("stateDir", std::slice::from_ref(&self.state_dir));
        let go_data = (
            "goPluginDataDir",
            std::slice::from_ref(&self.go_plugin_data_dir),
        );
        for (key, list) in lists
            .iter()
            .map(|(k, l)| (*k, l.as_slice()))
            .chain([state, go_data])
        {
            for path in list {
                if let Err(why) = confine::lexical(&path.to_string_lossy()) {
                    return invalid(format!("{key}: {:?} {why}", path.display()));
                }
            }
        }
        if let Some(grant) = self
            .grants
            .iter()
            .find(|g| !KNOWN_GRANTS.contains(&g.as_str()))
        {
            return invalid(format!(
                "grants: {grant:?} is not one of {}",
                KNOWN_GRANTS.join(", ")
            ));
        }
        if let Some(key) = self.scopes.keys().find(|k| {
            k.len() != 64
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }) {
            return invalid(format!(
                "scopes: {key:?} is not a sha256 (64 lowercase hex digits)"
            ));
        }
        Ok(())
    }

    /// The widening for the engine pinned with `sha256`, if any.
    pub fn scope_widening(&self, sha256: Option<&str>) -> Option<&ScopeWidening> {
        self.scopes.get(&sha256?.to_ascii_lowercase())
    }

    /// The roots `rule` allows.
    pub fn roots(&self, rule: Rule) -> &[PathBuf] {
        match rule {
            Rule::StateDir => std::slice::from_ref(&self.state_dir),
            Rule::LogFile => &self.log_dirs,
            Rule::SharedDir | Rule::PodVolume => &self.shared_dir_roots,
            Rule::KubeletDir | Rule::PodEmptyDir => &self.kubelet_dirs,
            Rule::SocketMountDir => &self.socket_mount_roots,
            Rule::OvsDbSocket => &self.ovs_db_sockets,
            Rule::VhostSockDir => &self.vhost_sock_dirs,
            Rule::VppApiSocket => &self.vpp_api_sockets,
            Rule::Kubeconfig => &self.kubeconfig_roots,
            Rule::DeviceInfoFile => &self.device_info_dirs,
            Rule::ComponentDir | Rule::ComponentFile => &self.component_dirs,
            Rule::ComponentFiles => &self.component_file_roots,
        }
    }

    /// Whether config field `field` may name host path `value` under
    /// `rule`: inside an allowed root once resolved, no symlink at its end,
    /// and every directory on the way writable by root alone.
    pub fn check(&self, field: &str, value: &str, rule: Rule) -> Result<(), Box<Refusal>> {
        let roots = self.roots(rule);
        confine::confine(value, rule.kind(), rule.matching(), roots).map_err(|why| {
            Box::new(Refusal {
                field: field.to_string(),
                value: value.to_string(),
                why,
                key: rule.key(),
                policy: self.source.clone(),
                allowed: format!(
                    "[{}]",
                    roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        })
    }

    /// The roots where journalled removals may happen (where attachments
    /// live): shared dir roots, kubelet dirs, socket mounts, device info.
    fn removal_roots(&self) -> impl Iterator<Item = &PathBuf> {
        [
            &self.shared_dir_roots,
            &self.kubelet_dirs,
            &self.socket_mount_roots,
            &self.device_info_dirs,
        ]
        .into_iter()
        .flatten()
    }

    /// Removes file (or empty dir) `path` as a DEL or GC replays it from a
    /// record: only below a removal root, and without following a link
    /// anywhere below that root (a pod may have swapped one in since ADD).
    /// Gone already is done.
    pub fn remove_beneath(&self, path: &str, what: remove::What) -> Result<(), String> {
        remove::beneath(self.removal_roots(), path, what).map_err(|why| {
            format!(
                "{path}: {why} (the node policy {} lets attachments live in sharedDirRoots, \
                 kubeletDirs, socketMountRoots, deviceInfoDirs)",
                self.source
            )
        })
    }

    /// Removes the Go plugin's data file `path`: only directly in
    /// `goPluginDataDir`, and without following a link (a record's replay
    /// never reaches that dir).
    pub fn remove_go_plugin_data(&self, path: &str) -> Result<(), String> {
        remove::beneath(
            std::iter::once(&self.go_plugin_data_dir),
            path,
            remove::What::File,
        )
        .map_err(|why| {
            format!(
                "{path}: {why} (goPluginDataDir of the node policy {})",
                self.source
            )
        })
    }

    /// Whether `path` is a socket mount point as the policy allows them:
    /// directly in one of `socketMountRoots` (DEL checks a recorded
    /// unmount with it).
    pub fn is_socket_mount(&self, path: &str) -> bool {
        let Some(parent) = Path::new(path).parent() else {
            return false;
        };
        confine::lexical(path).is_ok()
            && self
                .socket_mount_roots
                .iter()
                .any(|entry| match confine::split_entry(entry) {
                    (prefix, true) => parent.starts_with(prefix),
                    (root, false) => parent == root,
                })
    }

    /// Whether `path` is one of the vSwitch control sockets the policy
    /// names (`ovsDbSockets`, `vppApiSockets`): a socket the plugin must
    /// never move or remove.
    pub fn is_vswitch_socket(&self, path: &str) -> bool {
        let path = Path::new(path);
        let real = std::fs::canonicalize(path).ok();
        self.ovs_db_sockets
            .iter()
            .chain(&self.vpp_api_sockets)
            .filter(|entry| !confine::split_entry(entry).1)
            .any(|socket| {
                socket == path
                    || std::fs::canonicalize(socket)
                        .ok()
                        .is_some_and(|s| Some(s) == real)
            })
    }

    /// Whether a network config may delegate IPAM to plugin `ipam_type`
    /// (`*` in the list allows any).
    pub fn allows_ipam(&self, ipam_type: &str) -> bool {
        self.ipam_types.iter().any(|t| t == ipam_type || t == "*")
    }

    /// Whether a network config may grant `grant`.
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }

    /// The policy as its file holds it, for `userspace install` and docs.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a policy serializes")
    }
}

/// The capabilities a policy may list (the host's `Capability` names).
pub const KNOWN_GRANTS: [&str; 7] = ["ovsdb", "vpp", "ipam", "journal", "log", "wasi", "clocks"];

#[cfg(test)]
mod tests;
