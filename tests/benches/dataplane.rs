//! Frame rates between two containers through OVS-DPDK over memif, next to
//! a veth pair between two network namespaces, measured in one run.
//!
//!     cargo bench -p integration-tests --bench dataplane
//!
//! memif: the plugin ADDs two memif attachments on one bridge; one thread
//! transmits 64- or 1500-byte frames through our memif library into one
//! port, one thread receives from the other; OVS switches between them
//! (NORMAL, MAC learned). veth: one thread sends UDP datagrams of the same
//! frame size from one namespace, one receives them in the other.
//! Rates are frames received per second; Gbit/s counts Ethernet frame
//! bytes. Prints figures; asserts nothing about them.

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::{Netns, Network, Ovs};
use memif::{Client, ClientConfig, RxMode};

const RUN: Duration = Duration::from_secs(3);
const SENDER_MAC: [u8; 6] = [2, 0, 0, 0xbe, 0, 1];
const RECEIVER_MAC: [u8; 6] = [2, 0, 0, 0xbe, 0, 2];

fn frame(size: usize, src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

struct Rate {
    mpps: f64,
    gbps: f64,
}

fn rate(frames: u64, size: usize, elapsed: Duration) -> Rate {
    let pps = frames as f64 / elapsed.as_secs_f64();
    Rate {
        mpps: pps / 1e6,
        gbps: pps * size as f64 * 8.0 / 1e9,
    }
}

fn memif_rate(
    sender_socket: &std::path::Path,
    receiver_socket: &std::path::Path,
    size: usize,
) -> Rate {
    let connect = |path: &std::path::Path| {
        let mut cfg = ClientConfig::new(path);
        cfg.rx_mode = RxMode::Polling;
        // The vSwitch takes a moment to free the port after the last run.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Client::connect(&cfg) {
                Ok(conn) => break conn,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect {}: {e}", path.display()),
            }
        }
    };
    let mut tx = connect(sender_socket);
    let mut rx = connect(receiver_socket);
    // Teach OVS where the receiver is, then wait until a frame gets across.
    let learn = frame(64, RECEIVER_MAC, SENDER_MAC);
    let probe = frame(size, SENDER_MAC, RECEIVER_MAC);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut through = false;
    while !through {
        assert!(Instant::now() < deadline, "no frame crossed OVS");
        rx.tx_burst(0, &[&learn]);
        tx.tx_burst(0, &[&probe]);
        std::thread::sleep(Duration::from_millis(10));
        for q in 0..rx.rx_queues() {
            rx.rx_burst(q, 256, |_| through = true);
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let before = count;
                for q in 0..rx.rx_queues() {
                    count += rx.rx_burst(q, 256, |_| {}) as u64;
                }
                if count == before {
                    std::thread::yield_now();
                }
            }
            received.store(count, Ordering::SeqCst);
        })
    };
    let burst: Vec<&[u8]> = vec![&probe; 64];
    let start = Instant::now();
    while start.elapsed() < RUN {
        // This machine has two cores and OVS's PMD thread spins on one:
        // sender and receiver share the other. Each yields after a burst
        // (the receiver when it found nothing) instead of burning a whole
        // time slice while the other's ring overflows.
        tx.tx_burst(0, &burst);
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    let elapsed = start.elapsed();
    receiver.join().unwrap();
    rate(received.load(Ordering::SeqCst), size, elapsed)
}

/// A veth pair between two namespaces, 10.99.0.1 <-> 10.99.0.2.
fn veth_rate(a: &Netns, b: &Netns, size: usize) -> Rate {
    // UDP payload so that the Ethernet frame is `size` bytes.
    let payload = vec![0u8; size.saturating_sub(14 + 20 + 8).max(1)];
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = {
        let (stop, received, ns) = (stop.clone(), received.clone(), b.path());
        std::thread::spawn(move || {
            enter(&ns);
            let socket = UdpSocket::bind("10.99.0.2:9999").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            let mut count = 0;
            while !stop.load(Ordering::Relaxed) {
                if socket.recv(&mut buf).is_ok() {
                    count += 1;
                }
            }
            received.store(count, Ordering::SeqCst);
        })
    };
    ready_rx.recv().unwrap();
    let sender_ns = a.path();
    let sender = std::thread::spawn(move || {
        enter(&sender_ns);
        let socket = UdpSocket::bind("10.99.0.1:0").unwrap();
        socket.connect("10.99.0.2:9999").unwrap();
        let start = Instant::now();
        while start.elapsed() < RUN {
            let _ = socket.send(&payload);
        }
        start.elapsed()
    });
    let elapsed = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    receiver.join().unwrap();
    rate(received.load(Ordering::SeqCst), size, elapsed)
}

fn enter(netns_path: &str) {
    let fd = std::fs::File::open(netns_path).unwrap();
    rustix::thread::move_into_link_name_space(
        fd.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap();
}

fn ip(ns: &Netns, args: &[&str]) {
    let status = Command::new("ip")
        .args(["-n", &ns.name])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "ip -n {} {args:?}", ns.name);
}

fn main() {
    let ovs = Ovs::shared();
    let net = Network::memif(ovs);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    net.add("benchtx0000001", &ns1).ok();
    net.add("benchrx0000001", &ns2).ok();
    let sender = net.dir("shared/benchtx00000/memif-benchtx00000-net1.sock");
    let receiver = net.dir("shared/benchrx00000/memif-benchrx00000-net1.sock");

    // The veth pair.
    let (va, vb) = (Netns::new(), Netns::new());
    let status = Command::new("ip")
        .args([
            "link", "add", "vbench0", "netns", &va.name, "type", "veth", "peer", "vbench1",
            "netns", &vb.name,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "create the veth pair");
    ip(&va, &["addr", "add", "10.99.0.1/24", "dev", "vbench0"]);
    ip(&vb, &["addr", "add", "10.99.0.2/24", "dev", "vbench1"]);
    ip(&va, &["link", "set", "vbench0", "up"]);
    ip(&vb, &["link", "set", "vbench1", "up"]);

    println!(
        "frames received per second, {}s per figure, one sender and one receiver thread",
        RUN.as_secs()
    );
    println!("{}", "-".repeat(84));
    let mut memif64 = 0.0;
    let mut veth64 = 0.0;
    for size in [64usize, 1500] {
        let m = memif_rate(&sender, &receiver, size);
        let v = veth_rate(&va, &vb, size);
        println!(
            "{size:>5} B  memif via OVS-DPDK {:>6.2} Mpps {:>6.2} Gbit/s   veth {:>6.3} Mpps {:>6.2} Gbit/s   {:>5.1}x",
            m.mpps,
            m.gbps,
            v.mpps,
            v.gbps,
            m.mpps / v.mpps
        );
        if size == 64 {
            memif64 = m.mpps;
            veth64 = v.mpps;
        }
    }
    println!(
        "\ntarget memif 64 B >= 3 Mpps: {memif64:.2} Mpps; >= 10x veth: {:.1}x",
        memif64 / veth64
    );
    println!("vhost-user: not measured yet (the vhost-user frontend is not in this release)");
    for id in ["benchtx0000001", "benchrx0000001"] {
        net.del(id).ok();
    }
}
