//! A synchronous OVSDB client (RFC 7047) for one short-lived CNI call.
//!
//! The crates.io `ovsdb` crate (0.0.x) is async-first and models the whole
//! schema; a CNI call makes two or three requests over one unix socket and
//! must start in a millisecond, so this client is blocking, schema-less and
//! small. It also implements what `ovs-vsctl` does without `--no-wait`:
//! bump `next_cfg` in the transaction and wait until ovs-vswitchd reports
//! it in `cur_cfg`.

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

pub const DATABASE: &str = "Open_vSwitch";

/// The largest message read from ovsdb-server. A `monitor` of the columns
/// this client asks for on a node's database is a few KiB; anything near
/// this is a broken or hostile peer.
pub const MAX_MESSAGE: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to ovsdb-server at {socket}: {source}")]
    Unreachable {
        socket: String,
        source: std::io::Error,
    },
    #[error("ovsdb-server answered with an error: {0}")]
    Rejected(String),
    #[error("{0}")]
    Timeout(String),
    /// ovsdb-server committed the transaction; ovs-vswitchd did not apply
    /// it within the bound (stalled, or not running).
    #[error("{0}")]
    NotApplied(String),
    #[error("connection to ovsdb-server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected message from ovsdb-server: {0}")]
    Protocol(String),
}

/// The `cur_cfg` monitor of one `transact_and_wait`.
struct CurCfgWatch {
    /// The monitor's id, which its updates carry.
    name: String,
    /// The JSON-RPC id of the `monitor` request.
    reply_id: u64,
    /// The highest `cur_cfg` seen so far.
    current: i64,
    /// Whether ovsdb-server has answered the monitor request.
    answered: bool,
    /// ovsdb-server's error, when it refused the monitor.
    refused: Option<String>,
}

/// One connection to ovsdb-server.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    timeout: Duration,
}

impl Client {
    /// Connects to `target`: `unix:/path/db.sock` or a plain path.
    /// `timeout` bounds every exchange, including waiting for ovs-vswitchd.
    pub fn connect(target: &str, timeout: Duration) -> Result<Client, Error> {
        let path = target.strip_prefix("unix:").unwrap_or(target);
        let stream = UnixStream::connect(path).map_err(|source| Error::Unreachable {
            socket: target.to_string(),
            source,
        })?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
            timeout,
        })
    }

    /// Runs `ops` as one transaction; returns the per-operation results.
    /// Operation errors are left in the results for the caller to read.
    pub fn transact(&mut self, ops: &[Value]) -> Result<Vec<Value>, Error> {
        let mut params = vec![json!(DATABASE)];
        params.extend_from_slice(ops);
        let deadline = Instant::now() + self.timeout;
        let reply = self.call("transact", Value::Array(params), deadline)?;
        serde_json::from_value(reply).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Runs `ops` plus a `next_cfg` increment as one transaction, then waits
    /// until ovs-vswitchd has applied that configuration. Returns the
    /// results of `ops` only. If any operation failed, nothing was
    /// committed and the function returns without waiting.
    pub fn transact_and_wait(&mut self, ops: &[Value]) -> Result<Vec<Value>, Error> {
        let mut params = vec![json!(DATABASE)];
        params.extend_from_slice(ops);
        params.push(json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                           "mutations": [["next_cfg", "+=", 1]]}));
        params.push(json!({"op": "select", "table": "Open_vSwitch", "where": [],
                           "columns": ["next_cfg"]}));
        // The monitor of cur_cfg goes out with the transaction: one round
        // trip for both. In whichever order ovsdb-server takes them, its
        // reply holds cur_cfg as it was then and its updates every later
        // change, so the apply is seen either way.
        let deadline = Instant::now() + self.timeout;
        let transact_id = self.send("transact", Value::Array(params))?;
        // Monitor IDs must be unique on a connection; request ids are.
        let name = format!("cur_cfg-{transact_id}");
        let reply_id = self.send(
            "monitor",
            json!([DATABASE, name, {"Open_vSwitch": {"columns": ["cur_cfg"]}}]),
        )?;
        let mut watch = CurCfgWatch {
            name,
            reply_id,
            current: i64::MIN,
            answered: false,
            refused: None,
        };
        let reply = loop {
            let message = self.read_message(deadline)?;
            if message.id.as_ref().and_then(Value::as_u64) == Some(transact_id)
                && message.method.is_none()
            {
                break message;
            }
            self.observe(&mut watch, &message)?;
        };
        // A failed cancel is the connection's end: the transaction's own
        // outcome is what the caller must hear.
        if let Some(error) = reply.error.filter(|e| !e.is_null()) {
            let _ = self.cancel(&watch);
            return Err(Error::Rejected(error.to_string()));
        }
        let mut results: Vec<Value> = serde_json::from_value(reply.result.unwrap_or(Value::Null))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        if let Some(failed) = results.iter().position(|r| r.get("error").is_some()) {
            // Nothing was committed: report up to the failed operation.
            let _ = self.cancel(&watch);
            results.truncate(ops.len().max(failed + 1));
            return Ok(results);
        }
        let target = next_cfg_target(&results, ops.len())?;
        results.truncate(ops.len());
        let started = Instant::now();
        self.wait_for_cur_cfg(&mut watch, target)?;
        // ovs-vswitchd's apply time grows with the ports it has; the scale
        // bench tells it apart from the plugin's own time with this line.
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            target,
            "ovs-vswitchd applied the configuration"
        );
        Ok(results)
    }

    /// Blocks until `Open_vSwitch.cur_cfg >= target`, as ovs-vswitchd sets
    /// it once it has applied the database up to `next_cfg = target`.
    fn wait_for_cur_cfg(&mut self, watch: &mut CurCfgWatch, target: i64) -> Result<(), Error> {
        let deadline = Instant::now() + self.timeout;
        while watch.current < target {
            if let Some(refused) = watch.refused.take() {
                return Err(Error::Rejected(refused));
            }
            let message = self.read_message(deadline).map_err(|e| match e {
                // No answer to the monitor itself: ovsdb-server is the one
                // not answering.
                Error::Timeout(_) if !watch.answered => Error::Timeout(format!(
                    "no answer from ovsdb-server to the cur_cfg monitor within {:?}",
                    self.timeout
                )),
                // ovsdb-server answered: the database holds the change, and
                // ovs-vswitchd has not caught up with it.
                Error::Timeout(_) => Error::NotApplied(format!(
                    "ovs-vswitchd has not applied configuration {target} within {:?}: its \
                     cur_cfg stays at {}, so it is stalled or not running (its log \
                     and `ovs-appctl coverage/show` tell which)",
                    self.timeout, watch.current
                )),
                other => other,
            })?;
            self.observe(watch, &message)?;
        }
        self.cancel(watch)
    }

    /// Takes in the monitor's reply or one of its updates; answers echoes.
    /// A refused monitor is kept for the wait: the transaction's own
    /// outcome is heard first.
    fn observe(&mut self, watch: &mut CurCfgWatch, message: &Message) -> Result<(), Error> {
        if message.method.is_none()
            && message.id.as_ref().and_then(Value::as_u64) == Some(watch.reply_id)
        {
            watch.answered = true;
            match message.error.as_ref().filter(|e| !e.is_null()) {
                Some(error) => watch.refused = Some(error.to_string()),
                None => {
                    if let Some(initial) = &message.result {
                        watch.current = watch.current.max(max_cur_cfg(initial));
                    }
                }
            }
            return Ok(());
        }
        let params = message.params.as_ref();
        if message.method.as_deref() == Some("update")
            && params.and_then(|p| p.get(0)) == Some(&json!(watch.name))
        {
            if let Some(update) = params.and_then(|p| p.get(1)) {
                watch.current = watch.current.max(max_cur_cfg(update));
            }
            return Ok(());
        }
        self.answer_echo(message)
    }

    /// Stops the monitor's updates; the reply is skipped by the next call.
    fn cancel(&mut self, watch: &CurCfgWatch) -> Result<(), Error> {
        let cancel = json!({"id": "cancel", "method": "monitor_cancel", "params": [watch.name]});
        self.writer.write_all(cancel.to_string().as_bytes())?;
        Ok(())
    }

    /// Sends a request; returns its id.
    fn send(&mut self, method: &str, params: Value) -> Result<u64, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.writer.write_all(request.to_string().as_bytes())?;
        Ok(id)
    }

    fn call(&mut self, method: &str, params: Value, deadline: Instant) -> Result<Value, Error> {
        let id = self.send(method, params)?;
        loop {
            let message = self.read_message(deadline)?;
            if message.id.as_ref().and_then(Value::as_u64) == Some(id) && message.method.is_none() {
                if let Some(error) = message.error.filter(|e| !e.is_null()) {
                    return Err(Error::Rejected(error.to_string()));
                }
                return Ok(message.result.unwrap_or(Value::Null));
            }
            self.answer_echo(&message)?;
        }
    }

    /// ovsdb-server may probe an idle client with `echo`; answer it.
    fn answer_echo(&mut self, message: &Message) -> Result<(), Error> {
        if message.method.as_deref() == Some("echo") {
            let reply = json!({"id": message.id, "result": message.params, "error": null});
            self.writer.write_all(reply.to_string().as_bytes())?;
        }
        Ok(())
    }

    fn read_message(&mut self, deadline: Instant) -> Result<Message, Error> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(format!(
                "no answer from ovsdb-server within {:?}",
                self.timeout
            )));
        }
        // Messages are concatenated JSON objects; parsing one stops at its
        // closing brace and never reads into the next. Each refill from the
        // socket gets what is left of the deadline (a peer sending a byte at
        // a time cannot reset it), and a message may not exceed MAX_MESSAGE.
        let bounded = Bounded {
            reader: &mut self.reader,
            deadline,
            left: MAX_MESSAGE,
        };
        let mut de = serde_json::Deserializer::from_reader(bounded);
        Message::deserialize(&mut de).map_err(|e| {
            if e.is_io() || e.is_eof() {
                let kind = std::io::Error::from(e);
                match kind.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        Error::Timeout(format!(
                            "no answer from ovsdb-server within {:?}",
                            self.timeout
                        ))
                    }
                    std::io::ErrorKind::InvalidData => Error::Protocol(kind.to_string()),
                    _ => Error::Io(kind),
                }
            } else {
                Error::Protocol(e.to_string())
            }
        })
    }
}

/// The client's reader, bounded in time (one deadline for the whole
/// message) and in size.
struct Bounded<'a> {
    reader: &'a mut BufReader<UnixStream>,
    deadline: Instant,
    left: u64,
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a message larger than {MAX_MESSAGE} bytes"),
            ));
        }
        if self.reader.buffer().is_empty() {
            // The next read reaches the socket: only now the time counts.
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
        }
        let cap = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.reader.read(&mut buf[..cap])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// The `next_cfg` that `transact_and_wait`'s select returned. A short or
/// odd reply is the server's fault, never a panic here.
fn next_cfg_target(results: &[Value], ops: usize) -> Result<i64, Error> {
    results
        .get(ops + 1)
        .and_then(|select| select["rows"][0]["next_cfg"].as_i64())
        .ok_or_else(|| {
            Error::Protocol(format!(
                "{} results for {} operations, without next_cfg",
                results.len(),
                ops + 2
            ))
        })
}

/// The reply path without a socket, for the fuzz targets: `bytes` as the
/// stream of JSON-RPC messages ovsdb-server would send, each read and
/// interpreted the way the client reads a transact reply and a monitor
/// update. Never panics; returns how many messages it read.
#[doc(hidden)]
pub fn fuzz_replies(bytes: &[u8]) -> usize {
    let mut de = serde_json::Deserializer::from_slice(bytes).into_iter::<Message>();
    let mut read = 0;
    while let Some(Ok(message)) = de.next() {
        read += 1;
        let result = message.result.clone().unwrap_or(Value::Null);
        if let Ok(results) = serde_json::from_value::<Vec<Value>>(result.clone()) {
            let _ = next_cfg_target(&results, results.len().saturating_sub(2));
            let _ = next_cfg_target(&results, 0);
        }
        let _ = max_cur_cfg(&result);
        if let Some(update) = message.params.as_ref().and_then(|p| p.get(1)) {
            let _ = max_cur_cfg(update);
        }
    }
    read
}

/// The highest `cur_cfg` in a monitor reply or update (`new` rows).
fn max_cur_cfg(table_updates: &Value) -> i64 {
    table_updates["Open_vSwitch"]
        .as_object()
        .into_iter()
        .flat_map(|rows| rows.values())
        .filter_map(|row| row["new"]["cur_cfg"].as_i64())
        .max()
        .unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    /// A scripted server: answers each request with the reply the script
    /// gives for its method.
    fn scripted_server(dir: &std::path::Path, replies: Vec<Value>) -> String {
        let path = dir.join("db.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            for reply in replies {
                let mut de = serde_json::Deserializer::from_reader(&mut reader);
                let request = Value::deserialize(&mut de).unwrap();
                let mut reply = reply;
                if reply.get("method").is_none() {
                    reply["id"] = request["id"].clone();
                }
                conn.write_all(reply.to_string().as_bytes()).unwrap();
            }
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
        });
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn connect_to_missing_socket_is_unreachable() {
        let err = Client::connect("unix:/nonexistent/db.sock", Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    }

    #[test]
    fn transact_returns_results_and_surfaces_rpc_errors() {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = scripted_server(
            &dir,
            vec![
                json!({"result": [{"rows": []}], "error": null}),
                json!({"result": null, "error": "unknown database"}),
            ],
        );
        let mut client = Client::connect(&sock, Duration::from_secs(2)).unwrap();
        let results = client.transact(&[json!({"op": "select"})]).unwrap();
        assert_eq!(results, vec![json!({"rows": []})]);
        let err = client.transact(&[]).unwrap_err();
        assert!(
            matches!(err, Error::Rejected(ref m) if m.contains("unknown database")),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_short_transact_reply_is_a_protocol_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-short-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = scripted_server(&dir, vec![json!({"result": [{}], "error": null})]);
        let mut client = Client::connect(&sock, Duration::from_secs(2)).unwrap();
        let err = client
            .transact_and_wait(&[json!({"op": "select"})])
            .unwrap_err();
        assert!(
            matches!(err, Error::Protocol(ref m) if m.contains("1 results for 3 operations")),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn silent_server_times_out() {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-silent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sock");
        let _listener = UnixListener::bind(&path).unwrap();
        let mut client =
            Client::connect(path.to_str().unwrap(), Duration::from_millis(200)).unwrap();
        let err = client.transact(&[]).unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A server that, once it has a request, sends `bytes` one chunk of
    /// `chunk` bytes every `pause`.
    fn slow_server(dir: &std::path::Path, bytes: Vec<u8>, chunk: usize, pause: Duration) -> String {
        let path = dir.join("db.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let _ = std::io::Read::read(&mut stream, &mut request);
            for part in bytes.chunks(chunk) {
                if stream.write_all(part).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        });
        path.display().to_string()
    }

    /// A reply trickled a byte each 50 ms fails at the exchange's one
    /// deadline, not a timeout per byte.
    #[test]
    fn a_trickling_server_meets_the_deadline() {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-trickle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let reply = json!({"id": 1, "result": [{"rows": []}], "error": null}).to_string();
        let sock = slow_server(&dir, reply.into_bytes(), 1, Duration::from_millis(50));
        let mut client = Client::connect(&sock, Duration::from_millis(300)).unwrap();
        let started = Instant::now();
        let err = client.transact(&[]).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert!(took < Duration::from_millis(700), "{took:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A reply of 100 MiB is cut at MAX_MESSAGE bytes.
    #[test]
    fn a_reply_past_the_size_cap_is_refused() {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut reply = br#"{"id": 1, "result": ""#.to_vec();
        reply.resize(100 << 20, b'a');
        const { assert!(MAX_MESSAGE < 100 << 20) };
        let sock = slow_server(&dir, reply, 1 << 20, Duration::ZERO);
        let mut client = Client::connect(&sock, Duration::from_secs(20)).unwrap();
        let err = client.transact(&[]).unwrap_err();
        assert!(
            matches!(err, Error::Protocol(ref m) if m.contains("larger than")),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A server for `transact_and_wait`: it reads the pipelined transact
    /// and monitor requests, then `script` answers them.
    struct Pipelined {
        conn: std::os::unix::net::UnixStream,
        reader: BufReader<std::os::unix::net::UnixStream>,
        transact: Value,
        monitor: Value,
    }

    impl Pipelined {
        fn start(
            dir: &std::path::Path,
            script: impl FnOnce(&mut Pipelined) + Send + 'static,
        ) -> (String, std::thread::JoinHandle<()>) {
            let path = dir.join("db.sock");
            let listener = UnixListener::bind(&path).unwrap();
            let server = std::thread::spawn(move || {
                let (conn, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut next =
                    || Value::deserialize(&mut serde_json::Deserializer::from_reader(&mut reader));
                let (transact, monitor) = (next().unwrap(), next().unwrap());
                assert_eq!(transact["method"], "transact");
                assert_eq!(monitor["method"], "monitor");
                let mut server = Pipelined {
                    conn,
                    reader,
                    transact,
                    monitor,
                };
                script(&mut server);
            });
            (path.display().to_string(), server)
        }

        fn next_request(&mut self) -> serde_json::Result<Value> {
            Value::deserialize(&mut serde_json::Deserializer::from_reader(&mut self.reader))
        }

        fn send(&mut self, message: Value) {
            self.conn.write_all(message.to_string().as_bytes()).unwrap();
        }

        fn monitor_reply(&mut self, cur_cfg: i64) {
            let id = self.monitor["id"].clone();
            self.send(json!({"id": id, "error": null,
                             "result": {"Open_vSwitch": {"r": {"new": {"cur_cfg": cur_cfg}}}}}));
        }

        fn update(&mut self, cur_cfg: i64) {
            let name = self.monitor["params"][1].clone();
            self.update_of(name, cur_cfg);
        }

        fn update_of(&mut self, monitor: Value, cur_cfg: i64) {
            self.send(json!({"id": null, "method": "update",
                             "params": [monitor, {"Open_vSwitch": {"r": {"new": {"cur_cfg": cur_cfg}}}}]}));
        }

        fn refuse_monitor(&mut self) {
            let id = self.monitor["id"].clone();
            self.send(json!({"id": id, "result": null, "error": "no such table"}));
        }

        fn transact_reply(&mut self, next_cfg: i64) {
            let id = self.transact["id"].clone();
            self.send(json!({"id": id, "error": null,
                             "result": [{"count": 1}, {"count": 1}, {"rows": [{"next_cfg": next_cfg}]}]}));
        }

        fn expect_cancel(&mut self) {
            let cancel = self.next_request().unwrap();
            assert_eq!(cancel["method"], "monitor_cancel");
            assert_eq!(cancel["params"][0], self.monitor["params"][1]);
        }
    }

    fn wait_against(
        name: &str,
        timeout: Duration,
        script: impl FnOnce(&mut Pipelined) + Send + 'static,
    ) -> Result<Vec<Value>, Error> {
        let dir = std::env::temp_dir().join(format!("ovsdb-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (sock, server) = Pipelined::start(&dir, script);
        let mut client = Client::connect(&sock, timeout).unwrap();
        let outcome = client.transact_and_wait(&[json!({"op": "mutate"})]);
        drop(client);
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        outcome
    }

    /// The monitor goes out with the transaction; its reply may come
    /// first and its update later, and the wait ends at the update that
    /// reaches the transaction's next_cfg, not before.
    #[test]
    fn the_wait_ends_at_the_update_that_reaches_next_cfg() {
        let results = wait_against("order", Duration::from_secs(2), |server| {
            server.monitor_reply(6);
            server.transact_reply(8);
            server.update(7);
            server.update_of(json!("another"), 9);
            // Below the target, the client keeps waiting: no cancel yet.
            server
                .conn
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            assert!(
                server.next_request().is_err(),
                "the wait ended below next_cfg"
            );
            server.conn.set_read_timeout(None).unwrap();
            server.update(8);
            server.expect_cancel();
        });
        assert_eq!(results.unwrap(), vec![json!({"count": 1})]);
    }

    /// The transaction's reply first and the monitor's already at the
    /// target, or the update at the target before the transaction's
    /// reply: either way the wait is over.
    #[test]
    fn the_wait_is_over_when_cur_cfg_came_before_the_transaction_reply() {
        let transact_first = wait_against("transact-first", Duration::from_secs(2), |server| {
            server.transact_reply(8);
            server.monitor_reply(8);
            server.expect_cancel();
        });
        assert_eq!(transact_first.unwrap(), vec![json!({"count": 1})]);
        let update_first = wait_against("update-first", Duration::from_secs(2), |server| {
            server.monitor_reply(6);
            server.update(8);
            server.transact_reply(8);
            server.expect_cancel();
        });
        assert_eq!(update_first.unwrap(), vec![json!({"count": 1})]);
    }

    /// A refused monitor does not hide the transaction's outcome: an
    /// operation's error (nothing committed) is returned as such, and a
    /// committed transaction fails on the monitor's error.
    #[test]
    fn a_refused_monitor_is_heard_after_the_transaction() {
        let op_failed = wait_against("refused-op", Duration::from_secs(2), |server| {
            server.refuse_monitor();
            let id = server.transact["id"].clone();
            server.send(json!({"id": id, "error": null,
                               "result": [{"error": "constraint violation"}, {}, {}]}));
            server.expect_cancel();
        });
        assert_eq!(
            op_failed.unwrap(),
            vec![json!({"error": "constraint violation"})]
        );
        let committed = wait_against("refused", Duration::from_secs(2), |server| {
            server.refuse_monitor();
            server.transact_reply(8);
            let _ = server.next_request();
        });
        let err = committed.unwrap_err();
        assert!(
            matches!(err, Error::Rejected(ref m) if m.contains("no such table")),
            "{err}"
        );
    }

    /// No answer to the monitor is ovsdb-server's silence, not a stalled
    /// ovs-vswitchd.
    #[test]
    fn a_monitor_never_answered_is_ovsdb_servers_timeout() {
        let err = wait_against("silent-monitor", Duration::from_millis(300), |server| {
            server.transact_reply(8);
            let _ = server.next_request();
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::Timeout(ref m) if m.contains("no answer from ovsdb-server to the cur_cfg monitor")),
            "{err}"
        );
    }

    #[test]
    fn cur_cfg_is_read_from_monitor_updates() {
        let update =
            json!({"Open_vSwitch": {"u1": {"old": {"cur_cfg": 3}, "new": {"cur_cfg": 4}}}});
        assert_eq!(max_cur_cfg(&update), 4);
        assert_eq!(max_cur_cfg(&json!({})), i64::MIN);
    }
}
