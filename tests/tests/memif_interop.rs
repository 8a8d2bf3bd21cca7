//! Our memif library against DPDK's net_memif, in dpdk-testpmd, in both
//! roles: frames go to testpmd and come back with their MACs swapped.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memif::{Client, ClientConfig, Connection, Server, ServerConfig};

/// dpdk-testpmd with one memif port forwarding back what it receives
/// (macswap, loop topology); stops when dropped (stdin closed, then pid).
struct TestPmd {
    child: Child,
}

impl TestPmd {
    fn start(role: &str, socket: &Path, prefix: &str) -> TestPmd {
        assert!(
            Path::new("/usr/bin/dpdk-testpmd").exists(),
            "dpdk-testpmd is missing: run .ci/setup"
        );
        let child = Command::new("dpdk-testpmd")
            .args([
                "-l",
                "0,1",
                "--no-pci",
                "--in-memory",
                "--file-prefix",
                prefix,
            ])
            .arg(format!(
                "--vdev=net_memif0,role={role},id=0,socket={},socket-abstract=no",
                socket.display()
            ))
            .args([
                "--",
                "--forward-mode=macswap",
                "--port-topology=loop",
                "--auto-start",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dpdk-testpmd");
        TestPmd { child }
    }
}

impl Drop for TestPmd {
    fn drop(&mut self) {
        // Non-interactive testpmd exits on a line (or EOF) on stdin.
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn frame(seq: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]); // dst
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xbb]); // src
    f[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f[14..16].copy_from_slice(&seq.to_be_bytes());
    f
}

/// Waits until testpmd forwards: it drops what it receives before its side
/// of the link is marked up, which happens on another of its threads.
fn wait_until_forwarding(conn: &mut Connection) {
    let probe = frame(u16::MAX);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut echoed = false;
    while !echoed {
        assert!(Instant::now() < deadline, "testpmd never forwarded a probe");
        conn.tx_burst(0, &[&probe]);
        std::thread::sleep(Duration::from_millis(10));
        for q in 0..conn.rx_queues() {
            conn.rx_burst(q, 64, |_| echoed = true);
        }
    }
    // Drain late echoes of earlier probes.
    std::thread::sleep(Duration::from_millis(50));
    for q in 0..conn.rx_queues() {
        conn.rx_burst(q, 1024, |_| {});
    }
}

/// Sends 200 frames in bursts and checks every one comes back swapped.
fn exchange(conn: &mut Connection) {
    wait_until_forwarding(conn);
    let frames: Vec<Vec<u8>> = (0..200).map(frame).collect();
    let mut back: Vec<Vec<u8>> = Vec::new();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while back.len() < frames.len() && Instant::now() < deadline {
        if next < frames.len() {
            let end = (next + 16).min(frames.len());
            let burst: Vec<&[u8]> = frames[next..end].iter().map(Vec::as_slice).collect();
            next += conn.tx_burst(0, &burst);
        }
        let before = back.len();
        for q in 0..conn.rx_queues() {
            conn.rx_burst(q, 32, |f| back.push(f.to_vec()));
        }
        if back.len() == before {
            // Leave the cores to testpmd while it has nothing for us.
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert_eq!(
        back.len(),
        frames.len(),
        "all frames came back (sent {next})"
    );
    for (sent, got) in frames.iter().zip(&back) {
        assert_eq!(&got[0..6], &sent[6..12], "dst is the old src");
        assert_eq!(&got[6..12], &sent[0..6], "src is the old dst");
        assert_eq!(&got[12..], &sent[12..], "payload intact, in order");
    }
}

#[test]
fn our_client_against_testpmd_as_server() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("memif.sock");
    let _pmd = TestPmd::start("server", &socket, &format!("tps{}", std::process::id()));
    let cfg = ClientConfig::new(&socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    // testpmd creates its socket once its port is up.
    let mut conn = loop {
        match Client::connect(&cfg) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot connect to testpmd: {e}"),
        }
    };
    assert!(conn.peer_name().contains("DPDK"), "{}", conn.peer_name());
    exchange(&mut conn);
}

#[test]
fn testpmd_as_client_against_our_server() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("memif.sock");
    let server = Server::bind(ServerConfig::new(&socket)).unwrap();
    let _pmd = TestPmd::start("client", &socket, &format!("tpc{}", std::process::id()));
    let mut conn = server.accept().expect("testpmd connects");
    assert!(conn.peer_name().contains("DPDK") || !conn.peer_name().is_empty());
    exchange(&mut conn);
}
