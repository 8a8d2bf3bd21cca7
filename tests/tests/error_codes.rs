//! One error vocabulary: the codes a component returns through the SDK
//! and the codes the host returns are the same names for the same values.

#[test]
fn the_sdk_and_the_host_name_every_error_code_alike() {
    assert_eq!(
        userspace_cni_sdk::codes::ALL,
        cni_protocol::codes::ALL,
        "sdk/src/lib.rs and host/cni-protocol/src/error.rs disagree"
    );
    let mut values: Vec<u32> = cni_protocol::codes::ALL.iter().map(|(_, v)| *v).collect();
    values.dedup();
    assert_eq!(
        values.len(),
        cni_protocol::codes::ALL.len(),
        "a value named twice"
    );
}
