//! Unit tests of the parent module: the router answered in-process, without a socket.

use std::io::Read;
use std::time::{Duration, SystemTime};

use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::collect::Publication;
use crate::exposition::{ExpositionBuilder, Storage};
use crate::metrics::{self, MetricsConfig, SourceReport};
use crate::source::Reading;
use crate::source::SourceId;
use axum::http::StatusCode;

/// Prometheus' own `Accept` header (2.x/3.x scrape loop).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const RULES: &str = "\
*filter
:INPUT ACCEPT [7:700]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
[3:252] -A INPUT -p icmp -m icmp --icmp-type 8 -m comment --comment \"ping in\" -j ACCEPT
COMMIT
";

/// A publication as the collector would make it from one successful iptables collection.
fn publication() -> Publication {
    publication_of(RULES, Storage::Plain)
}

/// A publication of a collection that found `rules`, with the source's families kept as
/// `storage` says.
fn publication_of(rules: &str, storage: Storage) -> Publication {
    let report = SourceReport {
        source: SourceId::Iptables,
        outcome: Ok(Reading::new(crate::source::iptables_save::parse(
            crate::ruleset::Family::Ipv4,
            rules,
        ))),
        duration: Duration::from_millis(3),
        finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        series: None,
    };
    let mut builder = ExpositionBuilder::default();
    builder.extend(&metrics::render_exporter(&[&report]));
    builder.extend(&metrics::render_source(
        &report,
        &MetricsConfig::default(),
        storage,
    ));
    Publication {
        exposition: builder.finish(),
        reports: vec![report],
        ..Publication::default()
    }
}

/// The router over [`publication`], with the sender kept alive alongside.
fn app(telemetry_path: &str) -> (Router, watch::Sender<Arc<Served>>) {
    app_of(publication(), telemetry_path)
}

fn app_of(publication: Publication, telemetry_path: &str) -> (Router, watch::Sender<Arc<Served>>) {
    app_with(publication, telemetry_path, Policy::new(None, 4))
}

/// The router over `publication` behind `policy`.
fn app_with(
    publication: Publication,
    telemetry_path: &str,
    policy: Policy,
) -> (Router, watch::Sender<Arc<Served>>) {
    let (sender, publications) = watch::channel(Arc::new(Served::of(&publication)));
    let router = router(AppState {
        publications,
        telemetry_path: TelemetryPath::new(telemetry_path.to_owned()).expect("valid path"),
        self_metrics: None,
        policy,
    });
    (router, sender)
}

/// Sends `GET uri` with `headers` and returns the status, the response headers and the body.
async fn get(
    router: Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .oneshot(request.body(Body::empty()).expect("valid request"))
        .await
        .expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[test]
fn no_accept_header_gets_text() {
    assert_eq!(negotiate_format(None), Format::Text);
    assert_eq!(negotiate_format(Some("")), Format::Text);
}

#[test]
fn prometheus_accept_header_gets_openmetrics() {
    assert_eq!(
        negotiate_format(Some(PROMETHEUS_ACCEPT)),
        Format::OpenMetrics
    );
}

#[test]
fn accept_header_negotiation() {
    for (accept, expected) in [
        ("text/plain", Format::Text),
        ("text/plain;version=0.0.4", Format::Text),
        ("*/*", Format::Text),
        ("application/openmetrics-text", Format::OpenMetrics),
        (
            "application/openmetrics-text; version=1.0.0",
            Format::OpenMetrics,
        ),
        (
            "application/openmetrics-text;version=\"1.0.0\"",
            Format::OpenMetrics,
        ),
        // Only OpenMetrics 1.0.0 is written; an older version is not what was asked for.
        ("application/openmetrics-text;version=0.0.1", Format::Text),
        // The weights decide.
        (
            "application/openmetrics-text;q=0.2,text/plain;q=0.9",
            Format::Text,
        ),
        (
            "text/plain;q=0.3,application/openmetrics-text;q=0.8",
            Format::OpenMetrics,
        ),
        ("application/openmetrics-text;q=0", Format::Text),
        ("application/json", Format::Text),
    ] {
        assert_eq!(negotiate_format(Some(accept)), expected, "{accept}");
    }
}

#[test]
fn accept_encoding_gzip() {
    for (header, expected) in [
        (None, false),
        (Some(""), false),
        (Some("gzip"), true),
        (Some("GZIP"), true),
        (Some("deflate, gzip;q=0.5"), true),
        (Some("gzip, deflate, br"), true),
        (Some("*"), true),
        (Some("gzip;q=0"), false),
        (Some("identity"), false),
        (Some("deflate, br"), false),
        // An entry for gzip decides over `*`, in either order (RFC 9110, 12.5.3).
        (Some("gzip;q=0, *"), false),
        (Some("*, gzip;q=0"), false),
        (Some("GZIP; q=0.000, *;q=1"), false),
        (Some("*;q=0, gzip"), true),
        (Some("gzip;q=0.5, *;q=0"), true),
        (Some("*;q=0"), false),
        (Some("deflate, *;q=0"), false),
        (Some("deflate;q=0, *"), true),
    ] {
        assert_eq!(accepts_gzip(header), expected, "{header:?}");
    }
}

#[tokio::test]
async fn metrics_in_text_format() {
    let (router, _sender) = app("/metrics");
    let (status, headers, body) = get(router, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(header(&headers, header::CONTENT_ENCODING), "");
    let body = String::from_utf8(body).expect("utf-8");
    assert_eq!(
        header(&headers, header::CONTENT_LENGTH),
        body.len().to_string()
    );
    assert!(
        body.contains("# TYPE iptables_rule_packets_total counter\n"),
        "{body}"
    );
    assert!(
        body.contains(
            "iptables_rule_packets_total{table=\"filter\",chain=\"INPUT\",rule=\"-p icmp -m icmp --icmp-type 8 -j ACCEPT\"} 3\n"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "iptables_chain_bytes_total{table=\"filter\",chain=\"INPUT\",policy=\"ACCEPT\"} 700\n"
        ),
        "{body}"
    );
    assert!(!body.contains("# EOF"), "{body}");
}

#[tokio::test]
async fn metrics_in_openmetrics_for_prometheus() {
    let (router, _sender) = app("/metrics");
    let (status, headers, body) = get(router, "/metrics", &[("accept", PROMETHEUS_ACCEPT)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = String::from_utf8(body).expect("utf-8");
    assert!(body.ends_with("\n# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE iptables_rule_packets counter\n"),
        "{body}"
    );
    assert!(
        !body.contains("# TYPE iptables_rule_packets_total"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE iptables_rules_total unknown\n"),
        "{body}"
    );
}

#[tokio::test]
async fn gzip_round_trip_in_both_formats() {
    for (accept, format) in [
        ("text/plain", Format::Text),
        ("application/openmetrics-text", Format::OpenMetrics),
    ] {
        let (router, sender) = app("/metrics");
        let (status, headers, body) = get(
            router,
            "/metrics",
            &[("accept", accept), ("accept-encoding", "gzip, deflate")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, header::CONTENT_ENCODING), "gzip");
        assert_eq!(
            header(&headers, header::CONTENT_TYPE),
            format.content_type()
        );
        let mut plain = String::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_string(&mut plain)
            .expect("valid gzip of UTF-8 text");
        let expected = String::from_utf8(sender.borrow().exposition.to_vec(format)).expect("utf-8");
        assert_eq!(plain, expected, "{accept}");
    }
}

#[tokio::test]
async fn gzip_refused_by_name_is_not_sent_even_under_a_star() {
    let (router, sender) = app("/metrics");
    let (status, headers, body) =
        get(router, "/metrics", &[("accept-encoding", "gzip;q=0, *")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get(header::CONTENT_ENCODING).is_none(),
        "{headers:?}"
    );
    assert!(body == sender.borrow().exposition.to_vec(Format::Text));
}

/// A ruleset whose per-rule families span several compressed pieces.
fn many_rules(count: usize) -> String {
    let mut rules =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..count {
        rules.push_str(&format!(
            "[{i}:{}] -A INPUT -s 10.0.{}.{}/32 -p tcp -m tcp --dport {} -m comment --comment \"svc {i}\" -j ACCEPT\n",
            i * 60,
            i / 250,
            i % 250,
            1000 + i % 5000,
        ));
    }
    rules.push_str("COMMIT\n");
    rules
}

#[tokio::test]
async fn families_kept_compressed_only_are_served_whole_as_text_and_gzip() {
    let rules = many_rules(6000);
    let expected = publication_of(&rules, Storage::Plain).exposition;
    let compressed = publication_of(&rules, Storage::Compressed { keep_plain: 0 });
    assert!(!compressed.exposition.is_plain());
    let (router, _sender) = app_of(compressed, "/metrics");
    for (accept, format) in [
        ("text/plain", Format::Text),
        ("application/openmetrics-text", Format::OpenMetrics),
    ] {
        let expected = expected.to_vec(format);
        assert!(
            expected.len() > 2 << 20,
            "{} bytes: too few pieces",
            expected.len()
        );
        let (status, headers, body) = get(router.clone(), "/metrics", &[("accept", accept)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header(&headers, header::CONTENT_LENGTH),
            expected.len().to_string()
        );
        assert!(body == expected, "{accept}: text differs");

        let gzip = [("accept", accept), ("accept-encoding", "gzip")];
        let (_, headers, body) = get(router.clone(), "/metrics", &gzip).await;
        assert_eq!(header(&headers, header::CONTENT_ENCODING), "gzip");
        assert_eq!(
            header(&headers, header::CONTENT_LENGTH),
            body.len().to_string()
        );
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut plain)
            .expect("valid gzip");
        assert!(plain == expected, "{accept}: gzip differs");
    }
}

#[tokio::test]
async fn vary_header_names_the_negotiated_headers() {
    let (router, _sender) = app("/metrics");
    let (_, headers, _) = get(router, "/metrics", &[]).await;
    let vary = header(&headers, header::VARY);
    assert!(
        vary.contains("Accept-Encoding") && vary.contains("Accept"),
        "{vary}"
    );
}

#[tokio::test]
async fn custom_telemetry_path() {
    let (router, _sender) = app("/custom/metrics");
    let (status, _, body) = get(router.clone(), "/custom/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .expect("utf-8")
            .contains("iptables_scrape_success 1\n")
    );
    let (status, _, _) = get(router, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_paths_are_not_found() {
    for path in ["/nope", "/metrics/", "/metricsx", "/favicon.ico"] {
        let (router, _sender) = app("/metrics");
        let (status, headers, body) = get(router, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            header(&headers, header::CONTENT_TYPE).starts_with("text/plain"),
            "{path}"
        );
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            "404 page not found; metrics are served at /metrics\n",
            "{path}"
        );
    }
}

#[tokio::test]
async fn landing_page_links_metrics_and_lists_sources() {
    let (router, _sender) = app("/a&b");
    let (status, headers, body) = get(router, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        header(&headers, header::CONTENT_TYPE).starts_with("text/html"),
        "{headers:?}"
    );
    let body = String::from_utf8(body).expect("utf-8");
    assert!(body.contains("<a href=\"/a&amp;b\">Metrics</a>"), "{body}");
    assert!(
        body.contains("<b>iptables</b>: ok, 1 rules, 0 unparsed lines"),
        "{body}"
    );
}

#[tokio::test]
async fn health_endpoint() {
    let (router, _sender) = app("/metrics");
    let (status, _, body) = get(router, "/-/healthy", &[]).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"OK\n".as_slice())
    );
}

#[tokio::test]
async fn a_new_publication_is_served_at_once() {
    let (router, sender) = app("/metrics");
    sender.send_replace(Arc::new(Served::default()));
    let (status, _, body) = get(router, "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
}

#[test]
fn telemetry_paths_that_cannot_be_routed_are_refused() {
    use TelemetryPathError::*;
    for (path, error) in [
        ("", NotAbsolute),
        ("metrics", NotAbsolute),
        ("/", Taken("landing page")),
        ("/-/healthy", Taken("health check")),
        ("/{x}", Capture('{')),
        ("/metrics/{*rest}", Capture('{')),
        ("/a{{b", Capture('{')),
        ("/a}", Capture('}')),
        ("/:x", OldCapture(':')),
        ("/metrics/:x", OldCapture(':')),
        ("/*x", OldCapture('*')),
        ("/a/*", OldCapture('*')),
        ("/a b", NotUrlPath(' ')),
        ("/metrics?x=1", NotUrlPath('?')),
        ("/metrics#x", NotUrlPath('#')),
        ("/a<b", NotUrlPath('<')),
        ("/m\u{e9}trics", NotUrlPath('\u{e9}')),
        ("/a\nb", NotUrlPath('\n')),
        ("/m%2", BadEscape),
        ("/m%zz", BadEscape),
        ("/100%", BadEscape),
    ] {
        assert_eq!(TelemetryPath::new(path.to_owned()), Err(error), "{path:?}");
    }
}

/// Odd paths that pass the check, each built into a router and answered.
#[tokio::test]
async fn odd_telemetry_paths_are_routed_literally() {
    for path in [
        "/metrics",
        "/metrics/x.y",
        "/a-b_c~",
        "/m%20x",
        "/a:b",
        "/a*b",
        "/a/b:/c*",
        "/metrics/",
        "//metrics",
        "/-/healthy/",
        "/-/Healthy",
        "/-",
        "/@!$&'()+,;=",
    ] {
        let (router, _sender) = app(path);
        let (status, _, _) = get(router, path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path:?}");
    }
}

/// Every short path over the characters that matter to axum's router either fails the
/// check or builds a router: the check leaves nothing that panics.
#[test]
fn no_path_that_passes_the_check_makes_the_router_panic() {
    const ALPHABET: &[char] = &['/', ':', '*', '{', '}', '%', 'a', '2', '-', '.'];
    let mut paths = vec![String::new()];
    let mut start = 0;
    for _ in 0..5 {
        let end = paths.len();
        for i in start..end {
            for c in ALPHABET {
                let path = format!("{}{c}", paths[i]);
                paths.push(path);
            }
        }
        start = end;
    }
    let (_sender, publications) = watch::channel(Arc::new(Served::default()));
    let mut passed = 0;
    for path in paths {
        let Ok(telemetry_path) = TelemetryPath::new(path.clone()) else {
            continue;
        };
        passed += 1;
        let state = AppState {
            publications: publications.clone(),
            telemetry_path,
            self_metrics: None,
            policy: Policy::new(None, 1),
        };
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| router(state)));
        assert!(built.is_ok(), "{path:?}");
    }
    assert!(
        passed > 1000,
        "{passed} paths passed: the alphabet tests too little"
    );
}

#[tokio::test]
async fn process_metrics_end_every_format_with_the_exposition_whole() {
    let publication = publication_of(RULES, Storage::Compressed { keep_plain: 0 });
    let expected = publication.exposition.to_vec(Format::OpenMetrics);
    let (publications, _) = {
        let (sender, receiver) = watch::channel(Arc::new(Served::of(&publication)));
        (receiver, sender)
    };
    let router = router(AppState {
        publications,
        telemetry_path: TelemetryPath::new("/metrics".to_owned()).expect("valid path"),
        self_metrics: Some(SelfMetrics::OneProcess),
        policy: Policy::new(None, 1),
    });
    let om = [("accept", "application/openmetrics-text; version=1.0.0")];
    let (_, _, text) = get(router.clone(), "/metrics", &om).await;
    let (_, headers, gzip) = get(router, "/metrics", &[om[0], ("accept-encoding", "gzip")]).await;
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gzip[..])
        .read_to_end(&mut unzipped)
        .expect("valid gzip");
    for body in [text, unzipped] {
        let body = String::from_utf8(body).expect("utf-8");
        let without_eof = &expected[..expected.len() - b"# EOF\n".len()];
        assert!(body.as_bytes().starts_with(without_eof), "{body}");
        assert!(
            body.contains("process_open_fds{process=\"collector\"} "),
            "{body}"
        );
        assert!(
            body.contains("# TYPE process_cpu_seconds counter\n"),
            "{body}"
        );
        assert!(
            body.ends_with("\n# EOF\n") && body.matches("# EOF").count() == 1,
            "{body}"
        );
    }
}

/// The settings of a web config file whose text is `text`, as the server process gets them.
fn web_config(text: &str) -> Arc<WebConfigFile> {
    Arc::new(WebConfigFile::from_bundle(web_config_bundle(text)).expect("a valid web config"))
}

fn web_config_bundle(text: &str) -> web_config::WebConfigBundle {
    let path = std::path::PathBuf::from("/etc/netfilter_exporter/web.yml");
    web_config::WebConfigBundle {
        path: path.clone(),
        files: vec![(path, text.as_bytes().to_vec())],
    }
}

/// A web config with the user `alice`, password `secret`, and a header for every response.
fn alice_and_a_header() -> String {
    let hash = bcrypt::hash("secret", 4).expect("hash");
    format!(
        "basic_auth_users:\n  alice: {hash}\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
    )
}

fn basic(user_password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
    format!("Basic {encoded}")
}

/// Sends `GET uri` with `headers` and returns the response, its body unread.
async fn held(router: Router, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    router
        .oneshot(request.body(Body::empty()).expect("valid request"))
        .await
        .expect("router answers")
}

#[tokio::test]
async fn without_the_right_credentials_every_path_is_refused_401_with_the_headers() {
    let policy = Policy::new(Some(web_config(&alice_and_a_header())), 4);
    let (router, _sender) = app_with(publication(), "/metrics", policy);
    let wrong = basic("alice:wrong");
    let unknown = basic("bob:secret");
    for (path, credentials) in [
        ("/metrics", None),
        ("/metrics", Some(wrong.as_str())),
        ("/metrics", Some(unknown.as_str())),
        ("/metrics", Some("Bearer secret")),
        ("/", None),
        ("/-/healthy", None),
        ("/nope", Some(wrong.as_str())),
    ] {
        let headers: Vec<_> = credentials
            .map(|c| ("authorization", c))
            .into_iter()
            .collect();
        let (status, headers, body) = get(router.clone(), path, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {credentials:?}");
        assert_eq!(header(&headers, header::WWW_AUTHENTICATE), "Basic");
        assert_eq!(header(&headers, header::X_FRAME_OPTIONS), "deny");
        assert_eq!(body, b"Unauthorized\n");
    }
    let right = basic("alice:secret");
    let (status, headers, body) = get(router, "/metrics", &[("authorization", &right)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, header::X_FRAME_OPTIONS), "deny");
    assert!(
        headers.get(header::WWW_AUTHENTICATE).is_none(),
        "{headers:?}"
    );
    assert!(
        String::from_utf8(body)
            .expect("utf-8")
            .contains("iptables_scrape_success 1\n")
    );
}

#[tokio::test]
async fn the_web_config_in_force_applies_from_the_next_request() {
    let web = web_config("");
    let (router, _sender) = app_with(
        publication(),
        "/metrics",
        Policy::new(Some(Arc::clone(&web)), 4),
    );
    let (status, headers, _) = get(router.clone(), "/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers.get(header::X_FRAME_OPTIONS).is_none(),
        "{headers:?}"
    );
    web.replace(web_config_bundle(&alice_and_a_header()))
        .expect("a valid web config");
    let (status, headers, _) = get(router.clone(), "/metrics", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, header::X_FRAME_OPTIONS), "deny");
    let right = basic("alice:secret");
    let (status, _, _) = get(router, "/metrics", &[("authorization", &right)]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn at_the_request_cap_a_request_is_answered_503_after_authentication() {
    let compressed = publication_of(RULES, Storage::Compressed { keep_plain: 0 });
    let policy = Policy::new(Some(web_config(&alice_and_a_header())), 1);
    let (router, _sender) = app_with(compressed, "/metrics", policy);
    let right = basic("alice:secret");
    let authorized = [("authorization", right.as_str())];
    // A response in memory gives its slot back as it is handed over, read or not.
    let in_memory = held(router.clone(), "/-/healthy", &authorized).await;
    assert_eq!(in_memory.status(), StatusCode::OK);
    // Text decompressed while it is sent keeps its slot until then.
    let made = held(router.clone(), "/metrics", &authorized).await;
    assert_eq!(made.status(), StatusCode::OK);
    assert!(made.extensions().get::<MadeWhileSent>().is_some());
    let (status, headers, body) = get(router.clone(), "/-/healthy", &authorized).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&headers, header::X_FRAME_OPTIONS), "deny");
    assert_eq!(body, b"too many requests in progress\n");
    // Authentication comes first and needs no slot.
    let (status, headers, _) = get(router.clone(), "/-/healthy", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&headers, header::X_FRAME_OPTIONS), "deny");
    // Sent (here: dropped), it gives the slot back.
    drop(made);
    let (status, _, body) = get(router, "/-/healthy", &authorized).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"OK\n".as_slice())
    );
    drop(in_memory);
}
