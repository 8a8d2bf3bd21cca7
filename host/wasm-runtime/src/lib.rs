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
mod manifest;

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Store;

pub use manifest::{Capability, Manifest, Role, WIT_PACKAGE, WIT_VERSION};

/// Bindings generated from `wit/userspace-cni.wit`, one module per world;
/// the naming and ipam-chain worlds share the engine world's types and
/// capability interfaces. In modules of their own: the world `engine`
/// would otherwise clash with `wasmtime::Engine`.
mod bindings {
    pub(crate) mod engine {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "engine",
            exports: { default: async },
        });
    }
    pub(crate) mod naming {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "naming",
            exports: { default: async },
            with: {
                "userspace:cni/types": super::engine::userspace::cni::types,
                "userspace:cni/log": super::engine::userspace::cni::log,
            },
        });
    }
    pub(crate) mod ipam_chain {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "ipam-chain",
            exports: { default: async },
            with: {
                "userspace:cni/types": super::engine::userspace::cni::types,
                "userspace:cni/log": super::engine::userspace::cni::log,
            },
        });
    }
}

use bindings::engine::userspace::cni as wit;
pub use bindings::engine::AddResult;
pub use wit::journal::{OvsdbUndo, Undo, VppUndo};
pub use wit::log::Level;
pub use wit::ovsdb::OvsdbError;
pub use wit::types::{Attachment, CniError, Names, NamingRequest, Pod};
pub use wit::vpp::VppError;

/// How often the epoch ticks; deadlines are counted in these.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A component embedded in the binary at build time (see build.rs).
struct BuiltIn {
    name: &'static str,
    role: Role,
    bytes: &'static [u8],
    /// sha256 of `bytes`, hex, computed at build time.
    sha256: &'static str,
}

macro_rules! built_in {
    ($name:literal, $role:expr, $package:literal) => {
        BuiltIn {
            name: $name,
            role: $role,
            bytes: include_bytes!(concat!(env!("OUT_DIR"), "/", $package, ".wasm")),
            sha256: include_str!(concat!(env!("OUT_DIR"), "/", $package, ".sha256")),
        }
    };
}

const BUILT_IN: &[BuiltIn] = &[
    built_in!("ovs-dpdk", Role::Engine, "engine-ovs-dpdk"),
    built_in!("vpp", Role::Engine, "engine-vpp"),
    built_in!("go-compatible", Role::Naming, "naming-go-compatible"),
    built_in!("delegate", Role::IpamChain, "ipam-chain-delegate"),
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("component {component}: cannot load: {message}")]
    Load { component: String, message: String },
    #[error("component {component}: refused: {reason}")]
    Refused { component: String, reason: String },
    #[error("component {component}: exceeded its time limit of {limit:?} and was stopped")]
    Timeout { component: String, limit: Duration },
    #[error("component {component}: exceeded its memory limit of {limit} bytes")]
    MemoryLimit { component: String, limit: usize },
    #[error("component {component}: exceeded a store limit: {what}")]
    ResourceLimit { component: String, what: String },
    #[error("component {component}: trapped: {message}")]
    Trap { component: String, message: String },
    #[error("component cache {path}: {source}")]
    Cache {
        path: String,
        source: std::io::Error,
    },
}

/// IPAM delegation, the one capability an ipam-chain component has besides
/// logging.
pub trait IpamCapability: Send + 'static {
    fn ipam_exec(&mut self, command: String, network_config: String) -> Result<String, CniError>;
}

/// What an engine may ask of the host.
pub trait Capabilities: IpamCapability {
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
}

/// Bounds on one call into a component.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Which component to load for a role, and what the operator allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub source: Source,
    /// The sha256 (hex) the component must have, when pinned.
    pub sha256: Option<String>,
    /// The capabilities it may import.
    pub grants: Vec<Capability>,
    /// Host directories it may read through WASI.
    pub files: Vec<FileGrant>,
}

/// A host directory a component may read (never write), seen by the
/// component at `guest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileGrant {
    pub host: PathBuf,
    pub guest: String,
}

impl Spec {
    /// `source` with the role's default grants and no pin.
    pub fn new(role: Role, source: Source) -> Spec {
        Spec {
            source,
            sha256: None,
            grants: role.default_grants().to_vec(),
            files: Vec::new(),
        }
    }
}

/// The built-in components: (name, role).
pub fn built_ins() -> impl Iterator<Item = (&'static str, Role)> {
    BUILT_IN.iter().map(|b| (b.name, b.role))
}

/// Whether `name` is a built-in component of `role`.
pub fn is_built_in(role: Role, name: &str) -> bool {
    BUILT_IN.iter().any(|b| b.role == role && b.name == name)
}

pub struct Runtime {
    engine: wasmtime::Engine,
    cache_dir: PathBuf,
    /// Runs component calls as futures on this thread; its timer is the
    /// calls' wall-clock bound. (An `Option` only so that drop can shut it
    /// down without waiting.)
    executor: Option<tokio::runtime::Runtime>,
}

impl Drop for Runtime {
    /// A WASI file operation stuck in the blocking pool (a FIFO in a
    /// granted dir) must not hold the plugin's exit.
    fn drop(&mut self) {
        if let Some(executor) = self.executor.take() {
            executor.shutdown_background();
        }
    }
}

impl Runtime {
    /// Creates the engine; precompiled artifacts live in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Result<Runtime, Error> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        // No .eh_frame for compiled components: registering it with the
        // system unwinder (libgcc's __register_frame) at every load, and
        // unregistering it at exit, was about 8% of a call's CPU. Wasmtime
        // walks Wasm frames itself (traps keep their backtraces); only an
        // outside unwinder (gdb, perf --call-graph dwarf) loses them.
        config.native_unwind_info(false);
        let engine = wasmtime::Engine::new(&config).map_err(|e| Error::Load {
            component: "-".into(),
            message: format!("{e:?}"),
        })?;
        let executor = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::Load {
                component: "-".into(),
                message: format!("cannot start the component executor: {e}"),
            })?;
        let ticker = engine.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            ticker.increment_epoch();
        });
        Ok(Runtime {
            engine,
            cache_dir: cache_dir.into(),
            executor: Some(executor),
        })
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Compiles (or maps from the cache) a component and reads its
    /// manifest: the world it implements, the WIT version it was built
    /// against, the capabilities it imports and its package name.
    pub fn inspect(&self, source: &Source) -> Result<Inspected, Error> {
        let compiled = self.compile(source, None)?;
        Ok(Inspected {
            package: manifest::package_of(&compiled.bytes),
            manifest: Manifest::of(&self.engine, &compiled.component),
            size: compiled.bytes.len(),
            name: compiled.name,
            sha256: compiled.sha256,
        })
    }

    /// Reads and compiles `source`; a component whose sha256 is not `pin`
    /// is refused before it is compiled.
    fn compile(&self, source: &Source, pin: Option<&str>) -> Result<Compiled, Error> {
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
                        BUILT_IN
                            .iter()
                            .map(|b| b.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
            Source::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| load_error(e.to_string()))?;
                let sha256 = cache::sha256_hex(&bytes);
                (std::borrow::Cow::Owned(bytes), sha256)
            }
        };
        if let Some(pin) = pin.filter(|pin| !pin.eq_ignore_ascii_case(&sha256)) {
            return Err(Error::Refused {
                component: name,
                reason: format!("its sha256 is {sha256}, the config pins {pin}"),
            });
        }
        let component =
            cache::load(&self.engine, &self.cache_dir, &bytes, &sha256).map_err(|e| match e {
                cache::CacheError::Io(path, source) => Error::Cache { path, source },
                cache::CacheError::Wasm(message) => load_error(message),
            })?;
        Ok(Compiled {
            name,
            sha256,
            bytes,
            component,
        })
    }

    /// Loads the component `spec` names for `role`, refusing it when its
    /// hash is not the pinned one, it implements another world, it was
    /// built against an incompatible WIT version or it imports a
    /// capability the operator did not grant.
    fn load(&self, role: Role, spec: &Spec) -> Result<Loaded<'_>, Error> {
        if let Source::BuiltIn(name) = &spec.source {
            if !is_built_in(role, name) {
                return Err(Error::Load {
                    component: name.clone(),
                    message: format!(
                        "no built-in {} component of that name (built in: {})",
                        role.world(),
                        built_ins()
                            .filter(|(_, r)| *r == role)
                            .map(|(n, _)| n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let compiled = self.compile(&spec.source, spec.sha256.as_deref())?;
        let refused = |reason: String| Error::Refused {
            component: compiled.name.clone(),
            reason,
        };
        let manifest = Manifest::of(&self.engine, &compiled.component);
        manifest.admit(role, &spec.grants).map_err(refused)?;
        Ok(Loaded {
            runtime: self,
            component: compiled.component,
            name: compiled.name,
            wasi: manifest
                .capabilities
                .contains(&Capability::Wasi)
                .then(|| spec.files.clone()),
        })
    }

    /// Whether `spec` would be admitted for `role`, as a CNI call admits it.
    pub fn admits(&self, role: Role, spec: &Spec) -> Result<(), Error> {
        self.load(role, spec).map(|_| ())
    }

    /// Loads an engine component, from the cache when it was compiled before.
    pub fn load_engine(&self, spec: &Spec) -> Result<EngineComponent<'_>, Error> {
        self.load(Role::Engine, spec).map(EngineComponent)
    }

    pub fn load_naming(&self, spec: &Spec) -> Result<NamingComponent<'_>, Error> {
        self.load(Role::Naming, spec).map(NamingComponent)
    }

    pub fn load_ipam_chain(&self, spec: &Spec) -> Result<IpamChainComponent<'_>, Error> {
        self.load(Role::IpamChain, spec).map(IpamChainComponent)
    }
}

/// A component compiled (or mapped from the cache), not yet admitted.
struct Compiled {
    name: String,
    sha256: String,
    bytes: std::borrow::Cow<'static, [u8]>,
    component: Component,
}

/// A component file as the runtime sees it before granting it anything.
pub struct Inspected {
    pub name: String,
    /// `name@version` as the component's Cargo manifest gave them, when
    /// it was built with the SDK.
    pub package: Option<String>,
    pub sha256: String,
    pub size: usize,
    pub manifest: Manifest,
}

/// A loaded, admitted component, instantiated afresh for every call.
struct Loaded<'r> {
    runtime: &'r Runtime,
    component: Component,
    name: String,
    /// The directories it may read, when it imports WASI.
    wasi: Option<Vec<FileGrant>>,
}

/// How many core instances, tables and linear memories one store may
/// create: several times what a component built with the SDK needs (one
/// memory, a few tables and instances), far below a hostile component's
/// thousands.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 32;
const MAX_MEMORIES: usize = 8;
/// Elements across all of a store's tables.
const MAX_TABLE_ELEMENTS: usize = 1 << 16;

/// Bounds a store: its linear memories together may not pass `limit`
/// bytes (at instantiation too), its tables together `MAX_TABLE_ELEMENTS`
/// elements, and it may create only so many instances, tables and
/// memories. Refusals are typed, so running out is told from other traps
/// by its type, not by wasmtime's wording.
struct StoreLimiter {
    limit: usize,
    memory_bytes: usize,
    table_elements: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("its linear memories would grow to {desired} bytes, past the limit of {limit}")]
struct MemoryLimitExceeded {
    desired: usize,
    limit: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("its tables would grow to {desired} elements, past the limit of {MAX_TABLE_ELEMENTS}")]
struct TableLimitExceeded {
    desired: usize,
}

impl wasmtime::ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Saturating: a memory whose creation we were never told of cannot
        // wrap the count around.
        let total = self.memory_bytes.saturating_sub(current) + desired;
        if total > self.limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired: total,
                limit: self.limit,
            }));
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_elements.saturating_sub(current) + desired;
        if total > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(TableLimitExceeded { desired: total }));
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Where wasmtime's error says a store created more instances, tables or
/// memories than its limiter allows (`resource limit exceeded: instance
/// count too high at 65`); a unit test pins the wording.
const COUNT_LIMIT_PREFIX: &str = "resource limit exceeded: ";

struct StoreData<C> {
    caps: C,
    limits: StoreLimiter,
    component: String,
    wasi: wasmtime_wasi::WasiCtx,
    table: wasmtime::component::ResourceTable,
}

impl<C: Send> wasmtime_wasi::WasiView for StoreData<C> {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Loaded<'_> {
    /// Instantiates the component in a fresh, bounded store (`link` adds
    /// the world's imports) and runs `f` within the wall-clock limit.
    /// Returns the capabilities (with whatever they recorded) and the
    /// result.
    ///
    /// The call runs as a future: Wasm code yields at every epoch tick and
    /// WASI waits (`poll`, timers) are async, so the deadline stops a
    /// component in a host-side wait as surely as one spinning in Wasm.
    /// The capabilities are synchronous; each exchange they make has a
    /// bound of its own (OVSDB, VPP, IPAM delegates).
    fn call<C: Send + 'static, R>(
        &self,
        caps: C,
        limits: Limits,
        link: impl FnOnce(&mut Linker<StoreData<C>>) -> wasmtime::Result<()>,
        f: impl AsyncFnOnce(&mut Store<StoreData<C>>, &Linker<StoreData<C>>) -> wasmtime::Result<R>,
    ) -> (C, Result<R, Error>) {
        let engine = &self.runtime.engine;
        // WASI as the sandbox allows it: no environment, arguments, stdin
        // or network; output discarded; granted directories read-only. File
        // operations run in the executor's blocking pool, not on its one
        // thread, so one that blocks (a FIFO) cannot hold off the timer.
        let mut wasi = wasmtime_wasi::WasiCtx::builder();
        wasi.allow_blocking_current_thread(false);
        for grant in self.wasi.iter().flatten() {
            if let Err(e) =
                wasi.preopened_dir(&grant.host, &grant.guest, wasmtime_wasi::FsPerms::ReadOnly)
            {
                let message = format!("files grant {}: {e:#}", grant.host.display());
                return (
                    caps,
                    Err(Error::Load {
                        component: self.name.clone(),
                        message,
                    }),
                );
            }
        }
        let mut store = Store::new(
            engine,
            StoreData {
                caps,
                limits: StoreLimiter {
                    limit: limits.memory_bytes,
                    memory_bytes: 0,
                    table_elements: 0,
                },
                component: self.name.clone(),
                wasi: wasi.build(),
                table: wasmtime::component::ResourceTable::new(),
            },
        );
        store.limiter(|data| &mut data.limits);
        // Yield to the executor at every tick, so the timeout below can fire.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let mut linker: Linker<StoreData<C>> = Linker::new(engine);
        let linked = match self.wasi {
            Some(_) => wasmtime_wasi::p2::add_to_linker_async(&mut linker),
            None => Ok(()),
        }
        .and_then(|_| link(&mut linker));
        let result = match linked {
            Err(e) => Err(e),
            Ok(()) => {
                // The timer is made inside the executor, which drives it.
                let bounded =
                    async { tokio::time::timeout(limits.timeout, f(&mut store, &linker)).await };
                let executor = self.runtime.executor.as_ref().expect("taken only by drop");
                match executor.block_on(bounded) {
                    Ok(result) => result,
                    Err(_elapsed) => {
                        let (component, limit) = (self.name.clone(), limits.timeout);
                        return (
                            store.into_data().caps,
                            Err(Error::Timeout { component, limit }),
                        );
                    }
                }
            }
        };
        let result = result.map_err(|e| classify(self.name.clone(), e, limits));
        (store.into_data().caps, result)
    }
}

/// Tells a limit the store hit from any other trap.
fn classify(component: String, error: wasmtime::Error, limits: Limits) -> Error {
    if error.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return Error::MemoryLimit {
            component,
            limit: limits.memory_bytes,
        };
    }
    if let Some(exceeded) = error.downcast_ref::<TableLimitExceeded>() {
        return Error::ResourceLimit {
            component,
            what: exceeded.to_string(),
        };
    }
    let message = format!("{error:?}");
    if let Some((_, what)) = message.split_once(COUNT_LIMIT_PREFIX) {
        let what = what.lines().next().unwrap_or(what);
        return Error::ResourceLimit {
            component,
            what: format!(
                "{what} (a store may have {MAX_INSTANCES} instances, {MAX_TABLES} tables, \
                 {MAX_MEMORIES} memories)"
            ),
        };
    }
    Error::Trap { component, message }
}

/// What a CNI call gets back from a component: the capabilities, and the
/// component's answer unless the sandbox stopped it.
pub type Outcome<C, T> = (C, Result<Result<T, CniError>, Error>);

/// A loaded engine component (world `engine`).
pub struct EngineComponent<'r>(Loaded<'r>);

impl EngineComponent<'_> {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    fn call<C: Capabilities, R>(
        &self,
        caps: C,
        limits: Limits,
        f: impl AsyncFnOnce(&bindings::engine::Engine, &mut Store<StoreData<C>>) -> wasmtime::Result<R>,
    ) -> (C, Result<R, Error>) {
        self.0.call(
            caps,
            limits,
            |linker| {
                bindings::engine::Engine::add_to_linker::<_, HasSelf<_>>(linker, |d| d)?;
                // Engines built against 0.1.0 may import `ipam`; their calls
                // are refused (engines run after IPAM), but they must link.
                bindings::ipam_chain::userspace::cni::ipam::add_to_linker::<_, HasSelf<_>>(
                    linker,
                    |d| d,
                )
            },
            async |store, linker| {
                let instance = bindings::engine::Engine::instantiate_async(
                    &mut *store,
                    &self.0.component,
                    linker,
                )
                .await?;
                f(&instance, store).await
            },
        )
    }

    pub fn add<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        attachment: &Attachment,
    ) -> Outcome<C, AddResult> {
        self.call(caps, limits, async |engine, store| {
            engine.call_add(store, attachment).await
        })
    }

    pub fn check<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        attachment: &Attachment,
    ) -> Outcome<C, ()> {
        self.call(caps, limits, async |engine, store| {
            engine.call_check(store, attachment).await
        })
    }

    pub fn undo<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        attachment: &Attachment,
        step: &str,
    ) -> Outcome<C, ()> {
        self.call(caps, limits, async |engine, store| {
            engine.call_undo(store, attachment, step).await
        })
    }

    pub fn status<C: Capabilities>(
        &self,
        caps: C,
        limits: Limits,
        host_config: &str,
    ) -> Outcome<C, ()> {
        self.call(caps, limits, async |engine, store| {
            engine.call_status(store, host_config).await
        })
    }
}

/// A loaded naming component (world `naming`): it may only log.
pub struct NamingComponent<'r>(Loaded<'r>);

impl NamingComponent<'_> {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Asks the component to name an attachment.
    pub fn names(
        &self,
        limits: Limits,
        request: &NamingRequest,
    ) -> Result<Result<Names, CniError>, Error> {
        let linked = |linker: &mut Linker<StoreData<()>>| {
            bindings::naming::Naming::add_to_linker::<_, HasSelf<_>>(linker, |d| d)
        };
        let (_, result) = self.0.call((), limits, linked, async |store, linker| {
            bindings::naming::Naming::instantiate_async(&mut *store, &self.0.component, linker)
                .await?
                .call_name(store, request)
                .await
        });
        result
    }
}

/// A loaded IPAM-chain component (world `ipam-chain`).
pub struct IpamChainComponent<'r>(Loaded<'r>);

impl IpamChainComponent<'_> {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Returns the merged IPAM result (CNI 1.0.0 JSON).
    pub fn allocate<C: IpamCapability>(
        &self,
        caps: C,
        limits: Limits,
        network_config: &str,
    ) -> Outcome<C, String> {
        let linked = |linker: &mut Linker<StoreData<C>>| {
            bindings::ipam_chain::IpamChain::add_to_linker::<_, HasSelf<_>>(linker, |d| d)
        };
        self.0.call(caps, limits, linked, async |store, linker| {
            bindings::ipam_chain::IpamChain::instantiate_async(
                &mut *store,
                &self.0.component,
                linker,
            )
            .await?
            .call_allocate(store, network_config)
            .await
        })
    }
}

impl<C: Send + 'static> wit::types::Host for StoreData<C> {}

impl<C: Capabilities> wit::ovsdb::Host for StoreData<C> {
    fn transact(&mut self, ops: String, wait_applied: bool) -> Result<String, OvsdbError> {
        self.caps.ovsdb_transact(ops, wait_applied)
    }
}

impl<C: Capabilities> wit::vpp::Host for StoreData<C> {
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

impl<C: Capabilities> wit::journal::Host for StoreData<C> {
    fn append(&mut self, description: String, step: Undo) -> Result<(), String> {
        self.caps.journal_append(description, step)
    }
}

impl<C: IpamCapability> bindings::ipam_chain::userspace::cni::ipam::Host for StoreData<C> {
    fn exec(&mut self, command: String, network_config: String) -> Result<String, CniError> {
        self.caps.ipam_exec(command, network_config)
    }
}

impl<C: Send + 'static> wit::log::Host for StoreData<C> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 64 KiB.
    const PAGE: u64 = 1 << 16;

    /// A core module with `memories` memories of `pages` pages each and
    /// `tables` tables of `elements` funcrefs each. (wasmparser takes at
    /// most 100 of each in one module.)
    fn module(memories: u32, pages: u64, tables: u32, elements: u64) -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        let mut table_section = wasm_encoder::TableSection::new();
        for _ in 0..tables {
            table_section.table(wasm_encoder::TableType {
                element_type: wasm_encoder::RefType::FUNCREF,
                table64: false,
                minimum: elements,
                maximum: None,
                shared: false,
            });
        }
        let mut memory_section = wasm_encoder::MemorySection::new();
        for _ in 0..memories {
            memory_section.memory(wasm_encoder::MemoryType {
                minimum: pages,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        module.section(&table_section).section(&memory_section);
        module.finish()
    }

    /// Instantiates `module` `times` times in one store with the limiter
    /// a component call gets (a memory limit of 1 MiB).
    fn instantiate(module: &[u8], times: usize) -> Result<(), Error> {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, module).expect("a valid module");
        let mut store = Store::new(
            &engine,
            StoreLimiter {
                limit: 1 << 20,
                memory_bytes: 0,
                table_elements: 0,
            },
        );
        store.limiter(|limiter| limiter);
        let limits = Limits {
            timeout: Duration::from_secs(1),
            memory_bytes: 1 << 20,
        };
        for _ in 0..times {
            wasmtime::Instance::new(&mut store, &module, &[])
                .map_err(|e| classify("bloated".into(), e, limits))?;
        }
        Ok(())
    }

    fn store_limit(result: Result<(), Error>) -> String {
        match result {
            Err(Error::ResourceLimit { what, .. }) => what,
            other => panic!("expected a store limit, got {other:?}"),
        }
    }

    #[test]
    fn what_a_component_needs_fits() {
        instantiate(&module(1, 1, 4, 1000), 1).unwrap();
        instantiate(&module(0, 0, 0, 0), MAX_INSTANCES).unwrap();
    }

    /// A thousand of each, from ten instances of a module with a hundred,
    /// are refused at the store's count; wasmtime's wording is what
    /// `classify` recognises (this test fails when an upgrade changes it).
    #[test]
    fn a_thousand_instances_tables_or_memories_are_refused() {
        let what = store_limit(instantiate(&module(0, 0, 0, 0), 1000));
        assert!(what.contains("instance count too high"), "{what}");
        let what = store_limit(instantiate(&module(0, 0, 100, 0), 10));
        assert!(what.contains("table count too high"), "{what}");
        let what = store_limit(instantiate(&module(100, 0, 0, 0), 10));
        assert!(what.contains("memory count too high"), "{what}");
    }

    /// The memory limit holds across memories, and table elements across
    /// tables.
    #[test]
    fn limits_hold_across_a_stores_memories_and_tables() {
        let half = (1 << 20) / 2 / PAGE;
        instantiate(&module(2, half, 0, 0), 1).unwrap();
        match instantiate(&module(3, half, 0, 0), 1) {
            Err(Error::MemoryLimit { limit, .. }) => assert_eq!(limit, 1 << 20),
            other => panic!("expected the memory limit, got {other:?}"),
        }
        let what = store_limit(instantiate(&module(0, 0, 2, 40_000), 1));
        assert!(what.contains("tables would grow to 80000"), "{what}");
    }
}
