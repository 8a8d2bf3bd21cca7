//! The server ("master") role: listen on a socket, check the client's id,
//! secret and mode, map the memory it hands over, and come out connected.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::connection::{Connection, Queue, Role, RxMode};
use crate::protocol::{Message, Mode, RING_FLAG_S2M};
use crate::ring::{ring_size, Ring, COOKIE};
use crate::role_client::unexpected;
use crate::{control, Error, VERSION};
use shm::{Counters, Region};

/// Largest ring a client may propose (2^14 descriptors).
const MAX_LOG2_RING_SIZE: u8 = 14;
/// Largest region a client may hand over.
const MAX_REGION_BYTES: u64 = 4 << 30;
const MAX_REGIONS: usize = 255;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub socket: PathBuf,
    pub id: u32,
    pub secret: String,
    pub mode: Mode,
    pub name: String,
    pub if_name: String,
    /// Server-to-client rings we accept (our transmit queues).
    pub tx_queues: u16,
    /// Client-to-server rings we accept (our receive queues).
    pub rx_queues: u16,
    pub rx_mode: RxMode,
}

impl ServerConfig {
    pub fn new(socket: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            socket: socket.into(),
            id: 0,
            secret: String::new(),
            mode: Mode::Ethernet,
            name: "userspace-cni".into(),
            if_name: "memif0".into(),
            tx_queues: 1,
            rx_queues: 1,
            rx_mode: RxMode::Polling,
        }
    }
}

pub struct Server {
    listener: OwnedFd,
    cfg: ServerConfig,
}

impl Server {
    /// Listens on the configured path (a stale socket file is replaced).
    pub fn bind(cfg: ServerConfig) -> Result<Server, Error> {
        let fail = |e: rustix::io::Errno| Error::Socket {
            path: cfg.socket.display().to_string(),
            source: e.into(),
        };
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(fail)?;
        match std::fs::remove_file(&cfg.socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Socket {
                    path: cfg.socket.display().to_string(),
                    source: e,
                })
            }
            _ => {}
        }
        let addr = SocketAddrUnix::new(&cfg.socket).map_err(fail)?;
        rustix::net::bind(&listener, &addr).map_err(fail)?;
        rustix::net::listen(&listener, 1).map_err(fail)?;
        Ok(Server { listener, cfg })
    }

    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts one client and completes the handshake. A client with the
    /// wrong id, secret or mode is told why and refused.
    pub fn accept(&self) -> Result<Connection, Error> {
        let socket = rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC)?;
        control::set_timeouts(socket.as_fd())?;
        match handshake(&self.cfg, socket.as_fd()) {
            Ok(parts) => Ok(parts.into_connection(socket, &self.cfg)),
            Err(Refusal(reason, error)) => {
                let _ = control::send(
                    socket.as_fd(),
                    &Message::Disconnect { code: 1, reason },
                    None,
                );
                Err(error)
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cfg.socket);
    }
}

/// Why we refused, for the peer, and the error for our caller.
struct Refusal(String, Error);

fn refuse(reason: impl Into<String>) -> Refusal {
    let reason = reason.into();
    Refusal(reason.clone(), Error::Handshake(reason))
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal(e.to_string(), e)
    }
}

struct Parts {
    peer_name: String,
    regions: Vec<Region>,
    tx: Vec<Queue>,
    rx: Vec<Queue>,
}

impl Parts {
    fn into_connection(self, socket: OwnedFd, cfg: &ServerConfig) -> Connection {
        let mut connection = Connection {
            role: Role::Server,
            control: socket,
            regions: self.regions,
            tx: self.tx,
            rx: self.rx,
            buffer_size: 0,
            buffer_region: 0,
            buffers_offset: 0,
            peer_name: self.peer_name,
            counters: Counters::default(),
            said_goodbye: false,
        };
        connection.set_rx_mode(cfg.rx_mode);
        connection
    }
}

fn handshake(cfg: &ServerConfig, sock: BorrowedFd<'_>) -> Result<Parts, Refusal> {
    let hello = Message::Hello {
        name: cfg.name.clone(),
        min_version: VERSION,
        max_version: VERSION,
        // The highest region index, as DPDK sends it (and clients read it).
        max_region: (MAX_REGIONS - 1) as u16,
        max_m2s_ring: cfg.tx_queues.saturating_sub(1),
        max_s2m_ring: cfg.rx_queues.saturating_sub(1),
        max_log2_ring_size: MAX_LOG2_RING_SIZE,
    };
    control::send(sock, &hello, None)?;

    let (init, _) = control::expect(sock)?;
    let Message::Init {
        version,
        id,
        mode,
        secret,
        name: peer_name,
    } = init
    else {
        return Err(unexpected("INIT", &init).into());
    };
    if version != VERSION {
        return Err(refuse(format!("unsupported version {version:#x}")));
    }
    if id != cfg.id {
        return Err(refuse(format!(
            "no interface with id {id} (expected {})",
            cfg.id
        )));
    }
    if secret != cfg.secret {
        return Err(refuse("incorrect secret"));
    }
    if mode != cfg.mode {
        return Err(refuse(format!(
            "mode mismatch: client {mode:?}, server {:?}",
            cfg.mode
        )));
    }
    control::send(sock, &Message::Ack, None)?;

    let mut regions: Vec<Region> = Vec::new();
    let mut tx: Vec<Option<Queue>> = (0..cfg.tx_queues).map(|_| None).collect();
    let mut rx: Vec<Option<Queue>> = (0..cfg.rx_queues).map(|_| None).collect();
    loop {
        let (message, fd) = control::expect(sock)?;
        match message {
            Message::AddRegion { index, size } => {
                let fd = fd.ok_or_else(|| refuse("ADD_REGION without a memory fd"))?;
                if index as usize != regions.len() || regions.len() >= MAX_REGIONS {
                    return Err(refuse(format!("unexpected region index {index}")));
                }
                if size == 0 || size > MAX_REGION_BYTES {
                    return Err(refuse(format!("region size {size} out of range")));
                }
                let region = Region::map(fd, size as usize)
                    .map_err(|e| refuse(format!("cannot map region {index}: {e}")))?;
                regions.push(region);
            }
            Message::AddRing {
                flags,
                index,
                region,
                offset,
                log2_ring_size,
                ..
            } => {
                let eventfd = fd.ok_or_else(|| refuse("ADD_RING without an eventfd"))?;
                let mapped = regions
                    .get(region as usize)
                    .ok_or_else(|| refuse(format!("ring {index}: no region {region}")))?;
                if log2_ring_size == 0 || log2_ring_size > MAX_LOG2_RING_SIZE {
                    return Err(refuse(format!(
                        "ring {index}: size 2^{log2_ring_size} out of range"
                    )));
                }
                let end = offset as usize + ring_size(log2_ring_size);
                if end > mapped.size() || offset % 8 != 0 {
                    return Err(refuse(format!("ring {index}: outside region {region}")));
                }
                // SAFETY: the ring lies inside the mapped region (checked
                // above) and is 8-aligned; the region is kept alive with it.
                let ring = unsafe { Ring::new(mapped.ptr().add(offset as usize), log2_ring_size) };
                if ring.cookie() != COOKIE {
                    return Err(refuse(format!("ring {index}: bad cookie")));
                }
                let queues = if flags & RING_FLAG_S2M != 0 {
                    &mut rx
                } else {
                    &mut tx
                };
                let slot = queues
                    .get_mut(index as usize)
                    .ok_or_else(|| refuse(format!("invalid ring index {index}")))?;
                *slot = Some(Queue {
                    ring,
                    eventfd,
                    next: 0,
                    read: 0,
                    global_index: index as usize,
                });
            }
            Message::Connect { .. } => {
                // Only the rings the client added, and at least one each way.
                let tx: Vec<Queue> = tx.into_iter().map_while(|q| q).collect();
                let rx: Vec<Queue> = rx.into_iter().map_while(|q| q).collect();
                if tx.is_empty() || rx.is_empty() {
                    return Err(refuse("CONNECT before one ring each way was added"));
                }
                for q in tx.iter().chain(&rx) {
                    q.ring.set_head(0);
                    q.ring.set_tail(0);
                }
                control::send(
                    sock,
                    &Message::Connected {
                        if_name: cfg.if_name.clone(),
                    },
                    None,
                )?;
                return Ok(Parts {
                    peer_name,
                    regions,
                    tx,
                    rx,
                });
            }
            other => return Err(unexpected("ADD_REGION, ADD_RING or CONNECT", &other).into()),
        }
        control::send(sock, &Message::Ack, None)?;
    }
}
