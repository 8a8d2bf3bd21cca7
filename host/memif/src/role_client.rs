//! The client ("slave") role: connect to a server's socket, allocate the
//! shared memory, hand it over, and come out connected.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::event::EventfdFlags;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::connection::{Connection, Queue, Role, RxMode};
use crate::protocol::{Message, Mode, RING_FLAG_S2M};
use crate::ring::{ring_size, Desc, Ring};
use crate::{control, Error, VERSION};
use shm::{Counters, Region};

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub socket: PathBuf,
    /// Interface id; must match the server's (DPDK's `id=` devarg).
    pub id: u32,
    pub secret: String,
    pub mode: Mode,
    /// Our name, sent in INIT.
    pub name: String,
    /// Our interface name, sent in CONNECT.
    pub if_name: String,
    /// Client-to-server rings (our transmit queues).
    pub tx_queues: u16,
    /// Server-to-client rings (our receive queues), at most. OVS transmits
    /// on a queue per PMD thread plus one, so a client that maps fewer
    /// misses frames; a server with fewer queues makes `connect` retry
    /// with fewer.
    pub rx_queues: u16,
    pub log2_ring_size: u8,
    pub buffer_size: u32,
    pub rx_mode: RxMode,
}

impl ClientConfig {
    pub fn new(socket: impl Into<PathBuf>) -> ClientConfig {
        ClientConfig {
            socket: socket.into(),
            id: 0,
            secret: String::new(),
            mode: Mode::Ethernet,
            name: "userspace-cni".into(),
            if_name: "memif0".into(),
            tx_queues: 1,
            rx_queues: 4,
            log2_ring_size: 10,
            buffer_size: 2048,
            rx_mode: RxMode::Polling,
        }
    }
}

pub struct Client;

impl Client {
    /// Connects and completes the handshake. HELLO gives only an upper
    /// bound on the server's queues, and a server refuses rings beyond the
    /// queues it has ("Invalid ring index"): then the handshake is retried
    /// with one receive queue fewer, down to one.
    pub fn connect(cfg: &ClientConfig) -> Result<Connection, Error> {
        let mut rx_queues = cfg.rx_queues.max(1);
        loop {
            match Client::connect_with(cfg, rx_queues) {
                Err(Error::Refused { reason, .. })
                    if reason.contains("Invalid ring index") && rx_queues > 1 =>
                {
                    tracing::debug!(
                        rx_queues,
                        "server refused a ring; retrying with fewer receive queues"
                    );
                    rx_queues -= 1;
                }
                other => return other,
            }
        }
    }

    fn connect_with(cfg: &ClientConfig, rx_queues: u16) -> Result<Connection, Error> {
        let socket = connect_socket(&cfg.socket)?;
        let sock = socket.as_fd();

        let (hello, _) = control::expect(sock)?;
        let Message::Hello {
            name: peer_name,
            min_version,
            max_version,
            max_m2s_ring,
            max_s2m_ring,
            max_log2_ring_size,
            max_region,
            ..
        } = hello
        else {
            return Err(unexpected("HELLO", &hello));
        };
        if !(min_version..=max_version).contains(&VERSION) {
            return Err(Error::Handshake(format!(
                "server speaks versions {min_version:#x}-{max_version:#x}, we speak {VERSION:#x}"
            )));
        }
        let tx_count = cfg.tx_queues.clamp(1, max_s2m_ring.saturating_add(1));
        let rx_count = rx_queues.clamp(1, max_m2s_ring.saturating_add(1));
        let log2 = cfg.log2_ring_size.min(max_log2_ring_size).max(1);

        let init = Message::Init {
            version: VERSION,
            id: cfg.id,
            mode: cfg.mode,
            secret: cfg.secret.clone(),
            name: cfg.name.clone(),
        };
        control::send(sock, &init, None)?;
        expect_ack(sock)?;

        let rings = tx_count as usize + rx_count as usize;
        let layout = Layout::new(rings, log2, cfg.buffer_size, max_region)?;
        let mut regions = Vec::new();
        for (index, len) in layout.region_lens().into_iter().enumerate() {
            let region = Region::create(len)?;
            control::send(
                sock,
                &Message::AddRegion {
                    index: index as u16,
                    size: len as u64,
                },
                Some(region.fd().as_fd()),
            )?;
            expect_ack(sock)?;
            regions.push(region);
        }

        let slots = 1usize << log2;
        let mut tx = Vec::new();
        let mut rx = Vec::new();
        for global_index in 0..rings {
            let is_tx = global_index < tx_count as usize;
            let (ring_region, offset) = layout.ring(global_index);
            // SAFETY: `Layout` sized the ring's region to hold it at this
            // offset, and the connection keeps the region mapped for as
            // long as it keeps the ring.
            let ring = unsafe { Ring::new(regions[ring_region as usize].ptr().add(offset), log2) };
            ring.set_cookie();
            for slot in 0..slots as u16 {
                ring.set_desc(
                    slot,
                    Desc {
                        flags: 0,
                        region: layout.buffer_region,
                        length: cfg.buffer_size,
                        offset: layout.buffer_offset(global_index, slot as usize) as u32,
                    },
                );
            }
            let eventfd =
                rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            let index = if is_tx {
                global_index
            } else {
                global_index - tx_count as usize
            };
            let add_ring = Message::AddRing {
                flags: if is_tx { RING_FLAG_S2M } else { 0 },
                index: index as u16,
                region: ring_region,
                offset: offset as u32,
                log2_ring_size: log2,
                private_hdr_size: 0,
            };
            control::send(sock, &add_ring, Some(eventfd.as_fd()))?;
            expect_ack(sock)?;
            let queue = Queue {
                ring,
                eventfd,
                next: 0,
                read: 0,
                global_index,
            };
            if is_tx {
                tx.push(queue);
            } else {
                rx.push(queue);
            }
        }

        control::send(
            sock,
            &Message::Connect {
                if_name: cfg.if_name.clone(),
            },
            None,
        )?;
        let (reply, _) = control::expect(sock)?;
        if !matches!(reply, Message::Connected { .. }) {
            return Err(unexpected("CONNECTED", &reply));
        }

        // The server zeroed every index on CONNECT: post all receive buffers.
        let size = 1u16 << log2;
        for q in &mut rx {
            q.next = size;
            q.ring.set_head(size);
        }
        let mut connection = Connection {
            role: Role::Client,
            control: socket,
            regions,
            tx,
            rx,
            buffer_size: cfg.buffer_size,
            buffer_region: layout.buffer_region,
            buffers_offset: layout.buffers_offset,
            peer_name,
            counters: Counters::default(),
            said_goodbye: false,
        };
        connection.set_rx_mode(cfg.rx_mode);
        tracing::info!(socket = %cfg.socket.display(), peer = %connection.peer_name, "memif connected");
        Ok(connection)
    }
}

/// Where the client puts its rings and buffers in the regions it hands
/// over.
///
/// Each ring gets a region of its own, at offset 0, and the buffers one
/// more. DPDK 22.11's memif server (OVS-DPDK's) computes a ring's address
/// from its region's mapping before it checks that the interface is
/// connected, and the region is mapped only at CONNECT: a PMD thread
/// preempted between the two reads address 0 + the ring's offset. At
/// offset 0 that is NULL, which it checks for; at any other offset it
/// crashes ovs-vswitchd: with every ring in region 0, core dumps here
/// showed address 0x4080, ring 1 of a two-queue port. A server that takes
/// fewer regions gets the single-region layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    rings: usize,
    ring_bytes: usize,
    slots: usize,
    buffer_size: usize,
    /// Rings each in a region of their own.
    separate: bool,
    buffer_region: u16,
    buffers_offset: usize,
}

impl Layout {
    fn new(
        rings: usize,
        log2: u8,
        buffer_size: u32,
        server_max_region: u16,
    ) -> Result<Layout, Error> {
        let ring_bytes = ring_size(log2);
        // Region indices run 0..=max_region.
        let separate = rings <= server_max_region as usize;
        let buffers = rings * (1usize << log2) * buffer_size as usize;
        let end = buffers + if separate { 0 } else { rings * ring_bytes };
        // A descriptor's offset is 32 bits: past 4 GiB it would wrap onto
        // another queue's buffers.
        if end > 1usize << 32 {
            return Err(Error::Handshake(format!(
                "{rings} rings of {} buffers of {buffer_size} bytes need {end} bytes, \
                 past the 4 GiB a descriptor's offset reaches",
                1usize << log2
            )));
        }
        Ok(Layout {
            rings,
            ring_bytes,
            slots: 1 << log2,
            buffer_size: buffer_size as usize,
            separate,
            buffer_region: if separate { rings as u16 } else { 0 },
            buffers_offset: if separate { 0 } else { rings * ring_bytes },
        })
    }

    /// The lengths of the regions, by index.
    fn region_lens(&self) -> Vec<usize> {
        let buffers = self.rings * self.slots * self.buffer_size;
        if self.separate {
            let mut lens = vec![self.ring_bytes; self.rings];
            lens.push(buffers);
            lens
        } else {
            vec![self.buffers_offset + buffers]
        }
    }

    /// Ring `global_index`'s region and offset in it.
    fn ring(&self, global_index: usize) -> (u16, usize) {
        if self.separate {
            (global_index as u16, 0)
        } else {
            (0, global_index * self.ring_bytes)
        }
    }

    /// The offset of a slot's buffer in the buffer region.
    fn buffer_offset(&self, global_index: usize, slot: usize) -> usize {
        self.buffers_offset + (global_index * self.slots + slot) * self.buffer_size
    }
}

fn connect_socket(path: &Path) -> Result<OwnedFd, Error> {
    let fail = |e: rustix::io::Errno| Error::Socket {
        path: path.display().to_string(),
        source: e.into(),
    };
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(fail)?;
    let addr = SocketAddrUnix::new(path).map_err(fail)?;
    rustix::net::connect(&socket, &addr).map_err(fail)?;
    control::set_timeouts(socket.as_fd())?;
    Ok(socket)
}

fn expect_ack(sock: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
    match control::expect(sock)? {
        (Message::Ack, _) => Ok(()),
        (other, _) => Err(unexpected("ACK", &other)),
    }
}

pub(crate) fn unexpected(expected: &'static str, got: &Message) -> Error {
    Error::Unexpected {
        expected,
        got: got.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ring_sits_at_offset_0_of_a_region_of_its_own() {
        // Two queue pairs against DPDK's server (max_region 255).
        let layout = Layout::new(4, 10, 2048, 255).unwrap();
        let lens = layout.region_lens();
        assert_eq!(lens.len(), 5);
        for (ring, len) in lens.iter().take(4).enumerate() {
            assert_eq!(layout.ring(ring), (ring as u16, 0));
            assert_eq!(*len, ring_size(10));
        }
        assert_eq!(layout.buffer_region, 4);
        let last = layout.buffer_offset(3, 1023) + 2048;
        assert_eq!(last, lens[4], "the last buffer ends the buffer region");
    }

    #[test]
    fn buffers_past_what_a_32_bit_offset_reaches_are_refused() {
        // Three queue pairs of 16384 slots of 65535 bytes: 6.4 GB.
        let e = Layout::new(6, 14, 65535, 255).unwrap_err();
        assert!(e.to_string().contains("past the 4 GiB"), "{e}");
        // Two pairs fit, just, with the rings in regions of their own.
        assert!(Layout::new(4, 14, 65535, 255).is_ok());
    }

    #[test]
    fn a_server_with_fewer_regions_gets_rings_and_buffers_in_one() {
        let layout = Layout::new(4, 10, 2048, 3).unwrap();
        let lens = layout.region_lens();
        assert_eq!(lens.len(), 1);
        assert_eq!(layout.ring(0), (0, 0));
        assert_eq!(layout.ring(3), (0, 3 * ring_size(10)));
        assert_eq!(layout.buffer_region, 0);
        assert_eq!(layout.buffer_offset(0, 0), 4 * ring_size(10));
        assert_eq!(layout.buffer_offset(3, 1023) + 2048, lens[0]);
    }
}
