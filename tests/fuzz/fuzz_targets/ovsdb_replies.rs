//! What ovsdb-server sends: a stream of JSON-RPC messages read as the
//! client reads transact replies and monitor updates.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ovsdb_client::fuzz_replies(data);
});
