//! The control socket between `userspace-app up` (the daemon that owns the
//! interfaces) and the commands a person runs next to it (`ping`, `show`,
//! `wait`), like vppctl and VPP: one JSON request line, one JSON answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
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

/// Reads one request line from a client: at most MAX_REQUEST bytes, all
/// of it within `within` (so a client sending a byte at a time, or no
/// newline, holds the daemon's loop no longer than that).
pub fn read_request(stream: &UnixStream, within: Duration) -> Result<Request> {
    let deadline = std::time::Instant::now() + within;
    let mut line = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            let request: Request = serde_json::from_slice(&line[..end])
                .map_err(|e| anyhow::anyhow!("bad request: {e}"))?;
            return Ok(request.bounded());
        }
        if line.len() > MAX_REQUEST {
            bail!("request longer than {MAX_REQUEST} bytes");
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            bail!("no complete request within {within:?}");
        }
        stream.set_read_timeout(Some(left))?;
        match (&*stream).read(&mut chunk) {
            Ok(0) => bail!("the client closed before a complete request"),
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                bail!("no complete request within {within:?}")
            }
            Err(e) => return Err(e.into()),
        }
    }
}

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

    #[test]
    fn a_request_line_is_read_and_its_durations_capped() {
        let (mut client, server) = UnixStream::pair().unwrap();
        client
            .write_all(b"{\"cmd\": \"wait\", \"timeout_ms\": 18446744073709551615}\n")
            .unwrap();
        let request = read_request(&server, Duration::from_secs(1)).unwrap();
        assert!(matches!(request, Request::Wait { timeout_ms } if timeout_ms == MAX_WAIT_MS));
    }

    /// A client that sends a byte at a time and never a newline holds the
    /// reader no longer than its bound.
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
        let started = Instant::now();
        let err = read_request(&server, Duration::from_millis(300)).unwrap_err();
        let took = started.elapsed();
        assert!(err.to_string().contains("no complete request"), "{err}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        drop(server);
        trickle.join().unwrap();
    }

    #[test]
    fn an_endless_line_is_refused_at_the_cap() {
        let (mut client, server) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = client.write_all(&[b'x'; 3 * MAX_REQUEST]);
        });
        let err = read_request(&server, Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        drop(server);
        writer.join().unwrap();
    }
}
