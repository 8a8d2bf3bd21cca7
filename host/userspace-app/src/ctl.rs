//! The control socket between `userspace-app up` (the daemon that owns the
//! interfaces) and the commands a person runs next to it (`ping`, `show`,
//! `wait`), like vppctl and VPP: one JSON request line, one JSON answer.

use std::io::{BufRead, BufReader, Write};
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
