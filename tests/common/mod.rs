//! Helpers of both test binaries: the exporter binary, started as a child process whose
//! log is kept and which is killed when its test ends, with a stand-in for a command first
//! in its `PATH`; a free port of the loopback; a reader of the exposition so that tests can
//! assert exact sample values; and what /proc says of a process. Those of the kernel tests
//! alone are in kernel/harness.rs, so that each binary uses all of what it compiles.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The exporter binary under test.
pub(crate) const EXPORTER: &str = env!("CARGO_BIN_EXE_netfilter_exporter");

/// Starts a long-running `command` whose standard error goes to `log`; the process is
/// killed when the guard drops.
pub(crate) fn spawn_logged(mut command: Command, log: &Path) -> Process {
    let log_file = std::fs::File::create(log).expect("create log file");
    let child = command
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start process");
    Process {
        child,
        log: log.to_owned(),
    }
}

/// A background process (exporter, Prometheus) that is killed when the guard drops.
pub(crate) struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the process wrote to standard error so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns the exit status, or
    /// None when the process is still running.
    pub(crate) fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.wait(limit)
    }

    /// Waits up to `limit` for the process to exit; its exit status, or None when it is
    /// still running.
    pub(crate) fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics with the process's log when it has exited already.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("wait for process") {
            panic!("process exited early ({status}):\n{}", self.log());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Already exited is fine; anything else must not outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dump of one rule, for tests with a stand-in `iptables-save`.
pub(crate) const ONE_RULE_DUMP: &str =
    "*filter\n:INPUT ACCEPT [1:2]\n[3:4] -A INPUT -j ACCEPT\nCOMMIT\n";

/// A directory that holds a replacement for one command, put first in `PATH`.
pub(crate) struct FakePath {
    dir: tempfile::TempDir,
}

impl FakePath {
    /// An empty directory.
    pub(crate) fn new() -> FakePath {
        FakePath {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Writes an executable shell script `name` with `body` (after `#!/bin/sh`).
    pub(crate) fn script(self, name: &str, body: &str) -> FakePath {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make script executable");
        self
    }

    /// A stand-in `iptables-save` that prints `dump` (no `'` or `%` in it).
    pub(crate) fn iptables_save(dump: &str) -> FakePath {
        FakePath::save_command(&format!("printf '{dump}'"))
    }

    /// A stand-in `iptables-save` running `body`, on a host whose `iptables` says it is
    /// legacy: the iptables source then reads the stand-in, not the kernel's nf_tables.
    pub(crate) fn save_command(body: &str) -> FakePath {
        FakePath::new()
            .script("iptables-save", body)
            .script("iptables", "echo 'iptables v1.8.9 (legacy)'")
    }

    /// This directory followed by the current `PATH`.
    pub(crate) fn before_path(&self) -> std::ffi::OsString {
        let current = std::env::var_os("PATH").unwrap_or_default();
        std::env::join_paths(
            std::iter::once(self.dir.path().to_owned()).chain(std::env::split_paths(&current)),
        )
        .expect("valid PATH")
    }
}

/// One sample line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// Metric name.
    pub(crate) name: String,
    /// Labels by name.
    pub(crate) labels: BTreeMap<String, String>,
    /// Value.
    pub(crate) value: f64,
}

/// An exposition read back into samples.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exposition {
    /// Every sample, in order.
    pub(crate) samples: Vec<Sample>,
    /// The text it was read from.
    pub(crate) text: String,
}

impl Exposition {
    /// Reads the text format (or OpenMetrics); panics on a line it cannot read.
    pub(crate) fn parse(text: &str) -> Exposition {
        let mut exposition = Exposition {
            text: text.to_owned(),
            ..Exposition::default()
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(rest.contains(' '), "TYPE line without a type: {line:?}");
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            exposition.samples.push(parse_sample(line));
        }
        exposition
    }

    /// Every sample named `name` whose labels include all of `labels`.
    pub(crate) fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
            })
            .collect()
    }

    /// The value of the one sample named `name` whose labels include `labels`; panics when
    /// there is none or more than one.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(name, labels).as_slice() {
            [one] => one.value,
            [] => panic!("no sample {name} {labels:?} in:\n{}", self.text),
            many => panic!("{} samples {name} {labels:?}: {many:?}", many.len()),
        }
    }
}

fn parse_sample(line: &str) -> Sample {
    let bad = || -> ! { panic!("cannot read sample line {line:?}") };
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad());
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches(',');
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, tail) = inner.split_once("=\"").unwrap_or_else(|| bad());
            let mut value = String::new();
            let mut chars = tail.char_indices();
            let end = loop {
                match chars.next().unwrap_or_else(|| bad()) {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().unwrap_or_else(|| bad()).1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_owned(), value);
            inner = &tail[end + 1..];
        }
    }
    let value = rest.split_whitespace().next().unwrap_or_else(|| bad());
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or_else(|_| bad()),
    };
    Sample {
        name,
        labels,
        value,
    }
}

/// The peak resident size of a running process, in KiB (`VmHWM` of /proc/PID/status).
pub(crate) fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// The next response on `stream`, its body read whole by its `Content-Length`: the status
/// line, or what went wrong.
pub(crate) fn read_response(stream: &mut std::net::TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        match std::io::Read::read(stream, &mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err(format!("closed in the head: {head:?}")),
            Err(e) => return Err(format!("{e} in the head")),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let length: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no content length: {head}"))?;
    let read = std::io::copy(
        &mut std::io::Read::take(&mut *stream, length),
        &mut std::io::sink(),
    )
    .map_err(|e| format!("{status}: {e}"))?;
    if read == length {
        Ok(status)
    } else {
        Err(format!("{status}: {read} of {length} bytes"))
    }
}

/// A port of 127.0.0.1 that was free a moment ago, for a server the test starts. Never the
/// same twice in this process, so that tests running at the same time cannot pick one port.
pub(crate) fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("bind a free port")
            .port();
        if GIVEN.lock().expect("ports given").insert(port) {
            return port;
        }
    }
}
