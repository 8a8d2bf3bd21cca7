//! Whether nobody but the user this process runs as (root, for the
//! plugin) could have written a file: the file itself and every directory
//! above it. The plugin asks before it maps native code from its component
//! cache or replays an attachment record's journal as root: a file that
//! someone else could have planted or swapped is not used.
//!
//! The rule: the file is a regular file (a symlink is not followed), owned
//! by root or this user, writable by nobody else; each directory from it
//! up to `/` is owned by root or this user and writable by nobody else,
//! or is sticky (like `/tmp`: others cannot rename or remove what they do
//! not own). A symlinked directory on the way counts only if root or this
//! user owns the link, and the directories it leads to pass the same rule.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, RawMode};

/// Why a file was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// There is nothing at the path.
    Missing,
    /// Someone else could have written it: why.
    Untrusted(String),
}

/// Opens `path` for reading (a symlink is not followed) when nobody but
/// root could have written it. The open file is the one checked: reading
/// it needs no second open by path.
pub fn open_trusted(path: &Path) -> Result<std::fs::File, Refused> {
    open_checked(path, OFlags::RDONLY).map(|(file, _)| file)
}

/// Opens `path` for appending under the same rule as [`open_trusted`],
/// and only when it has no other name (one hard link): what is appended
/// goes to a file a later [`open_trusted`] reads, and nowhere else. A
/// FIFO is refused without waiting for a reader. Also returns the file's
/// length, from the stat it was checked by.
pub fn open_trusted_for_append(path: &Path) -> Result<(std::fs::File, u64), Refused> {
    let (file, stat) = open_checked(path, OFlags::WRONLY | OFlags::APPEND)?;
    if stat.st_nlink != 1 {
        return Err(Refused::Untrusted(format!(
            "{} has {} hard links",
            path.display(),
            stat.st_nlink
        )));
    }
    Ok((file, stat.st_size as u64))
}

/// `path` opened with `access` under the rule, and the stat it was
/// checked by.
fn open_checked(path: &Path, access: OFlags) -> Result<(std::fs::File, rustix::fs::Stat), Refused> {
    let untrusted = |why: String| Err(Refused::Untrusted(why));
    let flags = access | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Err(Refused::Missing),
        Err(rustix::io::Errno::LOOP) => {
            return untrusted(format!("{} is a symlink", path.display()))
        }
        Err(e) => return untrusted(format!("{}: {e}", path.display())),
    };
    let stat = match rustix::fs::fstat(fd.as_fd()) {
        Ok(stat) => stat,
        Err(e) => return untrusted(format!("{}: {e}", path.display())),
    };
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return untrusted(format!("{} is not a regular file", path.display()));
    }
    if let Some(why) = owner_and_mode(path, stat.st_uid, stat.st_mode, false) {
        return untrusted(why);
    }
    match untrusted_dir(path.parent().unwrap_or(Path::new("/"))) {
        Some(why) => untrusted(why),
        None => Ok((std::fs::File::from(fd), stat)),
    }
}

/// Why directory `dir` (and every directory above it) cannot be trusted;
/// `None` when it can.
pub fn untrusted_dir(dir: &Path) -> Option<String> {
    let canonical = match std::fs::canonicalize(dir) {
        Ok(canonical) => canonical,
        Err(e) => return Some(format!("{}: {e}", dir.display())),
    };
    // The path as given (symlinks on it must be ours), then where it leads
    // when that is elsewhere.
    chain(dir, true).or_else(|| {
        (canonical != dir)
            .then(|| chain(&canonical, false))
            .flatten()
    })
}

fn chain(dir: &Path, links_allowed: bool) -> Option<String> {
    let mut at: PathBuf = dir.to_path_buf();
    loop {
        let stat = match rustix::fs::lstat(&at) {
            Ok(stat) => stat,
            Err(e) => return Some(format!("{}: {e}", at.display())),
        };
        match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::Directory => {
                if let Some(why) = owner_and_mode(&at, stat.st_uid, stat.st_mode, true) {
                    return Some(why);
                }
            }
            rustix::fs::FileType::Symlink if links_allowed => {
                if !trusted_owner(stat.st_uid) {
                    return Some(format!(
                        "{} is a symlink owned by uid {}",
                        at.display(),
                        stat.st_uid
                    ));
                }
            }
            _ => return Some(format!("{} is not a directory", at.display())),
        }
        match at.parent() {
            Some(parent) if parent != at => at = parent.to_path_buf(),
            _ => return None,
        }
        if at.as_os_str().is_empty() {
            return None;
        }
    }
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

fn owner_and_mode(path: &Path, uid: u32, mode: RawMode, is_dir: bool) -> Option<String> {
    if !trusted_owner(uid) {
        return Some(format!("{} is owned by uid {uid}", path.display()));
    }
    let others_write = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    if others_write && !(is_dir && sticky) {
        return Some(format!(
            "{} is writable by others (mode {:o})",
            path.display(),
            mode & 0o7777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Why `path` is refused, if it is.
    fn untrusted_file(path: &Path) -> Option<String> {
        match open_trusted(path) {
            Ok(_) => None,
            Err(Refused::Missing) => Some("missing".into()),
            Err(Refused::Untrusted(why)) => Some(why),
        }
    }

    #[test]
    fn a_missing_file_is_told_apart() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            open_trusted(&tmp.path().join("none")).err(),
            Some(Refused::Missing)
        );
    }

    #[test]
    fn a_private_file_in_private_dirs_is_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a");
        std::fs::write(&file, "x").unwrap();
        chmod(&file, 0o600);
        assert_eq!(untrusted_file(&file), None);
    }

    #[test]
    fn what_others_could_have_written_is_not_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a");
        std::fs::write(&file, "x").unwrap();
        chmod(&file, 0o666);
        assert!(untrusted_file(&file)
            .unwrap()
            .contains("writable by others"));
        chmod(&file, 0o600);

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(untrusted_file(&link).unwrap().contains("symlink"));

        let open_dir = tmp.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::write(open_dir.join("b"), "x").unwrap();
        chmod(&open_dir.join("b"), 0o600);
        chmod(&open_dir, 0o777);
        assert!(untrusted_file(&open_dir.join("b"))
            .unwrap()
            .contains("writable by others"));
        // Sticky, as /tmp: others cannot swap what is not theirs.
        chmod(&open_dir, 0o1777);
        assert_eq!(untrusted_file(&open_dir.join("b")), None);
    }

    /// A symlinked dir of ours on the way is walked where it leads too:
    /// a link to a dir others can write into is not trusted, one to a
    /// private dir is.
    #[test]
    fn a_symlinked_dir_is_judged_by_where_it_leads() {
        let tmp = tempfile::tempdir().unwrap();
        let (open_dir, private_dir) = (tmp.path().join("open"), tmp.path().join("private"));
        for dir in [&open_dir, &private_dir] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("f"), "x").unwrap();
            chmod(&dir.join("f"), 0o600);
        }
        chmod(&open_dir, 0o777);
        let (to_open, to_private) = (tmp.path().join("to-open"), tmp.path().join("to-private"));
        std::os::unix::fs::symlink(&open_dir, &to_open).unwrap();
        std::os::unix::fs::symlink(&private_dir, &to_private).unwrap();
        assert!(untrusted_file(&to_open.join("f"))
            .unwrap()
            .contains("writable by others"));
        assert_eq!(untrusted_file(&to_private.join("f")), None);
    }

    #[test]
    fn a_file_or_dir_of_another_user_is_not_trusted() {
        let path = Path::new("/x");
        // A uid that is neither root nor whoever runs the test.
        let me = rustix::process::geteuid().as_raw();
        let other = if me == 4242 { 4243 } else { 4242 };
        assert!(owner_and_mode(path, other, 0o100600, false)
            .unwrap()
            .contains(&format!("owned by uid {other}")));
        assert!(owner_and_mode(path, other, 0o40700, true).is_some());
        assert_eq!(owner_and_mode(path, 0, 0o40755, true), None);
        assert!(
            owner_and_mode(path, 0, 0o100620, false).is_some(),
            "group-writable"
        );
        assert!(
            owner_and_mode(path, 0, 0o101666, false).is_some(),
            "sticky only counts for dirs"
        );
    }
}
