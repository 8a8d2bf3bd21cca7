//! Removing what a record journals, as root, in directories a pod may
//! write: the path is walked from an operator's root with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so a directory the pod
//! swapped for a link since ADD stops the removal instead of redirecting
//! it, and the last component is unlinked, never followed.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

/// What a journal step removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    File,
    /// A directory, only when empty (a pod's own files keep it).
    EmptyDir,
}

/// Removes `path` when it lies below one of `roots`; `Ok` when it is gone
/// already or (for a directory) not empty.
pub(crate) fn beneath<'a>(
    roots: impl Iterator<Item = &'a PathBuf>,
    path: &str,
    what: What,
) -> Result<(), String> {
    crate::confine::lexical(path)?;
    let path = Path::new(path);
    // The nearest root: links above it are the operator's and followed
    // (`/var/run` is one on Debian), none below it is.
    let (root, below) = roots
        .map(|entry| crate::confine::split_entry(entry).0)
        .filter_map(|root| relative(root, path).map(|below| (root, below)))
        .min_by_key(|(_, below)| below.components().count())
        .ok_or_else(|| "is outside every root where attachments live".to_string())?;
    let (Some(parent), Some(name)) = (below.parent(), below.file_name()) else {
        // A root ADD made because it was missing (a sharedDir base): the
        // operator's path, removed when empty.
        return match what {
            What::EmptyDir => done(rustix::fs::unlinkat(CWD, root, AtFlags::REMOVEDIR)),
            What::File => Err("is a root itself".into()),
        };
    };
    // The root is the operator's: links on the way to it are followed.
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root_fd = match rustix::fs::open(root, dir_flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", root.display())),
    };
    let parent_fd: OwnedFd = if parent.as_os_str().is_empty() {
        root_fd
    } else {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(&root_fd, parent, dir_flags, Mode::empty(), resolve) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(Errno::LOOP | Errno::XDEV) => {
                return Err(format!(
                    "a symlink or a way out of {} is on the way: not followed",
                    root.display()
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let flags = match what {
        What::File => AtFlags::empty(),
        What::EmptyDir => AtFlags::REMOVEDIR,
    };
    done(rustix::fs::unlinkat(&parent_fd, name, flags))
}

fn done(unlinked: rustix::io::Result<()>) -> Result<(), String> {
    match unlinked {
        Ok(()) | Err(Errno::NOENT) | Err(Errno::NOTEMPTY) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// `path` below `root`, as written or as the root resolves (a record may
/// hold `/var/run/...` where the root says `/run/...`).
fn relative(root: &Path, path: &Path) -> Option<PathBuf> {
    if let Ok(below) = path.strip_prefix(root) {
        return Some(below.to_path_buf());
    }
    let real = std::fs::canonicalize(root).ok()?;
    path.strip_prefix(real).ok().map(Path::to_path_buf)
}
