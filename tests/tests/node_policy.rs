//! The node policy against a NAD author: every host path a network config
//! can name, pointed where an attacker would point it (a stand-in `/etc`,
//! a symlink to it, a directory a tenant owns, `..`, over-long, the real
//! `/etc`), is CNI error 7 naming the field, on ADD and on DEL, and a
//! canary tree, the policy's component cache and the OVSDB dump are byte
//! for byte what they were.
//!
//! One test: the OVSDB dump of this binary's OVS is compared, so nothing
//! else may run on it meanwhile.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use integration_tests::{write_policy, Netns, Network, Ovs};
use kube_api_double::KubeApiDouble;
use serde_json::{json, Value};

/// A node tree: the policy's allowed roots, and what lies outside them.
struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::Builder::new().prefix("node-").tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in [
            "state",
            "log",
            "shared",
            "kubelet",
            "sockmount",
            "kube",
            "devinfo",
            "components",
            "files",
            "etc/sub",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        // Whatever the umask: only root may write the node's dirs.
        let mut dirs = BTreeMap::new();
        walk(&root, &mut dirs);
        for (path, (mode, ..)) in dirs {
            let perms = std::fs::Permissions::from_mode(mode & 0o7755);
            std::fs::set_permissions(path, perms).unwrap();
        }
        // The stand-in /etc: a root-only key and ordinary files.
        let key = root.join("etc/secret.key");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nroot only\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/sub/inner"), "inner\n").unwrap();
        // Links into it from inside the allowed roots (made by root here:
        // a tenant could not, yet where they lead is still checked).
        let etc = root.join("etc");
        for link in ["etc-link", "shared/link", "log/key.log", "kube/config-link"] {
            let target = if link == "log/key.log" || link == "kube/config-link" {
                key.clone()
            } else {
                etc.clone()
            };
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
        // Directories a tenant (uid 65534) owns, inside the allowed roots.
        for tenant in [
            "state/tenant",
            "log/tenant",
            "shared/tenant",
            "devinfo/tenant",
        ] {
            std::fs::create_dir(root.join(tenant)).unwrap();
            std::os::unix::fs::chown(root.join(tenant), Some(65534), Some(65534)).unwrap();
        }
        // A kubeconfig the operator placed, whose tokenFile is the key.
        std::fs::write(
            root.join("kube/stolen-token.kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                 clusters: [{{name: k, cluster: {{server: 'https://127.0.0.1:1', certificate-authority-data: ''}}}}]\n\
                 users: [{{name: u, user: {{tokenFile: {}}}}}]\n\
                 contexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n",
                key.display()
            ),
        )
        .unwrap();
        Node { _dir: dir, root }
    }

    fn path(&self, sub: &str) -> String {
        self.root.join(sub).display().to_string()
    }

    /// The strict policy: each list one dir of this node; the vSwitch
    /// sockets this binary's OVS and a VPP socket that does not exist.
    fn policy(&self, ovs: &Ovs) -> Value {
        json!({
            "stateDir": self.path("state"),
            "logDirs": [self.path("log")],
            "sharedDirRoots": [self.path("shared")],
            "kubeletDirs": [self.path("kubelet")],
            "socketMountRoots": [self.path("sockmount")],
            "ovsDbSockets": [ovs.dir.join("db.sock")],
            "vhostSockDirs": [ovs.dir],
            "vppApiSockets": [self.path("vpp/api.sock")],
            "kubeconfigRoots": [self.path("kube")],
            "deviceInfoDirs": [self.path("devinfo")],
            "componentDirs": [self.path("components")],
            "componentFileRoots": [self.path("files")],
            "unpinnedComponents": false,
            "ipamTypes": ["host-local"],
            "grants": ["ovsdb", "ipam", "journal", "log", "wasi"],
        })
    }

    /// Every file and dir under the stand-in /etc and the policy's state
    /// dir (its component cache): path, mode, owner, links and content.
    fn snapshot(&self) -> BTreeMap<String, (u32, u32, u64, Vec<u8>)> {
        let mut out = BTreeMap::new();
        for top in ["etc", "state", "log", "kube"] {
            walk(&self.root.join(top), &mut out);
        }
        out
    }
}

fn walk(path: &Path, out: &mut BTreeMap<String, (u32, u32, u64, Vec<u8>)>) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    let content = if meta.is_file() {
        std::fs::read(path).unwrap()
    } else if meta.file_type().is_symlink() {
        std::fs::read_link(path)
            .unwrap()
            .into_os_string()
            .into_encoded_bytes()
    } else {
        Vec::new()
    };
    out.insert(
        path.display().to_string(),
        (meta.mode(), meta.uid(), meta.nlink(), content),
    );
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            walk(&entry.unwrap().path(), out);
        }
    }
}

type Mutation = Box<dyn Fn(&mut Value)>;

const POD_UID: &str = "4ed69c30-0000-4000-8000-000000000001";

/// One hostile config: what it changes, the field the error must name and
/// whether the node policy (rather than the config's own syntax) refuses.
struct Case {
    what: &'static str,
    field: &'static str,
    by_policy: bool,
    mutate: Mutation,
    cni_args: Option<&'static str>,
    /// DEL refuses the config too (it does unless the refusal comes only
    /// once a pod is read: a DEL with no record reads none).
    del_refused: bool,
}

fn case(what: &'static str, field: &'static str, mutate: impl Fn(&mut Value) + 'static) -> Case {
    Case {
        what,
        field,
        by_policy: true,
        mutate: Box::new(mutate),
        cni_args: None,
        del_refused: true,
    }
}

fn corpus(node: &Node) -> Vec<Case> {
    let p = |sub: &str| node.path(sub);
    let long = format!("{}/{}", p("shared"), "a".repeat(1100));
    let (etc, etc_link, key) = (p("etc"), p("etc-link"), p("etc/secret.key"));
    let pod_args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=tenant;K8S_POD_NAME=p1;K8S_POD_UID=4ed69c30-0000-4000-8000-000000000001";
    assert!(pod_args.ends_with(POD_UID));
    vec![
        Case {
            cni_args: Some(pod_args),
            del_refused: false,
            ..case("a pod's hostPath volume at a root itself", "hostPath", {
                let dirs = json!({"kubeletDir": p("kubelet"), "socketMountDir": p("sockmount")});
                let kubeconfig = p("kube/api/kubeconfig");
                move |c| {
                    c["kubeconfig"] = json!(kubeconfig);
                    c["kubernetes"] = dirs.clone();
                }
            })
        },
        case("stateDir at the stand-in /etc", "stateDir", {
            let etc = etc.clone();
            move |c| c["stateDir"] = json!(etc)
        }),
        case("stateDir at the real /etc", "stateDir", |c| {
            c["stateDir"] = json!("/etc")
        }),
        case("stateDir through a symlink to /etc", "stateDir", {
            let v = format!("{etc_link}/cni");
            move |c| c["stateDir"] = json!(v)
        }),
        case("stateDir in a dir a tenant owns", "stateDir", {
            let v = format!("{}/x", p("state/tenant"));
            move |c| c["stateDir"] = json!(v)
        }),
        Case {
            by_policy: false,
            ..case("stateDir with ..", "stateDir", {
                let v = format!("{}/../etc", p("state"));
                move |c| c["stateDir"] = json!(v)
            })
        },
        case("stateDir over-long", "stateDir", {
            let v = format!("{}/{}", p("state"), "a".repeat(1100));
            move |c| c["stateDir"] = json!(v)
        }),
        case("logFile at the stand-in /etc/passwd", "logFile", {
            let v = p("etc/passwd");
            move |c| c["logFile"] = json!(v)
        }),
        case("logFile at the real /etc/passwd", "logFile", |c| {
            c["logFile"] = json!("/etc/passwd")
        }),
        case("logFile a symlink to the key", "logFile", {
            let v = p("log/key.log");
            move |c| c["logFile"] = json!(v)
        }),
        case("logFile in a dir a tenant owns", "logFile", {
            let v = p("log/tenant/plugin.log");
            move |c| c["logFile"] = json!(v)
        }),
        case("sharedDir at the stand-in /etc", "sharedDir", {
            let etc = etc.clone();
            move |c| c["sharedDir"] = json!(etc)
        }),
        case("sharedDir through a symlink to /etc", "sharedDir", {
            let v = p("shared/link");
            move |c| c["sharedDir"] = json!(v)
        }),
        case("sharedDir a tenant owns", "sharedDir", {
            let v = p("shared/tenant");
            move |c| c["sharedDir"] = json!(v)
        }),
        case("sharedDir over-long", "sharedDir", {
            let v = long.clone();
            move |c| c["sharedDir"] = json!(v)
        }),
        case("kubeconfig at the key", "kubeconfig", {
            let key = key.clone();
            move |c| c["kubeconfig"] = json!(key)
        }),
        case("kubeconfig a symlink to the key", "kubeconfig", {
            let v = p("kube/config-link");
            move |c| c["kubeconfig"] = json!(v)
        }),
        Case {
            cni_args: Some(pod_args),
            del_refused: false,
            ..case("kubeconfig whose tokenFile is the key", "tokenFile", {
                let v = p("kube/stolen-token.kubeconfig");
                let dirs = json!({"kubeletDir": p("kubelet"), "socketMountDir": p("sockmount")});
                move |c| {
                    c["kubeconfig"] = json!(v);
                    c["kubernetes"] = dirs.clone();
                }
            })
        },
        case("kubernetes.kubeletDir at /etc", "kubernetes.kubeletDir", {
            let etc = etc.clone();
            move |c| c["kubernetes"] = json!({"kubeletDir": etc})
        }),
        case(
            "kubernetes.socketMountDir through a symlink to /etc",
            "kubernetes.socketMountDir",
            {
                let v = etc_link.clone();
                move |c| c["kubernetes"] = json!({"socketMountDir": v})
            },
        ),
        case(
            "CNIDeviceInfoFile in the stand-in /etc",
            "runtimeConfig.CNIDeviceInfoFile",
            {
                let v = p("etc/net-CONTAINER_ID_net1");
                move |c| c["runtimeConfig"] = json!({"CNIDeviceInfoFile": v})
            },
        ),
        case(
            "CNIDeviceInfoFile in a dir a tenant owns",
            "runtimeConfig.CNIDeviceInfoFile",
            {
                let v = p("devinfo/tenant/net-CONTAINER_ID_net1");
                move |c| c["runtimeConfig"] = json!({"CNIDeviceInfoFile": v})
            },
        ),
        Case {
            by_policy: false,
            ..case(
                "CNIDeviceInfoFile of another container",
                "runtimeConfig.CNIDeviceInfoFile",
                {
                    let v = p("devinfo/net-0123456789abcdef_net1");
                    move |c| c["runtimeConfig"] = json!({"CNIDeviceInfoFile": v})
                },
            )
        },
        case(
            "an IPAM plugin the policy does not allow",
            "ipam.type",
            |c| c["ipam"] = json!({"type": "host-device", "device": "lo"}),
        ),
        case("host.ovs.dbSocket elsewhere", "host.ovs.dbSocket", {
            let v = format!("unix:{}", p("etc/db.sock"));
            move |c| c["host"]["ovs"]["dbSocket"] = json!(v)
        }),
        case(
            "vhostSockDir + socketfile: move the key into the pod",
            "host.ovs.vhostSockDir",
            {
                let etc = etc.clone();
                move |c| {
                    c["host"]["iftype"] = json!("vhostuser");
                    c["container"]["iftype"] = json!("vhostuser");
                    c["host"]["vhost"] = json!({"mode": "server", "socketfile": "secret.key"});
                    c["host"]["ovs"]["vhostSockDir"] = json!(etc);
                }
            },
        ),
        case("host.vpp.apiSocket elsewhere", "host.vpp.apiSocket", {
            let v = p("etc/api.sock");
            move |c| {
                c["host"]["engine"] = json!("vpp");
                c["container"]["engine"] = json!("vpp");
                c["host"]["vpp"] = json!({"apiSocket": v});
            }
        }),
        case("host.engine outside the component dirs", "host.engine", {
            let v = p("etc/evil.wasm");
            move |c| c["host"]["engine"] = json!(v)
        }),
        case("host.engine unpinned", "host.engine", {
            let v = p("components/engine.wasm");
            move |c| c["host"]["engine"] = json!(v)
        }),
        case("components.dir at /etc", "components.dir", {
            let etc = etc.clone();
            move |c| c["components"] = json!({"dir": etc})
        }),
        case(
            "a named component in the dir, unpinned",
            "components.naming.source",
            {
                let v = p("components");
                move |c| c["components"] = json!({"dir": v, "naming": "tenant"})
            },
        ),
        case(
            "component files from /etc",
            "components.engine.files[0].path",
            {
                let etc = etc.clone();
                move |c| c["components"] = json!({"engine": {"files": [{"path": etc}]}})
            },
        ),
        case(
            "a grant the policy does not allow",
            "components.engine.grants",
            |c| c["components"] = json!({"engine": {"grants": ["ovsdb", "journal", "log", "vpp"]}}),
        ),
    ]
}

#[test]
fn every_hostile_path_is_error_7_naming_the_field_with_nothing_touched() {
    let ovs = Ovs::shared();
    let node = Node::new();
    let mut net = Network::memif(ovs);
    net.policy = Some(write_policy(&node.root, node.policy(ovs)));
    net.config["stateDir"] = json!(node.path("state/net"));
    net.config["sharedDir"] = json!(node.path("shared"));
    // The policy lets the right config through: one ADD and DEL, which also
    // fills the policy's component cache.
    let ns = Netns::new();
    net.add("policyok00001", &ns).ok();
    net.del("policyok00001").ok();
    net.assert_nothing_left("policyok00001");
    let cache = integration_tests::list(&node.root.join("state/cache"));
    assert!(
        cache.iter().any(|f| f.ends_with(".cwasm")),
        "the cache is the policy's: {cache:?}"
    );

    // A pod whose spec (the tenant's) mounts a whole shared-dir root.
    std::fs::create_dir(node.root.join("kube/api")).unwrap();
    let double = KubeApiDouble::start(&node.root.join("kube/api"));
    double.add_pod(
        "tenant",
        "p1",
        POD_UID,
        json!({"containers": [{"name": "app"}],
               "volumes": [{"name": "shared-dir", "hostPath": {"path": node.path("shared")}}]}),
    );

    let cases = corpus(&node);
    assert!(cases.len() >= 25, "{} cases", cases.len());
    integration_tests::figure("hostile configs", cases.len());
    let before = (node.snapshot(), ovs.dump());
    for (i, case) in cases.iter().enumerate() {
        let mut config = net.config.clone();
        (case.mutate)(&mut config);
        let id = format!("hostile{i:05}x");
        let stdin = config.to_string().replace("CONTAINER_ID", &id).into_bytes();
        let mut extra = net.policy_env();
        if let Some(args) = case.cni_args {
            extra.push(("CNI_ARGS", args));
        }
        for command in ["ADD", "DEL"] {
            let netns = if command == "ADD" {
                ns.path()
            } else {
                String::new()
            };
            let run = integration_tests::cni_call(command, &id, "net1", &netns, &stdin, &extra);
            if command == "DEL" && !case.del_refused {
                run.ok();
                continue;
            }
            let err = run.err(7);
            let msg = err["msg"].as_str().unwrap();
            assert!(
                msg.contains(case.field),
                "{}: {command} error does not name {}: {err}",
                case.what,
                case.field
            );
            if case.by_policy {
                assert!(
                    msg.contains("node policy"),
                    "{}: {command} error does not name the policy: {err}",
                    case.what
                );
            }
            assert!(
                run.stdout.lines().count() == 1,
                "stdout holds only the error"
            );
        }
    }
    let after = (node.snapshot(), ovs.dump());
    assert!(before.0 == after.0, "the node tree changed");
    assert_eq!(before.1, after.1, "the OVSDB changed");
}
