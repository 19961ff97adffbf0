//! The files of `deploy/` checked by the tools that read them: `systemd-analyze verify` and
//! `security --offline=true` on the systemd units, `sh -n` and libcap's `capsh` on the OpenRC
//! script, `promtool check config`, `check rules` and `test rules` on the Prometheus files.
//! The unit's start (a non-root user holding only the unit's ambient capabilities) is
//! emulated with `setpriv`, as PID 1 here is not systemd, and the real binary so started must
//! read the real counters of a namespace; the socket unit's with `systemd-socket-activate`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::{EXPORTER, Exposition};
use crate::harness::{Ip, Netns, cannot_run, output_within, require_command, require_kernel};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "deploy";

/// Where the service files expect the binary; the tests put the one under test there instead.
const INSTALLED_BINARY: &str = "/usr/local/bin/netfilter_exporter";

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `command` succeeded and printed nothing but what `allowed` accepts; returns
/// its standard output.
fn assert_clean(command: &mut Command, allowed: impl Fn(&str) -> bool) -> String {
    let out = output(command);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    let complaints: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| !line.trim().is_empty() && !allowed(line))
        .collect();
    assert!(
        complaints.is_empty(),
        "{command:?} complained:\n{}",
        complaints.join("\n")
    );
    stdout
}

/// Copies `deploy/systemd/<files>` into a new directory, with the binary under test in place
/// of [`INSTALLED_BINARY`] (systemd-analyze checks that the command exists).
fn systemd_copy(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for file in files {
        let unit = read(&deploy("systemd").join(file));
        assert!(
            !unit.contains("ExecStart=") || unit.contains(INSTALLED_BINARY),
            "{file} does not start {INSTALLED_BINARY}"
        );
        let target = dir.path().join(file);
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create directory");
        std::fs::write(&target, unit.replace(INSTALLED_BINARY, EXPORTER)).expect("write unit");
    }
    dir
}

const SERVICE: &str = "netfilter_exporter.service";
const SOCKET: &str = "netfilter_exporter.socket";
const SOCKET_DROP_IN: &str = "netfilter_exporter.service.d/systemd-socket.conf";
const LEGACY_DROP_IN: &str = "netfilter_exporter.service.d/legacy-backend.conf";

fn systemd_analyze() -> Command {
    let mut command = Command::new("systemd-analyze");
    command.env("SYSTEMD_COLORS", "0").env("SYSTEMD_PAGER", "");
    command
}

#[test]
fn systemd_units_and_drop_ins_verify_without_a_complaint() {
    if !require_command("systemd-analyze") {
        return;
    }
    let dir = systemd_copy(&[SERVICE, SOCKET, SOCKET_DROP_IN, LEGACY_DROP_IN]);
    let verify = |dir: &Path| {
        let mut command = systemd_analyze();
        command
            .args(["verify", "--man=no"])
            .arg(dir.join(SERVICE))
            .arg(dir.join(SOCKET));
        command
    };
    assert_clean(&mut verify(dir.path()), |_| false);

    // The same check sees a mistake in a drop-in, which systemd would only log and ignore.
    let drop_in = dir.path().join(SOCKET_DROP_IN);
    let broken = read(&drop_in).replace("[Service]", "[Service]\nAmbientCapability=CAP_NET_RAW");
    std::fs::write(&drop_in, broken).expect("write drop-in");
    let out = output(&mut verify(dir.path()));
    assert!(
        text(&out.stderr).contains("Unknown key 'AmbientCapability'"),
        "{}",
        text(&out.stderr)
    );
}

/// `systemd-analyze security --offline=true`'s overall exposure level of the service in
/// `dir`, and its report.
fn exposure(dir: &Path) -> (String, String) {
    let report = assert_clean(
        systemd_analyze()
            .args(["security", "--offline=true", "--no-pager"])
            .arg(dir.join(SERVICE)),
        |_| true,
    );
    let level = report
        .lines()
        .find_map(|line| line.split_once(&format!("Overall exposure level for {SERVICE}: ")))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{report}"))
        .to_owned();
    (level, report)
}

#[test]
fn systemd_security_exposure_is_the_one_readme_states() {
    if !require_command("systemd-analyze") {
        return;
    }
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    for (files, what) in [
        (&[SERVICE][..], "the unit"),
        (&[SERVICE, LEGACY_DROP_IN][..], "with legacy-backend.conf"),
    ] {
        let dir = systemd_copy(files);
        let (level, report) = exposure(dir.path());
        let stated = format!("{what}: exposure level {level}");
        assert!(
            readme.contains(&stated),
            "README.md should say `{stated}`; the report:\n{report}"
        );
        let level: f64 = level.parse().expect("a number");
        assert!(
            level < 2.0,
            "{what}: exposure {level} (OK is below 2):\n{report}"
        );
    }
}

/// The values of `key=` in `unit`, space-separated lists joined.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(&prefix))
        .flat_map(|value| value.split_whitespace().map(str::to_owned))
        .collect()
}

/// The capability names of the unit and the drop-ins given, as setpriv spells them
/// (`net_admin`), after checking that the bounding set holds the ambient set and no more.
fn unit_capabilities(files: &[&str]) -> BTreeSet<String> {
    let lower = |values: Vec<String>| -> BTreeSet<String> {
        values
            .iter()
            .map(|cap| {
                cap.strip_prefix("CAP_")
                    .unwrap_or_else(|| panic!("capability {cap} without CAP_"))
                    .to_ascii_lowercase()
            })
            .collect()
    };
    let units: Vec<String> = files
        .iter()
        .map(|f| read(&deploy("systemd").join(f)))
        .collect();
    let all = |key: &str| -> Vec<String> {
        units
            .iter()
            .flat_map(|unit| unit_values(unit, key))
            .collect()
    };
    let ambient = lower(all("AmbientCapabilities"));
    assert_eq!(ambient, lower(all("CapabilityBoundingSet")), "{files:?}");
    for unit in &units {
        assert!(!unit.contains("User=root"), "{files:?} runs as root");
    }
    ambient
}

/// What `setpriv` does to emulate the unit's start: a user that is not root, no groups, the
/// unit's capabilities as ambient ones (and the bounding set limited to them), no new
/// privileges.
fn setpriv_args(capabilities: &BTreeSet<String>) -> Vec<String> {
    let list: String = capabilities.iter().map(|cap| format!(",+{cap}")).collect();
    vec![
        // In the range systemd takes dynamic users from; no such user exists here, as for
        // DynamicUser= before systemd allocates it.
        "--reuid=61184".into(),
        "--regid=61184".into(),
        "--clear-groups".into(),
        format!("--inh-caps=-all{list}"),
        format!("--ambient-caps=-all{list}"),
        format!("--bounding-set=-all{list}"),
        "--no-new-privs".into(),
    ]
}

/// `/proc/<pid>/status` field `key`.
fn status_field(pid: u32, key: &str) -> String {
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// The bit mask of capabilities named as setpriv names them, from their numbers in
/// linux/capability.h.
fn capability_mask(capabilities: &BTreeSet<String>) -> u64 {
    capabilities
        .iter()
        .map(|cap| match cap.as_str() {
            "dac_read_search" => 1 << 2,
            "net_admin" => 1 << 12,
            "net_raw" => 1 << 13,
            other => panic!("add the number of {other}"),
        })
        .sum()
}

/// Echo requests sent through the counted rules.
const PINGS: u32 = 6;

/// The sources the emulated service reads: iptables-save of both backends, and netlink.
const SOURCES: [&str; 3] = ["iptables", "iptables-legacy", "nftables"];

/// Whether `metrics` hold a collection of every one of `sources`.
fn collected(metrics: &Exposition, sources: &[&str]) -> bool {
    sources.iter().all(|source| {
        !metrics
            .find(
                "netfilter_exporter_collection_timestamp_seconds",
                &[("source", source)],
            )
            .is_empty()
    })
}

/// The exporter started as the unit `files` starts it, with `-t` [`SOURCES`], serving the
/// namespace `ns`, in which [`PINGS`] echo requests went through one counted rule per
/// backend; returns the exposition once every one of [`SOURCES`] has been collected, and
/// the exporter's log.
fn scrape_as_the_unit(ns: &Netns, files: &[&str]) -> (Exposition, String) {
    scrape_as_the_unit_with(
        ns,
        files,
        &["-t", "iptables,iptables-legacy,nftables"],
        |m| collected(m, &SOURCES),
    )
}

/// The same with the arguments `args` instead of `-t`, once `ready` holds.
fn scrape_as_the_unit_with(
    ns: &Netns,
    files: &[&str],
    args: &[&str],
    ready: impl Fn(&Exposition) -> bool,
) -> (Exposition, String) {
    let capabilities = unit_capabilities(files);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = ns.command("setpriv");
    command
        .args(setpriv_args(&capabilities))
        .arg(EXPORTER)
        .args([
            "--web.listen-address",
            "127.0.0.1:9455",
            "--collect-interval",
            "0.2",
        ])
        .args(args);
    let mut exporter = ns.spawn(command, &dir.path().join("exporter.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        exporter.assert_running();
        let metrics = ns
            .try_curl(&["http://127.0.0.1:9455/metrics"])
            .map(|body| Exposition::parse(&body));
        if let Some(metrics) = metrics.filter(&ready) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "no collection of every source within 30 s:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // The process is the one setpriv made: not root, no new privileges, and a bounding set
    // no larger than the unit's.
    let pid = exporter.id();
    let uid = status_field(pid, "Uid");
    assert!(uid.split_whitespace().all(|id| id == "61184"), "Uid {uid}");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    let bounding = u64::from_str_radix(&status_field(pid, "CapBnd"), 16).expect("hex");
    assert_eq!(
        bounding & !capability_mask(&capabilities),
        0,
        "CapBnd {bounding:x}"
    );
    let log = exporter.log();
    drop(exporter);
    (metrics, log)
}

/// `netfilter_exporter_collection_success` of `source`.
fn success_of(metrics: &Exposition, source: &str) -> f64 {
    metrics.value(
        "netfilter_exporter_collection_success",
        &[("source", source)],
    )
}

/// The packets of the one rule of `prefix`'s filter INPUT chain.
fn input_rule_packets(metrics: &Exposition, prefix: &str) -> f64 {
    metrics.sum(
        &format!("{prefix}_rule_packets_total"),
        &[("table", "filter"), ("chain", "INPUT")],
    )
}

#[test]
fn the_units_capabilities_read_real_counters_as_a_user_that_is_not_root() {
    if !require_kernel() || !require_command("setpriv") || !require_command("nft") {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    if !ns.succeeds("iptables-legacy", &["-w", "-L", "-n"])
        && !cannot_run("iptables-legacy does not work in a namespace")
    {
        return;
    }
    let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A INPUT -p icmp --icmp-type echo-request -j ACCEPT\nCOMMIT\n";
    ns.restore("iptables-restore", rules);
    ns.restore("iptables-legacy-restore", rules);
    let native = "table inet native {\n chain input {\n  type filter hook input priority 10;\n  \
                  icmp type echo-request counter comment \"pings\"\n }\n}\n";
    let out = ns.output("nft", &["-f", "-"], native);
    assert!(out.status.success(), "nft -f: {}", text(&out.stderr));
    ns.ping(Ip::V4, PINGS, 56);
    let pings = f64::from(PINGS);

    // The unit: nf_tables is read, by iptables-save and over netlink; the legacy backend
    // fails with a message that says why.
    let (metrics, log) = scrape_as_the_unit(&ns, &[SERVICE]);
    let success = |source: &str| success_of(&metrics, source);
    assert_eq!(success("iptables"), 1.0, "{log}");
    assert_eq!(input_rule_packets(&metrics, "iptables"), pings);
    assert_eq!(success("nftables"), 1.0, "{log}");
    assert_eq!(native_rule_packets(&metrics), pings);
    assert_eq!(success("iptables-legacy"), 0.0, "{log}");
    assert!(
        log.contains("/proc/net/ip_tables_names: Permission denied"),
        "{log}"
    );

    // Selected automatically, the legacy backends are left out, said once, and named by
    // netfilter_exporter_source_unknown, so that nothing fails for ever.
    let (metrics, log) = scrape_as_the_unit_with(&ns, &[SERVICE], &[], |m| {
        collected(m, &["iptables", "nftables"])
            && !m
                .find(
                    "netfilter_exporter_source_unknown",
                    &[("source", "ip6tables-legacy")],
                )
                .is_empty()
    });
    for source in ["iptables-legacy", "ip6tables-legacy"] {
        assert_eq!(
            metrics.value("netfilter_exporter_source_unknown", &[("source", source)]),
            1.0,
            "{log}"
        );
        assert!(
            metrics
                .find(
                    "netfilter_exporter_collection_success",
                    &[("source", source)]
                )
                .is_empty(),
            "{log}"
        );
    }
    assert_eq!(success_of(&metrics, "iptables"), 1.0, "{log}");
    assert_eq!(
        log.matches("cannot tell whether the source has tables")
            .count(),
        2,
        "{log}"
    );

    // With the legacy drop-in every source is read.
    let (metrics, log) = scrape_as_the_unit(&ns, &[SERVICE, LEGACY_DROP_IN]);
    for source in SOURCES {
        assert_eq!(
            metrics.value(
                "netfilter_exporter_collection_success",
                &[("source", source)]
            ),
            1.0,
            "{source}: {log}"
        );
    }
    assert_eq!(input_rule_packets(&metrics, "iptables"), pings);
    assert_eq!(input_rule_packets(&metrics, "iptables_legacy"), pings);
    assert_eq!(native_rule_packets(&metrics), pings);
}

/// The packets of the one rule of the native table loaded by the test above.
fn native_rule_packets(metrics: &Exposition) -> f64 {
    metrics.value(
        "nftables_rule_packets_total",
        &[("table", "native"), ("comment", "pings")],
    )
}

#[test]
fn without_the_capabilities_the_same_user_reads_nothing() {
    if !require_kernel() || !require_command("setpriv") {
        return;
    }
    // What makes the test above mean something: the uid alone reads no rules.
    let ns = Netns::new(NETNS_LABEL);
    let mut command = ns.command("setpriv");
    command
        .args(setpriv_args(&BTreeSet::new()))
        .args([EXPORTER, "dump", "-t", "iptables"]);
    let out = output_within(command, Duration::from_secs(60));
    assert!(!out.status.success());
    let metrics = Exposition::parse(&text(&out.stdout));
    assert_eq!(
        metrics.value(
            "netfilter_exporter_collection_success",
            &[("source", "iptables")]
        ),
        0.0
    );
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
}

/// The variables the OpenRC script sets, read by sourcing it with `sh` (OpenRC's builtins
/// are not called at the top level), with `preset` assignments before it as a conf.d file
/// makes them.
fn openrc_variables(preset: &str) -> Vec<String> {
    let script = deploy("openrc/netfilter_exporter");
    let names = "supervisor command command_args command_user capabilities no_new_privs";
    let program = format!(
        "{preset}\n. '{}'\nfor v in {names}; do eval \"printf '%s\\n' \\\"\\${{$v}}\\\"\"; done",
        script.display()
    );
    let stdout = assert_clean(
        Command::new("sh").args(["-e", "-u", "-c", &program]),
        |_| true,
    );
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn openrc_script_parses_and_grants_the_units_capabilities() {
    if !require_command("capsh") {
        return;
    }
    let script = deploy("openrc/netfilter_exporter");
    assert_clean(Command::new("sh").arg("-n").arg(&script), |_| false);
    assert!(read(&script).starts_with("#!/sbin/openrc-run\n"));

    let vars = openrc_variables("");
    let [supervisor, command, args, user, capabilities, no_new_privs] = vars.as_slice() else {
        panic!("unexpected variables {vars:?}");
    };
    assert_eq!(supervisor, "supervise-daemon");
    assert_eq!(command, INSTALLED_BINARY);
    assert_eq!(args, "");
    assert!(!user.is_empty() && !user.starts_with("root"), "{user}");
    assert_eq!(no_new_privs, "yes");

    // capsh reads the capabilities as supervise-daemon does (libcap's IAB text): they must
    // be the systemd unit's, as ambient capabilities.
    let ambient = |iab: &str| -> u64 {
        let stdout = assert_clean(
            Command::new("capsh").arg(format!("--iab={iab}")).args([
                "--",
                "-c",
                "grep ^CapAmb: /proc/self/status",
            ]),
            |_| true,
        );
        let hex = stdout.trim().trim_start_matches("CapAmb:").trim();
        u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("CapAmb {stdout}"))
    };
    assert_eq!(
        ambient(capabilities),
        capability_mask(&unit_capabilities(&[SERVICE]))
    );

    // The legacy setting the script's comment gives, from conf.d, replaces the default.
    let legacy = "^cap_net_admin,^cap_net_raw,^cap_dac_read_search";
    assert!(read(&script).contains(&format!("capabilities=\"{legacy}\"")));
    let vars = openrc_variables(&format!(
        "capabilities='{legacy}'\nnetfilter_exporter_args='--no-rule-metrics'"
    ));
    assert_eq!(vars[4], legacy);
    assert_eq!(vars[2], "--no-rule-metrics");
    assert_eq!(
        ambient(&vars[4]),
        capability_mask(&unit_capabilities(&[SERVICE, LEGACY_DROP_IN]))
    );
}

fn promtool() -> Command {
    let mut command = Command::new("promtool");
    command.current_dir(deploy("prometheus"));
    command
}

/// The rule files of `deploy/prometheus/` and their unit tests.
const RULE_FILES: [(&str, &str); 2] = [
    ("alerts.yml", "tests/alerts_test.yml"),
    ("recording.yml", "tests/recording_test.yml"),
];

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    if !require_command("promtool") {
        return;
    }
    let success = |line: &str| {
        let line = line.trim();
        line.starts_with("Checking ")
            || line.starts_with("SUCCESS")
            || RULE_FILES
                .iter()
                .any(|(_, tests)| line == format!("Unit Testing:  {tests}"))
    };
    let config = assert_clean(
        promtool().args(["check", "config", "prometheus.yml"]),
        success,
    );
    for (rules, tests) in RULE_FILES {
        // The configuration loads every rule file.
        assert!(config.contains(&format!("Checking {rules}")), "{config}");
        assert_clean(promtool().args(["check", "rules", rules]), success);
        assert_clean(promtool().args(["test", "rules", tests]), success);
    }
}

fn prometheus_yaml(path: &str) -> serde_norway::Value {
    serde_norway::from_str(&read(&deploy(path))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every rule of the groups of the rule file `deploy/<path>`.
pub(crate) fn prometheus_rules(path: &str) -> Vec<serde_norway::Value> {
    prometheus_yaml(path)["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_sequence().expect("rules"))
        .cloned()
        .collect()
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() {
    let rules = prometheus_rules("prometheus/alerts.yml");
    let alerts: BTreeSet<&str> = rules
        .iter()
        .filter_map(|rule| rule["alert"].as_str())
        .collect();
    assert!(alerts.len() >= 6, "{alerts:?}");

    let tests = prometheus_yaml("prometheus/tests/alerts_test.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests["tests"].as_sequence().expect("tests") {
        for check in case["alert_rule_test"]
            .as_sequence()
            .expect("alert_rule_test")
        {
            let name = check["alertname"].as_str().expect("alertname");
            let fires = check["exp_alerts"]
                .as_sequence()
                .is_some_and(|expected| !expected.is_empty());
            if fires { &mut firing } else { &mut quiet }.insert(name);
        }
    }
    for alert in &alerts {
        assert!(firing.contains(alert), "no test in which {alert} fires");
        assert!(
            quiet.contains(alert),
            "no test in which {alert} stays quiet"
        );
    }
    assert!(
        firing.is_subset(&alerts),
        "tests of unknown alerts: {firing:?}"
    );
}

#[test]
fn every_recording_rule_is_named_for_what_it_records_and_has_a_unit_test() {
    let rules = prometheus_rules("prometheus/recording.yml");
    let recorded: BTreeSet<&str> = rules
        .iter()
        .map(|rule| {
            let name = rule["record"].as_str().expect("a recording rule");
            let expr = rule["expr"].as_str().expect("expr");
            // level:metric:operations, the metric as the exporter names it (a counter's
            // `_total` taken off after rate()).
            let [level, metric, operations] = name.split(':').collect::<Vec<_>>()[..] else {
                panic!("{name} is not level:metric:operations");
            };
            assert!(!level.is_empty() && !operations.is_empty(), "{name}");
            let names: BTreeSet<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .collect();
            assert!(
                names.contains(metric) || names.contains(format!("{metric}_total").as_str()),
                "{name} does not record {metric}: {expr}"
            );
            name
        })
        .collect();
    assert!(recorded.len() >= 6, "{recorded:?}");

    // Each rule is evaluated and compared with at least one expected sample.
    let tests = prometheus_yaml("prometheus/tests/recording_test.yml");
    let tested: BTreeSet<&str> = tests["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .flat_map(|case| {
            case["promql_expr_test"]
                .as_sequence()
                .expect("promql_expr_test")
        })
        .filter(|check| {
            check["exp_samples"]
                .as_sequence()
                .is_some_and(|expected| !expected.is_empty())
        })
        .map(|check| check["expr"].as_str().expect("expr"))
        .collect();
    assert_eq!(tested, recorded);
}

/// The `ExecStart=` command line the socket drop-in sets (the last one, after the reset),
/// without the environment file's arguments, with the binary under test.
fn socket_drop_in_command() -> Vec<String> {
    let drop_in = read(&deploy("systemd").join(SOCKET_DROP_IN));
    let line = drop_in
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ExecStart="))
        .rfind(|value| !value.is_empty())
        .expect("an ExecStart= in the drop-in");
    line.split_whitespace()
        .filter(|word| *word != "$NETFILTER_EXPORTER_ARGS")
        .map(|word| {
            if word == INSTALLED_BINARY {
                EXPORTER
            } else {
                word
            }
            .to_owned()
        })
        .collect()
}

#[test]
fn the_socket_units_listener_serves_the_service_started_by_the_drop_in() {
    if !require_kernel()
        || !require_command("setpriv")
        || !require_command("systemd-socket-activate")
    {
        return;
    }
    let listen = unit_values(&read(&deploy("systemd").join(SOCKET)), "ListenStream");
    let [listen] = listen.as_slice() else {
        panic!("one ListenStream= expected: {listen:?}");
    };
    let command_line = socket_drop_in_command();
    assert_eq!(command_line[0], EXPORTER, "{command_line:?}");
    assert!(command_line.contains(&"--web.systemd-socket".to_owned()));

    let ns = Netns::new(NETNS_LABEL);
    ns.restore(
        "iptables-restore",
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -p icmp --icmp-type echo-request -j ACCEPT\nCOMMIT\n",
    );
    ns.ping(Ip::V4, PINGS, 56);

    // systemd-socket-activate binds as the socket unit does and passes the socket as
    // systemd does (LISTEN_FDS, LISTEN_PID of the process it becomes); setpriv then makes
    // the unit's user, and the exporter is started as the drop-in starts it.
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = ns.command("systemd-socket-activate");
    command
        .arg(format!("--listen={listen}"))
        .arg("setpriv")
        .args(setpriv_args(&unit_capabilities(&[SERVICE])))
        .args(&command_line)
        .args(["-t", "iptables", "--collect-interval", "0.2"]);
    let mut exporter = ns.spawn(command, &dir.path().join("exporter.log"));
    let url = format!("http://127.0.0.1:{listen}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        exporter.assert_running();
        let metrics = ns.try_curl(&[&url]).map(|body| Exposition::parse(&body));
        if let Some(metrics) =
            metrics.filter(|m| !m.find("iptables_rule_packets_total", &[]).is_empty())
        {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "no rule counters at {url} within 30 s:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // An exporter that bound the port itself would have found it taken and exited.
    assert_eq!(input_rule_packets(&metrics, "iptables"), f64::from(PINGS));
    drop(exporter);
}
