//! One userspace interface, whatever carries it: a memif connection or a
//! vhost-user device, in either role. The daemon only sees this.

use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixListener;

use anyhow::{Context, Result};
use memif::{Client, ClientConfig, Connection, RxMode, Server, ServerConfig};
use vhost_user_net::VhostUserNet;

use crate::spec::{InterfaceSpec, Kind, Role};

pub use memif::Counters;

/// Where a server-role interface waits for its peer.
pub enum Listener {
    Memif(Server),
    Vhost(UnixListener),
}

impl Listener {
    /// Listens on the interface's socket when we are its server.
    pub fn bind(spec: &InterfaceSpec) -> Result<Option<Listener>> {
        if spec.role != Role::Server {
            return Ok(None);
        }
        let listener = match spec.kind {
            Kind::Memif => {
                let mut cfg = ServerConfig::new(&spec.socket);
                cfg.if_name = spec.if_name.clone();
                cfg.name = "userspace-app".into();
                cfg.secret = spec.secret.clone();
                cfg.rx_mode = RxMode::Interrupt;
                Listener::Memif(Server::bind(cfg)?)
            }
            Kind::VhostUser => {
                let _ = std::fs::remove_file(&spec.socket);
                let listener = UnixListener::bind(&spec.socket)
                    .with_context(|| format!("listen on {}", spec.socket.display()))?;
                Listener::Vhost(listener)
            }
        };
        Ok(Some(listener))
    }

    /// Waits for a peer and completes its handshake.
    pub fn accept(&self) -> Result<Port> {
        Ok(match self {
            Listener::Memif(server) => Port::Memif(Box::new(server.accept()?)),
            Listener::Vhost(listener) => {
                let (stream, _) = listener.accept()?;
                Port::Vhost(Box::new(VhostUserNet::from_stream(stream, vhost_config())?))
            }
        })
    }
}

fn vhost_config() -> vhost_user_net::Config {
    vhost_user_net::Config {
        rx_interrupts: true,
        ..Default::default()
    }
}

/// Bursts received per queue in one call of `rx_all`.
const BURSTS_PER_PASS: usize = 16;

/// The copy buffer's starting size: a jumbo frame.
const MAX_FRAME_COPY: usize = 9216;

pub enum Port {
    Memif(Box<Connection>),
    Vhost(Box<VhostUserNet>),
}

impl Port {
    /// Connects to the peer's socket when we are the client.
    pub fn connect(spec: &InterfaceSpec) -> Result<Port> {
        Ok(match spec.kind {
            Kind::Memif => {
                let mut cfg = ClientConfig::new(&spec.socket);
                cfg.if_name = spec.if_name.clone();
                cfg.name = "userspace-app".into();
                cfg.secret = spec.secret.clone();
                cfg.rx_mode = RxMode::Interrupt;
                // The rings the port was made with: DPDK's memif maps a
                // queue we did not give onto ring 0. Unpublished (the Go
                // plugin's data): one to send on, as many to receive on as
                // the server takes.
                if let Some((rx, tx)) = spec.queues {
                    (cfg.rx_queues, cfg.tx_queues) = (rx, tx);
                }
                Port::Memif(Box::new(Client::connect(&cfg)?))
            }
            Kind::VhostUser => Port::Vhost(Box::new(VhostUserNet::connect(
                &spec.socket,
                vhost_config(),
            )?)),
        })
    }

    pub fn peer(&self) -> String {
        match self {
            Port::Memif(c) => c.peer_name().to_string(),
            Port::Vhost(_) => "vhost-user backend".to_string(),
        }
    }

    /// The fds that wake the daemon: receive interrupts and the control
    /// channel (readable when the peer leaves).
    pub fn wake_fds(&self) -> Vec<BorrowedFd<'_>> {
        match self {
            Port::Memif(c) => {
                let mut fds = vec![c.control_fd()];
                fds.extend((0..c.rx_queues()).map(|q| c.rx_eventfd(q)));
                fds
            }
            Port::Vhost(v) => vec![v.control_fd(), v.rx_eventfd()],
        }
    }

    /// Why the peer is gone, if it is.
    pub fn gone(&mut self) -> Option<String> {
        match self {
            Port::Memif(c) => c.poll_disconnect(),
            Port::Vhost(v) => v
                .backend_gone()
                .then(|| "the vhost-user backend closed the socket".to_string()),
        }
    }

    pub fn tx(&mut self, frames: &[&[u8]]) -> usize {
        match self {
            Port::Memif(c) => c.tx_burst(0, frames),
            Port::Vhost(v) => v.tx_burst(frames),
        }
    }

    /// Receives everything waiting on every queue, `burst` at a time. Each
    /// frame is copied out of the shared memory before `f` sees it: the
    /// peer can still write there, and a frame must not change while it is
    /// parsed.
    ///
    /// Returns whether a queue may hold more (it gave its whole share):
    /// its interrupt is acknowledged, so the caller must come back without
    /// waiting for another.
    pub fn rx_all(&mut self, burst: usize, mut f: impl FnMut(&[u8])) -> bool {
        let mut copy = Vec::with_capacity(MAX_FRAME_COPY);
        let mut f = |frame: &[u8]| {
            copy.clear();
            copy.extend_from_slice(frame);
            f(&copy)
        };
        match self {
            // At most `BURSTS_PER_PASS` bursts a queue: what is left waits
            // for the next pass (the caller polls again at once).
            Port::Memif(c) => {
                let mut more = false;
                for q in 0..c.rx_queues() {
                    c.ack_interrupt(q);
                    more |= (0..BURSTS_PER_PASS).all(|_| c.rx_burst(q, burst, &mut f) == burst);
                }
                more
            }
            Port::Vhost(v) => {
                v.ack_interrupt();
                (0..BURSTS_PER_PASS).all(|_| v.rx_burst(burst, &mut f) == burst)
            }
        }
    }

    pub fn counters(&self) -> Counters {
        match self {
            Port::Memif(c) => c.counters(),
            Port::Vhost(v) => v.counters(),
        }
    }

    /// Says goodbye to the peer where the protocol has a way to.
    pub fn close(self, reason: &str) {
        if let Port::Memif(c) = self {
            let _ = c.disconnect(reason);
        }
    }
}
