//! Frame rates between two containers through OVS-DPDK over memif and over
//! vhost-user, next to a veth pair between two network namespaces,
//! measured in one run.
//!
//!     cargo bench -p integration-tests --bench dataplane
//!
//! memif / vhost-user: the plugin ADDs two attachments on one bridge; one
//! thread transmits 64- or 1500-byte frames through our memif library (or
//! vhost-user frontend) into one port, one thread receives from the other;
//! OVS switches between them (NORMAL, MAC learned). veth: one thread sends UDP datagrams of the same
//! frame size from one namespace, one receives them in the other.
//! Then Debian's dpdk-testpmd, unmodified, txonly in one container and
//! rxonly in another, over memif (two queue pairs) through the same OVS;
//! and iperf3 TCP between two containers whose memif interfaces are
//! kernel TAPs (`userspace-app up --tap`).
//! Every peer runs off the CPU of OVS's PMD thread, which has it alone.
//! Rates are frames received per second; Gbit/s counts Ethernet frame
//! bytes. Prints figures; asserts nothing about them.

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::unix::net::UnixListener;
use std::path::Path;

use integration_tests::app::App;
use integration_tests::{iperf3, testpmd, Netns, Network, Ovs};
use memif::{Client, ClientConfig, Connection, RxMode};
use vhost_user_net::VhostUserNet;

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

/// What the measurement needs of a userspace interface.
trait Device: Send + 'static {
    fn send(&mut self, frames: &[&[u8]]) -> usize;
    fn receive(&mut self) -> usize;
}

impl Device for Connection {
    fn send(&mut self, frames: &[&[u8]]) -> usize {
        self.tx_burst(0, frames)
    }
    fn receive(&mut self) -> usize {
        (0..self.rx_queues())
            .map(|q| self.rx_burst(q, 256, |_| {}))
            .sum()
    }
}

impl Device for VhostUserNet {
    fn send(&mut self, frames: &[&[u8]]) -> usize {
        self.tx_burst(frames)
    }
    fn receive(&mut self) -> usize {
        self.rx_burst(256, |_| {})
    }
}

fn connect_memif(path: &Path) -> Connection {
    let mut cfg = ClientConfig::new(path);
    cfg.rx_mode = RxMode::Polling;
    // The attachment's secret, as its container data gives it.
    let dir = path.parent().unwrap();
    let data = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("configData-")
        })
        .expect("the container data");
    let data: serde_json::Value = serde_json::from_slice(&std::fs::read(data).unwrap()).unwrap();
    let memif = &data["config"]["memif"];
    cfg.secret = memif["secret"].as_str().unwrap_or_default().to_string();
    // The rings the port was made with (DPDK maps a queue we do not give
    // onto ring 0).
    if let (Some(rx), Some(tx)) = (memif["rxQueues"].as_u64(), memif["txQueues"].as_u64()) {
        (cfg.rx_queues, cfg.tx_queues) = (rx as u16, tx as u16);
    }
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
}

/// One sender thread (this one) and one receiver thread for RUN; the
/// receiving device comes back for the next figure.
fn measure<D: Device>(tx: &mut D, mut rx: D, size: usize) -> (Rate, D) {
    // Teach OVS where the receiver is, then wait until a frame gets across.
    let learn = frame(64, RECEIVER_MAC, SENDER_MAC);
    let probe = frame(size, SENDER_MAC, RECEIVER_MAC);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut through = false;
    while !through {
        assert!(Instant::now() < deadline, "no frame crossed OVS");
        rx.send(&[&learn]);
        tx.send(&[&probe]);
        std::thread::sleep(Duration::from_millis(10));
        tx.receive();
        through = rx.receive() > 0;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut count = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let got = rx.receive();
                count += got as u64;
                if got == 0 {
                    std::thread::yield_now();
                }
            }
            (count, rx)
        })
    };
    let burst: Vec<&[u8]> = vec![&probe; 64];
    let start = Instant::now();
    while start.elapsed() < RUN {
        // This machine has two cores and OVS's PMD thread spins on one:
        // sender and receiver share the other. Each yields after a burst
        // (the receiver when it found nothing) instead of burning a whole
        // time slice while the other's ring overflows.
        tx.send(&burst);
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    let elapsed = start.elapsed();
    let (count, mut rx) = receiver.join().unwrap();
    // Let what is in flight land before the next figure.
    std::thread::sleep(Duration::from_millis(50));
    while rx.receive() > 0 {}
    (rate(count, size, elapsed), rx)
}

/// Takes OVS's connection to our vhost-user socket (dpdkvhostuserclient).
fn accept_vhost(listener: &UnixListener) -> VhostUserNet {
    let (stream, _) = listener.accept().unwrap();
    VhostUserNet::from_stream(stream, vhost_user_net::Config::default()).unwrap()
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
    integration_tests::keep_off_pmd_cpu();
    let memif_net = Network::memif(ovs);
    let vhost_net = Network::vhostuser(ovs, Some("client"));
    let netns: Vec<Netns> = (0..4).map(|_| Netns::new()).collect();
    memif_net.add("benchtx0000001", &netns[0]).ok();
    memif_net.add("benchrx0000001", &netns[1]).ok();
    vhost_net.add("vbenchtx000001", &netns[2]).ok();
    vhost_net.add("vbenchrx000001", &netns[3]).ok();
    let memif_tx = memif_net.dir("shared/benchtx00000/memif-benchtx00000-net1.sock");
    let memif_rx = memif_net.dir("shared/benchrx00000/memif-benchrx00000-net1.sock");
    let vhost_tx =
        UnixListener::bind(vhost_net.dir("shared/vbenchtx0000/vbenchtx0000-net1")).unwrap();
    let vhost_rx =
        UnixListener::bind(vhost_net.dir("shared/vbenchrx0000/vbenchrx0000-net1")).unwrap();

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
    println!("{}", "-".repeat(110));
    let mut targets = Vec::new();
    // One connection per device for every figure: reconnecting between
    // figures measures the vSwitch's reconnect, not the data path.
    let (mut memif_a, mut memif_b) = (connect_memif(&memif_tx), connect_memif(&memif_rx));
    let (mut vhost_a, mut vhost_b) = (accept_vhost(&vhost_tx), accept_vhost(&vhost_rx));
    for size in [64usize, 1500] {
        let (m, back) = measure(&mut memif_a, memif_b, size);
        memif_b = back;
        let (v, back) = measure(&mut vhost_a, vhost_b, size);
        vhost_b = back;
        let veth = veth_rate(&va, &vb, size);
        println!(
            "{size:>5} B  memif {:>6.2} Mpps {:>6.2} Gbit/s   vhost-user {:>6.2} Mpps {:>6.2} Gbit/s   veth {:>6.3} Mpps {:>5.2} Gbit/s",
            m.mpps, m.gbps, v.mpps, v.gbps, veth.mpps, veth.gbps
        );
        if size == 64 {
            targets.push((m.mpps, veth.mpps));
        }
    }
    let (memif64, veth64) = targets[0];
    println!(
        "\ntarget memif 64 B >= 3 Mpps: {memif64:.2} Mpps; >= 10x veth: {:.1}x",
        memif64 / veth64
    );
    drop((memif_a, memif_b, vhost_a, vhost_b));

    // Two unmodified DPDK apps on memif through the same OVS: Debian's
    // testpmd, txonly in one container and rxonly in the other, EAL and
    // queue arguments from `userspace-app dpdk-args`, on a network whose
    // ports have the two queue pairs a DPDK app on OVS needs.
    let pmd_net = Network::memif(ovs).with_memif_queue_pairs(2);
    let pmd_ns: Vec<Netns> = (0..2).map(|_| Netns::new()).collect();
    pmd_net.add("pmdbenchtx0001", &pmd_ns[0]).ok();
    let rx = pmd_net.add("pmdbenchrx0001", &pmd_ns[1]).ok();
    let rx_mac = rx["interfaces"][0]["mac"].as_str().unwrap();
    ovs.fdb_add(&pmd_net.bridge, "memif-pmdbenchrx00-net1", rx_mac);
    println!(
        "\ntestpmd txonly -> OVS -> testpmd rxonly over memif (median of 5 one-second samples; our memif figures above):"
    );
    for size in [64usize, 1500] {
        let (pps, _) = testpmd::txonly_to_rxonly(
            (&pmd_ns[0], &pmd_net.dir("shared/pmdbenchtx00")),
            (&pmd_ns[1], &pmd_net.dir("shared/pmdbenchrx00")),
            rx_mac,
            size,
            5,
        );
        let r = rate(pps, size, Duration::from_secs(1));
        println!(
            "{size:>5} B  testpmd {:>6.2} Mpps {:>6.2} Gbit/s",
            r.mpps, r.gbps
        );
    }
    for id in ["pmdbenchtx0001", "pmdbenchrx0001"] {
        pmd_net.del(id).ok();
        pmd_net.assert_nothing_left(id);
    }

    // Ordinary programs: iperf3 TCP between two containers whose memif
    // interfaces `userspace-app up --tap` gives to the kernel as TAPs.
    let tap_ns: Vec<Netns> = (0..2).map(|_| Netns::new()).collect();
    let server = memif_net.add("tapbenchsv0001", &tap_ns[0]).ok();
    memif_net.add("tapbenchcl0001", &tap_ns[1]).ok();
    let server_ip = server["ips"][0]["address"].as_str().unwrap();
    let server_ip = server_ip.split('/').next().unwrap();
    {
        let _apps = (
            App::start_tap(&tap_ns[0], &memif_net.dir("shared/tapbenchsv00")),
            App::start_tap(&tap_ns[1], &memif_net.dir("shared/tapbenchcl00")),
        );
        let (bps, _) = iperf3::tcp(&tap_ns[0], &tap_ns[1], server_ip, 5);
        println!(
            "\niperf3 TCP over TAP (userspace-app up --tap) over memif, 5 s: {:.2} Gbit/s",
            bps / 1e9
        );
    }
    for id in [
        "benchtx0000001",
        "benchrx0000001",
        "tapbenchsv0001",
        "tapbenchcl0001",
    ] {
        memif_net.del(id).ok();
    }
    for id in ["vbenchtx000001", "vbenchrx000001"] {
        vhost_net.del(id).ok();
    }
}
