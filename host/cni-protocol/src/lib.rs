//! The CNI protocol as a runtime speaks it to a plugin: the environment,
//! the spec versions, results in every supported version, and errors.
//!
//! We looked at `rscni-plugin` first: it owns the process entry point
//! (reads stdin without a size bound, prints its own results and errors)
//! and has one result shape, with no conversion to the 0.3.x / 0.4.0
//! shapes that runtimes still ask for, so it does not fit a plugin that
//! must answer every version byte for byte. These types are small and
//! follow the spec (SPEC.md, 1.1.0 and the 0.x conventions documents).

mod env;
mod error;
mod result;
mod version;

pub use env::{CniArgs, Command, Environment};
pub use error::{codes, CniError};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::{version_reply, Version, SUPPORTED_VERSIONS};
