//! Swappable policies: naming and IPAM-chain components chosen by the
//! network config, with the same host binary, and components the host must
//! refuse (wrong hash, another WIT version, an ungranted capability, names
//! outside the shared dir), each refused before anything on the host
//! changes, and WASI confined to the directories granted.

use integration_tests::{component, Netns, Network, Ovs};
use serde_json::{json, Value};

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Asserts that a refused ADD changed nothing: no bridge, port or
/// interface (other tests change the shared OVS meanwhile, so its dump is
/// not compared), no record, no shared dir, no IPAM reservation.
fn assert_refused_cleanly(net: &Network, id: &str) {
    assert!(
        !net.ovs.bridge_exists(&net.bridge),
        "bridge created by a refused ADD"
    );
    net.assert_nothing_left(id);
    assert!(
        integration_tests::list(&net.dir("shared")).is_empty(),
        "shared dir not empty"
    );
}

#[test]
fn a_naming_component_built_outside_the_host_renames_port_socket_mac_and_data() {
    let mut net = Network::memif(Ovs::shared());
    let tenant = component::build("naming-tenant");
    let dir = net.dir("components");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&tenant, dir.join("tenant.wasm")).unwrap();
    // Found by name in the operator's directory, pinned by hash.
    net.config["components"] = json!({
        "dir": dir,
        "naming": {"source": "tenant", "sha256": sha256_of(&tenant)},
    });
    let id = "tenantabcdef0001";
    let ns = Netns::new();
    // As kubelet sends them; host-local refuses unknown args without IgnoreUnknown.
    let args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-0;K8S_POD_UID=u1";
    let result = net.add_with_args(id, &ns, args).ok();

    assert_eq!(
        result["interfaces"][0]["mac"],
        "02:7e:".to_string() + &tenant_mac_tail(id)
    );
    assert_eq!(
        net.ovs.ports(&net.bridge),
        vec!["tenant-tenantab-net1".to_string()]
    );
    let pod_dir = net.dir("shared").join("team-a/web-0");
    let socket = pod_dir.join("t-tenantab-net1.sock");
    assert!(socket.exists(), "socket {} missing", socket.display());
    let data: Value = serde_json::from_slice(
        &std::fs::read(pod_dir.join("configData-tenantabcdef-net1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        data["config"]["memif"]["socketfile"],
        "t-tenantab-net1.sock"
    );

    net.del(id).ok();
    net.assert_nothing_left(id);
    assert!(
        integration_tests::list(&net.dir("shared")).is_empty(),
        "the per-pod directories ADD created are removed by DEL"
    );
}

/// The tenant component's MAC tail: FNV-1a of the container ID.
fn tenant_mac_tail(id: &str) -> String {
    let hash = id
        .bytes()
        .fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
        .to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}",
        hash[0], hash[1], hash[2], hash[3]
    )
}

#[test]
fn a_component_whose_hash_is_not_the_pinned_one_is_refused() {
    let mut net = Network::memif(Ovs::shared());
    net.own_policy(json!({}));
    let tenant = component::build("naming-tenant");
    net.config["components"] = json!({
        "naming": {"source": tenant, "sha256": "0".repeat(64)},
    });
    let err = net.add("pinnedwrong001", &Netns::new()).err(102);
    let msg = err["msg"].as_str().unwrap();
    let actual = sha256_of(&tenant);
    assert!(msg.contains("sha256") && msg.contains(&actual), "{err}");
    assert_refused_cleanly(&net, "pinnedwrong001");
    // Refused before it was compiled: no native code of it in the cache.
    let cache = integration_tests::list(&net.dir("state/cache"));
    assert!(!cache.iter().any(|f| f.starts_with(&actual)), "{cache:?}");
}

#[test]
fn names_outside_the_shared_dir_are_refused() {
    let mut net = Network::memif(Ovs::shared());
    net.name = format!("escape-{}", net.name);
    net.config["name"] = json!(net.name);
    net.config["components"] = json!({ "naming": component::build("naming-tenant") });
    let err = net.add("escaping00001", &Netns::new()).err(102);
    assert!(
        err["msg"].as_str().unwrap().contains("/etc/uscni-escape"),
        "{err}"
    );
    assert!(!std::path::Path::new("/etc/uscni-escape").exists());
    assert_refused_cleanly(&net, "escaping00001");
}

#[test]
fn a_component_built_for_another_wit_version_is_refused_naming_the_versions() {
    let mut net = Network::memif(Ovs::shared());
    net.config["components"] = json!({ "naming": component::build("naming-future-wit") });
    let err = net.add("futurewit0001", &Netns::new()).err(102);
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains("userspace:cni@9.0.0") && msg.contains("userspace:cni@0.1.1"),
        "{err}"
    );
    assert_refused_cleanly(&net, "futurewit0001");
}

#[test]
fn a_naming_component_importing_ovsdb_is_refused_the_ungranted_capability() {
    let mut net = Network::memif(Ovs::shared());
    net.config["components"] = json!({ "naming": component::build("naming-wants-ovsdb") });
    let err = net.add("greedy0000001", &Netns::new()).err(102);
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains("capability `ovsdb`") && msg.contains("not grant"),
        "{err}"
    );
    assert_refused_cleanly(&net, "greedy0000001");
}

#[test]
fn a_wasi_component_reads_the_directory_granted_to_it_and_nothing_else() {
    let mut net = Network::memif(Ovs::shared());
    let site = net.dir("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("policy"), "siteA\n").unwrap();
    let snoop = component::build_wasip2("naming-reads-files");
    net.config["components"] = json!({
        "naming": {"source": snoop, "files": [{"path": site, "as": "/site"}]},
    });
    let id = "snooping00001";
    net.add(id, &Netns::new()).ok();
    // `siteA` read from the grant; /etc/passwd denied both ways.
    assert_eq!(net.ovs.ports(&net.bridge), vec!["siteA-dd".to_string()]);
    net.del(id).ok();
    net.assert_nothing_left(id);

    // Without the grant it cannot even read its policy: a clean error.
    net.config["components"] = json!({ "naming": snoop });
    let err = net.add(id, &Netns::new()).err(7);
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("cannot read /site/policy"),
        "{err}"
    );
    assert_refused_cleanly(&net, id);

    // And an operator may withhold WASI altogether.
    net.config["components"] = json!({ "naming": {"source": snoop, "grants": ["log"]} });
    let err = net.add(id, &Netns::new()).err(102);
    assert!(
        err["msg"].as_str().unwrap().contains("capability `wasi`"),
        "{err}"
    );
    assert_refused_cleanly(&net, id);
}

#[test]
fn the_engine_runs_with_least_privilege_and_is_refused_what_it_needs_but_lacks() {
    let mut net = Network::memif(Ovs::shared());
    // What the OVS-DPDK engine imports, and no more: it runs.
    net.config["components"] = json!({ "engine": {"grants": ["ovsdb", "journal", "log"]} });
    let ns = Netns::new();
    net.add("leastpriv0001", &ns).ok();
    net.del("leastpriv0001").ok();
    net.assert_nothing_left("leastpriv0001");

    net.config["components"] = json!({ "engine": {"grants": ["ovsdb", "journal"]} });
    let err = net.add("leastpriv0002", &ns).err(102);
    assert!(
        err["msg"].as_str().unwrap().contains("capability `log`"),
        "{err}"
    );
    assert_refused_cleanly(&net, "leastpriv0002");
}

#[test]
fn unknown_grants_and_component_names_are_config_errors() {
    let mut net = Network::memif(Ovs::shared());
    for (components, field) in [
        (
            json!({"naming": {"grants": ["network"]}}),
            "components.naming.grants",
        ),
        (json!({"naming": "no-such-policy"}), "components.naming"),
        (
            json!({"ipamChain": {"sha256": "abc"}}),
            "components.ipamChain.sha256",
        ),
        (
            json!({"engine": {"source": "vpp"}}),
            "components.engine.source",
        ),
        (json!({"naming": "../x"}), "components.naming"),
    ] {
        net.config["components"] = components;
        let err = net.add("badcomponent1", &Netns::new()).err(7);
        assert!(err["msg"].as_str().unwrap().contains(field), "{err}");
    }
    assert_refused_cleanly(&net, "badcomponent1");
}

/// Two host-local ranges, one per address family, each with its own store.
fn dual_stack(net: &mut Network, v6_subnet: &str) {
    net.config["ipam"] = json!([
        {"type": "host-local", "subnet": "10.79.0.0/24", "dataDir": net.dir("ipam-v4")},
        {"type": "host-local", "subnet": v6_subnet, "dataDir": net.dir("ipam-v6")},
    ]);
}

fn reservations(net: &Network, store: &str) -> Vec<String> {
    let mut files = integration_tests::list(&net.dir(store).join(&net.name));
    files.retain(|f| !f.starts_with("last_reserved_ip") && f != "lock");
    files
}

#[test]
fn an_ipam_chain_of_two_host_local_ranges_gives_a_dual_stack_result() {
    let mut net = Network::memif(Ovs::shared());
    dual_stack(&mut net, "fd00:79::/64");
    let ns = Netns::new();
    let result = net.add("dualstack0001", &ns).ok();
    let ips: Vec<&str> = result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["address"].as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 2, "{result}");
    assert!(
        ips[0].starts_with("10.79.0.") && ips[1].starts_with("fd00:79::"),
        "{ips:?}"
    );
    assert_eq!(result["ips"][1]["interface"], 0);
    assert_eq!(reservations(&net, "ipam-v4").len(), 1);
    assert_eq!(reservations(&net, "ipam-v6").len(), 1);

    net.check("dualstack0001", &ns, &result).ok();
    net.del("dualstack0001").ok();
    net.assert_nothing_left("dualstack0001");
    assert!(reservations(&net, "ipam-v4").is_empty());
    assert!(reservations(&net, "ipam-v6").is_empty());
}

#[test]
fn a_failing_second_ipam_plugin_releases_the_first() {
    let mut net = Network::memif(Ovs::shared());
    // A /127 has no address host-local can hand out.
    dual_stack(&mut net, "fd00:80::/127");
    let err = net.add("dualfail00001", &Netns::new()).err(101);
    assert!(err["msg"].as_str().unwrap().contains("host-local"), "{err}");
    assert!(
        reservations(&net, "ipam-v4").is_empty(),
        "the first range's address is released"
    );
    assert_refused_cleanly(&net, "dualfail00001");
}

/// The `ipam` grant is scoped to the plugin types the network config
/// names: an IPAM chain asking for another plugin in CNI_PATH (`static`
/// here; `host-device` would move a host interface) is refused before the
/// plugin runs, and nothing is left.
#[test]
fn an_ipam_chain_cannot_run_a_plugin_the_config_does_not_name() {
    let mut net = Network::memif(Ovs::shared());
    net.config["components"] = json!({"ipamChain": component::build("ipam-chain-rogue")});
    let err = net.add("ipamrogue0001", &Netns::new()).err(102);
    let msg = err["msg"].as_str().unwrap();
    assert!(
        msg.contains("ipam scope") && msg.contains("\"static\"") && msg.contains("host-local"),
        "{err}"
    );
    assert_refused_cleanly(&net, "ipamrogue0001");
}

/// A memory limit smaller than what a component needs to start is caught
/// at instantiation and reported as the memory limit (told by the error's
/// type, not wasmtime's wording), before anything on the host changes.
#[test]
fn a_memory_limit_below_what_a_component_starts_with_is_named() {
    let mut net = Network::memif(Ovs::shared());
    net.config["componentLimits"] = json!({"memoryMiB": 1});
    let err = net.add("tinymemory0001", &Netns::new()).err(102);
    let msg = err["msg"].as_str().unwrap();
    assert!(msg.contains("memory limit of 1048576 bytes"), "{err}");
    assert_refused_cleanly(&net, "tinymemory0001");
}

/// WIT 0.1.1 dropped `ipam` from the engine world as a patch version, so
/// that components built against 0.1.0 still load: the previous release's
/// built-in ovs-dpdk engine (kept as a fixture) ADDs, CHECKs and DELs.
#[test]
fn an_engine_built_against_wit_0_1_0_still_runs() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/engine-ovs-dpdk-wit-0.1.0.wasm");
    let bytes = std::fs::read(&fixture).unwrap();
    let import = b"userspace:cni/ovsdb@0.1.0";
    assert!(
        bytes.windows(import.len()).any(|w| w == import),
        "the fixture is a 0.1.0 component"
    );
    let mut net = Network::memif(Ovs::shared());
    net.config["host"]["engine"] = json!(fixture);
    let ns = Netns::new();
    let result = net.add("witzeroone0001", &ns).ok();
    assert!(net.ovs.bridge_exists(&net.bridge));
    net.check("witzeroone0001", &ns, &result).ok();
    net.del("witzeroone0001").ok();
    net.assert_nothing_left("witzeroone0001");
}
