//! The binary's start-up, run for real: a bad flag value ends it with status 2 and a
//! message naming the flag, before it serves or collects anything, and never with a panic;
//! a mode takes its flags after its name, and refuses by name one given before it that it
//! does not take.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{EXPORTER, free_port};

#[test]
fn a_telemetry_path_the_router_owns_exits_with_status_2() {
    let mut child = Command::new(EXPORTER)
        .args([
            "--web.telemetry-path",
            "/-/healthy",
            // Should the value pass, the server must not take the default port of a real one.
            "--web.listen-address",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait for the exporter").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill the exporter");
            panic!("the exporter started serving");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child
        .wait_with_output()
        .expect("read the exporter's stderr");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--web.telemetry-path"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The allocator's options are part of the binary, not of the build directory's cargo
/// settings: a `cargo install` build gives freed memory back as the repository's does.
#[test]
fn the_allocator_options_are_compiled_into_the_binary() {
    let output = Command::new(EXPORTER)
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("run the exporter");
    assert!(output.status.success());
    let stats = String::from_utf8_lossy(&output.stderr);
    for option in ["opt.dirty_decay_ms: 0 ", "opt.muzzy_decay_ms: 0 "] {
        assert!(stats.contains(option), "{option:?} missing from:\n{stats}");
    }
}

/// Under `--log.format json` a fatal error is a log record like any other line, and a bad
/// interval names the bound it breaks.
#[test]
fn a_fatal_error_is_json_under_log_format_json() {
    let output = Command::new(EXPORTER)
        .args(["--log.format", "json", "--collect-interval", "0", "dump"])
        .stdin(Stdio::null())
        .output()
        .expect("run the exporter");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let record: serde_json::Value = serde_json::from_str(stderr.trim()).expect("one JSON record");
    assert_eq!(record["level"], "ERROR", "{stderr}");
    let message = record["fields"]["message"].as_str().expect("a message");
    assert!(
        message.contains("--collect-interval")
            && message.contains("0 is not a number of seconds above 0 and at most 86400"),
        "{message}"
    );
    // Plain text otherwise.
    let output = Command::new(EXPORTER)
        .args(["--collect-interval", "0", "dump"])
        .stdin(Stdio::null())
        .output()
        .expect("run the exporter");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("netfilter_exporter: "), "{stderr}");
}

/// A web config naming a certificate that is not there: the message names the file, the
/// setting and the config file, and gives the cause once.
#[test]
fn a_missing_certificate_names_its_setting_and_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    )
    .expect("write");
    let output = Command::new(EXPORTER)
        .arg("--web.config.file")
        .arg(&web)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run the exporter");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&web.display().to_string()) && stderr.contains("missing.crt (cert_file)"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

/// The status line of `GET path`, None when nothing answers.
fn status(address: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    response.lines().next().map(str::to_owned)
}

/// `serve --web.listen-address … --web.telemetry-path …`: serve's flags after its name, where
/// clap refused them before.
#[test]
fn serve_takes_its_flags_after_its_name() {
    let address = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(EXPORTER)
        .args([
            "serve",
            "--web.listen-address",
            &address,
            "--web.telemetry-path",
            "/m",
            "-t",
            "nftables",
            "--collect-interval",
            "600",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Some(status) = status(&address, "/m") {
            break Some(status);
        }
        if Instant::now() > deadline || child.try_wait().expect("wait").is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let other = status(&address, "/metrics");
    // SIGTERM, so that the server process of a privileged run stops with it.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().expect("wait for the exporter");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        answer.as_deref().is_some_and(|s| s.contains(" 200 ")),
        "{answer:?}\n{stderr}"
    );
    assert!(
        other.as_deref().is_some_and(|s| s.contains(" 404 ")),
        "{other:?}\n{stderr}"
    );
}

/// A flag after `dump` is dump's: a bad value is a bad value, not an unknown flag.
#[test]
fn dump_takes_the_collection_flags_after_its_name() {
    let output = Command::new(EXPORTER)
        .args(["dump", "-t", "iptables", "--collect-interval", "0"])
        .stdin(Stdio::null())
        .output()
        .expect("run the exporter");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value for --collect-interval"),
        "{stderr}"
    );
}

/// A flag before a mode that does not take it, once silently ignored, is refused naming
/// both, before the mode does anything.
#[test]
fn a_flag_before_a_mode_that_does_not_take_it_exits_with_status_2() {
    let output = Command::new(EXPORTER)
        .args(["--collect-interval", "10", "munin", "config"])
        .stdin(Stdio::null())
        .output()
        .expect("run the exporter");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'--collect-interval' was given before munin, which does not take it"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");
}
