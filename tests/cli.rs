//! The binary's start-up, run for real: a bad flag value ends it with status 2 and a
//! message naming the flag, before it serves or collects anything, and never with a panic.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXPORTER: &str = env!("CARGO_BIN_EXE_netfilter_exporter");

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
