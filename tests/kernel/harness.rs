//! The kernel tests' harness: a throwaway network namespace per test (or two joined by a
//! veth pair), commands run inside it or on a thread that entered it, real packets sent
//! over its loopback, the exporter started inside it; a bpffs; the checks that skip a test,
//! or fail it under `CI=true`, when this machine cannot run it; and what only these tests
//! ask of an exposition.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{EXPORTER, Exposition, Process, spawn_logged};

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

/// Whether namespaces can be created here (root, `ip netns add` works). Probed once per
/// process, by the first test to ask while the others wait, which first deletes the
/// namespaces killed runs left behind (see [`delete_leftovers`]). Returns false after
/// printing "skipped: …", or panics when `CI=true`.
pub(crate) fn require_kernel() -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        let uid = rustix::process::getuid();
        if !uid.is_root() {
            return Err(format!("not root (uid {})", uid.as_raw()));
        }
        delete_leftovers();
        Netns::try_new("probe").map(drop)
    });
    match probe {
        Ok(()) => true,
        Err(reason) => cannot_run(reason),
    }
}

/// Whether this process runs as root, which the test needs for `why`; skips or fails like
/// [`require_kernel`].
pub(crate) fn require_root(why: &str) -> bool {
    rustix::process::getuid().is_root() || cannot_run(&format!("not root: {why}"))
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

/// The start of every test namespace's name (see [`Netns::new`]).
const NETNS_PREFIX: &str = "nfe-";

/// Deletes the test namespaces (see [`Netns::new`]) whose process no longer runs: a test
/// binary killed (timeout, SIGKILL) before its guards dropped leaves them. Those of a live
/// process stay: this one's, whichever test made them, and those of another run at the
/// same time.
fn delete_leftovers() {
    let Ok(list) = run_capture(Command::new(ip_command()).args(["netns", "list"])) else {
        return;
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    // Lines are `name` or `name (id: N)`.
    for name in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
            continue;
        };
        // The label may hold dashes; the process id and the number hold none.
        let mut parts = rest.rsplitn(3, '-');
        let (Some(n), Some(pid), Some(label)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !label.is_empty() && number(pid) && number(n) && !Path::new("/proc").join(pid).exists() {
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
    /// Creates a namespace named `nfe-<label>-<pid>-<n>`, unique to this process by its
    /// number `n`, and brings its `lo` up. `label` names the test module, for whoever finds
    /// one left behind. Call [`require_kernel`] first; this panics when the namespace cannot
    /// be created.
    pub(crate) fn new(label: &str) -> Netns {
        Netns::try_new(label).expect("cannot create a network namespace")
    }

    fn try_new(label: &str) -> Result<Netns, String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{NETNS_PREFIX}{label}-{}-{}",
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

    /// Runs `f` on a thread of its own that entered the namespace (`setns` on its file in
    /// /run/netns), and returns what it returns. A thread's network namespace is its own:
    /// the sockets `f` opens are the namespace's, and the other threads stay where they are.
    pub(crate) fn on_thread<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = Path::new("/run/netns").join(&self.name);
        std::thread::spawn(move || {
            let file =
                std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the test namespace");
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
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
    /// Creates both namespaces (see [`Netns::new`] for `label`) and the link between them;
    /// panics on failure.
    pub(crate) fn new(label: &str) -> NetnsPair {
        let pair = NetnsPair {
            server: Netns::new(label),
            client: Netns::new(label),
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

/// What the kernel tests alone ask of an exposition.
impl Exposition {
    /// The sum of every sample named `name` whose labels include `labels`.
    pub(crate) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    /// Family name → type, from the `# TYPE` lines.
    pub(crate) fn types(&self) -> BTreeMap<&str, &str> {
        self.text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
            .collect()
    }

    /// The series (name and label set) that appear more than once: an exposition must
    /// hold each series at most once.
    pub(crate) fn duplicate_series(&self) -> Vec<(String, BTreeMap<String, String>)> {
        let mut seen = BTreeSet::new();
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

/// The restore inputs of the fixtures an nf_tables iptables loads (scripts/make-fixtures.sh;
/// the legacy ones left out), as (file name, whether IPv6, rules); at least five.
pub(crate) fn nf_tables_fixtures() -> Vec<(String, bool, String)> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&fixtures).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        if !name.ends_with(".input") || name.contains("legacy") {
            continue;
        }
        let rules = std::fs::read_to_string(&path).expect("fixture");
        found.push((name.clone(), name.starts_with("ipv6"), rules));
    }
    assert!(found.len() >= 5, "only {} fixtures", found.len());
    found
}
