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
    /// `dpdk-testpmd $(dpdk-args) --no-pci --lcores=0@0,1@0 --
    /// $(dpdk-args --testpmd) APP_ARGS`, its threads kept off the PMD
    /// thread's CPU (the CPU placement is the operator's, as a pod's
    /// cpuset gives it; see [`crate::off_pmd_cpus`]). Its output goes to
    /// `DIR.testpmd.log`.
    pub fn start(netns: &Netns, dir: &Path, app_args: &[&str]) -> TestPmd {
        assert!(
            Path::new("/usr/bin/dpdk-testpmd").exists(),
            "dpdk-testpmd is missing: run .ci/setup"
        );
        let log = dir.with_extension("testpmd.log");
        let file = std::fs::File::create(&log).unwrap();
        // Line-buffered, so that a failing test's message (and the rate
        // reader) sees what it printed so far.
        let child = netns
            .memif_peer("stdbuf")
            .args(["-oL", "dpdk-testpmd"])
            .args(dpdk_args(dir, &[]))
            .arg("--no-pci")
            // The main lcore and the forwarding one on CPU 0; DPDK puts
            // its interrupt thread on the CPUs left in the affinity, else
            // beside the main lcore: CPU 0 as well.
            .arg("--lcores=0@0,1@0")
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

    /// Stops it and returns everything it printed.
    pub fn stop(mut self) -> String {
        self.stop_child();
        self.log()
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

/// testpmd `txonly` in the `tx` container sending `size`-byte frames to
/// `rx_mac`, testpmd `rxonly` in the `rx` container (netns, mapped dir):
/// the median of the receiver's per-second rates over `seconds` once
/// frames flow (frames/s), and its whole log.
pub fn txonly_to_rxonly(
    tx: (&Netns, &Path),
    rx: (&Netns, &Path),
    rx_mac: &str,
    size: usize,
    seconds: usize,
) -> (u64, String) {
    let receiver = TestPmd::start(rx.0, rx.1, &["--forward-mode=rxonly", "--stats-period=1"]);
    let sender = TestPmd::start(
        tx.0,
        tx.1,
        &[
            "--forward-mode=txonly",
            &format!("--txpkts={size}"),
            &format!("--eth-peer=0,{rx_mac}"),
        ],
    );
    // Ready when the receiver counts frames; then `seconds` more samples.
    let deadline = Instant::now() + Duration::from_secs(30 + seconds as u64);
    let flowing = loop {
        let rates = rx_pps(&receiver.log());
        if let Some(first) = rates.iter().position(|&r| r > 0) {
            if rates.len() >= first + 1 + seconds {
                break rates[first + 1..first + 1 + seconds].to_vec();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no frames reached the receiving testpmd: {}\nsender: {}",
            receiver.log(),
            sender.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(sender);
    let log = receiver.stop();
    let mut sorted = flowing;
    sorted.sort_unstable();
    (sorted[sorted.len() / 2], log)
}

/// The per-second receive rates (`Rx-pps:`) of a testpmd run with
/// `--stats-period=1`, in order.
pub fn rx_pps(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| line.trim().strip_prefix("Rx-pps:"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}
