//! Fault injection for the crash-consistency tests. Built with the
//! `crash-points` feature (the `userspace-crash-points` binary, which only
//! the tests build), the process SIGKILLs itself at the N-th crash point it
//! passes when `USERSPACE_CRASH_AT=N` is in its environment, as a kubelet
//! timing out a sandbox would. In the shipped binary a crash point is
//! nothing at all, whatever the environment says.

#[cfg(feature = "crash-points")]
pub(crate) fn point(what: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    static PASSED: AtomicUsize = AtomicUsize::new(0);
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

/// A place where a crash must leave a journal that DEL or GC can replay.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub(crate) fn point(_what: &str) {}
