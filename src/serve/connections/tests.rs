use axum::http::{HeaderValue, Response, header};
use axum::routing::get;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::serve::policy::{MadeWhileSent, Policy};

/// Larger than what the socket buffers of a loopback connection hold.
const LARGE: usize = 64 << 20;

/// Piece of a body made while it is sent.
const PIECE: usize = 256 << 10;

/// A generous bound on anything the tests wait for.
const PATIENCE: Duration = Duration::from_secs(20);

/// An application whose `/handling` holds its request until `release` is notified,
/// `/in-memory` answers [`LARGE`] bytes in pieces of memory it shares and `/made` makes
/// as many while they are sent; every other path answers a few bytes.
fn app(release: Arc<Notify>) -> Router {
    let in_memory = Bytes::from(vec![b'x'; LARGE]);
    Router::new()
        .route(
            "/handling",
            get(move || async move {
                release.notified().await;
                "released\n"
            }),
        )
        .route(
            "/in-memory",
            get(move || {
                // In pieces, as the exposition is.
                let pieces = (0..LARGE / PIECE)
                    .map(|i| Ok::<_, Infallible>(in_memory.slice(i * PIECE..(i + 1) * PIECE)))
                    .collect::<Vec<_>>();
                async move {
                    let body = Body::from_stream(futures_util::stream::iter(pieces));
                    ([(header::CONTENT_LENGTH, LARGE)], body)
                }
            }),
        )
        .route(
            "/made",
            get(|| async {
                let pieces =
                    (0..LARGE / PIECE).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'y'; PIECE])));
                let mut response =
                    Response::new(Body::from_stream(futures_util::stream::iter(pieces)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(LARGE));
                response.extensions_mut().insert(MadeWhileSent);
                response
            }),
        )
        .fallback(|| async { "OK\n" })
}

/// Serves [`app`], behind a policy of `limits.max_requests` request slots, within
/// `limits` on 127.0.0.1; its address, and what notifies `/handling`. The server ends
/// with the test's runtime.
async fn start(limits: Limits) -> (std::net::SocketAddr, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let release = Arc::new(Notify::new());
    let app = Policy::new(None, limits.max_requests).apply_to(app(Arc::clone(&release)));
    tokio::spawn(serve(
        vec![listener],
        app,
        limits,
        None,
        std::future::pending(),
    ));
    (address, release)
}

async fn send(stream: &mut TcpStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send a request");
}

/// The status line of the next response on `stream`, after reading its body; None when
/// the server closed the connection first.
async fn response(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("an ASCII head");
    let length: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.parse().ok())
        .expect("a content length");
    let read = tokio::io::copy(&mut (&mut *stream).take(length), &mut tokio::io::sink())
        .await
        .ok()?;
    (read == length).then(|| head.lines().next().unwrap_or_default().to_owned())
}

/// The status line of the response on `stream`, read to the end of that line only.
async fn status_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let mut byte = [0];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(1))), "no status line: {read:?}");
        line.push(byte[0]);
    }
    String::from_utf8(line).expect("an ASCII status line")
}

/// A GET of `path` on `stream`: the status line of its response.
async fn exchange(stream: &mut TcpStream, path: &str) -> Option<String> {
    send(stream, path).await;
    tokio::time::timeout(PATIENCE, response(stream))
        .await
        .ok()
        .flatten()
}

/// A GET of `path` on a new connection: its status line.
async fn status_of(address: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    exchange(&mut stream, path).await
}

/// Whether the server closed `stream` within [`PATIENCE`], reading what it sent first.
async fn closed(stream: &mut TcpStream) -> bool {
    tokio::time::timeout(PATIENCE, tokio::io::copy(stream, &mut tokio::io::sink()))
        .await
        .is_ok()
}

fn one_request(read_header_timeout: Duration) -> Limits {
    Limits {
        max_connections: 16,
        max_requests: 1,
        read_header_timeout,
        idle_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_answered_503_is_kept_alive_while_it_sends_requests() {
    let header_timeout = Duration::from_millis(300);
    let (address, release) = start(one_request(header_timeout)).await;
    let mut holder = TcpStream::connect(address).await.expect("connect");
    send(&mut holder, "/handling").await;
    let mut refused = TcpStream::connect(address).await.expect("connect");
    // Until the holder's request holds the only slot.
    let start = Instant::now();
    while exchange(&mut refused, "/-/anything")
        .await
        .expect("an answer")
        .contains(" 200 ")
    {
        assert!(start.elapsed() < PATIENCE, "never refused");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then several header timeouts long, one request well within each.
    let start = Instant::now();
    let mut refusals = 1;
    while start.elapsed() < header_timeout * 5 {
        let Some(status) = exchange(&mut refused, "/-/anything").await else {
            panic!("closed after {refusals} refusals, {:?}", start.elapsed());
        };
        assert!(status.contains(" 503 "), "{status}");
        refusals += 1;
        tokio::time::sleep(header_timeout / 3).await;
    }
    release.notify_one();
    assert_eq!(
        response(&mut holder).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_in_memory_gives_its_slot_back_when_handed_over() {
    let (address, _release) = start(one_request(Duration::from_secs(10))).await;
    let mut unread = TcpStream::connect(address).await.expect("connect");
    send(&mut unread, "/in-memory").await;
    assert_eq!(status_line(&mut unread).await, "HTTP/1.1 200 OK\r\n");
    // It is handed over and waits on its client, who reads no more; the other requests
    // are answered all the same, and it is not closed for them.
    for _ in 0..5 {
        let status = status_of(address, "/-/healthy").await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    }
    // The rest of its head, and its body whole.
    assert!(
        response(&mut unread).await.is_some(),
        "the response did not end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_response_waiting_on_its_client_makes_room() {
    let limits = Limits {
        max_connections: 2,
        ..one_request(Duration::from_secs(10))
    };
    let (address, _release) = start(limits).await;
    let mut first = TcpStream::connect(address).await.expect("connect");
    send(&mut first, "/in-memory").await;
    assert_eq!(status_line(&mut first).await, "HTTP/1.1 200 OK\r\n");
    let mut second = TcpStream::connect(address).await.expect("connect");
    send(&mut second, "/in-memory").await;
    assert_eq!(status_line(&mut second).await, "HTTP/1.1 200 OK\r\n");
    // Both wait on their clients; a third connection takes the place of one.
    let status = status_of(address, "/-/healthy").await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));
    let (first, second) = tokio::join!(response(&mut first), response(&mut second));
    assert!(
        first.is_none() != second.is_none(),
        "not one closed: {first:?} {second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_made_while_sent_loses_its_slot_to_a_request_when_its_client_stalls() {
    let (address, _release) = start(one_request(Duration::from_secs(10))).await;
    let mut stalled = TcpStream::connect(address).await.expect("connect");
    send(&mut stalled, "/made").await;
    assert_eq!(status_line(&mut stalled).await, "HTTP/1.1 200 OK\r\n");
    // Refused while the response is still moving, answered once it waits on its client.
    let start = Instant::now();
    loop {
        let status = status_of(address, "/-/healthy").await.expect("an answer");
        if status.contains(" 200 ") {
            break;
        }
        assert!(status.contains(" 503 "), "{status}");
        assert!(
            start.elapsed() < PATIENCE,
            "the stalled response kept its slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Closed to give its slot: what the buffers held, then the end.
    assert!(
        closed(&mut stalled).await,
        "the stalled response is still open"
    );
}

fn limits() -> Limits {
    Limits {
        max_connections: 2,
        max_requests: 1,
        read_header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(30),
    }
}

#[test]
fn deadlines_follow_the_connection_state() {
    let limits = limits();
    let conn = Arc::new(Conn::new());
    let accepted = conn.state().accepted;
    // A first request: the header timeout from the accept, bytes or not.
    assert_eq!(
        conn.state().deadline(limits),
        Some(accepted + limits.read_header_timeout)
    );
    conn.read_some();
    assert_eq!(
        conn.state().deadline(limits),
        Some(accepted + limits.read_header_timeout)
    );
    // Handled: no deadline, and the connection is not idle.
    let request = InFlight::start(Arc::clone(&conn));
    assert_eq!(conn.state().deadline(limits), None);
    assert_eq!(conn.state().waiting_since(), None);
    request.sending(true);
    assert_eq!(conn.state().phase, Phase::Sending { slot: true });
    drop(request);
    assert_eq!(conn.state().phase, Phase::Idle);
    // Kept alive: the idle timeout until a byte comes, then the header timeout.
    let idle = conn.state().idle_since;
    assert!(idle >= accepted);
    assert_eq!(
        conn.state().deadline(limits),
        Some(idle + limits.idle_timeout)
    );
    conn.read_some();
    let first = conn.state().first_byte.expect("first byte seen");
    assert_eq!(
        conn.state().deadline(limits),
        Some(first + limits.read_header_timeout)
    );
    // A response the client stops taking: the write timeout from the first stall,
    // none again once it takes more. Meanwhile the connection waits on its client.
    let request = InFlight::start(Arc::clone(&conn));
    request.sending(false);
    assert_eq!(conn.state().phase, Phase::Sending { slot: false });
    conn.wrote(false);
    assert_eq!(conn.state().deadline(limits), None);
    assert_eq!(conn.state().waiting_since(), None);
    conn.wrote(true);
    let blocked = conn.state().write_blocked.expect("blocked");
    conn.wrote(true);
    assert_eq!(
        conn.state().deadline(limits),
        Some(blocked + limits.write_timeout)
    );
    assert_eq!(conn.state().waiting_since(), Some(blocked));
    conn.wrote(false);
    assert_eq!(conn.state().deadline(limits), None);
}
