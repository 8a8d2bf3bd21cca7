//! A connected memif interface: the data path of both roles.
//!
//! Who moves which index: the client owns `head` of every ring (it posts
//! frames on client-to-server rings and empty buffers on
//! server-to-client rings); the server owns `tail` (it consumes
//! client-to-server rings and fills server-to-client ones). Every
//! descriptor the peer hands over is bounds-checked against the region
//! it names before a byte is read or written.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::protocol::Message;
use crate::ring::{Desc, Ring, FLAG_MASK_INT};
use crate::{control, Error};
use shm::{Counters, Region};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// How a receive queue learns of new frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// The application polls; the peer never writes the eventfd.
    Polling,
    /// The peer writes the queue's eventfd after it transmits.
    Interrupt,
}

pub(crate) struct Queue {
    pub(crate) ring: Ring,
    pub(crate) eventfd: OwnedFd,
    /// Our own index: the client's head, or the server's tail.
    pub(crate) next: u16,
    /// Client receive queues: the next frame to read.
    pub(crate) read: u16,
    /// Index of the ring among all rings of the region (client layout).
    pub(crate) global_index: usize,
}

pub struct Connection {
    pub(crate) role: Role,
    pub(crate) control: OwnedFd,
    pub(crate) regions: Vec<Region>,
    pub(crate) tx: Vec<Queue>,
    pub(crate) rx: Vec<Queue>,
    pub(crate) buffer_size: u32,
    /// Client role: the region holding the packet buffers, and where in
    /// it they start.
    pub(crate) buffer_region: u16,
    pub(crate) buffers_offset: usize,
    pub(crate) peer_name: String,
    pub(crate) counters: Counters,
    /// Whether DISCONNECT was sent (or received).
    pub(crate) said_goodbye: bool,
}

// SAFETY: the raw pointers inside (`Ring`, `Region`) point into mappings
// this connection owns; nothing is tied to the creating thread, and the
// API takes `&mut self` for every access, so moving it between threads is
// sound.
unsafe impl Send for Connection {}

impl Connection {
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    pub fn tx_queues(&self) -> usize {
        self.tx.len()
    }

    pub fn rx_queues(&self) -> usize {
        self.rx.len()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Largest frame one buffer holds.
    pub fn buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// The eventfds of the receive queues (readable in interrupt mode when
    /// frames arrived) and the control socket (readable on disconnect).
    pub fn rx_eventfd(&self, queue: usize) -> BorrowedFd<'_> {
        self.rx[queue].eventfd.as_fd()
    }

    pub fn control_fd(&self) -> BorrowedFd<'_> {
        self.control.as_fd()
    }

    /// Sets how every receive queue is woken.
    pub fn set_rx_mode(&mut self, mode: RxMode) {
        for q in &self.rx {
            q.ring.set_flags(if mode == RxMode::Polling {
                FLAG_MASK_INT
            } else {
                0
            });
        }
    }

    /// Clears a receive queue's pending interrupt (after poll said readable).
    pub fn ack_interrupt(&self, queue: usize) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.rx[queue].eventfd, &mut buf);
    }

    fn buffer(regions: &[Region], d: &Desc, len: u32) -> Option<*mut u8> {
        let region = regions.get(d.region as usize)?;
        let end = (d.offset as usize).checked_add(len as usize)?;
        if end > region.size() {
            return None;
        }
        // SAFETY: offset + len is within the mapped region (checked above).
        Some(unsafe { region.ptr().add(d.offset as usize) })
    }

    fn client_buffer_offset(&self, global_index: usize, counter: u16, ring_size: u16) -> u32 {
        let slot = (counter & (ring_size - 1)) as usize;
        (self.buffers_offset
            + (global_index * ring_size as usize + slot) * self.buffer_size as usize) as u32
    }

    /// Transmits up to all of `frames` on `queue`; returns how many went
    /// (fewer when the ring is full: the caller keeps or drops the rest).
    pub fn tx_burst(&mut self, queue: usize, frames: &[&[u8]]) -> usize {
        let sent = match self.role {
            Role::Client => self.client_tx(queue, frames),
            Role::Server => self.server_tx(queue, frames),
        };
        let q = &self.tx[queue];
        if sent > 0 && q.ring.flags() & FLAG_MASK_INT == 0 {
            let _ = rustix::io::write(&q.eventfd, &1u64.to_ne_bytes());
        }
        sent
    }

    fn client_tx(&mut self, queue: usize, frames: &[&[u8]]) -> usize {
        let (size, global, mut head) = {
            let q = &self.tx[queue];
            (q.ring.size(), q.global_index, q.next)
        };
        let tail = self.tx[queue].ring.tail();
        let free = size.wrapping_sub(head.wrapping_sub(tail));
        let mut sent = 0;
        for frame in frames.iter().take(free as usize) {
            if frame.len() > self.buffer_size as usize {
                self.counters.drops += 1;
                continue;
            }
            let d = Desc {
                flags: 0,
                region: self.buffer_region,
                length: frame.len() as u32,
                offset: self.client_buffer_offset(global, head, size),
            };
            let Some(dst) = Self::buffer(&self.regions, &d, d.length) else {
                continue;
            };
            // SAFETY: `dst` has room for the frame (bounds checked in
            // `buffer`); the slot is ours until `head` is published.
            unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len()) };
            self.tx[queue].ring.set_desc(head, d);
            head = head.wrapping_add(1);
            sent += 1;
            self.counters.tx_frames += 1;
            self.counters.tx_bytes += frame.len() as u64;
        }
        self.tx[queue].ring.set_head(head);
        self.tx[queue].next = head;
        sent
    }

    fn server_tx(&mut self, queue: usize, frames: &[&[u8]]) -> usize {
        let ring = &self.tx[queue].ring;
        let mut tail = self.tx[queue].next;
        let head = ring.head();
        let posted = head.wrapping_sub(tail).min(ring.size());
        let mut sent = 0;
        for frame in frames.iter().take(posted as usize) {
            let d = ring.desc(tail);
            let fits = frame.len() <= d.length as usize;
            match Self::buffer(&self.regions, &d, frame.len() as u32).filter(|_| fits) {
                Some(dst) => {
                    // SAFETY: the peer's buffer is inside its region and at
                    // least frame.len() long (checked); the slot is ours
                    // until `tail` is published.
                    unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len()) };
                    ring.set_desc(
                        tail,
                        Desc {
                            flags: 0,
                            length: frame.len() as u32,
                            ..d
                        },
                    );
                    self.counters.tx_frames += 1;
                    self.counters.tx_bytes += frame.len() as u64;
                    sent += 1;
                }
                None => {
                    // A bad descriptor: hand the slot back empty.
                    ring.set_length(tail, 0);
                    self.counters.drops += 1;
                }
            }
            tail = tail.wrapping_add(1);
        }
        ring.set_tail(tail);
        self.tx[queue].next = tail;
        sent
    }

    /// Receives up to `max` frames from `queue`, handing each to `f`;
    /// returns how many were received.
    pub fn rx_burst(&mut self, queue: usize, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        match self.role {
            Role::Client => self.client_rx(queue, max, &mut f),
            Role::Server => self.server_rx(queue, max, &mut f),
        }
    }

    fn client_rx(&mut self, queue: usize, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let (size, global) = (self.rx[queue].ring.size(), self.rx[queue].global_index);
        let tail = self.rx[queue].ring.tail();
        let mut read = self.rx[queue].read;
        let ready = tail.wrapping_sub(read).min(size) as usize;
        let n = ready.min(max);
        for _ in 0..n {
            let d = self.rx[queue].ring.desc(read);
            match Self::buffer(&self.regions, &d, d.length).filter(|_| d.length <= self.buffer_size)
            {
                Some(src) => {
                    // SAFETY: inside the region (checked); the server
                    // published this slot with `tail` and will not touch it
                    // until we post it again.
                    let frame = unsafe { std::slice::from_raw_parts(src, d.length as usize) };
                    self.counters.rx_frames += 1;
                    self.counters.rx_bytes += frame.len() as u64;
                    f(frame);
                }
                None => self.counters.drops += 1,
            }
            read = read.wrapping_add(1);
        }
        // Post the consumed buffers again.
        let mut head = self.rx[queue].next;
        for _ in 0..n {
            let d = Desc {
                flags: 0,
                region: self.buffer_region,
                length: self.buffer_size,
                offset: self.client_buffer_offset(global, head, size),
            };
            self.rx[queue].ring.set_desc(head, d);
            head = head.wrapping_add(1);
        }
        self.rx[queue].ring.set_head(head);
        self.rx[queue].next = head;
        self.rx[queue].read = read;
        n
    }

    fn server_rx(&mut self, queue: usize, max: usize, f: &mut dyn FnMut(&[u8])) -> usize {
        let ring = &self.rx[queue].ring;
        let head = ring.head();
        let mut tail = self.rx[queue].next;
        let n = (head.wrapping_sub(tail).min(ring.size()) as usize).min(max);
        for _ in 0..n {
            let d = ring.desc(tail);
            match Self::buffer(&self.regions, &d, d.length) {
                Some(src) => {
                    // SAFETY: inside the region (checked); the client
                    // published the slot with `head` and will not reuse it
                    // until we advance `tail`.
                    let frame = unsafe { std::slice::from_raw_parts(src, d.length as usize) };
                    self.counters.rx_frames += 1;
                    self.counters.rx_bytes += frame.len() as u64;
                    f(frame);
                }
                None => self.counters.drops += 1,
            }
            tail = tail.wrapping_add(1);
        }
        ring.set_tail(tail);
        self.rx[queue].next = tail;
        n
    }

    /// Checks the control channel without blocking: `Some(reason)` when the
    /// peer disconnected (or the channel broke).
    pub fn poll_disconnect(&mut self) -> Option<String> {
        let mut fds = [rustix::event::PollFd::new(
            &self.control,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(format!("control channel: {e}")),
        }
        // Whatever follows, the peer is gone: no goodbye is owed.
        self.said_goodbye = true;
        match control::recv(self.control.as_fd()) {
            Ok(Some((Message::Disconnect { code, reason }, _))) => {
                Some(format!("{reason} (code {code})"))
            }
            Ok(None) => Some("peer closed the connection".into()),
            Ok(Some((other, _))) => Some(format!("unexpected {} after connect", other.kind())),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Tells the peer we are leaving, then drops everything.
    pub fn disconnect(mut self, reason: &str) -> Result<(), Error> {
        self.said_goodbye = true;
        let message = Message::Disconnect {
            code: 0,
            reason: reason.to_string(),
        };
        control::send(self.control.as_fd(), &message, None)
    }
}

impl Drop for Connection {
    /// A connection dropped without `disconnect` still tells the peer, so
    /// that it frees the interface for the next client at once.
    fn drop(&mut self) {
        if !self.said_goodbye {
            let message = Message::Disconnect {
                code: 0,
                reason: "connection closed".into(),
            };
            let _ = control::send(self.control.as_fd(), &message, None);
        }
    }
}
