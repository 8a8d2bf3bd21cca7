//! `userspace-app up`: owns the container's userspace interfaces. One
//! thread, one poll loop: receive interrupts, disconnects, the
//! control socket and signals wake it; it answers ARP and echo requests,
//! runs pings and reconnects interfaces whose peer went away.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::event::{PollFd, PollFlags};
use serde_json::{json, Value};

use crate::ctl::{PendingRequest, Request};
use crate::port::{Counters, Listener, Port};
use crate::spec::{mac_text, InterfaceSpec, Kind, Role};
use crate::stack::{Event, Stack};
use crate::tap::Tap;

const RETRY: Duration = Duration::from_millis(200);
const BURST: usize = 64;
/// Bursts moved per interface and direction in one pass of the loop, so
/// that a flood on one cannot keep the loop from the others, the control
/// socket or a signal.
const BURSTS_PER_PASS: usize = 16;

enum Link {
    Down {
        since: Instant,
        /// Why the link went down (or that it never came up).
        reason: String,
        /// What the last connection attempt said.
        last_error: String,
    },
    Up(Port),
}

/// How a ping ended: its answer is a result (finished; unreachable, as
/// ping(8)'s "Destination Host Unreachable") or an error.
enum PingEnd {
    Finished,
    Unreachable(String),
    Failed(String),
}

struct Interface {
    spec: InterfaceSpec,
    stack: Stack,
    /// `--tap`: the kernel device frames go to and come from, instead of
    /// our own stack.
    tap: Option<Tap>,
    link: Link,
    /// Server role: our listening socket, shared with the connector.
    listener: Option<Arc<Listener>>,
    /// While down: what the connector thread reports (errors, then a port).
    connector: Option<Receiver<Result<Port>>>,
    connects: u64,
    /// Counters of earlier connections, so `show` counts across reconnects.
    past: Counters,
}

struct PingOp {
    reply_to: UnixStream,
    iface: usize,
    dst: Ipv4Addr,
    next_hop: Ipv4Addr,
    count: u16,
    interval: Duration,
    timeout: Duration,
    size: u16,
    ident: u16,
    sent: u16,
    next_send: Instant,
    arp_tries: u8,
    send_times: Vec<Option<Instant>>,
    replies: Vec<(u16, Duration)>,
}

struct Waiter {
    reply_to: UnixStream,
    deadline: Instant,
}

pub struct Daemon {
    ifaces: Vec<Interface>,
    /// Connector threads write a byte here to wake the poll loop.
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    ctl: UnixListener,
    ctl_path: PathBuf,
    /// Control requests still arriving, read without blocking.
    requests: Vec<PendingRequest>,
    pings: Vec<PingOp>,
    waiters: Vec<Waiter>,
    next_ident: u16,
}

/// How long a control client has to send its request line.
const REQUEST_WITHIN: Duration = Duration::from_secs(1);
/// Control requests read at once; more connections are refused until
/// these finish, so clients cannot grow the daemon's poll set without end.
const MAX_PENDING_REQUESTS: usize = 32;
/// `wait`s and `ping`s in progress at once (each holds its client's
/// connection, a ping its send times); more are answered "busy".
const MAX_OPERATIONS: usize = 32;
/// Connections taken per pass of the loop; the rest wait in the kernel's
/// backlog, so a connect flood cannot keep the loop from forwarding.
const ACCEPTS_PER_PASS: usize = 8;

impl Daemon {
    /// With `tap`, each interface gets a kernel TAP device (made here,
    /// before anything is served, so that a failure is an error at start).
    pub fn new(specs: Vec<InterfaceSpec>, ctl_path: &Path, tap: bool) -> Result<Daemon> {
        let taps = specs
            .iter()
            .map(|spec| tap.then(|| Tap::create(spec)).transpose())
            .collect::<Result<Vec<_>>>()?;
        let _ = std::fs::remove_file(ctl_path);
        let ctl = UnixListener::bind(ctl_path)
            .with_context(|| format!("control socket {}", ctl_path.display()))?;
        ctl.set_nonblocking(true)?;
        let mut ifaces = Vec::new();
        for (spec, tap) in specs.into_iter().zip(taps) {
            let listener = Listener::bind(&spec)
                .with_context(|| format!("interface {}", spec.if_name))?
                .map(Arc::new);
            ifaces.push(Interface {
                stack: Stack::new(spec.mac, spec.address),
                tap,
                link: Link::Down {
                    since: Instant::now(),
                    reason: "not connected yet".into(),
                    last_error: String::new(),
                },
                listener,
                connector: None,
                connects: 0,
                past: Counters::default(),
                spec,
            });
        }
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        Ok(Daemon {
            ifaces,
            wake_rx,
            wake_tx,
            ctl,
            ctl_path: ctl_path.to_path_buf(),
            requests: Vec::new(),
            pings: Vec::new(),
            waiters: Vec::new(),
            next_ident: (std::process::id() & 0xffff) as u16,
        })
    }

    /// Runs until `stop` becomes readable (a signal arrived).
    pub fn run(&mut self, stop: BorrowedFd<'_>) -> Result<()> {
        let served = self.serve(stop);
        match &served {
            Ok(()) => tracing::info!("stopping"),
            Err(e) => tracing::error!("stopping: {e:#}"),
        }
        for iface in self.ifaces.drain(..) {
            if let Link::Up(port) = iface.link {
                port.close("userspace-app stopping");
            }
            // A connector thread may still hold the listener: remove our
            // socket ourselves.
            if iface.listener.is_some() {
                let _ = std::fs::remove_file(&iface.spec.socket);
            }
        }
        let _ = std::fs::remove_file(&self.ctl_path);
        served
    }

    /// The poll loop, until `stop` or an error.
    fn serve(&mut self, stop: BorrowedFd<'_>) -> Result<()> {
        // A queue that gave its whole share of a pass may hold more.
        let mut more = false;
        loop {
            self.connect_links();
            let busy =
                !self.pings.is_empty() || !self.waiters.is_empty() || !self.requests.is_empty();
            let timeout = if more {
                Duration::ZERO
            } else if busy {
                Duration::from_millis(5)
            } else {
                RETRY
            };
            if self.wait(stop, timeout)? {
                return Ok(());
            }
            more = self.service_links()?;
            self.accept_requests();
            self.progress_pings();
            self.answer_waiters();
        }
    }

    /// Sleeps until something happens; true when asked to stop.
    fn wait(&self, stop: BorrowedFd<'_>, timeout: Duration) -> Result<bool> {
        let mut fds = vec![
            PollFd::new(&stop, PollFlags::IN),
            PollFd::new(&self.ctl, PollFlags::IN),
        ];
        fds.push(PollFd::new(&self.wake_rx, PollFlags::IN));
        fds.extend(
            self.requests
                .iter()
                .map(|r| PollFd::new(r.stream(), PollFlags::IN)),
        );
        for iface in &self.ifaces {
            if let Some(tap) = &iface.tap {
                fds.push(PollFd::from_borrowed_fd(tap.fd(), PollFlags::IN));
            }
            if let Link::Up(port) = &iface.link {
                let wake = port.wake_fds();
                fds.extend(
                    wake.into_iter()
                        .map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN)),
                );
            }
        }
        let ts = rustix::event::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(fds[0].revents().contains(PollFlags::IN))
    }

    /// Brings links up. Handshakes block (a peer may take its time, or
    /// never answer), so each down link has a connector thread that keeps
    /// trying and hands over the port; the poll loop stays responsive.
    fn connect_links(&mut self) {
        let mut byte = [0u8; 64];
        while matches!(std::io::Read::read(&mut &self.wake_rx, &mut byte), Ok(n) if n > 0) {}
        for iface in &mut self.ifaces {
            if matches!(iface.link, Link::Up(_)) {
                continue;
            }
            let Some(connector) = &iface.connector else {
                iface.connector = Some(spawn_connector(
                    &iface.spec,
                    iface.listener.clone(),
                    &self.wake_tx,
                ));
                continue;
            };
            while let Ok(attempt) = connector.try_recv() {
                match attempt {
                    Ok(mut port) => {
                        tracing::info!(interface = %iface.spec.if_name, peer = %port.peer(), "connected");
                        iface.connects += 1;
                        // Announce ourselves so the vSwitch learns our MAC.
                        port.tx(&[&iface.stack.arp_request(iface.spec.address)]);
                        if let Some(tap) = &iface.tap {
                            tap.set_carrier(true);
                        }
                        iface.link = Link::Up(port);
                        iface.connector = None;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(interface = %iface.spec.if_name, "connect: {e:#}");
                        if let Link::Down { last_error, .. } = &mut iface.link {
                            *last_error = format!("{e:#}");
                        }
                    }
                }
            }
        }
    }

    /// Moves frames; true when a queue may hold more. An error is a TAP
    /// that is gone (the app then stops: its container restarts it).
    fn service_links(&mut self) -> Result<bool> {
        let mut more = false;
        for (index, iface) in self.ifaces.iter_mut().enumerate() {
            let Link::Up(port) = &mut iface.link else {
                // What the kernel sends while the link is down is lost, as
                // on a NIC without carrier.
                if let Some(tap) = &mut iface.tap {
                    for _ in 0..BURSTS_PER_PASS {
                        if tap.read_burst(BURST, |_| {})? < BURST {
                            break;
                        }
                    }
                }
                continue;
            };
            if let Some(reason) = port.gone() {
                tracing::warn!(interface = %iface.spec.if_name, "disconnected: {reason}");
                if let Some(tap) = &iface.tap {
                    tap.set_carrier(false);
                }
                iface.past.add(port.counters());
                iface.link = Link::Down {
                    since: Instant::now(),
                    reason: format!("disconnected: {reason}"),
                    last_error: String::new(),
                };
                continue;
            }
            if let Some(tap) = &mut iface.tap {
                more |= port.rx_all(BURST, |frame| tap.write(frame));
                for _ in 0..BURSTS_PER_PASS {
                    // Stop reading when the ring is full: the kernel's
                    // queue holds the rest until the next pass.
                    let mut full = false;
                    let read = tap.read_burst(BURST, |frames| {
                        full = port.tx(frames) < frames.len();
                    })?;
                    if read < BURST || full {
                        break;
                    }
                }
                continue;
            }
            let mut replies: Vec<Vec<u8>> = Vec::new();
            let mut echo_replies = Vec::new();
            let stack = &mut iface.stack;
            more |= port.rx_all(BURST, |frame| match stack.receive(frame) {
                Event::Reply(reply) => replies.push(reply),
                Event::EchoReply { ident, seq, from } => echo_replies.push((ident, seq, from)),
                Event::Learned | Event::Ignored => {}
            });
            if !replies.is_empty() {
                let refs: Vec<&[u8]> = replies.iter().map(Vec::as_slice).collect();
                port.tx(&refs);
            }
            for (ident, seq, from) in echo_replies {
                if let Some(op) = self
                    .pings
                    .iter_mut()
                    .find(|op| op.iface == index && op.ident == ident && op.dst == from)
                {
                    if let Some(Some(sent)) = op.send_times.get(seq as usize) {
                        if !op.replies.iter().any(|(s, _)| *s == seq) {
                            op.replies.push((seq, sent.elapsed()));
                        }
                    }
                }
            }
        }
        Ok(more)
    }

    /// Takes new control connections and whatever their requests have
    /// sent so far; answers each request once its line is complete.
    fn accept_requests(&mut self) {
        for _ in 0..ACCEPTS_PER_PASS {
            let Ok((stream, _)) = self.ctl.accept() else {
                break;
            };
            if self.requests.len() >= MAX_PENDING_REQUESTS {
                tracing::warn!("control request refused: {MAX_PENDING_REQUESTS} already pending");
                continue;
            }
            match PendingRequest::new(stream, REQUEST_WITHIN) {
                Ok(pending) => self.requests.push(pending),
                Err(e) => tracing::warn!("control request: {e}"),
            }
        }
        let mut complete = Vec::new();
        let mut index = 0;
        while index < self.requests.len() {
            match self.requests[index].progress() {
                Some(request) => complete.push((self.requests.swap_remove(index), request)),
                None => index += 1,
            }
        }
        for (pending, request) in complete {
            let handled = pending
                .into_stream()
                .map_err(anyhow::Error::from)
                .and_then(|stream| self.handle_request(stream, request));
            if let Err(e) = handled {
                tracing::warn!("control request: {e:#}");
            }
        }
    }

    fn handle_request(&mut self, mut stream: UnixStream, request: Result<Request>) -> Result<()> {
        let request = match request {
            Ok(r) => r,
            Err(e) => return answer(&mut stream, &json!({"error": format!("{e:#}")})),
        };
        let long = matches!(request, Request::Wait { .. } | Request::Ping { .. });
        if long && self.waiters.len() + self.pings.len() >= MAX_OPERATIONS {
            let busy = format!("busy: {MAX_OPERATIONS} waits and pings in progress");
            return answer(&mut stream, &json!({ "error": busy }));
        }
        match request {
            Request::Show => answer(&mut stream, &self.show()),
            Request::Wait { timeout_ms } => {
                self.waiters.push(Waiter {
                    reply_to: stream,
                    deadline: Instant::now() + Duration::from_millis(timeout_ms),
                });
                self.answer_waiters();
                Ok(())
            }
            Request::Ping {
                dst,
                count,
                interval_ms,
                timeout_ms,
                size,
            } => {
                let Some(iface) = self.route(dst) else {
                    return answer(
                        &mut stream,
                        &json!({"error": format!("no interface has a route to {dst}")}),
                    );
                };
                if let Some(tap) = &self.ifaces[iface].tap {
                    let error = format!(
                        "{} is a TAP device (--tap): the kernel answers for it, ping with ping(8)",
                        tap.name()
                    );
                    return answer(&mut stream, &json!({ "error": error }));
                }
                let spec = &self.ifaces[iface].spec;
                let next_hop = if spec.on_link(dst) {
                    dst
                } else {
                    spec.gateway.unwrap_or(dst)
                };
                self.next_ident = self.next_ident.wrapping_add(1);
                self.pings.push(PingOp {
                    reply_to: stream,
                    iface,
                    dst,
                    next_hop,
                    count,
                    interval: Duration::from_millis(interval_ms),
                    timeout: Duration::from_millis(timeout_ms),
                    size,
                    ident: self.next_ident,
                    sent: 0,
                    next_send: Instant::now(),
                    arp_tries: 0,
                    send_times: vec![None; count as usize + 1],
                    replies: Vec::new(),
                });
                Ok(())
            }
        }
    }

    /// The interface for `dst`: on-link first, else one with a gateway.
    fn route(&self, dst: Ipv4Addr) -> Option<usize> {
        self.ifaces
            .iter()
            .position(|i| i.spec.on_link(dst))
            .or_else(|| self.ifaces.iter().position(|i| i.spec.gateway.is_some()))
    }

    fn progress_pings(&mut self) {
        let now = Instant::now();
        let mut done = Vec::new();
        for (n, op) in self.pings.iter_mut().enumerate() {
            let iface = &mut self.ifaces[op.iface];
            let Link::Up(port) = &mut iface.link else {
                if op.sent == 0 && op.arp_tries == 0 {
                    // Give a link that is coming up a moment.
                    op.arp_tries = 1;
                    op.next_send = now + Duration::from_secs(1);
                } else if now >= op.next_send {
                    done.push((
                        n,
                        PingEnd::Failed(format!(
                            "interface {} is not connected",
                            iface.spec.if_name
                        )),
                    ));
                }
                continue;
            };
            let all_sent = op.sent >= op.count;
            let last_due = op
                .next_send
                .checked_sub(op.interval)
                .unwrap_or(op.next_send)
                + op.timeout;
            if all_sent && (op.replies.len() >= op.count as usize || now >= last_due) {
                done.push((n, PingEnd::Finished));
                continue;
            }
            if all_sent || now < op.next_send {
                continue;
            }
            let Some(mac) = iface.stack.neighbours.get(&op.next_hop).copied() else {
                if op.arp_tries >= 3 {
                    done.push((
                        n,
                        PingEnd::Unreachable(format!("no ARP reply from {}", op.next_hop)),
                    ));
                } else {
                    op.arp_tries += 1;
                    let request = iface.stack.arp_request(op.next_hop);
                    port.tx(&[&request]);
                    op.next_send = now + Duration::from_secs(1);
                }
                continue;
            };
            op.sent += 1;
            let payload = vec![0x5au8; op.size as usize];
            let frame = iface
                .stack
                .echo_request(mac, op.dst, op.ident, op.sent, &payload);
            op.send_times[op.sent as usize] = Some(Instant::now());
            port.tx(&[&frame]);
            op.next_send = now + op.interval;
        }
        for (n, end) in done.into_iter().rev() {
            let mut op = self.pings.remove(n);
            op.replies.sort();
            let answer_value = match end {
                PingEnd::Failed(e) if op.sent == 0 => json!({"error": e}),
                end => json!({
                    "dst": op.dst.to_string(),
                    "src": self.ifaces[op.iface].spec.address.to_string(),
                    "interface": self.ifaces[op.iface].spec.if_name,
                    "size": op.size,
                    "transmitted": op.sent,
                    "received": op.replies.len(),
                    "replies": op.replies.iter().map(|(seq, rtt)| json!({"seq": seq, "rtt_us": rtt.as_micros() as u64})).collect::<Vec<_>>(),
                    "unreachable": match end {
                        PingEnd::Unreachable(why) => Some(why),
                        _ => None,
                    },
                }),
            };
            let _ = answer(&mut op.reply_to, &answer_value);
        }
    }

    fn answer_waiters(&mut self) {
        let all_up = self.ifaces.iter().all(|i| matches!(i.link, Link::Up(_)));
        let now = Instant::now();
        let show = self.show();
        self.waiters.retain_mut(|w| {
            if all_up || now >= w.deadline {
                let mut value = show.clone();
                value["connected"] = json!(all_up);
                let _ = answer(&mut w.reply_to, &value);
                false
            } else {
                true
            }
        });
    }

    fn show(&self) -> Value {
        let interfaces: Vec<Value> = self
            .ifaces
            .iter()
            .map(|i| {
                let (state, peer, counters, detail) = match &i.link {
                    Link::Up(port) => {
                        let mut c = i.past;
                        c.add(port.counters());
                        ("up", port.peer(), c, String::new())
                    }
                    Link::Down {
                        since,
                        reason,
                        last_error,
                    } => {
                        let mut detail = format!("{reason} ({}s ago)", since.elapsed().as_secs());
                        if !last_error.is_empty() {
                            detail += &format!("; last attempt: {last_error}");
                        }
                        ("down", String::new(), i.past, detail)
                    }
                };
                let mut neighbours: Vec<String> = i
                    .stack
                    .neighbours
                    .iter()
                    .map(|(ip, mac)| format!("{ip} {}", mac_text(&mac.0)))
                    .collect();
                neighbours.sort();
                json!({
                    "name": i.spec.if_name,
                    "network": i.spec.network,
                    "type": if i.spec.kind == Kind::Memif { "memif" } else { "vhostuser" },
                    "role": match (i.spec.kind, i.spec.role) {
                        (Kind::Memif, Role::Client) => "slave",
                        (Kind::Memif, Role::Server) => "master",
                        (Kind::VhostUser, Role::Client) => "client",
                        (Kind::VhostUser, Role::Server) => "server",
                    },
                    "socket": i.spec.socket.display().to_string(),
                    "mac": mac_text(&i.stack.mac.0),
                    "address": i.spec.cidr(),
                    "state": state,
                    "peer": peer,
                    "detail": detail,
                    "connects": i.connects,
                    "rx_frames": counters.rx_frames,
                    "rx_bytes": counters.rx_bytes,
                    "tx_frames": counters.tx_frames,
                    "tx_bytes": counters.tx_bytes,
                    "drops": counters.drops,
                    "arp_replies": i.stack.arp_replies_sent,
                    "echo_replies": i.stack.echo_replies_sent,
                    "tap": i.tap.as_ref().map(|t| t.name()),
                    "neighbours": neighbours,
                })
            })
            .collect();
        json!({ "interfaces": interfaces })
    }
}

/// Keeps trying to bring the interface up (connecting as client, or
/// accepting as server) and reports every attempt; ends with the first
/// port, or when the daemon stops listening.
fn spawn_connector(
    spec: &InterfaceSpec,
    listener: Option<Arc<Listener>>,
    wake: &UnixStream,
) -> Receiver<Result<Port>> {
    let (tx, rx) = mpsc::channel();
    let spec = spec.clone();
    let wake = wake.try_clone().expect("clone the wake socket");
    std::thread::spawn(move || loop {
        let attempt = match &listener {
            Some(listener) => listener.accept(),
            None => Port::connect(&spec),
        };
        let connected = attempt.is_ok();
        if tx.send(attempt).is_err() {
            return;
        }
        let _ = std::io::Write::write(&mut &wake, b"!");
        if connected {
            return;
        }
        std::thread::sleep(RETRY);
    });
    rx
}

fn answer(stream: &mut UnixStream, value: &Value) -> Result<()> {
    let mut line = value.to_string();
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    Ok(())
}
