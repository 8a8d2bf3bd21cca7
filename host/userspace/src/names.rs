//! The names of one attachment: where its socket, shared dir and container
//! data go and what its port is called. `naming` decides them (asking the
//! naming component, then checking); everything after reads them.

#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// `sharedDir`, or the engine's default: the shared dir is below it.
    pub base_dir: String,
    /// The per-container directory holding sockets and container data.
    pub shared_dir: String,
    pub socket_path: String,
    /// The socket's file name in the shared dir.
    pub socket_file: String,
    /// The vSwitch port / interface name.
    pub port_name: String,
    /// MAC address of the container interface.
    pub mac: String,
    /// `configData-<cid12>-<ifname>.json` in the shared dir.
    pub data_path: String,
    /// A short directory the shared dir is bind-mounted on, holding the
    /// socket, when the socket's path in the shared dir is too long for a
    /// unix socket (pod volumes in kubelet's tree).
    pub socket_mount: Option<String>,
    /// The shared dir is a pod's volume: the pod's, not the plugin's, so
    /// its owner and mode are left alone.
    pub in_pod_volume: bool,
}

/// The first 12 characters of the container ID (or all of a shorter one).
pub(crate) fn cid12(container_id: &str) -> &str {
    &container_id[..container_id.len().min(12)]
}
