//! Our client against our server, in one process: handshake, frames both
//! ways on every queue, refusals, disconnect.

use std::thread;

use memif::{Client, ClientConfig, Error, RxMode, Server, ServerConfig};

fn configs(dir: &std::path::Path) -> (ServerConfig, ClientConfig) {
    let socket = dir.join("memif.sock");
    let mut server = ServerConfig::new(&socket);
    server.id = 3;
    server.secret = "s3cret".into();
    server.tx_queues = 2;
    server.rx_queues = 1;
    let mut client = ClientConfig::new(&socket);
    client.id = 3;
    client.secret = "s3cret".into();
    client.log2_ring_size = 4;
    (server, client)
}

/// Receives until `want` frames arrived on any queue (bounded by tries).
fn receive(conn: &mut memif::Connection, want: usize) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for _ in 0..1_000_000 {
        for q in 0..conn.rx_queues() {
            conn.rx_burst(q, 32, |f| frames.push(f.to_vec()));
        }
        if frames.len() >= want {
            break;
        }
        std::hint::spin_loop();
    }
    frames
}

#[test]
fn frames_flow_both_ways_on_every_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (scfg, ccfg) = configs(dir.path());
    let server = Server::bind(scfg).unwrap();
    let client = thread::spawn(move || Client::connect(&ccfg).unwrap());
    let mut s = server.accept().unwrap();
    let mut c = client.join().unwrap();
    assert_eq!(c.rx_queues(), 2);
    assert_eq!(c.tx_queues(), 1);
    assert_eq!(s.tx_queues(), 2);

    // More frames than a ring holds, in bursts: indices wrap around.
    for round in 0..10u8 {
        let frames: Vec<Vec<u8>> = (0..12).map(|i| vec![round, i, 0xab, 0xcd]).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        assert_eq!(c.tx_burst(0, &refs), 12);
        assert_eq!(receive(&mut s, 12), frames);
        for q in 0..2 {
            assert_eq!(s.tx_burst(q, &refs[..6]), 6, "server queue {q}");
        }
        let back = receive(&mut c, 12);
        assert_eq!(back.len(), 12);
    }
    assert_eq!(c.counters().tx_frames, 120);
    assert_eq!(c.counters().rx_frames, 120);
    assert_eq!(s.counters().drops, 0);

    // A full ring refuses the excess instead of overwriting.
    let big: Vec<&[u8]> = vec![&[1u8; 60]; 40];
    assert_eq!(c.tx_burst(0, &big), 16);

    // Disconnect is seen by the peer.
    assert!(s.poll_disconnect().is_none());
    c.disconnect("bye").unwrap();
    let reason = s.poll_disconnect().expect("disconnect seen");
    assert!(reason.contains("bye"), "{reason}");
}

#[test]
fn a_wrong_secret_or_id_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (secret, id, why) in [
        ("wrong", 3, "incorrect secret"),
        ("s3cret", 9, "no interface with id 9"),
    ] {
        let (scfg, mut ccfg) = configs(dir.path());
        ccfg.secret = secret.into();
        ccfg.id = id;
        let server = Server::bind(scfg).unwrap();
        let client = thread::spawn(move || Client::connect(&ccfg));
        assert!(server.accept().is_err());
        match client.join().unwrap() {
            Err(Error::Refused { reason, .. }) => assert!(reason.contains(why), "{reason}"),
            Err(other) => panic!("expected a refusal, got {other}"),
            Ok(_) => panic!("connected with {secret}/{id}"),
        }
    }
}

#[test]
fn interrupt_mode_wakes_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (scfg, mut ccfg) = configs(dir.path());
    ccfg.rx_mode = RxMode::Interrupt;
    let server = Server::bind(scfg).unwrap();
    let client = thread::spawn(move || Client::connect(&ccfg).unwrap());
    let mut s = server.accept().unwrap();
    let mut c = client.join().unwrap();
    assert_eq!(s.tx_burst(1, &[b"wake up".as_slice()]), 1);
    let eventfd = c.rx_eventfd(1);
    let mut fds = [rustix::event::PollFd::new(
        &eventfd,
        rustix::event::PollFlags::IN,
    )];
    let ready = rustix::event::poll(
        &mut fds,
        Some(&rustix::event::Timespec {
            tv_sec: 5,
            tv_nsec: 0,
        }),
    )
    .unwrap();
    assert_eq!(ready, 1, "the eventfd was written");
    c.ack_interrupt(1);
    let mut got = Vec::new();
    c.rx_burst(1, 8, |f| got.push(f.to_vec()));
    assert_eq!(got, vec![b"wake up".to_vec()]);
}

/// A client that hands over a memfd it could still shrink is refused:
/// shrinking it after the server mapped it would crash the server.
#[test]
fn an_unsealed_region_is_refused() {
    use std::io::{IoSlice, IoSliceMut};
    use std::mem::MaybeUninit;
    use std::os::fd::AsFd;

    use memif::{Message, Mode};
    use rustix::net::{
        AddressFamily, RecvAncillaryBuffer, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
        SendFlags, SocketAddrUnix, SocketFlags, SocketType,
    };

    let dir = tempfile::tempdir().unwrap();
    let (scfg, _) = configs(dir.path());
    let socket_path = scfg.socket.clone();
    let server = Server::bind(scfg).unwrap();
    let client = thread::spawn(move || {
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        rustix::net::connect(&sock, &SocketAddrUnix::new(&socket_path).unwrap()).unwrap();
        let recv = |sock: &std::os::fd::OwnedFd| {
            let mut buf = [0u8; 128];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let n = rustix::net::recvmsg(
                sock,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::empty(),
            )
            .unwrap()
            .bytes;
            Message::decode(&buf[..n]).unwrap()
        };
        assert!(matches!(recv(&sock), Message::Hello { .. }));
        let init = Message::Init {
            version: 0x200,
            id: 3,
            mode: Mode::Ethernet,
            secret: "s3cret".into(),
            name: "shrinker".into(),
        };
        rustix::net::send(&sock, &init.encode(), SendFlags::empty()).unwrap();
        assert_eq!(recv(&sock), Message::Ack);
        // A memfd without F_SEAL_SHRINK.
        let memfd = rustix::fs::memfd_create("unsealed", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        rustix::fs::ftruncate(&memfd, 1 << 20).unwrap();
        let region = Message::AddRegion {
            index: 0,
            size: 1 << 20,
        }
        .encode();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [memfd.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &sock,
            &[IoSlice::new(&region)],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
        recv(&sock)
    });
    assert!(server.accept().is_err());
    match client.join().unwrap() {
        Message::Disconnect { reason, .. } => {
            assert!(reason.contains("cannot map region 0"), "{reason}")
        }
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}
