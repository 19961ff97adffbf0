//! Shared harness of the kernel tests: a throwaway network namespace per test (or two joined
//! by a veth pair), commands run inside it, real packets sent over its loopback, the exporter
//! binary started inside it, and a small reader of the exposition so that tests can assert
//! exact sample values.
//!
//! Each test binary names its namespaces with a prefix of its own (`nfe-munin`, …), so that
//! binaries running at the same time never collide and each clears only its own leftovers.
//!
//! Every test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The exporter binary under test.
pub(crate) const EXPORTER: &str = env!("CARGO_BIN_EXE_netfilter_exporter");

/// True when kernel tests must run (CI): an unusable kernel is then a failure, not a skip.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports that a test cannot run: panics in CI, prints "skipped: …" and returns false
/// otherwise.
pub(crate) fn cannot_run(reason: &str) -> bool {
    assert!(
        !in_ci(),
        "CI=true but this test cannot run: {reason} (kernel tests need root and `ip netns add`)"
    );
    println!("skipped: {reason}");
    false
}

/// Whether namespaces can be created here (root, `ip netns add` works); probed once per
/// test binary, which first deletes the namespaces named with `prefix` that an earlier,
/// killed run of it left behind (see [`delete_leftovers`]). `prefix` is the binary's own,
/// the one it passes to [`Netns::new`]. Returns false after printing "skipped: …", or
/// panics when `CI=true`.
pub(crate) fn require_kernel(prefix: &str) -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let uid = run_capture(Command::new("id").arg("-u"))
            .map_err(|e| format!("cannot run `id -u`: {e}"))?;
        if uid.trim() != "0" {
            return Err(format!("not root (uid {})", uid.trim()));
        }
        delete_leftovers(prefix);
        Netns::try_new(prefix).map(drop)
    });
    match probe {
        Ok(()) => true,
        Err(reason) => cannot_run(reason),
    }
}

/// Whether `command` is installed (found in `PATH`); skips or fails like [`require_kernel`].
pub(crate) fn require_command(command: &str) -> bool {
    which(command).is_some() || cannot_run(&format!("{command} is not installed"))
}

/// The full path of `command` in the current `PATH`.
pub(crate) fn which(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
}

fn ip_command() -> &'static Path {
    static IP: OnceLock<PathBuf> = OnceLock::new();
    // A test may change the PATH of the child; `ip` itself is always found in ours.
    IP.get_or_init(|| which("ip").unwrap_or_else(|| PathBuf::from("/usr/sbin/ip")))
}

/// Deletes the namespaces `<prefix>-<pid>-<n>` (see [`Netns::new`]) whose process `pid` no
/// longer runs: a test binary killed (timeout, SIGKILL) before its guards dropped leaves them.
/// Those of a live process, such as another run of the same binary at the same time, stay.
fn delete_leftovers(prefix: &str) {
    let Ok(list) = run_capture(Command::new(ip_command()).args(["netns", "list"])) else {
        return;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Lines are `name` or `name (id: N)`.
    for name in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some((pid, n)) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split_once('-'))
        else {
            continue;
        };
        if number(pid) && number(n) && !Path::new("/proc").join(pid).exists() {
            delete_netns(name);
        }
    }
}

/// `ip netns del name`; a failure is reported on stderr only, since it runs on cleanup.
fn delete_netns(name: &str) {
    if let Err(e) = run_capture(Command::new(ip_command()).args(["netns", "del", name])) {
        eprintln!("cannot delete namespace {name}: {e}");
    }
}

/// Runs `command`; its standard output when it succeeds, else a description of the command,
/// its exit status and standard error.
pub(crate) fn run_capture(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{:?}: {}: {}",
            command,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// IP version of the packets a helper sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ip {
    /// IPv4 over 127.0.0.1.
    V4,
    /// IPv6 over ::1.
    V6,
}

impl Ip {
    /// Bytes the kernel counts for one echo request of `payload` bytes: IP header, ICMP
    /// header, payload.
    pub(crate) fn echo_bytes(self, payload: u64) -> u64 {
        let ip_header = match self {
            Ip::V4 => 20,
            Ip::V6 => 40,
        };
        ip_header + 8 + payload
    }
}

/// A network namespace that exists as long as the value; dropping it (also while a test
/// panics) deletes the namespace and with it every rule loaded into it.
pub(crate) struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `<prefix>-<pid>-<n>`, unique to this process, and brings its
    /// `lo` up. `prefix` is the test binary's own. Call [`require_kernel`] first; this panics
    /// when the namespace cannot be created.
    pub(crate) fn new(prefix: &str) -> Netns {
        Netns::try_new(prefix).expect("cannot create a network namespace")
    }

    fn try_new(prefix: &str) -> Result<Netns, String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        run_capture(Command::new(ip_command()).args(["netns", "add", &name]))?;
        let netns = Netns { name };
        netns
            .try_run("ip", &["link", "set", "lo", "up"])
            .map_err(|e| format!("cannot bring lo up: {e}"))?;
        Ok(netns)
    }

    /// The namespace's name, as `ip netns` knows it: for `ip netns exec` from another
    /// thread, or its file in /run/netns.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `program args…` inside the namespace, not yet started.
    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(ip_command());
        command
            .args(["netns", "exec", &self.name])
            .arg(program)
            .stdin(Stdio::null());
        command
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        run_capture(self.command(program).args(args))
    }

    /// Runs `program args…` inside the namespace; panics unless it succeeds. Returns its
    /// standard output.
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> String {
        self.try_run(program, args)
            .unwrap_or_else(|e| panic!("in namespace {}: {e}", self.name))
    }

    /// True when `program args…` succeeds inside the namespace.
    pub(crate) fn succeeds(&self, program: &str, args: &[&str]) -> bool {
        self.try_run(program, args).is_ok()
    }

    /// Runs `program args…` inside the namespace with `input` as its standard input and
    /// returns its output, whatever its exit status.
    pub(crate) fn output(&self, program: &str, args: &[&str], input: &str) -> Output {
        output_with_input(self.command(program).args(args), input)
    }

    /// Loads `rules` with `restore` (`iptables-restore`, `ip6tables-restore`,
    /// `iptables-legacy-restore`, …) inside the namespace; panics on failure.
    pub(crate) fn restore(&self, restore: &str, rules: &str) {
        let output = self.output(restore, &[], rules);
        assert!(
            output.status.success(),
            "{restore} failed: {}\nrules:\n{rules}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Packets, bytes and comment (empty when none) of each rule of `chain`, in order, as
    /// `iptables -L -v -x -n` shows them (`iptables` may be `ip6tables`, …).
    pub(crate) fn rule_counters(&self, iptables: &str, chain: &str) -> Vec<(u64, u64, String)> {
        let listing = self.run(iptables, &["-L", chain, "-v", "-x", "-n"]);
        // The first two lines are the chain's header and the column titles.
        listing
            .lines()
            .skip(2)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut fields = line.split_whitespace();
                let mut number = || -> u64 {
                    fields
                        .next()
                        .and_then(|f| f.parse().ok())
                        .unwrap_or_else(|| panic!("bad line {line:?}"))
                };
                let (packets, bytes) = (number(), number());
                let comment = line
                    .split_once("/* ")
                    .and_then(|(_, rest)| rest.rsplit_once(" */"))
                    .map_or_else(String::new, |(c, _)| c.to_owned());
                (packets, bytes, comment)
            })
            .collect()
    }

    /// Sends exactly `count` echo requests with `payload` bytes over loopback and checks
    /// that every one was answered.
    pub(crate) fn ping(&self, ip: Ip, count: u32, payload: u32) {
        let (family, address) = match ip {
            Ip::V4 => ("-4", "127.0.0.1"),
            Ip::V6 => ("-6", "::1"),
        };
        let (count, payload) = (count.to_string(), payload.to_string());
        let out = self.run(
            "ping",
            &[
                family, "-n", "-q", "-c", &count, "-s", &payload, "-i", "0.01", "-W", "5", address,
            ],
        );
        assert!(
            out.contains(&format!("{count} packets transmitted, {count} received")),
            "ping did not get every answer:\n{out}"
        );
    }

    /// The exporter inside the namespace with `args`, not yet started.
    pub(crate) fn exporter(&self, args: &[&str]) -> Command {
        let mut command = self.command(EXPORTER);
        command.args(args);
        command
    }

    /// Runs `netfilter_exporter dump args…` inside the namespace and returns its output,
    /// whatever its exit status.
    pub(crate) fn dump(&self, args: &[&str]) -> Output {
        let mut command = self.exporter(&["dump"]);
        command.args(args);
        output_within(command, Duration::from_secs(120))
    }

    /// Like [`Netns::dump`], asserting success; returns the parsed exposition.
    pub(crate) fn dump_ok(&self, args: &[&str]) -> Exposition {
        let output = self.dump(args);
        assert!(
            output.status.success(),
            "dump failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Exposition::parse(&String::from_utf8(output.stdout).expect("UTF-8 exposition"))
    }

    /// Runs `curl args…` inside the namespace and returns its standard output; panics
    /// when curl fails.
    pub(crate) fn curl(&self, args: &[&str]) -> String {
        self.run("curl", &Self::curl_args(args))
    }

    /// Runs `curl args…` inside the namespace; None when curl fails (e.g. nothing listens
    /// yet).
    pub(crate) fn try_curl(&self, args: &[&str]) -> Option<String> {
        self.try_run("curl", &Self::curl_args(args)).ok()
    }

    fn curl_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--silent", "--show-error", "--max-time", "10"], args].concat()
    }

    /// Starts a long-running `command` (built with [`Netns::command`]) whose standard
    /// error goes to `log`; the process is killed when the guard drops.
    pub(crate) fn spawn(&self, command: Command, log: &Path) -> Process {
        spawn_logged(command, log)
    }

    /// Polls `curl url` inside the namespace until it answers, for up to `limit`.
    pub(crate) fn wait_for_http(&self, url: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.succeeds(
            "curl",
            &[
                "--silent",
                "--fail",
                "--max-time",
                "2",
                "-o",
                "/dev/null",
                url,
            ],
        ) {
            assert!(
                Instant::now() < deadline,
                "{url} did not answer within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `command` with `input` as its standard input and returns its output, whatever its
/// exit status; panics when it cannot be started.
pub(crate) fn output_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    // Dropped at the end of the statement, so that the command sees the end of its input.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .unwrap_or_else(|e| panic!("cannot write the input of {command:?}: {e}"));
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {command:?}: {e}"))
}

/// Runs `command` to its end, collecting its output; panics when it has not finished
/// within `limit` (after killing it).
pub(crate) fn output_within(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start command");
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("collect output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{command:?} did not finish within {limit:?}");
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete_netns(&self.name);
    }
}

/// A server and a client namespace joined by a veth pair: `vs` in the server with
/// 192.168.24.1/24 and 2001:db8:f00d::1/64, `vc` in the client with 192.168.24.2/24 and
/// 2001:db8:f00d::2/64, so that packets between them cross the server's INPUT and OUTPUT
/// rather than loopback. Both namespaces are deleted when the value drops.
pub(crate) struct NetnsPair {
    /// The namespace whose rules are counted.
    pub(crate) server: Netns,
    /// The namespace the traffic comes from.
    pub(crate) client: Netns,
}

impl NetnsPair {
    /// Creates both namespaces (see [`Netns::new`] for `prefix`) and the link between them;
    /// panics on failure.
    pub(crate) fn new(prefix: &str) -> NetnsPair {
        let pair = NetnsPair {
            server: Netns::new(prefix),
            client: Netns::new(prefix),
        };
        pair.server.run(
            "ip",
            &[
                "link",
                "add",
                "vs",
                "type",
                "veth",
                "peer",
                "name",
                "vc",
                "netns",
                &pair.client.name,
            ],
        );
        for (ns, dev, v4, v6) in [
            (&pair.server, "vs", "192.168.24.1/24", "2001:db8:f00d::1/64"),
            (&pair.client, "vc", "192.168.24.2/24", "2001:db8:f00d::2/64"),
        ] {
            ns.run("ip", &["addr", "add", v4, "dev", dev]);
            // No duplicate address detection, which would hold the address back for a while.
            ns.run("ip", &["addr", "add", v6, "dev", dev, "nodad"]);
            ns.run("ip", &["link", "set", dev, "up"]);
        }
        pair
    }
}

/// A filter table for `iptables-restore` or `ip6tables-restore` in which INPUT and OUTPUT
/// both jump to the user chain `chain`, which holds `rules` (`-A chain …` lines, each ending
/// in a newline): the layout of an accounting chain.
pub(crate) fn accounting_table(chain: &str, rules: &str) -> String {
    format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :{chain} - [0:0]\n-A INPUT -j {chain}\n-A OUTPUT -j {chain}\n{rules}COMMIT\n"
    )
}

/// The worked example of the traffic_accounting article, rules 1–5 in ACCT4 (see
/// [`accounting_table`]), followed by `extra` (`-A ACCT4 …` lines, each ending in a newline).
pub(crate) fn accounting_example4(extra: &str) -> String {
    let rules = r#"-A ACCT4 ! -s 10.2.3.0/24 -p tcp --dport 22 -m comment --comment "=unauthssh= Unauthorized SSH traffic received"
-A ACCT4 -d 192.168.24.1 -p tcp --dport 80 -m comment --comment "=web4_down= Combined web traffic to/from local 80/443"
-A ACCT4 -s 192.168.24.1 -p tcp --sport 80 -m comment --comment "=web4_up= dummy"
-A ACCT4 -d 192.168.24.1 -p tcp --dport 443 -m comment --comment "=web4_down= dummy"
-A ACCT4 -s 192.168.24.1 -p tcp --sport 443 -m comment --comment "=web4_up= dummy"
"#;
    accounting_table("ACCT4", &[rules, extra].concat())
}

/// The article's rules 6–9 in ACCT6 (see [`accounting_table`]).
pub(crate) fn accounting_example6() -> String {
    let rules = r#"-A ACCT6 -d 2001:db8:f00d::1 -p tcp --dport 80 -m comment --comment "=web6_down= Web traffic to/from local port 80"
-A ACCT6 -s 2001:db8:f00d::1 -p tcp --sport 80 -m comment --comment "=web6_up= dummy"
-A ACCT6 -d 2001:db8:f00d::1 -p tcp --dport 443 -m comment --comment "=web6ssl_down= Web traffic to/from local port 443"
-A ACCT6 -s 2001:db8:f00d::1 -p tcp --sport 443 -m comment --comment "=web6ssl_up= dummy"
"#;
    accounting_table("ACCT6", rules)
}

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
        FakePath::new().script("iptables-save", &format!("printf '{dump}'"))
    }

    /// This directory alone, as a `PATH` value.
    pub(crate) fn alone(&self) -> &OsStr {
        self.dir.path().as_os_str()
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

/// An exposition read back into samples, with its `# TYPE` lines.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exposition {
    /// Every sample, in order.
    pub(crate) samples: Vec<Sample>,
    /// Family name → type, from the `# TYPE` lines.
    pub(crate) types: BTreeMap<String, String>,
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
                let (name, kind) = rest.split_once(' ').expect("TYPE line has a type");
                exposition.types.insert(name.to_owned(), kind.to_owned());
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

    /// The sum of every sample named `name` whose labels include `labels`.
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
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

/// A bpffs mounted on a temporary directory for one test, unmounted when dropped.
pub(crate) struct Bpffs {
    dir: tempfile::TempDir,
}

impl Bpffs {
    /// Mounts one; panics when it cannot (call [`require_kernel`] and check for bpftool
    /// first).
    pub(crate) fn mount() -> Bpffs {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "cannot mount a bpffs");
        Bpffs { dir }
    }

    /// Creates an array map of two u64 values with u32 keys, as azure-iptables-monitor's
    /// blocking program pins, at `name` in the bpffs; its path.
    pub(crate) fn array_map(&self, name: &str) -> PathBuf {
        let map = self.dir.path().join(name);
        run_capture(
            Command::new("bpftool")
                .args(["map", "create"])
                .arg(&map)
                .args([
                    "type",
                    "array",
                    "key",
                    "4",
                    "value",
                    "8",
                    "entries",
                    "2",
                    "name",
                    "nfe_audit",
                ]),
        )
        .expect("bpftool map create");
        map
    }

    /// Sets `key` of the u64 array map `map` to `value` with bpftool.
    pub(crate) fn set(&self, map: &Path, key: u8, value: u64) {
        let mut args: Vec<String> = ["map", "update", "pinned"].map(String::from).to_vec();
        args.push(map.display().to_string());
        args.push("key".to_owned());
        args.extend([key, 0, 0, 0].map(|b| b.to_string()));
        args.push("value".to_owned());
        args.extend(value.to_le_bytes().map(|b| b.to_string()));
        run_capture(Command::new("bpftool").args(&args)).expect("bpftool map update");
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Polls `done` every 100 ms until it holds or `limit` has passed; whether it held.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
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

impl Exposition {
    /// The series (name and label set) that appear more than once: an exposition must
    /// hold each series at most once.
    pub(crate) fn duplicate_series(&self) -> Vec<(String, BTreeMap<String, String>)> {
        let mut seen = std::collections::BTreeSet::new();
        let mut twice = Vec::new();
        for sample in &self.samples {
            let series = (sample.name.clone(), sample.labels.clone());
            if !seen.insert(series.clone()) {
                twice.push(series);
            }
        }
        twice
    }
}
