//! A **test double** of VPP's binary API socket — not VPP. VPP cannot be
//! installed on the machines this project is built and tested on, so the
//! VPP engine is tested against this.
//!
//! It speaks the socket protocol with VPP's layouts: framing;
//! `sockclnt_create` (id 15, no client index) answered by
//! `sockclnt_create_reply` (id 16, `client_index` before `context`, the
//! client's index in `index`) with its message table; requests that must
//! carry that index; replies under the request's context; dumps closed by
//! `control_ping`; `sockclnt_delete`. It numbers memclnt's messages first,
//! in VPP's order, then every other message of the VPP 25.10 definitions
//! in `sdk/vpp-binapi/vpp-api/` (so a client using a CRC those definitions do not
//! have gets no id and cannot send it), and can leave messages out of its
//! table to exercise a client's fallback to older messages. VPP's own
//! Python client (`vpp_papi`) drives it in `tests/vpp-papi`: the check
//! that it is faithful does not rest on our reading of the protocol alone.
//!
//! Its replies are encoded with the SDK's generated codecs. It keeps state
//! for what the VPP engine uses (memif socket ids, memif interfaces and
//! their admin state, bridge domains and their members; [`State`]) and
//! answers their requests and dumps from it, `_v2` and older messages
//! alike; the connection messages and `control_ping` too. Any other
//! request that has a `_reply` gets it with retval -8
//! (VNET_API_ERROR_UNIMPLEMENTED), and any other dump gets no details.
//! A switching thread accepts the memif clients of master interfaces and
//! forwards frames between the members of a bridge domain, so containers
//! can ping each other through it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use userspace_cni_sdk::vpp::*;
use vpp_api::{Reader, SOCKCLNT_CREATE_ID, SOCKCLNT_CREATE_REPLY_ID};

/// memclnt's messages in the order VPP's memclnt.api defines them, which
/// is the order VPP numbers them in (from 1). `tests/vpp-papi` checks this
/// list against the memclnt.api.json that VPP's Python client ships.
pub const MEMCLNT_ORDER: [&str; 28] = [
    "memclnt_create",
    "memclnt_create_reply",
    "memclnt_delete",
    "memclnt_delete_reply",
    "rx_thread_exit",
    "memclnt_rx_thread_suspend",
    "memclnt_read_timeout",
    "rpc_call",
    "rpc_call_reply",
    "get_first_msg_id",
    "get_first_msg_id_reply",
    "api_versions",
    "api_versions_reply",
    "trace_plugin_msg_ids",
    "sockclnt_create",
    "sockclnt_create_reply",
    "sockclnt_delete",
    "sockclnt_delete_reply",
    "sock_init_shm",
    "sock_init_shm_reply",
    "memclnt_keepalive",
    "memclnt_keepalive_reply",
    "control_ping",
    "control_ping_reply",
    "memclnt_create_v2",
    "memclnt_create_v2_reply",
    "get_api_json",
    "get_api_json_reply",
];

/// What VPP's socket API hands out as a client's index (its registration
/// pool index with the socket-registration bit set).
const SOCKET_REGISTRATION_BIT: u32 = 0x8000_0000;

/// The definitions the double serves (the ones the SDK's codecs come from).
pub fn definitions_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/vpp-binapi/vpp-api/vpp-25.10-binapi.json")
}

/// The size of message `name` (header fields included) as the definitions
/// lay it out, with every variable-length part empty: an independent check
/// of the SDK's generated codecs.
pub fn definition_size(name: &str) -> usize {
    Table::load(&Options::default()).zero_message(name).len()
}

/// VNET_API_ERROR_UNIMPLEMENTED
const UNIMPLEMENTED: i32 = -8;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Message names (without CRC) to leave out of the table, e.g.
    /// `memif_create_v2`, as an older VPP would.
    pub without: Vec<String>,
    /// A file rewritten with [`State::summary`] before each reply that
    /// follows a change, so a script sees the state the reply reflects.
    pub state_file: Option<PathBuf>,
    /// Answer garbage instead of well-formed replies (a broken or hostile
    /// VPP, for the plugin's fault tests).
    pub garbage: Option<Garbage>,
}

/// How a double answering garbage garbles its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// Random bytes instead of any frame, from the first answer on.
    Noise,
    /// A frame header announcing a 1 GiB message, then nothing.
    HugeFrame,
    /// After the handshake, every reply cut to its message id and context.
    ShortReplies,
    /// After the handshake, every reply under an id the table lacks.
    WrongIds,
    /// After the handshake, every reply under another id of the table
    /// (`control_ping_reply`'s, or `sockclnt_delete_reply`'s for a ping),
    /// with the right context.
    ForeignIds,
    /// Every frame (the handshake's too) sent one byte each 100 ms.
    Trickle,
}

/// The message table: id <-> `<name>_<crc>`.
struct Table {
    by_id: HashMap<u16, String>,
    by_name: HashMap<String, u16>,
    /// The definitions, to build well-formed replies.
    defs: Value,
    state_file: Option<PathBuf>,
    /// Set at start, changed by [`VppDouble::set_garbage`].
    garbage: Mutex<Option<Garbage>>,
}

impl Table {
    fn load(options: &Options) -> Table {
        let text =
            std::fs::read_to_string(definitions_path()).expect("read the VPP API definitions");
        let mut defs: Value = serde_json::from_str(&text).expect("VPP API definitions are JSON");
        // The types the extraction references but leaves out (the virtio
        // feature enums): without them those fields would lay out short.
        let supplement: Value = serde_json::from_str(
            &std::fs::read_to_string(definitions_path().with_file_name("supplement.json"))
                .expect("read the VPP API supplement"),
        )
        .expect("the VPP API supplement is JSON");
        if let (Some(all), Some(extra)) = (
            defs["packages"].as_array_mut(),
            supplement["packages"].as_array(),
        ) {
            all.extend(extra.iter().cloned());
        }
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
        // VPP registers memclnt's messages first, in the order of its
        // memclnt.api, from id 1 (so sockclnt_create is 15 and its reply
        // 16); every other package after them.
        names.sort_by_key(|n| {
            let short = vpp_api::message_name(n);
            MEMCLNT_ORDER
                .iter()
                .position(|m| *m == short)
                .unwrap_or(MEMCLNT_ORDER.len())
        });
        let mut table = Table {
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            defs: defs.clone(),
            state_file: options.state_file.clone(),
            garbage: Mutex::new(options.garbage),
        };
        for (i, name) in names.into_iter().enumerate() {
            let id = i as u16 + 1;
            table.by_id.insert(id, name.clone());
            table.by_name.insert(name, id);
        }
        assert_eq!(
            table.by_name.get(vpp_api::SOCKCLNT_CREATE),
            Some(&SOCKCLNT_CREATE_ID)
        );
        assert_eq!(
            table.by_name.get(vpp_api::SOCKCLNT_CREATE_REPLY),
            Some(&SOCKCLNT_CREATE_REPLY_ID)
        );
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
                if let Some((n, _)) = go.strip_prefix('[').and_then(|g| g.split_once(']')) {
                    return n.parse().unwrap_or(0);
                }
                if go.starts_with(|c: char| c.is_ascii_uppercase()) {
                    // An alias of a struct ("Prefix" -> `prefix`, "IP4Prefix" -> `ip4_prefix`).
                    return self.struct_size_by_go_name(go);
                }
                return 4;
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

    fn struct_size_by_go_name(&self, go: &str) -> usize {
        let flat = |s: &str| s.replace('_', "").to_ascii_lowercase();
        for pkg in self.defs["packages"].as_array().into_iter().flatten() {
            for t in pkg["types"].as_array().into_iter().flatten() {
                if flat(t["name"].as_str().unwrap_or("")) == flat(go) {
                    return self.fields_size(&t["fields"]);
                }
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
    state: Arc<Mutex<State>>,
    table: Arc<Table>,
    switch: Option<std::thread::JoinHandle<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl VppDouble {
    pub fn start(socket: &Path, options: Options) -> VppDouble {
        let table = Arc::new(Table::load(&options));
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).expect("bind the VPP test double's socket");
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(State::default()));
        if let Some(path) = &table.state_file {
            write_summary(path, &state.lock().unwrap());
        }
        let listeners: Arc<Listeners> = Arc::new(Mutex::new(HashMap::new()));
        let switch = {
            let (stop, state, listeners) = (stop.clone(), state.clone(), listeners.clone());
            std::thread::spawn(move || switch_frames(&stop, &state, &listeners))
        };
        let thread = {
            let (stop, calls, state) = (stop.clone(), calls.clone(), state.clone());
            let table = table.clone();
            std::thread::spawn(move || {
                for (n, stream) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (table, calls, state) = (table.clone(), calls.clone(), state.clone());
                    let listeners = listeners.clone();
                    let client_index = SOCKET_REGISTRATION_BIT | n as u32;
                    std::thread::spawn(move || {
                        serve(stream, client_index, &table, &calls, &state, &listeners)
                    });
                }
            })
        };
        VppDouble {
            socket: socket.to_path_buf(),
            stop,
            calls,
            state,
            table,
            thread: Some(thread),
            switch: Some(switch),
        }
    }

    /// A snapshot of what the double models.
    pub fn state(&self) -> State {
        self.state.lock().unwrap().clone()
    }

    /// From now on, answer as `garbage` says (`None`: sanely again),
    /// keeping the state.
    pub fn set_garbage(&self, garbage: Option<Garbage>) {
        *self.table.garbage.lock().unwrap() = garbage;
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
        if let Some(switch) = self.switch.take() {
            let _ = switch.join();
        }
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

/// Sends `message` in a frame, garbled as the table's `garbage` says.
fn send(stream: &mut UnixStream, table: &Table, message: &[u8]) -> bool {
    let handshake = message[..2] == SOCKCLNT_CREATE_REPLY_ID.to_be_bytes();
    let garbage = *table.garbage.lock().unwrap();
    match garbage {
        None => write_frame(stream, message),
        Some(Garbage::Noise) => {
            // Not random enough to matter, different enough per reply.
            let noise: Vec<u8> = (0..message.len() + 16)
                .map(|i| {
                    (i as u8)
                        .wrapping_mul(151)
                        .wrapping_add(message.len() as u8)
                })
                .collect();
            stream.write_all(&noise).is_ok()
        }
        Some(Garbage::HugeFrame) => {
            let mut header = vec![0u8; 8];
            header.extend_from_slice(&(1u32 << 30).to_be_bytes());
            header.extend_from_slice(&[0; 4]);
            stream.write_all(&header).is_ok()
        }
        Some(Garbage::Trickle) => {
            for byte in frame(message) {
                if stream.write_all(&[byte]).is_err() {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            true
        }
        Some(_) if handshake => write_frame(stream, message),
        Some(Garbage::ShortReplies) => write_frame(stream, &message[..message.len().min(6)]),
        Some(Garbage::WrongIds) => {
            let mut wrong = message.to_vec();
            wrong[..2].copy_from_slice(&u16::MAX.to_be_bytes());
            write_frame(stream, &wrong)
        }
        Some(Garbage::ForeignIds) => {
            let ping_reply = table.by_name[vpp_api::CONTROL_PING_REPLY];
            let other = if message[..2] == ping_reply.to_be_bytes() {
                table.by_name[vpp_api::SOCKCLNT_DELETE_REPLY]
            } else {
                ping_reply
            };
            let mut wrong = message.to_vec();
            wrong[..2].copy_from_slice(&other.to_be_bytes());
            write_frame(stream, &wrong)
        }
    }
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; 8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(message);
    frame
}

fn write_frame(stream: &mut UnixStream, message: &[u8]) -> bool {
    stream.write_all(&frame(message)).is_ok()
}

/// VPP's layout: `_vl_msg_id` (16), `client_index` (VPP leaves it 0),
/// `context`, `response`, `index` (the client's index for later
/// requests), `count`, `message_table[count]`.
fn sockclnt_create_reply(table: &Table, client_index: u32, context: u32) -> Vec<u8> {
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
    let mut m = SOCKCLNT_CREATE_REPLY_ID.to_be_bytes().to_vec();
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&context.to_be_bytes());
    m.extend_from_slice(&fields.encode());
    m
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

/// The memif sockets VPP listens on for its master interfaces, by
/// sw_if_index: created with the interface, gone with it, as VPP does.
type Listeners = Mutex<HashMap<u32, Listener>>;

/// Held for what holding does: the socket stays bound while held.
enum Listener {
    /// VPP as memif master: the client that connected, once one did.
    Memif {
        server: memif::Server,
        client: Option<Box<memif::Connection>>,
    },
    /// VPP as vhost-user server: the socket file exists while it does.
    Vhost {
        _listener: UnixListener,
        path: PathBuf,
    },
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Vhost { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Makes the listening sockets match the master memifs and the server
/// vhost-user interfaces in `state`.
fn reconcile_listeners(state: &State, listeners: &Listeners) {
    let mut listeners = listeners.lock().unwrap();
    listeners.retain(|sw_if_index, _| state.has_interface(*sw_if_index));
    for (sw_if_index, m) in &state.memifs {
        if m.role != memif_role::MEMIF_ROLE_API_MASTER || listeners.contains_key(sw_if_index) {
            continue;
        }
        if let Some(path) = state.sockets.get(&m.socket_id) {
            // As VPP does: a slave must present the memif's secret.
            let mut cfg = memif::ServerConfig::new(path);
            cfg.secret = m.secret.clone();
            match memif::Server::bind(cfg) {
                Ok(server) => {
                    listeners.insert(
                        *sw_if_index,
                        Listener::Memif {
                            server,
                            client: None,
                        },
                    );
                }
                Err(e) => eprintln!("VPP test double: cannot listen on {path}: {e}"),
            }
        }
    }
    for (sw_if_index, v) in &state.vhosts {
        if !v.is_server || listeners.contains_key(sw_if_index) {
            continue;
        }
        let _ = std::fs::remove_file(&v.socket);
        match UnixListener::bind(&v.socket) {
            Ok(l) => {
                listeners.insert(
                    *sw_if_index,
                    Listener::Vhost {
                        _listener: l,
                        path: PathBuf::from(&v.socket),
                    },
                );
            }
            Err(e) => eprintln!("VPP test double: cannot listen on {}: {e}", v.socket),
        }
    }
}

/// VPP's data plane, as much as the tests need: accepts the memif clients
/// of master interfaces and switches their frames between the members of a
/// bridge domain (learning source MACs, flooding unknown destinations).
fn switch_frames(stop: &AtomicBool, state: &Mutex<State>, listeners: &Listeners) {
    // (bridge domain, MAC) -> sw_if_index
    let mut macs: HashMap<(u32, [u8; 6]), u32> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        let members: HashMap<u32, u32> = {
            let state = state.lock().unwrap();
            state
                .bridge_domains
                .iter()
                .flat_map(|(bd, d)| d.members.iter().map(move |m| (*m, *bd)))
                .collect()
        };
        let mut listeners = listeners.lock().unwrap();
        let mut frames: Vec<(u32, Vec<u8>)> = Vec::new();
        for (sw_if_index, listener) in listeners.iter_mut() {
            let Listener::Memif { server, client } = listener else {
                continue;
            };
            if client.is_none() {
                let fd = server.listener_fd();
                let mut fds = [rustix::event::PollFd::from_borrowed_fd(
                    fd,
                    rustix::event::PollFlags::IN,
                )];
                if rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())) == Ok(1)
                {
                    *client = server.accept().ok().map(Box::new);
                }
            }
            let Some(conn) = client else { continue };
            if conn.poll_disconnect().is_some() {
                *client = None;
                continue;
            }
            for q in 0..conn.rx_queues() {
                conn.rx_burst(q, 64, |f| frames.push((*sw_if_index, f.to_vec())));
            }
        }
        let moved = frames.len();
        for (from, frame) in frames {
            let Some(bd) = members.get(&from).copied() else {
                continue;
            };
            if frame.len() < 14 {
                continue;
            }
            let dst: [u8; 6] = frame[0..6].try_into().unwrap();
            let src: [u8; 6] = frame[6..12].try_into().unwrap();
            macs.insert((bd, src), from);
            let out: Vec<u32> = match macs.get(&(bd, dst)) {
                Some(port) if dst[0] & 1 == 0 => vec![*port],
                _ => members
                    .iter()
                    .filter(|(m, b)| **b == bd && **m != from)
                    .map(|(m, _)| *m)
                    .collect(),
            };
            for port in out {
                if let Some(Listener::Memif {
                    client: Some(conn), ..
                }) = listeners.get_mut(&port)
                {
                    conn.tx_burst(0, &[&frame]);
                }
            }
        }
        drop(listeners);
        if moved == 0 {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

fn serve(
    mut stream: UnixStream,
    client_index: u32,
    table: &Table,
    calls: &Mutex<Vec<String>>,
    state: &Mutex<State>,
    listeners: &Listeners,
) {
    let mut registered = false;
    while let Some(message) = read_frame(&mut stream) {
        let mut r = Reader::new(&message);
        let Ok(id) = r.u16() else { return };
        if id == SOCKCLNT_CREATE_ID {
            // VPP's layout: `_vl_msg_id`, `context`, `name[64]` (no
            // client_index: the client has none yet).
            let (Ok(context), Ok(_name)) = (r.u32(), r.string(64)) else {
                eprintln!("VPP test double: a short sockclnt_create; hanging up");
                return;
            };
            calls
                .lock()
                .unwrap()
                .push(vpp_api::SOCKCLNT_CREATE.to_string());
            registered = true;
            if !send(
                &mut stream,
                table,
                &sockclnt_create_reply(table, client_index, context),
            ) {
                return;
            }
            continue;
        }
        let (Ok(sender), Ok(context)) = (r.u32(), r.u32()) else {
            return;
        };
        // An id outside the table is a client using a CRC this VPP does
        // not have: real VPP drops such a message; the double hangs up so
        // that the test sees it.
        let Some(name) = table.by_id.get(&id) else {
            eprintln!("VPP test double: message id {id} is not in the table; hanging up");
            return;
        };
        // VPP finds where to reply from the request's client_index: a
        // request before sockclnt_create, or carrying another index, gets
        // no reply from a real VPP. The double hangs up so that tests see it.
        if !registered || sender != client_index {
            eprintln!(
                "VPP test double: {name} carries client_index {sender:#x}, \
                 not this client's {client_index:#x}; hanging up"
            );
            return;
        }
        calls.lock().unwrap().push(name.clone());
        let short = name.rsplit_once('_').map_or(name.as_str(), |(n, _)| n);
        let modelled = {
            let mut state = state.lock().unwrap();
            let answer = modelled(&mut state, short, r.rest());
            reconcile_listeners(&state, listeners);
            if let Some(path) = &table.state_file {
                write_summary(path, &state);
            }
            answer
        };
        match modelled {
            Some(Ok(Answer::Reply(fields))) => {
                if !send(
                    &mut stream,
                    table,
                    &reply(table, &format!("{short}_reply"), context, &fields),
                ) {
                    return;
                }
                continue;
            }
            Some(Ok(Answer::Details(details))) => {
                let details_name = short.replace("_dump", "_details");
                for fields in details {
                    if !send(
                        &mut stream,
                        table,
                        &reply(table, &details_name, context, &fields),
                    ) {
                        return;
                    }
                }
                continue;
            }
            Some(Err(e)) => {
                eprintln!("VPP test double: malformed {name}: {e}; hanging up");
                return;
            }
            None => {}
        }
        let answer = match short {
            "control_ping" => {
                let fields = ControlPingReply {
                    retval: 0,
                    client_index,
                    vpe_pid: std::process::id(),
                };
                reply(table, "control_ping_reply", context, &fields.encode())
            }
            "sockclnt_delete" => {
                let index = SockclntDelete::decode(r.rest()).map(|m| m.index);
                let response = if index == Ok(client_index) { 0 } else { -1 };
                let fields = SockclntDeleteReply { response };
                let answer = reply(table, "sockclnt_delete_reply", context, &fields.encode());
                send(&mut stream, table, &answer);
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
        if !send(&mut stream, table, &answer) {
            return;
        }
    }
}

/// What the double models of VPP, for tests to compare before and after
/// (equality ignores the sw_if_index allocator: VPP does not hand an index
/// out again at once either).
#[derive(Debug, Clone)]
pub struct State {
    /// memif socket id -> file name (id 0 is VPP's default socket).
    pub sockets: BTreeMap<u32, String>,
    /// sw_if_index -> memif interface.
    pub memifs: BTreeMap<u32, MemifState>,
    /// sw_if_index -> vhost-user interface.
    pub vhosts: BTreeMap<u32, VhostState>,
    /// bridge-domain id -> bridge domain.
    pub bridge_domains: BTreeMap<u32, BridgeDomainState>,
    /// sw_if_index -> its addresses, as `address/len`.
    pub addresses: BTreeMap<u32, BTreeSet<String>>,
    next_sw_if_index: u32,
}

/// VPP's name for a vhost-user interface.
fn vhost_name(sw_if_index: u32) -> String {
    format!("VirtualEthernet0/0/{sw_if_index}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemifState {
    pub socket_id: u32,
    /// The memif id (the `id` a client's INIT must carry).
    pub id: u32,
    pub role: u32,
    pub mode: u32,
    pub admin_up: bool,
    pub rx_queues: u8,
    pub tx_queues: u8,
    pub ring_size: u32,
    pub buffer_size: u16,
    pub secret: String,
    pub hw_addr: [u8; 6],
}

/// What VPP keeps from a `memif_create` or `memif_create_v2` (the same
/// fields in two generated types): zero means VPP's default.
macro_rules! memif_created {
    ($m:expr) => {{
        let m = $m;
        let or = |v: u32, default: u32| if v == 0 { default } else { v };
        MemifState {
            socket_id: m.socket_id,
            id: m.id,
            role: m.role,
            mode: m.mode,
            admin_up: false,
            rx_queues: or(m.rx_queues.into(), 1) as u8,
            tx_queues: or(m.tx_queues.into(), 1) as u8,
            ring_size: or(m.ring_size, 1024),
            buffer_size: or(m.buffer_size.into(), 2048) as u16,
            secret: m.secret,
            hw_addr: m.hw_addr,
        }
    }};
}

impl MemifState {
    /// VPP's name for it: `memif<socket id>/<memif id>`.
    pub fn name(&self) -> String {
        format!("memif{}/{}", self.socket_id, self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostState {
    pub socket: String,
    pub is_server: bool,
    pub admin_up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDomainState {
    pub tag: String,
    pub flood: bool,
    pub learn: bool,
    pub forward: bool,
    pub members: BTreeSet<u32>,
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        let mine = (
            &self.sockets,
            &self.memifs,
            &self.vhosts,
            &self.bridge_domains,
            &self.addresses,
        );
        mine == (
            &other.sockets,
            &other.memifs,
            &other.vhosts,
            &other.bridge_domains,
            &other.addresses,
        )
    }
}

impl Eq for State {}

impl Default for State {
    fn default() -> Self {
        State {
            sockets: BTreeMap::from([(0, "/run/vpp/memif.sock".to_string())]),
            memifs: BTreeMap::new(),
            vhosts: BTreeMap::new(),
            addresses: BTreeMap::new(),
            bridge_domains: BTreeMap::new(),
            next_sw_if_index: 1,
        }
    }
}

/// Negative retvals the double answers with (the engine tests for zero).
const NO_SUCH_INTERFACE: i32 = -2;
const NO_SUCH_ENTRY: i32 = -6;
const ALREADY_EXISTS: i32 = -16;
const IN_USE: i32 = -17;

/// Answers the messages the double models; `None` for the others.
/// Returns the fields of the reply, or the details of a dump.
fn modelled(state: &mut State, short: &str, body: &[u8]) -> Option<Result<Answer, String>> {
    fn decode<M: Message>(body: &[u8]) -> Result<M, String> {
        M::decode(body).map_err(|e| format!("{}: {}", M::NAME, e.0))
    }
    let answer = (|| -> Result<Answer, String> {
        Ok(match short {
            "memif_socket_filename_add_del_v2" => {
                let m: MemifSocketFilenameAddDelV2 = decode(body)?;
                let (retval, id) = state.socket_add_del(m.is_add, m.socket_id, &m.socket_filename);
                Answer::Reply(
                    MemifSocketFilenameAddDelV2Reply {
                        retval,
                        socket_id: id,
                    }
                    .encode(),
                )
            }
            "memif_socket_filename_add_del" => {
                let m: MemifSocketFilenameAddDel = decode(body)?;
                let (retval, _) = state.socket_add_del(m.is_add, m.socket_id, &m.socket_filename);
                Answer::Reply(MemifSocketFilenameAddDelReply { retval }.encode())
            }
            "memif_socket_filename_dump" => Answer::Details(
                state
                    .sockets
                    .iter()
                    .map(|(id, name)| {
                        MemifSocketFilenameDetails {
                            socket_id: *id,
                            socket_filename: name.clone(),
                        }
                        .encode()
                    })
                    .collect(),
            ),
            "memif_create_v2" => {
                let m: MemifCreateV2 = decode(body)?;
                let (retval, sw_if_index) = state.memif_create(memif_created!(m));
                Answer::Reply(
                    MemifCreateV2Reply {
                        retval,
                        sw_if_index,
                    }
                    .encode(),
                )
            }
            "memif_create" => {
                let m: MemifCreate = decode(body)?;
                let (retval, sw_if_index) = state.memif_create(memif_created!(m));
                Answer::Reply(
                    MemifCreateReply {
                        retval,
                        sw_if_index,
                    }
                    .encode(),
                )
            }
            "memif_delete" => {
                let m: MemifDelete = decode(body)?;
                let retval = match state.memifs.remove(&m.sw_if_index) {
                    Some(_) => {
                        for bd in state.bridge_domains.values_mut() {
                            bd.members.remove(&m.sw_if_index);
                        }
                        state.addresses.remove(&m.sw_if_index);
                        0
                    }
                    None => NO_SUCH_INTERFACE,
                };
                Answer::Reply(MemifDeleteReply { retval }.encode())
            }
            "memif_dump" => Answer::Details(
                state
                    .memifs
                    .iter()
                    .map(|(sw_if_index, m)| {
                        MemifDetails {
                            sw_if_index: *sw_if_index,
                            role: m.role,
                            mode: m.mode,
                            socket_id: m.socket_id,
                            ring_size: m.ring_size,
                            buffer_size: m.buffer_size,
                            hw_addr: m.hw_addr,
                            flags: if m.admin_up {
                                if_status_flags::IF_STATUS_API_FLAG_ADMIN_UP
                            } else {
                                0
                            },
                            id: m.id,
                            if_name: m.name(),
                            ..Default::default()
                        }
                        .encode()
                    })
                    .collect(),
            ),
            "sw_interface_dump" => {
                let m: SwInterfaceDump = decode(body)?;
                Answer::Details(
                    state
                        .interfaces()
                        .into_iter()
                        .filter(|i| m.sw_if_index == u32::MAX || i.sw_if_index == m.sw_if_index)
                        .filter(|i| {
                            !m.name_filter_valid || i.interface_name.contains(&m.name_filter)
                        })
                        .map(|i| i.encode())
                        .collect(),
                )
            }
            "sw_interface_set_flags" => {
                let m: SwInterfaceSetFlags = decode(body)?;
                let up = m.flags & if_status_flags::IF_STATUS_API_FLAG_ADMIN_UP != 0;
                let retval = if let Some(memif) = state.memifs.get_mut(&m.sw_if_index) {
                    memif.admin_up = up;
                    0
                } else if let Some(vhost) = state.vhosts.get_mut(&m.sw_if_index) {
                    vhost.admin_up = up;
                    0
                } else {
                    NO_SUCH_INTERFACE
                };
                Answer::Reply(SwInterfaceSetFlagsReply { retval }.encode())
            }
            "sw_interface_add_del_address" => {
                let m: SwInterfaceAddDelAddress = decode(body)?;
                let retval = if !state.has_interface(m.sw_if_index) {
                    NO_SUCH_INTERFACE
                } else {
                    let a = &m.prefix.address;
                    let ip: std::net::IpAddr = if a.af == address_family::ADDRESS_IP4 {
                        std::net::Ipv4Addr::new(a.un[0], a.un[1], a.un[2], a.un[3]).into()
                    } else {
                        std::net::Ipv6Addr::from(a.un).into()
                    };
                    let text = format!("{ip}/{}", m.prefix.len);
                    let set = state.addresses.entry(m.sw_if_index).or_default();
                    if m.del_all {
                        set.clear();
                    } else if m.is_add {
                        set.insert(text);
                    } else {
                        set.remove(&text);
                    }
                    if set.is_empty() {
                        state.addresses.remove(&m.sw_if_index);
                    }
                    0
                };
                Answer::Reply(SwInterfaceAddDelAddressReply { retval }.encode())
            }
            "create_vhost_user_if_v2" => {
                let m: CreateVhostUserIfV2 = decode(body)?;
                let sw_if_index = state.vhost_create(&m.sock_filename, m.is_server);
                Answer::Reply(
                    CreateVhostUserIfV2Reply {
                        retval: 0,
                        sw_if_index,
                    }
                    .encode(),
                )
            }
            "create_vhost_user_if" => {
                let m: CreateVhostUserIf = decode(body)?;
                let sw_if_index = state.vhost_create(&m.sock_filename, m.is_server);
                Answer::Reply(
                    CreateVhostUserIfReply {
                        retval: 0,
                        sw_if_index,
                    }
                    .encode(),
                )
            }
            "delete_vhost_user_if" => {
                let m: DeleteVhostUserIf = decode(body)?;
                let retval = match state.vhosts.remove(&m.sw_if_index) {
                    Some(_) => {
                        for bd in state.bridge_domains.values_mut() {
                            bd.members.remove(&m.sw_if_index);
                        }
                        state.addresses.remove(&m.sw_if_index);
                        0
                    }
                    None => NO_SUCH_INTERFACE,
                };
                Answer::Reply(DeleteVhostUserIfReply { retval }.encode())
            }
            "sw_interface_vhost_user_dump" => Answer::Details(
                state
                    .vhosts
                    .iter()
                    .map(|(sw_if_index, v)| {
                        SwInterfaceVhostUserDetails {
                            sw_if_index: *sw_if_index,
                            interface_name: vhost_name(*sw_if_index),
                            is_server: v.is_server,
                            sock_filename: v.socket.clone(),
                            ..Default::default()
                        }
                        .encode()
                    })
                    .collect(),
            ),
            "bridge_domain_add_del_v2" => {
                let m: BridgeDomainAddDelV2 = decode(body)?;
                let retval =
                    state.bd_add_del(m.is_add, m.bd_id, &m.bd_tag, m.flood, m.learn, m.forward);
                Answer::Reply(
                    BridgeDomainAddDelV2Reply {
                        retval,
                        bd_id: m.bd_id,
                    }
                    .encode(),
                )
            }
            "bridge_domain_add_del" => {
                let m: BridgeDomainAddDel = decode(body)?;
                let retval =
                    state.bd_add_del(m.is_add, m.bd_id, &m.bd_tag, m.flood, m.learn, m.forward);
                Answer::Reply(BridgeDomainAddDelReply { retval }.encode())
            }
            "bridge_domain_dump" => {
                let m: BridgeDomainDump = decode(body)?;
                Answer::Details(
                    state
                        .bridge_domains
                        .iter()
                        .filter(|(id, _)| m.bd_id == u32::MAX || **id == m.bd_id)
                        .map(|(id, bd)| {
                            BridgeDomainDetails {
                                bd_id: *id,
                                flood: bd.flood,
                                uu_flood: bd.flood,
                                forward: bd.forward,
                                learn: bd.learn,
                                bd_tag: bd.tag.clone(),
                                bvi_sw_if_index: u32::MAX,
                                uu_fwd_sw_if_index: u32::MAX,
                                n_sw_ifs: bd.members.len() as u32,
                                sw_if_details: bd
                                    .members
                                    .iter()
                                    .map(|sw_if_index| BridgeDomainSwIf {
                                        context: 0,
                                        sw_if_index: *sw_if_index,
                                        shg: 0,
                                    })
                                    .collect(),
                                ..Default::default()
                            }
                            .encode()
                        })
                        .collect(),
                )
            }
            "sw_interface_set_l2_bridge" => {
                let m: SwInterfaceSetL2Bridge = decode(body)?;
                let retval = if !state.has_interface(m.rx_sw_if_index) {
                    NO_SUCH_INTERFACE
                } else if m.enable {
                    match state.bridge_domains.get_mut(&m.bd_id) {
                        Some(bd) => {
                            bd.members.insert(m.rx_sw_if_index);
                            0
                        }
                        None => NO_SUCH_ENTRY,
                    }
                } else {
                    for bd in state.bridge_domains.values_mut() {
                        bd.members.remove(&m.rx_sw_if_index);
                    }
                    0
                };
                Answer::Reply(SwInterfaceSetL2BridgeReply { retval }.encode())
            }
            _ => return Err(String::new()),
        })
    })();
    match answer {
        Err(e) if e.is_empty() => None,
        other => Some(other),
    }
}

enum Answer {
    Reply(Vec<u8>),
    Details(Vec<Vec<u8>>),
}

/// Replaces `path` with the state's summary in one rename, so a reader
/// never sees half of it.
fn write_summary(path: &Path, state: &State) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, state.summary())
        .and_then(|()| std::fs::rename(&tmp, path))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl State {
    /// The modelled state, one table per line (what `vppctl show` would
    /// list), without the allocation counter.
    pub fn summary(&self) -> String {
        format!(
            "memif sockets:  {:?}\nmemifs:         {:?}\nvhost-user:     {:?}\nbridge domains: {:?}\naddresses:      {:?}\n",
            self.sockets, self.memifs, self.vhosts, self.bridge_domains, self.addresses
        )
    }

    fn socket_add_del(&mut self, is_add: bool, id: u32, name: &str) -> (i32, u32) {
        if is_add {
            if self.sockets.values().any(|n| n == name) {
                return (ALREADY_EXISTS, id);
            }
            let id = if id == u32::MAX {
                (1..)
                    .find(|i| !self.sockets.contains_key(i))
                    .expect("a free id")
            } else if self.sockets.contains_key(&id) {
                return (ALREADY_EXISTS, id);
            } else {
                id
            };
            self.sockets.insert(id, name.to_string());
            (0, id)
        } else if self.memifs.values().any(|m| m.socket_id == id) {
            (IN_USE, id)
        } else if id == 0 || self.sockets.remove(&id).is_none() {
            (NO_SUCH_ENTRY, id)
        } else {
            (0, id)
        }
    }

    /// What `sw_interface_dump` lists: VPP's `local0`, then every memif
    /// and vhost-user interface.
    fn interfaces(&self) -> Vec<SwInterfaceDetails> {
        let flags = |up: bool| {
            if up {
                if_status_flags::IF_STATUS_API_FLAG_ADMIN_UP
            } else {
                0
            }
        };
        let mut all = vec![SwInterfaceDetails {
            sw_if_index: 0,
            interface_name: "local0".into(),
            interface_dev_type: "local".into(),
            ..Default::default()
        }];
        for (sw_if_index, m) in &self.memifs {
            all.push(SwInterfaceDetails {
                sw_if_index: *sw_if_index,
                sup_sw_if_index: *sw_if_index,
                l2_address: m.hw_addr,
                flags: flags(m.admin_up),
                link_mtu: 9000,
                mtu: vec![9000, 0, 0, 0],
                interface_name: m.name(),
                interface_dev_type: "memif".into(),
                ..Default::default()
            });
        }
        for (sw_if_index, v) in &self.vhosts {
            all.push(SwInterfaceDetails {
                sw_if_index: *sw_if_index,
                sup_sw_if_index: *sw_if_index,
                flags: flags(v.admin_up),
                link_mtu: 9000,
                mtu: vec![9000, 0, 0, 0],
                interface_name: vhost_name(*sw_if_index),
                interface_dev_type: "virtio".into(),
                ..Default::default()
            });
        }
        all
    }

    fn has_interface(&self, sw_if_index: u32) -> bool {
        self.memifs.contains_key(&sw_if_index) || self.vhosts.contains_key(&sw_if_index)
    }

    fn vhost_create(&mut self, socket: &str, is_server: bool) -> u32 {
        let sw_if_index = self.next_sw_if_index;
        self.next_sw_if_index += 1;
        let vhost = VhostState {
            socket: socket.to_string(),
            is_server,
            admin_up: false,
        };
        self.vhosts.insert(sw_if_index, vhost);
        sw_if_index
    }

    fn memif_create(&mut self, memif: MemifState) -> (i32, u32) {
        if !self.sockets.contains_key(&memif.socket_id) {
            return (NO_SUCH_ENTRY, u32::MAX);
        }
        let sw_if_index = self.next_sw_if_index;
        self.next_sw_if_index += 1;
        self.memifs.insert(sw_if_index, memif);
        (0, sw_if_index)
    }

    fn bd_add_del(
        &mut self,
        is_add: bool,
        id: u32,
        tag: &str,
        flood: bool,
        learn: bool,
        forward: bool,
    ) -> i32 {
        if is_add {
            if self.bridge_domains.contains_key(&id) {
                return ALREADY_EXISTS;
            }
            let bd = BridgeDomainState {
                tag: tag.to_string(),
                flood,
                learn,
                forward,
                members: BTreeSet::new(),
            };
            self.bridge_domains.insert(id, bd);
            0
        } else if self.bridge_domains.remove(&id).is_some() {
            0
        } else {
            NO_SUCH_ENTRY
        }
    }
}

/// VPP's own Python client (`vpp_papi`, installed by `.ci/setup`) and the
/// scripts in `tests/vpp-papi` that drive it: the independent peer the
/// double, the transport and the codecs are checked against.
pub mod papi {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// The Python that has `vpp_papi`: `$USERSPACE_TEST_PYTHON`, else the
    /// venv `.ci/setup` makes. Panics (never skips) when it is missing.
    pub fn python() -> PathBuf {
        let python = std::env::var_os("USERSPACE_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/opt/userspace-cni-venv/bin/python"));
        let ok = Command::new(&python)
            .args(["-c", "import vpp_papi"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{} cannot import vpp_papi: run .ci/setup (it installs VPP's Python client from PyPI)",
            python.display()
        );
        python
    }

    /// `tests/vpp-papi/<name>`.
    pub fn script(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vpp-papi")
            .join(name)
    }

    /// Our definitions in VPP's `.api.json` format (api_json.py, which also
    /// checks our memclnt definitions against the ones vpp_papi ships).
    pub fn definitions() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temp dir");
        run(&[script("api_json.py").as_os_str(), dir.path().as_os_str()]);
        dir
    }

    /// Runs the Python with `args`; its stdout, or a panic with its stderr.
    pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
        let out = Command::new(python())
            .args(args)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{:?} failed: {}\n{}",
            args.iter()
                .map(|a| a.as_ref().to_owned())
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `probe.py DEFS SOCKET ARGS...`, parsed as JSON when `json`.
    pub fn probe(defs: &Path, socket: &Path, args: &[&str]) -> String {
        let mut all = vec![
            script("probe.py").into_os_string(),
            defs.into(),
            socket.into(),
        ];
        all.extend(args.iter().map(Into::into));
        run(&all)
    }

    /// What vpp_papi sees on `socket`: `probe.py show`.
    pub fn show(defs: &Path, socket: &Path) -> serde_json::Value {
        serde_json::from_str(&probe(defs, socket, &["show"])).expect("probe.py prints JSON")
    }
}
