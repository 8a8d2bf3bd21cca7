//! The Kubernetes API as the plugin needs it: read one pod, update it.
//! Two calls, made only when the runtime names a pod, over one blocking
//! HTTPS connection (ureq + rustls). Update (PUT), not patch: Multus's
//! ClusterRole grants `get`, `list`, `update` and `watch` on pods and no
//! `patch`, and the plugin runs with Multus's credentials.
//!
//! kube-rs is the field's client, but it brings an async runtime, hyper,
//! tower and the generated API types for what is two requests here; its
//! measured cost (binary size, time to the first answer) is in the README.
//!
//! Credentials never reach a log: [`Credentials`]' `Debug` shows where
//! they came from, not what they are.

mod credentials;

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

pub use credentials::Credentials;

/// How long one request (connect, TLS, send, the whole answer) may take:
/// ureq's global timeout is one deadline for the call, so a server
/// trickling bytes cannot stretch it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (a pod object is a few KiB).
const MAX_REPLY_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes credentials: {0}")]
    Credentials(String),
    #[error("kubernetes API at {server} unreachable: {reason}")]
    Transport { server: String, reason: String },
    /// The API answered with an error status.
    #[error("kubernetes API: {code} {reason}: {message}")]
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("kubernetes API answered something that is not a {0}")]
    BadReply(&'static str),
    #[error("kubernetes API answered more than {MAX_REPLY_BYTES} bytes")]
    TooLarge,
    #[error("{what} {value:?} is not a valid Kubernetes name")]
    BadName { what: &'static str, value: String },
}

impl Error {
    fn code(&self) -> Option<u16> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
    /// Someone else changed the object since it was read.
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }
}

/// A client for one API server.
pub struct Client {
    agent: ureq::Agent,
    credentials: Credentials,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Client {
    pub fn new(credentials: Credentials) -> Client {
        let agent = ureq::Agent::config_builder()
            .tls_config(credentials.tls_config())
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Client { agent, credentials }
    }

    /// `GET /api/v1/namespaces/<namespace>/pods/<name>`.
    pub fn get_pod(&self, namespace: &str, name: &str) -> Result<Value, Error> {
        let url = self.pod_url(namespace, name)?;
        let request = self.credentials.authorize(self.agent.get(&url));
        self.answer(request.header("Accept", "application/json").call())
    }

    /// `PUT` of the whole pod as read and edited. Its
    /// `metadata.resourceVersion` makes it conditional: 409 when the pod
    /// changed since it was read.
    pub fn update_pod(&self, namespace: &str, name: &str, pod: &Value) -> Result<Value, Error> {
        let url = self.pod_url(namespace, name)?;
        let request = self.credentials.authorize(self.agent.put(&url));
        self.answer(
            request
                .header("Accept", "application/json")
                .content_type("application/json")
                .send(pod.to_string()),
        )
    }

    fn pod_url(&self, namespace: &str, name: &str) -> Result<String, Error> {
        for (what, value) in [("namespace", namespace), ("pod name", name)] {
            if !is_dns_subdomain(value) {
                return Err(Error::BadName {
                    what,
                    value: value.to_string(),
                });
            }
        }
        Ok(format!(
            "{}/api/v1/namespaces/{namespace}/pods/{name}",
            self.credentials.server()
        ))
    }

    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Error> {
        let mut response = response.map_err(|e| Error::Transport {
            server: self.credentials.server().to_string(),
            reason: e.to_string(),
        })?;
        let status = response.status();
        let mut text = String::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_REPLY_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| Error::Transport {
                server: self.credentials.server().to_string(),
                reason: format!("reading the answer: {e}"),
            })?;
        if text.len() as u64 > MAX_REPLY_BYTES {
            return Err(Error::TooLarge);
        }
        let body: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return body.ok_or(Error::BadReply("JSON object"));
        }
        // Errors come as a `Status` object; its message says why.
        let field = |key: &str| {
            body.as_ref()
                .and_then(|b| b[key].as_str())
                .map(str::to_string)
        };
        Err(Error::Status {
            code: status.as_u16(),
            reason: field("reason")
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string()),
            message: field("message").unwrap_or_else(|| text.chars().take(200).collect()),
        })
    }
}

/// RFC 1123 subdomain: what namespaces and pod names are made of. Checked
/// before a name goes into a URL path.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_change_the_url_are_refused() {
        for good in ["default", "kube-system", "memif-app", "a.b-c.d1"] {
            assert!(is_dns_subdomain(good), "{good}");
        }
        for bad in [
            "", "../x", "a/b", "A", "a?b", "-a", "a.", "a..b", "a b", "a%2f",
        ] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }
}
