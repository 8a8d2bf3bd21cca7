//! `userspace`: the CNI plugin. The binary (`main.rs`) is this crate's
//! [`main`]; the library exists so that the crash-points test build
//! (`bin/userspace-crash-points.rs`) is the same code.
//!
//! A runtime execs it once per command with the CNI variables in the
//! environment and the network config on stdin. Only the result (or a CNI
//! error) is printed on stdout; logs go to stderr or `logFile`.

mod capabilities;
mod cli;
mod commands;
mod components;
mod confinement;
mod container_data;
mod crash;
mod go_plugin;
mod ipam;
mod journal;
mod logging;
mod names;
mod naming;
mod permissions;
mod pod;
mod policy;
mod record;
mod rollback;
mod scope;
mod shared_dir;
mod show;
mod store;
mod wit_host;

use std::io::{Read, Write};
use std::process::ExitCode;

use cni_protocol::{codes, CniError, Command, Environment, Version};
use netconf::{NetConf, MAX_CONFIG_BYTES};

/// What a command prints on success (DEL, GC and STATUS print nothing).
pub(crate) enum Output {
    Json(String),
    Nothing,
}

/// When the process started, for the cold-start figure logged at the
/// engine's first host call.
pub(crate) static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// The plugin's entry point: a CNI command, an operator's subcommand, or
/// a word on what this is.
pub fn main() -> ExitCode {
    STARTED.get_or_init(std::time::Instant::now);
    // A runtime always sets CNI_COMMAND; a person runs subcommands, or the
    // bare binary, which says what it is on stderr (stdout is for results
    // only) and exits 0, as the reference plugins' skeleton does, instead
    // of waiting for a config on stdin.
    if std::env::var_os("CNI_COMMAND").is_none_or(|c| c.is_empty()) {
        if std::env::args_os().len() > 1 {
            return cli::main();
        }
        eprintln!(
            "userspace-cni {}: a CNI plugin for memif and vhost-user interfaces on OVS-DPDK and VPP\n\
             CNI protocol versions supported: {}\n\
             run by a container runtime with CNI_COMMAND set; 'userspace --help' for the operator's commands",
            env!("CARGO_PKG_VERSION"),
            cni_protocol::SUPPORTED_VERSIONS.join(", ")
        );
        return ExitCode::SUCCESS;
    }
    let mut stdin = Vec::new();
    let read = std::io::stdin()
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut stdin);
    let requested_version = netconf::peek_version(&stdin);
    let outcome = read
        .map_err(|e| CniError::io("cannot read the network config from stdin", e))
        .and_then(|_| run(&stdin));
    let (text, code) = match outcome {
        Ok(Output::Json(json)) => (Some(json), ExitCode::SUCCESS),
        Ok(Output::Nothing) => (None, ExitCode::SUCCESS),
        Err(err) => {
            tracing::error!(code = err.code, "{err}");
            // The error is printed in the version the runtime asked for when
            // we support it, else in the newest we speak.
            let version = requested_version
                .filter(|v| Version::parse(v).is_ok())
                .unwrap_or_else(|| Version::V1_1_0.to_string());
            (Some(err.to_json(&version)), ExitCode::FAILURE)
        }
    };
    if let Some(text) = text {
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    code
}

fn run(stdin: &[u8]) -> Result<Output, CniError> {
    let env = Environment::from_vars(|name| std::env::var(name).ok())?;
    if env.command == Command::Version {
        // The input's version, echoed; with none, the newest we speak.
        let version = netconf::peek_version(stdin).unwrap_or_else(|| Version::V1_1_0.to_string());
        return Ok(Output::Json(cni_protocol::version_reply(&version)));
    }
    // Nothing the config names is used, not even its logFile, before the
    // node policy allows it.
    let confined = |mut conf: NetConf| {
        policy::load().and_then(|node| confinement::confine(&mut conf, node, &env))?;
        Ok::<_, CniError>(conf)
    };
    let (conf, unusable) = match NetConf::parse(stdin) {
        Ok(conf) => match confined(conf) {
            Ok(conf) => (conf, None),
            // A config the node policy refuses stays refused, DEL too: a
            // record replays the paths, sockets and plugins it names.
            Err(e) => return Err(failed_before_logging(stdin, e)),
        },
        // DEL undoes what the attachment record holds: a config that no
        // longer parses (an edited NAD, a newer plugin's keys) must not
        // leave the attachment behind for ever. What finds the record is
        // all it takes from the config.
        Err(e) if env.command == Command::Del => {
            let located = NetConf::locating_record(stdin).and_then(|mut conf| {
                let node = policy::load()?;
                confinement::confine_record_locator(&mut conf, node)?;
                Ok(conf)
            });
            match located {
                Ok(conf) => (conf, Some(e)),
                Err(_) => return Err(failed_before_logging(stdin, e)),
            }
        }
        Err(e) => return Err(failed_before_logging(stdin, e)),
    };
    logging::init(&conf);
    if let Some(e) = unusable {
        tracing::warn!(
            code = e.code,
            "DEL goes by the attachment record alone: {e}"
        );
    }
    tracing::debug!(source = %policy::node().source, "node policy");
    require_version_for(env.command, conf.cni_version)?;
    tracing::debug!(command = ?env.command, container = %env.container_id, ifname = %env.ifname, "start");
    let outcome = match env.command {
        Command::Add => commands::add::run(&env, &conf),
        Command::Del => commands::del::run(&env, &conf),
        Command::Check => commands::check::run(&env, &conf),
        Command::Status => commands::status::run(&env, &conf),
        Command::Gc => commands::gc::run(&env, &conf),
        Command::Version => unreachable!("answered above"),
    };
    if tracing::enabled!(tracing::Level::DEBUG) {
        log_own_cost();
    }
    outcome
}

/// `err`, after logging starts at the config's level (never to its
/// logFile, which the policy may not allow) when the config parses.
fn failed_before_logging(stdin: &[u8], err: CniError) -> CniError {
    if let Ok(mut conf) = NetConf::parse(stdin) {
        conf.log_file = None;
        logging::init(&conf);
    }
    err
}

/// CLOCK_MONOTONIC in nanoseconds: the clock a parent that timestamps the
/// exec shares with this process, so cold start counts exec, dynamic
/// loading and runtime start-up too (`micros` since `main` cannot).
pub(crate) fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The process's own CPU time and peak RSS (the wall time of a call is
/// mostly waiting for the vSwitch and IPAM; the scale bench reads these).
fn log_own_cost() {
    let cpu = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    let cpu_micros = cpu.tv_sec as u64 * 1_000_000 + cpu.tv_nsec as u64 / 1000;
    let peak_rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    tracing::debug!(cpu_micros, peak_rss_kib, "own cost");
}

/// CHECK exists from 0.4.0, STATUS and GC from 1.1.0.
fn require_version_for(command: Command, version: Version) -> Result<(), CniError> {
    let (name, since) = match command {
        Command::Check => ("CHECK", Version::V0_4_0),
        Command::Status => ("STATUS", Version::V1_1_0),
        Command::Gc => ("GC", Version::V1_1_0),
        _ => return Ok(()),
    };
    if version < since {
        return Err(CniError::new(
            codes::INCOMPATIBLE_VERSION,
            format!("cniVersion {version} does not allow {name}"),
            format!("{name} needs cniVersion {since} or later"),
        ));
    }
    Ok(())
}
