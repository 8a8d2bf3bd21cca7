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
//! big-endian u32, 4 zero bytes), then the message. A request starts with
//! `_vl_msg_id` u16, `client_index` u32, `context` u32; a reply or details
//! message with `_vl_msg_id` u16, `context` u32. Integers are big-endian.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// `sockclnt_create` has a fixed id: the table is not known yet.
pub const SOCKCLNT_CREATE_ID: u16 = 15;
pub const SOCKCLNT_CREATE: &str = "sockclnt_create_455fb9c4";
pub const SOCKCLNT_CREATE_REPLY: &str = "sockclnt_create_reply_35166268";
pub const SOCKCLNT_DELETE: &str = "sockclnt_delete_8ac76db6";
pub const SOCKCLNT_DELETE_REPLY: &str = "sockclnt_delete_reply_8f38b1ee";
pub const CONTROL_PING: &str = "control_ping_51077d14";
pub const CONTROL_PING_REPLY: &str = "control_ping_reply_f6b0b8ca";

const HEADER: usize = 16;
/// A message larger than this is a broken stream, not a message.
const MAX_MESSAGE: usize = 16 << 20;
const NAME_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to VPP at {socket}: {source} (is VPP running, and is host.vpp.apiSocket right?)")]
    Unreachable {
        socket: String,
        source: std::io::Error,
    },
    #[error("VPP did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the running VPP does not know {wanted} (it speaks another API version{offered})")]
    UnknownMessage { wanted: String, offered: String },
    #[error("VPP refused the connection: sockclnt_create answered {0}")]
    Refused(i32),
    #[error("VPP API socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("VPP API: {0}")]
    Protocol(String),
}

/// One connection to VPP's API socket.
pub struct Connection {
    stream: UnixStream,
    timeout: Duration,
    client_index: u32,
    table: HashMap<String, u16>,
    names: HashMap<u16, String>,
    next_context: u32,
}

impl Connection {
    /// Connects and registers as client `name`.
    pub fn connect(socket: &str, name: &str, timeout: Duration) -> Result<Connection, Error> {
        let stream = UnixStream::connect(socket).map_err(|source| Error::Unreachable {
            socket: socket.to_string(),
            source,
        })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut conn = Connection {
            stream,
            timeout,
            client_index: 0,
            table: HashMap::new(),
            names: HashMap::new(),
            next_context: 1,
        };
        let context = conn.context();
        let mut create = request_header(SOCKCLNT_CREATE_ID, 0, context);
        put_string(&mut create, name, NAME_LEN);
        conn.send(&create)?;
        let reply = conn.receive()?;
        let mut r = Reader::new(&reply);
        let _id = r.u16()?;
        if r.u32()? != context {
            return Err(Error::Protocol(
                "sockclnt_create_reply with a foreign context".into(),
            ));
        }
        let response = r.i32()?;
        if response != 0 {
            return Err(Error::Refused(response));
        }
        conn.client_index = r.u32()?;
        let count = r.u16()?;
        for _ in 0..count {
            let index = r.u16()?;
            let name = r.string(NAME_LEN)?;
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

    /// The message id of `name_crc`, or an error that names the message
    /// and what the running VPP offers under the same name.
    pub fn id(&self, name_crc: &str) -> Result<u16, Error> {
        if let Some(id) = self.table.get(name_crc) {
            return Ok(*id);
        }
        let name = name_crc.rsplit_once('_').map_or(name_crc, |(n, _)| n);
        let mut offered: Vec<&str> = self
            .table
            .keys()
            .filter(|k| k.rsplit_once('_').is_some_and(|(n, _)| n == name))
            .map(String::as_str)
            .collect();
        offered.sort();
        Err(Error::UnknownMessage {
            wanted: name_crc.to_string(),
            offered: if offered.is_empty() {
                String::new()
            } else {
                format!("; it offers {}", offered.join(", "))
            },
        })
    }

    fn context(&mut self) -> u32 {
        let c = self.next_context;
        self.next_context = self.next_context.wrapping_add(1).max(1);
        c
    }

    /// Sends request `name_crc` with `body` (the fields after the header)
    /// and returns the reply's fields (after its id and context).
    pub fn request(&mut self, name_crc: &str, body: &[u8]) -> Result<Vec<u8>, Error> {
        let id = self.id(name_crc)?;
        let context = self.context();
        let mut message = request_header(id, self.client_index, context);
        message.extend_from_slice(body);
        self.send(&message)?;
        loop {
            let reply = self.receive()?;
            let mut r = Reader::new(&reply);
            let _id = r.u16()?;
            if r.u32()? == context {
                return Ok(reply[6..].to_vec());
            }
            tracing::debug!("skipping a VPP message for another context");
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
        let context = self.context();
        let mut message = request_header(dump_id, self.client_index, context);
        message.extend_from_slice(body);
        self.send(&message)?;
        self.send(&request_header(ping_id, self.client_index, context))?;
        let mut details = Vec::new();
        loop {
            let reply = self.receive()?;
            let mut r = Reader::new(&reply);
            let id = r.u16()?;
            if r.u32()? != context {
                continue;
            }
            if id == ping_reply_id {
                return Ok(details);
            }
            if id == details_id {
                details.push(reply[6..].to_vec());
            } else {
                let name = self
                    .names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("id {id}"));
                return Err(Error::Protocol(format!(
                    "{name} in the middle of a {name_crc} dump"
                )));
            }
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

    /// Unregisters (`sockclnt_delete`) and closes.
    pub fn disconnect(mut self) -> Result<(), Error> {
        let index = self.client_index.to_be_bytes();
        self.request(SOCKCLNT_DELETE, &index).map(|_| ())
    }

    fn send(&mut self, message: &[u8]) -> Result<(), Error> {
        let mut frame = Vec::with_capacity(HEADER + message.len());
        frame.extend_from_slice(&[0; 8]);
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(message);
        self.stream.write_all(&frame).map_err(|e| self.io(e))
    }

    fn receive(&mut self) -> Result<Vec<u8>, Error> {
        let mut header = [0u8; HEADER];
        self.stream
            .read_exact(&mut header)
            .map_err(|e| self.io(e))?;
        let len = u32::from_be_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
        if !(6..=MAX_MESSAGE).contains(&len) {
            return Err(Error::Protocol(format!(
                "a frame announcing {len} bytes (a message is 6 to {MAX_MESSAGE}): \
                 the socket does not speak the VPP API, or lost its framing"
            )));
        }
        let mut message = vec![0u8; len];
        self.stream
            .read_exact(&mut message)
            .map_err(|e| self.io(e))?;
        Ok(message)
    }

    fn io(&self, e: std::io::Error) -> Error {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                Error::Timeout(self.timeout)
            }
            _ => Error::Io(e),
        }
    }
}

/// `_vl_msg_id`, `client_index`, `context`.
pub fn request_header(id: u16, client_index: u32, context: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&client_index.to_be_bytes());
    m.extend_from_slice(&context.to_be_bytes());
    m
}

/// A NUL-padded fixed-size string field.
pub fn put_string(out: &mut Vec<u8>, text: &str, len: usize) {
    let bytes = text.as_bytes();
    let n = bytes.len().min(len.saturating_sub(1));
    out.extend_from_slice(&bytes[..n]);
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
