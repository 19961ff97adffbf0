//! `--web.config.file` against the real binary, with certificates the test makes with the
//! openssl CLI and a real TLS client (curl): the deploy/ example as written, checked by
//! `promtool check web-config` and then served; refusals of a wrong or missing password,
//! of an untrusted client certificate and of plain HTTP; a change of the file taking effect
//! without a restart, a broken change keeping the last good settings, and a broken file at
//! start ending the program with status 2; a request header too long answered 431 over TLS
//! as over plain HTTP; a flood of wrong passwords keeping no scrape with the right one out.
//! Connects only to 127.0.0.1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    EXPORTER, FakePath, ONE_RULE_DUMP as DUMP, Process, free_port, read_response, spawn_logged,
};
use crate::harness::{output_within, require_command, require_root, run_capture};

/// The password whose hash is in deploy/web-config.yml.
pub(crate) const EXAMPLE_PASSWORD: &str = "prometheus:change me";

fn openssl(dir: &Path, args: &[&str]) {
    run_capture(Command::new("openssl").current_dir(dir).args(args))
        .unwrap_or_else(|e| panic!("openssl: {e}"));
}

/// A CA `name`.crt/.key.
pub(crate) fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A certificate `name`.crt/.key signed by the CA `ca`, for `usage` (serverAuth or
/// clientAuth).
pub(crate) fn make_cert(dir: &Path, ca: &str, name: &str, usage: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
    )
    .expect("write extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// What curl got: whether it succeeded, and the response (headers, then body).
fn curl(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("curl")
        .current_dir(dir)
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

struct Server {
    dir: tempfile::TempDir,
    url: String,
    process: Process,
    _fake: FakePath,
}

impl Server {
    /// curl with the trusted client certificate and `user_password`.
    fn scrape(&self, user_password: &str) -> (bool, String) {
        curl(
            self.dir.path(),
            &[
                "--cacert",
                "ca.crt",
                "--cert",
                "client.crt",
                "--key",
                "client.key",
                "-u",
                user_password,
                &self.url,
            ],
        )
    }

    fn wait_for_metrics(&mut self, user_password: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, response) = self.scrape(user_password);
            if response.starts_with("HTTP/1.1 200")
                && response.contains("netfilter_exporter_collection_success")
            {
                return response;
            }
            self.process.assert_running();
            assert!(
                Instant::now() < deadline,
                "no metrics: {response}\n{}",
                self.process.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// deploy/web-config.yml as shipped.
pub(crate) fn deploy_example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/web-config.yml");
    std::fs::read_to_string(path).expect("read the deploy example")
}

/// `example` with its commented TLS block put in force, as its comment tells a user to.
pub(crate) fn with_tls(example: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in example.lines() {
        in_block = line == "# tls_server_config:" || (in_block && !line.is_empty());
        out.push_str(if in_block { &line[2..] } else { line });
        out.push('\n');
    }
    assert!(
        out.contains("\ntls_server_config:\n  cert_file: tls.crt\n"),
        "{out}"
    );
    out
}

/// Certificates, the deploy example with its TLS block in force as web.yml next to them,
/// and the exporter serving it.
fn start() -> Option<Server> {
    if !(require_command("openssl") && require_command("curl") && require_command("promtool")) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    make_ca(dir.path(), "ca");
    make_cert(dir.path(), "ca", "tls", "serverAuth");
    make_cert(dir.path(), "ca", "client", "clientAuth");
    make_ca(dir.path(), "other-ca");
    make_cert(dir.path(), "other-ca", "stranger", "clientAuth");
    std::fs::copy(dir.path().join("ca.crt"), dir.path().join("client-ca.crt")).expect("copy CA");
    std::fs::write(dir.path().join("web.yml"), with_tls(&deploy_example())).expect("write");

    let fake = FakePath::iptables_save(DUMP);
    let port = free_port();
    let mut command = Command::new(EXPORTER);
    command
        .args([
            "-t",
            "iptables",
            "--collect-interval",
            "0.5",
            "--web.config.file",
        ])
        .arg(dir.path().join("web.yml"))
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .env("PATH", fake.before_path());
    let process = spawn_logged(command, &dir.path().join("log"));
    Some(Server {
        dir,
        url: format!("https://127.0.0.1:{port}/metrics"),
        process,
        _fake: fake,
    })
}

#[test]
fn the_deploy_example_passes_promtool() {
    let Some(server) = start() else { return };
    // As shipped, in place.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/web-config.yml");
    let check = run_capture(Command::new("promtool").args(["check", "web-config", shipped]));
    assert!(check.is_ok(), "{check:?}");
    // With its TLS block in force, next to the files it names.
    let check = run_capture(
        Command::new("promtool")
            .args(["check", "web-config"])
            .arg(server.dir.path().join("web.yml")),
    );
    assert!(check.is_ok(), "{check:?}");
}

#[test]
fn a_trusted_client_with_the_password_scrapes_and_others_are_refused() {
    let Some(mut server) = start() else { return };
    let response = server.wait_for_metrics(EXAMPLE_PASSWORD);
    assert!(
        response.contains("netfilter_exporter_collection_success{source=\"iptables\"} 1"),
        "{response}"
    );
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("x-frame-options: deny"), "{response}");
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{response}"
    );

    for user_password in ["prometheus:wrong", "nobody:change me"] {
        let (_, refused) = server.scrape(user_password);
        assert!(
            refused.starts_with("HTTP/1.1 401"),
            "{user_password}: {refused}"
        );
        assert!(
            refused
                .to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{refused}"
        );
        assert!(!refused.contains("netfilter_exporter_"), "{refused}");
    }
    let dir = server.dir.path();
    let (_, anonymous) = curl(
        dir,
        &[
            "--cacert",
            "ca.crt",
            "--cert",
            "client.crt",
            "--key",
            "client.key",
            &server.url,
        ],
    );
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");

    // TLS refusals: no HTTP response at all, so no metrics.
    for args in [
        // A certificate of a CA the server does not trust.
        &[
            "--cacert",
            "ca.crt",
            "--cert",
            "stranger.crt",
            "--key",
            "stranger.key",
        ][..],
        // No client certificate.
        &["--cacert", "ca.crt"][..],
    ] {
        let (ok, refused) = curl(
            dir,
            &[args, &["-u", EXAMPLE_PASSWORD, &server.url]].concat(),
        );
        assert!(!ok && !refused.contains("HTTP/1.1"), "{args:?}: {refused}");
    }
    let plain = server.url.replace("https://", "http://");
    let (ok, refused) = curl(dir, &["-u", EXAMPLE_PASSWORD, &plain]);
    assert!(!ok && !refused.contains("netfilter_exporter_"), "{refused}");
    server.process.assert_running();
}

#[test]
fn a_changed_file_takes_effect_and_a_broken_one_keeps_the_last_good() {
    let Some(mut server) = start() else { return };
    server.wait_for_metrics(EXAMPLE_PASSWORD);
    let path = server.dir.path().join("web.yml");
    let example = std::fs::read_to_string(&path).expect("read web.yml");
    let hash = bcrypt::hash("new secret", 4).expect("hash");
    let (head, _) = example
        .split_once("basic_auth_users:")
        .expect("users section");
    std::fs::write(
        &path,
        format!("{head}basic_auth_users:\n  grafana: {hash}\n"),
    )
    .expect("rewrite web.yml");
    // The collector process looks at the files every second and hands a change to the
    // server process.
    let changed = Instant::now();
    let deadline = changed + Duration::from_secs(5);
    loop {
        let (_, response) = server.scrape(EXAMPLE_PASSWORD);
        if response.starts_with("HTTP/1.1 401") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old password still works: {response}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(changed.elapsed() < Duration::from_millis(1500));
    server.wait_for_metrics("grafana:new secret");

    std::fs::write(&path, "tls_server_config: [broken\n").expect("break web.yml");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.process.log().contains("web config not reloaded") {
        assert!(Instant::now() < deadline, "{}", server.process.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    server.wait_for_metrics("grafana:new secret");
    let (_, refused) = server.scrape(EXAMPLE_PASSWORD);
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        server.process.log().contains("web.yml"),
        "{}",
        server.process.log()
    );
}

/// The server process runs as nobody and cannot open the key, which only root may read;
/// TLS works all the same, from the key the collector read and sent.
#[test]
fn tls_works_with_a_key_only_root_can_read() {
    if !(require_root("the server process is split off only then") && require_command("setpriv")) {
        return;
    }
    let Some(mut server) = start() else { return };
    let key = server.dir.path().join("tls.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod the key");
    // Made by root: owned by root.
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&key).expect("stat")),
        0
    );
    let as_nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&key)
        .output()
        .expect("run setpriv");
    assert!(!as_nobody.status.success(), "nobody can read the key");
    server.wait_for_metrics(EXAMPLE_PASSWORD);
    let server_pid = std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<u32>().ok());
            ppid == Some(server.process.id())
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .ends_with(b"internal-web-server\0")
        })
        .expect("a server process");
    let status = std::fs::read_to_string(format!("/proc/{server_pid}/status")).expect("status");
    assert!(
        status.contains("Uid:\t65534\t65534\t65534\t65534\n"),
        "{status}"
    );
}

#[test]
fn a_broken_file_at_start_exits_with_status_2_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("broken-web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    )
    .expect("write web.yml");
    let output = output_within(
        {
            let mut command = Command::new(EXPORTER);
            command
                .args(["--web.listen-address", "127.0.0.1:0", "--web.config.file"])
                .arg(&path);
            command
        },
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.crt"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn what_rustls_cannot_do_is_refused_at_start_by_name() {
    if !require_command("openssl") {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    make_ca(dir.path(), "ca");
    make_cert(dir.path(), "ca", "tls", "serverAuth");
    let tls = "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n";
    for (extra, named) in [
        ("  min_version: TLS11\n", "min_version"),
        (
            "  client_auth_type: RequestClientCert\n  client_ca_file: ca.crt\n",
            "client_auth_type",
        ),
        (
            "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
            "cipher_suites",
        ),
        (
            "  client_auth_type: RequireAndVerifyClientCert\n",
            "client_ca_file",
        ),
    ] {
        let path = dir.path().join("web.yml");
        std::fs::write(&path, format!("{tls}{extra}")).expect("write web.yml");
        let mut command = Command::new(EXPORTER);
        command
            .args(["--web.listen-address", "127.0.0.1:0", "--web.config.file"])
            .arg(&path);
        let output = output_within(command, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra}: {stderr}");
        assert!(
            stderr.contains(named) && stderr.contains("web.yml"),
            "{extra}: {stderr}"
        );
    }
}

/// Starts the exporter with `args` on a free port of 127.0.0.1; its URL of `/metrics`
/// (`scheme` is `http` or `https`) once `curl_args` reach it.
fn start_with(
    dir: &Path,
    fake: &FakePath,
    args: &[&str],
    scheme: &str,
    curl_args: &[&str],
    log: &str,
) -> (Process, String) {
    let port = free_port();
    let mut command = Command::new(EXPORTER);
    command
        .args(["-t", "iptables"])
        .args(args)
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{port}"))
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.join(log));
    let url = format!("{scheme}://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, response) = curl(dir, &[curl_args, &[url.as_str()]].concat());
        if response.starts_with("HTTP/1.1 200") {
            return (process, url);
        }
        process.assert_running();
        assert!(Instant::now() < deadline, "no answer: {}", process.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_long_request_header_is_answered_431_over_tls_as_over_plain_http() {
    if !(require_command("openssl") && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    make_ca(dir.path(), "ca");
    make_cert(dir.path(), "ca", "tls", "serverAuth");
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
    )
    .expect("write web.yml");
    let web = dir.path().join("web.yml").to_string_lossy().into_owned();
    let fake = FakePath::iptables_save(DUMP);
    // Longer than curl waits: an answer is not the header timeout's.
    let timeout = ["--web.read-header-timeout", "120"];
    let tls_args = [&timeout[..], &["--web.config.file", &web]].concat();
    let (mut tls, tls_url) = start_with(
        dir.path(),
        &fake,
        &tls_args,
        "https",
        &["--cacert", "ca.crt"],
        "tls.log",
    );
    let (mut plain, plain_url) = start_with(dir.path(), &fake, &timeout, "http", &[], "plain.log");
    for kib in [128, 512] {
        // curl stops sending a header this long over TLS after 128 KiB, and waits.
        let header = format!("X-Long: {}\n", "a".repeat(kib * 1024));
        std::fs::write(dir.path().join("header"), header).expect("write the header");
        for url in [&tls_url, &plain_url] {
            let (_, response) = curl(
                dir.path(),
                &[
                    "--cacert",
                    "ca.crt",
                    "--max-time",
                    "30",
                    "-H",
                    "@header",
                    url,
                ],
            );
            assert!(
                response.starts_with("HTTP/1.1 431"),
                "{kib} KiB to {url}: {response:?}"
            );
        }
    }
    tls.assert_running();
    plain.assert_running();
}

/// Threads sending wrong passwords.
const GUESSERS: usize = 8;

/// Requests each of them sends, at most.
const GUESSES: usize = 300;

/// Scrapes with the right password while they do.
const RIGHT_SCRAPES: usize = 20;

/// A GET of the metrics on a new connection with `user_password` for basic authentication,
/// read whole: the status line, or what went wrong.
fn get_with(address: std::net::SocketAddr, user_password: &str) -> Result<String, String> {
    use base64::Engine;
    use std::io::Write;
    let deadline = Duration::from_secs(20);
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, deadline).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(deadline))
        .map_err(|e| e.to_string())?;
    let credentials = base64::engine::general_purpose::STANDARD.encode(user_password);
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {credentials}\r\n\
         Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    read_response(&mut stream)
}

#[test]
fn wrong_passwords_keep_no_right_one_out() {
    let dir = tempfile::tempdir().expect("temporary directory");
    // The cost of htpasswd -B's examples: each verification takes a while.
    let hash = bcrypt::hash("right", 10).expect("hash");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: {hash}\n"))
        .expect("write web.yml");
    let fake = FakePath::iptables_save(DUMP);
    let address: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut command = Command::new(EXPORTER);
    command
        .args([
            "-t",
            "iptables",
            "--web.max-requests",
            "4",
            "--web.config.file",
        ])
        .arg(&web)
        .arg("--web.listen-address")
        .arg(address.to_string())
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    // The right password verified once, before the guessing starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_with(address, "prometheus:right").as_deref() != Ok("HTTP/1.1 200 OK") {
        process.assert_running();
        assert!(Instant::now() < deadline, "no answer: {}", process.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guessers: Vec<_> = (0..GUESSERS)
        .map(|t| {
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut statuses = Vec::new();
                for i in 0..GUESSES {
                    if done.load(std::sync::atomic::Ordering::Relaxed)
                        || start.elapsed() > Duration::from_secs(120)
                    {
                        break;
                    }
                    // A few wrong passwords again and again, and now and then a new one,
                    // for the configured user and for an unknown one.
                    let user = if i % 2 == 0 { "prometheus" } else { "intruder" };
                    let password = if i % 5 == 0 {
                        format!("new {t} {i}")
                    } else {
                        format!("again {t} {}", i % 3)
                    };
                    statuses.push(get_with(address, &format!("{user}:{password}")));
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let mut right = Vec::new();
    for _ in 0..RIGHT_SCRAPES {
        right.push(get_with(address, "prometheus:right"));
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let wrong: Vec<_> = guessers
        .into_iter()
        .flat_map(|g| g.join().expect("a guesser"))
        .collect();
    let count = |status: &str| {
        wrong
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|s| s.contains(status)))
            .count()
    };
    let answered = right
        .iter()
        .filter(|r| r.as_deref() == Ok("HTTP/1.1 200 OK"))
        .count();
    println!(
        "{answered} of {RIGHT_SCRAPES} scrapes with the right password answered beside {} \
         wrong ones ({} answered 401, {} 503)",
        wrong.len(),
        count(" 401 "),
        count(" 503 ")
    );
    assert_eq!(answered, RIGHT_SCRAPES, "{right:?}\n{}", process.log());
    // Every wrong password refused, or not checked; never let in.
    assert!(
        wrong.iter().all(|r| r
            .as_ref()
            .is_ok_and(|s| s.contains(" 401 ") || s.contains(" 503 "))),
        "{wrong:?}"
    );
    assert!(count(" 401 ") > 0, "no wrong password was refused");
    process.assert_running();
}
