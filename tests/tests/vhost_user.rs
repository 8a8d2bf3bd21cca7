//! The vhost-user frontend against OVS-DPDK's vhost-user ports: frames
//! both ways between two devices through the bridge, with OVS as the
//! vhost-user client (`dpdkvhostuserclient`, we listen) and as the server
//! (`dpdkvhostuser`, we connect).

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use integration_tests::{Netns, Network, Ovs};
use vhost_user_net::{Config, VhostUserNet};

/// One test at a time on this binary's OVS: a `dpdkvhostuser` and a
/// `dpdkvhostuserclient` port brought up at once while the first DPDK port
/// starts its PMD thread once left the client ports without traffic for
/// 15 s (one CI run in ten; container_app serialises for the same reason).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn frame(src: u8, dst: u8, seq: u16) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0x77, dst]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0x77, src]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f[14..16].copy_from_slice(&seq.to_be_bytes());
    f
}

/// Accepts OVS's connection on the socket the plugin named.
fn listen_and_accept(socket: &Path) -> VhostUserNet {
    let listener = UnixListener::bind(socket).unwrap();
    let (stream, _) = listener.accept().unwrap();
    VhostUserNet::from_stream(stream, Config::default()).unwrap()
}

/// Sends `count` frames a -> b (retrying until OVS has learned and the
/// link is up) and returns how many b received with the right payload.
fn exchange(a: &mut VhostUserNet, b: &mut VhostUserNet, a_id: u8, b_id: u8) -> usize {
    // Teach the bridge both MACs, and wait until a frame crosses.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut crossed = false;
    while !crossed {
        assert!(Instant::now() < deadline, "no frame crossed OVS");
        b.tx_burst(&[&frame(b_id, a_id, 0)]);
        a.tx_burst(&[&frame(a_id, b_id, 0)]);
        std::thread::sleep(Duration::from_millis(20));
        a.rx_burst(256, |_| {});
        b.rx_burst(256, |f| crossed |= f[6..12] == [2, 0, 0, 0, 0x77, a_id]);
    }
    std::thread::sleep(Duration::from_millis(50));
    b.rx_burst(1024, |_| {});

    let frames: Vec<Vec<u8>> = (1..=100).map(|seq| frame(a_id, b_id, seq)).collect();
    let mut got = 0;
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < frames.len() && Instant::now() < deadline {
        if next < frames.len() {
            let burst: Vec<&[u8]> = frames[next..(next + 16).min(frames.len())]
                .iter()
                .map(Vec::as_slice)
                .collect();
            next += a.tx_burst(&burst);
        }
        b.rx_burst(64, |f| {
            if f.len() == 64 && f[6..12] == [2, 0, 0, 0, 0x77, a_id] && f[14..16] != [0, 0] {
                got += 1;
            }
        });
        std::thread::yield_now();
    }
    got
}

#[test]
fn frames_cross_ovs_between_two_vhost_user_devices_ovs_as_client() {
    let _serial = serial();
    let net = Network::vhostuser(Ovs::shared(), Some("client"));
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let r1 = net.add("vhcliA00000001", &ns1).ok();
    let r2 = net.add("vhcliB00000001", &ns2).ok();
    let p1 = r1["interfaces"][0]["socketPath"]
        .as_str()
        .map(str::to_string);
    let s1 = p1.unwrap_or_else(|| {
        net.dir("shared/vhcliA000000/vhcliA000000-net1")
            .display()
            .to_string()
    });
    let s2 = net.dir("shared/vhcliB000000/vhcliB000000-net1");
    let _ = r2;
    let mut a = listen_and_accept(Path::new(&s1));
    let mut b = listen_and_accept(&s2);
    assert_eq!(exchange(&mut a, &mut b, 1, 2), 100, "a -> b");
    assert_eq!(exchange(&mut b, &mut a, 2, 1), 100, "b -> a");
    assert!(a.counters().tx_frames >= 100 && b.counters().rx_frames >= 100);
    drop((a, b));
    for id in ["vhcliA00000001", "vhcliB00000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}

#[test]
fn frames_cross_ovs_between_two_vhost_user_devices_ovs_as_server() {
    let _serial = serial();
    let net = Network::vhostuser(Ovs::shared(), Some("server"));
    let (ns1, ns2) = (Netns::new(), Netns::new());
    net.add("vhsrvA00000001", &ns1).ok();
    net.add("vhsrvB00000001", &ns2).ok();
    let connect = |p: &str| VhostUserNet::connect(&net.dir(p), Config::default()).unwrap();
    let mut a = connect("shared/vhsrvA000000/vhsrvA000000-net1");
    let mut b = connect("shared/vhsrvB000000/vhsrvB000000-net1");
    assert_eq!(exchange(&mut a, &mut b, 3, 4), 100, "a -> b");
    assert_eq!(exchange(&mut b, &mut a, 4, 3), 100, "b -> a");
    drop((a, b));
    for id in ["vhsrvA00000001", "vhsrvB00000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}
