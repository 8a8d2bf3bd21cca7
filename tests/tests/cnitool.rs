//! The plugin driven by cnitool: libcni's own runtime (libcni 1.1.2, from
//! Debian's source package; `tests/support/cnitool/build.sh`), not ours.
//! libcni loads the conflist, injects `name` and `cniVersion`, caches the
//! ADD result and sends it back as `prevResult` on CHECK and DEL, and
//! parses every answer with its own types. ADD/CHECK/DEL of a conflist of
//! the plugin with host-local, at cniVersion 1.0.0 and 0.4.0, on the real
//! OVS-DPDK. (libcni 1.1 has no GC or STATUS; `conformance` sends those
//! as libcni 1.2 does.)

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{plugin_binary, test_policy, Netns, Network, Ovs, CNI_PATH, POLICY_ENV};
use serde_json::{json, Value};

fn cnitool() -> PathBuf {
    let dir = std::env::var_os("TOOLS_DIR")
        .map_or_else(|| PathBuf::from("/opt/userspace-cni-tools"), PathBuf::from);
    let path = dir.join("bin/cnitool");
    assert!(
        path.is_file(),
        "{} is missing: run tests/support/cnitool/build.sh (tests/run.sh does)",
        path.display()
    );
    path
}

/// `cnitool COMMAND NETWORK NETNS` with the conflists in `netconf_dir`:
/// (succeeded, stdout, stderr).
fn run(
    netconf_dir: &Path,
    cni_path: &str,
    command: &str,
    network: &str,
    netns: &Netns,
) -> (bool, String, String) {
    let out = Command::new(cnitool())
        .args([command, network, &netns.path()])
        .env("NETCONFPATH", netconf_dir)
        .env("CNI_PATH", cni_path)
        .env("CNI_IFNAME", "net1")
        .env(POLICY_ENV, test_policy())
        .output()
        .expect("run cnitool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cnitool_adds_checks_and_deletes_at_1_0_0_and_0_4_0() {
    for version in ["1.0.0", "0.4.0"] {
        let net = Network::memif(Ovs::shared());
        let netconf_dir = net.dir("net.d");
        let bin = net.dir("cni-bin");
        std::fs::create_dir_all(&netconf_dir).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(plugin_binary(), bin.join("userspace")).unwrap();
        let cni_path = format!("{}:{CNI_PATH}", bin.display());
        // A conflist as a runtime's config dir holds it: the plugin's
        // object without name or cniVersion (libcni injects them).
        let mut plugin = net.config.clone();
        let object = plugin.as_object_mut().unwrap();
        object.remove("name");
        object.remove("cniVersion");
        let conflist = json!({"cniVersion": version, "name": net.name, "plugins": [plugin]});
        std::fs::write(
            netconf_dir.join("10-userspace.conflist"),
            conflist.to_string(),
        )
        .unwrap();

        let ns = Netns::new();
        let (ok, stdout, stderr) = run(&netconf_dir, &cni_path, "add", &net.name, &ns);
        assert!(ok, "{version} add: {stdout}{stderr}");
        let result: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(result["cniVersion"], version, "{result}");
        assert_eq!(result["interfaces"][0]["name"], "net1", "{result}");
        assert_eq!(result["interfaces"][0]["sandbox"], ns.path(), "{result}");
        let ip = &result["ips"][0];
        assert!(
            ip["address"].as_str().unwrap().starts_with("10.77.0."),
            "{result}"
        );
        // 0.4.0 results carry each IP's version; 1.0.0 results do not.
        assert_eq!(ip.get("version").is_some(), version == "0.4.0", "{result}");
        let id = container_id(&ns);
        assert_eq!(net.ovs.rows_of_container("Port", &id).lines().count(), 1);

        let (ok, stdout, stderr) = run(&netconf_dir, &cni_path, "check", &net.name, &ns);
        assert!(ok, "{version} check: {stdout}{stderr}");

        // CHECK finds what was taken away behind the plugin's back.
        let port = net.ovs.rows_of_container("Port", &id);
        net.ovs.vsctl(&["del-port", &net.bridge, &port]);
        let (ok, stdout, stderr) = run(&netconf_dir, &cni_path, "check", &net.name, &ns);
        assert!(
            !ok && stderr.contains(&port),
            "{version} check after del-port: {stdout}{stderr}"
        );

        let (ok, stdout, stderr) = run(&netconf_dir, &cni_path, "del", &net.name, &ns);
        assert!(ok, "{version} del: {stdout}{stderr}");
        net.assert_nothing_left(&id);
        let cached = Path::new("/var/lib/cni/results").join(format!("{}-{id}-net1", net.name));
        assert!(!cached.exists(), "libcni's cache {} left", cached.display());
        let (ok, stdout, stderr) = run(&netconf_dir, &cni_path, "del", &net.name, &ns);
        assert!(ok, "{version} second del: {stdout}{stderr}");
    }
}

/// The container ID cnitool gives a netns: `cnitool-` and the first 10
/// bytes of the SHA-512 of its path, in hex.
fn container_id(netns: &Netns) -> String {
    let out = Command::new("sha512sum")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(netns.path().as_bytes())?;
            child.wait_with_output()
        })
        .expect("run sha512sum");
    format!("cnitool-{}", &String::from_utf8_lossy(&out.stdout)[..20])
}
