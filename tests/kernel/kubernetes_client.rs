//! The audit's Kubernetes client against an HTTPS server in the test that checks every
//! request as the API server would: path, verb, `Content-Type` (415 for a strategic merge
//! patch, which custom resources refuse), body, `Authorization: Bearer` with the token
//! file's current content; and answers refusals as `Status` objects. Certificates come
//! from a CA that openssl makes for the test. First the client alone (the library), then
//! the real binary auditing a namespace's rules with the server listening in that
//! namespace.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use netfilter_exporter::audit::kube::{Client, Event, KubeError, KubeSettings, LABEL, Operation};
use netfilter_exporter::exposition::Format;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::harness::{Bpffs, Netns, require_command, require_kernel, run_capture, wait_until};

const NODE: &str = "node-a";
const NODE_UID: &str = "6f1c2b4e-0000-4000-8000-00000000000a";

/// A CA, a server certificate it signed for 127.0.0.1, and a second CA that signed
/// nothing the server has, all made by openssl.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let openssl = |args: &[&str]| {
            run_capture(
                std::process::Command::new("openssl")
                    .args(args)
                    .current_dir(dir.path()),
            )
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=kube-apiserver",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\n",
        )
        .expect("write extension file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(self.path("server.crt"))
                .expect("server.crt")
                .map(|c| c.expect("certificate"))
                .collect();
        let key = PrivateKeyDer::from_pem_file(self.path("server.key")).expect("server.key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
        Arc::new(config)
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: serde_json::Value,
    status: u16,
}

/// What the API server holds, and the refusals it was told to answer next.
#[derive(Debug, Default)]
struct State {
    /// The CiliumNodes by name, with their labels.
    ciliumnodes: BTreeMap<String, BTreeMap<String, String>>,
    /// The Nodes by name, with their UIDs.
    nodes: BTreeMap<String, String>,
    /// Event names taken.
    events: BTreeMap<String, serde_json::Value>,
    /// The next answers to give to requests of an operation instead of serving them.
    refusals: VecDeque<(Operation, u16)>,
    seen: Vec<Seen>,
}

/// The API server in the test.
#[derive(Clone)]
struct ApiServer {
    state: Arc<Mutex<State>>,
    token_file: PathBuf,
    port: u16,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, serde_json::Value) {
    (
        code,
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
        }),
    )
}

fn is_dns_subdomain(name: &str) -> bool {
    let edge = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(edge)
        && name.ends_with(edge)
        && name.chars().all(|c| edge(c) || c == '-' || c == '.')
}

impl ApiServer {
    /// Serves on `listener` (bound wherever the test wants it, also in a namespace) with
    /// the certificates of `pki`; the bearer token must be the content of `token_file`.
    fn start(listener: std::net::TcpListener, pki: &Pki, token_file: &Path) -> ApiServer {
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let server = ApiServer {
            state: Arc::new(Mutex::new(State::default())),
            token_file: token_file.to_owned(),
            port,
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let serving = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, server) = (acceptor.clone(), serving.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        server
    }

    /// Makes `NODE`'s CiliumNode exist, without labels.
    fn add_ciliumnode(&self) {
        self.state()
            .ciliumnodes
            .insert(NODE.to_owned(), BTreeMap::new());
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }

    fn label(&self, node: &str) -> Option<String> {
        self.state().ciliumnodes.get(node)?.get(LABEL).cloned()
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let header = |name: hyper::header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(hyper::header::CONTENT_TYPE);
        let authorization = header(hyper::header::AUTHORIZATION);
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let path = parts.uri.path().to_owned();
        let (code, answer) = self.serve(
            parts.method.as_str(),
            &path,
            content_type.as_deref(),
            authorization.as_deref(),
            body.is_empty(),
            json.as_ref(),
        );
        self.state().seen.push(Seen {
            method: parts.method.to_string(),
            path,
            content_type,
            authorization,
            body: json.unwrap_or(serde_json::Value::Null),
            status: code,
        });
        Response::builder()
            .status(StatusCode::from_u16(code).expect("status"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(answer.to_string())))
            .expect("response")
    }

    /// The API server's answer to one request.
    fn serve(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        empty: bool,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let token = std::fs::read_to_string(&self.token_file).expect("token file");
        if authorization != Some(&format!("Bearer {}", token.trim())) {
            return status(401, "Unauthorized", "Unauthorized");
        }
        let segments: Vec<&str> = path.split('/').collect();
        let operation = match (method, &segments[..]) {
            ("GET", ["", "api", "v1", "nodes", _]) => Operation::GetNode,
            ("PATCH", ["", "apis", "cilium.io", "v2", "ciliumnodes", _]) => {
                Operation::PatchCiliumNode
            }
            ("POST", ["", "api", "v1", "namespaces", "default", "events"]) => {
                Operation::CreateEvent
            }
            _ => {
                return status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                );
            }
        };
        let mut state = self.state();
        if state
            .refusals
            .front()
            .is_some_and(|(op, _)| *op == operation)
        {
            let (_, code) = state.refusals.pop_front().expect("refusal");
            return match code {
                403 => status(403, "Forbidden", "forbidden: the service account may not"),
                404 => status(404, "NotFound", "not found"),
                409 => status(409, "AlreadyExists", "already exists"),
                _ => status(code, "Invalid", "refused by the test"),
            };
        }
        let name = path.rsplit('/').next().unwrap_or_default().to_owned();
        match operation {
            Operation::GetNode => {
                if !empty {
                    return status(400, "BadRequest", "a GET has no body");
                }
                match state.nodes.get(&name) {
                    Some(uid) => (
                        200,
                        serde_json::json!({"kind": "Node", "apiVersion": "v1",
                            "metadata": {"name": name, "uid": uid}}),
                    ),
                    None => status(404, "NotFound", &format!("nodes \"{name}\" not found")),
                }
            }
            Operation::PatchCiliumNode => {
                match content_type {
                    Some("application/merge-patch+json") => {}
                    Some("application/strategic-merge-patch+json") => {
                        return status(
                            415,
                            "UnsupportedMediaType",
                            "strategic merge patch is not supported for custom resources",
                        );
                    }
                    _ => return status(415, "UnsupportedMediaType", "unsupported patch type"),
                }
                let Some(patch) = body.and_then(|b| b.as_object()) else {
                    return status(400, "BadRequest", "the patch is not a JSON object");
                };
                // Only the label: anything else would change what the test does not own.
                let Some(labels) = patch
                    .get("metadata")
                    .and_then(|m| m.get("labels"))
                    .and_then(|l| l.as_object())
                    .filter(|_| patch.len() == 1)
                else {
                    return status(422, "Invalid", "the patch does more than label");
                };
                let Some(node) = state.ciliumnodes.get_mut(&name) else {
                    return status(
                        404,
                        "NotFound",
                        &format!("ciliumnodes.cilium.io \"{name}\" not found"),
                    );
                };
                for (key, value) in labels {
                    let Some(value) = value.as_str().filter(|v| *v == "true" || *v == "false")
                    else {
                        return status(422, "Invalid", "a label value must be a string");
                    };
                    node.insert(key.clone(), value.to_owned());
                }
                (
                    200,
                    serde_json::json!({"kind": "CiliumNode", "metadata": {"name": name, "labels": node.clone()}}),
                )
            }
            Operation::CreateEvent => {
                if content_type != Some("application/json") {
                    return status(415, "UnsupportedMediaType", "not JSON");
                }
                let Some(event) = body else {
                    return status(400, "BadRequest", "not JSON");
                };
                let event_name = event["metadata"]["name"].as_str().unwrap_or_default();
                let uid = state.nodes.get(NODE).cloned().unwrap_or_default();
                let valid = is_dns_subdomain(event_name)
                    && event["metadata"]["namespace"] == "default"
                    && event["involvedObject"]
                        == serde_json::json!({"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": uid})
                    && event["type"] == "Warning"
                    && event["reason"].as_str().is_some_and(|r| !r.is_empty())
                    && event["message"].as_str().is_some_and(|m| !m.is_empty())
                    && event["firstTimestamp"]
                        .as_str()
                        .is_some_and(|t| t.ends_with('Z'));
                if !valid {
                    return status(422, "Invalid", &format!("event is invalid: {event}"));
                }
                if state.events.contains_key(event_name) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("events \"{event_name}\" already exists"),
                    );
                }
                state.events.insert(event_name.to_owned(), event.clone());
                (201, event.clone())
            }
        }
    }
}

/// A token file, rotated by writing a new token.
struct Token {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Token {
    fn new(token: &str) -> Token {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        let token_file = Token { path, _dir: dir };
        token_file.rotate(token);
        token_file
    }

    /// Replaces the token as the kubelet does: a new file renamed over the old one.
    fn rotate(&self, token: &str) {
        let new = self.path.with_extension("new");
        std::fs::write(&new, format!("{token}\n")).expect("write token");
        std::fs::rename(&new, &self.path).expect("rename token");
    }
}

fn settings(server: &ApiServer, pki: &Pki, ca: &str) -> KubeSettings {
    KubeSettings {
        node: NODE.to_owned(),
        host: "127.0.0.1".to_owned(),
        port: server.port,
        token_file: server.token_file.clone(),
        ca_file: pki.path(ca),
        timeout: Duration::from_secs(5),
    }
}

/// A CA, a token file holding `token`, and an API server on loopback trusting both.
fn cluster(token: &str) -> (Pki, Token, ApiServer) {
    let pki = Pki::new();
    let token = Token::new(token);
    let server = ApiServer::start(local_listener(), &pki, &token.path);
    (pki, token, server)
}

fn local_listener() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind")
}

fn failures_line(client: &Client, operation: &str) -> Option<String> {
    let text = String::from_utf8(client.render().to_vec(Format::Text)).expect("UTF-8");
    let prefix =
        format!("netfilter_audit_kubernetes_request_failures_total{{operation=\"{operation}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

fn unexpected_event() -> Event {
    Event {
        reason: "UnexpectedIPTablesRules",
        message: "1 rule".to_owned(),
    }
}

#[tokio::test]
async fn the_label_is_a_merge_patch_with_the_current_token() {
    if !require_command("openssl") {
        return;
    }
    let (pki, token, server) = cluster("first-token");
    server.add_ciliumnode();
    let mut client = Client::new(settings(&server, &pki, "ca.crt"));

    client.patch_label(true).await.expect("labelled");
    assert_eq!(server.label(NODE).as_deref(), Some("true"));
    token.rotate("second-token");
    client
        .patch_label(false)
        .await
        .expect("labelled with the new token");
    assert_eq!(server.label(NODE).as_deref(), Some("false"));

    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for (request, token) in seen.iter().zip(["first-token", "second-token"]) {
        assert_eq!(request.method, "PATCH");
        assert_eq!(
            request.path,
            format!("/apis/cilium.io/v2/ciliumnodes/{NODE}")
        );
        assert_eq!(
            request.content_type.as_deref(),
            Some("application/merge-patch+json")
        );
        assert_eq!(
            request.authorization.as_deref(),
            Some(&*format!("Bearer {token}"))
        );
        assert_eq!(request.status, 200);
    }
    assert_eq!(
        seen[1].body,
        serde_json::json!({"metadata": {"labels": {LABEL: "false"}}})
    );
    assert_eq!(
        failures_line(&client, "patch_ciliumnode").as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn refusals_are_errors_counted_per_operation() {
    if !require_command("openssl") {
        return;
    }
    let (pki, _token, server) = cluster("t");
    let mut client = Client::new(settings(&server, &pki, "ca.crt"));

    // No CiliumNode yet: the API server's 404.
    let err = client.patch_label(true).await.expect_err("no CiliumNode");
    assert!(
        matches!(&err, KubeError::Status { code: 404, reason, .. } if reason == "NotFound"),
        "{err:?}"
    );
    server.add_ciliumnode();
    server
        .state()
        .refusals
        .push_back((Operation::PatchCiliumNode, 403));
    let err = client.patch_label(true).await.expect_err("forbidden");
    assert!(
        matches!(&err, KubeError::Status { code: 403, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("forbidden"), "{err}");
    assert_eq!(
        failures_line(&client, "patch_ciliumnode").as_deref(),
        Some("2")
    );
    client.patch_label(true).await.expect("allowed now");
    assert_eq!(server.label(NODE).as_deref(), Some("true"));

    // A token that is not the current one is refused with 401.
    let stale = Token::new("stale");
    let mut stale_client = Client::new(KubeSettings {
        token_file: stale.path.clone(),
        ..settings(&server, &pki, "ca.crt")
    });
    let err = stale_client
        .patch_label(false)
        .await
        .expect_err("unauthorized");
    assert!(
        matches!(&err, KubeError::Status { code: 401, .. }),
        "{err:?}"
    );

    // Events: the Node's UID first (404 while there is no Node), then the event.
    let err = client
        .create_event(&unexpected_event())
        .await
        .expect_err("no Node");
    assert!(
        matches!(&err, KubeError::Status { code: 404, .. }),
        "{err:?}"
    );
    assert_eq!(failures_line(&client, "get_node").as_deref(), Some("1"));
    server
        .state()
        .nodes
        .insert(NODE.to_owned(), NODE_UID.to_owned());
    server
        .state()
        .refusals
        .push_back((Operation::CreateEvent, 422));
    let err = client
        .create_event(&unexpected_event())
        .await
        .expect_err("invalid");
    assert!(
        matches!(&err, KubeError::Status { code: 422, .. }),
        "{err:?}"
    );
    assert_eq!(failures_line(&client, "create_event").as_deref(), Some("1"));
}

#[tokio::test]
async fn a_name_taken_is_tried_again_with_another() {
    if !require_command("openssl") {
        return;
    }
    let (pki, _token, server) = cluster("t");
    server
        .state()
        .nodes
        .insert(NODE.to_owned(), NODE_UID.to_owned());
    let mut client = Client::new(settings(&server, &pki, "ca.crt"));
    server
        .state()
        .refusals
        .push_back((Operation::CreateEvent, 409));
    client
        .create_event(&unexpected_event())
        .await
        .expect("created on the second try");
    // Two events in the same second get two names.
    client
        .create_event(&unexpected_event())
        .await
        .expect("second event");
    let seen = server.seen();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(
        posts.iter().map(|s| s.status).collect::<Vec<_>>(),
        [409, 201, 201]
    );
    let names: std::collections::BTreeSet<&str> = posts
        .iter()
        .map(|s| s.body["metadata"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("node-a.")), "{names:?}");
    // The Node is read once, for its UID.
    assert_eq!(seen.iter().filter(|s| s.method == "GET").count(), 1);
    assert_eq!(server.state().events.len(), 2);
    assert_eq!(failures_line(&client, "create_event").as_deref(), Some("1"));
}

#[tokio::test]
async fn the_test_server_refuses_a_strategic_merge_patch_as_custom_resources_do() {
    if !(require_command("openssl") && require_command("curl")) {
        return;
    }
    let (pki, _token, server) = cluster("t");
    server.add_ciliumnode();
    let url = format!(
        "https://127.0.0.1:{}/apis/cilium.io/v2/ciliumnodes/{NODE}",
        server.port
    );
    let ca = pki.path("ca.crt");
    let output = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "-X",
            "PATCH",
        ])
        .args(["-H", "Content-Type: application/strategic-merge-patch+json"])
        .args([
            "-H",
            "Authorization: Bearer t",
            "--data",
            r#"{"metadata":{"labels":{"a":"true"}}}"#,
        ])
        .arg("--cacert")
        .arg(&ca)
        .args(["--write-out", "\n%{http_code}", &url])
        .output()
        .await
        .expect("run curl");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    let (body, code) = stdout.rsplit_once('\n').expect("status code");
    assert_eq!(code, "415", "{stdout}");
    let status: serde_json::Value = serde_json::from_str(body).expect("a Status object");
    assert_eq!(
        (status["kind"].as_str(), status["code"].as_u64()),
        (Some("Status"), Some(415))
    );
    assert_eq!(server.label(NODE), None);
}

#[tokio::test]
async fn a_server_the_ca_did_not_sign_is_refused() {
    if !require_command("openssl") {
        return;
    }
    let (pki, _token, server) = cluster("t");
    server.add_ciliumnode();
    let mut client = Client::new(settings(&server, &pki, "other-ca.crt"));
    let err = client.patch_label(true).await.expect_err("refused");
    assert!(matches!(&err, KubeError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert_eq!(
        failures_line(&client, "patch_ciliumnode").as_deref(),
        Some("1")
    );
    assert!(server.seen().is_empty(), "no request went through");
    assert_eq!(server.label(NODE), None);
}

// ---- The real binary, auditing a namespace ----

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "kube";

/// A listener on 127.0.0.1 inside `ns`: bound by a thread that entered the namespace, so
/// that the binary running there reaches the test's server.
fn listener_in(ns: &Netns) -> std::net::TcpListener {
    ns.on_thread(local_listener)
}

const RULES: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

struct Run {
    pki: Pki,
    token: Token,
    server: ApiServer,
    allowlist: tempfile::TempDir,
    ns: Netns,
}

impl Run {
    fn new() -> Run {
        let ns = Netns::new(NETNS_LABEL);
        ns.restore("iptables-restore", RULES);
        let pki = Pki::new();
        let token = Token::new("first-token");
        let server = ApiServer::start(listener_in(&ns), &pki, &token.path);
        server
            .state()
            .nodes
            .insert(NODE.to_owned(), NODE_UID.to_owned());
        let allowlist = tempfile::tempdir().expect("tempdir");
        std::fs::write(allowlist.path().join("global"), "^-P [A-Z]+ ACCEPT$\n").expect("global");
        Run {
            pki,
            token,
            server,
            allowlist,
            ns,
        }
    }

    fn audit(&self, extra: &[&str]) -> std::process::Command {
        let input = format!("-input={}", self.allowlist.path().display());
        let api = format!(
            "--kubernetes.api-server=https://127.0.0.1:{}",
            self.server.port
        );
        let token = format!("--kubernetes.token-file={}", self.token.path.display());
        let ca = format!("--kubernetes.ca-file={}", self.pki.path("ca.crt").display());
        let mut command = self
            .ns
            .exporter(&["audit", &input, "-interval=1", &api, &token, &ca]);
        command.args(extra).env("NODE_NAME", NODE);
        command
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_audit_labels_the_node_and_creates_events() {
    if !(require_kernel() && require_command("openssl") && require_command("curl")) {
        return;
    }
    let run = Run::new();
    // The CiliumNode does not exist at first (Cilium has not registered the node yet).
    run.ns.run(
        "iptables",
        &[
            "-A", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT",
        ],
    );
    run.server
        .state()
        .refusals
        .push_back((Operation::CreateEvent, 409));
    let log = tempfile::NamedTempFile::new().expect("log");
    let command = run.audit(&["-events=true", "--web.listen-address=127.0.0.1:9478"]);
    let mut audit = run.ns.spawn(command, log.path());
    let server = run.server.clone();
    let seen_patch = |status: u16| {
        let server = server.clone();
        move || {
            server
                .seen()
                .iter()
                .any(|s| s.method == "PATCH" && s.status == status)
        }
    };
    assert!(
        wait_until(Duration::from_secs(20), seen_patch(404)),
        "{}",
        audit.log()
    );
    let metrics = run.ns.curl(&["http://127.0.0.1:9478/metrics"]);
    assert!(
        metrics.contains(
            "netfilter_audit_kubernetes_request_failures_total{operation=\"patch_ciliumnode\"} "
        ),
        "{metrics}"
    );
    assert!(
        audit.log().contains("Kubernetes request failed"),
        "{}",
        audit.log()
    );
    // Retried on the next check, once the CiliumNode exists.
    run.server.add_ciliumnode();
    assert!(
        wait_until(Duration::from_secs(20), || run
            .server
            .label(NODE)
            .as_deref()
            == Some("true")),
        "{}",
        audit.log()
    );
    // The event: a name taken (409) tried again under another.
    assert!(
        wait_until(Duration::from_secs(20), || run.server.state().events.len()
            == 1),
        "{}",
        audit.log()
    );
    let event = run
        .server
        .state()
        .events
        .values()
        .next()
        .cloned()
        .expect("event");
    assert_eq!(event["reason"], "UnexpectedIPTablesRules");
    assert_eq!(event["involvedObject"]["uid"], NODE_UID);

    // The token rotates, the rule goes: the label follows with the new token.
    run.token.rotate("second-token");
    run.ns.run(
        "iptables",
        &[
            "-D", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "ACCEPT",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || run
            .server
            .label(NODE)
            .as_deref()
            == Some("false")),
        "{}",
        audit.log()
    );
    let seen = run.server.seen();
    let last = seen
        .iter()
        .rev()
        .find(|s| s.method == "PATCH")
        .expect("a patch");
    assert_eq!(last.authorization.as_deref(), Some("Bearer second-token"));
    assert!(seen.iter().all(|s| s.status != 401), "{seen:?}");
    // One label per change, not one per check; one event for the one rule that appeared.
    std::thread::sleep(Duration::from_secs(2));
    let seen = run.server.seen();
    let patches: Vec<u16> = seen
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.status)
        .collect();
    assert_eq!(patches, [404, 200, 200], "{seen:?}");
    assert_eq!(run.server.state().events.len(), 1);
    audit.assert_running();
    assert!(
        audit
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_on_success_waits_until_the_label_is_set() {
    if !(require_kernel() && require_command("openssl")) {
        return;
    }
    let run = Run::new();
    run.server.add_ciliumnode();
    run.server
        .state()
        .refusals
        .push_back((Operation::PatchCiliumNode, 403));
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut audit = run
        .ns
        .spawn(run.audit(&["-terminateOnSuccess"]), log.path());
    let status = audit.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        audit.log()
    );
    let patches: Vec<u16> = run
        .server
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.status)
        .collect();
    assert_eq!(
        patches,
        [403, 200],
        "clean, but the label was not set the first time"
    );
    assert_eq!(run.server.label(NODE).as_deref(), Some("false"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_fails_never_labels_the_node_clean() {
    if !(require_kernel() && require_command("openssl")) {
        return;
    }
    let run = Run::new();
    run.server.add_ciliumnode();
    // An allowlist that cannot be used fails every check.
    std::fs::write(run.allowlist.path().join("filter"), "(\n").expect("bad pattern");
    let log = tempfile::NamedTempFile::new().expect("log");
    let mut audit = run
        .ns
        .spawn(run.audit(&["-terminateOnSuccess"]), log.path());
    assert!(
        wait_until(Duration::from_secs(20), || audit
            .log()
            .matches("audit check failed")
            .count()
            >= 2),
        "{}",
        audit.log()
    );
    audit.assert_running();
    assert!(run.server.seen().is_empty(), "{:?}", run.server.seen());
    assert_eq!(run.server.label(NODE), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rise_of_the_bpf_count_is_an_event_and_old_blocks_are_not() {
    if !(require_kernel() && require_command("openssl") && require_command("bpftool")) {
        return;
    }
    let run = Run::new();
    run.server.add_ciliumnode();
    let bpffs = Bpffs::mount();
    let map = bpffs.array_map("iptables_block_event_counter");
    bpffs.set(&map, 0, 5);
    let map_path = format!("-mapPath={}", map.display());
    let log = tempfile::NamedTempFile::new().expect("log");
    let command = run.audit(&["-events", "-checkMap", &map_path]);
    let mut audit = run.ns.spawn(command, log.path());
    // Clean: labelled false; the five blocks from before the start are no event.
    assert!(
        wait_until(Duration::from_secs(20), || run
            .server
            .label(NODE)
            .as_deref()
            == Some("false")),
        "{}",
        audit.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        run.server.state().events.is_empty(),
        "{:?}",
        run.server.state().events
    );
    bpffs.set(&map, 0, 7);
    assert!(
        wait_until(Duration::from_secs(20), || !run
            .server
            .state()
            .events
            .is_empty()),
        "{}",
        audit.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let events: Vec<serde_json::Value> = run.server.state().events.values().cloned().collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "BlockedIPTablesRule");
    assert!(
        events[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("2 attempts")),
        "{}",
        events[0]
    );
    audit.assert_running();
}
