//! Builds the built-in components (engines/*) for wasm32-unknown-unknown
//! with the workspace's `wasm` profile, turns each core module into a
//! component with wit-component, and leaves them in OUT_DIR for
//! `include_bytes!`: `cargo build --release` yields one self-contained
//! binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, file stem) of each built-in component.
const BUILT_IN: &[(&str, &str)] = &[
    ("engine-ovs-dpdk", "engine_ovs_dpdk"),
    ("engine-vpp", "engine_vpp"),
    ("naming-go-compatible", "naming_go_compatible"),
    ("ipam-chain-delegate", "ipam_chain_delegate"),
];
const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for dir in ["wit", "sdk", "engines"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    println!(
        "cargo:rustc-env=USERSPACE_WASMTIME_VERSION={}",
        wasmtime_version(&root)
    );
    println!(
        "cargo:rustc-env=USERSPACE_WIT_VERSION={}",
        wit_version(&root)
    );
    let target_dir = root.join("target").join("engines");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (package, stem) in BUILT_IN {
        let status = Command::new(&cargo)
            .current_dir(&root)
            .args([
                "build",
                "--quiet",
                "--package",
                package,
                "--target",
                TARGET,
                "--profile",
                "wasm",
            ])
            .arg("--target-dir")
            .arg(&target_dir)
            // The host build's flags (coverage, sanitizers, target) are not the guest's.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("run cargo to build the built-in components");
        assert!(
            status.success(),
            "building {package} for {TARGET} failed; is the target installed? \
             (rustup target add {TARGET})"
        );
        let module_path = target_dir
            .join(TARGET)
            .join("wasm")
            .join(format!("{stem}.wasm"));
        let module = std::fs::read(&module_path)
            .unwrap_or_else(|e| panic!("{}: {e}", module_path.display()));
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|encoder| encoder.validate(true).encode())
            .unwrap_or_else(|e| panic!("componentize {package}: {e:?}"));
        // The digest is the cache key: computing it here spares every CNI
        // call hashing the embedded bytes.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&component));
        std::fs::write(out.join(format!("{package}.wasm")), &component).unwrap();
        std::fs::write(out.join(format!("{package}.sha256")), digest).unwrap();
    }
}

/// The wasmtime version from Cargo.lock, for the precompiled-artifact cache key.
fn wasmtime_version(root: &Path) -> String {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasmtime\"" {
            if let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \"")) {
                return v.trim_end_matches('"').to_string();
            }
        }
    }
    "unknown".to_string()
}

/// The version in `package userspace:cni@X;` of the WIT package.
fn wit_version(root: &Path) -> String {
    let wit =
        std::fs::read_to_string(root.join("wit/userspace-cni.wit")).expect("read the WIT package");
    wit.lines()
        .find_map(|l| l.trim().strip_prefix("package userspace:cni@"))
        .map(|v| v.trim_end_matches(';').to_string())
        .expect("wit/userspace-cni.wit declares `package userspace:cni@<version>;`")
}
