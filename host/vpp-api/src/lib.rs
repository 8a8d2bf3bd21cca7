//! The VPP binary API over its unix socket (`/run/vpp/api.sock`), as a
//! transport: connect with `sockclnt_create`, learn the running VPP's
//! message table (`<name>_<crc>` -> id), send requests and collect replies
//! and dumps, disconnect with `sockclnt_delete`. Message bodies are opaque
//! bytes here; the codecs live with the components that build them.
//!
//! The `vpp-api-transport` crate needs VPP's C client library at build
//! time, which cannot be installed where this project builds; the socket
//! protocol is small enough to speak directly.
//!
//! Framing: a 16-byte header (8 zero bytes, the message length as a
//! big-endian u32, 4 zero bytes), then the message. Integers are
//! big-endian. As VPP's own definitions (`memclnt.api.json`) lay them out:
//!
//! - a request starts with `_vl_msg_id` u16, `client_index` u32,
//!   `context` u32; a reply or details message with `_vl_msg_id` u16,
//!   `context` u32;
//! - except the connect pair: `sockclnt_create` is `_vl_msg_id` (always
//!   15), `context`, `name[64]` (no client index yet), and
//!   `sockclnt_create_reply` is `_vl_msg_id` (always 16), `client_index`,
//!   `context`, `response`, `index`, `count`, `message_table[count]`.
//!   `index` is what later requests carry as their `client_index`.
//!
//! Every exchange is bounded: one absolute deadline per request and per
//! dump (a peer sending a byte at a time does not reset it), a cap on the
//! size of one message, and caps on the bytes and the number of details a
//! dump may return.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// `sockclnt_create` and its reply have fixed ids (memclnt's messages are
/// registered first): the table is not known yet.
pub const SOCKCLNT_CREATE_ID: u16 = 15;
pub const SOCKCLNT_CREATE_REPLY_ID: u16 = 16;
pub const SOCKCLNT_CREATE: &str = "sockclnt_create_455fb9c4";
pub const SOCKCLNT_CREATE_REPLY: &str = "sockclnt_create_reply_35166268";
pub const SOCKCLNT_DELETE: &str = "sockclnt_delete_8ac76db6";
pub const SOCKCLNT_DELETE_REPLY: &str = "sockclnt_delete_reply_8f38b1ee";
pub const CONTROL_PING: &str = "control_ping_51077d14";
pub const CONTROL_PING_REPLY: &str = "control_ping_reply_f6b0b8ca";

const HEADER: usize = 16;
const NAME_LEN: usize = 64;
/// `_vl_msg_id` + `context`: the shortest reply there is.
const REPLY_HEADER: usize = 6;

/// Bounds on what one connection waits for and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From sending a request (or `sockclnt_create`) to its whole reply.
    pub request: Duration,
    /// From sending a dump to the `control_ping_reply` that ends it.
    pub dump: Duration,
    /// The largest single message (a real VPP's `sockclnt_create_reply`,
    /// its biggest, is under 1 MiB with every plugin loaded).
    pub message_bytes: usize,
    /// The most details one dump may return...
    pub dump_details: usize,
    /// ...and the most bytes they may take together.
    pub dump_bytes: usize,
}

impl Limits {
    /// Every exchange within `timeout`; sizes generous for a node's VPP.
    pub fn within(timeout: Duration) -> Limits {
        Limits {
            request: timeout,
            dump: timeout,
            message_bytes: 4 << 20,
            dump_details: 65_536,
            dump_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to VPP at {socket}: {source} (is VPP running, and is host.vpp.apiSocket right?)")]
    Unreachable {
        socket: String,
        source: std::io::Error,
    },
    #[error("VPP did not finish answering {what} within {limit:?}")]
    Timeout { what: String, limit: Duration },
    #[error("the running VPP does not know {wanted} (it speaks another API version{offered})")]
    UnknownMessage { wanted: String, offered: String },
    #[error("VPP refused the connection: sockclnt_create answered {0}")]
    Refused(i32),
    #[error("{what} exceeds the limit of {limit} {unit}")]
    TooLarge {
        what: String,
        limit: usize,
        unit: &'static str,
    },
    #[error("VPP API socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("VPP API: {0}")]
    Protocol(String),
}

/// One connection to VPP's API socket.
pub struct Connection {
    stream: UnixStream,
    limits: Limits,
    /// `index` from `sockclnt_create_reply`: every request's `client_index`.
    client_index: u32,
    table: HashMap<String, u16>,
    names: HashMap<u16, String>,
    next_context: u32,
}

/// One message as received: its id, its context and all of its bytes.
struct Received {
    id: u16,
    context: u32,
    bytes: Vec<u8>,
}

impl Connection {
    /// Connects and registers as client `name`, with every exchange
    /// (the handshake too) bounded by `limits`.
    pub fn connect(socket: &str, name: &str, limits: Limits) -> Result<Connection, Error> {
        let stream = UnixStream::connect(socket).map_err(|source| Error::Unreachable {
            socket: socket.to_string(),
            source,
        })?;
        let mut conn = Connection {
            stream,
            limits,
            client_index: 0,
            table: HashMap::new(),
            names: HashMap::new(),
            next_context: 1,
        };
        let deadline = Deadline::after(limits.request, "sockclnt_create");
        let context = conn.context();
        conn.send(&encode_sockclnt_create(context, name), &deadline)?;
        let reply = decode_sockclnt_create_reply(&conn.receive_frame(&deadline)?)?;
        if reply.context != context {
            return Err(Error::Protocol(
                "sockclnt_create_reply with a foreign context".into(),
            ));
        }
        if reply.response != 0 {
            return Err(Error::Refused(reply.response));
        }
        conn.client_index = reply.index;
        let count = reply.message_table.len();
        for (index, name) in reply.message_table {
            conn.names.insert(index, name.clone());
            conn.table.insert(name, index);
        }
        tracing::debug!(
            messages = count,
            client_index = conn.client_index,
            "connected to VPP"
        );
        Ok(conn)
    }

    /// Whether the running VPP knows `name_crc` (e.g. `memif_create_v2_8c7de5f7`).
    pub fn knows(&self, name_crc: &str) -> bool {
        self.table.contains_key(name_crc)
    }

    /// The index VPP gave this client (sent as every request's `client_index`).
    pub fn client_index(&self) -> u32 {
        self.client_index
    }

    /// The message id of `name_crc`, or an error that names the message
    /// and what the running VPP offers under the same name.
    pub fn id(&self, name_crc: &str) -> Result<u16, Error> {
        if let Some(id) = self.table.get(name_crc) {
            return Ok(*id);
        }
        let offered = self.offered(message_name(name_crc));
        Err(Error::UnknownMessage {
            wanted: name_crc.to_string(),
            offered: if offered.is_empty() {
                String::new()
            } else {
                format!("; it offers {}", offered.join(", "))
            },
        })
    }

    /// Every `<name>_<crc>` of the table whose name is `name`.
    fn offered(&self, name: &str) -> Vec<&str> {
        let mut offered: Vec<&str> = self
            .table
            .keys()
            .filter(|k| message_name(k) == name)
            .map(String::as_str)
            .collect();
        offered.sort();
        offered
    }

    /// The id of the reply to request `name_crc`: `<name>_reply`, under
    /// whatever CRC the running VPP has for it.
    fn reply_id(&self, name_crc: &str) -> Result<u16, Error> {
        let reply = format!("{}_reply", message_name(name_crc));
        match self.offered(&reply).as_slice() {
            [one] => Ok(self.table[*one]),
            _ => Err(Error::UnknownMessage {
                wanted: reply,
                offered: String::new(),
            }),
        }
    }

    fn context(&mut self) -> u32 {
        let c = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(1);
        c
    }

    fn name_of(&self, id: u16) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "a message the table does not have".to_string())
    }

    /// Sends request `name_crc` with `body` (the fields after the header)
    /// and returns the fields of its reply (after its id and context).
    /// Only `<name>_reply` under this request's context is its reply.
    pub fn request(&mut self, name_crc: &str, body: &[u8]) -> Result<Vec<u8>, Error> {
        let id = self.id(name_crc)?;
        let reply_id = self.reply_id(name_crc)?;
        let deadline = Deadline::after(self.limits.request, name_crc);
        let context = self.context();
        let mut message = request_header(id, self.client_index, context);
        message.extend_from_slice(body);
        self.send(&message, &deadline)?;
        loop {
            let reply = self.receive(&deadline)?;
            if reply.context != context {
                tracing::debug!(id = reply.id, "skipping a VPP message for another context");
                continue;
            }
            if reply.id != reply_id {
                return Err(Error::Protocol(format!(
                    "VPP answered {name_crc} with {} (id {}), not its reply (id {reply_id})",
                    self.name_of(reply.id),
                    reply.id
                )));
            }
            return Ok(reply.bytes[REPLY_HEADER..].to_vec());
        }
    }

    /// Sends dump request `name_crc`, then `control_ping`; returns the
    /// fields of every `details_crc` message before the ping's reply.
    pub fn dump(
        &mut self,
        name_crc: &str,
        body: &[u8],
        details_crc: &str,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let dump_id = self.id(name_crc)?;
        let details_id = self.id(details_crc)?;
        let ping_id = self.id(CONTROL_PING)?;
        let ping_reply_id = self.id(CONTROL_PING_REPLY)?;
        let deadline = Deadline::after(self.limits.dump, name_crc);
        let context = self.context();
        let mut message = request_header(dump_id, self.client_index, context);
        message.extend_from_slice(body);
        self.send(&message, &deadline)?;
        self.send(
            &request_header(ping_id, self.client_index, context),
            &deadline,
        )?;
        let mut details = Vec::new();
        let mut bytes = 0usize;
        loop {
            let reply = self.receive(&deadline)?;
            if reply.context != context {
                continue;
            }
            if reply.id == ping_reply_id {
                return Ok(details);
            }
            if reply.id != details_id {
                return Err(Error::Protocol(format!(
                    "{} (id {}) in the middle of a {name_crc} dump",
                    self.name_of(reply.id),
                    reply.id
                )));
            }
            if details.len() == self.limits.dump_details {
                return Err(Error::TooLarge {
                    what: format!("the {name_crc} dump"),
                    limit: self.limits.dump_details,
                    unit: "details",
                });
            }
            bytes += reply.bytes.len();
            if bytes > self.limits.dump_bytes {
                return Err(Error::TooLarge {
                    what: format!("the {name_crc} dump"),
                    limit: self.limits.dump_bytes,
                    unit: "bytes",
                });
            }
            details.push(reply.bytes[REPLY_HEADER..].to_vec());
        }
    }

    /// `control_ping`: proves VPP answers.
    pub fn ping(&mut self) -> Result<(), Error> {
        let reply = self.request(CONTROL_PING, &[])?;
        match Reader::new(&reply).i32()? {
            0 => Ok(()),
            retval => Err(Error::Protocol(format!("control_ping answered {retval}"))),
        }
    }

    /// Unregisters (`sockclnt_delete`, whose `index` is this client's) and closes.
    pub fn disconnect(mut self) -> Result<(), Error> {
        let index = self.client_index.to_be_bytes();
        self.request(SOCKCLNT_DELETE, &index).map(|_| ())
    }

    fn send(&mut self, message: &[u8], deadline: &Deadline) -> Result<(), Error> {
        let mut frame = Vec::with_capacity(HEADER + message.len());
        frame.extend_from_slice(&[0; 8]);
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(message);
        let mut sent = 0;
        while sent < frame.len() {
            self.stream.set_write_timeout(Some(deadline.left()?))?;
            match self.stream.write(&frame[sent..]) {
                Ok(0) => return Err(closed()),
                Ok(n) => sent += n,
                Err(e) => return Err(deadline.io(e)),
            }
        }
        Ok(())
    }

    /// One message with at least a reply's header.
    fn receive(&mut self, deadline: &Deadline) -> Result<Received, Error> {
        let bytes = self.receive_frame(deadline)?;
        let (id, context) = reply_header(&bytes)?;
        Ok(Received { id, context, bytes })
    }

    fn receive_frame(&mut self, deadline: &Deadline) -> Result<Vec<u8>, Error> {
        let mut header = [0u8; HEADER];
        self.read_full(&mut header, deadline)?;
        let len = u32::from_be_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
        if len < 2 {
            return Err(Error::Protocol(format!(
                "a frame announcing {len} bytes (a message has at least its id): \
                 the socket does not speak the VPP API, or lost its framing"
            )));
        }
        if len > self.limits.message_bytes {
            return Err(Error::TooLarge {
                what: format!(
                    "a frame announcing {len} bytes (the socket does not speak the VPP API, \
                     or lost its framing)"
                ),
                limit: self.limits.message_bytes,
                unit: "bytes per message",
            });
        }
        let mut message = vec![0u8; len];
        self.read_full(&mut message, deadline)?;
        Ok(message)
    }

    /// Fills `buf`, each read bounded by what is left of `deadline`.
    fn read_full(&mut self, buf: &mut [u8], deadline: &Deadline) -> Result<(), Error> {
        let mut at = 0;
        while at < buf.len() {
            self.stream.set_read_timeout(Some(deadline.left()?))?;
            match self.stream.read(&mut buf[at..]) {
                Ok(0) => return Err(closed()),
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(deadline.io(e)),
            }
        }
        Ok(())
    }
}

fn closed() -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "VPP closed the connection",
    ))
}

/// The moment an exchange must be over by, and what it was.
struct Deadline {
    at: Instant,
    limit: Duration,
    what: String,
}

impl Deadline {
    fn after(limit: Duration, what: &str) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
            what: what.to_string(),
        }
    }

    fn expired(&self) -> Error {
        Error::Timeout {
            what: self.what.clone(),
            limit: self.limit,
        }
    }

    /// What is left (never zero: a zero socket timeout means "no timeout").
    fn left(&self) -> Result<Duration, Error> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.expired());
        }
        Ok(left)
    }

    fn io(&self, e: std::io::Error) -> Error {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => self.expired(),
            _ => Error::Io(e),
        }
    }
}

/// `sockclnt_create` as VPP lays it out: `_vl_msg_id` (15), `context`,
/// `name[64]`; no `client_index` (the client has none yet).
pub fn encode_sockclnt_create(context: u32, name: &str) -> Vec<u8> {
    let mut m = SOCKCLNT_CREATE_ID.to_be_bytes().to_vec();
    m.extend_from_slice(&context.to_be_bytes());
    put_string(&mut m, name, NAME_LEN);
    m
}

/// What `sockclnt_create_reply` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockclntCreateReply {
    pub context: u32,
    pub response: i32,
    /// The client's index: every later request's `client_index`.
    pub index: u32,
    /// (message id, `<name>_<crc>`) for every message the VPP knows.
    pub message_table: Vec<(u16, String)>,
}

/// `sockclnt_create_reply` as VPP lays it out: `_vl_msg_id` (16),
/// `client_index` (unused: VPP leaves it 0), `context`, `response`,
/// `index`, `count`, then `count` times (`index` u16, `name[64]`).
pub fn decode_sockclnt_create_reply(message: &[u8]) -> Result<SockclntCreateReply, Error> {
    let mut r = Reader::new(message);
    let id = r.u16()?;
    if id != SOCKCLNT_CREATE_REPLY_ID {
        return Err(Error::Protocol(format!(
            "the answer to sockclnt_create has message id {id}, not {SOCKCLNT_CREATE_REPLY_ID} \
             (sockclnt_create_reply): the socket does not speak VPP's API"
        )));
    }
    let _client_index = r.u32()?;
    let context = r.u32()?;
    let response = r.i32()?;
    let index = r.u32()?;
    let count = r.u16()?;
    let mut message_table = Vec::with_capacity(count.into());
    for _ in 0..count {
        let id = r.u16()?;
        message_table.push((id, r.string(NAME_LEN)?));
    }
    Ok(SockclntCreateReply {
        context,
        response,
        index,
        message_table,
    })
}

/// The `_vl_msg_id` and `context` every reply and details message starts with.
pub fn reply_header(message: &[u8]) -> Result<(u16, u32), Error> {
    if message.len() < REPLY_HEADER {
        return Err(Error::Protocol(format!(
            "a message of {} bytes (a reply has at least its id and context)",
            message.len()
        )));
    }
    let id = u16::from_be_bytes([message[0], message[1]]);
    let context = u32::from_be_bytes(message[2..6].try_into().expect("4 bytes"));
    Ok((id, context))
}

/// `memif_create_v2_8c7de5f7` -> `memif_create_v2`.
pub fn message_name(name_crc: &str) -> &str {
    name_crc.rsplit_once('_').map_or(name_crc, |(n, _)| n)
}

/// `_vl_msg_id`, `client_index`, `context`: the header of every request
/// but `sockclnt_create`.
pub fn request_header(id: u16, client_index: u32, context: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&client_index.to_be_bytes());
    m.extend_from_slice(&context.to_be_bytes());
    m
}

/// A NUL-padded fixed-size string field.
pub fn put_string(out: &mut Vec<u8>, text: &str, len: usize) {
    let mut n = text.len().min(len.saturating_sub(1));
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    out.extend_from_slice(&text.as_bytes()[..n]);
    out.resize(out.len() + len - n, 0);
}

/// Reads big-endian fields from a message; running short is an error.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| {
            Error::Protocol(format!(
                "message of {} bytes is too short",
                self.bytes.len()
            ))
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn i32(&mut self) -> Result<i32, Error> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn string(&mut self, len: usize) -> Result<String, Error> {
        let field = self.take(len)?;
        let end = field.iter().position(|&b| b == 0).unwrap_or(len);
        Ok(String::from_utf8_lossy(&field[..end]).into_owned())
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }
}
