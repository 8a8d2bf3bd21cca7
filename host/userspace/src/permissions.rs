//! Who may use an attachment's sockets: the per-container shared dir is
//! 0750 and the vSwitch-made socket 0660, both owned by the configured
//! group (`vhost.group`) when there is one. Symlinks are never followed.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use cni_protocol::{codes, CniError};

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
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        if meta.file_type().is_socket() {
            std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
                .map_err(|e| failed(&format!("mode of {socket}"), e))?;
            if let Some(gid) = gid {
                std::os::unix::fs::lchown(socket, None, Some(gid))
                    .map_err(|e| failed(&format!("group of {socket}"), e))?;
            }
        }
    }
    if let (Some(gid), Some(shared_dir)) = (gid, shared_dir) {
        std::os::unix::fs::lchown(shared_dir, None, Some(gid))
            .map_err(|e| failed(&format!("group of {shared_dir}"), e))?;
    }
    Ok(())
}
