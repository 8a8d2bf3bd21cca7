//! ADD / CHECK / DEL / GC / STATUS on a real OVS-DPDK, as a runtime calls
//! the plugin.

use integration_tests::{Netns, Network, Ovs};
use serde_json::{json, Value};

fn ovs() -> &'static Ovs {
    Ovs::shared()
}

#[test]
fn memif_add_check_del_leaves_nothing() {
    let net = Network::memif(ovs());
    let ns = Netns::new();
    let result = net.add("memif0000000001", &ns).ok();

    let iface = &result["interfaces"][0];
    assert_eq!(iface["name"], "net1");
    assert_eq!(iface["sandbox"], ns.path());
    assert!(iface["mac"].as_str().is_some_and(|m| m.len() == 17));
    assert_eq!(result["ips"][0]["interface"], 0);
    assert!(result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .starts_with("10.77.0."));

    let port = "memif-memif0000000-net1";
    assert_eq!(net.ovs.ports(&net.bridge), vec![port]);
    assert_eq!(net.ovs.vsctl(&["get", "Interface", port, "type"]), "dpdk");
    let devargs = net
        .ovs
        .vsctl(&["get", "Interface", port, "options:dpdk-devargs"]);
    let socket = net.dir("shared/memif0000000/memif-memif0000000-net1.sock");
    assert!(
        devargs.contains(&format!("socket={}", socket.display())),
        "{devargs}"
    );
    assert!(
        devargs.contains("role=server") && devargs.contains("socket-abstract=no"),
        "{devargs}"
    );
    assert_eq!(net.ovs.vsctl(&["get", "Interface", port, "error"]), "[]");
    assert!(socket.exists(), "ovs-vswitchd created the memif socket");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660, "the socket is 0660");
    let dir_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(net.dir("shared/memif0000000"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(dir_mode & 0o777, 0o750, "the shared dir is 0750");
    assert_eq!(
        net.ovs
            .vsctl(&["get", "Bridge", &net.bridge, "datapath_type"]),
        "netdev"
    );

    // The Go plugin's container data.
    let data: Value = serde_json::from_slice(
        &std::fs::read(net.dir("shared/memif0000000/configData-memif0000000-net1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(data["containerId"], "memif0000000001");
    assert_eq!(data["ifName"], "net1");
    assert_eq!(data["name"], net.name);
    assert_eq!(data["config"]["memif"]["role"], "slave");
    assert_eq!(data["config"]["iftype"], "memif");
    assert_eq!(
        data["config"]["memif"]["socketfile"],
        "memif-memif0000000-net1.sock"
    );
    assert_eq!(
        data["ipResult"]["ips"][0]["address"],
        result["ips"][0]["address"]
    );

    net.check("memif0000000001", &ns, &result).ok();
    net.del("memif0000000001").ok();
    net.assert_nothing_left("memif0000000001");
    assert!(
        !net.ovs.bridge_exists(&net.bridge),
        "our bridge, now empty, is removed"
    );
}

#[test]
fn vhostuser_client_mode_gives_dpdkvhostuserclient_with_socket_in_shared_dir() {
    let net = Network::vhostuser(ovs(), Some("client"));
    let ns = Netns::new();
    let result = net.add("vhostc00000001", &ns).ok();
    let port = "vhostc000000-net1";
    assert_eq!(net.ovs.ports(&net.bridge), vec![port]);
    assert_eq!(
        net.ovs.vsctl(&["get", "Interface", port, "type"]),
        "dpdkvhostuserclient"
    );
    let socket = net.dir("shared/vhostc000000/vhostc000000-net1");
    assert_eq!(
        net.ovs
            .vsctl(&["get", "Interface", port, "options:vhost-server-path"]),
        format!("\"{}\"", socket.display())
    );
    let data: Value = serde_json::from_slice(
        &std::fs::read(net.dir("shared/vhostc000000/configData-vhostc000000-net1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        data["config"]["vhost"]["mode"], "server",
        "the container is the server"
    );
    net.check("vhostc00000001", &ns, &result).ok();
    net.del("vhostc00000001").ok();
    net.assert_nothing_left("vhostc00000001");
}

#[test]
fn vhostuser_server_mode_and_default_publish_ovs_socket_in_shared_dir() {
    for mode in [Some("server"), None] {
        let net = Network::vhostuser(ovs(), mode);
        let ns = Netns::new();
        let id = if mode.is_some() {
            "vhosts00000001"
        } else {
            "vhostd00000001"
        };
        let result = net.add(id, &ns).ok();
        let port = format!("{}-net1", &id[..12]);
        assert_eq!(
            net.ovs.vsctl(&["get", "Interface", &port, "type"]),
            "dpdkvhostuser",
            "{mode:?}"
        );
        let socket = net.dir(&format!("shared/{}/{port}", &id[..12]));
        let meta = std::fs::symlink_metadata(&socket).expect("OVS's socket is in the shared dir");
        assert!(
            std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()),
            "{mode:?}"
        );
        net.check(id, &ns, &result).ok();
        net.del(id).ok();
        net.assert_nothing_left(id);
        assert!(!socket.exists());
    }
}

#[test]
fn every_spec_version_gets_its_result_shape() {
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let mut net = Network::memif(ovs());
        net.config["cniVersion"] = json!(version);
        let ns = Netns::new();
        let result = net.add("version000001", &ns).ok();
        assert_eq!(result["cniVersion"], version);
        let ip = &result["ips"][0];
        if version.starts_with("0.") {
            assert_eq!(ip["version"], "4", "{version}: {result}");
        } else {
            assert!(ip.get("version").is_none(), "{version}: {result}");
        }
        let socket_path = &result["interfaces"][0]["socketPath"];
        if version == "1.1.0" {
            assert!(
                socket_path
                    .as_str()
                    .unwrap()
                    .ends_with("memif-version00000-net1.sock"),
                "{result}"
            );
        } else {
            assert!(socket_path.is_null(), "{version}: {result}");
        }
        if version != "0.3.0" && version != "0.3.1" {
            net.check("version000001", &ns, &result).ok();
        }
        net.del("version000001").ok();
        net.assert_nothing_left("version000001");
    }
}

#[test]
fn check_is_refused_before_0_4_0() {
    let mut net = Network::memif(ovs());
    net.config["cniVersion"] = json!("0.3.1");
    let ns = Netns::new();
    net.check("nocheck0000001", &ns, &json!({"cniVersion": "0.3.1"}))
        .err(1);
}

#[test]
fn two_containers_share_one_bridge_removed_after_the_last_del() {
    let net = Network::memif(ovs());
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let a = net.add("twoa0000000001", &ns1).ok();
    let b = net.add("twob0000000001", &ns2).ok();
    assert_ne!(a["ips"][0]["address"], b["ips"][0]["address"]);
    assert_ne!(a["interfaces"][0]["mac"], b["interfaces"][0]["mac"]);
    let mut ports = net.ovs.ports(&net.bridge);
    ports.sort();
    assert_eq!(
        ports,
        vec!["memif-twoa00000000-net1", "memif-twob00000000-net1"]
    );

    net.del("twoa0000000001").ok();
    net.assert_nothing_left("twoa0000000001");
    assert_eq!(net.ovs.ports(&net.bridge), vec!["memif-twob00000000-net1"]);
    net.del("twob0000000001").ok();
    net.assert_nothing_left("twob0000000001");
    assert!(!net.ovs.bridge_exists(&net.bridge));
}

#[test]
fn a_bridge_we_did_not_create_is_never_removed() {
    let net = Network::memif(ovs());
    net.ovs.add_netdev_bridge(&net.bridge);
    let ns = Netns::new();
    net.add("foreign0000001", &ns).ok();
    net.del("foreign0000001").ok();
    net.assert_nothing_left("foreign0000001");
    assert!(
        net.ovs.bridge_exists(&net.bridge),
        "the operator's bridge stays"
    );
    net.ovs.vsctl(&["del-br", &net.bridge]);
}

#[test]
fn vlan_id_and_mtu_are_set_on_the_port() {
    let mut net = Network::vhostuser(ovs(), Some("client"));
    net.config["host"]["bridge"]["vlanId"] = json!(100);
    net.config["host"]["mtu"] = json!(2000);
    let ns = Netns::new();
    let result = net.add("vlan0000000001", &ns).ok();
    assert_eq!(
        net.ovs.vsctl(&["get", "Port", "vlan00000000-net1", "tag"]),
        "100"
    );
    assert_eq!(
        net.ovs
            .vsctl(&["get", "Interface", "vlan00000000-net1", "mtu_request"]),
        "2000"
    );
    net.check("vlan0000000001", &ns, &result).ok();

    // CHECK notices a changed tag.
    net.ovs
        .vsctl(&["set", "Port", "vlan00000000-net1", "tag=200"]);
    net.check("vlan0000000001", &ns, &result).err(111);
    net.del("vlan0000000001").ok();
    net.assert_nothing_left("vlan0000000001");
}

#[test]
fn del_twice_and_del_without_add_succeed() {
    let net = Network::memif(ovs());
    let ns = Netns::new();
    net.add("twice000000001", &ns).ok();
    assert_eq!(
        net.del("twice000000001").ok(),
        Value::Null,
        "DEL prints nothing"
    );
    net.del("twice000000001").ok();
    net.del("neveradded0001").ok();
    net.assert_nothing_left("twice000000001");
}

#[test]
fn retried_add_returns_the_same_result_and_creates_nothing_more() {
    let net = Network::memif(ovs());
    let ns = Netns::new();
    let first = net.add("retry000000001", &ns).ok();
    let second = net.add("retry000000001", &ns).ok();
    assert_eq!(first, second);
    assert_eq!(net.ovs.ports(&net.bridge).len(), 1);
    net.del("retry000000001").ok();
    net.assert_nothing_left("retry000000001");
}

#[test]
fn check_fails_when_the_port_is_gone() {
    let net = Network::memif(ovs());
    let ns = Netns::new();
    let result = net.add("gone0000000001", &ns).ok();
    net.ovs
        .vsctl(&["del-port", &net.bridge, "memif-gone00000000-net1"]);
    let err = net.check("gone0000000001", &ns, &result).err(111);
    assert!(
        err["msg"].as_str().unwrap().contains("does not exist"),
        "{err}"
    );
    net.del("gone0000000001").ok();
    net.assert_nothing_left("gone0000000001");
}

#[test]
fn check_of_unknown_container_is_error_3() {
    let net = Network::memif(ovs());
    let ns = Netns::new();
    net.check(
        "unknown0000001",
        &ns,
        &json!({"cniVersion": "1.0.0", "interfaces": [{"name": "net1"}]}),
    )
    .err(3);
}

#[test]
fn gc_removes_attachments_the_runtime_no_longer_knows() {
    let mut net = Network::memif(ovs());
    net.config["cniVersion"] = json!("1.1.0");
    let (ns1, ns2) = (Netns::new(), Netns::new());
    net.add("gckeep00000001", &ns1).ok();
    net.add("gcdrop00000001", &ns2).ok();

    let mut gc = net.config.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "gckeep00000001", "ifname": "net1"}]);
    integration_tests::run_plugin(
        &[
            ("CNI_COMMAND", "GC"),
            ("CNI_PATH", integration_tests::CNI_PATH),
        ],
        gc.to_string().as_bytes(),
    )
    .ok();
    net.assert_nothing_left("gcdrop00000001");
    assert_eq!(net.ovs.ports(&net.bridge), vec!["memif-gckeep000000-net1"]);

    // The legacy key works too.
    let mut gc = net.config.clone();
    gc["cni.dev/attachments"] = json!([]);
    integration_tests::run_plugin(
        &[
            ("CNI_COMMAND", "GC"),
            ("CNI_PATH", integration_tests::CNI_PATH),
        ],
        gc.to_string().as_bytes(),
    )
    .ok();
    net.assert_nothing_left("gckeep00000001");
    assert!(!net.ovs.bridge_exists(&net.bridge));
}

#[test]
fn status_reports_ovsdb_up_and_down() {
    let mut net = Network::memif(ovs());
    net.config["cniVersion"] = json!("1.1.0");
    let status = |net: &Network| {
        integration_tests::run_plugin(
            &[
                ("CNI_COMMAND", "STATUS"),
                ("CNI_PATH", integration_tests::CNI_PATH),
            ],
            &net.stdin(),
        )
    };
    status(&net).ok();
    net.config["host"]["ovs"]["dbSocket"] =
        json!(format!("unix:{}/no-such.sock", net.dirs.path().display()));
    let err = status(&net).err(50);
    assert!(
        err["msg"].as_str().unwrap().contains("unreachable"),
        "{err}"
    );
}

#[test]
fn status_and_gc_need_1_1_0() {
    let net = Network::memif(ovs());
    for command in ["STATUS", "GC"] {
        integration_tests::run_plugin(
            &[
                ("CNI_COMMAND", command),
                ("CNI_PATH", integration_tests::CNI_PATH),
            ],
            &net.stdin(),
        )
        .err(1);
    }
}

#[test]
fn version_lists_every_supported_version() {
    let out =
        integration_tests::run_plugin(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"0.4.0"}"#)
            .ok();
    assert_eq!(out["cniVersion"], "0.4.0");
    assert_eq!(
        out["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    // The spec: cniVersion is the value specified on input, supported or
    // not (the runtime reads supportedVersions to decide).
    let out =
        integration_tests::run_plugin(&[("CNI_COMMAND", "VERSION")], br#"{"cniVersion":"0.2.0"}"#)
            .ok();
    assert_eq!(out["cniVersion"], "0.2.0");
}

#[test]
fn prev_result_is_chained() {
    let mut net = Network::memif(ovs());
    net.config["prevResult"] = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": "/x"}],
        "ips": [{"address": "172.16.0.5/16", "interface": 0}]
    });
    let ns = Netns::new();
    let result = net.add("chain000000001", &ns).ok();
    assert_eq!(result["interfaces"][0]["name"], "eth0");
    assert_eq!(result["interfaces"][1]["name"], "net1");
    assert_eq!(result["ips"][0]["address"], "172.16.0.5/16");
    assert_eq!(result["ips"][1]["interface"], 1);
    net.del("chain000000001").ok();
    net.assert_nothing_left("chain000000001");
}

#[test]
fn debug_logs_never_reach_stdout() {
    let mut net = Network::memif(Ovs::shared());
    net.config["logLevel"] = json!("debug");
    let ns = Netns::new();
    let run = net.add("debuglog00001", &ns);
    let result = run.ok();
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "stdout holds only the result"
    );
    assert!(run.stderr.contains("DEBUG"), "debug logs go to stderr");
    assert!(result["interfaces"].is_array());
    net.del("debuglog00001").ok();
    net.assert_nothing_left("debuglog00001");
}

#[test]
fn vhost_group_owns_the_shared_dir_and_the_socket() {
    use std::os::unix::fs::MetadataExt;
    let mut net = Network::vhostuser(ovs(), Some("server"));
    net.config["host"]["vhost"]["group"] = json!("daemon");
    let ns = Netns::new();
    net.add("vgroup00000001", &ns).ok();
    let dir = net.dir("shared/vgroup000000");
    let socket = dir.join("vgroup000000-net1");
    let (dir_meta, socket_meta) = (
        std::fs::metadata(&dir).unwrap(),
        std::fs::symlink_metadata(&socket).unwrap(),
    );
    assert_eq!(dir_meta.gid(), 1, "daemon's gid");
    assert_eq!(socket_meta.gid(), 1);
    assert_eq!(socket_meta.mode() & 0o777, 0o660);
    net.del("vgroup00000001").ok();
    net.assert_nothing_left("vgroup00000001");
}

/// `vhost.group` is the memif socket's group too: without it an
/// unprivileged pod user cannot connect (the Go plugin applied it to
/// vhost-user only; a real kubelet's pod showed what that costs).
#[test]
fn vhost_group_owns_the_memif_socket_too() {
    use std::os::unix::fs::MetadataExt;
    let mut net = Network::memif(ovs());
    net.config["host"]["vhost"] = json!({"group": "daemon"});
    let ns = Netns::new();
    net.add("mgroup00000001", &ns).ok();
    let dir = net.dir("shared/mgroup000000");
    let socket = dir.join("memif-mgroup000000-net1.sock");
    let socket_meta = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(std::fs::metadata(&dir).unwrap().gid(), 1, "daemon's gid");
    assert_eq!((socket_meta.gid(), socket_meta.mode() & 0o777), (1, 0o660));
    net.del("mgroup00000001").ok();
    net.assert_nothing_left("mgroup00000001");
}

#[test]
fn memif_ring_buffer_and_secret_reach_dpdk() {
    let mut net = Network::memif(ovs());
    let ns = Netns::new();
    net.config["host"]["memif"]["rxQueues"] = json!(2);
    net.config["host"]["memif"]["txQueues"] = json!(3);
    let err = net.add("tuned000000001", &ns).err(7);
    assert!(
        err["msg"].as_str().unwrap().contains("host.memif.rxQueues"),
        "{err}"
    );
    net.assert_nothing_left("tuned000000001");

    net.config["host"]["memif"] = json!({
        "role": "master", "ringSize": 2048, "bufferSize": 4096, "secret": "s3cret",
        "rxQueues": 2, "txQueues": 2
    });
    let result = net.add("tuned000000001", &ns).ok();
    let port = "memif-tuned0000000-net1";
    let devargs = net
        .ovs
        .vsctl(&["get", "Interface", port, "options:dpdk-devargs"]);
    assert!(
        devargs.contains(",rsize=11,bsize=4096,secret=s3cret"),
        "{devargs}"
    );
    // ovs-vswitchd (DPDK's net_memif) accepted them.
    assert_eq!(net.ovs.vsctl(&["get", "Interface", port, "error"]), "[]");
    // The port's queues and the container's data agree: two pairs (OVS's
    // main thread's and its PMD thread's), what a DPDK app needs.
    let data: Value = serde_json::from_slice(
        &std::fs::read(net.dir("shared/tuned0000000/configData-tuned0000000-net1.json")).unwrap(),
    )
    .unwrap();
    let options = net.ovs.vsctl(&["get", "Interface", port, "options"]);
    assert!(options.contains("n_rxq=\"2\""), "{options}");
    assert_eq!(data["config"]["memif"]["rxQueues"], 2, "{data}");
    assert_eq!(data["config"]["memif"]["txQueues"], 2, "{data}");
    net.check("tuned000000001", &ns, &result).ok();
    net.del("tuned000000001").ok();
    net.assert_nothing_left("tuned000000001");
}

/// The secret `devargs` of a memif port, if it has one.
fn memif_secret(net: &Network, port: &str) -> Option<String> {
    let devargs = net
        .ovs
        .vsctl(&["get", "Interface", port, "options:dpdk-devargs"]);
    devargs
        .trim_matches('"')
        .split(',')
        .find_map(|kv| kv.strip_prefix("secret="))
        .map(str::to_string)
}

/// Each memif attachment gets a random secret of its own, in OVS's
/// devargs and in this container's data only; OVS-DPDK refuses a client
/// with another secret or none, and takes one with the right one. A
/// config may ask for none with "".
#[test]
fn a_memif_attachment_has_its_own_secret_and_ovs_refuses_any_other() {
    let mut net = Network::memif(ovs());
    let ns = Netns::new();
    let ids = ["secretA000001", "secretB000001"];
    for id in ids {
        net.add(id, &ns).ok();
    }
    let secrets: Vec<String> = ids
        .iter()
        .map(|id| memif_secret(&net, &format!("memif-{}-net1", &id[..12])).expect("a secret"))
        .collect();
    assert_ne!(secrets[0], secrets[1], "one secret per attachment");
    for (id, secret) in ids.iter().zip(&secrets) {
        assert!(secret.len() == 16 && secret.bytes().all(|b| b.is_ascii_hexdigit()));
        let cid12 = &id[..12];
        let data: Value = serde_json::from_slice(
            &std::fs::read(net.dir(&format!("shared/{cid12}/configData-{cid12}-net1.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(data["config"]["memif"]["secret"], secret.as_str());
    }
    let socket = net.dir("shared/secretA00000/memif-secretA00000-net1.sock");
    let connect = |secret: &str| {
        let mut cfg = memif::ClientConfig::new(&socket);
        cfg.secret = secret.to_string();
        memif::Client::connect(&cfg)
    };
    for wrong in [secrets[1].as_str(), "", "guess"] {
        assert!(connect(wrong).is_err(), "OVS took the secret {wrong:?}");
    }
    let conn = connect(&secrets[0]).expect("OVS takes the right secret");
    drop(conn);
    for id in ids {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }

    net.config["host"]["memif"]["secret"] = json!("");
    net.add("nosecret00001", &ns).ok();
    assert_eq!(memif_secret(&net, "memif-nosecret0000-net1"), None);
    net.del("nosecret00001").ok();
}

#[test]
fn multus_gets_the_npwg_device_info_and_del_removes_it() {
    for (mut net, expected) in [
        (
            Network::memif(ovs()),
            json!({"type": "memif", "memif": {"role": "slave", "mode": "ethernet"}}),
        ),
        (
            Network::vhostuser(ovs(), Some("server")),
            json!({"type": "vhost-user", "vhost-user": {"mode": "client"}}),
        ),
    ] {
        // Multus's key, capitalised as it and containerd send it, and its
        // file name (`<network>-<container ID>_<ifname>`); the directory
        // does not exist yet.
        let file = net.dir("devinfo/cni/attachment-1-devinfo0000001_net1");
        net.config["runtimeConfig"] = json!({"CNIDeviceInfoFile": file});
        net.config["cniVersion"] = json!("1.1.0");
        let id = "devinfo0000001";
        let result = net.add(id, &Netns::new()).ok();
        let info: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let kind = expected["type"].as_str().unwrap();
        assert_eq!(info["type"], kind);
        assert_eq!(info["version"], "1.1.0");
        for (key, value) in expected[kind].as_object().unwrap() {
            assert_eq!(&info[kind][key], value, "{info}");
        }
        // The path in the container: the socket file in the mapped dir
        // (no pod here: the Go plugin's default, /var/lib/cni/usrspcni),
        // not the host's path the result carries.
        let host_path = result["interfaces"][0]["socketPath"].as_str().unwrap();
        let socket_file = host_path.rsplit('/').next().unwrap();
        assert_eq!(
            info[kind]["path"],
            format!("/var/lib/cni/usrspcni/{socket_file}")
        );
        net.del(id).ok();
        assert!(!file.exists(), "DEL removes the device info file");
        net.assert_nothing_left(id);
    }
}

#[test]
fn a_relative_device_info_path_is_refused() {
    let mut net = Network::memif(ovs());
    net.config["runtimeConfig"] = json!({"cniDeviceInfoFile": "devinfo/x"});
    let err = net.add("devinfo0000002", &Netns::new()).err(7);
    assert!(
        err["msg"].as_str().unwrap().contains("CNIDeviceInfoFile"),
        "{err}"
    );
    net.assert_nothing_left("devinfo0000002");
}

/// containerd (1.6, Debian's) sends runtimeConfig with Go-style
/// capitalised keys, inside lists too; the plugin takes it as it is.
#[test]
fn containerd_runtime_config_is_accepted() {
    let mut net = Network::memif(ovs());
    let file = net.dir("devinfo/net-containerd001_net1");
    net.config["runtimeConfig"] = json!({
        "portMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}],
        "Bandwidth": {"IngressRate": 0, "EgressRate": 0},
        "CNIDeviceInfoFile": file,
    });
    let id = "containerd001";
    net.add(id, &Netns::new()).ok();
    assert!(
        file.exists(),
        "the capitalised CNIDeviceInfoFile was honoured"
    );
    net.del(id).ok();
    net.del(id).ok();
    net.assert_nothing_left(id);
}
