//! Precompiled components on disk.
//!
//! Key: sha256 of the component bytes, the wasmtime version and a hash of
//! the engine's compilation settings. An artifact is native code, mapped
//! with wasmtime's (unsafe) deserializer: so it is written root-only (dir
//! 0700, file 0600, temp file and rename, never seen half-written), and
//! mapped only when nobody else could have written it (`root_owned`: the
//! file and every dir above it). Anything else is recompiled from the
//! embedded or pinned bytes; an untrusted dir is not written to at all.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

pub(crate) enum CacheError {
    Io(String, std::io::Error),
    Wasm(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |e| CacheError::Io(path.display().to_string(), e)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256` is the hex digest of the component's bytes.
pub(crate) fn artifact_path(engine: &wasmtime::Engine, dir: &Path, sha256: &str) -> PathBuf {
    let mut settings = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    dir.join(format!(
        "{}-wasmtime{}-{:016x}.cwasm",
        sha256,
        env!("USERSPACE_WASMTIME_VERSION"),
        settings.finish()
    ))
}

pub(crate) fn load(
    engine: &wasmtime::Engine,
    dir: &Path,
    bytes: &[u8],
    sha256: &str,
) -> Result<Component, CacheError> {
    let path = artifact_path(engine, dir, sha256);
    match root_owned::open_trusted(&path) {
        Err(root_owned::Refused::Missing) => {}
        Ok(_checked) => {
            // SAFETY: nobody but root could have written the artifact
            // (checked just now: the file and every dir above it); root
            // writes it only through `compile_into` below (temp file +
            // rename, so never partial); wasmtime checks its header,
            // version and engine settings.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    "discarding unusable cached artifact: {e:?}"
                ),
            }
        }
        Err(root_owned::Refused::Untrusted(why)) => tracing::warn!(
            path = %path.display(),
            "cached artifact not trusted ({why}): recompiling from the component's bytes"
        ),
    }
    compile_into(engine, dir, &path, bytes)
}

fn compile_into(
    engine: &wasmtime::Engine,
    dir: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<Component, CacheError> {
    tracing::info!(path = %path.display(), "compiling component into the cache");
    let artifact = engine
        .precompile_component(bytes)
        .map_err(|e| CacheError::Wasm(format!("{e:?}")))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    if let Some(why) = root_owned::untrusted_dir(dir) {
        tracing::warn!(dir = %dir.display(), "cache dir not trusted ({why}): compiled for this call only");
        // SAFETY: `artifact` was produced just now by this engine's
        // `precompile_component` and has not left this process's memory.
        return unsafe { Component::deserialize(engine, &artifact) }
            .map_err(|e| CacheError::Wasm(format!("{e:?}")));
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(&artifact)
        .and_then(|_| file.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    // SAFETY: `artifact` was produced just now by this engine's
    // `precompile_component` and has not left this process's memory.
    unsafe { Component::deserialize(engine, &artifact) }
        .map_err(|e| CacheError::Wasm(format!("{e:?}")))
}
