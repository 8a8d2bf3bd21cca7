//! A **test double** of VPP's binary API socket — not VPP. VPP cannot be
//! installed on the machines this project is built and tested on, so the
//! VPP engine is tested against this.
//!
//! It speaks the real socket protocol (framing, `sockclnt_create` with its
//! message table, request/reply contexts, dumps closed by `control_ping`,
//! `sockclnt_delete`), assigns message ids from the VPP 25.10 definitions
//! in `sdk/vpp-api/` (so a client using a CRC those definitions do not
//! have gets no id and cannot send it), and can leave messages out of its
//! table to exercise a client's fallback to older messages.
//!
//! Its replies are encoded with the SDK's generated codecs. This slice
//! answers the connection messages and `control_ping`; every
//! other request that has a `_reply` gets it with retval -8
//! (VNET_API_ERROR_UNIMPLEMENTED), and every other dump gets no details.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use userspace_cni_sdk::vpp::{
    ControlPingReply, Message, MessageTableEntry, SockclntCreateReply, SockclntDeleteReply,
};
use vpp_api::{Reader, SOCKCLNT_CREATE_ID};

/// The definitions the double serves (the ones the SDK's codecs come from).
pub fn definitions_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/vpp-api/vpp-25.10-binapi.json")
}

/// VNET_API_ERROR_UNIMPLEMENTED
const UNIMPLEMENTED: i32 = -8;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Message names (without CRC) to leave out of the table, e.g.
    /// `memif_create_v2`, as an older VPP would.
    pub without: Vec<String>,
}

/// The message table: id <-> `<name>_<crc>`.
struct Table {
    by_id: HashMap<u16, String>,
    by_name: HashMap<String, u16>,
    /// The definitions, to build well-formed replies.
    defs: Value,
}

impl Table {
    fn load(options: &Options) -> Table {
        let text =
            std::fs::read_to_string(definitions_path()).expect("read the VPP API definitions");
        let defs: Value = serde_json::from_str(&text).expect("VPP API definitions are JSON");
        let mut names: Vec<String> = defs["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .flat_map(|p| p["messages"].as_array().into_iter().flatten())
            .filter(|m| !options.without.iter().any(|w| m["name"] == w.as_str()))
            .map(|m| {
                format!(
                    "{}_{}",
                    m["name"].as_str().unwrap(),
                    m["crc"].as_str().unwrap()
                )
            })
            .collect();
        names.sort();
        names.dedup();
        let mut table = Table {
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            defs: defs.clone(),
        };
        let mut next = SOCKCLNT_CREATE_ID + 1;
        for name in names {
            let id = if name == vpp_api::SOCKCLNT_CREATE {
                SOCKCLNT_CREATE_ID
            } else {
                next += 1;
                next - 1
            };
            table.by_id.insert(id, name.clone());
            table.by_name.insert(name, id);
        }
        table
    }

    /// Bytes of a field of `type_name` with every variable part empty.
    fn zero_size(&self, type_name: &str) -> usize {
        let (inner, len) = match type_name.split_once('[') {
            Some((inner, rest)) => (inner, rest.trim_end_matches(']')),
            None => (type_name, "1"),
        };
        // A variable array holds nothing; a variable string is its length.
        let Ok(n) = len.parse::<usize>() else {
            return if inner == "string" { 4 } else { 0 };
        };
        let one = match inner {
            "u8" | "i8" | "bool" | "string" => 1,
            "u16" | "i16" => 2,
            "u32" | "i32" => 4,
            "u64" | "i64" | "f64" => 8,
            other => self.named_size(other),
        };
        one * n
    }

    fn named_size(&self, name: &str) -> usize {
        for pkg in self.defs["packages"].as_array().into_iter().flatten() {
            let named = |kind: &str| {
                pkg[kind]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["name"] == name)
                    .cloned()
            };
            if let Some(e) = named("enums") {
                return match e["base"].as_str() {
                    Some("uint8") => 1,
                    Some("uint16") => 2,
                    _ => 4,
                };
            }
            if let Some(a) = named("aliases") {
                let go = a["go_base"].as_str().unwrap_or("");
                return match go.strip_prefix('[').and_then(|g| g.split_once(']')) {
                    Some((n, _)) => n.parse().unwrap_or(0),
                    None => 4,
                };
            }
            if let Some(u) = named("unions") {
                return u["fields"][0]["bytes"].as_u64().unwrap_or(0) as usize;
            }
            if let Some(t) = named("types") {
                return self.fields_size(&t["fields"]);
            }
        }
        0
    }

    fn fields_size(&self, fields: &Value) -> usize {
        fields
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| self.zero_size(f["type"].as_str().unwrap_or("")))
            .sum()
    }

    /// The fields of message `name` (short name), all zero.
    fn zero_message(&self, name: &str) -> Vec<u8> {
        let size = self.defs["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|p| p["messages"].as_array().into_iter().flatten())
            .find(|m| m["name"] == name)
            .map(|m| self.fields_size(&m["fields"]))
            .unwrap_or(0);
        vec![0; size]
    }

    /// The full `<name>_<crc>` of message `name`, if served.
    fn full(&self, name: &str) -> Option<&String> {
        self.by_name
            .keys()
            .find(|k| k.rsplit_once('_').is_some_and(|(n, _)| n == name))
    }
}

/// A running double; stops (and removes its socket) when dropped.
pub struct VppDouble {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl VppDouble {
    pub fn start(socket: &Path, options: Options) -> VppDouble {
        let table = Arc::new(Table::load(&options));
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the VPP test double's socket");
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, calls) = (stop.clone(), calls.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (table, calls) = (table.clone(), calls.clone());
                    std::thread::spawn(move || serve(stream, &table, &calls));
                }
            })
        };
        VppDouble {
            socket: socket.to_path_buf(),
            stop,
            calls,
            thread: Some(thread),
        }
    }

    /// Every message received, as `<name>_<crc>`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for VppDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn read_frame(stream: &mut UnixStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 16];
    stream.read_exact(&mut header).ok()?;
    let len = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    if len > 16 << 20 {
        return None;
    }
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).ok()?;
    Some(message)
}

fn write_frame(stream: &mut UnixStream, message: &[u8]) -> bool {
    let mut frame = vec![0u8; 8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(message);
    stream.write_all(&frame).is_ok()
}

/// `_vl_msg_id`, `context`, then the fields.
fn reply(table: &Table, name: &str, context: u32, fields: &[u8]) -> Vec<u8> {
    let id = table.by_name[table
        .full(name)
        .unwrap_or_else(|| panic!("the definitions have no {name}"))];
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&context.to_be_bytes());
    m.extend_from_slice(fields);
    m
}

fn serve(mut stream: UnixStream, table: &Table, calls: &Mutex<Vec<String>>) {
    let client_index = 7u32;
    while let Some(message) = read_frame(&mut stream) {
        let mut r = Reader::new(&message);
        let (Ok(id), Ok(_client), Ok(context)) = (r.u16(), r.u32(), r.u32()) else {
            return;
        };
        // An id outside the table is a client using a CRC this VPP does
        // not have: real VPP drops such a message; the double hangs up so
        // that the test sees it.
        let Some(name) = table.by_id.get(&id) else {
            return;
        };
        calls.lock().unwrap().push(name.clone());
        let short = name.rsplit_once('_').map_or(name.as_str(), |(n, _)| n);
        let answer = match short {
            "sockclnt_create" if id == SOCKCLNT_CREATE_ID => {
                let mut message_table: Vec<MessageTableEntry> = table
                    .by_id
                    .iter()
                    .map(|(id, name)| MessageTableEntry {
                        index: *id,
                        name: name.clone(),
                    })
                    .collect();
                message_table.sort_by_key(|e| e.index);
                let fields = SockclntCreateReply {
                    response: 0,
                    index: client_index,
                    count: 0,
                    message_table,
                };
                reply(table, "sockclnt_create_reply", context, &fields.encode())
            }
            "control_ping" => {
                let fields = ControlPingReply {
                    retval: 0,
                    client_index,
                    vpe_pid: std::process::id(),
                };
                reply(table, "control_ping_reply", context, &fields.encode())
            }
            "sockclnt_delete" => {
                let fields = SockclntDeleteReply { response: 0 };
                let answer = reply(table, "sockclnt_delete_reply", context, &fields.encode());
                write_frame(&mut stream, &answer);
                return;
            }
            dump if dump.ends_with("_dump") => continue,
            other => {
                let name = format!("{other}_reply");
                if table.full(&name).is_none() {
                    continue;
                }
                // A well-formed reply: retval first, every other field zero.
                let mut fields = table.zero_message(&name);
                if fields.len() >= 4 {
                    fields[..4].copy_from_slice(&UNIMPLEMENTED.to_be_bytes());
                }
                reply(table, &name, context, &fields)
            }
        };
        if !write_frame(&mut stream, &answer) {
            return;
        }
    }
}
