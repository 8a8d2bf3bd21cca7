//! The commands a person runs (`userspace components`, `validate`,
//! `precompile`, `attachments`, `del`, `gc`, ...) when the binary is not
//! called as a CNI plugin (no `CNI_COMMAND` in the environment).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use attachment_store::Store;
use clap::{CommandFactory, Parser, Subcommand};
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
        /// Print the components as a JSON list.
        #[arg(long, conflicts_with = "config")]
        json: bool,
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
    /// Show the attachments recorded on this host (exit 0 when there are
    /// none).
    Attachments {
        /// Print them as a JSON list.
        #[arg(long)]
        json: bool,
    },
    /// Show recorded attachments joined with what the vSwitch says about
    /// them now: port or interface, state, counters, VLAN, bridge. Exit 1
    /// when none matches the container (and ifname) given.
    Show {
        container: Option<String>,
        ifname: Option<String>,
        /// Only this network's attachments.
        #[arg(long)]
        network: Option<String>,
        /// Print them as a JSON list.
        #[arg(long)]
        json: bool,
    },
    /// Undo one recorded attachment as DEL does, without a CNI environment:
    /// for an attachment whose runtime is gone.
    Del {
        container: String,
        ifname: String,
        /// The network, when the container has this ifname in several.
        #[arg(long)]
        network: Option<String>,
        #[command(flatten)]
        undo: UndoOptions,
    },
    /// Undo every recorded attachment whose container is not kept, as GC
    /// does.
    Gc {
        /// The container IDs still in use (`,`-separated); every other
        /// attachment is undone. Required: an empty list undoes all.
        #[arg(long, required = true, value_delimiter = ',')]
        keep: Vec<String>,
        /// Only this network's attachments.
        #[arg(long)]
        network: Option<String>,
        #[command(flatten)]
        undo: UndoOptions,
    },
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
        /// A share dir (the host's /usr/local/share mounted in) for the
        /// shell completions and the man page; none written without it.
        #[arg(long)]
        share_dir: Option<PathBuf>,
    },
    /// Print the completions for a shell (bash, zsh, fish, elvish,
    /// powershell), generated from these commands.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these commands.
    Man,
    /// Show the node policy in force (or its error) and where it comes from.
    Policy,
}

/// How `del` and `gc` undo attachments.
#[derive(clap::Args)]
struct UndoOptions {
    /// Print what would be undone, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where the IPAM plugins are (as CNI_PATH, `:`-separated).
    #[arg(long, default_value = "/opt/cni/bin", value_delimiter = ':')]
    cni_path: Vec<String>,
}

/// Exit 0 done, 1 a negative answer (`validate` refuses, `del` or `gc`
/// could not undo an attachment), 2 an error (as clap's usage errors).
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("userspace: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Commands::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "userspace",
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Commands::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
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
        Commands::Components {
            dir, json: true, ..
        } => {
            let runtime = runtime()?;
            let mut list = Vec::new();
            for (name, _) in wasm_runtime::built_ins() {
                let inspected = runtime.inspect(&Source::BuiltIn(name.into()))?;
                list.push(component_json(&inspected, "built in"));
            }
            for file in dir
                .as_deref()
                .map(wasm_files)
                .transpose()?
                .unwrap_or_default()
            {
                if let Ok(inspected) = runtime.inspect(&Source::File(file)) {
                    list.push(component_json(&inspected, "dir"));
                }
            }
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        Commands::Components { dir, config, .. } => {
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
        Commands::Attachments { json } => attachments(&state_dir, *json),
        Commands::Show {
            container,
            ifname,
            network,
            json,
        } => {
            let store = open_existing(&state_dir)?;
            let found: Vec<_> = recorded(store.as_ref(), network.as_deref())?
                .into_iter()
                .filter(|r| container.as_ref().is_none_or(|c| &r.key.container_id == c))
                .filter(|r| ifname.as_ref().is_none_or(|i| &r.key.ifname == i))
                .collect();
            // The store's lock is not held while the vSwitch is asked.
            drop(store);
            let policy = crate::policy::load().map_err(|e| anyhow::anyhow!("{e}"))?;
            let shown: Vec<_> = found
                .iter()
                .map(|r| crate::show::attachment(r, policy))
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                let blocks: Vec<String> = shown.iter().map(crate::show::render).collect();
                print!("{}", blocks.join("\n"));
            }
            if shown.is_empty() && container.is_some() {
                eprintln!(
                    "userspace: no attachment of {} is recorded in {}",
                    [container.as_deref(), ifname.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                    state_dir.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            if shown.is_empty() && !*json {
                println!("no attachments recorded in {}", state_dir.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Commands::Del {
            container,
            ifname,
            network,
            undo: options,
        } => {
            // Listed and undone under the one lock the store holds.
            let store = open_existing(&state_dir)?;
            let mut found: Vec<_> = recorded(store.as_ref(), network.as_deref())?
                .into_iter()
                .filter(|r| &r.key.container_id == container && &r.key.ifname == ifname)
                .collect();
            if found.len() > 1 {
                let networks: Vec<&str> = found.iter().map(|r| r.key.network.as_str()).collect();
                bail!(
                    "{container} {ifname} is recorded in several networks ({}): give --network",
                    networks.join(", ")
                );
            }
            let Some(record) = found.pop() else {
                bail!(
                    "no attachment {container} {ifname} is recorded in {}",
                    state_dir.display()
                );
            };
            undo(store.as_ref(), vec![record], options)
        }
        Commands::Gc {
            keep,
            network,
            undo: options,
        } => {
            let store = open_existing(&state_dir)?;
            let stale = recorded(store.as_ref(), network.as_deref())?
                .into_iter()
                .filter(|r| !keep.contains(&r.key.container_id))
                .collect();
            undo(store.as_ref(), stale, options)
        }
        Commands::Policy => unreachable!("answered above"),
        Commands::Completions { .. } | Commands::Man => unreachable!("answered above"),
        Commands::Install {
            to,
            policy,
            share_dir,
        } => {
            let installed = install(to)?;
            println!("installed {}", installed.display());
            println!("{}", install_policy(policy)?);
            if let Some(share) = share_dir {
                for path in install_docs(share)? {
                    println!("installed {}", path.display());
                }
            }
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

/// A component as `components --json` lists it.
fn component_json(c: &Inspected, origin: &str) -> serde_json::Value {
    let m = &c.manifest;
    serde_json::json!({
        "world": m.world.map(Role::world),
        "name": c.name,
        "package": c.package,
        "witVersions": m.wit_versions,
        "sha256": c.sha256,
        "size": c.size,
        "capabilities": m.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "foreignImports": m.foreign_imports,
        "origin": origin,
    })
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
/// The completions for bash, zsh and fish and the man page, where each
/// shell and man look below a share dir.
fn install_docs(share: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use clap_complete::Shell;
    let mut written = Vec::new();
    for (shell, path) in [
        (Shell::Bash, "bash-completion/completions/userspace"),
        (Shell::Zsh, "zsh/site-functions/_userspace"),
        (Shell::Fish, "fish/vendor_completions.d/userspace.fish"),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "userspace", &mut text);
        written.push(write_doc(&share.join(path), &text)?);
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    written.push(write_doc(&share.join("man/man1/userspace.1"), &page)?);
    Ok(written)
}

fn write_doc(path: &Path, text: &[u8]) -> anyhow::Result<PathBuf> {
    let dir = path.parent().expect("a path below the share dir");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.to_path_buf())
}

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

/// The state dir's store (holding the node's lock), or none when nothing
/// was ever recorded there (a listing does not make one).
fn open_existing(state_dir: &Path) -> anyhow::Result<Option<Store>> {
    if !state_dir.join("attachments").is_dir() {
        return Ok(None);
    }
    Ok(Some(
        Store::open(state_dir).context("cannot open the state dir")?,
    ))
}

/// Every attachment recorded in `store` (of `network` only, if given).
fn recorded(
    store: Option<&Store>,
    network: Option<&str>,
) -> anyhow::Result<Vec<attachment_store::Record>> {
    let Some(store) = store else {
        return Ok(Vec::new());
    };
    let mut records = Vec::new();
    for name in store.networks()? {
        if network.is_none_or(|n| n == name) {
            records.extend(store.list(&name)?);
        }
    }
    Ok(records)
}

fn attachments(state_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    const HEADER: [&str; 8] = [
        "NETWORK",
        "CONTAINER",
        "IFNAME",
        "PHASE",
        "ENGINE",
        "PORT",
        "IPS",
        "SOCKET",
    ];
    let rows: Vec<[String; 8]> = recorded(open_existing(state_dir)?.as_ref(), None)?
        .iter()
        .map(|record| {
            let details = crate::record::Details::of(record);
            let (engine, port, socket) = match &details {
                Ok(d) => (d.engine.clone(), d.port_name.clone(), d.socket_path.clone()),
                Err(_) => (
                    "?".into(),
                    "?".into(),
                    "(record unreadable: DEL or GC says why)".into(),
                ),
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
            [
                record.key.network.clone(),
                record.key.container_id.clone(),
                record.key.ifname.clone(),
                format!("{:?}", record.phase).to_lowercase(),
                engine,
                port,
                if ips.is_empty() { "-".into() } else { ips },
                socket,
            ]
        })
        .collect();
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let ips: Vec<&str> = row[6].split(',').filter(|ip| *ip != "-").collect();
                serde_json::json!({"network": row[0], "containerId": row[1], "ifName": row[2],
                    "phase": row[3], "engine": row[4], "port": row[5], "ips": ips, "socket": row[7]})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    // Columns as wide as what they hold: container IDs are 64 characters.
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (n, cell) in cells.iter().enumerate() {
            if n + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[n]));
            }
        }
        text
    };
    println!("{}", line(&HEADER));
    for row in &rows {
        println!("{}", line(&row.each_ref().map(String::as_str)));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what undoing `records` takes, step by step, and (unless a dry
/// run) undoes them as DEL and GC do. Exit 1 when one could not be undone
/// (its record stays, with what is left).
fn undo(
    store: Option<&Store>,
    records: Vec<attachment_store::Record>,
    options: &UndoOptions,
) -> anyhow::Result<ExitCode> {
    let (Some(store), false) = (store, records.is_empty()) else {
        println!("nothing to undo");
        return Ok(ExitCode::SUCCESS);
    };
    let dry_run = options.dry_run;
    // Replays check removals against the node policy, as DEL does.
    crate::policy::load().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut failures = 0;
    for record in records {
        let key = &record.key;
        println!("{} {} {}:", key.network, key.container_id, key.ifname);
        for entry in record.journal.iter().rev() {
            println!("  {}", entry.description);
        }
        if dry_run {
            continue;
        }
        match crate::rollback::undo_attachment(store, record, &options.cni_path) {
            Ok(()) => println!("  undone"),
            Err(e) => {
                failures += 1;
                println!("  not undone: {e}");
            }
        }
    }
    if dry_run {
        println!("dry run: nothing changed");
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
