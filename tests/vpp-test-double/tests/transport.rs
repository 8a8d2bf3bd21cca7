//! The host's VPP API transport against the VPP test double.

use std::time::{Duration, Instant};

use userspace_cni_sdk::vpp::{
    MemifCreateV2, MemifCreateV2Reply, MemifSocketFilenameAddDelV2, MemifSocketFilenameDetails,
    MemifSocketFilenameDump, Message,
};

use vpp_api::{Connection, Error, Limits};
use vpp_test_double::{Garbage, Options, VppDouble};

const TIMEOUT: Duration = Duration::from_secs(5);

fn connect(socket: &std::path::Path, limits: Limits) -> Result<Connection, Error> {
    Connection::connect(socket.to_str().unwrap(), "t", limits)
}

#[test]
fn connect_learns_the_table_pings_dumps_and_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let double = VppDouble::start(&socket, Options::default());
    let mut vpp = Connection::connect(
        socket.to_str().unwrap(),
        "userspace-cni",
        Limits::within(TIMEOUT),
    )
    .unwrap();
    assert!(vpp.knows("memif_create_v2_8c7de5f7"));
    assert!(vpp.knows("sw_interface_set_flags_f5aec1b8"));
    vpp.ping().unwrap();
    let details = vpp
        .dump(
            "memif_socket_filename_dump_51077d14",
            &[],
            "memif_socket_filename_details_7ff326f7",
        )
        .unwrap();
    // VPP's default memif socket, id 0.
    use userspace_cni_sdk::vpp::{MemifSocketFilenameDetails, Message};
    let sockets: Vec<MemifSocketFilenameDetails> = details
        .iter()
        .map(|d| MemifSocketFilenameDetails::decode(d).unwrap())
        .collect();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].socket_id, 0);
    assert_eq!(sockets[0].socket_filename, "/run/vpp/memif.sock");
    vpp.disconnect().unwrap();
    let calls = double.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some(vpp_api::SOCKCLNT_CREATE)
    );
    assert!(calls.contains(&vpp_api::CONTROL_PING.to_string()));
    assert_eq!(
        calls.last().map(String::as_str),
        Some(vpp_api::SOCKCLNT_DELETE)
    );
}

#[test]
fn a_message_the_running_vpp_lacks_is_named_with_what_it_offers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let _double = VppDouble::start(&socket, Options::default());
    let vpp = connect(&socket, Limits::within(TIMEOUT)).unwrap();
    let err = vpp.id("memif_create_v2_deadbeef").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::UnknownMessage { .. }));
    assert!(
        text.contains("memif_create_v2_deadbeef") && text.contains("memif_create_v2_8c7de5f7"),
        "{text}"
    );
}

#[test]
fn an_older_vpp_without_v2_messages_is_seen_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let _double = VppDouble::start(
        &socket,
        Options {
            without: vec!["memif_create_v2".into()],
            ..Options::default()
        },
    );
    let vpp = connect(&socket, Limits::within(TIMEOUT)).unwrap();
    assert!(!vpp.knows("memif_create_v2_8c7de5f7"));
    assert!(
        vpp.knows("memif_create_b1b25061"),
        "the older message is still offered"
    );
}

#[test]
fn no_vpp_is_a_clear_error() {
    let err = Connection::connect("/nonexistent/api.sock", "t", Limits::within(TIMEOUT))
        .err()
        .unwrap();
    assert!(err.to_string().contains("is VPP running"), "{err}");
}

#[test]
fn sdk_codecs_travel_over_the_transport() {
    use userspace_cni_sdk::vpp::{
        MemifSocketFilenameAddDelV2, MemifSocketFilenameAddDelV2Reply, Message,
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let double = VppDouble::start(&socket, Options::default());
    let mut vpp = connect(&socket, Limits::within(TIMEOUT)).unwrap();
    let request = MemifSocketFilenameAddDelV2 {
        is_add: true,
        socket_id: u32::MAX,
        socket_filename: "/run/x/memif.sock".into(),
    };
    let reply = vpp
        .request(&MemifSocketFilenameAddDelV2::name_crc(), &request.encode())
        .unwrap();
    let reply = MemifSocketFilenameAddDelV2Reply::decode(&reply).unwrap();
    assert_eq!(
        (reply.retval, reply.socket_id),
        (0, 1),
        "the first free socket id"
    );
    assert_eq!(double.state().sockets[&1], "/run/x/memif.sock");

    // A request the double does not model gets a well-formed reply with
    // VNET_API_ERROR_UNIMPLEMENTED.
    use userspace_cni_sdk::vpp::{SwInterfaceSetMtu, SwInterfaceSetMtuReply};
    let mtu = SwInterfaceSetMtu::default().encode();
    let reply = vpp.request(&SwInterfaceSetMtu::name_crc(), &mtu).unwrap();
    assert_eq!(SwInterfaceSetMtuReply::decode(&reply).unwrap().retval, -8);
    assert!(double
        .calls()
        .contains(&MemifSocketFilenameAddDelV2::name_crc()));
}

/// The double answering `garbage` after a sane handshake.
fn garbled(garbage: Garbage) -> (tempfile::TempDir, VppDouble, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let double = VppDouble::start(&socket, Options::default());
    let vpp = connect(&socket, Limits::within(Duration::from_secs(1))).unwrap();
    double.set_garbage(Some(garbage));
    (dir, double, vpp)
}

/// A reply under another message's id, with the request's context, is
/// not the reply: a clear error at once (it used to be accepted).
#[test]
fn a_reply_under_a_foreign_id_is_refused() {
    let (_dir, _double, mut vpp) = garbled(Garbage::ForeignIds);
    let started = Instant::now();
    let err = vpp
        .request(
            &MemifCreateV2::name_crc(),
            &MemifCreateV2::default().encode(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("memif_create_v2_8c7de5f7") && text.contains("control_ping_reply"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    // control_ping's reply comes under sockclnt_delete_reply's id.
    let err = vpp.ping().unwrap_err();
    assert!(err.to_string().contains("sockclnt_delete_reply"), "{err}");
}

/// A peer sending one byte each 100 ms never resets the deadline: the
/// request fails once its one second is over, not a second per byte.
#[test]
fn a_trickling_peer_meets_the_deadline() {
    let (_dir, _double, mut vpp) = garbled(Garbage::Trickle);
    let started = Instant::now();
    let err = vpp.ping().unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("control_ping"), "{err}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

/// The handshake is bounded too: a trickled message table.
#[test]
fn a_trickling_handshake_meets_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let _double = VppDouble::start(&socket, Options::default());
    // Trickle from the first answer: the table is ~20 KB.
    _double.set_garbage(Some(Garbage::Trickle));
    let started = Instant::now();
    let err = connect(&socket, Limits::within(Duration::from_millis(700)))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1200));
}

/// A frame announcing 1 GiB is refused before anything is allocated.
#[test]
fn a_huge_frame_is_refused() {
    let (_dir, _double, mut vpp) = garbled(Garbage::HugeFrame);
    let err = vpp.ping().unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("1073741824"), "{err}");
}

/// Replies cut to their id and context: the transport hands them on, and
/// the engine's decoders refuse them (`codecs.rs` cuts every reply).
#[test]
fn a_reply_cut_short_reaches_the_decoder_as_such() {
    let (_dir, _double, mut vpp) = garbled(Garbage::ShortReplies);
    let reply = vpp
        .request(
            &MemifCreateV2::name_crc(),
            &MemifCreateV2::default().encode(),
        )
        .unwrap();
    assert!(reply.is_empty());
    assert!(MemifCreateV2Reply::decode(&reply).is_err());
}

/// A dump may not return more details, or more bytes, than its caps.
#[test]
fn dumps_are_capped_in_details_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let _double = VppDouble::start(&socket, Options::default());
    let mut vpp = connect(&socket, Limits::within(TIMEOUT)).unwrap();
    for i in 0..3 {
        let add = MemifSocketFilenameAddDelV2 {
            is_add: true,
            socket_id: u32::MAX,
            socket_filename: format!("/run/x/{i}.sock"),
        };
        vpp.request(&MemifSocketFilenameAddDelV2::name_crc(), &add.encode())
            .unwrap();
    }
    let dump = |limits: Limits| {
        let mut vpp = connect(&socket, limits).unwrap();
        vpp.dump(
            &MemifSocketFilenameDump::name_crc(),
            &[],
            &MemifSocketFilenameDetails::name_crc(),
        )
    };
    let all = dump(Limits::within(TIMEOUT)).unwrap();
    assert_eq!(all.len(), 4, "VPP's default socket and three more");
    let err = dump(Limits {
        dump_details: 3,
        ..Limits::within(TIMEOUT)
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                unit: "details",
                limit: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = dump(Limits {
        dump_bytes: 2 * all[0].len(),
        ..Limits::within(TIMEOUT)
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { unit: "bytes", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("memif_socket_filename_dump"),
        "{err}"
    );
}
