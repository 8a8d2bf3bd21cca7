//! The guest-side SDK for userspace-cni components.
//!
//! An engine implements [`Engine`] and exports it with [`export_engine!`];
//! a naming policy implements [`Naming`] ([`export_naming!`]), an IPAM
//! policy [`IpamChain`] ([`export_ipam_chain!`]). Everything it does to the host goes through the
//! imported capabilities; [`undo`] pairs each mutation with the journal
//! record of its inverse, and [`ovsdb`] builds RFC 7047 operations.

pub mod ovsdb;
pub mod undo;
pub mod vpp;

/// Bindings generated from `wit/userspace-cni.wit` (world `engine`).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "engine",
        pub_export_macro: true,
        export_macro_name: "export_engine_world",
        default_bindings_module: "userspace_cni_sdk::bindings",
    });
}

/// Bindings of world `naming`; the shared types and capabilities are
/// those of [`bindings`].
pub mod naming_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "naming",
        pub_export_macro: true,
        export_macro_name: "export_naming_world",
        default_bindings_module: "userspace_cni_sdk::naming_bindings",
        with: {
            "userspace:cni/types@0.1.1": crate::bindings::userspace::cni::types,
            "userspace:cni/log@0.1.1": crate::bindings::userspace::cni::log,
        },
    });
}

/// Bindings of world `ipam-chain`; the shared types and capabilities are
/// those of [`bindings`].
pub mod ipam_chain_bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ipam-chain",
        pub_export_macro: true,
        export_macro_name: "export_ipam_chain_world",
        default_bindings_module: "userspace_cni_sdk::ipam_chain_bindings",
        with: {
            "userspace:cni/types@0.1.1": crate::bindings::userspace::cni::types,
            "userspace:cni/log@0.1.1": crate::bindings::userspace::cni::log,
        },
    });
}

pub use bindings::userspace::cni::types::{Attachment, CniError, Names, NamingRequest, Pod};
pub use bindings::{AddResult, Guest as Engine};
pub use ipam_chain_bindings::Guest as IpamChain;
pub use naming_bindings::Guest as Naming;

/// Exports `$ty` (which implements [`Engine`]) as the component's engine.
#[macro_export]
macro_rules! export_engine {
    ($ty:ident) => {
        $crate::bindings::export_engine_world!($ty);
        $crate::component_metadata!();
    };
}

/// Exports `$ty` (which implements [`Naming`]) as a naming component.
#[macro_export]
macro_rules! export_naming {
    ($ty:ident) => {
        $crate::naming_bindings::export_naming_world!($ty);
        $crate::component_metadata!();
    };
}

/// Exports `$ty` (which implements [`IpamChain`]) as an IPAM-chain component.
#[macro_export]
macro_rules! export_ipam_chain {
    ($ty:ident) => {
        $crate::ipam_chain_bindings::export_ipam_chain_world!($ty);
        $crate::component_metadata!();
    };
}

/// Records the component's package name and version (`name@version`,
/// from its Cargo manifest) in a custom section that `userspace
/// components` and `userspace validate` show. The export macros call it.
#[macro_export]
#[doc(hidden)]
macro_rules! component_metadata {
    () => {
        const _: () = {
            const METADATA: &str = concat!(env!("CARGO_PKG_NAME"), "@", env!("CARGO_PKG_VERSION"));
            #[used]
            #[link_section = "userspace-cni-component"]
            static METADATA_SECTION: [u8; METADATA.len()] = $crate::metadata_bytes(METADATA);
        };
    };
}

/// `text` as a byte array of its length, for a `link_section` static.
#[doc(hidden)]
pub const fn metadata_bytes<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The IPAM delegate: runs the IPAM plugin named by `ipam.type` of the
/// network config given (the host journals the release of every ADD).
pub mod ipam {
    pub use crate::ipam_chain_bindings::userspace::cni::ipam::exec;
}

/// CNI error codes: the spec's, and the plugin's own (100+). The same
/// names and values as the host's `cni_protocol::codes` (a test holds
/// them together), so an error reads the same on both sides of the WIT.
pub mod codes {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// An I/O failure (for example writing the undo journal).
    pub const IO_FAILURE: u32 = 5;
    pub const DECODING_FAILURE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// Try again later (a transient condition).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADDs now (its vSwitch is down).
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// STATUS: the plugin's IPAM delegate is not available.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// The delegated IPAM plugin failed.
    pub const IPAM_FAILURE: u32 = 101;
    /// A WebAssembly component failed (trap, timeout, memory limit, load).
    pub const COMPONENT_FAILURE: u32 = 102;
    /// Publishing the container data (shared dir, sockets) failed.
    pub const CONTAINER_DATA_FAILURE: u32 = 103;
    /// The Kubernetes API refused a call.
    pub const KUBERNETES_FAILURE: u32 = 104;
    /// The vSwitch refused or could not complete an operation.
    pub const VSWITCH_FAILURE: u32 = 110;
    /// CHECK found the host side differs from what ADD created.
    pub const CHECK_FAILED: u32 = 111;

    /// Every code by name, to hold the two vocabularies together.
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

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

/// Logs through the host, tagged with the component's name.
pub mod log {
    use crate::bindings::userspace::cni::log::log;
    pub use crate::bindings::userspace::cni::log::Level;

    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
}
