//! Replies and dump details as a VPP would send them: the SDK's generated
//! decoders for what the VPP engine reads. Whatever decodes encodes, and
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
    round_trip::<vpp::MemifDetails>(data);
    round_trip::<vpp::MemifSocketFilenameDetails>(data);
    round_trip::<vpp::SwInterfaceDetails>(data);
    round_trip::<vpp::SwInterfaceVhostUserDetails>(data);
    round_trip::<vpp::BridgeDomainDetails>(data);
    round_trip::<vpp::MemifCreateV2Reply>(data);
    round_trip::<vpp::MemifSocketFilenameAddDelV2Reply>(data);
    round_trip::<vpp::CreateVhostUserIfV2Reply>(data);
});
