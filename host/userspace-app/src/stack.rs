//! Just enough of a network stack for a userspace interface: answer ARP
//! and ICMP echo for our address, learn neighbours, and build the ARP
//! requests and echo requests `ping` needs.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
};

/// What one received frame meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A reply to send back.
    Reply(Vec<u8>),
    /// An echo reply for our ping: (ident, seq, from).
    EchoReply {
        ident: u16,
        seq: u16,
        from: Ipv4Addr,
    },
    /// Learned or confirmed a neighbour (already in the table).
    Learned,
    Ignored,
}

/// The most neighbours kept: a peer sending ARP from endless source
/// addresses makes the oldest go, never the table grow.
pub const MAX_NEIGHBOURS: usize = 256;

/// IPv4 neighbours and their MACs, at most [`MAX_NEIGHBOURS`]; when full,
/// a new one replaces the one learned longest ago.
#[derive(Debug, Default)]
pub struct Neighbours {
    macs: HashMap<Ipv4Addr, EthernetAddress>,
    /// Learning order, oldest first (each address once).
    order: VecDeque<Ipv4Addr>,
}

impl Neighbours {
    pub fn get(&self, ip: &Ipv4Addr) -> Option<&EthernetAddress> {
        self.macs.get(ip)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Ipv4Addr, &EthernetAddress)> {
        self.macs.iter()
    }

    /// Learns (or refreshes) `ip`: it becomes the newest.
    pub fn insert(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        if self.macs.insert(ip, mac).is_some() {
            self.order.retain(|known| *known != ip);
        } else if self.macs.len() > MAX_NEIGHBOURS {
            if let Some(oldest) = self.order.pop_front() {
                self.macs.remove(&oldest);
            }
        }
        self.order.push_back(ip);
    }
}

pub struct Stack {
    pub mac: EthernetAddress,
    pub ip: Ipv4Addr,
    pub neighbours: Neighbours,
    pub arp_replies_sent: u64,
    pub echo_replies_sent: u64,
}

const ETH_LEN: usize = 14;

impl Stack {
    pub fn new(mac: [u8; 6], ip: Ipv4Addr) -> Stack {
        Stack {
            mac: EthernetAddress(mac),
            ip,
            neighbours: Neighbours::default(),
            arp_replies_sent: 0,
            echo_replies_sent: 0,
        }
    }

    /// Handles one received frame.
    pub fn receive(&mut self, frame: &[u8]) -> Event {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Event::Ignored;
        };
        if eth.dst_addr() != self.mac && !eth.dst_addr().is_broadcast() {
            return Event::Ignored;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.receive_arp(eth.payload()),
            EthernetProtocol::Ipv4 => self.receive_ipv4(eth.src_addr(), eth.payload()),
            _ => Event::Ignored,
        }
    }

    fn receive_arp(&mut self, payload: &[u8]) -> Event {
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            return Event::Ignored;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return Event::Ignored;
        };
        let source_ip: Ipv4Addr = source_protocol_addr;
        if target_protocol_addr != self.ip {
            return Event::Ignored;
        }
        self.neighbours.insert(source_ip, source_hardware_addr);
        if operation != ArpOperation::Request {
            return Event::Learned;
        }
        self.arp_replies_sent += 1;
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.ip,
            target_hardware_addr: source_hardware_addr,
            target_protocol_addr: source_ip,
        };
        Event::Reply(self.arp_frame(source_hardware_addr, &reply))
    }

    fn receive_ipv4(&mut self, src_mac: EthernetAddress, payload: &[u8]) -> Event {
        let caps = ChecksumCapabilities::default();
        let Ok(packet) = Ipv4Packet::new_checked(payload) else {
            return Event::Ignored;
        };
        let Ok(ip) = Ipv4Repr::parse(&packet, &caps) else {
            return Event::Ignored;
        };
        if ip.dst_addr != self.ip || ip.next_header != IpProtocol::Icmp {
            return Event::Ignored;
        }
        let Ok(icmp_packet) = Icmpv4Packet::new_checked(packet.payload()) else {
            return Event::Ignored;
        };
        match Icmpv4Repr::parse(&icmp_packet, &caps) {
            Ok(Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }) => {
                self.neighbours.insert(ip.src_addr, src_mac);
                self.echo_replies_sent += 1;
                let reply = Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                };
                Event::Reply(self.icmp_frame(src_mac, ip.src_addr, &reply))
            }
            Ok(Icmpv4Repr::EchoReply { ident, seq_no, .. }) => Event::EchoReply {
                ident,
                seq: seq_no,
                from: ip.src_addr,
            },
            _ => Event::Ignored,
        }
    }

    /// A broadcast ARP request for `ip`.
    pub fn arp_request(&self, ip: Ipv4Addr) -> Vec<u8> {
        let request = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        self.arp_frame(EthernetAddress::BROADCAST, &request)
    }

    /// An ICMP echo request to `dst` through `next_hop_mac`.
    pub fn echo_request(
        &self,
        next_hop_mac: EthernetAddress,
        dst: Ipv4Addr,
        ident: u16,
        seq: u16,
        data: &[u8],
    ) -> Vec<u8> {
        let request = Icmpv4Repr::EchoRequest {
            ident,
            seq_no: seq,
            data,
        };
        self.icmp_frame(next_hop_mac, dst, &request)
    }

    fn arp_frame(&self, dst: EthernetAddress, arp: &ArpRepr) -> Vec<u8> {
        let mut buf = vec![0u8; ETH_LEN + arp.buffer_len()];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst,
            ethertype: EthernetProtocol::Arp,
        }
        .emit(&mut eth);
        arp.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
        buf
    }

    fn icmp_frame(&self, dst_mac: EthernetAddress, dst: Ipv4Addr, icmp: &Icmpv4Repr) -> Vec<u8> {
        let caps = ChecksumCapabilities::default();
        let ip = Ipv4Repr {
            src_addr: self.ip,
            dst_addr: dst,
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; ETH_LEN + ip.buffer_len() + icmp.buffer_len()];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: dst_mac,
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut eth);
        let mut packet = Ipv4Packet::new_unchecked(eth.payload_mut());
        ip.emit(&mut packet, &caps);
        icmp.emit(
            &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
            &caps,
        );
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Stack, Stack) {
        (
            Stack::new([2, 0, 0, 0, 0, 1], "10.0.0.1".parse().unwrap()),
            Stack::new([2, 0, 0, 0, 0, 2], "10.0.0.2".parse().unwrap()),
        )
    }

    #[test]
    fn arp_then_ping_between_two_stacks() {
        let (mut a, mut b) = pair();
        let request = a.arp_request(b.ip);
        let Event::Reply(reply) = b.receive(&request) else {
            panic!("b answers ARP")
        };
        assert_eq!(a.receive(&reply), Event::Learned);
        let b_mac = *a.neighbours.get(&b.ip).unwrap();
        assert_eq!(b_mac, b.mac);

        let echo = a.echo_request(b_mac, b.ip, 7, 1, b"abcdefgh");
        let Event::Reply(pong) = b.receive(&echo) else {
            panic!("b answers echo")
        };
        assert_eq!(
            a.receive(&pong),
            Event::EchoReply {
                ident: 7,
                seq: 1,
                from: b.ip
            }
        );
        assert_eq!(b.echo_replies_sent, 1);
    }

    /// A flood of ARP from 100k source addresses: the table stays at its
    /// cap, holds the newest, and the stack still answers.
    #[test]
    fn an_arp_flood_from_endless_sources_keeps_the_table_bounded() {
        let (_, mut b) = pair();
        for n in 0..100_000u32 {
            let mut flooder = Stack::new([2, 1, 0, 0, 0, 9], Ipv4Addr::from(0x0a80_0000 + n));
            flooder.mac = EthernetAddress([2, 1, (n >> 16) as u8, (n >> 8) as u8, n as u8, 9]);
            assert!(matches!(
                b.receive(&flooder.arp_request(b.ip)),
                Event::Reply(_)
            ));
        }
        assert_eq!(b.neighbours.iter().count(), MAX_NEIGHBOURS);
        assert!(b
            .neighbours
            .get(&Ipv4Addr::from(0x0a80_0000 + 99_999))
            .is_some());
        assert!(b.neighbours.get(&Ipv4Addr::from(0x0a80_0000)).is_none());
        let (mut a, _) = pair();
        let Event::Reply(reply) = b.receive(&a.arp_request(b.ip)) else {
            panic!("b still answers ARP")
        };
        assert_eq!(a.receive(&reply), Event::Learned);
    }

    #[test]
    fn a_refreshed_neighbour_is_the_newest() {
        let mut table = Neighbours::default();
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        for n in 0..MAX_NEIGHBOURS as u32 {
            table.insert(Ipv4Addr::from(n), mac);
        }
        table.insert(Ipv4Addr::from(0), mac);
        table.insert(Ipv4Addr::from(10_000), mac);
        assert!(
            table.get(&Ipv4Addr::from(0)).is_some(),
            "refreshed, so kept"
        );
        assert!(table.get(&Ipv4Addr::from(1)).is_none(), "the oldest went");
        assert_eq!(table.iter().count(), MAX_NEIGHBOURS);
    }

    #[test]
    fn frames_for_others_and_garbage_are_ignored() {
        let (a, mut b) = pair();
        let mut c = Stack::new([2, 0, 0, 0, 0, 3], "10.0.0.3".parse().unwrap());
        assert_eq!(c.receive(&a.arp_request(b.ip)), Event::Ignored);
        let echo = a.echo_request(b.mac, b.ip, 1, 1, b"x");
        assert_eq!(c.receive(&echo), Event::Ignored);
        assert_eq!(b.receive(&[0u8; 10]), Event::Ignored);
        assert_eq!(b.receive(&[0xffu8; 60]), Event::Ignored);
    }
}
