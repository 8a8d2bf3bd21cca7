//! The driver side of a split virtqueue (virtio 1.x, 2.6): a descriptor
//! table, the available ring we fill and the used ring the device fills,
//! all in the shared region, each 4 KiB aligned.
//!
//! desc: addr u64, len u32, flags u16, next u16 (16 bytes each)
//! avail: flags u16, idx u16, ring[N] u16, used_event u16
//! used: flags u16, idx u16, ring[N] {id u32, len u32}, avail_event u16

use std::sync::atomic::{fence, AtomicU16, Ordering};

pub const DESC_F_WRITE: u16 = 2;
/// Avail flag: the driver polls; the device need not interrupt it.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used flag: the device polls; the driver need not kick it.
pub const USED_F_NO_NOTIFY: u16 = 1;

const ALIGN: usize = 4096;

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Where a queue of `size` descriptors lives, relative to its start.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub size: u16,
    pub desc: usize,
    pub avail: usize,
    pub used: usize,
    pub bytes: usize,
}

impl Layout {
    pub fn new(size: u16) -> Layout {
        let n = size as usize;
        let desc = 0;
        let avail = align(desc + 16 * n);
        let used = align(avail + 6 + 2 * n);
        let bytes = align(used + 6 + 8 * n);
        Layout {
            size,
            desc,
            avail,
            used,
            bytes,
        }
    }
}

/// One virtqueue. Valid while the region it points into stays mapped: the
/// device that owns the region owns its queues.
pub(crate) struct Queue {
    base: *mut u8,
    layout: Layout,
    /// Our next available-ring index.
    pub(crate) next_avail: u16,
    /// The used index we have consumed up to.
    pub(crate) last_used: u16,
}

impl Queue {
    /// # Safety
    /// `base` must point to `layout.bytes` of mapped memory, 4 KiB aligned,
    /// that outlives the queue.
    pub(crate) unsafe fn new(base: *mut u8, layout: Layout) -> Queue {
        Queue {
            base,
            layout,
            next_avail: 0,
            last_used: 0,
        }
    }

    pub(crate) fn size(&self) -> u16 {
        self.layout.size
    }

    fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset < self.layout.bytes);
        // SAFETY: every offset used below lies inside the queue's layout.
        unsafe { self.base.add(offset) }
    }

    fn atomic(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: a 2-aligned u16 inside the mapped queue; the device
        // accesses it with single aligned loads and stores.
        unsafe { &*(self.at(offset) as *const AtomicU16) }
    }

    pub(crate) fn set_desc(&self, id: u16, addr: u64, len: u32, flags: u16) {
        let p = self.at(self.layout.desc + 16 * id as usize);
        // SAFETY: descriptor `id` < size lies in the table; the device
        // reads it only after we publish it in the available ring.
        unsafe {
            std::ptr::write_volatile(p as *mut u64, addr);
            std::ptr::write_volatile(p.add(8) as *mut u32, len);
            std::ptr::write_volatile(p.add(12) as *mut u16, flags);
            std::ptr::write_volatile(p.add(14) as *mut u16, 0);
        }
    }

    /// Puts descriptor `id` in the available ring (not yet published).
    pub(crate) fn push_avail(&mut self, id: u16) {
        let slot = (self.next_avail % self.size()) as usize;
        let p = self.at(self.layout.avail + 4 + 2 * slot);
        // SAFETY: the slot lies in the available ring, which only we write.
        unsafe { std::ptr::write_volatile(p as *mut u16, id) };
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    /// Makes the pushed entries visible to the device.
    pub(crate) fn publish_avail(&self) {
        fence(Ordering::Release);
        self.atomic(self.layout.avail + 2)
            .store(self.next_avail, Ordering::Release);
    }

    pub(crate) fn set_avail_flags(&self, flags: u16) {
        self.atomic(self.layout.avail)
            .store(flags, Ordering::Release);
    }

    pub(crate) fn device_wants_kick(&self) -> bool {
        fence(Ordering::SeqCst);
        self.atomic(self.layout.used).load(Ordering::Acquire) & USED_F_NO_NOTIFY == 0
    }

    /// The next used element, if the device returned one: (id, len).
    pub(crate) fn pop_used(&mut self) -> Option<(u32, u32)> {
        let used_idx = self.atomic(self.layout.used + 2).load(Ordering::Acquire);
        if used_idx == self.last_used {
            return None;
        }
        let slot = (self.last_used % self.size()) as usize;
        let p = self.at(self.layout.used + 4 + 8 * slot);
        // SAFETY: the element lies in the used ring and was published by
        // the device with the used index loaded (acquire) above.
        let (id, len) = unsafe {
            (
                std::ptr::read_volatile(p as *const u32),
                std::ptr::read_volatile(p.add(4) as *const u32),
            )
        };
        self.last_used = self.last_used.wrapping_add(1);
        Some((id, len))
    }

    pub(crate) fn addresses(&self) -> (u64, u64, u64) {
        (
            self.at(self.layout.desc) as u64,
            self.at(self.layout.avail) as u64,
            self.at(self.layout.used) as u64,
        )
    }
}
