//! Who may use an attachment's sockets: the per-container shared dir is
//! 0750 and the vSwitch-made socket 0660, both owned by the configured
//! group (`vhost.group`) when there is one. Symlinks are never followed.

use std::os::fd::{AsFd, AsRawFd};

use cni_protocol::{codes, CniError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// The gid of `group` (a name from /etc/group, or a number).
pub(crate) fn resolve_group(group: &str) -> Result<u32, CniError> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse().ok()?;
            (name == group).then_some(gid)
        })
        .next()
        .ok_or_else(|| {
            CniError::invalid_config(format!(
                "vhost.group: no group named {group:?} in /etc/group"
            ))
        })
}

/// Restricts the socket (when the vSwitch made it) and hands it to `gid`,
/// and the shared dir too when it is the plugin's (`shared_dir`).
pub(crate) fn apply(
    shared_dir: Option<&str>,
    socket: &str,
    gid: Option<u32>,
) -> Result<(), CniError> {
    let failed = |what: &str, e: std::io::Error| {
        CniError::new(
            codes::CONTAINER_DATA_FAILURE,
            format!("cannot set the {what}"),
            e.to_string(),
        )
    };
    // The socket is in a dir the pod can write: it is pinned by an O_PATH
    // descriptor opened without following a link, checked, and changed
    // through that descriptor, so a swap after the check changes nothing
    // else.
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if let Ok(fd) = rustix::fs::open(socket, flags, Mode::empty()) {
        let is_socket = rustix::fs::fstat(fd.as_fd())
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Socket);
        if is_socket {
            // chmod has no AT_EMPTY_PATH form; the fd's /proc link is the
            // inode itself, not a path that can be swapped.
            let pinned = format!("/proc/self/fd/{}", fd.as_raw_fd());
            rustix::fs::chmod(pinned.as_str(), Mode::from_raw_mode(0o660))
                .map_err(|e| failed(&format!("mode of {socket}"), e.into()))?;
            if let Some(gid) = gid {
                let gid = rustix::fs::Gid::from_raw(gid);
                rustix::fs::chownat(fd.as_fd(), "", None, Some(gid), AtFlags::EMPTY_PATH)
                    .map_err(|e| failed(&format!("group of {socket}"), e.into()))?;
            }
        }
    }
    if let (Some(gid), Some(shared_dir)) = (gid, shared_dir) {
        std::os::unix::fs::lchown(shared_dir, None, Some(gid))
            .map_err(|e| failed(&format!("group of {shared_dir}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn the_socket_gets_0660_through_a_pinned_descriptor() {
        let tmp = tempfile::tempdir().unwrap();
        let socket = tmp.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        let own_gid = rustix::process::getegid().as_raw();
        apply(None, socket.to_str().unwrap(), Some(own_gid)).unwrap();
        assert_eq!(mode(&socket), 0o660);
        assert_eq!(std::fs::metadata(&socket).unwrap().gid(), own_gid);
    }

    /// A link planted where the socket should be: its target keeps its
    /// mode (the link is not followed), and nothing fails.
    #[test]
    fn a_link_in_place_of_the_socket_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target.sock");
        drop(std::os::unix::net::UnixListener::bind(&target).unwrap());
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("s.sock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        apply(None, link.to_str().unwrap(), None).unwrap();
        assert_eq!(mode(&target), 0o700);
    }
}
