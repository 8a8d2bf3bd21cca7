//! Test harness: a private OVS-DPDK per test binary, the plugin run as a
//! runtime runs it, throwaway network namespaces, and the checks that
//! nothing of an attachment is left behind.
//!
//! These tests need root, hugepages, Debian's openvswitch-switch-dpdk and
//! containernetworking-plugins (see .ci/setup). They fail, loudly, when
//! those are missing: they are never skipped.

pub mod app;
pub mod component;
pub mod iperf3;
pub mod kube_api;
pub mod testpmd;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The plugin binary under test (`cargo build --release` builds it).
pub fn plugin_binary() -> PathBuf {
    let path = workspace().join("target/release/userspace");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release` first (tests/run.sh does)",
        path.display()
    );
    path
}

/// The plugin with its crash points armed: the `userspace-crash-points`
/// binary, which only tests/run.sh builds (the shipped binary ignores
/// `USERSPACE_CRASH_AT`).
pub fn crash_points_binary() -> PathBuf {
    let path = workspace().join("target/release/userspace-crash-points");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release --locked -p userspace --features \
         crash-points --bin userspace-crash-points` first (tests/run.sh does)",
        path.display()
    );
    path
}

/// The CPUs the memif peers the tests start may use: all but the last,
/// which the harness's ovs-vswitchd gives its PMD thread alone
/// (`tests/support/ovs-dpdk.sh`). A peer that ran there would preempt the
/// PMD thread mid-poll, and DPDK 22.11's memif server crashes when the
/// peer's disconnect unmaps a ring it is reading then (README, "memif and
/// DPDK 22.11's server"); a node gives its PMD threads cores of their own.
pub fn off_pmd_cpus() -> String {
    // Counted once, before `keep_off_pmd_cpu` narrows this process.
    static CPUS: OnceLock<usize> = OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    assert!(
        cpus >= 2,
        "the tests need 2 CPUs: one for OVS's PMD thread alone"
    );
    format!("0-{}", cpus - 2)
}

/// Moves this whole process (every thread) to [`off_pmd_cpus`], for a
/// process whose own threads are memif peers; threads it starts later
/// inherit that. Call it after [`Ovs::shared`], whose ovs-vswitchd needs
/// all CPUs.
pub fn keep_off_pmd_cpu() {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &off_pmd_cpus(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .expect("run taskset");
    assert!(status.success(), "taskset: {status}");
}

/// The container app binary under test.
pub fn app_binary() -> PathBuf {
    let path = workspace().join("target/release/userspace-app");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release` first",
        path.display()
    );
    path
}

pub const CNI_PATH: &str = "/usr/lib/cni";

/// The node policy every test's plugin runs under unless it brings its
/// own: `tests/fixtures/node-policy-tests.json` (every path allowed, the
/// ownership and no-symlink rules still holding; the state dir
/// [`TEST_STATE_ROOT`]; unpinned components allowed), copied into
/// [`TEST_STATE_ROOT`] so that its trust does not hang on how the
/// checkout's dirs were made. The hostile-config tests run a strict one.
pub fn test_policy() -> PathBuf {
    static POLICY: OnceLock<PathBuf> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let fixture = workspace().join("tests/fixtures/node-policy-tests.json");
            let path = test_state_root().join("policy.json");
            let tmp = test_state_root().join(format!(".policy.json.{}", std::process::id()));
            std::fs::copy(&fixture, &tmp).unwrap();
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            path
        })
        .clone()
}

/// [`TEST_STATE_ROOT`], made root's and 0755 whatever the umask.
fn test_state_root() -> &'static Path {
    let root = Path::new(TEST_STATE_ROOT);
    std::fs::create_dir_all(root).unwrap();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// The test policy's state dir: a config's `stateDir` must lie in it.
pub const TEST_STATE_ROOT: &str = "/tmp/userspace-cni-tests";

/// The variable that points the plugin at a node policy.
pub const POLICY_ENV: &str = "USERSPACE_CNI_POLICY";

/// A throwaway dir inside [`TEST_STATE_ROOT`], where a config's `stateDir`
/// may be (with its shared and IPAM dirs beside it).
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("uscni-")
        .tempdir_in(test_state_root())
        .unwrap()
}

/// Writes a node policy into `dir`: the test policy with `changes` merged
/// over it. Returns its path, for [`POLICY_ENV`].
pub fn write_policy(dir: &Path, changes: Value) -> PathBuf {
    let mut policy: Value = serde_json::from_slice(&std::fs::read(test_policy()).unwrap()).unwrap();
    for (key, value) in changes.as_object().expect("policy changes are an object") {
        policy[key] = value.clone();
    }
    let path = dir.join("policy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

/// Fails the test unless it runs as root with OVS-DPDK and host-local installed.
pub fn require_environment() {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "these tests need root"
    );
    for tool in [
        "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk",
        "/usr/sbin/ovsdb-server",
        "/usr/bin/ovs-vsctl",
        "/usr/lib/cni/host-local",
    ] {
        assert!(Path::new(tool).exists(), "{tool} is missing: run .ci/setup");
    }
}

/// A private OVS-DPDK (ovsdb-server + ovs-vswitchd) in a temp dir, stopped
/// when the test process exits.
pub struct Ovs {
    pub dir: PathBuf,
    _guard: Child,
}

impl Ovs {
    /// The OVS shared by every test of this test binary.
    pub fn shared() -> &'static Ovs {
        static OVS: OnceLock<Ovs> = OnceLock::new();
        OVS.get_or_init(Ovs::start)
    }

    fn start() -> Ovs {
        require_environment();
        let dir = tempfile::Builder::new()
            .prefix("ovs-")
            .tempdir()
            .unwrap()
            .keep();
        script("start", &dir);
        let guard = stop_guard(&support_script(), &dir);
        Ovs { dir, _guard: guard }
    }

    pub fn db_socket(&self) -> String {
        format!("unix:{}/db.sock", self.dir.display())
    }

    /// `ovs-vsctl` against this OVS (for assertions and set-up only).
    pub fn vsctl(&self, args: &[&str]) -> String {
        let out = Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.db_socket()))
            .arg("--timeout=20")
            .args(args)
            .output()
            .expect("run ovs-vsctl");
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Creates a bridge the way an operator would (not marked as ours).
    pub fn add_netdev_bridge(&self, bridge: &str) {
        self.vsctl(&[
            "add-br",
            bridge,
            "--",
            "set",
            "Bridge",
            bridge,
            "datapath_type=netdev",
        ]);
    }

    /// A static MAC table entry: frames to `mac` on `bridge` go to
    /// `port` (for a receiver that sends nothing OVS could learn from).
    pub fn fdb_add(&self, bridge: &str, port: &str, mac: &str) {
        let out = Command::new("ovs-appctl")
            .arg("-t")
            .arg(self.dir.join("vswitchd.ctl"))
            .args(["fdb/add", bridge, port, "0", mac])
            .output()
            .expect("run ovs-appctl");
        assert!(out.status.success(), "fdb/add: {out:?}");
    }

    /// Adds vhost-user port `port` to `bridge` as an operator (or the Go
    /// plugin) does with ovs-vsctl: OVS the client of the server socket at
    /// `server_path`.
    pub fn add_vhost_user_client_port(&self, bridge: &str, port: &str, server_path: &Path) {
        self.vsctl(&[
            "add-port",
            bridge,
            port,
            "--",
            "set",
            "Interface",
            port,
            "type=dpdkvhostuserclient",
            &format!("options:vhost-server-path={}", server_path.display()),
        ]);
    }

    /// The whole database, for byte-for-byte comparisons.
    pub fn dump(&self) -> String {
        let out = Command::new("ovsdb-client")
            .args(["dump", &self.db_socket(), "Open_vSwitch"])
            .output()
            .expect("run ovsdb-client dump");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Names of the ports on `bridge` (empty when the bridge is absent).
    pub fn ports(&self, bridge: &str) -> Vec<String> {
        if !self.bridge_exists(bridge) {
            return Vec::new();
        }
        self.vsctl(&["list-ports", bridge])
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn bridge_exists(&self, bridge: &str) -> bool {
        self.vsctl(&["list-br"]).lines().any(|b| b == bridge)
    }

    /// Rows of `table` whose external_ids name this container.
    pub fn rows_of_container(&self, table: &str, container_id: &str) -> String {
        self.vsctl(&[
            "--bare",
            "--columns=name",
            "find",
            table,
            &format!("external_ids:userspace-cni-container-id={container_id}"),
        ])
    }

    pub fn run_script(&self, command: &str) {
        script(command, &self.dir);
    }
}

fn support_script() -> PathBuf {
    workspace().join("tests/support/ovs-dpdk.sh")
}

fn script(command: &str, dir: &Path) {
    let out = Command::new(support_script())
        .arg(command)
        .arg(dir)
        .output()
        .expect("run ovs-dpdk.sh");
    assert!(
        out.status.success(),
        "ovs-dpdk.sh {command} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `SCRIPT stop DIR` and removes DIR once this process is gone,
/// however it ends: the guard's stdin is our end of a pipe, and its `read`
/// returns when we exit and the pipe closes. It has a process group of
/// its own, so a signal to ours (`timeout`, a CI runner stopping the job)
/// does not take it along and leave the daemons running.
pub fn stop_guard(script: &Path, dir: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "read _; {} stop {} >/dev/null 2>&1; rm -rf {}",
            script.display(),
            dir.display(),
            dir.display()
        ))
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start a stop guard")
}

/// A network namespace that lives as long as this value.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "uscni-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
        Netns { name }
    }

    /// `program` run in this namespace as a memif peer runs: off the PMD
    /// thread's CPU (`taskset -c OFF ip netns exec NAME PROGRAM`; see
    /// [`off_pmd_cpus`]).
    pub fn memif_peer(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("taskset");
        command
            .args(["-c", &off_pmd_cpus(), "ip", "netns", "exec", &self.name])
            .arg(program);
        command
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// What the plugin printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON (panics with the whole output if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts success and returns stdout as JSON (or Null when empty).
    pub fn ok(&self) -> Value {
        assert!(
            self.success,
            "plugin failed: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        if self.stdout.trim().is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts a CNI error with `code` and returns it.
    pub fn err(&self, code: u64) -> Value {
        assert!(
            !self.success,
            "plugin succeeded where it should fail: {}",
            self.stdout
        );
        let v = self.json();
        assert_eq!(v["code"], code, "wrong code: {v}\nstderr: {}", self.stderr);
        assert!(
            v["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "no msg: {v}"
        );
        v
    }
}

/// Runs the plugin with `env` (CNI_* variables) and `stdin`, nothing else
/// inherited but PATH.
pub fn run_plugin(env: &[(&str, &str)], stdin: &[u8]) -> Run {
    run_binary(&plugin_binary(), env, stdin)
}

fn run_binary(binary: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Run {
    let mut child = Command::new(binary)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env(POLICY_ENV, test_policy())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the plugin");
    let mut pipe = child.stdin.take().unwrap();
    let _ = pipe.write_all(stdin);
    drop(pipe);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        success: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The engine the OVS-DPDK tests run: the built-in one, or with
/// `USERSPACE_TEST_ENGINE=tenant-vlans` the SDK example (the same tests
/// prove a vendor's engine built on the SDK).
fn engine_under_test() -> Option<String> {
    static ENGINE: OnceLock<Option<String>> = OnceLock::new();
    ENGINE
        .get_or_init(
            || match std::env::var("USERSPACE_TEST_ENGINE").ok()?.as_str() {
                "tenant-vlans" => Some(
                    component::build_sdk_example("tenant-vlans")
                        .display()
                        .to_string(),
                ),
                other => {
                    panic!("USERSPACE_TEST_ENGINE={other}: the only SDK example is tenant-vlans")
                }
            },
        )
        .clone()
}

/// Runs the plugin as a runtime does: `command` for container `id` /
/// `ifname` in `netns`, the network config on stdin, and `extra`
/// variables (CNI_ARGS, ...) besides the CNI ones.
pub fn cni_call(
    command: &str,
    id: &str,
    ifname: &str,
    netns: &str,
    stdin: &[u8],
    extra: &[(&str, &str)],
) -> Run {
    let env = cni_env(command, id, ifname, netns, extra);
    run_plugin(&env, stdin)
}

/// [`cni_call`] with the crash-points build, which kills itself at its
/// `n`-th crash point (`USERSPACE_CRASH_AT=n`).
pub fn cni_call_crashing_at(
    n: usize,
    command: &str,
    id: &str,
    ifname: &str,
    netns: &str,
    stdin: &[u8],
    extra: &[(&str, &str)],
) -> Run {
    let n = n.to_string();
    let mut env = cni_env(command, id, ifname, netns, extra);
    env.push(("USERSPACE_CRASH_AT", &n));
    run_binary(&crash_points_binary(), &env, stdin)
}

fn cni_env<'a>(
    command: &'a str,
    id: &'a str,
    ifname: &'a str,
    netns: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", id),
        ("CNI_IFNAME", ifname),
        ("CNI_NETNS", netns),
        ("CNI_PATH", CNI_PATH),
    ];
    env.extend_from_slice(extra);
    env
}

/// A network of the plugin's with its own bridge, state, shared and IPAM
/// data dirs, on the shared OVS.
pub struct Network {
    pub ovs: &'static Ovs,
    pub name: String,
    pub bridge: String,
    pub dirs: tempfile::TempDir,
    pub config: Value,
    /// A node policy of this network's own (else [`test_policy`]).
    pub policy: Option<PathBuf>,
}

impl Network {
    /// A memif network (host master on a bridge, host-local IPAM) with a
    /// unique name and bridge.
    pub fn memif(ovs: &'static Ovs) -> Network {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("net-{}-{n}", std::process::id());
        let bridge = format!("brt{}x{n}", std::process::id() % 100000);
        let dirs = scratch_dir();
        let d = dirs.path().display().to_string();
        let config = json!({
            "cniVersion": "1.0.0",
            "type": "userspace",
            "name": name,
            "stateDir": format!("{d}/state"),
            "sharedDir": format!("{d}/shared"),
            "host": {
                "engine": "ovs-dpdk", "iftype": "memif", "netType": "bridge",
                "memif": {"role": "master", "mode": "ethernet"},
                "bridge": {"bridgeName": bridge},
                "ovs": {"dbSocket": ovs.db_socket(), "vhostSockDir": ovs.dir.display().to_string()}
            },
            "container": {"engine": "ovs-dpdk", "iftype": "memif", "netType": "interface",
                          "memif": {"role": "slave", "mode": "ethernet"}},
            "ipam": {"type": "host-local", "subnet": "10.77.0.0/24",
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": format!("{d}/ipam")}
        });
        let mut net = Network {
            ovs,
            name,
            bridge,
            dirs,
            config,
            policy: None,
        };
        if let Some(engine) = engine_under_test() {
            net.config["host"]["engine"] = json!(engine);
        }
        net
    }

    /// The same network with `pairs` memif queue pairs per port
    /// (`host.memif.rxQueues`/`txQueues`), as a DPDK app on OVS needs.
    pub fn with_memif_queue_pairs(mut self, pairs: u32) -> Network {
        self.config["host"]["memif"]["rxQueues"] = json!(pairs);
        self.config["host"]["memif"]["txQueues"] = json!(pairs);
        self
    }

    /// The same network with vhost-user; `mode` is the host (OVS) side's.
    pub fn vhostuser(ovs: &'static Ovs, mode: Option<&str>) -> Network {
        let mut net = Network::memif(ovs);
        net.config["host"]["iftype"] = json!("vhostuser");
        net.config["container"]["iftype"] = json!("vhostuser");
        net.config["host"]["vhost"] = match mode {
            Some(m) => json!({"mode": m}),
            None => json!({}),
        };
        net
    }

    pub fn dir(&self, sub: &str) -> PathBuf {
        self.dirs.path().join(sub)
    }

    pub fn stdin(&self) -> Vec<u8> {
        self.config.to_string().into_bytes()
    }

    /// Runs `command` for container `id` / `ifname` in `netns`.
    pub fn call(&self, command: &str, id: &str, ifname: &str, netns: &str, stdin: &[u8]) -> Run {
        cni_call(command, id, ifname, netns, stdin, &self.policy_env())
    }

    /// The policy variable when this network has a policy of its own.
    pub fn policy_env(&self) -> Vec<(&str, &str)> {
        self.policy
            .iter()
            .map(|p| (POLICY_ENV, p.to_str().unwrap()))
            .collect()
    }

    /// Gives this network a node policy of its own: the test policy with
    /// `changes`, its state dir this network's `state` dir (so its
    /// component cache is `state/cache`).
    pub fn own_policy(&mut self, changes: Value) {
        let mut all = json!({"stateDir": self.dir("state")});
        for (key, value) in changes.as_object().unwrap() {
            all[key] = value.clone();
        }
        self.policy = Some(write_policy(self.dirs.path(), all));
    }

    pub fn add(&self, id: &str, netns: &Netns) -> Run {
        self.call("ADD", id, "net1", &netns.path(), &self.stdin())
    }

    /// ADD with `CNI_ARGS` (pod identity, `IgnoreUnknown`, ...).
    pub fn add_with_args(&self, id: &str, netns: &Netns, args: &str) -> Run {
        let stdin = self.stdin();
        let mut extra = vec![("CNI_ARGS", args)];
        extra.extend(self.policy_env());
        cni_call("ADD", id, "net1", &netns.path(), &stdin, &extra)
    }

    pub fn del(&self, id: &str) -> Run {
        self.call("DEL", id, "net1", "", &self.stdin())
    }

    /// Container `id`'s attachment record (interface net1), read as the
    /// plugin reads it (a record file is a log of versions), under the
    /// state dir's lock.
    pub fn record(&self, id: &str) -> Option<attachment_store::Record> {
        let store = attachment_store::Store::open(self.dir("state")).unwrap();
        store
            .load(&attachment_store::AttachmentKey {
                network: self.name.clone(),
                container_id: id.into(),
                ifname: "net1".into(),
            })
            .unwrap()
    }

    /// CHECK with the ADD result as prevResult.
    pub fn check(&self, id: &str, netns: &Netns, prev_result: &Value) -> Run {
        let mut conf = self.config.clone();
        conf["prevResult"] = prev_result.clone();
        self.call(
            "CHECK",
            id,
            "net1",
            &netns.path(),
            conf.to_string().as_bytes(),
        )
    }

    /// Asserts that nothing of container `id` is left: no OVS rows, no
    /// shared dir, no attachment record, no IPAM reservation.
    pub fn assert_nothing_left(&self, id: &str) {
        for table in ["Port", "Interface"] {
            assert_eq!(
                self.ovs.rows_of_container(table, id),
                "",
                "{table} rows of {id} left in OVSDB"
            );
        }
        let cid12 = &id[..id.len().min(12)];
        let shared = self.dir("shared").join(cid12);
        assert!(
            !shared.exists(),
            "shared dir {} left: {:?}",
            shared.display(),
            list(&shared)
        );
        let record_dir = self.dir("state/attachments").join(&self.name).join(id);
        assert!(
            !record_dir.exists(),
            "attachment record left: {:?}",
            list(&record_dir)
        );
        assert_no_ipam_reservation(&self.dir("ipam").join(&self.name), id);
    }
}

/// A root filesystem (`dir/rootfs`) with busybox and userspace-app (and
/// the libraries it links), nothing else; `/tmp` is world-writable, as a
/// container user's control socket goes there.
pub fn app_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "hostname", "cat", "ls"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::copy(app_binary(), root.join("userspace-app")).unwrap();
    let ldd = Command::new("ldd").arg(app_binary()).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let target = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(lib, &target).unwrap();
    }
    for d in ["proc", "sys", "dev", "etc", "tmp", "shared"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    root
}

/// The container data the plugin published for container `id` in shared
/// dir `shared` (`<shared>/<cid12>/configData-*.json`).
pub fn container_data(shared: &Path, id: &str) -> Value {
    let dir = shared.join(&id[..12]);
    let file = list(&dir)
        .into_iter()
        .find(|f| f.starts_with("configData-"))
        .unwrap_or_else(|| panic!("no container data in {}", dir.display()));
    serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap()
}

/// Asserts that host-local's store `dir` (one network's) holds no
/// reservation of container `id`.
pub fn assert_no_ipam_reservation(dir: &Path, id: &str) {
    for entry in list(dir) {
        let text = std::fs::read_to_string(dir.join(&entry)).unwrap_or_default();
        assert!(!text.contains(id), "IPAM reservation {entry} of {id} left");
    }
}

/// The first address of a CNI result, without its prefix length.
pub fn first_address(result: &Value) -> String {
    let address = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address in {result}"));
    address.split('/').next().unwrap().to_string()
}

/// File names in `dir` (empty when it does not exist).
pub fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Records a figure a test pins (a count the README quotes), so that
/// `tests/run.sh` can print it in its summary (cargo test hides a passing
/// test's output): a line `name: value` appended to the file named by
/// `USERSPACE_TEST_FIGURES`, when set.
pub fn figure(name: &str, value: impl std::fmt::Display) {
    let Some(path) = std::env::var_os("USERSPACE_TEST_FIGURES") else {
        return;
    };
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the figures file");
    writeln!(file, "{name}: {value}").expect("write a figure");
}

/// Polls `ready` every 10 ms until it holds; panics naming `what` after
/// 30 s. A readiness check, for what a test must see happen before it
/// goes on.
pub fn wait_for(what: &str, ready: impl FnMut() -> bool) {
    wait_for_within(what, 30, ready);
}

/// [`wait_for`] with a bound of `seconds`.
pub fn wait_for_within(what: &str, seconds: u64, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not seen within {seconds} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
