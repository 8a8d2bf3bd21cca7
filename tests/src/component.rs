//! Builds a test component from `tests/components/<package>` into a
//! component file, the way a vendor would build theirs: outside the host's
//! build, with the SDK.

use std::path::{Path, PathBuf};
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

/// What [`bloated`] adds to a component when it is instantiated.
#[derive(Debug, Clone, Copy)]
pub enum Bloat {
    /// Nine hundred instances of an empty core module (wasmparser takes at
    /// most a thousand in a component, its own included).
    Instances,
    /// Ten instances of a core module with a hundred tables.
    Tables,
    /// Ten instances of a core module with a hundred (empty) memories.
    Memories,
}

/// `component` with hundreds more core instances, or a thousand tables or
/// memories,
/// created when it is instantiated; its exports are untouched, so it is
/// admitted as before. The sections are appended at the top level (a
/// component's sections may come in any order), the new module taking
/// the next index in the core module index space.
pub fn bloated(component: &Path, bloat: Bloat) -> PathBuf {
    let mut bytes = std::fs::read(component).unwrap();
    let module_index = core_modules(&bytes);
    let (memories, tables, instances) = match bloat {
        Bloat::Instances => (0, 0, 900),
        Bloat::Tables => (0, 100, 10),
        Bloat::Memories => (100, 0, 10),
    };
    let mut module = wasm_encoder::Module::new();
    let mut table_section = wasm_encoder::TableSection::new();
    for _ in 0..tables {
        table_section.table(wasm_encoder::TableType {
            element_type: wasm_encoder::RefType::FUNCREF,
            table64: false,
            minimum: 1,
            maximum: None,
            shared: false,
        });
    }
    let mut memory_section = wasm_encoder::MemorySection::new();
    for _ in 0..memories {
        memory_section.memory(wasm_encoder::MemoryType {
            minimum: 0,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }
    module.section(&table_section).section(&memory_section);
    use wasm_encoder::ComponentSection;
    wasm_encoder::ModuleSection(&module).append_to_component(&mut bytes);
    let mut instance_section = wasm_encoder::InstanceSection::new();
    for _ in 0..instances {
        instance_section.instantiate(module_index, Vec::<(&str, wasm_encoder::ModuleArg)>::new());
    }
    instance_section.append_to_component(&mut bytes);
    let out = component.with_file_name(format!(
        "{}.{bloat:?}.wasm",
        component.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::write(&out, bytes).unwrap();
    out
}

/// How many core modules a component's top level defines or aliases.
fn core_modules(component: &[u8]) -> u32 {
    use wasmparser::{Chunk, ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind};
    use wasmparser::{Parser, Payload};
    let mut parser = Parser::new(0);
    let (mut offset, mut modules) = (0, 0);
    loop {
        let Chunk::Parsed { consumed, payload } = parser
            .parse(&component[offset..], true)
            .expect("a component")
        else {
            unreachable!("the whole component is in memory")
        };
        offset += consumed;
        match payload {
            // The outer parser has moved past a nested module or component;
            // its bytes are skipped here.
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                modules += 1;
                offset += unchecked_range.len();
            }
            Payload::ComponentSection {
                unchecked_range, ..
            } => offset += unchecked_range.len(),
            Payload::ComponentAliasSection(aliases) => {
                for alias in aliases {
                    match alias.expect("an alias") {
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Module,
                            ..
                        }
                        | ComponentAlias::Outer {
                            kind: ComponentOuterAliasKind::CoreModule,
                            ..
                        } => modules += 1,
                        _ => {}
                    }
                }
            }
            Payload::End(_) => return modules,
            _ => {}
        }
    }
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
