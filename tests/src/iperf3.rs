//! Debian's iperf3 between two network namespaces: an ordinary socket
//! program, as a container that knows only kernel interfaces runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Netns;

/// TCP from `client` to an iperf3 server in `server` on `address` for
/// `seconds`: the receiver's bits per second, and iperf3's JSON report.
pub fn tcp(server: &Netns, client: &Netns, address: &str, seconds: u32) -> (f64, Value) {
    assert!(
        std::path::Path::new("/usr/bin/iperf3").exists(),
        "iperf3 is missing: run .ci/setup"
    );
    // One test, then it exits.
    let mut daemon = Command::new("ip")
        .args([
            "netns",
            "exec",
            &server.name,
            "iperf3",
            "-s",
            "-1",
            "-B",
            address,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start iperf3 -s");
    // Ready when a client gets through: the server binds in its own time.
    let deadline = Instant::now() + Duration::from_secs(15);
    let report = loop {
        // A client whose connection stalls would wait forever for the
        // server's results: bound it.
        let out = Command::new("timeout")
            .arg((seconds + 20).to_string())
            .args([
                "ip",
                "netns",
                "exec",
                &client.name,
                "iperf3",
                "-J",
                "-c",
                address,
            ])
            .args(["--connect-timeout", "3000", "-t", &seconds.to_string()])
            .output()
            .expect("run iperf3 -c");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        // iperf3 3.12 with -J can exit 0 on "unable to connect to server:
        // Connection refused": the report's `error` says what happened.
        let error = report["error"].as_str();
        if out.status.success() && error.is_none() {
            break report;
        }
        let refused = error.is_some_and(|e| e.contains("Connection refused"));
        if !refused || Instant::now() > deadline {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!("iperf3 -c {address}: {report}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The one-off server exits once it has served the test.
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.try_wait().expect("wait for iperf3 -s").is_none() {
        if Instant::now() > deadline {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!("iperf3 -s on {address} did not exit after the test: {report}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let bps = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no sum_received in {report}"));
    (bps, report)
}
