//! The driver side of a virtio-net device over vhost-user: what a VM's
//! virtio-net driver does, done by a container process, so that OVS-DPDK's
//! `dpdkvhostuser` / `dpdkvhostuserclient` ports carry its frames.
//!
//! The rust-vmm `vhost` crate speaks the vhost-user control protocol
//! (frontend side); this crate owns the memory (one sealed memfd, guest
//! physical address 0), drives the two split virtqueues (queue 0 receive,
//! queue 1 transmit, each frame behind a 12-byte virtio-net header) and
//! exposes batched `tx_burst` / `rx_burst`.

mod queue;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub use shm::Counters;
use shm::Region;
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use queue::{Layout, Queue, AVAIL_F_NO_INTERRUPT, DESC_F_WRITE};

const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset, num_buffers.
const NET_HDR_LEN: usize = 12;
const RX: usize = 0;
const TX: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("vhost-user socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("vhost-user {step}: {message}")]
    Protocol { step: &'static str, message: String },
    #[error("vhost-user memory: {0}")]
    Memory(#[from] rustix::io::Errno),
}

/// A backend that stops answering must not hang the caller.
fn bound_answers(socket: BorrowedFd<'_>) -> Result<(), Error> {
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    let limit = Some(std::time::Duration::from_secs(2));
    set_socket_timeout(socket, Timeout::Recv, limit)?;
    set_socket_timeout(socket, Timeout::Send, limit)?;
    Ok(())
}

fn step(step: &'static str) -> impl FnOnce(vhost::Error) -> Error {
    move |e| Error::Protocol {
        step,
        message: e.to_string(),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Descriptors per queue (a power of two).
    pub queue_size: u16,
    /// Bytes per buffer, header included.
    pub buffer_size: u32,
    /// Ask the backend to write the receive queue's call eventfd.
    pub rx_interrupts: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            queue_size: 256,
            buffer_size: 2048,
            rx_interrupts: false,
        }
    }
}

/// A virtio-net device driven over a vhost-user socket.
pub struct VhostUserNet {
    frontend: Frontend,
    region: Region,
    queues: [Queue; 2],
    kicks: [EventFd; 2],
    calls: [EventFd; 2],
    /// Where each queue's buffers start in the region.
    buffers: [usize; 2],
    tx_free: Vec<u16>,
    buffer_size: u32,
    counters: Counters,
}

// SAFETY: the raw pointers inside (the queues) point into `region`, which
// this value owns; every access goes through `&mut self`.
unsafe impl Send for VhostUserNet {}

impl VhostUserNet {
    /// Connects to a backend that listens (OVS `dpdkvhostuser`).
    pub fn connect(path: &Path, cfg: Config) -> Result<VhostUserNet, Error> {
        let frontend = Frontend::connect(path, 2).map_err(|e| Error::Socket {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        // SAFETY: the frontend owns this socket and outlives the borrow.
        let socket = unsafe { BorrowedFd::borrow_raw(frontend.as_raw_fd()) };
        bound_answers(socket)?;
        VhostUserNet::setup(frontend, cfg)
    }

    /// Takes a connection a backend made to our socket (OVS
    /// `dpdkvhostuserclient`).
    pub fn from_stream(stream: UnixStream, cfg: Config) -> Result<VhostUserNet, Error> {
        bound_answers(stream.as_fd())?;
        VhostUserNet::setup(Frontend::from_stream(stream, 2), cfg)
    }

    fn setup(mut frontend: Frontend, cfg: Config) -> Result<VhostUserNet, Error> {
        frontend.set_owner().map_err(step("SET_OWNER"))?;
        let offered = frontend.get_features().map_err(step("GET_FEATURES"))?;
        if offered & VIRTIO_F_VERSION_1 == 0 {
            return Err(Error::Protocol {
                step: "GET_FEATURES",
                message: format!("backend lacks VIRTIO_F_VERSION_1 (offers {offered:#x})"),
            });
        }
        let features = offered
            & (VIRTIO_F_VERSION_1 | VHOST_USER_F_PROTOCOL_FEATURES | VIRTIO_NET_F_MRG_RXBUF);
        frontend
            .set_features(features)
            .map_err(step("SET_FEATURES"))?;
        let protocol = features & VHOST_USER_F_PROTOCOL_FEATURES != 0;
        if protocol {
            let offered = frontend
                .get_protocol_features()
                .map_err(step("GET_PROTOCOL_FEATURES"))?;
            frontend
                .set_protocol_features(offered & VhostUserProtocolFeatures::MQ)
                .map_err(step("SET_PROTOCOL_FEATURES"))?;
        }

        // [rx queue][tx queue][rx buffers][tx buffers]
        let size = cfg.queue_size;
        let layout = Layout::new(size);
        let per_queue_buffers = size as usize * cfg.buffer_size as usize;
        let buffers = [2 * layout.bytes, 2 * layout.bytes + per_queue_buffers];
        let total = 2 * layout.bytes + 2 * per_queue_buffers;
        let region = Region::create(total)?;
        frontend
            .set_mem_table(&[VhostUserMemoryRegionInfo {
                guest_phys_addr: 0,
                memory_size: total as u64,
                userspace_addr: region.ptr() as u64,
                mmap_offset: 0,
                mmap_handle: region.fd().as_fd().as_raw_fd(),
            }])
            .map_err(step("SET_MEM_TABLE"))?;

        // SAFETY: both queues lie inside the region (layout.bytes each, at
        // 4 KiB-aligned offsets 0 and layout.bytes), which lives as long
        // as the device.
        let queues = unsafe {
            [
                Queue::new(region.ptr(), layout),
                Queue::new(region.ptr().add(layout.bytes), layout),
            ]
        };
        let eventfd = || {
            EventFd::new(EFD_NONBLOCK).map_err(|e| {
                Error::Memory(rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))
            })
        };
        let kicks = [eventfd()?, eventfd()?];
        let calls = [eventfd()?, eventfd()?];
        let mut dev = VhostUserNet {
            frontend,
            region,
            queues,
            kicks,
            calls,
            buffers,
            tx_free: (0..size).rev().collect(),
            buffer_size: cfg.buffer_size,
            counters: Counters::default(),
        };

        // Every receive buffer is the device's to fill from the start.
        for id in 0..size {
            let addr = dev.buffer_gpa(RX, id);
            dev.queues[RX].set_desc(id, addr, cfg.buffer_size, DESC_F_WRITE);
            dev.queues[RX].push_avail(id);
        }
        dev.queues[RX].publish_avail();
        dev.queues[RX].set_avail_flags(if cfg.rx_interrupts {
            0
        } else {
            AVAIL_F_NO_INTERRUPT
        });
        dev.queues[TX].set_avail_flags(AVAIL_F_NO_INTERRUPT);

        for q in [RX, TX] {
            let (desc, avail, used) = dev.queues[q].addresses();
            let config = VringConfigData {
                queue_max_size: size,
                queue_size: size,
                flags: 0,
                desc_table_addr: desc,
                used_ring_addr: used,
                avail_ring_addr: avail,
                log_addr: None,
            };
            dev.frontend
                .set_vring_num(q, size)
                .map_err(step("SET_VRING_NUM"))?;
            dev.frontend
                .set_vring_addr(q, &config)
                .map_err(step("SET_VRING_ADDR"))?;
            dev.frontend
                .set_vring_base(q, 0)
                .map_err(step("SET_VRING_BASE"))?;
            dev.frontend
                .set_vring_call(q, &dev.calls[q])
                .map_err(step("SET_VRING_CALL"))?;
            dev.frontend
                .set_vring_kick(q, &dev.kicks[q])
                .map_err(step("SET_VRING_KICK"))?;
        }
        if protocol {
            for q in [RX, TX] {
                dev.frontend
                    .set_vring_enable(q, true)
                    .map_err(step("SET_VRING_ENABLE"))?;
            }
        }
        dev.kick(RX);
        Ok(dev)
    }

    fn buffer_gpa(&self, queue: usize, id: u16) -> u64 {
        (self.buffers[queue] + id as usize * self.buffer_size as usize) as u64
    }

    fn buffer_ptr(&self, queue: usize, id: u16) -> *mut u8 {
        // SAFETY: id < queue size, so the buffer lies inside the region.
        unsafe { self.region.ptr().add(self.buffer_gpa(queue, id) as usize) }
    }

    fn kick(&self, queue: usize) {
        if self.queues[queue].device_wants_kick() {
            let _ = self.kicks[queue].write(1);
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Readable when the backend wrote the receive interrupt (when
    /// `rx_interrupts` was asked for).
    pub fn rx_eventfd(&self) -> BorrowedFd<'_> {
        // SAFETY: the EventFd owns this fd for as long as `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.calls[RX].as_raw_fd()) }
    }

    /// Clears a pending receive interrupt.
    pub fn ack_interrupt(&self) {
        let _ = self.calls[RX].read();
    }

    /// The control socket: readable when the backend hung up.
    pub fn control_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the frontend owns this socket for as long as `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.frontend.as_raw_fd()) }
    }

    /// Whether the backend closed the control socket.
    pub fn backend_gone(&self) -> bool {
        let fd = self.control_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())) {
            Ok(0) => false,
            Ok(_) => {
                let mut byte = [0u8; 1];
                matches!(
                    rustix::net::recv(
                        fd,
                        &mut byte,
                        rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT
                    ),
                    Ok((0, _)) | Err(_)
                )
            }
            Err(_) => true,
        }
    }

    /// Transmits as many of `frames` as there are free descriptors.
    pub fn tx_burst(&mut self, frames: &[&[u8]]) -> usize {
        while let Some((id, _)) = self.queues[TX].pop_used() {
            if (id as usize) < self.queues[TX].size() as usize
                && !self.tx_free.contains(&(id as u16))
            {
                self.tx_free.push(id as u16);
            }
        }
        let mut sent = 0;
        for frame in frames {
            let len = NET_HDR_LEN + frame.len();
            if len > self.buffer_size as usize {
                self.counters.drops += 1;
                continue;
            }
            let Some(id) = self.tx_free.pop() else { break };
            let dst = self.buffer_ptr(TX, id);
            // SAFETY: the buffer holds buffer_size >= len bytes and is not
            // in the device's hands (its descriptor was free).
            unsafe {
                std::ptr::write_bytes(dst, 0, NET_HDR_LEN);
                std::ptr::copy_nonoverlapping(frame.as_ptr(), dst.add(NET_HDR_LEN), frame.len());
            }
            let addr = self.buffer_gpa(TX, id);
            self.queues[TX].set_desc(id, addr, len as u32, 0);
            self.queues[TX].push_avail(id);
            sent += 1;
            self.counters.tx_frames += 1;
            self.counters.tx_bytes += frame.len() as u64;
        }
        if sent > 0 {
            self.queues[TX].publish_avail();
            self.kick(TX);
        }
        sent
    }

    /// Receives up to `max` frames, handing each to `f`.
    pub fn rx_burst(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let mut received = 0;
        let mut returned = 0;
        while received < max {
            let Some((id, len)) = self.queues[RX].pop_used() else {
                break;
            };
            returned += 1;
            let size = self.queues[RX].size() as u32;
            if id >= size || (len as usize) < NET_HDR_LEN || len > self.buffer_size {
                self.counters.drops += 1;
                if id < size {
                    self.repost(id as u16);
                }
                continue;
            }
            let src = self.buffer_ptr(RX, id as u16);
            // SAFETY: the device returned this buffer with `len` valid
            // bytes (bounded by buffer_size above) and will not touch it
            // until we post it again.
            let bytes = unsafe { std::slice::from_raw_parts(src, len as usize) };
            let num_buffers = u16::from_le_bytes([bytes[10], bytes[11]]);
            if num_buffers > 1 {
                // A frame larger than one buffer: not expected at our
                // buffer size; drop it and recycle the rest of it.
                self.counters.drops += 1;
                self.repost(id as u16);
                for _ in 1..num_buffers {
                    if let Some((more, _)) = self.queues[RX].pop_used() {
                        if more < size {
                            self.repost(more as u16);
                        }
                    }
                }
                continue;
            }
            let frame = &bytes[NET_HDR_LEN..];
            self.counters.rx_frames += 1;
            self.counters.rx_bytes += frame.len() as u64;
            f(frame);
            received += 1;
            self.repost(id as u16);
        }
        if returned > 0 {
            self.queues[RX].publish_avail();
            self.kick(RX);
        }
        received
    }

    fn repost(&mut self, id: u16) {
        let addr = self.buffer_gpa(RX, id);
        self.queues[RX].set_desc(id, addr, self.buffer_size, DESC_F_WRITE);
        self.queues[RX].push_avail(id);
    }
}
