//! Bad input: every malformed call gets a CNI error JSON with the right
//! code on stdout, a non-zero exit, and changes nothing on the host.
//! This binary's OVS is compared byte for byte, so no test here may change it.

use integration_tests::{run_plugin, Netns, Network, Ovs, CNI_PATH};
use serde_json::{json, Value};

enum Input {
    /// The valid base config with `mutate` applied.
    Config(fn(&mut Value)),
    /// Raw bytes on stdin.
    Raw(Vec<u8>),
}

struct Case {
    name: &'static str,
    /// Environment overrides: `None` removes the variable.
    env: Vec<(&'static str, Option<String>)>,
    input: Input,
    code: u64,
}

fn case(name: &'static str, input: Input, code: u64) -> Case {
    Case {
        name,
        env: Vec::new(),
        input,
        code,
    }
}

fn env_case(name: &'static str, var: &'static str, value: Option<&str>, code: u64) -> Case {
    Case {
        name,
        env: vec![(var, value.map(str::to_string))],
        input: Input::Config(|_| {}),
        code,
    }
}

fn cfg(name: &'static str, mutate: fn(&mut Value), code: u64) -> Case {
    case(name, Input::Config(mutate), code)
}

fn cases() -> Vec<Case> {
    let long = "a".repeat(300);
    vec![
        // (No CNI_COMMAND at all is a person running the binary: it says
        // what it is, as the reference plugins do; cli.rs tests that.)
        env_case("CNI_COMMAND with a space", "CNI_COMMAND", Some("ADD "), 4),
        env_case("unknown CNI_COMMAND", "CNI_COMMAND", Some("ATTACH"), 4),
        env_case("lower-case CNI_COMMAND", "CNI_COMMAND", Some("add"), 4),
        env_case("missing CNI_CONTAINERID", "CNI_CONTAINERID", None, 4),
        env_case("missing CNI_IFNAME", "CNI_IFNAME", None, 4),
        env_case("missing CNI_NETNS on ADD", "CNI_NETNS", None, 4),
        env_case("missing CNI_PATH", "CNI_PATH", None, 4),
        env_case("container ID with /", "CNI_CONTAINERID", Some("abc/def"), 4),
        env_case("container ID ..", "CNI_CONTAINERID", Some(".."), 4),
        env_case(
            "container ID escaping",
            "CNI_CONTAINERID",
            Some("../../etc/passwd"),
            4,
        ),
        env_case(
            "container ID of 300 characters",
            "CNI_CONTAINERID",
            Some(&long),
            4,
        ),
        env_case(
            "container ID starting with -",
            "CNI_CONTAINERID",
            Some("-rf"),
            4,
        ),
        env_case("ifname with /", "CNI_IFNAME", Some("a/b"), 4),
        env_case("ifname ..", "CNI_IFNAME", Some(".."), 4),
        env_case("ifname of 300 characters", "CNI_IFNAME", Some(&long), 4),
        env_case(
            "ifname of 16 characters",
            "CNI_IFNAME",
            Some("abcdefghijklmnop"),
            4,
        ),
        env_case("ifname with a space", "CNI_IFNAME", Some("net 1"), 4),
        env_case("ifname with :", "CNI_IFNAME", Some("net:1"), 4),
        env_case("CNI_ARGS unknown key", "CNI_ARGS", Some("FOO=bar"), 4),
        env_case("CNI_ARGS without =", "CNI_ARGS", Some("novalue"), 4),
        case("empty stdin", Input::Raw(Vec::new()), 6),
        case(
            "broken JSON",
            Input::Raw(br#"{"cniVersion": "1.0.0", "name": "#.to_vec()),
            6,
        ),
        case("oversized stdin", Input::Raw(oversized()), 6),
        case("JSON array", Input::Raw(b"[1,2]".to_vec()), 7),
        cfg("missing cniVersion", |c| remove(c, "cniVersion"), 7),
        cfg(
            "unsupported cniVersion",
            |c| c["cniVersion"] = json!("0.2.0"),
            1,
        ),
        cfg(
            "cniVersion of another type",
            |c| c["cniVersion"] = json!(1),
            7,
        ),
        cfg("missing name", |c| remove(c, "name"), 7),
        cfg("name with /", |c| c["name"] = json!("a/b"), 7),
        cfg("name with NUL", |c| c["name"] = json!("a\u{0}b"), 7),
        cfg("type not userspace", |c| c["type"] = json!("bridge"), 7),
        cfg("missing host", |c| remove(c, "host"), 7),
        cfg("host a string", |c| c["host"] = json!("ovs"), 7),
        cfg(
            "unknown engine",
            |c| c["host"]["engine"] = json!("kernel"),
            7,
        ),
        cfg(
            "engine relative wasm path",
            |c| c["host"]["engine"] = json!("x.wasm"),
            7,
        ),
        cfg(
            "engine vpp with a bridgeName that is not a number",
            |c| c["host"]["engine"] = json!("vpp"),
            7,
        ),
        cfg("unknown iftype", |c| c["host"]["iftype"] = json!("veth"), 7),
        cfg(
            "unknown netType",
            |c| c["host"]["netType"] = json!("overlay"),
            7,
        ),
        cfg(
            "unknown memif role",
            |c| c["host"]["memif"]["role"] = json!("boss"),
            7,
        ),
        cfg(
            "unknown memif mode",
            |c| c["host"]["memif"]["mode"] = json!("raw"),
            7,
        ),
        cfg(
            "memif ip mode on ovs-dpdk",
            |c| c["host"]["memif"]["mode"] = json!("ip"),
            7,
        ),
        cfg(
            "unknown vhost mode",
            |c| c["host"]["vhost"] = json!({"mode": "both"}),
            7,
        ),
        cfg(
            "socketfile with /",
            |c| c["host"]["memif"]["socketfile"] = json!("../../etc/x"),
            7,
        ),
        cfg(
            "socketfile ..",
            |c| c["host"]["memif"]["socketfile"] = json!(".."),
            7,
        ),
        cfg(
            "socketfile with NUL",
            |c| c["host"]["memif"]["socketfile"] = json!("a\u{0}.sock"),
            7,
        ),
        cfg(
            "bridgeName of 300 characters",
            |c| c["host"]["bridge"]["bridgeName"] = json!("b".repeat(300)),
            7,
        ),
        cfg(
            "bridgeName with /",
            |c| c["host"]["bridge"]["bridgeName"] = json!("br/0"),
            7,
        ),
        cfg(
            "vlanId out of range",
            |c| c["host"]["bridge"]["vlanId"] = json!(4096),
            7,
        ),
        cfg(
            "vlanId a string",
            |c| c["host"]["bridge"]["vlanId"] = json!("100"),
            7,
        ),
        cfg(
            "bridgeId negative",
            |c| c["host"]["bridge"]["bridgeId"] = json!(-1),
            7,
        ),
        cfg("ipam a list", |c| c["ipam"] = json!([1]), 7),
        cfg("ipam without type", |c| remove(&mut c["ipam"], "type"), 7),
        cfg(
            "ipam type escaping",
            |c| c["ipam"]["type"] = json!("../../bin/sh"),
            7,
        ),
        cfg(
            "ipam plugin not in CNI_PATH",
            |c| c["ipam"]["type"] = json!("no-such-ipam"),
            7,
        ),
        cfg("mtu too small", |c| c["host"]["mtu"] = json!(10), 7),
        cfg(
            "mac not a MAC",
            |c| c["container"]["mac"] = json!("zz:zz"),
            7,
        ),
        cfg(
            "multicast mac",
            |c| c["container"]["mac"] = json!("01:00:5e:00:00:01"),
            7,
        ),
        cfg("unknown logLevel", |c| c["logLevel"] = json!("loud"), 7),
        cfg(
            "relative sharedDir",
            |c| c["sharedDir"] = json!("shared"),
            7,
        ),
        cfg(
            "sharedDir with ..",
            |c| c["sharedDir"] = json!("/tmp/../etc"),
            7,
        ),
        cfg(
            "kubernetes.sharedDirVolume with /",
            |c| c["kubernetes"] = json!({"sharedDirVolume": "../x"}),
            7,
        ),
        cfg(
            "relative kubernetes.socketMountDir",
            |c| c["kubernetes"] = json!({"socketMountDir": "vhost_sockets"}),
            7,
        ),
        cfg("relative stateDir", |c| c["stateDir"] = json!("state"), 7),
        cfg(
            "dbSocket over TCP",
            |c| c["host"]["ovs"]["dbSocket"] = json!("tcp:127.0.0.1:6640"),
            7,
        ),
        cfg(
            "runtimeConfig a string",
            |c| c["runtimeConfig"] = json!("x"),
            7,
        ),
        cfg(
            "prevResult malformed",
            |c| c["prevResult"] = json!({"ips": "none"}),
            6,
        ),
        cfg(
            "socket path over 107 bytes",
            |c| c["sharedDir"] = json!(format!("/tmp/{}", "d".repeat(100))),
            7,
        ),
    ]
}

fn remove(v: &mut Value, key: &str) {
    v.as_object_mut().unwrap().remove(key);
}

fn oversized() -> Vec<u8> {
    let mut big = br#"{"cniVersion":"1.0.0","pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 2 << 20));
    big.extend(br#""}"#);
    big
}

#[test]
fn bad_input_gets_a_cni_error_and_changes_nothing() {
    let ovs = Ovs::shared();
    let net = Network::memif(ovs);
    let ns = Netns::new();
    let cases = cases();
    // The README quotes this count.
    assert_eq!(cases.len(), 67, "bad-input cases");
    integration_tests::figure("bad-input cases", cases.len());
    let before = ovs.dump();
    for case in cases {
        let mut env: Vec<(&str, Option<String>)> = vec![
            ("CNI_COMMAND", Some("ADD".into())),
            ("CNI_CONTAINERID", Some("badinput0001".into())),
            ("CNI_IFNAME", Some("net1".into())),
            ("CNI_NETNS", Some(ns.path())),
            ("CNI_PATH", Some(CNI_PATH.into())),
        ];
        for (var, value) in &case.env {
            env.retain(|(k, _)| k != var);
            env.push((var, value.clone()));
        }
        let env: Vec<(&str, &str)> = env
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
            .collect();
        let stdin = match &case.input {
            Input::Raw(bytes) => bytes.clone(),
            Input::Config(mutate) => {
                let mut c = net.config.clone();
                mutate(&mut c);
                c.to_string().into_bytes()
            }
        };
        let run = run_plugin(&env, &stdin);
        assert!(!run.success, "{}: succeeded: {}", case.name, run.stdout);
        assert_eq!(
            run.stdout.lines().count(),
            1,
            "{}: stdout holds only the error: {:?}",
            case.name,
            run.stdout
        );
        let err = run.json();
        assert_eq!(err["code"], case.code, "{}: {err}", case.name);
        assert!(
            err["msg"].as_str().is_some_and(|m| m.len() > 10),
            "{}: {err}",
            case.name
        );
        assert!(err["cniVersion"].is_string(), "{}: {err}", case.name);
        assert_eq!(ovs.dump(), before, "{}: OVSDB changed", case.name);
        net.assert_nothing_left("badinput0001");
    }
}

#[test]
fn errors_name_the_field_and_the_accepted_values() {
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    let mut c = net.config.clone();
    c["host"]["memif"]["role"] = json!("boss");
    let err = net
        .call(
            "ADD",
            "fieldnames001",
            "net1",
            &ns.path(),
            c.to_string().as_bytes(),
        )
        .err(7);
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains("host.memif.role") && msg.contains("master") && msg.contains("slave"),
        "{msg}"
    );
}
