//! Fault injection for the crash-consistency tests: with
//! `USERSPACE_CRASH_AT=N` in its environment the process SIGKILLs itself
//! at the N-th crash point it passes, as a kubelet timing out a sandbox
//! would. Runtimes never set the variable; without it a crash point is one
//! relaxed atomic add.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static PASSED: AtomicUsize = AtomicUsize::new(0);

/// A place where a crash must leave a journal that DEL or GC can replay.
pub(crate) fn point(what: &str) {
    static TARGET: OnceLock<Option<usize>> = OnceLock::new();
    let Some(target) =
        *TARGET.get_or_init(|| std::env::var("USERSPACE_CRASH_AT").ok()?.parse().ok())
    else {
        return;
    };
    if PASSED.fetch_add(1, Ordering::Relaxed) + 1 == target {
        eprintln!("USERSPACE_CRASH_AT={target}: killed at {what}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}
