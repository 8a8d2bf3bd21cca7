//! The downward-API annotations file a container reads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = userspace_app::annotations::parse(text);
    }
});
