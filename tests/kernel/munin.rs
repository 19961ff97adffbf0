//! The Munin plugin mode driven by Debian's real `munin-run`, inside a network namespace
//! holding the worked example of the traffic_accounting article in real iptables/ip6tables,
//! with real TCP packets counted by its rules.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::EXPORTER;
use crate::harness::{
    Netns, accounting_example4, accounting_example6, require_command, require_kernel, run_capture,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "munin";

/// Whether the test can run here: root, `ip netns`, `munin-run` and the rest. Fails under
/// `CI=true`, else prints why it skips.
fn can_run() -> bool {
    require_kernel()
        && ["munin-run", "iptables-restore", "ip6tables-restore", "bash"]
            .into_iter()
            .all(require_command)
}

/// `count` TCP connection attempts to `address` `port` from `ns`; nothing listens, so each is
/// one SYN and one RST, both through OUTPUT and INPUT of the loopback.
fn knock(ns: &Netns, address: &str, port: u16, count: usize) {
    let script = format!(
        "for i in $(seq {count}); do (exec 3<>/dev/tcp/{address}/{port}) 2>/dev/null; done; true"
    );
    ns.run("bash", &["-c", &script]);
}

/// Per tag (`web4_down`, …) of `chain`, the summed packets and bytes of its rules, as
/// `iptables -L -v -x -n` shows them.
fn tag_counters(ns: &Netns, iptables: &str, chain: &str) -> BTreeMap<String, (u64, u64)> {
    let mut tags = BTreeMap::new();
    for (packets, bytes, comment) in ns.rule_counters(iptables, chain) {
        let tag = comment
            .strip_prefix('=')
            .and_then(|c| c.split('=').next())
            .unwrap_or_else(|| panic!("rule without a tag in {chain}: {comment:?}"));
        let sum: &mut (u64, u64) = tags.entry(tag.to_owned()).or_default();
        sum.0 += packets;
        sum.1 += bytes;
    }
    tags
}

/// The example loaded, its addresses on the namespace's loopback, and known traffic sent.
fn example() -> Netns {
    let ns = Netns::new(NETNS_LABEL);
    ns.run("ip", &["addr", "add", "192.168.24.1/32", "dev", "lo"]);
    ns.run(
        "ip",
        &[
            "-6",
            "addr",
            "add",
            "2001:db8:f00d::1/128",
            "dev",
            "lo",
            "nodad",
        ],
    );
    ns.restore("iptables-restore", &accounting_example4(""));
    ns.restore("ip6tables-restore", &accounting_example6());
    knock(&ns, "192.168.24.1", 22, 1);
    knock(&ns, "192.168.24.1", 80, 3);
    knock(&ns, "192.168.24.1", 443, 2);
    knock(&ns, "2001:db8:f00d::1", 80, 4);
    knock(&ns, "2001:db8:f00d::1", 443, 5);
    ns
}

/// A plugin directory with the binary linked under `names`, and a plugin configuration.
struct Plugins {
    dir: tempfile::TempDir,
}

impl Plugins {
    fn new(names: &[&str], conf: &str) -> Plugins {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
        std::fs::create_dir(dir.path().join("conf")).expect("mkdir");
        for name in names {
            std::os::unix::fs::symlink(EXPORTER, dir.path().join("plugins").join(name))
                .expect("symlink");
        }
        std::fs::write(dir.path().join("conf").join("traffic_accounting"), conf)
            .expect("write conf");
        Plugins { dir }
    }

    /// `munin-run PLUGIN [COMMAND]` inside the namespace, whatever its exit status.
    fn munin_run(&self, ns: &Netns, plugin: &str, command: Option<&str>) -> Output {
        self.munin_command(ns, plugin, command)
            .output()
            .expect("munin-run")
    }

    /// The standard output of `munin-run PLUGIN [COMMAND]`, which must succeed.
    fn answer(&self, ns: &Netns, plugin: &str, command: Option<&str>) -> String {
        run_capture(&mut self.munin_command(ns, plugin, command)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `munin-run PLUGIN [COMMAND]` inside the namespace, not yet started.
    fn munin_command(&self, ns: &Netns, plugin: &str, command: Option<&str>) -> Command {
        let path = |sub: &str| self.dir.path().join(sub).to_string_lossy().into_owned();
        let mut run = ns.command("munin-run");
        run.args([
            "--ignore-systemd-properties",
            "--servicedir",
            &path("plugins"),
            "--sconfdir",
            &path("conf"),
            plugin,
        ]);
        run.args(command);
        run
    }
}

fn conf(section: &str, settings: &str) -> String {
    format!("[{section}]\nuser root\n{settings}")
}

/// The unit's value of `(packets, bytes)`.
fn value(what: &str, (packets, bytes): (u64, u64)) -> u64 {
    match what {
        "bits" => bytes * 8,
        "bytes" => bytes,
        _ => packets,
    }
}

fn assert_lines(actual: &str, expected: &str) {
    let actual: Vec<&str> = actual.lines().collect();
    let expected: Vec<&str> = expected.lines().collect();
    for (n, (a, e)) in actual.iter().zip(&expected).enumerate() {
        assert_eq!(a, e, "line {}", n + 1);
    }
    assert_eq!(actual.len(), expected.len(), "{actual:#?}");
}

fn single_config(name: &str, label: &str) -> String {
    format!("{name}.label {label}\n{name}.type DERIVE\n{name}.min 0\n")
}

fn pair_config(down: &str, up: &str, label: &str) -> String {
    format!(
        "{down}.label {label}\n{down}.type DERIVE\n{down}.min 0\n{down}.graph no\n\
         {up}.label {label}\n{up}.type DERIVE\n{up}.min 0\n{up}.negative {down}\n"
    )
}

fn graph_head(title: &str, what: &str, pair: bool) -> String {
    let direction = if pair { " in (-) / out (+)" } else { "" };
    format!(
        "graph_title {title}\ngraph_args --base 1000\n\
         graph_vlabel {what}{direction} per ${{graph_period}}\ngraph_category network\n"
    )
}

const SSH: &str = "Unauthorized SSH traffic received";
const WEB4: &str = "Combined web traffic to/from local 80/443";
const WEB6: &str = "Web traffic to/from local port 80";
const WEB6SSL: &str = "Web traffic to/from local port 443";

#[test]
fn multigraph_in_bits_bytes_and_packets() {
    if !can_run() {
        return;
    }
    let ns = example();
    let v4 = tag_counters(&ns, "iptables", "ACCT4");
    let v6 = tag_counters(&ns, "ip6tables", "ACCT6");
    // Known traffic: every attempt is one SYN and one RST, each counted in OUTPUT and INPUT.
    for (counters, tag, packets) in [
        (&v4, "unauthssh", 2),
        (&v4, "web4_down", 10),
        (&v4, "web4_up", 10),
        (&v6, "web6_down", 8),
        (&v6, "web6_up", 8),
        (&v6, "web6ssl_down", 10),
        (&v6, "web6ssl_up", 10),
    ] {
        assert_eq!(counters[tag].0, packets, "{tag}: {counters:?}");
    }
    for what in ["bits", "bytes", "packets"] {
        let plugins = Plugins::new(
            &["traffic_accounting"],
            &conf(
                "traffic_accounting",
                &format!("env.what {what}\nenv.multigraph yes\nenv.iptables /usr/sbin/iptables\n"),
            ),
        );
        let config = plugins.answer(&ns, "traffic_accounting", Some("config"));
        let expected = [
            "multigraph traffic_accounting_ipv4\n".to_owned(),
            graph_head("IPv4 traffic accounting", what, true),
            single_config("unauthssh", SSH),
            pair_config("web4_down", "web4_up", WEB4),
            "multigraph traffic_accounting_ipv4.unauthssh\n".to_owned(),
            graph_head(SSH, what, false),
            single_config("unauthssh", SSH),
            "multigraph traffic_accounting_ipv4.web4\n".to_owned(),
            graph_head(WEB4, what, true),
            pair_config("down", "up", WEB4),
            "multigraph traffic_accounting_ipv6\n".to_owned(),
            graph_head("IPv6 traffic accounting", what, true),
            pair_config("web6_down", "web6_up", WEB6),
            pair_config("web6ssl_down", "web6ssl_up", WEB6SSL),
            "multigraph traffic_accounting_ipv6.web6\n".to_owned(),
            graph_head(WEB6, what, true),
            pair_config("down", "up", WEB6),
            "multigraph traffic_accounting_ipv6.web6ssl\n".to_owned(),
            graph_head(WEB6SSL, what, true),
            pair_config("down", "up", WEB6SSL),
        ]
        .concat();
        assert_lines(&config, &expected);

        let fetch = plugins.answer(&ns, "traffic_accounting", None);
        let v = |counters: &BTreeMap<String, (u64, u64)>, tag: &str| value(what, counters[tag]);
        let expected = format!(
            "multigraph traffic_accounting_ipv4\n\
             unauthssh.value {ssh}\nweb4_down.value {w4d}\nweb4_up.value {w4u}\n\
             multigraph traffic_accounting_ipv4.unauthssh\nunauthssh.value {ssh}\n\
             multigraph traffic_accounting_ipv4.web4\ndown.value {w4d}\nup.value {w4u}\n\
             multigraph traffic_accounting_ipv6\n\
             web6_down.value {w6d}\nweb6_up.value {w6u}\n\
             web6ssl_down.value {w6sd}\nweb6ssl_up.value {w6su}\n\
             multigraph traffic_accounting_ipv6.web6\ndown.value {w6d}\nup.value {w6u}\n\
             multigraph traffic_accounting_ipv6.web6ssl\ndown.value {w6sd}\nup.value {w6su}\n",
            ssh = v(&v4, "unauthssh"),
            w4d = v(&v4, "web4_down"),
            w4u = v(&v4, "web4_up"),
            w6d = v(&v6, "web6_down"),
            w6u = v(&v6, "web6_up"),
            w6sd = v(&v6, "web6ssl_down"),
            w6su = v(&v6, "web6ssl_up"),
        );
        assert_lines(&fetch, &expected);
    }
}

#[test]
fn wildcard_symlinks_without_multigraph() {
    if !can_run() {
        return;
    }
    let ns = example();
    let v4 = tag_counters(&ns, "iptables", "ACCT4");
    let v6 = tag_counters(&ns, "ip6tables", "ACCT6");
    let links = [
        "traffic_accounting",
        "traffic_accounting_ipv4_unauthssh",
        "traffic_accounting_ipv4_web4",
        "traffic_accounting_ipv6_web6",
        "traffic_accounting_ipv6_web6ssl",
    ];
    let plugins = Plugins::new(
        &links,
        &conf(
            "traffic_accounting*",
            "env.what packets\nenv.multigraph no\n",
        ),
    );
    assert_lines(
        &plugins.answer(&ns, "traffic_accounting", Some("suggest")),
        "ipv4_unauthssh\nipv4_web4\nipv6_web6\nipv6_web6ssl\n",
    );
    assert_eq!(
        plugins.answer(&ns, "traffic_accounting", Some("autoconf")),
        "yes\n"
    );
    // Without multigraph the bare name cannot graph anything, and says why.
    let bare = plugins.munin_run(&ns, "traffic_accounting", None);
    assert!(!bare.status.success());
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("traffic_accounting_<ipv4|ipv6>_<tag>")
            && String::from_utf8_lossy(&bare.stderr).contains("MUNIN_CAP_MULTIGRAPH=1"),
        "{bare:?}"
    );

    let config = plugins.answer(&ns, "traffic_accounting_ipv4_unauthssh", Some("config"));
    assert_lines(
        &config,
        &(graph_head(SSH, "packets", false) + &single_config("unauthssh", SSH)),
    );
    assert_lines(
        &plugins.answer(&ns, "traffic_accounting_ipv4_unauthssh", None),
        &format!("unauthssh.value {}\n", v4["unauthssh"].0),
    );
    for (link, title, counters, tag) in [
        ("traffic_accounting_ipv4_web4", WEB4, &v4, "web4"),
        ("traffic_accounting_ipv6_web6", WEB6, &v6, "web6"),
        ("traffic_accounting_ipv6_web6ssl", WEB6SSL, &v6, "web6ssl"),
    ] {
        assert_lines(
            &plugins.answer(&ns, link, Some("config")),
            &(graph_head(title, "packets", true) + &pair_config("down", "up", title)),
        );
        assert_lines(
            &plugins.answer(&ns, link, None),
            &format!(
                "down.value {}\nup.value {}\n",
                counters[&format!("{tag}_down")].0,
                counters[&format!("{tag}_up")].0
            ),
        );
    }
}

#[test]
fn awkward_tags_an_empty_chain_a_missing_chain_and_a_missing_binary() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore(
        "iptables-restore",
        "*mangle\n:OUTPUT ACCEPT [0:0]\n:ACCT4 - [0:0]\n-A OUTPUT -j ACCT4\n\
         -A ACCT4 -o lo -p icmp --icmp-type echo-request -m comment --comment \"=a.b= dotted\"\n\
         -A ACCT4 -o lo -p icmp --icmp-type echo-request -m comment --comment \"=a-b= dashed\"\n\
         -A ACCT4 -o lo -p icmp --icmp-type echo-request -m comment --comment \"=lone_up=\"\n\
         -A ACCT4 -o lo -p icmp\n\
         COMMIT\n",
    );
    ns.restore("ip6tables-restore", "*filter\n:ACCT6 - [0:0]\nCOMMIT\n");
    ns.run("ping", &["-c", "2", "-i", "0.2", "127.0.0.1"]);
    let plugins = Plugins::new(
        &["traffic_accounting"],
        &conf("traffic_accounting", "env.what packets\n"),
    );
    // The empty ACCT6 graphs nothing and is no error; every ACCT4 rule saw both requests.
    assert_eq!(
        plugins.answer(&ns, "traffic_accounting", Some("autoconf")),
        "yes\n"
    );
    assert_lines(
        &plugins.answer(&ns, "traffic_accounting", None),
        "multigraph traffic_accounting_ipv4\n\
         a_b.value 2\na_b_2.value 2\nlone_up.value 2\n\
         multigraph traffic_accounting_ipv4.a_b\na_b.value 2\n\
         multigraph traffic_accounting_ipv4.a_b_2\na_b.value 2\n\
         multigraph traffic_accounting_ipv4.lone\nup.value 2\n",
    );

    // A chain that does not exist: autoconf says so; fetch leaves it out and tells stderr.
    let missing = Plugins::new(
        &["traffic_accounting"],
        &conf("traffic_accounting", "env.chain6 NOPE6\n"),
    );
    assert_eq!(
        missing.answer(&ns, "traffic_accounting", Some("autoconf")),
        "no (chain NOPE6 not found)\n"
    );
    let fetch = missing.munin_run(&ns, "traffic_accounting", None);
    assert!(fetch.status.success());
    let stdout = String::from_utf8_lossy(&fetch.stdout);
    assert!(
        stdout.starts_with("multigraph traffic_accounting_ipv4\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("ipv6"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&fetch.stderr).contains("chain NOPE6 not found"),
        "{fetch:?}"
    );

    // A binary that does not exist.
    let nobinary = Plugins::new(
        &["traffic_accounting"],
        &conf(
            "traffic_accounting",
            "env.ip6tables /nonexistent/ip6tables\n",
        ),
    );
    assert_eq!(
        nobinary.answer(&ns, "traffic_accounting", Some("autoconf")),
        "no (/nonexistent/ip6tables-save: not found)\n"
    );
    let fetch = nobinary.munin_run(&ns, "traffic_accounting", None);
    assert!(!fetch.status.success());
    assert!(
        String::from_utf8_lossy(&fetch.stderr).contains("/nonexistent/ip6tables-save: not found"),
        "{fetch:?}"
    );

    // Only ACCT4 exists: the default ACCT6's absence is no reason to say no, and with no
    // chain at all the answer names the first missing one.
    ns.run("ip6tables", &["-X", "ACCT6"]);
    assert_eq!(
        plugins.answer(&ns, "traffic_accounting", Some("autoconf")),
        "yes\n"
    );
    ns.run("iptables", &["-t", "mangle", "-F"]);
    ns.run("iptables", &["-t", "mangle", "-X", "ACCT4"]);
    assert_eq!(
        plugins.answer(&ns, "traffic_accounting", Some("autoconf")),
        "no (chain ACCT4 not found)\n"
    );
}

#[test]
fn the_binary_carries_munin_node_configures_markers() {
    let binary = std::fs::read(Path::new(EXPORTER)).expect("read binary");
    for marker in [
        "\n#%# family=auto\n",
        "\n#%# capabilities=autoconf suggest\n",
    ] {
        assert!(
            binary.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "{marker:?} not in {EXPORTER}"
        );
    }
}
