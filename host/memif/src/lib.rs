//! memif: a packet interface over shared memory between two processes.
//!
//! The *client* (memif "slave") allocates one shared-memory region holding
//! every ring and packet buffer and hands it, with one eventfd per ring,
//! to the *server* (memif "master") over a unix SOCK_SEQPACKET socket
//! ([`protocol`]). Then both sides move frames through the rings
//! ([`ring`]) without copying through the kernel.
//!
//! Roles: [`Client::connect`] and [`Server::accept`] give a [`Connection`]
//! with batched `tx_burst` / `rx_burst` per queue, polling or interrupt
//! (eventfd) mode per receive queue, and clean disconnect.
//! Interoperates with DPDK's net_memif and VPP.

pub mod protocol;
pub mod ring;

mod connection;
mod control;
mod role_client;
mod role_server;

pub use connection::{Connection, RxMode};
pub use protocol::{DecodeError, Message, Mode, MESSAGE_SIZE};
pub use role_client::{Client, ClientConfig};
pub use role_server::{Server, ServerConfig};
pub use shm::Counters;

/// memif protocol version 2.0.
pub const VERSION: u16 = 0x0200;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("memif socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("memif control channel: {0}")]
    Io(#[from] std::io::Error),
    #[error("memif peer sent a malformed message: {0}")]
    Malformed(#[from] DecodeError),
    #[error("memif peer sent {got} where {expected} was expected")]
    Unexpected { expected: &'static str, got: String },
    #[error("memif peer refused the connection: {reason} (code {code})")]
    Refused { code: u32, reason: String },
    #[error("memif handshake: {0}")]
    Handshake(String),
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::Io(e.into())
    }
}
