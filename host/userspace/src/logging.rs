//! Logs go to `logFile` (appended) when set, else to stderr; never stdout.

use netconf::{LogLevel, NetConf};
use tracing_subscriber::filter::LevelFilter;

pub(crate) fn init(conf: &NetConf) {
    let level = match conf.log_level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    let file = conf.log_file.as_ref().and_then(|path| {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a planted symlink: the plugin runs as root.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| eprintln!("userspace: cannot open logFile {path}: {e}; logging to stderr"))
            .ok()
    });
    let _ = match file {
        Some(file) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
}
