//! The container side: `userspace-app` instances exchanging traffic through
//! OVS-DPDK over the memif and vhost-user interfaces the plugin made, and
//! reconnecting.

use std::sync::{Mutex, MutexGuard};

use integration_tests::app::App;
use integration_tests::{Netns, Network, Ovs};
use serde_json::{json, Value};

/// One test at a time on this binary's OVS: memif ports removed while
/// other tests' clients reconnect were what stalled ovs-vswitchd once in
/// ten full runs (it died: see the README's "ovs-vswitchd and a
/// reconnecting memif client").
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn address(result: &Value) -> String {
    result["ips"][0]["address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn two_apps_ping_each_other_through_ovs_over_memif() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let r1 = net.add("appone000000001", &ns1).ok();
    let r2 = net.add("apptwo000000001", &ns2).ok();
    {
        let a1 = App::start(&ns1, &net.dir("shared/appone000000"));
        let a2 = App::start(&ns2, &net.dir("shared/apptwo000000"));
        assert_eq!(a2.ping(&address(&r1), 5), 5, "2 -> 1");
        assert_eq!(a1.ping(&address(&r2), 5), 5, "1 -> 2");

        let i1 = a1.interface();
        assert_eq!(i1["state"], "up");
        assert_eq!(i1["peer"].as_str().unwrap().split(' ').next(), Some("DPDK"));
        assert_eq!(i1["address"], r1["ips"][0]["address"]);
        assert_eq!(i1["mac"], r1["interfaces"][0]["mac"]);
        assert!(i1["echo_replies"].as_u64().unwrap() >= 5, "{i1}");
        assert!(i1["rx_frames"].as_u64().unwrap() >= 10, "{i1}");

        // A ping to nobody gets no ARP answer and says so: a negative
        // answer, exit 1 as ping(8); no app on a control socket is an
        // error, exit 2; -i and -W take seconds with fractions.
        let (code, text) = a1.command_status(&["ping", "10.77.0.250", "-c", "1", "-W", "0.2"]);
        assert!(
            code == Some(1) && text.contains("Destination Host Unreachable (no ARP reply"),
            "{text}"
        );
        let (code, text) =
            a1.command_status(&["--ctl", "/nonexistent/app.ctl", "ping", "10.77.0.250"]);
        assert_eq!(code, Some(2), "{text}");
        let (code, text) = a1.command_status(&["ping", "10.77.0.250", "-i", "soon"]);
        assert_eq!(code, Some(2), "{text}");
        let started = std::time::Instant::now();
        let (ok, text) = a2.command(&["ping", &address(&r1), "-c", "3", "-i", "0.05"]);
        assert!(ok && text.contains("3 received"), "{text}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "-i 0.05 is 50 ms"
        );
    }
    for id in ["appone000000001", "apptwo000000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}

#[test]
fn two_apps_ping_each_other_through_ovs_over_vhost_user_in_both_modes() {
    let _serial = serial();
    // "client": OVS connects to the app's socket; unset: OVS is the server.
    for (mode, tag) in [(Some("client"), "vc"), (None, "vs")] {
        let net = Network::vhostuser(Ovs::shared(), mode);
        let (ns1, ns2) = (Netns::new(), Netns::new());
        let (id1, id2) = (format!("{tag}one0000000001"), format!("{tag}two0000000001"));
        let r1 = net.add(&id1, &ns1).ok();
        let r2 = net.add(&id2, &ns2).ok();
        {
            let a1 = App::start(&ns1, &net.dir(&format!("shared/{}", &id1[..12])));
            let a2 = App::start(&ns2, &net.dir(&format!("shared/{}", &id2[..12])));
            assert_eq!(a2.ping(&address(&r1), 5), 5, "{mode:?}: 2 -> 1");
            assert_eq!(a1.ping(&address(&r2), 5), 5, "{mode:?}: 1 -> 2");
            let i1 = a1.interface();
            assert_eq!(i1["type"], "vhostuser");
            let role = if mode.is_some() { "server" } else { "client" };
            assert_eq!(i1["role"], role, "{mode:?}");
        }
        for id in [&id1, &id2] {
            net.del(id).ok();
            net.assert_nothing_left(id);
        }
    }
}

#[test]
fn an_app_that_restarts_reconnects_and_traffic_resumes() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let r1 = net.add("restartA0000001", &ns1).ok();
    net.add("restartB0000001", &ns2).ok();
    let a1 = App::start(&ns1, &net.dir("shared/restartA0000"));
    let dir2 = net.dir("shared/restartB0000");
    let a2 = App::start(&ns2, &dir2);
    assert_eq!(a2.ping(&address(&r1), 2), 2);
    drop(a2);
    // The vSwitch's memif server takes the new instance.
    let a2 = App::start(&ns2, &dir2);
    assert_eq!(a2.ping(&address(&r1), 3), 3);
    drop((a1, a2));
    for id in ["restartA0000001", "restartB0000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}

#[test]
fn the_app_reconnects_when_its_peer_restarts() {
    // The peer here is a memif server of our own library, so that it can
    // go away and come back at will.
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({
        "containerId": "peerrestart0", "ifName": "net1", "name": "n",
        "config": {"iftype": "memif", "memif": {"role": "slave", "mode": "ethernet", "socketfile": "m.sock"}},
        "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:07"}],
                     "ips": [{"address": "10.9.0.2/24", "interface": 0}]}
    });
    std::fs::write(
        dir.path().join("configData-peerrestart0-net1.json"),
        doc.to_string(),
    )
    .unwrap();
    let ns = Netns::new();
    let mut cfg = memif::ServerConfig::new(dir.path().join("m.sock"));
    cfg.tx_queues = 2;
    let server = memif::Server::bind(cfg.clone()).unwrap();
    let accept = std::thread::spawn(move || {
        let conn = server.accept().unwrap();
        (server, conn)
    });
    let app = App::start(&ns, dir.path());
    let (server, conn) = accept.join().unwrap();
    assert_eq!(app.interface()["connects"], 1);

    // The peer leaves; the app notices and goes down.
    conn.disconnect("peer restarting").unwrap();
    drop(server);
    let down = (0..500).find_map(|_| {
        let i = app.interface();
        (i["state"] == "down").then_some(i)
    });
    let down = down.expect("the app saw the disconnect");
    assert!(
        down["detail"].as_str().unwrap().contains("peer restarting"),
        "{down}"
    );

    // The peer comes back; the app reconnects by itself.
    let server = memif::Server::bind(cfg).unwrap();
    let _conn = server.accept().unwrap();
    let (ok, text) = app.command(&["wait", "--timeout-secs", "10"]);
    assert!(ok, "{text}");
    assert_eq!(app.interface()["connects"], 2);
}

/// A peer that speaks garbage on the memif control socket.
fn hostile_peer(socket: &std::path::Path) -> std::os::fd::OwnedFd {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let listener = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::bind(&listener, &SocketAddrUnix::new(socket).unwrap()).unwrap();
    rustix::net::listen(&listener, 4).unwrap();
    listener
}

#[test]
fn malformed_control_messages_from_a_peer_never_crash_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({
        "containerId": "hostilepeer0", "ifName": "net1", "name": "n",
        "config": {"iftype": "memif", "memif": {"role": "slave", "mode": "ethernet", "socketfile": "m.sock"}},
        "ipResult": {"interfaces": [{"name": "net1", "mac": "02:00:00:00:00:08"}],
                     "ips": [{"address": "10.9.0.3/24", "interface": 0}]}
    });
    std::fs::write(
        dir.path().join("configData-hostilepeer0-net1.json"),
        doc.to_string(),
    )
    .unwrap();
    let socket = dir.path().join("m.sock");
    let listener = hostile_peer(&socket);
    let ns = Netns::new();
    let app = App::spawn(&ns, dir.path());

    let hello = memif::Message::Hello {
        name: "hostile".into(),
        min_version: 0x200,
        max_version: 0x200,
        max_region: 1,
        max_m2s_ring: 0,
        max_s2m_ring: 0,
        max_log2_ring_size: 10,
    }
    .encode();
    let mut garbage = vec![0u8; 128];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut conversations: Vec<Vec<Vec<u8>>> = vec![
        vec![vec![0xff; 128]],              // unknown type
        vec![vec![2, 0, 1, 2, 3]],          // truncated
        vec![vec![0; 4096]],                // oversized
        vec![hello.to_vec(), vec![9; 128]], // HELLO, then garbage for ACK
        vec![hello.to_vec(), vec![7; 128]], // HELLO, then CONNECTED out of turn
        vec![],                             // accept and hang up
    ];
    for _ in 0..20 {
        for b in garbage.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        garbage[0] = (state % 10) as u8;
        garbage[1] = 0;
        conversations.push(vec![garbage.clone()]);
    }
    for messages in conversations {
        let conn = rustix::net::accept(&listener).unwrap();
        for m in &messages {
            // The app may hang up first; that is fine.
            let _ = rustix::net::send(&conn, m, rustix::net::SendFlags::NOSIGNAL);
        }
        drop(conn);
        let i = app.interface();
        assert_eq!(i["state"], "down", "{i}");
    }
    let i = app.interface();
    assert!(
        i["detail"].as_str().unwrap().contains("last attempt"),
        "{i}"
    );

    // A well-behaved peer at the same place is connected to at once.
    drop(listener);
    std::fs::remove_file(&socket).unwrap();
    let server = memif::Server::bind(memif::ServerConfig::new(&socket)).unwrap();
    let _conn = server.accept().unwrap();
    let (ok, text) = app.command(&["wait", "--timeout-secs", "10"]);
    assert!(ok, "{text}");
}

/// Control clients that connect and never send a newline (more of them
/// than the app reads at once) do not stall forwarding: the app keeps
/// answering pings through OVS while they hang, and its control socket
/// answers again once they are cut off at their bound (1 s).
#[test]
fn control_clients_that_never_finish_a_request_do_not_stall_forwarding() {
    use std::io::Write;
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let r1 = net.add("ctlhangA000001", &ns1).ok();
    net.add("ctlhangB000001", &ns2).ok();
    {
        let a1 = App::start(&ns1, &net.dir("shared/ctlhangA0000"));
        let a2 = App::start(&ns2, &net.dir("shared/ctlhangB0000"));
        let hanging: Vec<_> = (0..40)
            .map(|_| {
                let mut client =
                    std::os::unix::net::UnixStream::connect(a1.dir.join("userspace-app.ctl"))
                        .unwrap();
                // Past 32 pending requests the app takes a connection and
                // closes it: the write may then meet a closed socket.
                match client.write_all(b"{\"cmd\": ") {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    Err(e) => panic!("{e}"),
                }
                client
            })
            .collect();
        let started = std::time::Instant::now();
        assert_eq!(
            a2.ping(&address(&r1), 10),
            10,
            "2 -> 1 while 40 clients hang"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        integration_tests::wait_for("a1's control socket answering again", || {
            a1.command(&["show"]).0
        });
        drop(hanging);
    }
    for id in ["ctlhangA000001", "ctlhangB000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}

/// `wait` names the interfaces it is still waiting for when its time runs
/// out (exit 1), here a memif whose OVS port was taken away before the
/// app started. (Taken away by hand under a connected app, the socket
/// still there, ovs-vswitchd can die: what DEL avoids, tested below.)
#[test]
fn wait_names_the_interfaces_still_not_connected() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    let id = "appwait000000001";
    net.add(id, &ns).ok();
    let port = format!("memif-{}-net1", &id[..12]);
    net.ovs.vsctl(&["del-port", &net.bridge, &port]);
    {
        let app = App::spawn(&ns, &net.dir(&format!("shared/{}", &id[..12])));
        let (code, text) = app.command_status(&["wait", "--timeout-secs", "1"]);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains("still waiting after 1 s for: net1"), "{text}");
    }
    net.del(id).ok();
    net.assert_nothing_left(id);
}

/// DEL while the container's memif client is still connected (and
/// reconnects as soon as OVS drops it): on these machines ovs-vswitchd
/// (OVS 3.1, DPDK 22.11) died in 1 of 3 such DELs when the client's
/// reconnect met the port's teardown. DEL unlinks the socket first, so
/// the reconnect finds nothing; ovs-vswitchd stays up through ten.
#[test]
fn del_under_a_connected_memif_client_leaves_ovs_vswitchd_running() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared());
    let ns = Netns::new();
    for round in 0..10 {
        let id = format!("appcon{round:02}nected");
        net.add(&id, &ns).ok();
        let record = net.record(&id).expect("ADD left a record");
        let newest = record.journal.last().unwrap();
        assert!(
            newest.description.starts_with("remove memif socket"),
            "the socket goes first: {newest:?}"
        );
        let app = App::start(&ns, &net.dir(&format!("shared/{}", &id[..12])));
        assert_eq!(app.interface()["state"], "up");
        net.del(&id).ok();
        drop(app);
        // The app's own control socket kept the shared dir at DEL; the
        // container's exit leaves it empty (a pod's emptyDir goes with it).
        let shared = net.dir(&format!("shared/{}", &id[..12]));
        if shared.exists() {
            std::fs::remove_dir(&shared).unwrap();
        }
        net.assert_nothing_left(&id);
    }
    // ovs-vswitchd still applies changes.
    net.add("appcon99nected", &ns).ok();
    net.del("appcon99nected").ok();
    net.assert_nothing_left("appcon99nected");
}

/// Two queue pairs (a NAD's `rxQueues`/`txQueues`), the app restarted
/// twenty times: every connect and disconnect of a ring the PMD thread
/// polls at a non-zero offset. Before the `memif` client put each ring in
/// a region of its own, and before the harness kept DPDK's interrupt
/// thread and the peers off the PMD's CPU, ovs-vswitchd died (SIGSEGV in
/// DPDK 22.11's memif) in 4 of 6 `container_app` runs with two pairs.
#[test]
fn two_queue_pairs_survive_twenty_reconnects() {
    let _serial = serial();
    let net = Network::memif(Ovs::shared()).with_memif_queue_pairs(2);
    let (ns1, ns2) = (Netns::new(), Netns::new());
    let r1 = net.add("twoqA000000001", &ns1).ok();
    net.add("twoqB000000001", &ns2).ok();
    let options = net
        .ovs
        .vsctl(&["get", "Interface", "memif-twoqB0000000-net1", "options"]);
    assert!(options.contains("n_rxq=\"2\""), "{options}");
    let a1 = App::start(&ns1, &net.dir("shared/twoqA0000000"));
    let dir2 = net.dir("shared/twoqB0000000");
    for round in 0..20 {
        let a2 = App::start(&ns2, &dir2);
        let rings = a2.interface();
        assert_eq!(rings["state"], "up", "round {round}: {rings}");
        if round % 5 == 0 {
            assert_eq!(a2.ping(&address(&r1), 2), 2, "round {round}");
        }
    }
    drop(a1);
    for id in ["twoqA000000001", "twoqB000000001"] {
        net.del(id).ok();
        net.assert_nothing_left(id);
    }
}
