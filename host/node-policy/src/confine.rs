//! Whether a host path lies inside the roots a policy allows, judged the
//! way the plugin will use it: as root, so no directory on the way may be
//! one someone else could write (they could swap in a link after the
//! check), and its end is never a symlink.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Longest path a config may name.
pub(crate) const MAX_PATH: usize = 1024;

/// What the plugin does with the path, which decides what may be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory the plugin creates, or writes and removes in.
    Dir,
    /// A file the plugin creates or appends to (a log, device info).
    WrittenFile,
    /// A file the plugin reads as root (a kubeconfig, a component).
    ReadFile,
    /// A vSwitch socket the plugin connects to.
    Socket,
    /// A pod's socket volume: the pod writes in it, so only the way to it
    /// must be root's.
    Volume,
}

/// Absolute, no `.` or `..` component, no NUL, not over-long.
pub(crate) fn lexical(value: &str) -> Result<(), String> {
    if value.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    if !value.starts_with('/') || value.contains('\0') {
        return Err("is not an absolute path".into());
    }
    if value.split('/').any(|part| part == "." || part == "..") {
        return Err("holds a '.' or '..' component".into());
    }
    Ok(())
}

/// How a path must relate to the roots of its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// One of them: a vSwitch socket, the kubelet dir.
    Exact,
    /// One of them or below one.
    Below,
    /// Below one, never one itself: a pod's volume, which the pod writes.
    StrictlyBelow,
}

pub(crate) fn confine(
    value: &str,
    kind: Kind,
    matching: Match,
    roots: &[PathBuf],
) -> Result<(), String> {
    lexical(value)?;
    if roots.is_empty() {
        return Err("is not allowed: the list is empty".into());
    }
    // `x/link/` would follow `link`: judge the path without the slash.
    let trimmed = value.trim_end_matches('/');
    let path = Path::new(if trimmed.is_empty() { "/" } else { trimmed });
    let (existing, rest) = deepest_existing(path)?;
    let meta = std::fs::symlink_metadata(&existing)
        .map_err(|e| format!("cannot be checked: {}: {e}", existing.display()))?;
    let at_end = rest.as_os_str().is_empty();
    if at_end && meta.file_type().is_symlink() {
        return Err("is a symlink".into());
    }
    // The directory whose chain must be root's alone.
    let trusted_dir = if at_end {
        match kind {
            Kind::Dir if meta.is_dir() => existing.clone(),
            Kind::Dir | Kind::Volume if !meta.is_dir() => {
                return Err("is not a directory".into());
            }
            // kubelet makes volumes as root; one a tenant made (in a
            // sticky dir) could be renamed away under the plugin.
            Kind::Volume if !trusted_owner(meta.uid()) => {
                return Err(format!("is owned by uid {}", meta.uid()));
            }
            Kind::Volume => parent(&existing),
            Kind::WrittenFile | Kind::ReadFile if !meta.file_type().is_file() => {
                return Err("is not a regular file".into());
            }
            Kind::WrittenFile | Kind::ReadFile if !trusted_owner(meta.uid()) => {
                return Err(format!("is owned by uid {}", meta.uid()));
            }
            Kind::WrittenFile | Kind::ReadFile if meta.mode() & 0o022 != 0 => {
                return Err(format!(
                    "is writable by others (mode {:o})",
                    meta.mode() & 0o7777
                ));
            }
            Kind::WrittenFile if meta.nlink() != 1 => {
                return Err(format!("has {} hard links", meta.nlink()));
            }
            Kind::Socket if !meta.file_type().is_socket() => {
                return Err("is not a socket".into());
            }
            _ => parent(&existing),
        }
    } else if existing.is_dir() {
        // A link on the way counts if root made it (checked below) and
        // where it leads is inside a root.
        existing.clone()
    } else {
        return Err(format!("{} is not a directory", existing.display()));
    };
    let resolved = std::fs::canonicalize(&existing)
        .map_err(|e| format!("cannot be resolved: {e}"))?
        .join(&rest);
    // Which entry lets it in, if any: named exactly, or as a root.
    let admitted = roots.iter().find_map(|entry| {
        let (root, any_below) = split_entry(entry);
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let matching = if any_below { Match::Below } else { matching };
        let inside = match matching {
            Match::Exact => resolved == root,
            Match::Below => resolved.starts_with(&root),
            Match::StrictlyBelow => resolved.starts_with(&root) && resolved != root,
        };
        inside.then_some(matching)
    });
    // A socket or dir the operator named exactly is trusted as named (a
    // vSwitch's own dir may belong to its user or group); anything else
    // must lie under directories only root can write.
    if admitted != Some(Match::Exact) {
        // What the plugin will create must not go where others can create
        // first (a link, in a sticky dir like /tmp).
        let mode = std::fs::metadata(&trusted_dir).map_or(0, |m| m.mode());
        if !at_end && mode & 0o022 != 0 {
            return Err(format!(
                "does not exist, and {} where it would be made is writable by others",
                trusted_dir.display()
            ));
        }
        if let Some(why) = root_owned::untrusted_dir(&trusted_dir) {
            return Err(format!(
                "is not under directories only root can write: {why}"
            ));
        }
    }
    if admitted.is_none() {
        let shown = if resolved == path {
            String::new()
        } else {
            format!(" (it resolves to {})", resolved.display())
        };
        return Err(match matching {
            Match::Exact => format!("is not one of those allowed{shown}"),
            Match::Below => format!("is outside the allowed roots{shown}"),
            Match::StrictlyBelow => format!("is not strictly below an allowed root{shown}"),
        });
    }
    Ok(())
}

/// The longest prefix of `path` that exists (not following a link at its
/// end), and the part below it.
fn deepest_existing(path: &Path) -> Result<(PathBuf, PathBuf), String> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = existing.file_name() else {
                    return Err("has no existing directory above it".into());
                };
                rest.push(name.to_os_string());
                existing.pop();
            }
            Err(e) => return Err(format!("cannot be checked: {e}")),
        }
    }
    Ok((existing, rest.iter().rev().collect()))
}

fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// A policy entry and whether it ends in `/**` (anything below it, for the
/// lists matched exactly: a lab or test node's sockets in temp dirs).
pub(crate) fn split_entry(entry: &Path) -> (&Path, bool) {
    match entry.to_str().and_then(|e| e.strip_suffix("/**")) {
        Some("") => (Path::new("/"), true),
        Some(prefix) => (Path::new(prefix), true),
        None => (entry, false),
    }
}
