//! Replies and dump details as a VPP would send them: the transport's
//! decoders of the connect reply and of every reply's header, and the
//! SDK's generated decoders for what the VPP engine reads. Whatever decodes encodes, and
//! encoding is stable: a decoded message, encoded and decoded once more,
//! stays the same (text that did not fit is cut once, at a character).
#![no_main]
use userspace_cni_sdk::vpp::{self, Message};

fn round_trip<M: Message + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(message) = M::decode(data) {
        let once = M::decode(&message.encode()).expect("an encoded message decodes");
        let twice = M::decode(&once.encode()).expect("an encoded message decodes");
        assert_eq!(once, twice);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = vpp_api::decode_sockclnt_create_reply(data) {
        assert!(reply.message_table.len() <= usize::from(u16::MAX));
    }
    let _ = vpp_api::reply_header(data);
    round_trip::<vpp::MemifDetails>(data);
    round_trip::<vpp::MemifSocketFilenameDetails>(data);
    round_trip::<vpp::SwInterfaceDetails>(data);
    round_trip::<vpp::SwInterfaceVhostUserDetails>(data);
    round_trip::<vpp::BridgeDomainDetails>(data);
    round_trip::<vpp::MemifCreateV2Reply>(data);
    round_trip::<vpp::MemifSocketFilenameAddDelV2Reply>(data);
    round_trip::<vpp::CreateVhostUserIfV2Reply>(data);
});
