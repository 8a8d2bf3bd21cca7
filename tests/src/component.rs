//! Builds a test component from `tests/components/<package>` into a
//! component file, the way a vendor would build theirs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::workspace;

/// Builds `package` for wasm32-unknown-unknown and componentizes it;
/// returns the component's path. Builds are serialised.
pub fn build(package: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap();
    let root = workspace();
    let target_dir = root.join("target/test-components");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "-p",
            package,
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building test component {package} failed");
    let stem = package.replace('-', "_");
    let module =
        std::fs::read(target_dir.join(format!("wasm32-unknown-unknown/wasm/{stem}.wasm"))).unwrap();
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .expect("componentize");
    let out = target_dir.join(format!("{package}.wasm"));
    std::fs::write(&out, component).unwrap();
    out
}
