//! CNI 1.1 to the letter, where runtimes and operators notice: DEL goes
//! by the attachment record when the config no longer validates, and a
//! `prevResult` passes through losslessly (or is error 6 when it does not
//! decode). Against the real private OVS-DPDK and host-local.

use std::process::Command;

use integration_tests::{Netns, Network, Ovs, CNI_PATH};
use serde_json::{json, Value};
use vpp_test_double::{Options, VppDouble};

/// ADD with a good config; the NAD is then edited so that it no longer
/// validates (an unknown iftype, a cniVersion from the future, and a log
/// file the node policy does not allow): DEL still undoes everything the
/// record holds (and writes no log there), and a second DEL (no record)
/// still succeeds. A config whose stateDir is unusable cannot locate a
/// record: error 7, naming the field.
#[test]
fn del_goes_by_the_record_when_the_config_no_longer_validates() {
    let mut net = Network::memif(Ovs::shared());
    net.own_policy(json!({"logDirs": [net.dir("logs")]}));
    let ns = Netns::new();
    let id = "delrecord0001";
    net.add(id, &ns).ok();

    let mut edited = net.config.clone();
    edited["host"]["iftype"] = json!("bogus");
    edited["cniVersion"] = json!("9.9.9");
    // A log file the policy does not allow is dropped, not written.
    let outside = net.dir("elsewhere.log");
    edited["logFile"] = json!(outside);
    let stdin = edited.to_string().into_bytes();
    net.call("ADD", "delrecord0002", "net1", &ns.path(), &stdin)
        .err(1);
    net.call("DEL", id, "net1", "", &stdin).ok();
    net.assert_nothing_left(id);
    assert!(
        !outside.exists(),
        "a log where the policy does not allow one"
    );
    net.call("DEL", id, "net1", "", &stdin).ok();

    edited["stateDir"] = json!("relative/state");
    let err = net
        .call("DEL", id, "net1", "", edited.to_string().as_bytes())
        .err(1);
    assert!(err["msg"].as_str().unwrap().contains("cniVersion"), "{err}");
    edited["cniVersion"] = json!("1.0.0");
    edited["host"]["iftype"] = json!("memif");
    let err = net
        .call("DEL", id, "net1", "", edited.to_string().as_bytes())
        .err(7);
    assert!(err.to_string().contains("stateDir"), "{err}");
}

/// A prevResult with keys the plugin does not model (1.1's `pciID` and
/// `socketPath`, a vendor's key, a top-level key from a newer spec) comes
/// back in the ADD result unchanged, next to the plugin's interface; one
/// that does not decode is error 6 and changes nothing.
#[test]
fn prev_result_keys_not_modelled_survive_and_garbage_is_error_6() {
    let mut net = Network::memif(Ovs::shared());
    net.config["cniVersion"] = json!("1.1.0");
    let prev = json!({
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": "/x",
                        "pciID": "0000:00:05.0", "socketPath": "/run/x.sock",
                        "vendor.example/queue": 3}],
        "ips": [{"address": "172.16.0.5/16", "interface": 0}],
        "dns": {"nameservers": ["10.0.0.1"]},
        "vendor.example/top": {"kept": true}
    });
    net.config["prevResult"] = prev.clone();
    let ns = Netns::new();
    let id = "prevkeys00001";
    let result = net.add(id, &ns).ok();
    assert_eq!(result["interfaces"][0], prev["interfaces"][0]);
    assert_eq!(result["vendor.example/top"], prev["vendor.example/top"]);
    assert_eq!(result["dns"], prev["dns"]);
    assert_eq!(result["interfaces"][1]["name"], "net1");
    net.del(id).ok();
    net.assert_nothing_left(id);

    net.config["prevResult"] = json!({"interfaces": "eth0"});
    let err = net.add(id, &ns).err(6);
    assert!(err["msg"].as_str().unwrap().contains("prevResult"), "{err}");
    net.assert_nothing_left(id);
}

/// A config in the shape of one of the Go plugin's example NADs (its
/// `examples/` and `ci/` trees), adapted only where this machine differs:
/// paths into the test's dirs, the vSwitch sockets of the test's OVS-DPDK
/// or VPP double.
struct GoExample {
    /// Where its shape comes from.
    source: &'static str,
    config: Value,
}

fn go_examples() -> Vec<GoExample> {
    let vpp_ipam = json!({"type": "host-local", "subnet": "10.56.217.0/24",
        "rangeStart": "10.56.217.131", "rangeEnd": "10.56.217.190",
        "routes": [{"dst": "0.0.0.0/0"}], "gateway": "10.56.217.1"});
    let vpp = |container_role: &str, bridge: &str| {
        json!({"cniVersion": "0.3.1", "type": "userspace", "name": "userspace-vpp-net-1",
            "logFile": "LOG", "logLevel": "debug",
            "host": {"engine": "vpp", "iftype": "memif", "netType": "bridge",
                     "memif": {"role": "master", "mode": "ethernet"}, "bridge": {"bridgeName": bridge}},
            "container": {"engine": "vpp", "iftype": "memif", "netType": "interface",
                          "memif": {"role": container_role, "mode": "ethernet"}},
            "ipam": vpp_ipam})
    };
    let ovs = |host_mode: &str, container_mode: &str, bridge: &str| {
        json!({"cniVersion": "0.3.1", "type": "userspace", "name": "userspace-ovs-net-1",
            "logFile": "LOG", "logLevel": "debug",
            "host": {"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "bridge",
                     "vhost": {"mode": host_mode}, "bridge": {"bridgeName": bridge}},
            "container": {"engine": "ovs-dpdk", "iftype": "vhostuser", "netType": "interface",
                          "vhost": {"mode": container_mode}},
            "ipam": vpp_ipam})
    };
    let mut shared_dir = vpp("slave", "4");
    shared_dir["sharedDir"] = json!("SHARED/");
    let mut readme_spelling = vpp("slave", "4");
    let object = readme_spelling.as_object_mut().unwrap();
    let log = object.remove("logFile").unwrap();
    object.insert("LogFile".into(), log);
    let level = object.remove("logLevel").unwrap();
    object.insert("LogLevel".into(), level);
    vec![
        GoExample {
            source: "examples/vpp-memif-ping/userspace-vpp-netAttach.yaml",
            config: vpp("slave", "4"),
        },
        GoExample {
            source: "ci/vpp_test_setup/network_attachment_definition.yaml (container role client)",
            config: vpp("client", "12"),
        },
        GoExample {
            source: "examples/vpp-memif-ping/sharedDir/userspace-vpp-netAttach-1.yaml (sharedDir with a trailing slash)",
            config: shared_dir,
        },
        GoExample {
            source: "README.md (LogFile, LogLevel capitalised)",
            config: readme_spelling,
        },
        GoExample {
            source: "ci/ovs_test_setup/ovs_network_attachment_definition.yaml",
            config: ovs("client", "server", "br-4"),
        },
        GoExample {
            source: "examples/ovs-vhost/userspace-ovs-netAttach-2.yaml (older: host server)",
            config: ovs("server", "client", "br-5"),
        },
        GoExample {
            source: "examples/crd-userspace-net-ovs-no-ipam.yaml (the name Multus injects)",
            config: json!({"cniVersion": "0.3.0", "type": "userspace", "name": "userspace-networkobj",
                           "host": {"engine": "ovs-dpdk", "iftype": "vhostuser"}}),
        },
    ]
}

/// Each Go example's shape ADDs (memif on the VPP double, vhost-user on the
/// real OVS-DPDK), gives the container side the role or mode the Go plugin
/// gave it (`client` is slave), and DEL leaves nothing.
#[test]
fn the_go_plugins_example_configs_add_and_del() {
    let ovs = Ovs::shared();
    let vpp_dir = integration_tests::scratch_dir();
    let api = vpp_dir.path().join("api.sock");
    let double = VppDouble::start(&api, Options::default());
    let before = double.state();
    for (n, example) in go_examples().into_iter().enumerate() {
        let mut net = Network::memif(ovs);
        let mut config = example.config;
        let log = net.dir("plugin.log");
        for key in ["logFile", "LogFile"] {
            if config.get(key).is_some() {
                config[key] = json!(log);
            }
        }
        if config.get("sharedDir").is_some() {
            config["sharedDir"] = json!(format!("{}/", net.dir("shared").display()));
        } else {
            config["sharedDir"] = json!(net.dir("shared"));
        }
        config["stateDir"] = json!(net.dir("state"));
        if config.get("ipam").is_some() {
            config["ipam"]["dataDir"] = json!(net.dir("ipam"));
        }
        config["host"]["ovs"] = net.config["host"]["ovs"].clone();
        config["host"]["vpp"] = json!({"apiSocket": api});
        let vpp = config["host"]["engine"] == "vpp";
        let container_role = config["container"]["memif"]["role"].clone();
        // What the record and host-local's store are kept under.
        net.name = config["name"].as_str().unwrap().to_string();
        net.config = config;
        let id = format!("goexample{n:04}");
        let ns = Netns::new();
        let run = net.add(&id, &ns);
        assert!(
            run.success,
            "{}: {}\n{}",
            example.source, run.stdout, run.stderr
        );
        let result = run.json();
        assert_eq!(
            result["interfaces"][0]["name"], "net1",
            "{}",
            example.source
        );
        let data = integration_tests::container_data(&net.dir("shared"), &id);
        if vpp {
            let expected = if container_role == "client" {
                "slave"
            } else {
                container_role.as_str().unwrap()
            };
            assert_eq!(
                data["config"]["memif"]["role"], expected,
                "{}",
                example.source
            );
        } else {
            let host_mode = net.config["host"]["vhost"]["mode"]
                .as_str()
                .unwrap_or("server");
            let container_mode = if host_mode == "client" {
                "server"
            } else {
                "client"
            };
            assert_eq!(
                data["config"]["vhost"]["mode"], container_mode,
                "{}",
                example.source
            );
        }
        net.del(&id).ok();
        net.assert_nothing_left(&id);
        if config_logs(&net) {
            assert!(
                log.is_file(),
                "{}: no log at {}",
                example.source,
                log.display()
            );
        }
    }
    assert_eq!(
        double.state(),
        before,
        "the VPP double holds what it held before"
    );
}

fn config_logs(net: &Network) -> bool {
    net.config.get("logFile").is_some() || net.config.get("LogFile").is_some()
}

/// The newer Go fork's keys this plugin does not implement are error 2
/// naming the key, in whatever case the config spells them (Go's decoder
/// matched keys in any case), and nothing is made; the values that ask
/// for nothing are accepted. Keys of the plugin's own schema are taken in
/// any case too, as the Go plugin took them.
#[test]
fn the_forks_keys_are_refused_and_keys_match_in_any_case() {
    let mut net = Network::vhostuser(Ovs::shared(), Some("client"));
    let ns = Netns::new();
    let id = "forkkeys00001";
    for (section, key, value) in [
        ("vhost", "EnableGSO", json!(true)),
        ("vhost", "enablePacked", json!(true)),
        ("bridge", "trunks", json!([10, 20])),
        ("bridge", "vlanMode", json!("trunk")),
    ] {
        let mut config = net.config.clone();
        config["host"][section][key] = value;
        let err = net
            .call("ADD", id, "net1", &ns.path(), config.to_string().as_bytes())
            .err(2);
        let canonical = if key == "EnableGSO" { "enableGso" } else { key };
        assert!(
            err["msg"]
                .as_str()
                .unwrap()
                .contains(&format!("host.{section}.{canonical}")),
            "{err}"
        );
        net.assert_nothing_left(id);
    }
    // The fork's harmless values, and a Go-style spelling of our keys.
    net.config["host"]["vhost"]["enableGso"] = json!(false);
    net.config["host"]["bridge"]["vlanMode"] = json!("access");
    let bridge = net.config["host"]["bridge"].as_object_mut().unwrap();
    let name = bridge.remove("bridgeName").unwrap();
    bridge.insert("BridgeName".into(), name);
    bridge.insert("VLANID".into(), json!(7));
    net.add(id, &ns).ok();
    let port = format!("{}-net1", &id[..12]);
    assert_eq!(net.ovs.vsctl(&["get", "Port", &port, "tag"]), "7");
    assert_eq!(net.ovs.ports(&net.bridge), std::slice::from_ref(&port));
    net.del(id).ok();
    net.assert_nothing_left(id);
}

/// An IPAM plugin that speaks CNI 1.1.0: a TEST DOUBLE (no reference IPAM
/// plugin here does; host-local 1.1.1 stops at 1.0.0). A script that says
/// so to VERSION, records each STATUS and GC it gets (variables and
/// stdin) in `calls.log` beside it, fails STATUS with error 50 while a
/// `fail` file is there, and hands every other command to host-local.
fn ipam_speaking_1_1(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let script = dir.join("ipam-1-1");
    let d = dir.display();
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}}' ;;
STATUS|GC)
  {{ echo "== $CNI_COMMAND [$CNI_CONTAINERID] [$CNI_NETNS] [$CNI_IFNAME]"; cat; echo; }} >> {d}/calls.log
  if [ "$CNI_COMMAND" = STATUS ] && [ -e {d}/fail ]; then
    echo '{{"cniVersion":"1.1.0","code":50,"msg":"address pool unreachable"}}'
    exit 1
  fi ;;
*) exec {host_local} ;;
esac
"#,
            host_local = std::path::Path::new(integration_tests::CNI_PATH)
                .join("host-local")
                .display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{d}:{}", integration_tests::CNI_PATH)
}

/// STATUS and GC as libcni 1.2 sends them (CNI_COMMAND and CNI_PATH, the
/// other variables empty; GC's stdin with `cni.dev/valid-attachments`):
/// each reaches the IPAM plugin that speaks 1.1.0, in 1.1.0, with the
/// valid attachments; its STATUS failure is the plugin's (code 50, its
/// message); GC still removes the stale attachment itself. host-local,
/// which does not speak 1.1.0, is not sent either, and the log says so.
#[test]
fn status_and_gc_reach_the_ipam_plugins_that_speak_1_1() {
    let mut net = Network::memif(Ovs::shared());
    let bin = net.dir("cni-bin");
    let cni_path = ipam_speaking_1_1(&bin);
    net.config["cniVersion"] = json!("1.1.0");
    net.config["ipam"]["type"] = json!("ipam-1-1");
    let ns = Netns::new();
    let (kept, stale) = ("statusgc00001", "statusgcx0002");
    for id in [kept, stale] {
        integration_tests::cni_call(
            "ADD",
            id,
            "net1",
            &ns.path(),
            &net.stdin(),
            &[("CNI_PATH", &cni_path)],
        )
        .ok();
    }
    let libcni = |command: &'static str, stdin: &[u8]| {
        integration_tests::run_plugin(
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", ""),
                ("CNI_NETNS", ""),
                ("CNI_IFNAME", ""),
                ("CNI_ARGS", ""),
                ("CNI_PATH", &cni_path),
            ],
            stdin,
        )
    };
    let calls = || std::fs::read_to_string(bin.join("calls.log")).unwrap_or_default();

    let run = libcni("STATUS", &net.stdin());
    assert!(run.success && run.stdout.is_empty(), "{run:?}");
    let log = calls();
    assert!(log.starts_with("== STATUS [] [] []\n"), "{log}");
    let sent: Value = serde_json::from_str(log.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        (&sent["cniVersion"], &sent["ipam"]["type"]),
        (&json!("1.1.0"), &json!("ipam-1-1"))
    );

    std::fs::write(bin.join("fail"), "").unwrap();
    let err = libcni("STATUS", &net.stdin()).err(50);
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("address pool unreachable"),
        "{err}"
    );
    std::fs::remove_file(bin.join("fail")).unwrap();

    let mut gc = net.config.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": kept, "ifname": "net1"}]);
    libcni("GC", gc.to_string().as_bytes()).ok();
    let log = calls();
    let gc_call = log
        .split("== GC [] [] []\n")
        .nth(1)
        .expect("GC reached the IPAM plugin");
    let sent: Value = serde_json::from_str(gc_call.lines().next().unwrap()).unwrap();
    assert_eq!(sent["cniVersion"], "1.1.0");
    assert_eq!(
        sent["cni.dev/valid-attachments"],
        json!([{"containerID": kept, "ifname": "net1"}])
    );
    net.assert_nothing_left(stale);
    assert!(net
        .dir("state/attachments")
        .join(&net.name)
        .join(kept)
        .exists());

    // host-local speaks 1.0.0 at most: neither is sent, the log says why.
    let mut host_local = net.config.clone();
    host_local["ipam"]["type"] = json!("host-local");
    host_local["logLevel"] = json!("info");
    let before = calls();
    let run = libcni("STATUS", host_local.to_string().as_bytes());
    assert!(run.success, "{run:?}");
    assert!(
        run.stderr.contains("does not speak CNI 1.1.0"),
        "{}",
        run.stderr
    );
    assert_eq!(calls(), before);

    integration_tests::cni_call(
        "DEL",
        kept,
        "net1",
        "",
        &net.stdin(),
        &[("CNI_PATH", &cni_path)],
    )
    .ok();
    net.assert_nothing_left(kept);
}

/// In-place upgrade from the Go plugin: an attachment made with exactly
/// what its OVS engine (`cniovs`) does for a host-side vhost-user client
/// (the bridge found or added with the netdev datapath and a NORMAL flow,
/// `add-port <cid12>-<ifname>` of type `dpdkvhostuserclient` with
/// `vhost-server-path` in `<sharedDir>/<cid12>/`, the port's mac looked up,
/// its local data file, the container's configData file, host-local ADD
/// with the whole config) is removed by our DEL of the same config: port,
/// socket, configData, the container's dir, the data file and the IPAM
/// allocation; the bridge stays (ours never removes a bridge it did not
/// make; the Go plugin removed one when empty).
#[test]
fn del_removes_an_attachment_the_go_plugin_made() {
    use std::os::unix::fs::PermissionsExt;
    let mut net = Network::vhostuser(Ovs::shared(), Some("client"));
    let data_dir = net.dir("go-data");
    net.own_policy(json!({"goPluginDataDir": data_dir}));
    // The Go plugin joined sharedDir and the socket with no separator:
    // its examples end sharedDir with a slash.
    net.config["sharedDir"] = json!(format!("{}/", net.dir("shared").display()));
    let id = "6f2c1d0e9b8a7f6e5d4c3b2a1908";
    let cid12 = &id[..12];
    let port = format!("{cid12}-net1");
    let shared = net.dir("shared").join(cid12);
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();

    let ovs = net.ovs;
    let bridge = net.bridge.clone();
    let found = ovs.vsctl(&[
        "--bare",
        "--columns=name",
        "find",
        "bridge",
        &format!("name={bridge}"),
    ]);
    assert_eq!(found, "");
    ovs.vsctl(&[
        "add-br",
        &bridge,
        "--",
        "set",
        "bridge",
        &bridge,
        "datapath_type=netdev",
    ]);
    let mgmt = format!("unix:{}/{bridge}.mgmt", ovs.dir.display());
    let flow = Command::new("ovs-ofctl")
        .args(["add-flow", &mgmt, "actions=NORMAL"])
        .status()
        .unwrap();
    assert!(flow.success(), "ovs-ofctl add-flow");
    let socket = shared.join(&port);
    ovs.add_vhost_user_client_port(&bridge, &port, &socket);
    let mac = ovs.vsctl(&[
        "--bare",
        "--columns=mac",
        "find",
        "port",
        &format!("name={port}"),
    ]);
    // The container's app is the vhost-user server: its socket.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_file = data_dir.join(format!("local-{cid12}-net1.json"));
    std::fs::write(
        &data_file,
        json!({"vhostname": port, "vhostmac": mac, "ifmac": "0a:58:c0:a8:d2:05"}).to_string(),
    )
    .unwrap();
    let ns = Netns::new();
    let ipam = Command::new(std::path::Path::new(CNI_PATH).join("host-local"))
        .envs([
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", ns.path().as_str()),
            ("CNI_IFNAME", "net1"),
            ("CNI_PATH", CNI_PATH),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&net.stdin())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        ipam.status.success(),
        "{}",
        String::from_utf8_lossy(&ipam.stdout)
    );
    let ip_result: Value = serde_json::from_slice(&ipam.stdout).unwrap();
    std::fs::write(
        shared.join(format!("configData-{cid12}-net1.json")),
        json!({"containerId": id, "ifName": "net1", "name": net.name,
               "config": net.config["container"], "ipResult": ip_result})
        .to_string(),
    )
    .unwrap();
    assert_eq!(ovs.ports(&bridge), std::slice::from_ref(&port));

    net.del(id).ok();
    assert_eq!(
        ovs.ports(&bridge),
        Vec::<String>::new(),
        "the Go plugin's port"
    );
    assert!(!shared.exists(), "{:?}", integration_tests::list(&shared));
    assert!(!data_file.exists(), "the Go plugin's data file");
    integration_tests::assert_no_ipam_reservation(&net.dir("ipam").join(&net.name), id);
    assert!(ovs.bridge_exists(&bridge), "a bridge we did not make stays");
    ovs.vsctl(&["del-br", &bridge]);
}

/// The Go plugin's data file is used only if nobody but root could have
/// written it, and only for a vhost-user port: one naming another port
/// (here an internal port of the bridge) touches nothing, and one that
/// others could have written is not read.
#[test]
fn a_go_plugin_data_file_is_trusted_with_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let mut net = Network::vhostuser(Ovs::shared(), Some("client"));
    let data_dir = net.dir("go-data");
    net.own_policy(json!({"goPluginDataDir": data_dir}));
    let id = "7a6b5c4d3e2f1a0b9c8d7e6f";
    let cid12 = &id[..12];
    let bridge = net.bridge.clone();
    net.ovs.add_netdev_bridge(&bridge);
    net.ovs.vsctl(&[
        "add-port",
        &bridge,
        "uplink0",
        "--",
        "set",
        "Interface",
        "uplink0",
        "type=internal",
    ]);
    let port = format!("{cid12}-net1");
    net.ovs
        .add_vhost_user_client_port(&bridge, &port, &net.dir("gone.sock"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let data_file = data_dir.join(format!("local-{cid12}-net1.json"));

    std::fs::write(&data_file, json!({"vhostname": "uplink0"}).to_string()).unwrap();
    net.del(id).ok();
    assert_eq!(net.ovs.ports(&bridge).len(), 2, "nothing removed");
    assert!(data_file.exists());

    std::fs::write(&data_file, json!({"vhostname": port}).to_string()).unwrap();
    std::fs::set_permissions(&data_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    net.del(id).ok();
    assert_eq!(
        net.ovs.ports(&bridge).len(),
        2,
        "a file others could write is not read"
    );

    std::fs::set_permissions(&data_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    net.del(id).ok();
    assert_eq!(net.ovs.ports(&bridge), ["uplink0"]);
    assert!(!data_file.exists());
    net.ovs.vsctl(&["del-br", &bridge]);
}
