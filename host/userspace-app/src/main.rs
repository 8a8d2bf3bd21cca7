//! `userspace-app`: the container side of userspace-cni.
//!
//! `up` reads what the plugin published for this container (the
//! downward-API annotations file, or the `configData-*.json` files in the
//! mapped directory), connects each memif
//! or vhost-user interface with the right role, takes its address and MAC from the IPAM
//! result and answers ARP and ping. `ping`, `show` and `wait` talk to the
//! running `up`, the way `vppctl` talks to VPP.

use userspace_app::annotations;
mod ctl;
mod daemon;
mod dpdk_args;
mod port;
mod spec;
mod stack;
mod tap;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::Value;

use ctl::Request;

/// Where the Go plugin's container apps found their data.
const DEFAULT_DIR: &str = "/var/lib/cni/usrspcni";

#[derive(Parser)]
#[command(
    name = "userspace-app",
    version,
    about = "Runs the userspace interfaces userspace-cni gave this container"
)]
struct Cli {
    /// The mapped directory holding configData-*.json and the sockets.
    #[arg(long, global = true, default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// The control socket (default: DIR/userspace-app.ctl).
    #[arg(long, global = true)]
    ctl: Option<PathBuf>,
    /// The downward-API annotations file; its container data, when
    /// present, is used instead of the configData files.
    #[arg(long, global = true, default_value = "/etc/podinfo/annotations")]
    annotations: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring the interfaces up and serve them until SIGTERM / SIGINT.
    Up {
        /// Give each interface to the kernel as a TAP device named as its
        /// CNI ifname, with its address, MAC and routes, so that ordinary
        /// programs use it (needs /dev/net/tun and CAP_NET_ADMIN); the
        /// devices go away with the app.
        #[arg(long)]
        tap: bool,
    },
    /// Ping an address through the userspace interfaces.
    Ping {
        address: std::net::Ipv4Addr,
        /// Echo requests to send.
        #[arg(long, short = 'c', default_value_t = 5)]
        count: u16,
        /// Seconds between requests, fractions allowed (as ping(8)'s -i).
        #[arg(long, short = 'i', default_value = "1", value_parser = seconds)]
        interval: Duration,
        /// Seconds to wait for the last reply, fractions allowed (as
        /// ping(8)'s -W).
        #[arg(long, short = 'W', default_value = "1", value_parser = seconds)]
        timeout: Duration,
        /// ICMP payload bytes.
        #[arg(long, short = 's', default_value_t = 56)]
        size: u16,
    },
    /// Interfaces, addresses, peers and rx/tx counters.
    Show {
        /// Print the daemon's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait until every interface is connected (exit 1 on timeout).
    Wait {
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
    /// Print the DPDK EAL arguments (one line, `--vdev=net_memifN,...` or
    /// `--vdev=virtio_userN,...` per interface) that give a DPDK app the
    /// published interfaces: `dpdk-testpmd $(userspace-app dpdk-args)
    /// --no-pci -- ...`. Exit 2, printing nothing, on bad container data.
    DpdkArgs {
        /// Only this interface (its CNI ifname); its vdev keeps its index.
        #[arg(long)]
        ifname: Option<String>,
        /// Print the arguments and each interface's details as JSON.
        #[arg(long)]
        json: bool,
        /// Print testpmd's own queue arguments instead (`--rxq=N --txq=N`,
        /// after its `--`): it must poll every queue the vSwitch sends on.
        #[arg(long, conflicts_with = "json")]
        testpmd: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("USERSPACE_APP_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    // As ping(8): 1 is a negative answer (no reply; not connected in
    // time), 2 an error.
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("userspace-app: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Seconds as ping(8) takes them: fractions allowed, from 1 ms to an hour.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.001..=3600.0).contains(&value) {
        return Err(format!("{text} s is not between 0.001 and 3600"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let ctl = cli
        .ctl
        .clone()
        .unwrap_or_else(|| cli.dir.join("userspace-app.ctl"));
    match cli.command {
        Command::Up { tap } => {
            let specs = spec::load(&cli.dir, &cli.annotations)?;
            for s in &specs {
                tracing::info!(interface = %s.if_name, address = %s.cidr(), socket = %s.socket.display(), "interface");
            }
            let (stop_rx, stop_tx) = UnixStream::pair()?;
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::low_level::pipe::register(signal, stop_tx.try_clone()?)
                    .context("install the signal handler")?;
            }
            let mut daemon = daemon::Daemon::new(specs, &ctl, tap)?;
            daemon.run(std::os::fd::AsFd::as_fd(&stop_rx))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ping {
            address,
            count,
            interval,
            timeout,
            size,
        } => {
            let (interval_ms, timeout_ms) =
                (interval.as_millis() as u64, timeout.as_millis() as u64);
            let request = Request::Ping {
                dst: address,
                count,
                interval_ms,
                timeout_ms,
                size,
            };
            let wait = Duration::from_millis(interval_ms * count as u64 + timeout_ms + 5000);
            let answer = ctl::call(&ctl, &request, wait, Duration::ZERO)?;
            print_ping(&answer);
            let received = answer["received"].as_u64().unwrap_or(0);
            Ok(if received > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Show { json } => {
            let answer = ctl::call(&ctl, &Request::Show, Duration::from_secs(5), Duration::ZERO)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_show(&answer);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::DpdkArgs {
            ifname,
            json,
            testpmd,
        } => {
            let specs = spec::load(&cli.dir, &cli.annotations)?;
            let (args, data) = dpdk_args::build(&specs, ifname.as_deref())?;
            if testpmd {
                println!(
                    "{}",
                    dpdk_args::testpmd_args(&specs, ifname.as_deref())?.join(" ")
                );
            } else if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                println!("{}", args.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait { timeout_secs } => {
            let request = Request::Wait {
                timeout_ms: timeout_secs * 1000,
            };
            let grace = Duration::from_secs(timeout_secs);
            let answer = ctl::call(&ctl, &request, Duration::from_secs(timeout_secs + 5), grace)?;
            print_show(&answer);
            if answer["connected"] == true {
                return Ok(ExitCode::SUCCESS);
            }
            let waiting: Vec<&str> = answer["interfaces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["state"] != "up")
                .filter_map(|i| i["name"].as_str())
                .collect();
            println!(
                "still waiting after {timeout_secs} s for: {}",
                waiting.join(", ")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_ping(a: &Value) {
    let (dst, size) = (
        a["dst"].as_str().unwrap_or("?"),
        a["size"].as_u64().unwrap_or(0),
    );
    println!(
        "PING {dst} from {} {}: {size} data bytes",
        a["src"].as_str().unwrap_or("?"),
        a["interface"].as_str().unwrap_or("")
    );
    if let Some(why) = a["unreachable"].as_str() {
        println!(
            "From {}: Destination Host Unreachable ({why})",
            a["src"].as_str().unwrap_or("?")
        );
    }
    for r in a["replies"].as_array().into_iter().flatten() {
        let rtt = r["rtt_us"].as_u64().unwrap_or(0) as f64 / 1000.0;
        println!(
            "{} bytes from {dst}: icmp_seq={} time={rtt:.3} ms",
            size + 8,
            r["seq"]
        );
    }
    let (tx, rx) = (
        a["transmitted"].as_u64().unwrap_or(0),
        a["received"].as_u64().unwrap_or(0),
    );
    let loss = (100 * tx.saturating_sub(rx)).checked_div(tx).unwrap_or(100);
    println!("\n--- {dst} ping statistics ---");
    println!("{tx} packets transmitted, {rx} received, {loss}% packet loss");
}

fn print_show(a: &Value) {
    for i in a["interfaces"].as_array().into_iter().flatten() {
        let text = |k: &str| i[k].as_str().unwrap_or("").to_string();
        println!(
            "{} ({}, {} {}) {}",
            text("name"),
            text("network"),
            text("type"),
            text("role"),
            text("state").to_uppercase()
        );
        println!("  address {}  mac {}", text("address"), text("mac"));
        println!("  socket  {}", text("socket"));
        if !text("peer").is_empty() {
            println!("  peer    {}", text("peer"));
        }
        if !text("detail").is_empty() {
            println!("  detail  {}", text("detail"));
        }
        println!(
            "  rx {} frames {} bytes   tx {} frames {} bytes   drops {}",
            i["rx_frames"], i["rx_bytes"], i["tx_frames"], i["tx_bytes"], i["drops"]
        );
        println!(
            "  answered {} ARP and {} echo requests",
            i["arp_replies"], i["echo_replies"]
        );
        for n in i["neighbours"].as_array().into_iter().flatten() {
            println!("  neighbour {}", n.as_str().unwrap_or(""));
        }
    }
}
