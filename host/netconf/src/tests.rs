use super::*;
use serde_json::json;

fn parse(v: Value) -> Result<NetConf, CniError> {
    NetConf::parse(v.to_string().as_bytes())
}

fn tutorial() -> Value {
    json!({
        "cniVersion": "0.3.1", "type": "userspace", "name": "memif-network",
        "host": {"engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge",
                 "memif": {"role": "master", "mode": "ethernet"}, "bridge": {"bridgeName": "br4"}},
        "container": {"engine": "ovs-dpdk", "iftype": "memif", "netType": "interface",
                      "memif": {"role": "slave", "mode": "ethernet"}},
        "ipam": {"type": "host-local", "subnet": "192.168.210.0/24", "routes": [{"dst": "0.0.0.0/0"}]}
    })
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let mut at = v;
    let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for key in &keys[..keys.len() - 1] {
        at = at
            .as_object_mut()
            .unwrap()
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    at[keys[keys.len() - 1]] = value;
}

#[test]
fn tutorial_config_parses() {
    let c = parse(tutorial()).unwrap();
    assert_eq!(c.cni_version, Version::parse("0.3.1").unwrap());
    assert_eq!(c.host.iftype, IfType::Memif);
    assert_eq!(c.container.memif.role, "slave");
    assert_eq!(c.host.bridge.bridge_name.as_deref(), Some("br4"));
    assert_eq!(c.state_dir, DEFAULT_STATE_DIR);
    assert_eq!(c.host.ovs.db_socket, side::DEFAULT_OVS_DB_SOCKET);
    assert_eq!(c.host.vpp.api_socket, side::DEFAULT_VPP_API_SOCKET);
}

#[test]
fn container_section_defaults_follow_the_go_plugin() {
    let mut v = tutorial();
    v["container"] = json!({});
    v["host"]["memif"]["socketfile"] = json!("x.sock");
    let c = parse(v).unwrap();
    assert_eq!(c.container.engine, Engine::OvsDpdk);
    assert_eq!(c.container.iftype, IfType::Memif);
    assert_eq!(c.container.net_type, NetType::Interface);
    assert_eq!(c.container.memif.role, "slave");
    assert_eq!(c.container.memif.socketfile.as_deref(), Some("x.sock"));

    let mut v = tutorial();
    v["host"] = json!({"engine": "ovs-dpdk", "iftype": "vhostuser", "vhost": {"mode": "client"}});
    v["container"] = json!({});
    let c = parse(v).unwrap();
    assert_eq!(c.container.vhost.mode.as_deref(), Some("server"));
}

#[test]
fn runtime_config_keys_are_case_insensitive() {
    let mut v = tutorial();
    v["runtimeConfig"] = json!({"HostPort": 1, "CNIDeviceInfoFile": "/x"});
    let c = parse(v).unwrap();
    assert!(c.runtime_config.contains_key("hostport"));
    assert!(c.runtime_config.contains_key("cnideviceinfofile"));
}

#[test]
fn cni_versions_list_is_negotiated() {
    let mut v = tutorial();
    v.as_object_mut().unwrap().remove("cniVersion");
    v["cniVersions"] = json!(["0.4.0", "1.1.0"]);
    assert_eq!(parse(v).unwrap().cni_version, Version::V1_1_0);
}

/// libcni picks from `cniVersions` and writes its choice into
/// `cniVersion`: the choice is the call's version.
#[test]
fn the_runtimes_cni_version_wins_over_the_list() {
    let mut v = tutorial();
    v["cniVersion"] = json!("1.0.0");
    v["cniVersions"] = json!(["0.4.0", "1.0.0", "1.1.0"]);
    assert_eq!(parse(v).unwrap().cni_version, Version::V1_0_0);
}

#[test]
fn invalid_values_name_the_field() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/host/engine", json!("kernel"), "host.engine"),
        ("/host/iftype", json!("veth"), "host.iftype"),
        ("/host/memif/role", json!("boss"), "host.memif.role"),
        ("/host/memif/ringSize", json!(1000), "host.memif.ringSize"),
        ("/host/memif/ringSize", json!(32768), "host.memif.ringSize"),
        ("/host/memif/rxQueues", json!(0), "host.memif.rxQueues"),
        (
            "/host/memif/bufferSize",
            json!("2k"),
            "host.memif.bufferSize",
        ),
        (
            "/host/memif/secret",
            json!("s".repeat(24)),
            "host.memif.secret",
        ),
        (
            "/container/memif/secret",
            json!("two words"),
            "container.memif.secret",
        ),
        (
            "/host/memif/socketfile",
            json!("../x"),
            "host.memif.socketfile",
        ),
        ("/host/bridge/vlanId", json!(5000), "host.bridge.vlanId"),
        ("/host/bridge/bridgeId", json!("4"), "host.bridge.bridgeId"),
        ("/container/vhost/mode", json!(1), "container.vhost.mode"),
        ("/ipam/type", json!("../../bin/sh"), "ipam.type"),
        ("/logLevel", json!("loud"), "logLevel"),
        ("/sharedDir", json!("relative"), "sharedDir"),
        (
            "/host/vpp/apiSocket",
            json!("run/vpp/api.sock"),
            "host.vpp.apiSocket",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut v = tutorial();
        set(&mut v, pointer, value);
        let err = parse(v).unwrap_err();
        assert_eq!(err.code, 7, "{pointer}: {err}");
        assert!(err.msg.starts_with(field), "{pointer}: {}", err.msg);
    }
}

#[test]
fn broken_or_oversized_input_is_a_decoding_failure() {
    assert_eq!(NetConf::parse(b"{\"cniVersion\":").unwrap_err().code, 6);
    let big = vec![b' '; MAX_CONFIG_BYTES + 1];
    assert_eq!(NetConf::parse(&big).unwrap_err().code, 6);
}

#[test]
fn memif_tuning_is_copied_to_the_container_side() {
    let mut v = tutorial();
    v["host"]["memif"]["ringSize"] = json!(2048);
    v["host"]["memif"]["bufferSize"] = json!(4096);
    v["host"]["memif"]["rxQueues"] = json!(2);
    v["host"]["memif"]["secret"] = json!("s3cret");
    let c = parse(v).unwrap();
    assert_eq!(c.container.memif.ring_size, Some(2048));
    assert_eq!(c.container.memif.buffer_size, Some(4096));
    assert_eq!(c.container.memif.rx_queues, Some(2));
    assert_eq!(c.container.memif.tx_queues, None);
    assert_eq!(c.container.memif.secret.as_deref(), Some("s3cret"));
    assert_eq!(c.host.to_json()["memif"]["ringSize"], 2048);
}

#[test]
fn memif_queues_set_on_the_host_are_published_and_the_container_cannot_differ() {
    let c = parse(tutorial()).unwrap();
    assert_eq!(c.host.engine, Engine::OvsDpdk);
    assert_eq!(
        (c.host.memif.rx_queues, c.host.memif.tx_queues),
        (None, None)
    );
    assert!(
        c.container.to_go_json()["memif"].get("rxQueues").is_none(),
        "unset: not published"
    );
    let mut v = tutorial();
    v["host"]["memif"]["rxQueues"] = json!(2);
    v["host"]["memif"]["txQueues"] = json!(2);
    let c = parse(v).unwrap();
    let published = c.container.to_go_json();
    assert_eq!(
        (
            published["memif"]["rxQueues"].clone(),
            published["memif"]["txQueues"].clone()
        ),
        (json!(2), json!(2))
    );

    let mut v = tutorial();
    v["host"]["memif"]["rxQueues"] = json!(2);
    v["host"]["memif"]["txQueues"] = json!(2);
    v["container"]["memif"]["rxQueues"] = json!(1);
    let error = parse(v).unwrap_err();
    assert_eq!(error.code, 7);
    assert!(
        error.msg.contains("container.memif.rxQueues"),
        "{}",
        error.msg
    );

    let mut v = tutorial();
    v["host"]["engine"] = json!("vpp");
    v["container"]["engine"] = json!("vpp");
    let c = parse(v).unwrap();
    assert_eq!(
        (c.host.memif.rx_queues, c.container.memif.tx_queues),
        (None, None)
    );
    assert!(
        c.container.to_go_json()["memif"].get("rxQueues").is_none(),
        "unset: not published"
    );
}

#[test]
fn the_kubernetes_section_has_go_defaults_and_checks_its_values() {
    let c = parse(tutorial()).unwrap();
    assert_eq!(c.kubernetes, Kubernetes::default());
    assert_eq!(c.kubernetes.shared_dir_volume, "shared-dir");
    let mut v = tutorial();
    v["kubernetes"] = json!({"sharedDirVolume": "sockets", "kubeletDir": "/srv/kubelet", "socketMountDir": "/run/us"});
    let k = parse(v).unwrap().kubernetes;
    assert_eq!(
        (
            k.shared_dir_volume.as_str(),
            k.kubelet_dir.as_str(),
            k.socket_mount_dir.as_str()
        ),
        ("sockets", "/srv/kubelet", "/run/us")
    );
    for (bad, field) in [
        (
            json!({"sharedDirVolume": "../x"}),
            "kubernetes.sharedDirVolume",
        ),
        (
            json!({"kubeletDir": "var/lib/kubelet"}),
            "kubernetes.kubeletDir",
        ),
        (
            json!({"socketMountDir": "/run/../etc"}),
            "kubernetes.socketMountDir",
        ),
        (json!("yes"), "kubernetes"),
    ] {
        let mut v = tutorial();
        v["kubernetes"] = bad.clone();
        let e = parse(v).unwrap_err();
        assert_eq!(e.code, codes::INVALID_NETWORK_CONFIG, "{bad}");
        assert!(e.msg.contains(field), "{bad}: {}", e.msg);
    }
}

/// GC's list: absent is none (not a GC), an explicit null is an empty list
/// (the runtime keeps nothing), a list is read, anything else is error 7.
#[test]
fn valid_attachments_null_is_an_empty_list() {
    let mut v = tutorial();
    v["cniVersion"] = json!("1.1.0");
    assert_eq!(parse(v.clone()).unwrap().valid_attachments, None);
    v["cni.dev/valid-attachments"] = Value::Null;
    assert_eq!(parse(v.clone()).unwrap().valid_attachments, Some(vec![]));
    v["cni.dev/valid-attachments"] = json!([{"containerID": "c1", "ifname": "net1"}]);
    assert_eq!(
        parse(v.clone()).unwrap().valid_attachments,
        Some(vec![("c1".to_string(), "net1".to_string())])
    );
    v["cni.dev/valid-attachments"] = json!("c1");
    assert_eq!(parse(v).unwrap_err().code, codes::INVALID_NETWORK_CONFIG);
}

#[test]
fn a_del_config_that_no_longer_validates_still_locates_its_record() {
    let mut config = tutorial();
    set(&mut config, "/stateDir", json!("/var/lib/state"));
    set(&mut config, "/logFile", json!("/var/log/u.log"));
    set(&mut config, "/sharedDir", json!("/var/lib/shared"));
    set(&mut config, "/host/iftype", json!("bogus"));
    set(&mut config, "/cniVersion", json!("9.9.9"));
    assert!(parse(config.clone()).is_err());
    let conf = NetConf::locating_record(config.to_string().as_bytes()).unwrap();
    assert_eq!(conf.name, config["name"].as_str().unwrap());
    assert_eq!(conf.state_dir, "/var/lib/state");
    assert_eq!(conf.log_file.as_deref(), Some("/var/log/u.log"));
    assert!(
        conf.ipam.is_some(),
        "the IPAM section, for a release without a record"
    );
    assert_eq!(conf.shared_dir, None, "nothing else of the config is used");
    // A bad logFile is dropped, a bad stateDir or name is not guessed.
    set(&mut config, "/logFile", json!("relative.log"));
    let conf = NetConf::locating_record(config.to_string().as_bytes()).unwrap();
    assert_eq!(conf.log_file, None);
    set(&mut config, "/stateDir", json!("relative"));
    assert_eq!(
        NetConf::locating_record(config.to_string().as_bytes())
            .unwrap_err()
            .code,
        7
    );
}
