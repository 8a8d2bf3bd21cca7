//! Where the API server is and how to prove who we are: a kubeconfig file
//! (the `kubeconfig` of the network config; Multus writes one with a
//! service-account token) or the in-cluster service account.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::Error;

/// Largest kubeconfig, token, certificate or key file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where a pod's service account credentials are mounted.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// An API server and the credentials to use with it.
#[derive(Clone)]
pub struct Credentials {
    /// `https://host:port`, no trailing slash.
    server: String,
    roots: Vec<Certificate<'static>>,
    auth: Auth,
    /// Where these came from, for messages (a path, never a secret).
    source: String,
}

#[derive(Clone)]
enum Auth {
    Anonymous,
    Bearer(String),
    ClientCert(ClientCert),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::Anonymous => "anonymous",
            Auth::Bearer(_) => "bearer token",
            Auth::ClientCert(_) => "client certificate",
        };
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("auth", &auth)
            .field("source", &self.source)
            .finish()
    }
}

// The kubeconfig fields used; anything else is ignored.
#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context")]
    current_context: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    item: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    exec: Option<serde_json::Value>,
    auth_provider: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: String,
}

impl Credentials {
    /// Reads a kubeconfig: its current context's cluster and user.
    /// Relative file paths in it are relative to its directory.
    pub fn from_kubeconfig(path: &Path) -> Result<Credentials, Error> {
        Self::from_kubeconfig_checked(path, &|_, _| Ok(()))
    }

    /// [`Credentials::from_kubeconfig`], with every file the kubeconfig
    /// names (by its key: `tokenFile`, `certificate-authority`, ...) first
    /// passed to `allowed`, which may refuse it (the plugin reads them as
    /// root).
    pub fn from_kubeconfig_checked(
        path: &Path,
        allowed: &dyn Fn(&str, &Path) -> Result<(), String>,
    ) -> Result<Credentials, Error> {
        let source = path.display().to_string();
        let bad = |what: String| Error::Credentials(format!("kubeconfig {source}: {what}"));
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(|e| bad(e.to_string()))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(bad(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        // The parser's message quotes the text around the error, which can
        // be a token or a key: only its position is reported.
        let config: Kubeconfig = serde_saphyr::from_str(&text).map_err(|e| {
            bad(match e.location() {
                Some(at) => format!(
                    "not a valid kubeconfig (line {}, column {})",
                    at.line(),
                    at.column()
                ),
                None => "not a valid kubeconfig".into(),
            })
        })?;
        let base = path.parent().unwrap_or(Path::new("/"));
        let file = |key: &str, p: &PathBuf| -> Result<Vec<u8>, Error> {
            let p = base.join(p);
            allowed(key, &p).map_err(|why| bad(format!("{key}: {why}")))?;
            let mut bytes = Vec::new();
            std::fs::File::open(&p)
                .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
                .map_err(|e| bad(format!("{key} {}: {e}", p.display())))?;
            if bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(bad(format!(
                    "{key} {}: larger than {MAX_FILE_BYTES} bytes",
                    p.display()
                )));
            }
            Ok(bytes)
        };
        let inline = |what: &str, data: &str| -> Result<Vec<u8>, Error> {
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| bad(format!("{what} is not base64: {e}")))
        };

        let context = match &config.current_context {
            Some(name) => config
                .contexts
                .iter()
                .find(|c| &c.name == name)
                .ok_or_else(|| bad(format!("current-context {name:?} is not defined")))?,
            None => match config.contexts.as_slice() {
                [only] => only,
                _ => return Err(bad("no current-context".into())),
            },
        };
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.item.cluster)
            .ok_or_else(|| bad(format!("cluster {:?} is not defined", context.item.cluster)))?;
        let user = config
            .users
            .iter()
            .find(|u| u.name == context.item.user)
            .map(|u| &u.item);
        let cluster = &cluster.item;
        if cluster.insecure_skip_tls_verify {
            return Err(bad(
                "insecure-skip-tls-verify is not supported: give the cluster's certificate-authority".into(),
            ));
        }
        let ca = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
            (Some(data), _) => inline("certificate-authority-data", data)?,
            (None, Some(path)) => file("certificate-authority", path)?,
            (None, None) => {
                return Err(bad(
                    "the cluster has no certificate-authority; the API server's certificate cannot be checked".into(),
                ))
            }
        };
        let user = match user {
            Some(user) => user,
            None if context.item.user.is_empty() => &User::default(),
            None => return Err(bad(format!("user {:?} is not defined", context.item.user))),
        };
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(bad(
                "exec and auth-provider credential plugins are not supported; use a token or a client certificate".into(),
            ));
        }
        let auth = match user {
            User {
                token: Some(token), ..
            } => Auth::Bearer(token.trim().to_string()),
            User {
                token_file: Some(path),
                ..
            } => Auth::Bearer(
                String::from_utf8_lossy(&file("tokenFile", path)?)
                    .trim()
                    .to_string(),
            ),
            User {
                client_certificate_data: cert_data,
                client_certificate: cert_file,
                client_key_data: key_data,
                client_key: key_file,
                ..
            } if (cert_data.is_some() || cert_file.is_some()) => {
                let cert = match (cert_data, cert_file) {
                    (Some(data), _) => inline("client-certificate-data", data)?,
                    (None, Some(path)) => file("client-certificate", path)?,
                    (None, None) => unreachable!("guarded"),
                };
                let key = match (key_data, key_file) {
                    (Some(data), _) => inline("client-key-data", data)?,
                    (None, Some(path)) => file("client-key", path)?,
                    (None, None) => return Err(bad("client certificate without a key".into())),
                };
                Auth::ClientCert(client_cert(&cert, &key).map_err(bad)?)
            }
            _ => Auth::Anonymous,
        };
        Credentials::new(&cluster.server, &ca, auth, source)
    }

    /// The service account of the pod this process runs in, if it runs in
    /// one (`KUBERNETES_SERVICE_HOST` set and the token mounted).
    pub fn in_cluster() -> Option<Result<Credentials, Error>> {
        Credentials::in_cluster_from(
            Path::new(SERVICE_ACCOUNT_DIR),
            std::env::var("KUBERNETES_SERVICE_HOST").ok()?,
            std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into()),
        )
    }

    fn in_cluster_from(
        dir: &Path,
        host: String,
        port: String,
    ) -> Option<Result<Credentials, Error>> {
        let token_path = dir.join("token");
        if !token_path.exists() {
            return None;
        }
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map_err(|e| Error::Credentials(format!("{}/{name}: {e}", dir.display())))
        };
        let load = || {
            let token = String::from_utf8_lossy(&read("token")?).trim().to_string();
            let ca = read("ca.crt")?;
            // An IPv6 service address needs brackets in a URL.
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            Credentials::new(
                &format!("https://{host}:{port}"),
                &ca,
                Auth::Bearer(token),
                format!("in-cluster service account ({})", dir.display()),
            )
        };
        Some(load())
    }

    fn new(server: &str, ca_pem: &[u8], auth: Auth, source: String) -> Result<Credentials, Error> {
        let bad = |what: String| Error::Credentials(format!("{source}: {what}"));
        if !server.starts_with("https://") {
            return Err(bad(format!("server {server:?} is not an https:// URL")));
        }
        let roots = certificates(ca_pem);
        if roots.is_empty() {
            return Err(bad(
                "the certificate authority holds no PEM certificate".into()
            ));
        }
        Ok(Credentials {
            server: server.trim_end_matches('/').to_string(),
            roots,
            auth,
            source,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub(crate) fn tls_config(&self) -> TlsConfig {
        let builder = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(self.roots.clone())))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        match &self.auth {
            Auth::ClientCert(cert) => builder.client_cert(Some(cert.clone())),
            _ => builder,
        }
        .build()
    }

    pub(crate) fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Auth::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
            _ => request,
        }
    }
}

/// The certificates in a PEM text (other items are skipped).
fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect()
}

fn client_cert(cert_pem: &[u8], key_pem: &[u8]) -> Result<ClientCert, String> {
    let chain = certificates(cert_pem);
    if chain.is_empty() {
        return Err("the client certificate holds no PEM certificate".into());
    }
    // The error is the parser's, which never quotes the key.
    let key = PrivateKey::from_pem(key_pem).map_err(|e| format!("client key: {e}"))?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway self-signed certificate to trust.
    fn ca() -> String {
        rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert
            .pem()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn kubeconfig(user: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(ca());
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: multus\nclusters:\n- name: local\n  cluster:\n    server: https://127.0.0.1:6443/\n    certificate-authority-data: {ca}\nusers:\n- name: multus\n  user:\n{user}\ncontexts:\n- name: multus\n  context:\n    cluster: local\n    user: multus\n"
        )
    }

    #[test]
    fn a_multus_style_kubeconfig_gives_a_bearer_token_that_debug_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "kc", &kubeconfig("    token: s3cr3t-token"));
        let creds = Credentials::from_kubeconfig(&path).unwrap();
        assert_eq!(creds.server(), "https://127.0.0.1:6443");
        assert!(matches!(&creds.auth, Auth::Bearer(t) if t == "s3cr3t-token"));
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("bearer token") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn token_files_are_relative_to_the_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "token", "from-file\n");
        let path = write(dir.path(), "kc", &kubeconfig("    tokenFile: token"));
        let creds = Credentials::from_kubeconfig(&path).unwrap();
        assert!(matches!(&creds.auth, Auth::Bearer(t) if t == "from-file"));
    }

    #[test]
    fn unsupported_or_broken_kubeconfigs_say_why() {
        let dir = tempfile::tempdir().unwrap();
        for (user, expected) in [
            (
                "    exec: {command: aws}",
                "credential plugins are not supported",
            ),
            ("    client-certificate-data: \"!!!\"", "not base64"),
            // Wrong types: the error gives the place, never the value.
            ("    token: [s3cr3t]", "line 12, column 12"),
            (
                "    client-certificate: missing.crt\n    client-key: missing.key",
                "missing.crt",
            ),
        ] {
            let path = write(dir.path(), "kc", &kubeconfig(user));
            let error = Credentials::from_kubeconfig(&path).unwrap_err().to_string();
            assert!(error.contains(expected), "{user}: {error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
        let path = write(dir.path(), "kc", "current-context: nowhere\n");
        let error = Credentials::from_kubeconfig(&path).unwrap_err().to_string();
        assert!(error.contains("\"nowhere\" is not defined"), "{error}");
        let path = write(dir.path(), "kc", "{ not yaml");
        assert!(Credentials::from_kubeconfig(&path).is_err());
    }

    #[test]
    fn in_cluster_credentials_come_from_the_service_account_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Credentials::in_cluster_from(dir.path(), "10.0.0.1".into(), "443".into()).is_none()
        );
        write(dir.path(), "token", "sa-token");
        write(dir.path(), "ca.crt", &ca());
        let creds = Credentials::in_cluster_from(dir.path(), "fd00::1".into(), "443".into())
            .unwrap()
            .unwrap();
        assert_eq!(creds.server(), "https://[fd00::1]:443");
        assert!(matches!(&creds.auth, Auth::Bearer(t) if t == "sa-token"));
    }
}
