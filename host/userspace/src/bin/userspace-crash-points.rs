//! The plugin with its crash points armed (feature `crash-points`), for
//! the crash-consistency tests only; see `crash.rs`. Never shipped.

fn main() -> std::process::ExitCode {
    userspace::main()
}
