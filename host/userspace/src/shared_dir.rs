//! The shared dir: where the socket and the container data live, checked
//! before ADD journals anything, made (and bind-mounted on a short path
//! when the socket path would not fit a unix socket) once the undo of
//! each step is journalled.

use std::os::unix::fs::DirBuilderExt;

use cni_protocol::{codes, CniError, Environment};
use serde_json::Value;

use crate::names::Names;

/// Refuses a shared dir (or a directory between it and the base dir) that
/// is a symlink or not a directory, and files of another container.
/// Returns the directories ADD must create, outermost first.
pub(crate) fn check(env: &Environment, names: &Names) -> Result<Vec<String>, CniError> {
    if crate::policy::node().is_vswitch_socket(&names.socket_path) {
        return Err(CniError::invalid_config(format!(
            "the socket path {} is a vSwitch control socket the node policy lists",
            names.socket_path
        )));
    }
    let mut missing = Vec::new();
    let mut dir = std::path::Path::new(&names.shared_dir);
    loop {
        match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(CniError::new(
                    codes::CONTAINER_DATA_FAILURE,
                    format!(
                        "{} exists and is not a directory (a symlink is not followed)",
                        dir.display()
                    ),
                    "",
                ))
            }
            Ok(_) => break,
            Err(_) => missing.push(dir.display().to_string()),
        }
        if dir.as_os_str() == names.base_dir.as_str() {
            break;
        }
        match dir.parent() {
            Some(parent) if parent.starts_with(&names.base_dir) => dir = parent,
            _ => break,
        }
    }
    if missing.is_empty() {
        refuse_foreign_files(env, names)?;
    }
    missing.reverse();
    Ok(missing)
}

/// The shared dir, without a stale socket (their undo is already journalled).
pub(crate) fn prepare(names: &Names) -> Result<(), CniError> {
    let dir_error = |e: std::io::Error| {
        CniError::new(
            codes::CONTAINER_DATA_FAILURE,
            format!("shared dir {}", names.shared_dir),
            e.to_string(),
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(&names.shared_dir)
        .map_err(dir_error)?;
    if let Some(short) = &names.socket_mount {
        mount(&names.shared_dir, short)?;
    }
    // A socket left by an earlier run (or a vSwitch that exited) makes
    // the vSwitch fail with "Address already in use".
    match std::fs::remove_file(&names.socket_path) {
        Ok(()) => tracing::info!(path = %names.socket_path, "removed a stale socket file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(dir_error(e)),
    }
    Ok(())
}

/// Bind-mounts the shared dir on `short`, so the vSwitch gets a socket
/// path that fits a unix socket (its undo is already journalled).
fn mount(shared_dir: &str, short: &str) -> Result<(), CniError> {
    let failed = |what: &str, e: std::io::Error| {
        CniError::new(
            codes::CONTAINER_DATA_FAILURE,
            format!("cannot {what} {short} for the sockets of {shared_dir}"),
            e.to_string(),
        )
    };
    if let Some(parent) = std::path::Path::new(short).parent() {
        std::fs::create_dir_all(parent).map_err(|e| failed("create the parent of", e))?;
    }
    match std::fs::DirBuilder::new().mode(0o750).create(short) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(failed("create", e)),
        _ => {}
    }
    // A leftover mount (an ADD killed after mounting) is replaced.
    let _ = rustix::mount::unmount(short, rustix::mount::UnmountFlags::DETACH);
    rustix::mount::mount_bind(shared_dir, short).map_err(|e| failed("bind-mount on", e.into()))?;
    crate::crash::point("after bind-mounting the shared dir");
    Ok(())
}

/// Two container IDs with the same first 12 characters get the same
/// shared dir and socket names (the Go plugin's naming). Refuse the second
/// rather than take over the first one's socket.
fn refuse_foreign_files(env: &Environment, names: &Names) -> Result<(), CniError> {
    let Some(bytes) = read_capped(&names.data_path) else {
        return Ok(());
    };
    let owner = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|doc| doc["containerId"].as_str().map(str::to_string));
    match owner {
        Some(owner) if owner != env.container_id => Err(CniError::new(
            codes::INVALID_NETWORK_CONFIG,
            format!(
                "container {} would reuse the socket and data of container {owner}: their IDs share the first 12 characters",
                env.container_id
            ),
            format!(
                "{} is in use; set memif/vhost socketfile or use distinct container IDs",
                names.data_path
            ),
        )),
        _ => Ok(()),
    }
}

/// Container data is a few KiB; a bigger file is not one (it will be
/// replaced), and is not read further.
const MAX_CONTAINER_DATA: u64 = 64 << 10;

/// A file in a dir the pod can write, read as root: never through a link
/// (a link to /dev/zero would hold the node's lock forever), never more
/// than MAX_CONTAINER_DATA bytes, never blocking on a FIFO. `None` when it
/// is not such a file.
fn read_capped(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_CONTAINER_DATA + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_CONTAINER_DATA).then_some(bytes)
}

/// Whether `path` is a file below `dir`, named without `.`, `..` or empty
/// parts (so that it cannot climb out).
pub(crate) fn holds(dir: &str, path: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    match path
        .strip_prefix(dir)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(rest) => rest
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".."),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::holds;

    #[test]
    fn only_paths_below_the_dir_are_held() {
        assert!(holds("/run/base/c1", "/run/base/c1/memif.sock"));
        assert!(holds("/run/base/c1/", "/run/base/c1/a/b"));
        for outside in [
            "/run/base/c1",
            "/run/base/c1/",
            "/run/base/c1/../../etc/passwd",
            "/run/base/c1/./x",
            "/run/base/c1//x",
            "/run/base/c10/x",
            "/etc/kubernetes/pki/ca.key",
            "relative",
        ] {
            assert!(!holds("/run/base/c1", outside), "{outside}");
        }
    }
}
