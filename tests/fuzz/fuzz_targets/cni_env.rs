//! The CNI environment: NUL-separated values for CNI_COMMAND,
//! CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH (a
//! missing field is an unset variable).
#![no_main]
const VARS: [&str; 6] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\0').collect();
    let _ = cni_protocol::Environment::from_vars(|name| {
        let at = VARS.iter().position(|v| *v == name)?;
        values.get(at).map(|v| v.to_string())
    });
    let _ = cni_protocol::CniArgs::parse(&text);
});
