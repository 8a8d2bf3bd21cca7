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
