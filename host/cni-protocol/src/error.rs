use serde::Serialize;

/// Error codes from the CNI spec, plus the plugin's own (100+).
pub mod codes {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODING_FAILURE: u32 = 6;
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADDs now (its vSwitch is down).
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// STATUS: the plugin's IPAM delegate is not available.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// The delegated IPAM plugin failed.
    pub const IPAM_FAILURE: u32 = 101;
    /// The WebAssembly component failed (trap, timeout, memory limit, load).
    pub const COMPONENT_FAILURE: u32 = 102;
    /// Publishing the container data (shared dir, sockets) failed.
    pub const CONTAINER_DATA_FAILURE: u32 = 103;
    /// The Kubernetes API refused a call (the pod is missing, RBAC says no).
    pub const KUBERNETES_FAILURE: u32 = 104;
    /// The vSwitch refused or could not complete an operation.
    pub const VSWITCH_FAILURE: u32 = 110;
    /// CHECK found the attachment differs from what ADD created.
    pub const CHECK_FAILED: u32 = 111;

    /// Every code by name; the SDK's `codes::ALL` must be the same list.
    pub const ALL: [(&str, u32); 16] = [
        ("INCOMPATIBLE_VERSION", INCOMPATIBLE_VERSION),
        ("UNSUPPORTED_FIELD", UNSUPPORTED_FIELD),
        ("UNKNOWN_CONTAINER", UNKNOWN_CONTAINER),
        ("INVALID_ENVIRONMENT", INVALID_ENVIRONMENT),
        ("IO_FAILURE", IO_FAILURE),
        ("DECODING_FAILURE", DECODING_FAILURE),
        ("INVALID_NETWORK_CONFIG", INVALID_NETWORK_CONFIG),
        ("TRY_AGAIN_LATER", TRY_AGAIN_LATER),
        ("PLUGIN_NOT_AVAILABLE", PLUGIN_NOT_AVAILABLE),
        ("LIMITED_CONNECTIVITY", LIMITED_CONNECTIVITY),
        ("IPAM_FAILURE", IPAM_FAILURE),
        ("COMPONENT_FAILURE", COMPONENT_FAILURE),
        ("CONTAINER_DATA_FAILURE", CONTAINER_DATA_FAILURE),
        ("KUBERNETES_FAILURE", KUBERNETES_FAILURE),
        ("VSWITCH_FAILURE", VSWITCH_FAILURE),
        ("CHECK_FAILED", CHECK_FAILED),
    ];
}

/// A CNI error as the spec defines it: printed as JSON on stdout with a
/// non-zero exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Self::new(codes::INVALID_NETWORK_CONFIG, msg, "")
    }

    pub fn invalid_env(msg: impl Into<String>) -> Self {
        Self::new(codes::INVALID_ENVIRONMENT, msg, "")
    }

    pub fn io(msg: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::new(codes::IO_FAILURE, msg, err.to_string())
    }

    /// The JSON the plugin prints for this error.
    pub fn to_json(&self, cni_version: &str) -> String {
        let mut value = serde_json::to_value(self).expect("CniError serialises");
        value["cniVersion"] = cni_version.into();
        serde_json::to_string(&value).expect("Value serialises")
    }
}
