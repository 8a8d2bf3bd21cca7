//! Builds a test component from `tests/components/<package>` into a
//! component file, the way a vendor would build theirs: outside the host's
//! build, with the SDK.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::workspace;

/// Builds `package` for wasm32-unknown-unknown and componentizes it;
/// returns the component's path.
pub fn build(package: &str) -> PathBuf {
    let module = cargo_build(package, "wasm32-unknown-unknown");
    let component = wit_component::ComponentEncoder::default()
        .module(&std::fs::read(&module).unwrap())
        .and_then(|e| e.validate(true).encode())
        .expect("componentize");
    let out = module.with_file_name(format!("{package}.component.wasm"));
    std::fs::write(&out, component).unwrap();
    out
}

/// Builds `package` for wasm32-wasip2, whose linker emits a component
/// importing WASI; returns its path.
pub fn build_wasip2(package: &str) -> PathBuf {
    cargo_build(package, "wasm32-wasip2")
}

/// Builds the SDK example `sdk/examples/<name>` with the one command its
/// README gives (for wasm32-wasip2, in its own workspace); returns the
/// component's path.
pub fn build_sdk_example(name: &str) -> PathBuf {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workspace().join("sdk/examples").join(name);
    let target_dir = workspace().join("target/sdk-examples");
    let status = Command::new(env!("CARGO"))
        .current_dir(&dir)
        .args([
            "build",
            "--quiet",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the SDK example {name} failed");
    let stem = format!("{}_engine", name.replace('-', "_"));
    target_dir.join(format!("wasm32-wasip2/release/{stem}.wasm"))
}

/// Serialises cargo runs of the test harness.
static BUILD: Mutex<()> = Mutex::new(());

/// Runs cargo for `package` and `target` (one build at a time); returns
/// the `.wasm` it produced.
fn cargo_build(package: &str, target: &str) -> PathBuf {
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = workspace().join("target/test-components");
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["build", "--quiet", "-p", package, "--target", target])
        .args(["--profile", "wasm"])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo");
    assert!(status.success(), "building test component {package} failed");
    let stem = package.replace('-', "_");
    target_dir.join(format!("{target}/wasm/{stem}.wasm"))
}
