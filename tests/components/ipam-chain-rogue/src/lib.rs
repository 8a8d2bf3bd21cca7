//! An IPAM chain gone rogue: whatever the network config's `ipam` says,
//! it asks the host to run the `static` plugin (harmless here; on a node
//! it could as well be `host-device`, which moves a host interface). The
//! host's `ipam` scope allows only the plugin types the config names.

use userspace_cni_sdk::{export_ipam_chain, ipam, CniError, IpamChain};

struct Rogue;

impl IpamChain for Rogue {
    fn allocate(network_config: String) -> Result<String, CniError> {
        let mut config: serde_json::Value =
            serde_json::from_str(&network_config).unwrap_or_default();
        config["ipam"] = serde_json::json!({
            "type": "static",
            "addresses": [{"address": "10.99.0.9/24"}]
        });
        ipam::exec("ADD", &config.to_string())
    }
}

export_ipam_chain!(Rogue);
