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

use crate::collect::Publication;
use crate::output::exposition::Format;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The current publication.
    pub publications: watch::Receiver<Arc<Publication>>,
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
}

/// The application: `/` (landing page), the telemetry path, and `/-/healthy`.
pub fn router(state: AppState) -> Router {
    let path = state.telemetry_path.clone();
    Router::new()
        .route("/", get(landing))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route(&path, get(metrics))
        .fallback(not_found)
        .with_state(state)
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
    let path = html_escape(&state.telemetry_path);
    let sources: String = state
        .publications
        .borrow()
        .reports
        .iter()
        .map(|r| {
            let status = match &r.outcome {
                Ok(collected) => format!(
                    "ok, {} rules, {} unparsed lines",
                    collected.rules, collected.unparsed
                ),
                Err(e) => format!("failed: {e}"),
            };
            format!("<li><b>{}</b>: {}</li>", r.target, html_escape(&status))
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
    let gzip = if accepts_gzip(header_str(&headers, header::ACCEPT_ENCODING)) {
        let compress = Arc::clone(&publication);
        // The first gzip scrape of a publication compresses its small families: off the
        // I/O threads. If that fails, the client still gets the text, which it accepts too.
        tokio::task::spawn_blocking(move || compress.gzip(format))
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
        None => text_body(publication, format),
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
fn text_body(publication: Arc<Publication>, format: Format) -> Response {
    if publication.exposition.is_plain() {
        return body_of(publication.exposition.chunks(format).collect());
    }
    let length = publication.exposition.len(format);
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        for chunk in publication.exposition.chunks(format) {
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

/// True when the client's `Accept-Encoding` allows gzip.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|h| {
        weighted(h)
            .any(|(value, _, q)| (value.eq_ignore_ascii_case("gzip") || value == "*") && q > 0.0)
    })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
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

#[cfg(test)]
mod tests;
