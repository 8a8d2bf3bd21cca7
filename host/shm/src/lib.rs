//! Shared memory for userspace interfaces: a region is created by the side
//! that owns the memory (a memfd, sealed against shrinking so that the peer
//! can trust its size) or mapped from the fd a peer sent. memif and
//! vhost-user both hand regions over this way, and count frames the same
//! way ([`Counters`]).

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// Frame counters of an interface over shared memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames dropped: larger than a buffer, or a descriptor from the peer
    /// that pointed outside the shared memory.
    pub drops: u64,
}

impl Counters {
    /// Adds `other` (the counters of an earlier connection) to these.
    pub fn add(&mut self, other: Counters) {
        self.rx_frames += other.rx_frames;
        self.rx_bytes += other.rx_bytes;
        self.tx_frames += other.tx_frames;
        self.tx_bytes += other.tx_bytes;
        self.drops += other.drops;
    }
}

pub struct Region {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

impl Region {
    /// A new zeroed region of `len` bytes.
    pub fn create(len: usize) -> rustix::io::Result<Region> {
        let fd = rustix::fs::memfd_create(
            "userspace interface memory",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        rustix::fs::ftruncate(&fd, len as u64)?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK)?;
        Region::map(fd, len)
    }

    /// Maps `len` bytes of `fd` shared, read-write. The fd must be a memfd
    /// sealed against shrinking (EPERM otherwise) and at least `len` long.
    pub fn map(fd: OwnedFd, len: usize) -> rustix::io::Result<Region> {
        if len == 0 {
            return Err(rustix::io::Errno::INVAL);
        }
        // The peer's fd must really be that large and unable to shrink, or
        // touching the mapping past its end would fault (SIGBUS): a peer
        // could crash us by truncating its memfd after we mapped it.
        let stat = rustix::fs::fstat(&fd)?;
        if (stat.st_size as u64) < len as u64 {
            return Err(rustix::io::Errno::INVAL);
        }
        let sealed =
            rustix::fs::fcntl_get_seals(&fd).is_ok_and(|seals| seals.contains(SealFlags::SHRINK));
        if !sealed {
            return Err(rustix::io::Errno::PERM);
        }
        // SAFETY: a fresh shared mapping of an fd we own, at an address the
        // kernel picks; nothing else refers to that range yet.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )?
        };
        Ok(Region {
            fd,
            ptr: ptr.cast(),
            len,
        })
    }

    pub fn fd(&self) -> impl AsFd + '_ {
        &self.fd
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn size(&self) -> usize {
        self.len
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `map`, and
        // every ring or buffer view into it belongs to the connection that
        // owns (and is dropping) this region.
        unsafe {
            let _ = rustix::mm::munmap(self.ptr.cast(), self.len);
        }
    }
}
