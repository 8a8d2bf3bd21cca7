//! The control socket between `userspace-app up` (the daemon that owns the
//! interfaces) and the commands a person runs next to it (`ping`, `show`,
//! `wait`), like vppctl and VPP: one JSON request line, one JSON answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Show,
    /// Answer once every interface is connected, or at the deadline.
    Wait {
        timeout_ms: u64,
    },
    Ping {
        dst: std::net::Ipv4Addr,
        count: u16,
        interval_ms: u64,
        timeout_ms: u64,
        size: u16,
    },
}

/// The longest a request may ask to wait, or to wait between pings: a
/// request cannot overflow a deadline.
pub const MAX_WAIT_MS: u64 = 3_600_000;
/// The longest request line the daemon reads.
pub const MAX_REQUEST: usize = 4096;

impl Request {
    /// The same request with its durations capped at MAX_WAIT_MS.
    pub fn bounded(self) -> Request {
        let cap = |ms: u64| ms.min(MAX_WAIT_MS);
        match self {
            Request::Show => Request::Show,
            Request::Wait { timeout_ms } => Request::Wait {
                timeout_ms: cap(timeout_ms),
            },
            Request::Ping {
                dst,
                count,
                interval_ms,
                timeout_ms,
                size,
            } => Request::Ping {
                dst,
                count,
                interval_ms: cap(interval_ms),
                timeout_ms: cap(timeout_ms),
                size,
            },
        }
    }
}

/// A request being read from a client without blocking: bytes are taken
/// as they arrive, between the daemon's other work, so a client sending a
/// byte at a time, or no newline, never holds the forwarding loop. The
/// line must be complete within the bound and MAX_REQUEST bytes.
pub struct PendingRequest {
    stream: UnixStream,
    line: Vec<u8>,
    deadline: std::time::Instant,
    within: Duration,
}

impl PendingRequest {
    pub fn new(stream: UnixStream, within: Duration) -> std::io::Result<PendingRequest> {
        stream.set_nonblocking(true)?;
        Ok(PendingRequest {
            stream,
            line: Vec::new(),
            deadline: std::time::Instant::now() + within,
            within,
        })
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Takes what has arrived: the request once its line is complete, an
    /// error once it cannot be (too long, too late, closed), else `None`.
    pub fn progress(&mut self) -> Option<Result<Request>> {
        let mut chunk = [0u8; 512];
        loop {
            if let Some(end) = self.line.iter().position(|&b| b == b'\n') {
                return Some(
                    serde_json::from_slice::<Request>(&self.line[..end])
                        .map(Request::bounded)
                        .map_err(|e| anyhow::anyhow!("bad request: {e}")),
                );
            }
            if self.line.len() > MAX_REQUEST {
                return Some(Err(anyhow::anyhow!(
                    "request longer than {MAX_REQUEST} bytes"
                )));
            }
            match (&self.stream).read(&mut chunk) {
                Ok(0) => {
                    return Some(Err(anyhow::anyhow!(
                        "the client closed before a complete request"
                    )))
                }
                Ok(n) => self.line.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() >= self.deadline {
                        let within = self.within;
                        return Some(Err(anyhow::anyhow!(
                            "no complete request within {within:?}"
                        )));
                    }
                    return None;
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// The client's stream, blocking again for the answer, whose write is
    /// bounded too (a client that never reads cannot hold the loop).
    pub fn into_stream(self) -> std::io::Result<UnixStream> {
        self.stream.set_nonblocking(false)?;
        self.stream.set_write_timeout(Some(ANSWER_WRITE_TIMEOUT))?;
        Ok(self.stream)
    }
}

/// How long writing one answer may take.
const ANSWER_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// Sends `request` to the daemon at `socket` and returns its answer.
/// With `start_grace`, a daemon that is still starting (no socket yet) is
/// waited for that long.
pub fn call(
    socket: &Path,
    request: &Request,
    timeout: Duration,
    start_grace: Duration,
) -> Result<Value> {
    let deadline = std::time::Instant::now() + start_grace;
    let mut stream = loop {
        match UnixStream::connect(socket) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() < deadline
                && matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot reach userspace-app at {}: is `userspace-app up` running for this directory?",
                        socket.display()
                    )
                })
            }
        }
    };
    stream.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .context("no answer from userspace-app")?;
    let value: Value =
        serde_json::from_str(&answer).context("unreadable answer from userspace-app")?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        anyhow::bail!("{error}");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Polls `pending` as the daemon's loop does, every 10 ms.
    fn read(pending: &mut PendingRequest) -> Result<Request> {
        loop {
            if let Some(result) = pending.progress() {
                return result;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_request_line_is_read_and_its_durations_capped() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let mut pending = PendingRequest::new(server, Duration::from_secs(1)).unwrap();
        assert!(pending.progress().is_none(), "nothing sent yet");
        client.write_all(b"{\"cmd\": \"wait\", ").unwrap();
        assert!(pending.progress().is_none(), "half a line");
        client
            .write_all(b"\"timeout_ms\": 18446744073709551615}\n")
            .unwrap();
        let request = read(&mut pending).unwrap();
        assert!(matches!(request, Request::Wait { timeout_ms } if timeout_ms == MAX_WAIT_MS));
    }

    /// A client that sends a byte at a time and never a newline never
    /// blocks the reader, and is cut off at its bound.
    #[test]
    fn a_trickling_client_is_cut_off_at_the_bound() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let trickle = std::thread::spawn(move || {
            for _ in 0..30 {
                if client.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut pending = PendingRequest::new(server, Duration::from_millis(300)).unwrap();
        let started = Instant::now();
        let mut longest_call = Duration::ZERO;
        let err = loop {
            let call = Instant::now();
            let progress = pending.progress();
            longest_call = longest_call.max(call.elapsed());
            if let Some(result) = progress {
                break result.unwrap_err();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        assert!(err.to_string().contains("no complete request"), "{err}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert!(longest_call < Duration::from_millis(20), "{longest_call:?}");
        drop(pending);
        trickle.join().unwrap();
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = client.write_all(&[b'x'; 3 * MAX_REQUEST]);
        });
        let mut pending = PendingRequest::new(server, Duration::from_secs(5)).unwrap();
        let err = read(&mut pending).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        drop(pending);
        writer.join().unwrap();
    }
}
