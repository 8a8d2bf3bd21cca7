//! VPP's own Python client (`vpp_papi`, from PyPI) as the independent peer:
//! it connects to the double with VPP's memclnt definitions, and its packer
//! encodes and decodes the messages the engine uses byte for byte like our
//! generated codecs and our transport's headers. A double and a codec
//! written from one reading of the protocol cannot vouch for each other;
//! these tests have the other side's implementation check both.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use userspace_cni_sdk::vpp::*;
use vpp_test_double::{papi, Options, State, VppDouble, MEMCLNT_ORDER};

/// The double numbers memclnt's messages as VPP does: the order of
/// VPP's memclnt.api.json (which vpp_papi ships), from 1.
#[test]
fn the_doubles_memclnt_ids_follow_vpps_definitions() {
    let order = papi::run(&[
        "-c",
        "import json, os, vpp_papi\n\
         path = os.path.join(os.path.dirname(vpp_papi.__file__), 'data', 'memclnt.api.json')\n\
         print(json.dumps([m[0] for m in json.load(open(path))['messages']]))",
    ]);
    let order: Vec<String> = serde_json::from_str(&order).unwrap();
    assert_eq!(order, MEMCLNT_ORDER, "VPP's memclnt.api.json order");
    assert_eq!(
        order[vpp_api::SOCKCLNT_CREATE_ID as usize - 1],
        "sockclnt_create"
    );
    assert_eq!(
        order[vpp_api::SOCKCLNT_CREATE_REPLY_ID as usize - 1],
        "sockclnt_create_reply"
    );
}

/// vpp_papi connects (it insists on id 16 and VPP's reply layout), pings,
/// dumps everything the engine reads, and makes and unmakes a memif on a
/// bridge domain with the messages the engine sends.
#[test]
fn vpp_papi_connects_dumps_and_makes_a_memif_on_a_bridge_domain() {
    let defs = papi::definitions();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let double = VppDouble::start(&socket, Options::default());
    let fresh = double.state();
    let steps: Value =
        serde_json::from_str(&papi::probe(defs.path(), &socket, &["session"])).unwrap();

    assert_eq!(steps["ping"], 0);
    let before = &steps["before"];
    assert_eq!(before["memifs"], json!([]));
    assert_eq!(
        before["memif_sockets"],
        json!({"0": "/run/vpp/memif.sock"}),
        "VPP's default memif socket, id 0"
    );
    assert_eq!(before["interfaces"][0]["name"], "local0");
    assert_eq!(before["bridge_domains"], json!([]));
    assert_eq!(before["vhost_user"], json!([]));

    let made = &steps["made"];
    let sw_if_index = steps["sw_if_index"].clone();
    let memif = &made["memifs"][0];
    assert_eq!(made["memifs"].as_array().unwrap().len(), 1, "{made}");
    assert_eq!(memif["sw_if_index"], sw_if_index);
    assert_eq!(memif["role"], "master");
    assert_eq!(memif["mode"], "ethernet");
    assert_eq!(memif["id"], 5);
    assert_eq!(memif["socket_id"], steps["socket_id"]);
    assert_eq!(
        memif["socket"],
        json!(dir.path().join("papi-memif.sock").to_str().unwrap())
    );
    assert_eq!(memif["admin_up"], true);
    assert_eq!(memif["name"], format!("memif{}/5", steps["socket_id"]));
    let bd = &made["bridge_domains"][0];
    assert_eq!(bd["bd_id"], 77);
    assert_eq!(bd["tag"], "papi");
    assert_eq!(bd["members"], json!([sw_if_index]));
    let interface = made["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sw_if_index"] == sw_if_index)
        .expect("the memif in sw_interface_dump");
    assert_eq!(interface["bridge_domain"], 77);
    assert_eq!(interface["admin_up"], true);
    assert_eq!(interface["mac"], "02:fe:00:00:00:05");

    assert_eq!(steps["after"], steps["before"], "undone");
    assert_eq!(double.state(), fresh);
    let calls = double.calls();
    for sent in [
        MemifSocketFilenameAddDelV2::name_crc(),
        MemifCreateV2::name_crc(),
        SwInterfaceSetFlags::name_crc(),
        BridgeDomainAddDelV2::name_crc(),
        SwInterfaceSetL2Bridge::name_crc(),
        MemifDelete::name_crc(),
        MemifDump::name_crc(),
        SwInterfaceDump::name_crc(),
        vpp_api::SOCKCLNT_DELETE.to_string(),
    ] {
        assert!(calls.contains(&sent), "vpp_papi sent no {sent}: {calls:?}");
    }
    assert_eq!(calls[0], vpp_api::SOCKCLNT_CREATE);
}

/// The state vpp_papi reads is the double's own.
#[test]
fn vpp_papi_reads_the_doubles_state() {
    let defs = papi::definitions();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let double = VppDouble::start(&socket, Options::default());
    let seen = papi::show(defs.path(), &socket);
    let state: State = double.state();
    assert_eq!(seen["memif_sockets"]["0"], state.sockets[&0]);
    let text = papi::probe(defs.path(), &socket, &["show", "--text"]);
    assert!(text.contains("vpp# show memif"), "{text}");
}

/// Every message the engines send or read, and the connection messages:
/// vpp_papi packs non-zero, distinct values into a whole message (header
/// included); our header code and generated codec must produce the same
/// bytes from the same values and decode vpp_papi's bytes into them; then
/// vpp_papi must decode ours.
#[test]
fn codecs_match_vpp_papis_byte_for_byte_both_ways() {
    let defs = papi::definitions();
    let work = tempfile::tempdir().unwrap();
    let vectors_path = work.path().join("vectors.json");
    let names = [
        "sockclnt_create",
        "sockclnt_create_reply",
        "sockclnt_delete",
        "sockclnt_delete_reply",
        "control_ping",
        "control_ping_reply",
        "memif_socket_filename_add_del",
        "memif_socket_filename_add_del_reply",
        "memif_socket_filename_add_del_v2",
        "memif_socket_filename_add_del_v2_reply",
        "memif_create",
        "memif_create_reply",
        "memif_create_v2",
        "memif_create_v2_reply",
        "memif_delete",
        "memif_delete_reply",
        "memif_dump",
        "memif_details",
        "memif_socket_filename_dump",
        "memif_socket_filename_details",
        "create_vhost_user_if",
        "create_vhost_user_if_reply",
        "create_vhost_user_if_v2",
        "create_vhost_user_if_v2_reply",
        "delete_vhost_user_if",
        "delete_vhost_user_if_reply",
        "sw_interface_vhost_user_dump",
        "sw_interface_vhost_user_details",
        "sw_interface_set_flags",
        "sw_interface_set_flags_reply",
        "bridge_domain_add_del",
        "bridge_domain_add_del_reply",
        "bridge_domain_add_del_v2",
        "bridge_domain_add_del_v2_reply",
        "bridge_domain_dump",
        "bridge_domain_details",
        "sw_interface_set_l2_bridge",
        "sw_interface_set_l2_bridge_reply",
        "sw_interface_add_del_address",
        "sw_interface_add_del_address_reply",
        "sw_interface_dump",
        "sw_interface_details",
    ];
    let mut args = vec![
        papi::script("codec_vectors.py").into_os_string(),
        "make".into(),
        defs.path().into(),
        vectors_path.clone().into(),
    ];
    args.extend(names.iter().map(Into::into));
    papi::run(&args);
    let vectors: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&vectors_path).unwrap()).unwrap();
    assert_eq!(vectors.len(), names.len());

    let mut ours = Vec::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = match name {
            "sockclnt_create" => sockclnt_create(v),
            "sockclnt_create_reply" => sockclnt_create_reply(v),
            _ => cross_check(name, v),
        };
        let theirs = hex(v["hex"].as_str().unwrap());
        assert_eq!(
            bytes, theirs,
            "{name}: our bytes differ from vpp_papi's for the same values"
        );
        ours.push(json!({"name": name, "hex": to_hex(&bytes), "theirs": v["hex"]}));
    }
    let ours_path = work.path().join("ours.json");
    std::fs::write(&ours_path, serde_json::to_vec(&ours).unwrap()).unwrap();
    let out = papi::run(&[
        papi::script("codec_vectors.py").as_os_str(),
        "check".as_ref(),
        defs.path().as_os_str(),
        ours_path.as_os_str(),
    ]);
    assert!(
        out.contains(&format!(
            "decoded {} of our messages, 0 differ",
            names.len()
        )),
        "{out}"
    );
}

/// Dispatches a vector to its generated type.
fn cross_check(name: &str, v: &Value) -> Vec<u8> {
    macro_rules! by_name {
        ($($t:ty),* $(,)?) => {
            match name {
                $(n if n == <$t>::NAME => check::<$t>(v),)*
                other => panic!("no generated type listed for {other}"),
            }
        };
    }
    by_name!(
        SockclntDelete,
        SockclntDeleteReply,
        ControlPing,
        ControlPingReply,
        MemifSocketFilenameAddDel,
        MemifSocketFilenameAddDelReply,
        MemifSocketFilenameAddDelV2,
        MemifSocketFilenameAddDelV2Reply,
        MemifCreate,
        MemifCreateReply,
        MemifCreateV2,
        MemifCreateV2Reply,
        MemifDelete,
        MemifDeleteReply,
        MemifDump,
        MemifDetails,
        MemifSocketFilenameDump,
        MemifSocketFilenameDetails,
        CreateVhostUserIf,
        CreateVhostUserIfReply,
        CreateVhostUserIfV2,
        CreateVhostUserIfV2Reply,
        DeleteVhostUserIf,
        DeleteVhostUserIfReply,
        SwInterfaceVhostUserDump,
        SwInterfaceVhostUserDetails,
        SwInterfaceSetFlags,
        SwInterfaceSetFlagsReply,
        BridgeDomainAddDel,
        BridgeDomainAddDelReply,
        BridgeDomainAddDelV2,
        BridgeDomainAddDelV2Reply,
        BridgeDomainDump,
        BridgeDomainDetails,
        SwInterfaceSetL2Bridge,
        SwInterfaceSetL2BridgeReply,
        SwInterfaceAddDelAddress,
        SwInterfaceAddDelAddressReply,
        SwInterfaceDump,
        SwInterfaceDetails,
    )
}

/// Our whole message for vector `v`: the header as our transport writes
/// (a request) or reads (a reply) it, then the generated codec's fields.
fn check<M: Message + DeserializeOwned + PartialEq + Debug>(v: &Value) -> Vec<u8> {
    let name = M::NAME;
    let values: M = serde_json::from_value(v["rust"].clone())
        .unwrap_or_else(|e| panic!("{name}: vpp_papi's values do not fit our type: {e}"));
    let theirs = hex(v["hex"].as_str().unwrap());
    let header = &v["header"];
    let field = |f: &str| header[f].as_u64().unwrap();
    let layout: Vec<&str> = v["header_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let head = match layout.as_slice() {
        ["_vl_msg_id", "client_index", "context"] => vpp_api::request_header(
            field("_vl_msg_id") as u16,
            field("client_index") as u32,
            field("context") as u32,
        ),
        ["_vl_msg_id", "context"] => {
            let (id, context) = vpp_api::reply_header(&theirs).unwrap();
            assert_eq!(
                (u64::from(id), u64::from(context)),
                (field("_vl_msg_id"), field("context")),
                "{name}: our transport reads the reply header elsewhere"
            );
            theirs[..6].to_vec()
        }
        other => panic!("{name}: VPP's header {other:?} is not one our transport speaks"),
    };
    let body = &theirs[head.len().min(theirs.len())..];
    assert_eq!(
        M::decode(body).unwrap_or_else(|e| panic!("{name}: {e}")),
        values,
        "{name}: our codec decodes vpp_papi's bytes into other values"
    );
    let mut ours = head;
    ours.extend_from_slice(&values.encode());
    ours
}

/// `sockclnt_create`: no client_index (VPP's exception to the rule).
fn sockclnt_create(v: &Value) -> Vec<u8> {
    assert_eq!(v["header_fields"], json!(["_vl_msg_id", "context"]));
    assert_eq!(v["header"]["_vl_msg_id"], vpp_api::SOCKCLNT_CREATE_ID);
    vpp_api::encode_sockclnt_create(
        v["header"]["context"].as_u64().unwrap() as u32,
        v["fields"]["name"].as_str().unwrap(),
    )
}

/// `sockclnt_create_reply`: client_index before context (the other exception).
fn sockclnt_create_reply(v: &Value) -> Vec<u8> {
    assert_eq!(
        v["header_fields"],
        json!(["_vl_msg_id", "client_index", "context"])
    );
    let theirs = hex(v["hex"].as_str().unwrap());
    let reply = vpp_api::decode_sockclnt_create_reply(&theirs).unwrap();
    let f = &v["fields"];
    assert_eq!(u64::from(reply.context), v["header"]["context"]);
    assert_eq!(i64::from(reply.response), f["response"]);
    assert_eq!(u64::from(reply.index), f["index"]);
    let table: Vec<(u16, String)> = f["message_table"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap() as u16,
                e["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reply.message_table, table);
    // Our generated type for its fields (the double answers with it).
    assert_eq!(v["header"]["_vl_msg_id"], vpp_api::SOCKCLNT_CREATE_REPLY_ID);
    let mut ours = vpp_api::SOCKCLNT_CREATE_REPLY_ID.to_be_bytes().to_vec();
    for f in ["client_index", "context"] {
        ours.extend_from_slice(&(v["header"][f].as_u64().unwrap() as u32).to_be_bytes());
    }
    let values: SockclntCreateReply = serde_json::from_value(v["rust"].clone()).unwrap();
    assert_eq!(SockclntCreateReply::decode(&theirs[10..]).unwrap(), values);
    ours.extend_from_slice(&values.encode());
    ours
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
