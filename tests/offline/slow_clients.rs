//! Slow clients against the real binary under a 1,024 open-file limit, with a stand-in
//! `iptables-save` first in `PATH`: 2,000 connections that send half a request header and
//! wait must neither keep a scrape out nor make a collection fail for lack of descriptors;
//! a half-sent header is closed after the header timeout, a kept-alive connection after the
//! idle timeout and not before; a client that stops reading a large response holds no
//! request slot, and its connection is closed at the write timeout; clients that ask for a
//! large exposition and never read, one after the other, keep no scraper out.
//! Only 127.0.0.1 is connected to; every loop is bounded in count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    EXPORTER, Exposition, FakePath, ONE_RULE_DUMP as DUMP, Process, free_port, read_response,
    spawn_logged,
};

/// Idle connections opened against the exporter.
const SLOW_CLIENTS: usize = 2_000;

/// The whole test's budget for connecting; it stops early rather than run on.
const CONNECT_BUDGET: Duration = Duration::from_secs(60);

/// A generous bound on one scrape, so that a loaded machine does not fail the test; the
/// delay itself is measured and reported in docs/performance.md, not asserted.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(10);

/// Raises this process's soft open-file limit to its hard one, for the slow clients. The
/// limit is the whole test process's, tests running beside this one included: a higher soft
/// limit is all they and the processes they start see of it, and none asks for a low one.
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

/// A stand-in `iptables-save` that prints `rules` rules: their exposition is kept as text
/// up to some tens of thousands (and served from memory), only compressed above (and
/// decompressed as it is sent as text); either way more than the socket buffers hold.
fn many_rules(rules: usize) -> FakePath {
    FakePath::save_command(&format!(
        "awk 'BEGIN {{ print \"*filter\"; print \":INPUT ACCEPT [1:2]\"; \
             for (i = 0; i < {rules}; i++) printf \"[%d:%d] -A INPUT -s 10.%d.%d.%d/32 -j ACCEPT\\n\", \
             i, i * 60, int(i / 65536) % 256, int(i / 256) % 256, i % 256; print \"COMMIT\" }}'"
    ))
}

/// The exporter on a free port of 127.0.0.1 with `fake` first in `PATH` and `args`, once it
/// serves the collection of `rules` rules.
fn start_many(
    rules: usize,
    fake: &FakePath,
    args: &[&str],
    log: &std::path::Path,
) -> (Process, SocketAddr) {
    let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut command = Command::new(EXPORTER);
    command
        .args(["-t", "iptables", "--collect-interval", "600"])
        .args(args)
        .arg("--web.listen-address")
        .arg(address.to_string())
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, log);
    let last = rules - 1;
    let last = format!(
        "10.{}.{}.{}/32",
        (last >> 16) % 256,
        (last >> 8) % 256,
        last % 256
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !scrape(address).is_some_and(|(_, body, _)| body.contains(&last)) {
        process.assert_running();
        assert!(Instant::now() < deadline, "no metrics:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    (process, address)
}

/// Sends a plain GET of the metrics on a new connection, and never reads.
fn ask_and_never_read(address: SocketAddr) -> Option<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&address, SCRAPE_DEADLINE).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    Some(stream)
}

#[test]
fn a_client_that_stops_reading_holds_no_request_and_is_closed_at_the_write_timeout() {
    // Kept as text: the response is in memory and sent from there.
    const RULES: usize = 70_000;
    const WRITE_TIMEOUT: Duration = Duration::from_secs(4);
    let fake = many_rules(RULES);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut process, address) = start_many(
        RULES,
        &fake,
        &["--web.max-requests", "1", "--web.write-timeout", "4"],
        &dir.path().join("log"),
    );
    let sent = Instant::now();
    let mut paused = ask_and_never_read(address).expect("send a request");
    let mut stuck = ask_and_never_read(address).expect("send a request");
    // The only request slot is free for others all along.
    while sent.elapsed() < WRITE_TIMEOUT / 3 {
        let status = status_of(address, "/-/healthy").expect("an answer");
        assert!(status.contains(" 200 "), "{status}\n{}", process.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A client that reads again before the write timeout gets its response whole.
    paused
        .set_read_timeout(Some(SCRAPE_DEADLINE))
        .expect("read timeout");
    let status = read_response(&mut paused).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.contains(" 200 "), "{status}");
    // One that does not is closed once its response has waited the write timeout: what
    // the buffers held, then the end (read only then: reading would take the response).
    std::thread::sleep(
        (sent + WRITE_TIMEOUT + Duration::from_secs(10)).saturating_duration_since(Instant::now()),
    );
    assert!(
        closed_within(&mut stuck, Duration::from_secs(20)).is_some(),
        "the stuck connection is still open"
    );
    process.assert_running();
}

/// Clients that never read opened while a scraper scrapes, at most.
const NON_READERS: usize = 60;

/// Scrapes made while they are opened.
const SCRAPES: usize = 20;

/// Runs the exporter on `rules` rules with 4 request slots, opens up to [`NON_READERS`]
/// connections that ask for the plain exposition and never read, one every 100 ms, and
/// meanwhile scrapes [`SCRAPES`] times, plain and gzip in turn, reading each answer whole.
/// Every scrape must be answered 200 and whole.
fn non_readers_keep_no_scrape_out(rules: usize) {
    let fake = many_rules(rules);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut process, address) = start_many(
        rules,
        &fake,
        // Longer than the test: a stuck response is closed only to make room.
        &["--web.max-requests", "4", "--web.write-timeout", "600"],
        &dir.path().join("log"),
    );
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opening = std::thread::spawn({
        let done = std::sync::Arc::clone(&done);
        move || {
            let mut stuck = Vec::new();
            let start = Instant::now();
            for _ in 0..NON_READERS {
                if done.load(std::sync::atomic::Ordering::Relaxed)
                    || start.elapsed() > Duration::from_secs(120)
                {
                    break;
                }
                stuck.extend(ask_and_never_read(address));
                std::thread::sleep(Duration::from_millis(100));
            }
            stuck
        }
    });
    // A head start: more clients that never read than there are slots.
    std::thread::sleep(Duration::from_secs(1));
    let mut outcomes = Vec::new();
    for i in 0..SCRAPES {
        let gzip = i % 2 == 1;
        outcomes.push((gzip, full_scrape(address, gzip)));
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let stuck = opening.join().expect("the clients that never read");
    let answered = outcomes
        .iter()
        .filter(|(_, o)| o.as_ref().is_ok_and(|status| status.contains(" 200 ")))
        .count();
    println!(
        "{rules} rules: {answered} of {SCRAPES} scrapes answered 200 and whole beside {} \
         clients that never read",
        stuck.len()
    );
    assert!(
        stuck.len() > 4,
        "too few clients that never read: {}",
        stuck.len()
    );
    assert_eq!(answered, SCRAPES, "{outcomes:?}\n{}", process.log());
    process.assert_running();
}

/// A GET of the metrics, with gzip when `gzip`, read whole: the status line, or what went
/// wrong.
fn full_scrape(address: SocketAddr, gzip: bool) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&address, SCRAPE_DEADLINE).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(SCRAPE_DEADLINE))
        .map_err(|e| e.to_string())?;
    let encoding = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{encoding}\r\n"
    )
    .map_err(|e| e.to_string())?;
    read_response(&mut stream)
}

#[test]
fn clients_that_never_read_keep_no_scrape_out_of_an_exposition_in_memory() {
    non_readers_keep_no_scrape_out(70_000);
}

#[test]
fn clients_that_never_read_keep_no_scrape_out_of_an_exposition_decompressed_as_sent() {
    non_readers_keep_no_scrape_out(100_000);
}
