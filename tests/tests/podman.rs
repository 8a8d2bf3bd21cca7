//! A real container runtime: podman 4.3 (CNI backend, runc) runs two
//! containers from a local rootfs holding `userspace-app`, on a network of
//! this plugin with the OVS-DPDK engine; they ping each other over memif
//! through OVS, and `podman rm` leaves nothing on the host.
//!
//! podman runs inside a network namespace of the test's (as FIELD-NOTES
//! advise), with its own storage, run dir and network config dir.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{plugin_binary, Netns, Network, Ovs, CNI_PATH};
use serde_json::json;

/// podman with this test's private configuration, in the test's netns.
struct Podman {
    dir: PathBuf,
    netns: Netns,
    names: Vec<String>,
}

impl Podman {
    fn new(net: &Network) -> Podman {
        let dir = net.dir("podman");
        let plugins = dir.join("cni-bin");
        let net_d = dir.join("net.d");
        for d in [&plugins, &net_d] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The plugin under the test's node policy. Podman's own calls carry
        // our environment, but the DEL that conmon's exit command runs when
        // a container stops does not, so the policy is set where the
        // runtime finds the plugin, as an operator's wrapper would.
        let wrapper = plugins.join("userspace");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh
export {}={}
exec {} \"$@\"\n",
                integration_tests::POLICY_ENV,
                integration_tests::test_policy().display(),
                plugin_binary().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(
            Path::new(CNI_PATH).join("host-local"),
            plugins.join("host-local"),
        )
        .unwrap();
        let mut plugin = net.config.clone();
        let obj = plugin.as_object_mut().unwrap();
        obj.remove("cniVersion");
        obj.remove("name");
        let conflist = json!({"cniVersion": "1.0.0", "name": net.name, "plugins": [plugin]});
        std::fs::write(
            net_d.join(format!("{}.conflist", net.name)),
            conflist.to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                 [network]\nnetwork_backend = \"cni\"\ncni_plugin_dirs = [\"{}\"]\nnetwork_config_dir = \"{}\"\n\
                 [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
                plugins.display(),
                net_d.display()
            ),
        )
        .unwrap();
        Podman {
            dir,
            netns: Netns::new(),
            names: Vec::new(),
        }
    }

    /// Runs `podman args...`; panics with its output unless it succeeds.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.netns.path()))
            .arg("podman")
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(args)
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env(
                integration_tests::POLICY_ENV,
                integration_tests::test_policy(),
            )
            .output()
            .expect("run podman");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "podman {args:?} failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Starts a container running `userspace-app up` on `network`; returns its ID.
    fn start(&mut self, name: &str, rootfs: &Path, network: &str, shared: &Path) -> String {
        let volume = format!("{}:/shared", shared.display());
        let id = self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            "-v",
            &volume,
            "--rootfs",
            rootfs.to_str().unwrap(),
            "/bin/sh",
            "-c",
            // The control socket stays in the container: the shared dir is
            // the plugin's, and DEL never deletes files it did not make.
            "exec /userspace-app --dir /shared/$(hostname) --ctl /tmp/app.ctl up",
        ]);
        self.names.push(name.to_string());
        id.trim().to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("nsenter")
                .arg(format!("--net={}", self.netns.path()))
                .args(["podman", "--root"])
                .arg(self.dir.join("storage"))
                .arg("--runroot")
                .arg(self.dir.join("run"))
                .args(["rm", "-f", "-t", "0", name])
                .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
                .env(
                    integration_tests::POLICY_ENV,
                    integration_tests::test_policy(),
                )
                .output();
        }
        // podman's overlay driver bind-mounts its storage dir on itself and
        // leaves it mounted; the temp dir could not go otherwise.
        let overlay = self.dir.join("storage/overlay");
        let _ = rustix::mount::unmount(&overlay, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn two_podman_containers_ping_over_memif_and_podman_rm_leaves_nothing() {
    let mut net = Network::memif(Ovs::shared());
    // The plugin's own account of each call, shown if something is left.
    let log = net.dir("plugin.log");
    net.config["logFile"] = json!(log);
    net.config["logLevel"] = json!("debug");
    let shared = net.dir("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let mut podman = Podman::new(&net);
    let rootfs = integration_tests::app_rootfs(&podman.dir);

    let first = podman.start("uscni-c1", &rootfs, &net.name, &shared);
    let second = podman.start("uscni-c2", &rootfs, &net.name, &shared);
    let address = integration_tests::first_address(
        &integration_tests::container_data(&shared, &first)["ipResult"],
    );
    assert_eq!(
        net.ovs.ports(&net.bridge).len(),
        2,
        "one OVS port per container"
    );

    let app = |id: &str, args: &[&str]| {
        let dir = format!("/shared/{}", &id[..12]);
        let mut full = vec![
            "exec",
            id,
            "/userspace-app",
            "--dir",
            &dir,
            "--ctl",
            "/tmp/app.ctl",
        ];
        full.extend_from_slice(args);
        podman.run(&full)
    };
    app(&first, &["wait"]);
    app(&second, &["wait"]);
    let ping = app(&second, &["ping", &address, "--count", "5"]);
    assert!(ping.contains("5 packets transmitted, 5 received"), "{ping}");

    podman.run(&["rm", "-f", "-t", "0", "uscni-c1", "uscni-c2"]);
    podman.names.clear();
    let records = net.dir("state/attachments").join(&net.name);
    if !integration_tests::list(&records).is_empty() {
        eprintln!(
            "records left after podman rm; the plugin's log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    for id in [&first, &second] {
        net.assert_nothing_left(id);
    }
    assert!(
        !net.ovs.bridge_exists(&net.bridge),
        "the bridge the plugin made is gone"
    );
    assert!(
        integration_tests::list(&shared).is_empty(),
        "{:?}",
        integration_tests::list(&shared)
    );
}
