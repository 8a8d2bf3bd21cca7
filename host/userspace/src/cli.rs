//! The commands a person runs (`userspace components`, `validate`,
//! `precompile`, `attachments`) when the binary is not called as a CNI
//! plugin (no `CNI_COMMAND` in the environment).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use attachment_store::Store;
use clap::{Parser, Subcommand};
use netconf::NetConf;
use wasm_runtime::{Capability, Inspected, Role, Runtime, Source, WIT_PACKAGE, WIT_VERSION};

#[derive(Parser)]
#[command(
    name = "userspace",
    about = "userspace-cni: a CNI plugin for memif and vhost-user interfaces on OVS-DPDK or VPP.\n\
             Called with CNI_COMMAND set, it is the CNI plugin; without, these commands inspect it.",
    version
)]
struct Cli {
    /// State dir whose component cache and attachment records are used
    /// (default: the node policy's).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// List the built-in components, those in a components dir and those a
    /// network config names: package, WIT version, hash, capabilities.
    Components {
        /// An operator's components dir (its *.wasm files).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A network config: show the components it runs, with its grants.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a .wasm before deploying it: the world it implements, the WIT
    /// version it needs, the capabilities it imports. Exits 1 when this
    /// host would refuse it.
    Validate {
        file: PathBuf,
        /// The role it is meant for (default: the world it exports).
        #[arg(long, value_parser = ["engine", "naming", "ipam-chain"])]
        world: Option<String>,
        /// Capabilities the operator will grant (default: the world's).
        #[arg(long = "grant", value_delimiter = ',')]
        grants: Vec<String>,
    },
    /// Compile the built-in components and the given files into the cache,
    /// so the first CNI call does not pay for it.
    Precompile { files: Vec<PathBuf> },
    /// Show the attachments recorded on this host.
    Attachments,
    /// Copy this binary into a CNI bin dir (atomically: a CNI call running
    /// the old one is not disturbed) and precompile the built-in
    /// components; what the DaemonSet's init container runs.
    Install {
        /// The CNI bin dir, e.g. the host's /opt/cni/bin mounted in.
        #[arg(long)]
        to: PathBuf,
        /// Where the node policy goes: the defaults are written there when
        /// no policy is (an operator's policy is kept as it is).
        #[arg(long, default_value = node_policy::DEFAULT_PATH)]
        policy: PathBuf,
    },
    /// Show the node policy in force (or its error) and where it comes from.
    Policy,
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("userspace: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Commands::Policy = cli.command {
        let policy = node_policy::NodePolicy::load()?;
        eprintln!("node policy from {}", policy.source);
        println!("{}", policy.to_json_pretty());
        return Ok(ExitCode::SUCCESS);
    }
    let state_dir = match &cli.state_dir {
        Some(dir) => dir.clone(),
        None => match node_policy::NodePolicy::load() {
            Ok(policy) => policy.state_dir,
            // `install` may be what puts a policy right.
            Err(e) if matches!(cli.command, Commands::Install { .. }) => {
                eprintln!("userspace: {e}; using the default state dir");
                node_policy::NodePolicy::default().state_dir
            }
            Err(e) => return Err(e.into()),
        },
    };
    let runtime =
        || Runtime::new(state_dir.join("cache")).context("cannot start the component runtime");
    match &cli.command {
        Commands::Components { dir, config } => {
            let runtime = runtime()?;
            println!("{}", header());
            for (name, _) in wasm_runtime::built_ins() {
                println!(
                    "{}",
                    row(&runtime.inspect(&Source::BuiltIn(name.into()))?, "built in")
                );
            }
            if let Some(dir) = dir {
                for file in wasm_files(dir)? {
                    match runtime.inspect(&Source::File(file.clone())) {
                        Ok(inspected) => println!("{}", row(&inspected, "dir")),
                        Err(e) => println!(
                            "{}  not a component: {}",
                            file.display(),
                            e.to_string().lines().next().unwrap_or_default()
                        ),
                    }
                }
            }
            if let Some(config) = config {
                list_configured(&runtime, config)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Validate {
            file,
            world,
            grants,
        } => validate(&runtime()?, file, world.as_deref(), grants),
        Commands::Precompile { files } => {
            let runtime = runtime()?;
            let sources = wasm_runtime::built_ins()
                .map(|(name, _)| Source::BuiltIn(name.into()))
                .chain(files.iter().cloned().map(Source::File));
            for source in sources {
                let inspected = runtime.inspect(&source)?;
                println!("compiled {} ({})", inspected.name, short(&inspected.sha256));
            }
            println!("cache: {}", runtime.cache_dir().display());
            Ok(ExitCode::SUCCESS)
        }
        Commands::Attachments => attachments(&state_dir),
        Commands::Policy => unreachable!("answered above"),
        Commands::Install { to, policy } => {
            let installed = install(to)?;
            println!("installed {}", installed.display());
            println!("{}", install_policy(policy)?);
            let runtime = runtime()?;
            for (name, _) in wasm_runtime::built_ins() {
                runtime.inspect(&Source::BuiltIn(name.into()))?;
            }
            println!(
                "precompiled the built-in components into {}",
                runtime.cache_dir().display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn header() -> String {
    format!(
        "{:<11} {:<40} {:<32} {:<6} {:<12} {:>7}  CAPABILITIES",
        "WORLD", "NAME", "PACKAGE", "WIT", "SHA256", "SIZE"
    )
}

fn row(c: &Inspected, origin: &str) -> String {
    let m = &c.manifest;
    format!(
        "{:<11} {:<40} {:<32} {:<6} {:<12} {:>5}KB  {}  ({origin})",
        m.world.map_or("-", Role::world),
        c.name,
        c.package.as_deref().unwrap_or("-"),
        m.wit_versions.join(","),
        short(&c.sha256),
        c.size / 1024,
        m.capabilities
            .iter()
            .map(|c| c.as_str())
            .chain(m.foreign_imports.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn short(sha256: &str) -> &str {
    &sha256[..12.min(sha256.len())]
}

fn wasm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

/// The components a network config runs, each admitted or refused as a
/// CNI call would.
fn list_configured(runtime: &Runtime, config: &Path) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(config).with_context(|| format!("cannot read {}", config.display()))?;
    let conf = NetConf::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
    println!("\nnetwork {}:", conf.name);
    for role in Role::ALL {
        let spec = crate::components::spec(role, &conf).map_err(|e| anyhow::anyhow!("{e}"))?;
        let grants = spec.grants.iter().map(|c| c.as_str()).collect::<Vec<_>>();
        let verdict = match runtime.admits(role, &spec) {
            Ok(()) => "admitted".to_string(),
            Err(e) => format!("REFUSED: {e}"),
        };
        println!(
            "  {:<11} {:<40} grants [{}]: {verdict}",
            role.world(),
            spec.source.name(),
            grants.join(", ")
        );
    }
    Ok(())
}

fn validate(
    runtime: &Runtime,
    file: &Path,
    world: Option<&str>,
    grants: &[String],
) -> anyhow::Result<ExitCode> {
    let inspected = runtime.inspect(&Source::File(file.to_path_buf()))?;
    let m = &inspected.manifest;
    let role = match world {
        Some(w) => Role::ALL.into_iter().find(|r| r.world() == w),
        None => m.world,
    };
    println!("component:    {}", inspected.name);
    println!(
        "package:      {}",
        inspected
            .package
            .as_deref()
            .unwrap_or("- (not built with the SDK)")
    );
    println!("sha256:       {}", inspected.sha256);
    println!(
        "world:        {}",
        m.world.map_or("none of this host's", Role::world)
    );
    println!("built for:    {WIT_PACKAGE}@{}", m.wit_versions.join(", "));
    println!("this host:    {WIT_PACKAGE}@{WIT_VERSION}");
    let caps: Vec<&str> = m.capabilities.iter().map(|c| c.as_str()).collect();
    println!("capabilities: {}", caps.join(", "));
    if !m.foreign_imports.is_empty() {
        println!("other imports: {}", m.foreign_imports.join(", "));
    }
    let Some(role) = role else {
        println!(
            "verdict:      REFUSED: it exports [{}], which is no world of {WIT_PACKAGE}",
            m.exports.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    };
    let grants = if grants.is_empty() {
        role.default_grants().to_vec()
    } else {
        grants
            .iter()
            .map(|g| {
                Capability::parse(g).ok_or_else(|| anyhow::anyhow!("--grant {g}: not a capability"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    match m.admit(role, &grants) {
        Ok(()) => {
            println!("verdict:      admissible in the {role} world");
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            println!("verdict:      REFUSED in the {role} world: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Copies the running binary to `<dir>/userspace` through a temp file and
/// a rename.
fn install(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let source = std::env::current_exe().context("cannot find this binary")?;
    let target = dir.join("userspace");
    let tmp = dir.join(format!(".userspace.tmp{}", std::process::id()));
    let copied = std::fs::copy(&source, &tmp)
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)))
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, &target));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        bail!("cannot install into {}: {e}", dir.display());
    }
    Ok(target)
}

/// Writes the default node policy at `path` unless a policy is there.
fn install_policy(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(format!("kept the node policy at {}", path.display()));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(".policy.tmp{}", std::process::id()));
    let text = node_policy::NodePolicy::default().to_json_pretty() + "\n";
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|_| f.sync_all()))
        // Never over a policy that appeared meanwhile.
        .and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| format!("cannot write the node policy {}", path.display()))?;
    Ok(format!(
        "wrote the default node policy to {}",
        path.display()
    ))
}

fn attachments(state_dir: &Path) -> anyhow::Result<ExitCode> {
    if !state_dir.join("attachments").is_dir() {
        bail!("no attachments recorded: {} has none", state_dir.display());
    }
    let store = Store::open(state_dir).context("cannot open the state dir")?;
    println!(
        "{:<20} {:<24} {:<8} {:<10} {:<10} {:<28} {:<20} SOCKET",
        "NETWORK", "CONTAINER", "IFNAME", "PHASE", "ENGINE", "PORT", "IPS"
    );
    for network in store.networks()? {
        for record in store.list(&network)? {
            let details = crate::record::Details::of(&record);
            let (engine, port, socket) = match &details {
                Ok(d) => (
                    d.engine.as_str(),
                    d.port_name.as_str(),
                    d.socket_path.as_str(),
                ),
                Err(_) => ("?", "?", "(record unreadable: DEL or GC says why)"),
            };
            let ips = record
                .result
                .as_ref()
                .and_then(|r| r["ips"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|ip| ip["address"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
                .join(",");
            println!(
                "{:<20} {:<24} {:<8} {:<10} {:<10} {:<28} {:<20} {}",
                record.key.network,
                record.key.container_id,
                record.key.ifname,
                format!("{:?}", record.phase).to_lowercase(),
                engine,
                port,
                if ips.is_empty() { "-".into() } else { ips },
                socket,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
