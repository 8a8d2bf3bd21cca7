//! Debian's `dpdk-testpmd`, unmodified, as a container's workload: its
//! EAL arguments only what `userspace-app dpdk-args` prints from the
//! container data (plus `--no-pci`), its queue arguments what
//! `dpdk-args --testpmd` prints.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{app_binary, Netns};

/// `userspace-app --dir DIR dpdk-args [OPTIONS]`, split as a shell splits
/// `$(...)`.
pub fn dpdk_args(dir: &Path, options: &[&str]) -> Vec<String> {
    let out = Command::new(app_binary())
        .arg("--dir")
        .arg(dir)
        .args(["--annotations", "/nonexistent", "dpdk-args"])
        .args(options)
        .output()
        .expect("run userspace-app dpdk-args");
    assert!(
        out.status.success(),
        "dpdk-args: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A running dpdk-testpmd, stopped when dropped (SIGINT by pid, as ^C
/// stops it in every mode; SIGKILL after 10 s).
pub struct TestPmd {
    child: Option<Child>,
    log: PathBuf,
}

impl TestPmd {
    /// testpmd in `netns` for the container whose mapped dir is `dir`:
    /// `dpdk-testpmd $(dpdk-args) --no-pci -- $(dpdk-args --testpmd)
    /// APP_ARGS`. Its output goes to `DIR.testpmd.log`.
    pub fn start(netns: &Netns, dir: &Path, app_args: &[&str]) -> TestPmd {
        assert!(
            Path::new("/usr/bin/dpdk-testpmd").exists(),
            "dpdk-testpmd is missing: run .ci/setup"
        );
        let log = dir.with_extension("testpmd.log");
        let file = std::fs::File::create(&log).unwrap();
        // Line-buffered, so that a failing test's message holds what it
        // printed so far.
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &netns.name,
                "stdbuf",
                "-oL",
                "dpdk-testpmd",
            ])
            .args(dpdk_args(dir, &[]))
            .arg("--no-pci")
            .arg("--")
            .args(dpdk_args(dir, &["--testpmd"]))
            .args(app_args)
            // Non-interactive testpmd waits for a line on stdin.
            .stdin(Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start dpdk-testpmd");
        TestPmd {
            child: Some(child),
            log,
        }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop_child(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `ip netns exec` and stdbuf exec testpmd: the pid is testpmd's.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        self.stop_child();
    }
}
