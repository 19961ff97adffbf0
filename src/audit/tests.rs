use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::source::iptables_save;

fn allowlist(files: &[(&str, &str)]) -> Allowlist {
    let paths: Vec<(std::path::PathBuf, &str)> = files
        .iter()
        .map(|(name, text)| (Path::new("/cfg").join(name), *text))
        .collect();
    Allowlist::parse(paths.iter().map(|(p, t)| (p.as_path(), *t))).expect("valid allowlist")
}

/// A filter table with a base chain declared after a user chain, so that the order of the
/// lines cannot follow the declarations by accident.
const DUMP: &str = "*filter
:INPUT DROP [5:300]
:KUBE-FW - [0:0]
:FORWARD ACCEPT [0:0]
:DOCKER-USER - [0:0]
[1:60] -A INPUT -i lo -j ACCEPT
-A INPUT -m comment --comment \"ssh in\" -p tcp -m tcp --dport 22 -j ACCEPT
-A KUBE-FW -j DROP
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE
COMMIT
";

#[test]
fn lines_are_in_iptables_s_form_and_order() {
    let ruleset = iptables_save::parse(Family::Ipv4, DUMP);
    let filter = ruleset.table("filter").expect("filter");
    assert_eq!(
        lines(filter),
        [
            "-P INPUT DROP",
            "-P FORWARD ACCEPT",
            "-N KUBE-FW",
            "-N DOCKER-USER",
            "-A INPUT -i lo -j ACCEPT",
            "-A INPUT -m comment --comment \"ssh in\" -p tcp -m tcp --dport 22 -j ACCEPT",
            "-A KUBE-FW -j DROP",
            "-A FORWARD -j DOCKER-USER",
            "-A DOCKER-USER -j RETURN",
        ]
    );
}

#[test]
fn unexpected_lines_per_table_known_tables_first() {
    let mut dump = DUMP.to_owned();
    dump.push_str("*custom\n:X - [0:0]\nCOMMIT\n");
    let ruleset = iptables_save::parse(Family::Ipv4, &dump);
    let list = allowlist(&[
        ("filter", "^-A INPUT -i lo -j ACCEPT$\n--dport 22 \nDOCKER"),
        ("nat", "MASQUERADE$"),
        ("global", "^-P [A-Z]+ ACCEPT$\n^-N KUBE-"),
    ]);
    let findings = check_ruleset(&ruleset, &list);
    let got: Vec<(&str, Vec<&str>)> = findings
        .iter()
        .map(|t| {
            (
                t.table.as_str(),
                t.unexpected.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("filter", vec!["-P INPUT DROP", "-A KUBE-FW -j DROP"]),
            ("nat", vec![]),
            ("mangle", vec![]),
            ("raw", vec![]),
            ("security", vec![]),
            ("custom", vec!["-N X"]),
        ]
    );
}

#[test]
fn table_patterns_do_not_allow_other_tables() {
    let ruleset = iptables_save::parse(Family::Ipv4, DUMP);
    // MASQUERADE is allowed in filter only: the nat rule stays unexpected.
    let list = allowlist(&[("filter", "."), ("global", "^-P ")]);
    let findings = check_ruleset(&ruleset, &list);
    assert_eq!(
        findings[1].unexpected,
        ["-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE"]
    );
}

fn source_of(family: Family) -> SourceId {
    match family {
        Family::Ipv6 => SourceId::Ip6tables,
        _ => SourceId::Iptables,
    }
}

fn check(families: Vec<FamilyCheck>) -> Check {
    Check {
        families,
        map: None,
        finished_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
    }
}

fn family(family: Family, tables: &[(&str, &[&str])]) -> FamilyCheck {
    FamilyCheck {
        source: source_of(family),
        outcome: Ok(tables
            .iter()
            .map(|(table, lines)| TableFindings {
                table: (*table).to_owned(),
                unexpected: lines.iter().map(|l| (*l).to_owned()).collect(),
            })
            .collect()),
    }
}

fn failed(family: Family) -> FamilyCheck {
    FamilyCheck {
        source: source_of(family),
        outcome: Err(AuditError::Unparsed {
            count: 1,
            first: "line 3: not a line".to_owned(),
        }),
    }
}

#[test]
fn a_failed_family_fails_the_check_even_when_the_other_is_clean() {
    let clean = check(vec![family(Family::Ipv4, &[("filter", &[])])]);
    assert_eq!(clean.verdict(), Verdict::Clean);
    let dirty = check(vec![family(Family::Ipv4, &[("filter", &["-N X"])])]);
    assert_eq!(dirty.verdict(), Verdict::Unexpected);
    let failed_v6 = check(vec![
        family(Family::Ipv4, &[("filter", &[])]),
        failed(Family::Ipv6),
    ]);
    assert_eq!(failed_v6.verdict(), Verdict::Failed);
}

#[test]
fn a_dump_with_unparsed_lines_is_not_checked() {
    let ruleset = iptables_save::parse(
        Family::Ipv4,
        "*filter\n:INPUT ACCEPT [0:0]\ngarbage\nCOMMIT\n",
    );
    let err = check_dump(&ruleset, &Allowlist::default()).expect_err("incomplete");
    assert!(
        matches!(err, AuditError::Unparsed { count: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn text_and_json_findings() {
    let c = check(vec![
        family(Family::Ipv4, &[("filter", &["-N X"]), ("nat", &[])]),
        failed(Family::Ipv6),
    ]);
    assert_eq!(
        c.to_text(),
        "ipv4 filter -N X\nipv6 error: 1 lines of the dump were not understood, the first: line 3: not a line\n"
    );
    assert_eq!(
        c.to_json(),
        serde_json::json!({
            "verdict": "failed",
            "families": [
                {"family": "ipv4", "tables": [
                    {"table": "filter", "unexpected": ["-N X"]},
                    {"table": "nat", "unexpected": []},
                ]},
                {"family": "ipv6", "error": "1 lines of the dump were not understood, the first: line 3: not a line"},
            ],
        })
    );
}

#[test]
fn metrics_count_per_table_and_leave_out_failed_families() {
    let c = check(vec![
        family(Family::Ipv4, &[("filter", &["-N X", "-N Y"]), ("nat", &[])]),
        failed(Family::Ipv6),
    ]);
    let text =
        String::from_utf8(c.render().to_vec(crate::exposition::Format::Text)).expect("utf-8");
    assert_eq!(
        text,
        "# HELP netfilter_audit_unexpected_rules Lines of a table, in iptables -S form, that no allowlist pattern matched at the last check that listed it.
# TYPE netfilter_audit_unexpected_rules gauge
netfilter_audit_unexpected_rules{family=\"ipv4\",table=\"filter\"} 2
netfilter_audit_unexpected_rules{family=\"ipv4\",table=\"nat\"} 0
# HELP netfilter_audit_check_success 1 if the last check listed every table and read every allowlist, 0 if it failed.
# TYPE netfilter_audit_check_success gauge
netfilter_audit_check_success 0
# HELP netfilter_audit_last_check_timestamp_seconds Unix time at which the last check ended, successful or not.
# TYPE netfilter_audit_last_check_timestamp_seconds gauge
netfilter_audit_last_check_timestamp_seconds 1700000000.5
"
    );
}

#[test]
fn each_line_is_reported_once_when_it_appears_and_once_when_it_goes() {
    let mut tracker = Tracker::default();
    let line = |f: Family, t: &str, l: &str| (source_of(f), t.to_owned(), l.to_owned());
    let first = check(vec![
        family(Family::Ipv4, &[("filter", &["-N X"])]),
        family(Family::Ipv6, &[("nat", &["-N Y"])]),
    ]);
    let changes = tracker.update(&first);
    assert_eq!(
        changes.appeared,
        [
            line(Family::Ipv4, "filter", "-N X"),
            line(Family::Ipv6, "nat", "-N Y")
        ]
    );
    assert!(changes.gone.is_empty());
    assert_eq!(tracker.update(&first), Changes::default());
    // IPv6 failing says nothing of its lines; IPv4 lost one and gained one.
    let second = check(vec![
        family(Family::Ipv4, &[("filter", &["-N Z"])]),
        failed(Family::Ipv6),
    ]);
    let changes = tracker.update(&second);
    assert_eq!(changes.appeared, [line(Family::Ipv4, "filter", "-N Z")]);
    assert_eq!(changes.gone, [line(Family::Ipv4, "filter", "-N X")]);
    let third = check(vec![
        family(Family::Ipv4, &[("filter", &["-N Z"])]),
        family(Family::Ipv6, &[("nat", &[])]),
    ]);
    let changes = tracker.update(&third);
    assert!(changes.appeared.is_empty());
    assert_eq!(changes.gone, [line(Family::Ipv6, "nat", "-N Y")]);
}

#[test]
fn the_bpf_map_in_metrics_and_json() {
    let mut c = check(vec![family(Family::Ipv4, &[])]);
    c.map = Some(Ok(bpf::MapValues {
        blocked: 7,
        allowed: Some(2),
    }));
    let text =
        String::from_utf8(c.render().to_vec(crate::exposition::Format::Text)).expect("utf-8");
    for line in [
        "netfilter_audit_check_success 1\n",
        "netfilter_audit_bpf_map_read_success 1\n",
        "# TYPE netfilter_audit_bpf_blocked_attempts_total counter\n",
        "netfilter_audit_bpf_blocked_attempts_total 7\n",
        "netfilter_audit_bpf_allowed_attempts_total 2\n",
    ] {
        assert!(text.contains(line), "{line}{text}");
    }
    assert_eq!(
        c.to_json()["bpf_map"],
        serde_json::json!({"blocked": 7, "allowed": 2})
    );
    // A missing map is reported, and the check still succeeds.
    c.map = Some(Err(bpf::BpfError::Open {
        path: "/m".into(),
        reason: "gone".to_owned(),
    }));
    assert_eq!(c.verdict(), Verdict::Clean);
    let text =
        String::from_utf8(c.render().to_vec(crate::exposition::Format::Text)).expect("utf-8");
    assert!(
        text.contains("netfilter_audit_bpf_map_read_success 0\n"),
        "{text}"
    );
    assert!(!text.contains("attempts_total"), "{text}");
    assert_eq!(
        c.to_json()["bpf_map"]["error"],
        "cannot open pinned BPF map /m: gone"
    );
}

#[test]
fn native_nftables_tables_are_listed_by_chain_and_checked_against_their_own_file() {
    use crate::ruleset::{Chain, Table};
    let mut firewall = Table::new(Family::Inet, "firewall");
    for name in ["input", "extra"] {
        firewall.chains.push(Chain {
            name: name.to_owned(),
            base: None,
            rules: Vec::new(),
        });
    }
    let empty = Table::new(Family::Ipv6, "empty");
    assert_eq!(
        nftables_lines(&firewall),
        ["inet firewall input", "inet firewall extra"]
    );
    assert_eq!(nftables_lines(&empty), ["ip6 empty"]);
    let allowlist = Allowlist::parse([
        (Path::new("nftables"), "^inet firewall input$\n"),
        (Path::new("global"), "^ip6 \n"),
        (Path::new("filter"), "extra\n"),
    ])
    .expect("patterns");
    let ruleset = Ruleset {
        tables: vec![firewall, empty],
        ..Ruleset::default()
    };
    let findings = check_nftables(&ruleset, &allowlist);
    assert_eq!(findings[0].table, "inet firewall");
    assert_eq!(
        findings[0].unexpected,
        ["inet firewall extra"],
        "filter's patterns do not apply"
    );
    assert!(findings[1].unexpected.is_empty(), "global applies");
}

#[test]
fn a_multi_line_error_is_one_line_of_the_text_report() {
    let err = Allowlist::parse([(Path::new("/cfg/nat"), "(\n")]).expect_err("invalid");
    let c = check(vec![FamilyCheck {
        source: SourceId::Iptables,
        outcome: Err(AuditError::Allowlist(err)),
    }]);
    let text = c.to_text();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("ipv4 error: /cfg/nat:1: invalid pattern: ") && text.contains("\\n"),
        "{text}"
    );
    let json = c.to_json();
    let error = json["families"][0]["error"].as_str().expect("an error");
    assert!(error.lines().count() > 1, "{error}");
}
