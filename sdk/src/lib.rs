//! The guest-side SDK for userspace-cni components.
//!
//! An engine implements [`bindings::Guest`] and exports it with
//! [`export_engine!`]. Everything it does to the host goes through the
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

pub use bindings::userspace::cni::types::{Attachment, CniError};
pub use bindings::{AddResult, Guest as Engine};

/// Exports `$ty` (which implements [`Engine`]) as the component's engine.
#[macro_export]
macro_rules! export_engine {
    ($ty:ident) => {
        $crate::bindings::export_engine_world!($ty);
    };
}

/// CNI error codes engines commonly return.
pub mod codes {
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Try again later (a transient condition).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin is not available (the vSwitch is down).
    pub const NOT_AVAILABLE: u32 = 50;
    /// The vSwitch refused or could not complete an operation.
    pub const VSWITCH_FAILURE: u32 = 110;
    /// CHECK found the host side differs from what ADD created.
    pub const CHECK_FAILED: u32 = 111;
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
