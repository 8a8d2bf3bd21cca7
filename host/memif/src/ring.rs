//! A memif ring in shared memory.
//!
//! Layout: cookie u32 @0, flags u16 @4, head u16 @6, tail u16 @64, then
//! 2^log2 descriptors of 16 bytes from @128: flags u16, region u16,
//! length u32, offset u32, metadata u32. head and tail are free-running
//! u16 counters; slot = counter & (size - 1). The producer of a ring
//! publishes with a release store and the consumer reads with acquire.

use std::sync::atomic::{AtomicU16, Ordering};

pub const COOKIE: u32 = 0x03E3_1F20;
pub const HEADER_SIZE: usize = 128;
pub const DESC_SIZE: usize = 16;
/// Ring flag: "I poll this ring; do not interrupt me".
pub const FLAG_MASK_INT: u16 = 1;
/// Descriptor flag: the frame continues in the next descriptor.
pub const DESC_FLAG_NEXT: u16 = 1;

const HEAD_AT: usize = 6;
const TAIL_AT: usize = 64;
const FLAGS_AT: usize = 4;

/// Bytes a ring of 2^log2 descriptors takes.
pub fn ring_size(log2: u8) -> usize {
    HEADER_SIZE + DESC_SIZE * (1usize << log2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    pub flags: u16,
    pub region: u16,
    pub length: u32,
    pub offset: u32,
}

/// A view of one ring. Valid while the region it points into is mapped:
/// the connection that owns the region owns its rings.
#[derive(Debug)]
pub(crate) struct Ring {
    base: *mut u8,
    log2: u8,
}

impl Ring {
    /// # Safety
    /// `base` must point to `ring_size(log2)` bytes of mapped memory,
    /// 8-byte aligned, that outlive the returned value.
    pub(crate) unsafe fn new(base: *mut u8, log2: u8) -> Ring {
        Ring { base, log2 }
    }

    pub(crate) fn size(&self) -> u16 {
        1u16 << self.log2
    }

    fn mask(&self) -> u16 {
        self.size() - 1
    }

    fn atomic(&self, at: usize) -> &AtomicU16 {
        // SAFETY: `at` is 4, 6 or 64, inside the 128-byte header and 2-byte
        // aligned (base is 8-aligned); AtomicU16 has u16's layout, and the
        // peer only touches these words with single aligned accesses.
        unsafe { &*(self.base.add(at) as *const AtomicU16) }
    }

    pub(crate) fn head(&self) -> u16 {
        self.atomic(HEAD_AT).load(Ordering::Acquire)
    }

    pub(crate) fn set_head(&self, v: u16) {
        self.atomic(HEAD_AT).store(v, Ordering::Release)
    }

    pub(crate) fn tail(&self) -> u16 {
        self.atomic(TAIL_AT).load(Ordering::Acquire)
    }

    pub(crate) fn set_tail(&self, v: u16) {
        self.atomic(TAIL_AT).store(v, Ordering::Release)
    }

    pub(crate) fn flags(&self) -> u16 {
        self.atomic(FLAGS_AT).load(Ordering::Acquire)
    }

    pub(crate) fn set_flags(&self, v: u16) {
        self.atomic(FLAGS_AT).store(v, Ordering::Release)
    }

    pub(crate) fn cookie(&self) -> u32 {
        // SAFETY: offset 0 of the mapped header, 4-byte aligned.
        unsafe { std::ptr::read_volatile(self.base as *const u32) }
    }

    pub(crate) fn set_cookie(&self) {
        // SAFETY: as in `cookie`.
        unsafe { std::ptr::write_volatile(self.base as *mut u32, COOKIE) }
    }

    fn desc_ptr(&self, counter: u16) -> *mut u8 {
        let slot = (counter & self.mask()) as usize;
        // SAFETY: slot < size, so the descriptor lies inside the ring.
        unsafe { self.base.add(HEADER_SIZE + slot * DESC_SIZE) }
    }

    pub(crate) fn desc(&self, counter: u16) -> Desc {
        let p = self.desc_ptr(counter);
        // SAFETY: a 16-byte descriptor inside the mapped ring, 4-aligned;
        // volatile because the peer writes it from another process.
        unsafe {
            Desc {
                flags: std::ptr::read_volatile(p as *const u16),
                region: std::ptr::read_volatile(p.add(2) as *const u16),
                length: std::ptr::read_volatile(p.add(4) as *const u32),
                offset: std::ptr::read_volatile(p.add(8) as *const u32),
            }
        }
    }

    pub(crate) fn set_desc(&self, counter: u16, d: Desc) {
        let p = self.desc_ptr(counter);
        // SAFETY: as in `desc`.
        unsafe {
            std::ptr::write_volatile(p as *mut u16, d.flags);
            std::ptr::write_volatile(p.add(2) as *mut u16, d.region);
            std::ptr::write_volatile(p.add(4) as *mut u32, d.length);
            std::ptr::write_volatile(p.add(8) as *mut u32, d.offset);
            std::ptr::write_volatile(p.add(12) as *mut u32, 0);
        }
    }

    pub(crate) fn set_length(&self, counter: u16, length: u32) {
        let p = self.desc_ptr(counter);
        // SAFETY: as in `desc`.
        unsafe { std::ptr::write_volatile(p.add(4) as *mut u32, length) }
    }
}
