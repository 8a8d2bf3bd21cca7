//! `up --tap`: a kernel TAP device per interface, in the container's
//! network namespace, named as the CNI ifname and carrying the IPAM
//! address, MAC and routes, so that ordinary socket programs use the
//! userspace interface. The daemon moves frames between the TAP and the
//! memif or vhost-user rings. The device is not persistent: it goes away
//! with the app's file descriptor.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::mem::zeroed;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{bail, Context, Result};

use crate::spec::{netmask, InterfaceSpec, Route};

/// The largest frame read from the TAP (its MTU is the kernel's 1500).
const MAX_FRAME: usize = 9216;

pub struct Tap {
    file: File,
    name: String,
    /// Reused read buffers, one per frame of a burst.
    buffers: Vec<Vec<u8>>,
}

impl Tap {
    /// Creates the TAP for `spec` in the current network namespace, with
    /// its MAC, address, routes, and up.
    pub fn create(spec: &InterfaceSpec) -> Result<Tap> {
        let name = &spec.if_name;
        // `%` would make the kernel pick a name of its own.
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || !name.is_ascii() || name.contains('%')
        {
            bail!("interface {name:?}: not a kernel interface name (1-15 ASCII bytes, no %)");
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .context("open /dev/net/tun (a TAP needs it and CAP_NET_ADMIN)")?;
        let mut request = ifreq(name);
        // Exclusive: never attach to a persistent TAP someone left there.
        request.ifr_ifru.ifru_flags =
            (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_TUN_EXCL) as libc::c_short;
        // SAFETY: TUNSETIFF reads an ifreq, which `request` is, for the
        // duration of the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) };
        check(rc, || format!("create TAP {name}"))?;
        let tap = Tap {
            file,
            name: name.clone(),
            buffers: Vec::new(),
        };
        // No carrier until the vSwitch's side is connected.
        tap.set_carrier(false);
        let control = control_socket()?;

        let mut request = ifreq(name);
        // SAFETY: writing plain-data fields of the union member SIOCSIFHWADDR reads.
        unsafe {
            request.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
            for (slot, byte) in request
                .ifr_ifru
                .ifru_hwaddr
                .sa_data
                .iter_mut()
                .zip(spec.mac)
            {
                *slot = byte as libc::c_char;
            }
        }
        tap.ioctl(&control, libc::SIOCSIFHWADDR, &mut request, "set its MAC")?;

        let mut request = ifreq(name);
        request.ifr_ifru.ifru_addr = sockaddr(spec.address);
        tap.ioctl(&control, libc::SIOCSIFADDR, &mut request, "set its address")?;
        let mut request = ifreq(name);
        request.ifr_ifru.ifru_netmask = sockaddr(netmask(spec.prefix_len));
        tap.ioctl(
            &control,
            libc::SIOCSIFNETMASK,
            &mut request,
            "set its netmask",
        )?;

        // Up, keeping the flags the kernel gave it (multicast, broadcast).
        let mut request = ifreq(name);
        tap.ioctl(&control, libc::SIOCGIFFLAGS, &mut request, "read its flags")?;
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        let flags = unsafe { request.ifr_ifru.ifru_flags };
        request.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        tap.ioctl(&control, libc::SIOCSIFFLAGS, &mut request, "bring it up")?;

        for route in &spec.routes {
            tap.add_route(&control, route)?;
        }
        Ok(tap)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// The link state the kernel sees: on while the vSwitch's side is
    /// connected, so that it does not route into a dead link. (Kernels
    /// before 5.0 lack the ioctl: the carrier then stays on.)
    pub fn set_carrier(&self, on: bool) {
        let value = libc::c_int::from(on);
        // SAFETY: TUNSETCARRIER reads one int, alive for the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNSETCARRIER, &value) };
        if rc < 0 {
            tracing::debug!(tap = %self.name, "carrier: {}", std::io::Error::last_os_error());
        }
    }

    /// Reads up to `burst` frames the kernel sent, without blocking, and
    /// hands them to `f` at once. An error is the device gone (deleted
    /// under us): the caller must stop using it.
    pub fn read_burst(&mut self, burst: usize, f: impl FnOnce(&[&[u8]])) -> std::io::Result<usize> {
        let mut lengths = Vec::with_capacity(burst);
        while lengths.len() < burst {
            if self.buffers.len() <= lengths.len() {
                self.buffers.push(vec![0; MAX_FRAME]);
            }
            match self.file.read(&mut self.buffers[lengths.len()]) {
                Ok(n) if n > 0 => lengths.push(n),
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("TAP {}: {e}", self.name),
                    ))
                }
            }
        }
        let frames: Vec<&[u8]> = lengths
            .iter()
            .zip(&self.buffers)
            .map(|(&n, buffer)| &buffer[..n])
            .collect();
        if !frames.is_empty() {
            f(&frames);
        }
        Ok(frames.len())
    }

    /// Gives a received frame to the kernel; dropped when its queue is
    /// full, as a NIC would.
    pub fn write(&mut self, frame: &[u8]) {
        let _ = self.file.write(frame);
    }

    fn add_route(&self, control: &OwnedFd, route: &Route) -> Result<()> {
        // A pod's primary network has its default route already; as `ip
        // route add` would, the secondary network's does not go next to
        // it (the kernel's ioctl would add a second one).
        let table = std::fs::read_to_string("/proc/self/net/route").unwrap_or_default();
        if route_in(&table, route.dst, netmask(route.prefix_len)) {
            tracing::warn!(
                tap = %self.name,
                "a route to {}/{} exists already: left as it is",
                route.dst,
                route.prefix_len
            );
            return Ok(());
        }
        // SAFETY: rtentry is plain data; all-zero is its empty value.
        let mut entry: libc::rtentry = unsafe { zeroed() };
        entry.rt_dst = sockaddr(route.dst);
        entry.rt_genmask = sockaddr(netmask(route.prefix_len));
        entry.rt_flags = libc::RTF_UP;
        if let Some(gateway) = route.gateway {
            entry.rt_gateway = sockaddr(gateway);
            entry.rt_flags |= libc::RTF_GATEWAY;
        }
        let mut device = std::ffi::CString::new(self.name.as_str())?.into_bytes_with_nul();
        entry.rt_dev = device.as_mut_ptr().cast();
        // SAFETY: SIOCADDRT reads an rtentry and the NUL-terminated device
        // name it points to, both alive for the call.
        let rc = unsafe { libc::ioctl(control.as_raw_fd(), libc::SIOCADDRT, &entry) };
        check(rc, || {
            format!(
                "TAP {}: add the route {}/{} via {:?}",
                self.name, route.dst, route.prefix_len, route.gateway
            )
        })
    }

    fn ioctl(
        &self,
        control: &OwnedFd,
        request: libc::Ioctl,
        ifr: &mut libc::ifreq,
        what: &str,
    ) -> Result<()> {
        // SAFETY: each request used here reads or writes one ifreq, which
        // `ifr` is, for the duration of the call.
        let rc = unsafe { libc::ioctl(control.as_raw_fd(), request, ifr as *mut libc::ifreq) };
        check(rc, || format!("TAP {}: {what}", self.name))
    }
}

/// Whether `table` (`/proc/self/net/route`, this namespace's main table:
/// addresses are the kernel's be32 printed as a native-endian hex number)
/// has a route to `dst` with `mask`.
fn route_in(table: &str, dst: Ipv4Addr, mask: Ipv4Addr) -> bool {
    let address = |hex: &str| {
        u32::from_str_radix(hex, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 7 && address(fields[1]) == Some(dst) && address(fields[7]) == Some(mask)
    })
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all-zero is its empty value.
    let mut request: libc::ifreq = unsafe { zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    request
}

fn sockaddr(address: Ipv4Addr) -> libc::sockaddr {
    let inet = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(address).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are the same size, the kernel's
    // view of an AF_INET address.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(inet) }
}

fn control_socket() -> Result<OwnedFd> {
    rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .context("a socket for interface ioctls")
}

fn check(rc: libc::c_int, what: impl FnOnce() -> String) -> Result<()> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).with_context(what);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_reads_in_the_kernels_byte_order() {
        // 10.77.0.0/24 on net1, and a default route via 192.0.2.1 on eth0,
        // as a little-endian kernel prints them.
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     net1\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let net = |a: &str| a.parse::<Ipv4Addr>().unwrap();
        if cfg!(target_endian = "little") {
            assert!(route_in(table, net("10.77.0.0"), netmask(24)));
            assert!(route_in(table, Ipv4Addr::UNSPECIFIED, netmask(0)));
            assert!(!route_in(table, net("10.77.0.0"), netmask(16)));
            assert!(!route_in(table, net("10.9.0.0"), netmask(24)));
        }
        assert_eq!(netmask(24), net("255.255.255.0"));
        assert_eq!(netmask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(netmask(32), Ipv4Addr::BROADCAST);
    }
}
