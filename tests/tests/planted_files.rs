//! The plugin runs as root and writes into a directory containers can
//! write to: a symlink planted there must never make it touch anything
//! else.

use integration_tests::{Netns, Network, Ovs};

#[test]
fn a_shared_dir_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let net = Network::memif(Ovs::shared());
    let victim = net.dir("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let shared = net.dir("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let id = "plantedlink01";
    std::os::unix::fs::symlink(&victim, shared.join(&id[..12])).unwrap();

    let err = net.add(id, &Netns::new()).err(103);
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("symlink is not followed"),
        "{err}"
    );
    assert!(
        integration_tests::list(&victim).is_empty(),
        "nothing written through the link"
    );
    assert!(!net.ovs.bridge_exists(&net.bridge));
    std::fs::remove_file(shared.join(&id[..12])).unwrap();
    net.assert_nothing_left(id);
}

#[test]
fn symlinks_planted_at_the_data_and_socket_paths_are_replaced_not_followed() {
    let net = Network::vhostuser(Ovs::shared(), Some("client"));
    let id = "plantedfile01";
    let dir = net.dir("shared").join(&id[..12]);
    std::fs::create_dir_all(&dir).unwrap();
    let victim = net.dir("victim-file");
    std::fs::write(&victim, "precious").unwrap();
    let data = dir.join(format!("configData-{}-net1.json", &id[..12]));
    let socket = dir.join(format!("{}-net1", &id[..12]));
    std::os::unix::fs::symlink(&victim, &data).unwrap();
    std::os::unix::fs::symlink(&victim, &socket).unwrap();

    net.add(id, &Netns::new()).ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        !std::fs::symlink_metadata(&data)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the container data replaced the planted link"
    );
    net.del(id).ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // What ADD put in the dir goes, and the dir with it: it is the
    // container's own (`<base>/<cid12>`), empty, whoever made it.
    assert!(!dir.exists(), "{:?}", integration_tests::list(&dir));
    net.assert_nothing_left(id);
}

/// The component cache holds native code that wasmtime maps unchecked:
/// an artifact someone else could have written (another owner, a
/// group-writable file, a symlink) is never mapped; the call recompiles
/// from the component's bytes, says so in the log, and replaces it.
#[test]
fn a_planted_component_artifact_is_recompiled_not_mapped() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut net = Network::memif(Ovs::shared());
    // The cache is the node policy's: this network's own, in its state dir.
    net.own_policy(serde_json::json!({}));
    let log = net.dir("plugin.log");
    net.config["logFile"] = serde_json::json!(log);
    let ns = Netns::new();
    // A first call fills the cache.
    net.add("cachefill0001", &ns).ok();
    net.del("cachefill0001").ok();
    let cache = net.dir("state/cache");
    let artifacts: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert!(!artifacts.is_empty());
    type Plant = dyn Fn(&std::path::Path);
    let plant: [(&str, &Plant); 3] = [
        ("owned by uid 65534", &|p| {
            std::os::unix::fs::chown(p, Some(65534), None).unwrap()
        }),
        ("writable by others", &|p| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660)).unwrap()
        }),
        ("is a symlink", &|p| {
            let real = p.with_extension("real");
            std::fs::rename(p, &real).unwrap();
            std::os::unix::fs::symlink(&real, p).unwrap();
        }),
    ];
    for (i, (why, plant)) in plant.iter().enumerate() {
        for artifact in &artifacts {
            plant(artifact);
        }
        let id = format!("cacheplant{i:03}");
        std::fs::write(&log, "").unwrap();
        net.add(&id, &ns).ok();
        net.del(&id).ok();
        net.assert_nothing_left(&id);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("cached artifact not trusted") && text.contains(why),
            "{why}: {text}"
        );
        for artifact in &artifacts {
            let meta = std::fs::symlink_metadata(artifact).unwrap();
            assert!(meta.is_file(), "{why}: replaced by a regular file");
            assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600), "{why}");
        }
    }
}

/// An attachment record someone else could have written is not replayed:
/// DEL ignores it (and says so), and the file its journal names survives.
#[test]
fn a_planted_attachment_record_is_ignored() {
    let mut net = Network::memif(Ovs::shared());
    let log = net.dir("plugin.log");
    net.config["logFile"] = serde_json::json!(log);
    let victim = net.dir("victim.conf");
    std::fs::write(&victim, "keep me").unwrap();
    let id = "plantedrec001";
    let record_dir = net.dir("state/attachments").join(&net.name).join(id);
    std::fs::create_dir_all(&record_dir).unwrap();
    let record = record_dir.join("net1.json");
    let planted = serde_json::json!({
        "key": {"network": net.name, "container_id": id, "ifname": "net1"},
        "phase": "committed",
        "details": {"version": 2},
        "result": null,
        "journal": [{"description": "planted", "undo": {"kind": "remove-file", "path": victim}}]
    });
    std::fs::write(&record, planted.to_string()).unwrap();
    std::os::unix::fs::chown(&record, Some(65534), Some(65534)).unwrap();
    net.del(id).ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("attachment record not trusted") && text.contains("owned by uid 65534"),
        "{text}"
    );
}

/// A pod that plants a link to /dev/zero (or a FIFO) where its container
/// data goes cannot make the plugin read forever while it holds the
/// node's lock: the file is read without following links, capped, and
/// replaced.
#[test]
fn a_link_to_dev_zero_at_the_container_data_path_is_not_read() {
    let net = Network::memif(Ovs::shared());
    let id = "devzero000001";
    let dir = net.dir("shared").join(&id[..12]);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join(format!("configData-{}-net1.json", &id[..12]));
    std::os::unix::fs::symlink("/dev/zero", &data).unwrap();
    let started = std::time::Instant::now();
    let ns = Netns::new();
    net.add(id, &ns).ok();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        std::fs::symlink_metadata(&data).unwrap().is_file(),
        "replaced"
    );
    net.del(id).ok();
    // The container's own dir goes when empty, though the test made it.
    assert!(!dir.exists(), "{:?}", integration_tests::list(&dir));
    net.assert_nothing_left(id);
}

/// A link planted at `logFile` is refused by the node policy check (error
/// 7, nothing done); the file is also opened without following links, for
/// a link planted after that check.
#[test]
fn a_link_planted_at_the_log_file_is_not_followed() {
    let mut net = Network::memif(Ovs::shared());
    let victim = net.dir("victim.log");
    std::fs::write(&victim, "untouched").unwrap();
    let log = net.dir("plugin.log");
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    net.config["logFile"] = serde_json::json!(log);
    net.config["logLevel"] = serde_json::json!("debug");
    let id = "loglink000001";
    for run in [net.add(id, &Netns::new()), net.del(id)] {
        let err = run.err(7);
        let msg = err["msg"].as_str().unwrap();
        assert!(
            msg.starts_with("logFile: ") && msg.contains("is a symlink"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    net.assert_nothing_left(id);
}
