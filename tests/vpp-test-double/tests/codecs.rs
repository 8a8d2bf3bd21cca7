//! Every message the VPP engine sends or reads, encoded by the SDK's
//! generated codecs, has the size and round trip the JSON definitions say.

use userspace_cni_sdk::vpp::*;
use vpp_test_double::definition_size;

fn check<M: Message + Default + PartialEq + std::fmt::Debug>() {
    let bytes = M::default().encode();
    assert_eq!(bytes.len(), definition_size(M::NAME), "{}", M::NAME);
    assert_eq!(M::decode(&bytes).unwrap(), M::default(), "{}", M::NAME);
}

#[test]
fn engine_messages_match_the_definitions() {
    check::<ControlPing>();
    check::<ControlPingReply>();
    check::<MemifSocketFilenameDump>();
    check::<MemifSocketFilenameDetails>();
    check::<MemifSocketFilenameAddDel>();
    check::<MemifSocketFilenameAddDelReply>();
    check::<MemifSocketFilenameAddDelV2>();
    check::<MemifSocketFilenameAddDelV2Reply>();
    check::<MemifCreate>();
    check::<MemifCreateReply>();
    check::<MemifCreateV2>();
    check::<MemifCreateV2Reply>();
    check::<MemifDelete>();
    check::<MemifDeleteReply>();
    check::<MemifDump>();
    check::<MemifDetails>();
    check::<SwInterfaceSetFlags>();
    check::<SwInterfaceSetFlagsReply>();
    check::<BridgeDomainDump>();
    check::<BridgeDomainDetails>();
    check::<BridgeDomainAddDel>();
    check::<BridgeDomainAddDelReply>();
    check::<BridgeDomainAddDelV2>();
    check::<BridgeDomainAddDelV2Reply>();
    check::<SwInterfaceSetL2Bridge>();
    check::<SwInterfaceSetL2BridgeReply>();
    check::<SwInterfaceAddDelAddress>();
    check::<SwInterfaceAddDelAddressReply>();
    check::<CreateVhostUserIf>();
    check::<CreateVhostUserIfReply>();
    check::<CreateVhostUserIfV2>();
    check::<CreateVhostUserIfV2Reply>();
    check::<DeleteVhostUserIf>();
    check::<DeleteVhostUserIfReply>();
    check::<SwInterfaceVhostUserDump>();
    check::<SwInterfaceVhostUserDetails>();
}

/// A reply or details message cut anywhere is an error, never a panic or
/// a short read taken for zeros.
fn every_cut_is_refused<M: Message>(m: M) {
    let bytes = m.encode();
    for cut in 0..bytes.len() {
        assert!(
            M::decode(&bytes[..cut]).is_err(),
            "{} cut to {cut} of {} bytes decoded",
            M::NAME,
            bytes.len()
        );
    }
}

/// Every reply and details message the VPP engine reads.
#[test]
fn every_truncation_of_every_reply_the_engine_reads_is_refused() {
    every_cut_is_refused(ControlPingReply::default());
    every_cut_is_refused(MemifSocketFilenameDetails::default());
    every_cut_is_refused(MemifSocketFilenameAddDelReply::default());
    every_cut_is_refused(MemifSocketFilenameAddDelV2Reply::default());
    every_cut_is_refused(MemifCreateReply::default());
    every_cut_is_refused(MemifCreateV2Reply::default());
    every_cut_is_refused(MemifDeleteReply::default());
    every_cut_is_refused(MemifDetails::default());
    every_cut_is_refused(SwInterfaceSetFlagsReply::default());
    every_cut_is_refused(BridgeDomainAddDelReply::default());
    every_cut_is_refused(BridgeDomainAddDelV2Reply::default());
    every_cut_is_refused(BridgeDomainDetails {
        sw_if_details: vec![BridgeDomainSwIf::default(); 2],
        ..Default::default()
    });
    every_cut_is_refused(SwInterfaceSetL2BridgeReply::default());
    every_cut_is_refused(SwInterfaceAddDelAddressReply::default());
    every_cut_is_refused(CreateVhostUserIfReply::default());
    every_cut_is_refused(CreateVhostUserIfV2Reply::default());
    every_cut_is_refused(DeleteVhostUserIfReply::default());
    every_cut_is_refused(SwInterfaceVhostUserDetails::default());
}
