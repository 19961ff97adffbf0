//! Slow clients against the real binary under a 1,024 open-file limit, with a stand-in
//! `iptables-save` first in `PATH`: 2,000 connections that send half a request header and
//! wait must neither keep a scrape out nor make a collection fail for lack of descriptors;
//! a half-sent header is closed after the header timeout, a kept-alive connection after the
//! idle timeout and not before; a client that stops reading a large response holds its
//! request (the others meanwhile answered 503 at the request cap) only until the write
//! timeout.
//! Only 127.0.0.1 is connected to; every loop is bounded in count and time.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{EXPORTER, Exposition, FakePath, ONE_RULE_DUMP as DUMP, Process, spawn_logged};

/// Idle connections opened against the exporter.
const SLOW_CLIENTS: usize = 2_000;

/// The whole test's budget for connecting; it stops early rather than run on.
const CONNECT_BUDGET: Duration = Duration::from_secs(60);

/// A generous bound on one scrape, so that a loaded machine does not fail the test; the
/// delay itself is measured and reported in docs/performance.md, not asserted.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(10);

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Raises this process's soft open-file limit to its hard one, for the slow clients.
fn raise_own_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .expect("raise the open-file limit");
    let raised = getrlimit(Resource::Nofile).current;
    assert!(
        raised.is_none_or(|n| n > SLOW_CLIENTS as u64 + 100),
        "the test needs more than {SLOW_CLIENTS} descriptors, the hard limit is {raised:?}"
    );
}

/// One plain GET of the metrics, its status line and body, and how long it took; None
/// when it did not complete within [`SCRAPE_DEADLINE`].
fn scrape(address: SocketAddr) -> Option<(String, String, Duration)> {
    let start = Instant::now();
    let mut stream = TcpStream::connect_timeout(&address, SCRAPE_DEADLINE).ok()?;
    stream.set_read_timeout(Some(SCRAPE_DEADLINE)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let took = start.elapsed();
    let response = String::from_utf8(response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.to_owned();
    (took <= SCRAPE_DEADLINE).then(|| (status, body.to_owned(), took))
}

/// Scrapes until the exporter answers 200 with a first collection in it.
fn wait_for_metrics(address: SocketAddr, process: &mut Process) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((status, body, _)) = scrape(address)
            && status.contains(" 200 ")
            && body.contains("netfilter_exporter_collection_success")
        {
            return Exposition::parse(&body);
        }
        process.assert_running();
        assert!(Instant::now() < deadline, "no metrics:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The resident size of process `pid`, as /proc shows it, for the report.
fn rss(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_default()
}

fn collection(exposition: &Exposition) -> (f64, f64) {
    let target = [("source", "iptables")];
    (
        exposition.value("netfilter_exporter_collection_success", &target),
        exposition.value("netfilter_exporter_collection_timestamp_seconds", &target),
    )
}

#[test]
fn two_thousand_slow_clients_under_1024_descriptors_keep_no_scrape_out() {
    raise_own_limit();
    let fake = FakePath::iptables_save(DUMP);
    let port = free_port();
    let address: SocketAddr = ([127, 0, 0, 1], port).into();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            r#"ulimit -n 1024 && exec "$0" "$@""#,
            EXPORTER,
            "-t",
            "iptables",
            "--collect-interval",
            "0.2",
            // Longer than the test: no slow client times out, room is made by eviction.
            "--web.read-header-timeout",
            "120",
            "--web.listen-address",
        ])
        .arg(address.to_string())
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    wait_for_metrics(address, &mut process);
    let (_, _, unloaded) = scrape(address).expect("a scrape without slow clients");
    let rss_before = rss(process.id());

    let started = Instant::now();
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for _ in 0..SLOW_CLIENTS {
        if started.elapsed() > CONNECT_BUDGET {
            break;
        }
        // Connections the exporter closed to make room fail here or later; the client
        // goes on, as an attacker would.
        if let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
            slow.push(stream);
        }
    }
    let connected = slow.len();
    process.assert_running();

    let (status, body, loaded) = scrape(address).unwrap_or_else(|| {
        panic!(
            "no scrape within {SCRAPE_DEADLINE:?} behind {connected} slow clients:\n{}",
            process.log()
        )
    });
    assert!(status.contains(" 200 "), "{status}\n{body}");
    let first = Exposition::parse(&body);
    let (success, stamp) = collection(&first);
    assert_eq!(success, 1.0, "{}\n{}", first.text, process.log());

    // A collection that ends while the slow clients still hold their connections.
    let deadline = Instant::now() + SCRAPE_DEADLINE;
    let later = loop {
        let (status, body, _) = scrape(address).expect("a later scrape");
        assert!(status.contains(" 200 "), "{status}\n{body}");
        let later = Exposition::parse(&body);
        if collection(&later).1 > stamp {
            break later;
        }
        assert!(
            Instant::now() < deadline,
            "no newer collection:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        collection(&later).0,
        1.0,
        "{}\n{}",
        later.text,
        process.log()
    );
    assert!(
        !process.log().contains("Too many open files"),
        "{}",
        process.log()
    );
    println!(
        "{connected} slow clients connected in {:?}; scrape without them {unloaded:?}, \
         behind them {loaded:?}; exporter RSS {rss_before} before, {} behind them",
        started.elapsed(),
        rss(process.id())
    );
    drop(slow);
    let status = process.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        process.log()
    );
}

/// Reads from `stream` until the server closes it; how long that took, or None when it
/// stayed open for `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) if start.elapsed() < limit => {}
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(start.elapsed());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn half_sent_headers_and_idle_keep_alives_are_closed_in_time() {
    let fake = FakePath::iptables_save(DUMP);
    let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(EXPORTER);
    command
        .args([
            "-t",
            "iptables",
            "--web.read-header-timeout",
            "0.5",
            "--web.idle-timeout",
            "1",
            "--web.listen-address",
        ])
        .arg(address.to_string())
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    wait_for_metrics(address, &mut process);

    let mut half = TcpStream::connect(address).expect("connect");
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send half a header");
    let took = closed_within(&mut half, Duration::from_secs(10));
    assert!(took.is_some(), "a half-sent header kept its connection");

    // A kept-alive connection: one whole request, then silence.
    let mut kept = TcpStream::connect(address).expect("connect");
    kept.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send a request");
    let took = closed_within(&mut kept, Duration::from_secs(10)).expect("idle connection closed");
    // Not before the idle timeout: the header timeout does not apply between requests.
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
}

/// A GET of `path` on a new connection: the status line, None when there was no answer.
fn status_of(address: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, SCRAPE_DEADLINE).ok()?;
    stream.set_read_timeout(Some(SCRAPE_DEADLINE)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .map(str::to_owned)
}

#[test]
fn a_client_that_stops_reading_holds_its_request_only_until_the_write_timeout() {
    // 100,000 rules: an exposition of tens of MB, more than the socket buffers hold.
    let fake = FakePath::new().script(
        "iptables-save",
        "awk 'BEGIN { print \"*filter\"; print \":INPUT ACCEPT [1:2]\"; \
         for (i = 0; i < 100000; i++) printf \"[%d:%d] -A INPUT -s 10.%d.%d.%d/32 -j ACCEPT\\n\", \
         i, i * 60, int(i / 65536) % 256, int(i / 256) % 256, i % 256; print \"COMMIT\" }'",
    );
    let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(EXPORTER);
    command
        .args([
            "-t",
            "iptables",
            "--collect-interval",
            "600",
            "--web.max-requests",
            "1",
            // Long enough that a loaded machine still sees the refusals while it lasts.
            "--web.write-timeout",
            "3",
            "--web.listen-address",
        ])
        .arg(address.to_string())
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scrape(address).is_some_and(|(_, body, _)| body.contains("10.1.134.159/32")) {
        process.assert_running();
        assert!(Instant::now() < deadline, "no metrics:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut stuck = TcpStream::connect(address).expect("connect");
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send a request");
    let stalled = Instant::now();
    // The only request allowed is the stuck one: anything else is refused, at once.
    let deadline = stalled + Duration::from_secs(20);
    loop {
        let status = status_of(address, "/-/healthy").expect("an answer");
        if status.contains(" 503 ") {
            break;
        }
        // Before the server has read the stuck request.
        assert!(Instant::now() < deadline, "never refused: {status}");
    }
    // Once the stuck response stops moving for the write timeout, its request is gone.
    let freed = loop {
        let status = status_of(address, "/-/healthy").expect("an answer");
        if status.contains(" 200 ") {
            break stalled.elapsed();
        }
        assert!(status.contains(" 503 "), "{status}");
        assert!(
            stalled.elapsed() < Duration::from_secs(20),
            "the stuck response kept its slot"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        freed >= Duration::from_millis(2900),
        "freed after {freed:?}"
    );
    // Its connection was closed: what the buffers held, then the end.
    assert!(
        closed_within(&mut stuck, Duration::from_secs(10)).is_some(),
        "the stuck connection is still open"
    );
}
