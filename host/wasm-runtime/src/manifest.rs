//! What a component is, read from the component itself: the world it
//! implements (its exports), the WIT version it was built against and the
//! capabilities it needs (its imports). The import table is the manifest:
//! it cannot claim less than the code can call, because a capability the
//! component does not import is one it cannot reach.

use std::fmt;

use wasmtime::component::Component;

/// The WIT package every component imports from.
pub const WIT_PACKAGE: &str = "userspace:cni";
/// The version of `wit/userspace-cni.wit` this host implements.
pub const WIT_VERSION: &str = env!("USERSPACE_WIT_VERSION");

/// The worlds of the WIT package: what a component is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Engine,
    Naming,
    IpamChain,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Engine, Role::Naming, Role::IpamChain];

    /// The world's name in the WIT package.
    pub fn world(self) -> &'static str {
        match self {
            Role::Engine => "engine",
            Role::Naming => "naming",
            Role::IpamChain => "ipam-chain",
        }
    }

    /// The functions a component of this world exports.
    fn exports(self) -> &'static [&'static str] {
        match self {
            Role::Engine => &["add", "check", "status", "undo"],
            Role::Naming => &["name"],
            Role::IpamChain => &["allocate"],
        }
    }

    /// What a component of this role gets when the config grants nothing
    /// explicitly: every capability its world offers.
    pub fn default_grants(self) -> &'static [Capability] {
        match self {
            // Not `ipam`: the IPAM chain runs IPAM, before the engine.
            Role::Engine => &[
                Capability::Ovsdb,
                Capability::Vpp,
                Capability::Journal,
                Capability::Log,
                Capability::Wasi,
            ],
            Role::Naming => &[Capability::Log, Capability::Wasi],
            Role::IpamChain => &[Capability::Ipam, Capability::Log, Capability::Wasi],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// A host capability a component may import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    Ovsdb,
    Vpp,
    Journal,
    Ipam,
    Log,
    /// WASI 0.2 without network: empty environment, no stdin, stdout and
    /// stderr discarded, files only in the directories granted read-only.
    Wasi,
    /// WASI's monotonic clock, whose timers are what lets a component wait
    /// (`wasi:clocks/monotonic-clock`). In no default grant: a component
    /// that means to wait says so, and the call's wall-clock bound still
    /// stops it.
    Clocks,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::Ovsdb,
        Capability::Vpp,
        Capability::Journal,
        Capability::Ipam,
        Capability::Log,
        Capability::Wasi,
        Capability::Clocks,
    ];

    /// The interface's name in the WIT package (and in configs).
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Ovsdb => "ovsdb",
            Capability::Vpp => "vpp",
            Capability::Journal => "journal",
            Capability::Ipam => "ipam",
            Capability::Log => "log",
            Capability::Wasi => "wasi",
            Capability::Clocks => "clocks",
        }
    }

    pub fn parse(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The WASI 0.2 packages the host provides (no `wasi:sockets`, no
/// `wasi:http`: components get no network). Of these, the monotonic clock
/// needs the `clocks` grant as well.
const WASI_PACKAGES: [&str; 5] = [
    "wasi:io",
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:random",
];

/// The WASI interface whose timers let a component wait.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock";

/// The custom section the SDK's export macros write: `name@version`.
const METADATA_SECTION: &str = "userspace-cni-component";

/// The component's package name and version, when it was built with the
/// SDK (which records them); `None` otherwise.
pub(crate) fn package_of(bytes: &[u8]) -> Option<String> {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .find_map(|payload| match payload {
            Ok(wasmparser::Payload::CustomSection(section))
                if section.name() == METADATA_SECTION =>
            {
                std::str::from_utf8(section.data()).ok().map(str::to_string)
            }
            _ => None,
        })
}

/// A component's manifest, as its import and export tables state it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The world its exports implement, if any.
    pub world: Option<Role>,
    /// The versions of `userspace:cni` it imports from (normally one).
    pub wit_versions: Vec<String>,
    /// The capabilities it imports.
    pub capabilities: Vec<Capability>,
    /// Imports this host does not provide (WASI, other packages, ...).
    pub foreign_imports: Vec<String>,
    pub exports: Vec<String>,
}

impl Manifest {
    pub(crate) fn of(engine: &wasmtime::Engine, component: &Component) -> Manifest {
        let ty = component.component_type();
        let mut manifest = Manifest {
            world: None,
            wit_versions: Vec::new(),
            capabilities: Vec::new(),
            foreign_imports: Vec::new(),
            exports: ty
                .exports(engine)
                .map(|(name, _)| name.to_string())
                .collect(),
        };
        for (name, _) in ty.imports(engine) {
            manifest.add_import(name);
        }
        manifest.capabilities.sort();
        manifest.capabilities.dedup();
        manifest.world = Role::ALL.into_iter().find(|role| {
            role.exports()
                .iter()
                .all(|wanted| manifest.exports.iter().any(|e| e == wanted))
        });
        manifest
    }

    fn add_import(&mut self, name: &str) {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        if let Some(package) = path.split('/').next().filter(|p| WASI_PACKAGES.contains(p)) {
            if version.starts_with("0.2.") {
                self.capabilities.push(Capability::Wasi);
                if path == MONOTONIC_CLOCK {
                    self.capabilities.push(Capability::Clocks);
                }
            } else {
                self.foreign_imports
                    .push(format!("{name} (this host speaks {package}@0.2)"));
            }
            return;
        }
        let Some(interface) = path
            .strip_prefix(WIT_PACKAGE)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            self.foreign_imports.push(name.to_string());
            return;
        };
        if !self.wit_versions.iter().any(|v| v == version) {
            self.wit_versions.push(version.to_string());
        }
        match (interface, Capability::parse(interface)) {
            ("types", _) => {}
            (_, Some(capability)) => self.capabilities.push(capability),
            // An interface of a newer package version that this host lacks.
            (_, None) => self.foreign_imports.push(name.to_string()),
        }
    }

    /// Whether a component with this manifest may run as `role` with
    /// `grants`; the reason when not.
    pub fn admit(&self, role: Role, grants: &[Capability]) -> Result<(), String> {
        if let Some(version) = self
            .wit_versions
            .iter()
            .find(|v| !compatible(v, WIT_VERSION))
        {
            return Err(format!(
                "it was built against {WIT_PACKAGE}@{version}; this host implements \
                 {WIT_PACKAGE}@{WIT_VERSION}: rebuild it with an SDK for {WIT_VERSION}"
            ));
        }
        if self.world != Some(role) {
            return Err(format!(
                "it is not a{} {role} component: it exports [{}], a {role} component exports [{}]",
                if role == Role::Engine { "n" } else { "" },
                self.exports.join(", "),
                role.exports().join(", ")
            ));
        }
        if let Some(foreign) = self.foreign_imports.first() {
            return Err(format!(
                "it imports {foreign}, which this host does not provide \
                 (components get only {WIT_PACKAGE} capabilities)"
            ));
        }
        if let Some(missing) = self.capabilities.iter().find(|c| !grants.contains(c)) {
            return Err(format!(
                "it imports the capability `{missing}`, which the config does not grant \
                 (granted: [{}])",
                grants
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(())
    }
}

/// Semver compatibility as the component model applies it: the same
/// major version, or for 0.x the same minor.
fn compatible(version: &str, host: &str) -> bool {
    let key = |v: &str| {
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or("").to_string();
        let minor = parts.next().unwrap_or("").to_string();
        if major == "0" {
            (major, minor)
        } else {
            (major, String::new())
        }
    };
    key(version) == key(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(imports: &[&str], exports: &[&str]) -> Manifest {
        let mut m = Manifest {
            world: None,
            wit_versions: Vec::new(),
            capabilities: Vec::new(),
            foreign_imports: Vec::new(),
            exports: exports.iter().map(|e| e.to_string()).collect(),
        };
        for i in imports {
            m.add_import(i);
        }
        m.world = Role::ALL
            .into_iter()
            .find(|r| r.exports().iter().all(|w| exports.contains(w)));
        m
    }

    #[test]
    fn versions_follow_semver_as_the_component_model_does() {
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.2.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("", "0.1.0"));
    }

    #[test]
    fn admission_names_what_is_wrong() {
        let v = WIT_VERSION;
        let naming = manifest(
            &[
                &format!("userspace:cni/types@{v}"),
                &format!("userspace:cni/log@{v}"),
            ],
            &["name"],
        );
        assert_eq!(naming.capabilities, vec![Capability::Log]);
        assert!(naming.admit(Role::Naming, &[Capability::Log]).is_ok());
        let e = naming.admit(Role::Naming, &[]).unwrap_err();
        assert!(e.contains("`log`"), "{e}");
        let e = naming
            .admit(Role::Engine, Role::Engine.default_grants())
            .unwrap_err();
        assert!(e.contains("not an engine component"), "{e}");

        let old = manifest(&["userspace:cni/log@9.0.0"], &["name"]);
        let e = old.admit(Role::Naming, &[Capability::Log]).unwrap_err();
        assert!(e.contains("userspace:cni@9.0.0") && e.contains(v), "{e}");

        let wasi = manifest(&["wasi:filesystem/types@0.2.6"], &["name"]);
        assert_eq!(wasi.capabilities, vec![Capability::Wasi]);
        let e = wasi.admit(Role::Naming, &[Capability::Log]).unwrap_err();
        assert!(e.contains("`wasi`"), "{e}");
        assert!(wasi.admit(Role::Naming, &[Capability::Wasi]).is_ok());

        let timers = manifest(&["wasi:clocks/monotonic-clock@0.2.6"], &["name"]);
        assert_eq!(
            timers.capabilities,
            vec![Capability::Wasi, Capability::Clocks]
        );
        let e = timers
            .admit(Role::Naming, Role::Naming.default_grants())
            .unwrap_err();
        assert!(e.contains("`clocks`"), "{e}");
        let wall = manifest(&["wasi:clocks/wall-clock@0.2.6"], &["name"]);
        assert_eq!(wall.capabilities, vec![Capability::Wasi]);

        let network = manifest(&["wasi:sockets/tcp@0.2.6"], &["name"]);
        let e = network
            .admit(Role::Naming, Role::Naming.default_grants())
            .unwrap_err();
        assert!(e.contains("wasi:sockets/tcp@0.2.6"), "{e}");
    }
}
