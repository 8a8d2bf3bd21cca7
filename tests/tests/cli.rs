//! The commands a person runs on the `userspace` binary (no CNI_COMMAND):
//! components, validate, precompile, attachments, del, gc, install.

use std::process::Command;

use integration_tests::{component, plugin_binary, Netns, Network, Ovs};

/// Runs `userspace args...` without CNI variables; (exit code, stdout).
fn userspace(args: &[&str]) -> (i32, String) {
    let (code, stdout, _) = run(args, &[]);
    (code, stdout)
}

/// `userspace args...` with only `env`: (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &std::path::Path)]) -> (i32, String, String) {
    let out = Command::new(plugin_binary())
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    assert!(code.is_some(), "killed: {stdout}{stderr}");
    (code.unwrap(), stdout, stderr)
}

/// `components --json`: the same components as data.
#[test]
fn components_lists_as_json() {
    let state = tempfile::tempdir().unwrap();
    let (code, out) = userspace(&[
        "components",
        "--state-dir",
        state.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let engine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["world"] == "engine" && c["origin"] == "built in")
        .unwrap_or_else(|| panic!("no built-in engine in {list}"));
    assert_eq!(engine["sha256"].as_str().unwrap().len(), 64, "{engine}");
    assert!(
        engine["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "ovsdb"),
        "{engine}"
    );
}

#[test]
fn components_lists_the_built_ins_with_package_wit_hash_and_capabilities() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path().to_str().unwrap();
    let (code, out) = userspace(&["components", "--state-dir", state]);
    assert_eq!(code, 0, "{out}");
    for line in [
        (
            "engine",
            "ovs-dpdk",
            "engine-ovs-dpdk@0.1.0",
            "ovsdb, journal, log",
        ),
        ("engine", "vpp", "engine-vpp@0.1.0", "vpp"),
        ("naming", "go-compatible", "naming-go-compatible@0.1.0", ""),
        (
            "ipam-chain",
            "delegate",
            "ipam-chain-delegate@0.1.0",
            "ipam",
        ),
    ] {
        let (world, name, package, caps) = line;
        assert!(
            out.lines().any(|l| l.starts_with(world)
                && l.contains(&format!(" {name} "))
                && l.contains(package)
                && l.contains(caps)),
            "no {line:?} in\n{out}"
        );
    }
}

#[test]
fn components_with_a_config_shows_what_it_admits_and_refuses() {
    let mut net = Network::memif(Ovs::shared());
    net.config["components"] = serde_json::json!({
        "naming": component::build("naming-wants-ovsdb"),
        "engine": {"grants": ["ovsdb", "journal", "log"]},
    });
    let config = net.dir("net.conf");
    std::fs::write(&config, net.stdin()).unwrap();
    let state = net.dir("state");
    let (code, out) = userspace(&[
        "components",
        "--state-dir",
        state.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let line = |world: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(world) && l.contains("grants"))
            .unwrap_or_else(|| panic!("no {world} line in\n{out}"))
            .to_string()
    };
    assert!(line("engine").ends_with("admitted"), "{out}");
    assert!(
        line("naming").contains("REFUSED") && line("naming").contains("ovsdb"),
        "{out}"
    );
    assert!(line("ipam-chain").ends_with("admitted"), "{out}");
}

#[test]
fn validate_accepts_a_good_component_and_refuses_bad_ones_with_the_reason() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path().to_str().unwrap();
    let tenant = component::build("naming-tenant");
    let (code, out) = userspace(&["validate", "--state-dir", state, tenant.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("world:        naming") && out.contains("naming-tenant@0.1.0"),
        "{out}"
    );
    assert!(out.contains("admissible"), "{out}");

    // Right component, wrong role.
    let (code, out) = userspace(&[
        "validate",
        "--state-dir",
        state,
        "--world",
        "engine",
        tenant.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not an engine component"), "{out}");

    let future = component::build("naming-future-wit");
    let (code, out) = userspace(&["validate", "--state-dir", state, future.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("userspace:cni@9.0.0"), "{out}");

    let greedy = component::build("naming-wants-ovsdb");
    let path = greedy.to_str().unwrap();
    let (code, out) = userspace(&["validate", "--state-dir", state, path]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("capability `ovsdb`"), "{out}");
    // Granted explicitly, it passes.
    let (code, out) = userspace(&[
        "validate",
        "--state-dir",
        state,
        "--grant",
        "log,ovsdb",
        path,
    ]);
    assert_eq!(code, 0, "{out}");
    // Refused is 1; an error (no such file) is 2.
    let (code, out) = userspace(&["validate", "--state-dir", state, "/nonexistent.wasm"]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn precompile_fills_the_cache_that_cni_calls_use() {
    let state = tempfile::tempdir().unwrap();
    let tenant = component::build("naming-tenant");
    let (code, out) = userspace(&[
        "precompile",
        "--state-dir",
        state.path().to_str().unwrap(),
        tenant.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let artifacts = integration_tests::list(&state.path().join("cache"));
    assert_eq!(
        artifacts.iter().filter(|f| f.ends_with(".cwasm")).count(),
        5,
        "4 built-ins and the tenant policy: {artifacts:?}"
    );
}

#[test]
fn attachments_shows_what_is_recorded_on_this_host() {
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    net.add("listedabc0001", &ns).ok();
    let state = net.dir("state");
    let (code, out) = userspace(&["attachments", "--state-dir", state.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("listedabc0001"))
        .unwrap_or_else(|| panic!("no attachment line in\n{out}"));
    for part in [
        &net.name,
        "net1",
        "committed",
        "ovs-dpdk",
        "memif-listedabc000-net1",
        "10.77.0.",
    ] {
        assert!(line.contains(part), "{part} not in {line}");
    }
    net.del("listedabc0001").ok();
    let (_, out) = userspace(&["attachments", "--state-dir", state.to_str().unwrap()]);
    assert!(!out.contains("listedabc0001"), "{out}");
}

#[test]
fn install_copies_the_binary_and_precompiles_the_built_ins() {
    let bin = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let policy = state.path().join("etc/cni/userspace/policy.json");
    let share = state.path().join("share");
    let install = || {
        userspace(&[
            "install",
            "--to",
            bin.path().to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
            "--share-dir",
            share.to_str().unwrap(),
        ])
    };
    let (code, out) = install();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("wrote the default node policy"), "{out}");
    // Completions and the man page, generated from the commands.
    let bash =
        std::fs::read_to_string(share.join("bash-completion/completions/userspace")).unwrap();
    assert!(
        bash.contains("attachments") && bash.contains("--dry-run"),
        "{bash}"
    );
    assert!(share.join("zsh/site-functions/_userspace").is_file());
    assert!(share
        .join("fish/vendor_completions.d/userspace.fish")
        .is_file());
    let man = std::fs::read_to_string(share.join("man/man1/userspace.1")).unwrap();
    assert!(
        man.contains(".TH userspace") && man.contains("attachments"),
        "{man}"
    );
    // The policy written is the defaults `userspace policy` shows without one.
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&policy).unwrap()).unwrap();
    let shown = Command::new(plugin_binary())
        .env_clear()
        .env(integration_tests::POLICY_ENV, &policy)
        .arg("policy")
        .output()
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&shown.stdout).unwrap(),
        written
    );
    assert!(String::from_utf8_lossy(&shown.stderr).contains(policy.to_str().unwrap()));
    // An operator's policy is never overwritten by a later install.
    std::fs::write(&policy, r#"{"stateDir": "/srv/cni"}"#).unwrap();
    let (code, out) = install();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kept the node policy"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        r#"{"stateDir": "/srv/cni"}"#
    );
    let installed = bin.path().join("userspace");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(plugin_binary()).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        integration_tests::list(bin.path()),
        vec!["userspace".to_string()],
        "no temp file left"
    );
    let artifacts = integration_tests::list(&state.path().join("cache"));
    assert_eq!(
        artifacts.iter().filter(|f| f.ends_with(".cwasm")).count(),
        4,
        "{artifacts:?}"
    );
}

/// Run by hand with no CNI_COMMAND (or an empty one) and no arguments,
/// whatever other CNI variables are set, the plugin says on stderr what
/// it is and which CNI versions it speaks, exit 0, nothing on stdout, as
/// the reference plugins' skeleton does; it does not wait on stdin (left
/// open here).
#[test]
fn the_bare_binary_says_what_it_is_without_waiting_on_stdin() {
    use std::io::Read;
    for command in [None, Some("")] {
        let mut run = Command::new(plugin_binary());
        run.env_clear().env("CNI_CONTAINERID", "abc");
        if let Some(command) = command {
            run.env("CNI_COMMAND", command);
        }
        let mut child = run
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let _stdin_left_open = child.stdin.take();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > std::time::Duration::from_secs(10) {
                child.kill().unwrap();
                panic!("the bare binary waited on stdin");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let read = |pipe: &mut dyn Read| {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            text
        };
        let stdout = read(&mut child.stdout.take().unwrap());
        let stderr = read(&mut child.stderr.take().unwrap());
        assert!(status.success(), "{command:?}: {stderr}");
        assert_eq!(stdout, "", "stdout is for results only");
        assert!(stderr.contains("userspace-cni"), "{stderr}");
        assert!(
            stderr.contains("CNI protocol versions supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"),
            "{stderr}"
        );
    }
}

/// `userspace` as an operator runs it on a node: with the node policy the
/// plugin runs under (here the tests'), (exit code, stdout).
fn userspace_on_node(args: &[&str]) -> (i32, String) {
    let policy = integration_tests::test_policy();
    let (code, stdout, stderr) = run(args, &[(integration_tests::POLICY_ENV, &policy)]);
    (code, format!("{stdout}{stderr}"))
}

/// An empty state dir lists nothing, exit 0 (`[]` with --json); the
/// table is as wide as a runtime's 64-character container IDs; --json
/// lists each attachment.
#[test]
fn attachments_lists_long_ids_in_columns_and_as_json() {
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    let (code, out) = userspace(&["attachments", "--state-dir", empty]);
    assert_eq!((code, out.lines().count()), (0, 1), "{out}");
    let (code, out) = userspace(&["attachments", "--state-dir", empty, "--json"]);
    assert_eq!((code, out.trim()), (0, "[]"), "{out}");

    let net = Network::memif(Ovs::shared());
    let id = format!("{}{}", "5eb6", "c".repeat(60));
    net.add(&id, &Netns::new()).ok();
    let state = net.dir("state");
    let state = state.to_str().unwrap();
    let (code, out) = userspace(&["attachments", "--state-dir", state]);
    assert_eq!(code, 0, "{out}");
    let header = out.lines().next().unwrap();
    let row = out
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row.find("net1"), header.find("IFNAME"), "columns:\n{out}");
    let (code, out) = userspace(&["attachments", "--state-dir", state, "--json"]);
    assert_eq!(code, 0, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["containerId"], id.as_str());
    assert_eq!(list[0]["ifName"], "net1");
    assert!(
        list[0]["ips"][0].as_str().unwrap().starts_with("10.77.0."),
        "{list}"
    );
    net.del(&id).ok();
}

/// `del` and `gc` undo recorded attachments as DEL and GC do, without a
/// CNI environment; `--dry-run` prints the steps and changes nothing; an
/// attachment not recorded is an error (2).
#[test]
fn del_and_gc_undo_recorded_attachments_and_dry_run_changes_nothing() {
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    let (a, b, c) = ("clidelete0001", "clikeep000002", "cligcstale003");
    for id in [a, b, c] {
        net.add(id, &ns).ok();
    }
    let state = net.dir("state");
    let state = state.to_str().unwrap();
    let cni_path = integration_tests::CNI_PATH;

    let (code, out) = userspace_on_node(&["del", a, "net1", "--state-dir", state, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert_eq!(
        net.ovs.rows_of_container("Port", a).lines().count(),
        1,
        "{out}"
    );
    let (code, out) = userspace_on_node(&[
        "del",
        a,
        "net1",
        "--state-dir",
        state,
        "--cni-path",
        cni_path,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("undone"), "{out}");
    net.assert_nothing_left(a);
    let (code, out) = userspace_on_node(&["del", a, "net1", "--state-dir", state]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no attachment"), "{out}");

    let keep = format!("{b},some-other-container");
    let (code, out) =
        userspace_on_node(&["gc", "--keep", &keep, "--state-dir", state, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(c) && !out.contains(b), "{out}");
    assert_eq!(
        net.ovs.rows_of_container("Port", c).lines().count(),
        1,
        "{out}"
    );
    let (code, out) = userspace_on_node(&[
        "gc",
        "--keep",
        &keep,
        "--state-dir",
        state,
        "--cni-path",
        cni_path,
    ]);
    assert_eq!(code, 0, "{out}");
    net.assert_nothing_left(c);
    assert_eq!(
        net.ovs.rows_of_container("Port", b).lines().count(),
        1,
        "{out}"
    );
    // --keep is required: an empty list would undo everything.
    let (code, out) = userspace_on_node(&["gc", "--state-dir", state]);
    assert_eq!(code, 2, "{out}");
    net.del(b).ok();
    net.assert_nothing_left(b);
}

/// `show` joins a record with what OVS says now: the memif's Interface
/// row (type, options, state, counters), its Port's VLAN tag and its
/// bridge. When the port is gone the record is still shown, with the
/// vSwitch's answer; a container not recorded is exit 1; nothing
/// recorded is exit 0.
#[test]
fn show_joins_the_record_with_what_ovs_says_now() {
    let mut net = Network::memif(Ovs::shared());
    net.config["host"]["bridge"]["vlanId"] = serde_json::json!(42);
    let id = "clishow000001";
    net.add(id, &Netns::new()).ok();
    let state = net.dir("state");
    let state = state.to_str().unwrap();

    let (code, out) = userspace_on_node(&["show", id, "net1", "--state-dir", state, "--json"]);
    assert_eq!(code, 0, "{out}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    let a = &shown[0];
    assert_eq!(a["containerId"], id, "{a}");
    assert_eq!(a["phase"], "committed", "{a}");
    assert_eq!(a["socket"]["present"], true, "{a}");
    assert_eq!(a["containerData"]["present"], true, "{a}");
    let v = &a["vswitch"];
    assert_eq!(v["kind"], "ovs-dpdk", "{a}");
    assert_eq!(v["bridge"], net.bridge.as_str(), "{a}");
    assert_eq!(v["port"]["tag"], 42, "{a}");
    assert_eq!(v["interface"]["type"], "dpdk", "{a}");
    let devargs = v["interface"]["options"]["dpdk-devargs"].as_str().unwrap();
    assert!(
        devargs.starts_with("net_memif") && devargs.contains(a["socket"]["path"].as_str().unwrap()),
        "{a}"
    );
    assert!(v["interface"]["statistics"]["rx_packets"].is_u64(), "{a}");
    // The memif's secret stays in OVSDB and the container data: a listing
    // is not where it goes.
    let secret = devargs.split(',').find_map(|kv| kv.strip_prefix("secret="));
    assert_eq!(secret, Some("(hidden)"), "{a}");

    // The same as text, as a person reads it.
    let (code, out) = userspace_on_node(&["show", "--state-dir", state]);
    assert_eq!(code, 0, "{out}");
    let has = |words: &str| {
        out.lines().any(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .starts_with(words)
        })
    };
    assert!(has(&format!("bridge {}", net.bridge)), "{out}");
    assert!(
        has("vlan tag 42") && has("rx 0 packets") && has("type dpdk"),
        "{out}"
    );
    assert!(has("options dpdk-devargs=net_memif"), "{out}");

    // The port removed behind the plugin's back (no memif client is
    // connected, so ovs-vswitchd does not stall on it).
    let port = a["port"].as_str().unwrap();
    net.ovs.vsctl(&["del-port", &net.bridge, port]);
    let (code, out) = userspace_on_node(&["show", id, "--state-dir", state]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("no interface {port} on the vSwitch")),
        "{out}"
    );

    let (code, out) = userspace_on_node(&["show", "not-recorded", "--state-dir", state]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no attachment of not-recorded"), "{out}");
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = userspace(&["show", "--state-dir", empty.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no attachments recorded"), "{out}");
    net.del(id).ok();
    net.assert_nothing_left(id);
}

/// A record is older than the policy in force: `show` does not ask an
/// OVSDB socket the node policy no longer allows (the record may name
/// any socket the policy allowed when it was written).
#[test]
fn show_does_not_ask_a_socket_the_policy_no_longer_allows() {
    let net = Network::memif(Ovs::shared());
    let id = "clishowpol001";
    net.add(id, &Netns::new()).ok();
    let state = net.dir("state");
    let revoked = integration_tests::write_policy(
        net.dirs.path(),
        serde_json::json!({"stateDir": state, "ovsDbSockets": ["/run/openvswitch/db.sock"]}),
    );
    let (code, stdout, stderr) = run(
        &["show", id, "--state-dir", state.to_str().unwrap(), "--json"],
        &[(integration_tests::POLICY_ENV, &revoked)],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let shown: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let v = &shown[0]["vswitch"];
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("not asked") && error.contains("ovsDbSockets"),
        "{v}"
    );
    assert!(v.get("interface").is_none(), "{v}");
    net.del(id).ok();
    net.assert_nothing_left(id);
}
