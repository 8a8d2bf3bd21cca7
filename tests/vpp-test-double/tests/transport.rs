//! The host's VPP API transport against the VPP test double.

use std::time::Duration;

use vpp_api::{Connection, Error};
use vpp_test_double::{Options, VppDouble};

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn connect_learns_the_table_pings_dumps_and_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let double = VppDouble::start(&socket, Options::default());
    let mut vpp = Connection::connect(socket.to_str().unwrap(), "userspace-cni", TIMEOUT).unwrap();
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
    let vpp = Connection::connect(socket.to_str().unwrap(), "t", TIMEOUT).unwrap();
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
    let vpp = Connection::connect(socket.to_str().unwrap(), "t", TIMEOUT).unwrap();
    assert!(!vpp.knows("memif_create_v2_8c7de5f7"));
    assert!(
        vpp.knows("memif_create_b1b25061"),
        "the older message is still offered"
    );
}

#[test]
fn no_vpp_is_a_clear_error() {
    let err = Connection::connect("/nonexistent/api.sock", "t", TIMEOUT)
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
    let mut vpp = Connection::connect(socket.to_str().unwrap(), "t", TIMEOUT).unwrap();
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
