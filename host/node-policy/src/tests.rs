use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn rooted(root: &Path) -> NodePolicy {
    NodePolicy {
        source: "test".into(),
        ..NodePolicy::everything_under(root)
    }
}

fn tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o755);
    let root = tmp.path().join("allowed");
    std::fs::create_dir(&root).unwrap();
    (tmp, root)
}

#[test]
fn the_defaults_survive_their_own_file_form() {
    let text = NodePolicy::default().to_json_pretty();
    let parsed = NodePolicy::parse(&text, "round trip").unwrap();
    assert_eq!(
        NodePolicy {
            source: "round trip".into(),
            ..NodePolicy::default()
        },
        parsed
    );
}

#[test]
fn a_partial_policy_takes_the_defaults_for_the_rest() {
    let p = NodePolicy::parse(r#"{"stateDir": "/srv/cni"}"#, "p").unwrap();
    assert_eq!(p.state_dir, Path::new("/srv/cni"));
    assert_eq!(p.kubelet_dirs, NodePolicy::default().kubelet_dirs);
}

#[test]
fn a_typo_or_a_relative_root_or_an_unknown_grant_is_refused() {
    for (text, expect) in [
        (r#"{"stateDirs": "/x"}"#, "unknown field"),
        (r#"{"logDirs": ["var/log"]}"#, "logDirs"),
        (r#"{"sharedDirRoots": ["/a/../etc"]}"#, "sharedDirRoots"),
        (r#"{"grants": ["root"]}"#, "grants"),
        (r#"{"scopes": {"my-engine": {}}}"#, "not a sha256"),
        (
            r#"{"scopes": {"0000000000000000000000000000000000000000000000000000000000000000": {"tables": {}}}}"#,
            "unknown field",
        ),
        ("42", "invalid type"),
    ] {
        let err = NodePolicy::parse(text, "p").unwrap_err().to_string();
        assert!(err.contains(expect), "{text}: {err}");
    }
}

#[test]
fn a_scope_widening_is_found_by_the_pin_only() {
    let sha = "ab".repeat(32);
    let text =
        format!(r#"{{"scopes": {{"{sha}": {{"vppMessages": ["sw_interface_set_rx_mode"]}}}}}}"#);
    let p = NodePolicy::parse(&text, "p").unwrap();
    let wider = p.scope_widening(Some(&sha.to_uppercase())).unwrap();
    assert_eq!(wider.vpp_messages, ["sw_interface_set_rx_mode"]);
    assert!(p.scope_widening(None).is_none());
    assert!(p.scope_widening(Some(&"cd".repeat(32))).is_none());
}

#[test]
fn a_path_inside_a_root_passes_whether_or_not_it_exists() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    std::fs::create_dir(root.join("state")).unwrap();
    for value in [root.join("state"), root.join("new/deeper"), root.clone()] {
        policy
            .check("stateDir", value.to_str().unwrap(), Rule::StateDir)
            .unwrap();
    }
}

#[test]
fn a_path_outside_every_root_is_refused_naming_field_key_and_source() {
    let (tmp, root) = tree();
    let policy = rooted(&root);
    let outside = tmp.path().join("elsewhere");
    let err = policy
        .check("sharedDir", outside.to_str().unwrap(), Rule::SharedDir)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("sharedDir: "), "{text}");
    assert!(text.contains("outside the allowed roots"), "{text}");
    assert!(
        text.contains("node policy (test) allows sharedDirRoots"),
        "{text}"
    );
}

#[test]
fn dot_dot_over_long_and_relative_paths_are_refused_before_the_disk() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let long = format!("{}/{}", root.display(), "a".repeat(MAX_PATH_FOR_TESTS));
    for value in [
        format!("{}/../../etc", root.display()),
        format!("{}/./x", root.display()),
        "relative/dir".to_string(),
        long,
    ] {
        assert!(
            policy.check("stateDir", &value, Rule::StateDir).is_err(),
            "{value} passed"
        );
    }
}

const MAX_PATH_FOR_TESTS: usize = confine::MAX_PATH;

#[test]
fn a_symlink_out_of_a_root_is_refused_at_its_end_and_on_the_way() {
    let (tmp, root) = tree();
    let policy = rooted(&root);
    let target = tmp.path().join("secret");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, root.join("link")).unwrap();
    let at_end = policy
        .check(
            "sharedDir",
            root.join("link").to_str().unwrap(),
            Rule::SharedDir,
        )
        .unwrap_err();
    assert_eq!(at_end.why, "is a symlink");
    let through = policy
        .check(
            "sharedDir",
            root.join("link/below").to_str().unwrap(),
            Rule::SharedDir,
        )
        .unwrap_err();
    assert!(through.why.contains("outside"), "{through}");
}

#[test]
fn a_root_reached_through_a_symlink_still_counts() {
    // /var/run is a link to /run on Debian: the policy may say either.
    let (tmp, root) = tree();
    let alias = tmp.path().join("alias");
    std::os::unix::fs::symlink(&root, &alias).unwrap();
    let policy = rooted(&alias);
    policy
        .check(
            "sharedDir",
            root.join("x").to_str().unwrap(),
            Rule::SharedDir,
        )
        .unwrap();
    policy
        .check(
            "sharedDir",
            alias.join("x").to_str().unwrap(),
            Rule::SharedDir,
        )
        .unwrap();
}

#[test]
fn a_directory_others_can_write_is_refused_and_so_is_what_lies_below() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let open = root.join("open");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    for value in [open.clone(), open.join("below")] {
        let err = policy
            .check("stateDir", value.to_str().unwrap(), Rule::StateDir)
            .unwrap_err();
        assert!(err.why.contains("writable by others"), "{err}");
    }
}

#[test]
fn a_pod_volume_may_be_writable_but_the_way_to_it_may_not() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let volume = root.join("pod-volume");
    std::fs::create_dir(&volume).unwrap();
    chmod(&volume, 0o777);
    policy
        .check("hostPath", volume.to_str().unwrap(), Rule::PodVolume)
        .unwrap();
    let below = volume.join("inner");
    std::fs::create_dir(&below).unwrap();
    assert!(policy
        .check("hostPath", below.to_str().unwrap(), Rule::PodVolume)
        .is_err());
}

#[test]
fn files_read_or_written_as_root_must_be_regular_and_roots_alone() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let file = root.join("kubeconfig");
    std::fs::write(&file, "x").unwrap();
    chmod(&file, 0o600);
    policy
        .check("kubeconfig", file.to_str().unwrap(), Rule::Kubeconfig)
        .unwrap();
    chmod(&file, 0o666);
    let err = policy
        .check("kubeconfig", file.to_str().unwrap(), Rule::Kubeconfig)
        .unwrap_err();
    assert!(err.why.contains("writable by others"), "{err}");
    chmod(&file, 0o644);
    std::fs::hard_link(&file, root.join("second-name")).unwrap();
    let err = policy
        .check("logFile", file.to_str().unwrap(), Rule::LogFile)
        .unwrap_err();
    assert!(err.why.contains("hard links"), "{err}");
    let err = policy
        .check("logFile", root.to_str().unwrap(), Rule::LogFile)
        .unwrap_err();
    assert!(err.why.contains("not a regular file"), "{err}");
}

#[test]
fn a_socket_path_must_be_a_socket_when_it_exists() {
    let (_tmp, root) = tree();
    let policy = NodePolicy {
        ovs_db_sockets: vec![root.join("**")],
        ..rooted(&root)
    };
    let plain = root.join("db.sock");
    std::fs::write(&plain, "").unwrap();
    let err = policy
        .check(
            "host.ovs.dbSocket",
            plain.to_str().unwrap(),
            Rule::OvsDbSocket,
        )
        .unwrap_err();
    assert!(err.why.contains("not a socket"), "{err}");
    let real = root.join("real.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&real).unwrap();
    policy
        .check(
            "host.ovs.dbSocket",
            real.to_str().unwrap(),
            Rule::OvsDbSocket,
        )
        .unwrap();
}

#[test]
fn an_empty_list_allows_nothing() {
    let (_tmp, root) = tree();
    let policy = NodePolicy {
        component_file_roots: Vec::new(),
        ..rooted(&root)
    };
    let err = policy
        .check(
            "components.engine.files[0].path",
            root.to_str().unwrap(),
            Rule::ComponentFiles,
        )
        .unwrap_err();
    assert!(err.why.contains("empty"), "{err}");
}

#[test]
fn a_policy_file_someone_else_could_write_is_not_used() {
    let (_tmp, root) = tree();
    let file = root.join("policy.json");
    std::fs::write(&file, "{}").unwrap();
    chmod(&file, 0o644);
    let loaded = NodePolicy::load_from(&file, true).unwrap();
    assert_eq!(loaded.source, file.display().to_string());
    chmod(&file, 0o666);
    assert!(matches!(
        NodePolicy::load_from(&file, true),
        Err(Error::Untrusted(..))
    ));
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(
        NodePolicy::load_from(&file, true),
        Err(Error::Missing(_))
    ));
    let defaults = NodePolicy::load_from(&file, false).unwrap();
    assert!(
        defaults.source.contains("built-in defaults"),
        "{}",
        defaults.source
    );
}

#[test]
fn sockets_and_the_kubelet_dir_are_named_exactly_unless_the_entry_ends_in_stars() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let below = root.join("pods/x");
    let err = policy
        .check(
            "kubernetes.kubeletDir",
            below.to_str().unwrap(),
            Rule::KubeletDir,
        )
        .unwrap_err();
    assert!(err.why.contains("not one of those allowed"), "{err}");
    policy
        .check(
            "kubernetes.kubeletDir",
            root.to_str().unwrap(),
            Rule::KubeletDir,
        )
        .unwrap();
    let starred = NodePolicy {
        kubelet_dirs: vec![root.join("**")],
        ..rooted(&root)
    };
    starred
        .check(
            "kubernetes.kubeletDir",
            below.to_str().unwrap(),
            Rule::KubeletDir,
        )
        .unwrap();
}

#[test]
fn a_pod_volume_may_not_be_a_root_itself() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let err = policy
        .check("hostPath", root.to_str().unwrap(), Rule::PodVolume)
        .unwrap_err();
    assert!(err.why.contains("strictly below"), "{err}");
}

#[test]
fn nothing_is_made_where_others_could_make_it_first() {
    let (_tmp, root) = tree();
    let policy = rooted(&root);
    let open = root.join("sticky");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o1777);
    // An existing dir in a sticky dir is judged by its owner; a new one
    // would be made where anyone can plant a link first.
    let err = policy
        .check(
            "stateDir",
            open.join("new").to_str().unwrap(),
            Rule::StateDir,
        )
        .unwrap_err();
    assert!(err.why.contains("writable by others"), "{err}");
}

#[test]
fn a_trailing_slash_does_not_hide_a_symlink() {
    let (tmp, root) = tree();
    let policy = rooted(&root);
    let inside = root.join("real");
    std::fs::create_dir(&inside).unwrap();
    std::os::unix::fs::symlink(&inside, root.join("link")).unwrap();
    let _ = tmp;
    let err = policy
        .check(
            "sharedDir",
            &format!("{}/link/", root.display()),
            Rule::SharedDir,
        )
        .unwrap_err();
    assert_eq!(err.why, "is a symlink");
}

#[test]
fn replayed_removals_stay_below_a_root_and_follow_no_link() {
    let (tmp, root) = tree();
    let policy = rooted(&root);
    let outside = tmp.path().join("victim");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("file"), "keep").unwrap();
    // A dir swapped for a link to the victim since ADD.
    std::os::unix::fs::symlink(&outside, root.join("swapped")).unwrap();
    let err = policy
        .remove_beneath(&format!("{}/swapped/file", root.display()), What::File)
        .unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    let err = policy
        .remove_beneath(&outside.join("file").display().to_string(), What::File)
        .unwrap_err();
    assert!(err.contains("outside every root"), "{err}");
    assert!(outside.join("file").exists());
    // What is really below is removed; gone already is done.
    std::fs::create_dir(root.join("dir")).unwrap();
    std::fs::write(root.join("dir/file"), "").unwrap();
    let file = format!("{}/dir/file", root.display());
    policy.remove_beneath(&file, What::File).unwrap();
    policy.remove_beneath(&file, What::File).unwrap();
    policy
        .remove_beneath(&format!("{}/dir", root.display()), What::EmptyDir)
        .unwrap();
    assert!(!root.join("dir").exists());
}

#[test]
fn vswitch_sockets_are_told_apart() {
    let policy = NodePolicy::default();
    assert!(policy.is_vswitch_socket("/run/openvswitch/db.sock"));
    assert!(!policy.is_vswitch_socket("/run/openvswitch/vhu1"));
    assert!(policy.is_socket_mount("/var/lib/vhost_sockets/abc-net1"));
    assert!(!policy.is_socket_mount("/var/lib/vhost_sockets/a/b"));
    assert!(policy.allows_ipam("host-local") && !policy.allows_ipam("host-device"));
}

#[test]
fn an_exactly_named_socket_is_trusted_in_its_services_own_dir() {
    // VPP's /run/vpp may be group-writable by the vpp group: the operator
    // named the socket itself, so that dir is not held against it.
    let (_tmp, root) = tree();
    let dir = root.join("vpp");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o770);
    let socket = dir.join("api.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let exact = NodePolicy {
        vpp_api_sockets: vec![socket.clone()],
        ..rooted(&root)
    };
    exact
        .check(
            "host.vpp.apiSocket",
            socket.to_str().unwrap(),
            Rule::VppApiSocket,
        )
        .unwrap();
    let starred = NodePolicy {
        vpp_api_sockets: vec![root.join("**")],
        ..rooted(&root)
    };
    let err = starred
        .check(
            "host.vpp.apiSocket",
            socket.to_str().unwrap(),
            Rule::VppApiSocket,
        )
        .unwrap_err();
    assert!(err.why.contains("writable by others"), "{err}");
}

#[test]
fn an_exactly_named_socket_may_be_missing_in_its_services_dir() {
    // VPP stopped: its socket is gone, its group-writable dir stays; the
    // call gets to say VPP is unreachable instead of a policy error.
    let (_tmp, root) = tree();
    let dir = root.join("vpp");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o770);
    let socket = dir.join("api.sock");
    let policy = NodePolicy {
        vpp_api_sockets: vec![socket.clone()],
        ..rooted(&root)
    };
    policy
        .check(
            "host.vpp.apiSocket",
            socket.to_str().unwrap(),
            Rule::VppApiSocket,
        )
        .unwrap();
}
