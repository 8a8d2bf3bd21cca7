//! `vpp-test-double`: the VPP TEST DOUBLE as a process, for the demo
//! (`examples/memif-ping/run.sh --vswitch vpp`). Not VPP.
//!
//!   vpp-test-double --socket PATH [--state-file PATH]
//!
//! Serves VPP's binary API on PATH until killed. With `--state-file`, that
//! file holds the modelled state, rewritten before any reply to a call
//! that changed it, so a script can show what the plugin did.

use std::path::PathBuf;

use vpp_test_double::{Options, VppDouble};

fn main() {
    let mut socket = None;
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .map(PathBuf::from)
                .unwrap_or_else(|| usage(&format!("{arg} needs a path")))
        };
        match arg.as_str() {
            "--socket" => socket = Some(value()),
            "--state-file" => options.state_file = Some(value()),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let socket = socket.unwrap_or_else(|| usage("--socket is required"));
    let _double = VppDouble::start(&socket, options);
    eprintln!(
        "VPP TEST DOUBLE (not VPP) serving the binary API on {}",
        socket.display()
    );
    // The double serves from its own threads; this one only keeps the
    // process alive until it is killed.
    loop {
        std::thread::park();
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "vpp-test-double: {problem}\nusage: vpp-test-double --socket PATH [--state-file PATH]"
    );
    std::process::exit(2)
}
