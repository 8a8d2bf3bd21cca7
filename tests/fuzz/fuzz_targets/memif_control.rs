//! memif control messages from a peer: decoded or refused; what decodes
//! encodes, and encoding is stable (see vpp_messages).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(message) = memif::Message::decode(data) {
        let once = memif::Message::decode(&message.encode()).expect("an encoded message decodes");
        let twice = memif::Message::decode(&once.encode()).expect("an encoded message decodes");
        assert_eq!(once, twice);
    }
});
