//! The audit's Kubernetes client: the three requests azure-iptables-monitor makes, over
//! HTTPS with the pod's service account. Each request opens its own connection (a check
//! runs every few minutes and makes at most three), reads the token file again (the
//! kubelet rotates it) and the cluster CA, and is bounded in time and in the size of the
//! answer. What the requests are for, and when they are made, is [`super::policy`]'s.
//!
//! A hand-written client on hyper and rustls, not the kube crate: docs/audit.md,
//! "Kubernetes", has the measured reason.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::error_chain::Chain;
use crate::exposition::{Exposition, ExpositionBuilder, MetricType};
use crate::metrics::names;

/// The label set on the node's CiliumNode, as the original names it.
pub const LABEL: &str = "kubernetes.azure.com/user-iptables-rules";

/// The namespace the events go to: the original's, where `kubectl describe node` finds
/// them (events of cluster-scoped objects are looked up in `default`).
pub const EVENT_NAMESPACE: &str = "default";

/// Where a pod finds its service account's token.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Where a pod finds the cluster's CA certificate.
pub const DEFAULT_CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// The component named as the events' source.
const COMPONENT: &str = "netfilter_exporter";
/// Most bytes of an answer read; a Node object is a few KiB.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Most bytes of the token file read.
const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// Most bytes of the CA file read.
const MAX_CA_BYTES: u64 = 1 << 20;
/// Names tried for one event before it is given up for this check (409: the name exists).
const EVENT_NAME_TRIES: usize = 3;

/// What the API server must allow the service account to do for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// The API group (`""` for the core group).
    pub api_group: &'static str,
    /// The resource, plural.
    pub resource: &'static str,
    /// The RBAC verb.
    pub verb: &'static str,
}

/// The requests the client makes; the ClusterRole of deploy/kubernetes/ grants exactly
/// their [`Operation::permission`] (a test compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// `GET /api/v1/nodes/NAME`: the Node's UID, which an event must name to be shown
    /// with the node.
    GetNode,
    /// `PATCH /apis/cilium.io/v2/ciliumnodes/NAME`: the label, as a JSON merge patch.
    PatchCiliumNode,
    /// `POST /api/v1/namespaces/default/events`: a Warning event on the Node.
    CreateEvent,
}

impl Operation {
    /// Every operation, in the order the metrics list them.
    pub const ALL: [Operation; 3] = [
        Operation::GetNode,
        Operation::PatchCiliumNode,
        Operation::CreateEvent,
    ];

    /// The `operation` label of the failure metric.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::GetNode => "get_node",
            Operation::PatchCiliumNode => "patch_ciliumnode",
            Operation::CreateEvent => "create_event",
        }
    }

    /// The RBAC rule it needs.
    pub fn permission(self) -> Permission {
        let (api_group, resource, verb) = match self {
            Operation::GetNode => ("", "nodes", "get"),
            Operation::PatchCiliumNode => ("cilium.io", "ciliumnodes", "patch"),
            Operation::CreateEvent => ("", "events", "create"),
        };
        Permission {
            api_group,
            resource,
            verb,
        }
    }
}

/// Where the API server is and how to prove who we are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// The node the audit runs on (`NODE_NAME`): the Node and CiliumNode of that name.
    pub node: String,
    /// The API server's host (an IP address or a DNS name) and port.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The bearer token's file, read again for every request.
    pub token_file: PathBuf,
    /// The PEM file of the CA that signed the API server's certificate.
    pub ca_file: PathBuf,
    /// Deadline of one request, connection and TLS handshake included.
    pub timeout: Duration,
}

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubeError {
    /// The token file cannot be read or is empty.
    #[error("cannot read the service account token {path}: {reason}")]
    Token {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The CA file cannot be read or holds no usable certificate.
    #[error("cannot use the cluster CA {path}: {reason}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No TCP connection to the API server.
    #[error("cannot connect to the API server {address}: {reason}")]
    Connect {
        /// host:port.
        address: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The TLS handshake failed (an unknown CA, a name the certificate does not hold).
    #[error("TLS with the API server {address} failed: {reason}")]
    Tls {
        /// host:port.
        address: String,
        /// rustls's reason.
        reason: String,
    },
    /// The HTTP exchange failed (the connection closed, an answer too large).
    #[error("HTTP exchange with the API server failed: {reason}")]
    Http {
        /// Why.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
    /// The API server refused the request, with its `Status` object's reason and message.
    #[error("the API server answered {code}: {reason}: {message}")]
    Status {
        /// The HTTP status code.
        code: u16,
        /// The `Status` object's `reason` (`NotFound`, `Forbidden`, `AlreadyExists`, …).
        reason: String,
        /// Its `message`.
        message: String,
    },
    /// A successful answer that is not what the API returns.
    #[error("unexpected answer from the API server: {0}")]
    Answer(String),
}

/// A Warning event to create on the Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `UnexpectedIPTablesRules` or `BlockedIPTablesRule`.
    pub reason: &'static str,
    /// What happened, for a person.
    pub message: String,
}

/// The client of one node's audit. It remembers the Node's UID once read, and counts the
/// failures of each operation for the metrics.
#[derive(Debug)]
pub struct Client {
    settings: KubeSettings,
    node_uid: Option<String>,
    failures: [u64; Operation::ALL.len()],
}

impl Client {
    /// A client that has made no request yet.
    pub fn new(settings: KubeSettings) -> Client {
        Client {
            settings,
            node_uid: None,
            failures: [0; Operation::ALL.len()],
        }
    }

    /// The settings it uses.
    pub fn settings(&self) -> &KubeSettings {
        &self.settings
    }

    /// Sets the label to `value` on the node's CiliumNode with a JSON merge patch (custom
    /// resources refuse strategic merge patches).
    pub async fn patch_label(&mut self, value: bool) -> Result<(), KubeError> {
        let path = format!("/apis/cilium.io/v2/ciliumnodes/{}", self.settings.node);
        let body = label_patch(value);
        let result = self
            .request(
                Operation::PatchCiliumNode,
                Method::PATCH,
                &path,
                Some(("application/merge-patch+json", body)),
            )
            .await
            .map(drop);
        self.count(Operation::PatchCiliumNode, &result);
        result
    }

    /// Creates `event` on the Node, with a fresh name on every try, so that two events in
    /// one second never collide (the original's do) and a name taken is tried again.
    pub async fn create_event(&mut self, event: &Event) -> Result<(), KubeError> {
        let uid = self.node_uid().await?;
        let path = format!("/api/v1/namespaces/{EVENT_NAMESPACE}/events");
        let mut last = None;
        for _ in 0..EVENT_NAME_TRIES {
            let now = SystemTime::now();
            let body = event_body(&self.settings.node, &uid, event, now);
            let result = self
                .request(
                    Operation::CreateEvent,
                    Method::POST,
                    &path,
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await
                .map(drop);
            self.count(Operation::CreateEvent, &result);
            match result {
                Err(KubeError::Status { code: 409, .. }) => last = result.err(),
                other => return other,
            }
        }
        Err(last.unwrap_or(KubeError::Answer("no try made".to_owned())))
    }

    /// The Node's UID, read once.
    async fn node_uid(&mut self) -> Result<String, KubeError> {
        if let Some(uid) = &self.node_uid {
            return Ok(uid.clone());
        }
        let path = format!("/api/v1/nodes/{}", self.settings.node);
        let result = self
            .request(Operation::GetNode, Method::GET, &path, None)
            .await
            .and_then(|body| {
                let node: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|e| KubeError::Answer(format!("the Node is not JSON: {e}")))?;
                node["metadata"]["uid"]
                    .as_str()
                    .filter(|uid| !uid.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| KubeError::Answer("the Node has no metadata.uid".to_owned()))
            });
        self.count(Operation::GetNode, &result);
        let uid = result?;
        self.node_uid = Some(uid.clone());
        Ok(uid)
    }

    fn count<T>(&mut self, operation: Operation, result: &Result<T, KubeError>) {
        if let Err(e) = result {
            self.failures[operation as usize] += 1;
            tracing::warn!(
                operation = operation.as_str(),
                node = %self.settings.node,
                error = %Chain(e),
                "Kubernetes request failed"
            );
        }
    }

    /// How many requests of `operation` have failed.
    pub fn failures(&self, operation: Operation) -> u64 {
        self.failures[operation as usize]
    }

    /// The client's metric family: the failures of each operation.
    pub fn render(&self) -> Exposition {
        let mut out = ExpositionBuilder::default();
        let (name, help) = names::audit::KUBERNETES_REQUEST_FAILURES;
        {
            let mut family = out.family(name, help, MetricType::Counter);
            for operation in Operation::ALL {
                family.sample(
                    &[("operation", operation.as_str())],
                    self.failures(operation),
                );
            }
        }
        out.finish()
    }

    /// One request, within the deadline; the answer's body when its status is 2xx.
    async fn request(
        &self,
        operation: Operation,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Bytes, KubeError> {
        let timeout = self.settings.timeout;
        tracing::debug!(operation = operation.as_str(), %method, path, "Kubernetes request");
        tokio::time::timeout(timeout, self.exchange(method, path, body))
            .await
            .unwrap_or(Err(KubeError::Timeout(timeout)))
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Bytes, KubeError> {
        let settings = &self.settings;
        let token = read_token(&settings.token_file)?;
        let tls = tls_config(&settings.ca_file)?;
        let address = authority(&settings.host, settings.port);
        let tcp = tokio::net::TcpStream::connect((settings.host.as_str(), settings.port))
            .await
            .map_err(|e| KubeError::Connect {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(server_name(&settings.host)?, tcp)
            .await
            .map_err(|e| KubeError::Tls {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        let http = |e: hyper::Error| KubeError::Http {
            reason: e.to_string(),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &address)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("netfilter_exporter/", env!("CARGO_PKG_VERSION")),
            );
        let payload = match body {
            Some((content_type, bytes)) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| KubeError::Http {
                reason: e.to_string(),
            })?;
        let exchange = async {
            let response = sender.send_request(request).await.map_err(http)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| KubeError::Http {
                    reason: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok::<_, KubeError>((status, body))
        };
        // The connection is driven here, not in a task of its own, so that the deadline
        // ends it with the request.
        let mut connection = std::pin::pin!(connection);
        let (status, body) = tokio::select! {
            exchanged = exchange => exchanged?,
            closed = &mut connection => {
                return Err(KubeError::Http {
                    reason: match closed {
                        Ok(()) => "the connection closed before the answer".to_owned(),
                        Err(e) => e.to_string(),
                    },
                });
            }
        };
        if status.is_success() {
            Ok(body)
        } else {
            Err(status_error(status, &body))
        }
    }
}

/// The JSON merge patch that sets the label.
pub fn label_patch(value: bool) -> Vec<u8> {
    serde_json::json!({ "metadata": { "labels": { LABEL: value.to_string() } } })
        .to_string()
        .into_bytes()
}

/// A core/v1 Event on the Node `node` (with its `uid`), named `<node>.<hex nanoseconds>`
/// as the kubelet names its events, unique to the nanosecond.
pub fn event_body(node: &str, uid: &str, event: &Event, now: SystemTime) -> serde_json::Value {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let suffix = format!(".{nanos:x}");
    // A name is at most 253 characters; a node name may already be that long.
    let keep = node.len().min(253 - suffix.len());
    let name = format!("{}{suffix}", &node[..keep]);
    let timestamp = time::OffsetDateTime::from(now)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": { "name": name, "namespace": EVENT_NAMESPACE },
        "involvedObject": { "apiVersion": "v1", "kind": "Node", "name": node, "uid": uid },
        "reason": event.reason,
        "message": event.message,
        "type": "Warning",
        "count": 1,
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "source": { "component": COMPONENT, "host": node },
        "reportingComponent": COMPONENT,
        "reportingInstance": node,
    })
}

/// The error of a refused request, from its `Status` object when it has one.
fn status_error(status: StatusCode, body: &[u8]) -> KubeError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str())
            .map(str::to_owned)
    };
    KubeError::Status {
        code: status.as_u16(),
        reason: field("reason")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
        message: field("message")
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
    }
}

/// `host:port`, an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, KubeError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(ServerName::IpAddress(ip.into())),
        Err(_) => ServerName::try_from(host.to_owned()).map_err(|e| KubeError::Tls {
            address: host.to_owned(),
            reason: format!("not a host name: {e}"),
        }),
    }
}

/// Reads at most `limit` bytes of `path`; more is an error.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes"));
    }
    Ok(bytes)
}

fn read_token(path: &Path) -> Result<String, KubeError> {
    let error = |reason: String| KubeError::Token {
        path: path.to_owned(),
        reason,
    };
    let bytes = read_bounded(path, MAX_TOKEN_BYTES).map_err(error)?;
    let token = String::from_utf8(bytes).map_err(|_| error("not UTF-8".to_owned()))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(error("empty".to_owned()));
    }
    // A header value cannot hold control characters.
    if token.bytes().any(|b| b.is_ascii_control()) {
        return Err(error("holds control characters".to_owned()));
    }
    Ok(token.to_owned())
}

fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, KubeError> {
    let error = |reason: String| KubeError::Ca {
        path: ca_file.to_owned(),
        reason,
    };
    let pem = read_bounded(ca_file, MAX_CA_BYTES).map_err(error)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| error(e.to_string()))?;
        roots.add(cert).map_err(|e| error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(error("no certificate in it".to_owned()));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| error(e.to_string()))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_sets_the_label_as_a_string() {
        let patch: serde_json::Value = serde_json::from_slice(&label_patch(true)).expect("JSON");
        assert_eq!(
            patch,
            serde_json::json!({"metadata": {"labels": {LABEL: "true"}}})
        );
        let patch: serde_json::Value = serde_json::from_slice(&label_patch(false)).expect("JSON");
        assert_eq!(patch["metadata"]["labels"][LABEL], "false");
    }

    #[test]
    fn events_name_the_node_and_never_share_a_name_within_a_second() {
        let event = Event {
            reason: "UnexpectedIPTablesRules",
            message: "m".to_owned(),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let body = event_body("node-a", "uid-1", &event, at);
        assert_eq!(body["metadata"]["name"], "node-a.17979cfe362a0005");
        assert_eq!(body["metadata"]["namespace"], "default");
        assert_eq!(
            body["involvedObject"],
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "name": "node-a", "uid": "uid-1"})
        );
        assert_eq!(body["type"], "Warning");
        assert_eq!(body["firstTimestamp"], "2023-11-14T22:13:20Z");
        let later = event_body("node-a", "uid-1", &event, at + Duration::from_nanos(1));
        assert_ne!(later["metadata"]["name"], body["metadata"]["name"]);
        let long = "n".repeat(253);
        let name = event_body(&long, "u", &event, at)["metadata"]["name"].clone();
        assert_eq!(name.as_str().map(str::len), Some(253));
    }

    #[test]
    fn status_objects_give_the_error() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"ciliumnodes.cilium.io \"n\" not found","reason":"NotFound","code":404}"#;
        let err = status_error(StatusCode::NOT_FOUND, body);
        assert!(
            matches!(&err, KubeError::Status { code: 404, reason, .. } if reason == "NotFound"),
            "{err:?}"
        );
        assert!(err.to_string().contains("not found"), "{err}");
        let err = status_error(StatusCode::BAD_GATEWAY, b"<html>");
        assert!(
            matches!(&err, KubeError::Status { code: 502, reason, message } if reason == "Bad Gateway" && message == "<html>"),
            "{err:?}"
        );
    }

    #[test]
    fn operations_name_their_rbac_rule() {
        let rules: Vec<_> = Operation::ALL.iter().map(|o| o.permission()).collect();
        assert_eq!(
            rules,
            [
                Permission {
                    api_group: "",
                    resource: "nodes",
                    verb: "get"
                },
                Permission {
                    api_group: "cilium.io",
                    resource: "ciliumnodes",
                    verb: "patch"
                },
                Permission {
                    api_group: "",
                    resource: "events",
                    verb: "create"
                },
            ]
        );
        assert_eq!(authority("::1", 6443), "[::1]:6443");
        assert_eq!(authority("10.0.0.1", 443), "10.0.0.1:443");
    }
}
