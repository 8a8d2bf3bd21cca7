//! The network config from stdin: any bytes are a NetConf or a CNI error.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = netconf::peek_version(data);
    if let Ok(conf) = netconf::NetConf::parse(data) {
        let _ = conf.host.to_json();
        let _ = conf.container.to_go_json();
        let _ = conf.ipam_types();
    }
});
