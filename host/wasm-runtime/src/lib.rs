//! The sandbox the components run in.
//!
//! A [`Runtime`] owns one wasmtime engine (component model, epoch
//! interruption) and a cache of precompiled components keyed by the
//! component's sha256, the wasmtime version and the engine's compilation
//! settings: a component is compiled once, on first use, and every later
//! CNI call only maps the artifact. Each call gets a fresh store with a
//! wall-clock deadline and a memory limit; a trap, a timeout or a limit
//! becomes an [`Error`], never a crash of the plugin.
//!
//! What a component may do to the host is the [`Capabilities`] trait: the
//! binary wires it to the real OVSDB client, journal and IPAM delegate.

mod cache;

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};

/// Bindings generated from `wit/userspace-cni.wit`. In a module of their
/// own: the world `engine` would otherwise clash with `wasmtime::Engine`.
mod bindings {
    wasmtime::component::bindgen!({ path: "../../wit", world: "engine" });
}

pub use bindings::userspace::cni::journal::{OvsdbUndo, Undo, VppUndo};
pub use bindings::userspace::cni::log::Level;
pub use bindings::userspace::cni::ovsdb::OvsdbError;
pub use bindings::userspace::cni::types::{Attachment, CniError};
pub use bindings::userspace::cni::vpp::VppError;
pub use bindings::AddResult;

/// How often the epoch ticks; deadlines are counted in these.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A component embedded in the binary at build time (see build.rs).
struct BuiltIn {
    name: &'static str,
    bytes: &'static [u8],
    /// sha256 of `bytes`, hex, computed at build time.
    sha256: &'static str,
}

const BUILT_IN: &[BuiltIn] = &[
    BuiltIn {
        name: "ovs-dpdk",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/engine-ovs-dpdk.wasm")),
        sha256: include_str!(concat!(env!("OUT_DIR"), "/engine-ovs-dpdk.sha256")),
    },
    BuiltIn {
        name: "vpp",
        bytes: include_bytes!(concat!(env!("OUT_DIR"), "/engine-vpp.wasm")),
        sha256: include_str!(concat!(env!("OUT_DIR"), "/engine-vpp.sha256")),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("component {component}: cannot load: {message}")]
    Load { component: String, message: String },
    #[error("component {component}: exceeded its time limit of {limit:?} and was stopped")]
    Timeout { component: String, limit: Duration },
    #[error("component {component}: exceeded its memory limit of {limit} bytes")]
    MemoryLimit { component: String, limit: usize },
    #[error("component {component}: trapped: {message}")]
    Trap { component: String, message: String },
    #[error("component cache {path}: {source}")]
    Cache {
        path: String,
        source: std::io::Error,
    },
}

/// What a component may ask of the host.
pub trait Capabilities: Send + 'static {
    fn ovsdb_transact(&mut self, ops: String, wait_applied: bool) -> Result<String, OvsdbError>;
    fn vpp_knows(&mut self, name_crc: String) -> Result<bool, VppError>;
    fn vpp_request(&mut self, name_crc: String, body: Vec<u8>) -> Result<Vec<u8>, VppError>;
    fn vpp_dump(
        &mut self,
        name_crc: String,
        body: Vec<u8>,
        details_name_crc: String,
    ) -> Result<Vec<Vec<u8>>, VppError>;
    fn journal_append(&mut self, description: String, step: Undo) -> Result<(), String>;
    fn ipam_exec(&mut self, command: String, network_config: String) -> Result<String, CniError>;
}

/// Bounds on one call into a component.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
}

/// Where a component comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One of the components embedded in this binary, by name.
    BuiltIn(String),
    /// A component file on disk.
    File(PathBuf),
}

impl Source {
    pub fn name(&self) -> String {
        match self {
            Source::BuiltIn(name) => name.clone(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// Names of the built-in components.
pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|b| b.name)
}

pub struct Runtime {
    engine: wasmtime::Engine,
    cache_dir: PathBuf,
}

impl Runtime {
    /// Creates the engine; precompiled artifacts live in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Result<Runtime, Error> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).map_err(|e| Error::Load {
            component: "-".into(),
            message: format!("{e:?}"),
        })?;
        let ticker = engine.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            ticker.increment_epoch();
        });
        Ok(Runtime {
            engine,
            cache_dir: cache_dir.into(),
        })
    }

    /// Loads an engine component, from the cache when it was compiled before.
    pub fn load_engine(&self, source: &Source) -> Result<EngineComponent<'_>, Error> {
        let name = source.name();
        let load_error = |message: String| Error::Load {
            component: name.clone(),
            message,
        };
        let (bytes, sha256): (std::borrow::Cow<'static, [u8]>, String) = match source {
            Source::BuiltIn(wanted) => BUILT_IN
                .iter()
                .find(|b| b.name == wanted)
                .map(|b| (std::borrow::Cow::Borrowed(b.bytes), b.sha256.to_string()))
                .ok_or_else(|| {
                    load_error(format!(
                        "no built-in component of that name (built in: {})",
                        built_in_names().collect::<Vec<_>>().join(", ")
                    ))
                })?,
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| load_error(e.to_string()))?;
                let sha256 = cache::sha256_hex(&bytes);
                (std::borrow::Cow::Owned(bytes), sha256)
            }
        };
        let component =
            cache::load(&self.engine, &self.cache_dir, &bytes, &sha256).map_err(|e| match e {
                cache::CacheError::Io(path, source) => Error::Cache { path, source },
                cache::CacheError::Wasm(message) => load_error(message),
            })?;
        Ok(EngineComponent {
            runtime: self,
            component,
            name,
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }
}

/// A loaded engine component, ready to be instantiated per call.
pub struct EngineComponent<'r> {
    runtime: &'r Runtime,
    component: Component,
    name: String,
}

struct StoreData<C> {
    caps: C,
    limits: StoreLimits,
    component: String,
}

impl<'r> EngineComponent<'r> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Instantiates the component in a fresh, bounded store and runs `f`.
    /// Returns the capabilities (with whatever they recorded) and the result.
    fn call<C: Capabilities, R>(
        &self,
        caps: C,
        limits: Limits,
        f: impl FnOnce(&bindings::Engine, &mut Store<StoreData<C>>) -> wasmtime::Result<R>,
    ) -> (C, Result<R, Error>) {
        let engine = &self.runtime.engine;
        let mut store = Store::new(
            engine,
            StoreData {
                caps,
                limits: StoreLimitsBuilder::new()
                    .memory_size(limits.memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
                component: self.name.clone(),
            },
        );
        store.limiter(|data| &mut data.limits);
        store.set_epoch_deadline((limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
        let mut linker: Linker<StoreData<C>> = Linker::new(engine);
        let result = bindings::Engine::add_to_linker::<_, HasSelf<_>>(&mut linker, |d| d)
            .and_then(|_| bindings::Engine::instantiate(&mut store, &self.component, &linker))
            .and_then(|instance| f(&instance, &mut store));
        let result = result.map_err(|e| self.classify(e, limits));
        (store.into_data().caps, result)
    }

    fn classify(&self, error: wasmtime::Error, limits: Limits) -> Error {
        let component = self.name.clone();
        if matches!(
            error.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        ) {
            return Error::Timeout {
                component,
                limit: limits.timeout,
            };
        }
        let message = format!("{error:?}");
        if message.contains("forcing trap when growing memory")
            || message.contains("memory minimum size")
        {
            return Error::MemoryLimit {
                component,
                limit: limits.memory_bytes,
            };
        }
        Error::Trap { component, message }
    }

    pub fn add<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        attachment: &Attachment,
    ) -> (C, Result<Result<AddResult, CniError>, Error>) {
        self.call(caps, limits, |engine, store| {
            engine.call_add(store, attachment)
        })
    }

    pub fn check<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        attachment: &Attachment,
    ) -> (C, Result<Result<(), CniError>, Error>) {
        self.call(caps, limits, |engine, store| {
            engine.call_check(store, attachment)
        })
    }

    pub fn undo<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        attachment: &Attachment,
        step: &str,
    ) -> (C, Result<Result<(), CniError>, Error>) {
        self.call(caps, limits, |engine, store| {
            engine.call_undo(store, attachment, step)
        })
    }

    pub fn status<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        host_config: &str,
    ) -> (C, Result<Result<(), CniError>, Error>) {
        self.call(caps, limits, |engine, store| {
            engine.call_status(store, host_config)
        })
    }
}

impl<C: Capabilities> bindings::userspace::cni::types::Host for StoreData<C> {}

impl<C: Capabilities> bindings::userspace::cni::ovsdb::Host for StoreData<C> {
    fn transact(&mut self, ops: String, wait_applied: bool) -> Result<String, OvsdbError> {
        self.caps.ovsdb_transact(ops, wait_applied)
    }
}

impl<C: Capabilities> bindings::userspace::cni::vpp::Host for StoreData<C> {
    fn knows(&mut self, name_crc: String) -> Result<bool, VppError> {
        self.caps.vpp_knows(name_crc)
    }

    fn request(&mut self, name_crc: String, body: Vec<u8>) -> Result<Vec<u8>, VppError> {
        self.caps.vpp_request(name_crc, body)
    }

    fn dump(
        &mut self,
        name_crc: String,
        body: Vec<u8>,
        details_name_crc: String,
    ) -> Result<Vec<Vec<u8>>, VppError> {
        self.caps.vpp_dump(name_crc, body, details_name_crc)
    }
}

impl<C: Capabilities> bindings::userspace::cni::journal::Host for StoreData<C> {
    fn append(&mut self, description: String, step: Undo) -> Result<(), String> {
        self.caps.journal_append(description, step)
    }
}

impl<C: Capabilities> bindings::userspace::cni::ipam::Host for StoreData<C> {
    fn exec(&mut self, command: String, network_config: String) -> Result<String, CniError> {
        self.caps.ipam_exec(command, network_config)
    }
}

impl<C: Capabilities> bindings::userspace::cni::log::Host for StoreData<C> {
    fn log(&mut self, level: Level, message: String) {
        let component = self.component.as_str();
        match level {
            Level::Error => tracing::error!(component, "{message}"),
            Level::Warn => tracing::warn!(component, "{message}"),
            Level::Info => tracing::info!(component, "{message}"),
            Level::Debug => tracing::debug!(component, "{message}"),
            Level::Trace => tracing::trace!(component, "{message}"),
        }
    }
}
