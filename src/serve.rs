//! The HTTP side: a landing page and the metrics endpoint, answering every scrape from the
//! last publication in memory. A scrape never runs iptables and never re-renders; large
//! families are already compressed, and a publication's gzip stream is put together once
//! per format, on first demand.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, Response};
use axum::routing::get;
use bytes::Bytes;
use tokio::sync::watch;

use crate::error_chain::Chain;
use crate::exposition::{Exposition, Format};
use crate::serve::web_config::WebConfigFile;

pub mod auth;
pub mod channel;
pub mod connections;
pub mod fds;
pub mod listen;
pub mod policy;
pub mod privileges;
pub mod process;
pub mod run;
pub mod served;
pub mod split;
pub mod systemd;
pub mod web_config;

use policy::{MadeWhileSent, Policy};
use served::{SelfMetrics, Served};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The current publication.
    pub publications: watch::Receiver<Arc<Served>>,
    /// Path of the metrics endpoint.
    pub telemetry_path: TelemetryPath,
    /// Where the process metrics appended to every scrape come from; none without.
    pub self_metrics: Option<SelfMetrics>,
    /// Who may ask, how many at once, and the headers every response carries.
    pub policy: Policy,
}

/// Path of the landing page.
const LANDING_PATH: &str = "/";

/// Path of the health check.
const HEALTH_PATH: &str = "/-/healthy";

/// The application: the landing page, the health check and the telemetry path, behind the
/// state's [`Policy`]. It cannot panic as axum's router does on some paths: a
/// [`TelemetryPath`] is never one of them.
pub fn router(state: AppState) -> Router {
    let path = state.telemetry_path.clone();
    let policy = state.policy.clone();
    let routes = Router::new()
        .route(LANDING_PATH, get(landing))
        .route(HEALTH_PATH, get(|| async { "OK\n" }))
        .route(path.as_str(), get(metrics))
        .fallback(not_found)
        .with_state(state);
    policy.apply_to(routes)
}

/// Why a value cannot be the telemetry path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelemetryPathError {
    /// Routes are absolute paths.
    #[error("does not start with /")]
    NotAbsolute,
    /// Another route of the application has this path.
    #[error("is the path of the {0}")]
    Taken(&'static str),
    /// A character no URL path holds as such, so that no request would ever match.
    #[error("holds {0:?}, which a URL path holds only percent-encoded")]
    NotUrlPath(char),
    /// A `%` that does not start an escape of two hex digits.
    #[error("holds a % not followed by two hex digits")]
    BadEscape,
    /// `{` or `}`: axum's syntax of captures (`{name}`, `{*rest}`) and their escapes.
    #[error("holds {0:?}, which routes use for captures")]
    Capture(char),
    /// A segment starting with `:` or `*`, the capture syntax of axum before 0.8, which
    /// 0.8 refuses so that old routes do not silently become literal ones.
    #[error("has a segment starting with {0:?}")]
    OldCapture(char),
}

/// The path of the metrics endpoint: a literal route that requests can match and that
/// takes no other route's place. Axum's router panics on some other values (`/-/healthy`,
/// `/:x`) and silently makes captures of others (`/{x}`); [`router`] takes only this type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryPath(String);

impl TelemetryPath {
    /// Checks `path`.
    pub fn new(path: String) -> Result<Self, TelemetryPathError> {
        check_telemetry_path(&path)?;
        Ok(Self(path))
    }

    /// The path, as routed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TelemetryPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn check_telemetry_path(path: &str) -> Result<(), TelemetryPathError> {
    if !path.starts_with('/') {
        return Err(TelemetryPathError::NotAbsolute);
    }
    for (taken, what) in [
        (LANDING_PATH, "landing page"),
        (HEALTH_PATH, "health check"),
    ] {
        if path == taken {
            return Err(TelemetryPathError::Taken(what));
        }
    }
    let bytes = path.as_bytes();
    for (i, c) in path.char_indices() {
        match c {
            '{' | '}' => return Err(TelemetryPathError::Capture(c)),
            '%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return Err(TelemetryPathError::BadEscape);
                }
            }
            // RFC 3986's `pchar` (unreserved, sub-delims, `:` and `@`) and the separator.
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' | '_' | '~' => {}
            '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '=' | ':' | '@' | '/' => {}
            _ => return Err(TelemetryPathError::NotUrlPath(c)),
        }
    }
    if let Some(c) = path
        .split('/')
        .find_map(|segment| segment.chars().next().filter(|c| matches!(c, ':' | '*')))
    {
        return Err(TelemetryPathError::OldCapture(c));
    }
    Ok(())
}

/// A plain-text 404 that names the metrics path: the usual mistake is a wrong
/// `--web.telemetry-path` or a scrape config's `metrics_path`.
async fn not_found(State(state): State<AppState>) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!(
            "404 page not found; metrics are served at {}\n",
            state.telemetry_path
        ),
    )
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    let path = html_escape(state.telemetry_path.as_str());
    let sources: String = state
        .publications
        .borrow()
        .sources
        .iter()
        .map(|s| {
            format!(
                "<li><b>{}</b>: {}</li>",
                html_escape(&s.source),
                html_escape(&s.status)
            )
        })
        .collect();
    Html(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>netfilter_exporter</title></head>\
         <body><h1>netfilter_exporter {}</h1><p><a href=\"{path}\">Metrics</a></p>\
         <h2>Sources</h2><ul>{sources}</ul></body></html>\n",
        env!("CARGO_PKG_VERSION"),
    ))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let publication = Arc::clone(&state.publications.borrow());
    let format = negotiate_format(header_str(&headers, header::ACCEPT));
    let tail = Arc::new(
        state
            .self_metrics
            .as_ref()
            .map(SelfMetrics::render)
            .unwrap_or_default(),
    );
    let gzip = if accepts_gzip(header_str(&headers, header::ACCEPT_ENCODING)) {
        let (compress, tail) = (Arc::clone(&publication), Arc::clone(&tail));
        // The first gzip scrape of a publication compresses its small families: off the
        // I/O threads. If that fails, the client still gets the text, which it accepts too.
        tokio::task::spawn_blocking(move || compress.gzip(&tail, format))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let mut response = match gzip {
        Some(chunks) => {
            let mut response = body_of(chunks);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        None => text_body(publication, tail, format),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    response
}

/// A response whose body is `chunks`, sent without copying them.
fn body_of(chunks: Vec<Bytes>) -> Response {
    let length: usize = chunks.iter().map(Bytes::len).sum();
    let chunks = chunks.into_iter().map(Ok::<_, Infallible>);
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The exposition as text. Families kept only compressed are decompressed piece by piece
/// as the client reads, off the I/O threads and at most a few pieces ahead of the socket,
/// into the buffers of pieces already sent: a scrape holds about a dozen 256 KiB pieces at
/// most, not a copy of the exposition.
fn text_body(publication: Arc<Served>, tail: Arc<Exposition>, format: Format) -> Response {
    let exposition = &publication.exposition;
    if exposition.is_plain() {
        return body_of(exposition.chunks_then(&tail, format).collect());
    }
    let length = exposition.len_then(&tail, format);
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        for chunk in publication.exposition.chunks_then(&tail, format) {
            if sender.blocking_send(Ok::<_, Infallible>(chunk)).is_err() {
                // The client went away.
                break;
            }
        }
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = Response::new(Body::from_stream(chunks));
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // Its blocking thread and pieces are bounded by the request slots.
    response.extensions_mut().insert(MadeWhileSent);
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// One entry of an `Accept`-style header: the value and its `q` weight.
fn weighted(header: &str) -> impl Iterator<Item = (&str, Vec<(&str, &str)>, f32)> {
    header.split(',').filter_map(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let value = parts.next().filter(|v| !v.is_empty())?;
        let mut q = 1.0;
        let mut params = Vec::new();
        for param in parts {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            if k.eq_ignore_ascii_case("q") {
                q = v.parse().unwrap_or(0.0);
            } else {
                params.push((k, v.trim_matches('"')));
            }
        }
        Some((value, params, q))
    })
}

/// Picks the format by the client's `Accept` header: OpenMetrics 1.0 when it weighs it
/// at least as much as the text format, otherwise text 0.0.4.
pub fn negotiate_format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let (mut text_q, mut om_q) = (0.0f32, 0.0f32);
    for (value, params, q) in weighted(accept) {
        if value.eq_ignore_ascii_case("application/openmetrics-text") {
            let version = params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("version"))
                .map(|(_, v)| *v);
            if matches!(version, None | Some("1.0.0")) {
                om_q = om_q.max(q);
            }
        } else if ["text/plain", "text/*", "*/*"]
            .iter()
            .any(|t| value.eq_ignore_ascii_case(t))
        {
            text_q = text_q.max(q);
        }
    }
    if om_q > 0.0 && om_q >= text_q {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// True when the client's `Accept-Encoding` allows gzip. An entry for gzip decides over
/// `*`, which stands only for the codings not listed (RFC 9110, 12.5.3): `gzip;q=0, *`
/// refuses gzip.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(header) = accept_encoding else {
        return false;
    };
    let (mut gzip_q, mut any_q) = (None::<f32>, None::<f32>);
    for (value, _, q) in weighted(header) {
        let slot = if value.eq_ignore_ascii_case("gzip") {
            &mut gzip_q
        } else if value == "*" {
            &mut any_q
        } else {
            continue;
        };
        *slot = Some(slot.map_or(q, |old| old.max(q)));
    }
    gzip_q.or(any_q).is_some_and(|q| q > 0.0)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Serves `app` on `listeners` (see [`connections::serve`]) until `shutdown`, with the
/// connection cap lowered to what the open-file limit leaves, after the soft limit is
/// raised to the hard one.
pub async fn serve_listeners(
    listeners: Vec<tokio::net::TcpListener>,
    app: Router,
    limits: connections::Limits,
    web: Option<Arc<web_config::WebConfigFile>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), fds::NoRoom> {
    let limit = fds::raise_open_file_limit();
    // Counted after the listeners and the collector's start, which hold descriptors too.
    let open = fds::open_now().unwrap_or(0);
    let max_connections = fds::connection_cap(limits.max_connections, limit, open)?;
    if max_connections < limits.max_connections {
        tracing::info!(
            max_connections,
            open_file_limit = limit,
            "connection cap lowered to fit the open-file limit"
        );
    }
    let limits = connections::Limits {
        max_connections,
        ..limits
    };
    connections::serve(listeners, app, limits, web, shutdown).await;
    Ok(())
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %Chain(&e), "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// From now on SIGHUP does not end the process: for the modes that run until stopped, as a
/// closed terminal or `systemctl reload` sends it. Each SIGHUP re-reads `web` at once, even
/// if its files seem unchanged. Needs the runtime; once registered, the handler stays for
/// the life of the process.
pub fn reload_on_hangup(web: Option<Arc<WebConfigFile>>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "cannot listen for SIGHUP");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(web) = web.clone() else {
                tracing::info!("SIGHUP: nothing to re-read (no --web.config.file)");
                continue;
            };
            tracing::info!(file = %web.path().display(), "SIGHUP: re-reading the web config");
            web.request_reload();
            // A thread of its own, not the blocking pool: a file on a hung mount would keep
            // the runtime from shutting down.
            let spawned = std::thread::Builder::new()
                .name("web-config-reload".to_owned())
                .spawn(move || web.reload_if_changed());
            if let Err(e) = spawned {
                tracing::warn!(error = %Chain(&e), "cannot re-read the web config now; it is at the next look");
            }
        }
    });
}

#[cfg(test)]
mod tests;
