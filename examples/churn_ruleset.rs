//! Prints the `iptables-restore --noflush` input that moves the endpoints of a ruleset's
//! first services to a new version, as kube-proxy does during a rollout, so that
//! scripts/bench-churn.sh can change a ruleset the way a live cluster changes it.
//!
//! For each of the first SERVICES `KUBE-SVC-*` chains of the dump that jump to `KUBE-SEP-*`
//! chains, every chain jumping to those endpoint chains (the `KUBE-SVC-*` chain, and a
//! `KUBE-SVL-*` one for a local traffic policy) is flushed and written again with jumps to
//! new endpoint chains; those hold the original endpoint's rules with a new pod IP; the
//! endpoint chains of VERSION - 1 and the dump's own are deleted. Names and addresses follow
//! from the original names and VERSION alone, so versions 1, 2, 3… apply one after another
//! without reading the ruleset again, and one version may move more services than the one
//! before did: the chains of those not moved yet are the dump's own.
//!
//! Usage: `churn_ruleset NAT_DUMP SERVICES VERSION`, where NAT_DUMP is the output of
//! `iptables-save -t nat` (without counters) before the first version was applied.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::process::ExitCode;

const USAGE: &str = "usage: churn_ruleset NAT_DUMP SERVICES VERSION";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, services, version] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (Ok(services), Ok(version)) = (services.parse::<usize>(), version.parse::<u64>()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if version == 0 {
        eprintln!("churn_ruleset: VERSION starts at 1, the dump being version 0");
        return ExitCode::from(2);
    }
    let dump = match std::fs::read_to_string(path) {
        Ok(dump) => dump,
        Err(e) => {
            eprintln!("churn_ruleset: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let restore = match churn(&dump, services, version) {
        Ok(restore) => restore,
        Err(e) => {
            eprintln!("churn_ruleset: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::io::stdout().lock().write_all(restore.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("churn_ruleset: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The chains of a dump with their rules (what follows `-A CHAIN `), in dump order.
fn chains(dump: &str) -> Vec<(&str, Vec<&str>)> {
    let mut chains: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for line in dump.lines() {
        let Some((chain, rule)) = line.strip_prefix("-A ").and_then(|l| l.split_once(' ')) else {
            continue;
        };
        let i = *index.entry(chain).or_insert_with(|| {
            chains.push((chain, Vec::new()));
            chains.len() - 1
        });
        chains[i].1.push(rule);
    }
    chains
}

/// The chain a rule jumps to.
fn target(rule: &str) -> Option<&str> {
    let mut words = rule.split_whitespace();
    words.find(|&w| w == "-j")?;
    words.next()
}

/// The pod IP of an endpoint chain: the address its DNAT rule sends traffic to.
fn pod_ip<'a>(rules: &[&'a str]) -> Option<&'a str> {
    let mut words = rules.iter().flat_map(|r| r.split_whitespace());
    words.find(|&w| w == "--to-destination")?;
    Some(words.next()?.split_once(':')?.0)
}

/// The name and pod IP of endpoint chain `original` at `version`: `KUBE-SEP-` and 16
/// characters of base32 of a SHA-256, as kube-proxy names its chains, and an address of the
/// pod range.
fn moved(original: &str, version: u64) -> (String, String) {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{original} {version}").as_bytes(),
    );
    let d = digest.as_ref();
    let bits = d[..10]
        .iter()
        .fold(0u128, |all, &b| all << 8 | u128::from(b));
    let name: String = (0..16)
        .map(|i| ALPHABET[(bits >> (75 - 5 * i)) as usize & 31] as char)
        .collect();
    let ip = format!("10.244.{}.{}", d[10], 1 + d[11] % 254);
    (format!("KUBE-SEP-{name}"), ip)
}

/// `rule` of the dump with endpoint chain `original` (pod IP `ip`) moved to `version`.
fn rewritten(rule: &str, original: &str, ip: &str, version: u64) -> String {
    let (name, new_ip) = moved(original, version);
    // Preceded by a space and followed by the port or prefix length, so that no longer
    // address holding this one as a part is touched.
    rule.replace(original, &name)
        .replace(&format!(" {ip}:"), &format!(" {new_ip}:"))
        .replace(&format!(" {ip}/"), &format!(" {new_ip}/"))
}

/// The restore input moving the endpoints of the first `services` services of `dump` to
/// `version`.
fn churn(dump: &str, services: usize, version: u64) -> Result<String, String> {
    let chains = chains(dump);
    let rules_of: HashMap<&str, &[&str]> = chains.iter().map(|(c, r)| (*c, r.as_slice())).collect();
    let jumps_to_endpoint = |rules: &[&str]| {
        rules
            .iter()
            .any(|r| target(r).is_some_and(|t| t.starts_with("KUBE-SEP-")))
    };
    let chosen: Vec<&(&str, Vec<&str>)> = chains
        .iter()
        .filter(|(chain, rules)| chain.starts_with("KUBE-SVC-") && jumps_to_endpoint(rules))
        .take(services)
        .collect();
    if chosen.len() < services {
        return Err(format!(
            "the dump has {} services with endpoints, not {services}",
            chosen.len()
        ));
    }
    // Each endpoint chain of the chosen services, with its pod IP, in dump order.
    let mut endpoints: Vec<(&str, &str)> = Vec::new();
    let mut seen = HashSet::new();
    for (_, rules) in &chosen {
        for endpoint in rules.iter().filter_map(|r| target(r)) {
            if endpoint.starts_with("KUBE-SEP-") && seen.insert(endpoint) {
                let ip = rules_of
                    .get(endpoint)
                    .and_then(|rules| pod_ip(rules))
                    .ok_or_else(|| format!("{endpoint} has no DNAT rule in the dump"))?;
                endpoints.push((endpoint, ip));
            }
        }
    }
    let ip_of: HashMap<&str, &str> = endpoints.iter().copied().collect();
    // Every chain that jumps to a moved endpoint is written again.
    let referring: Vec<&(&str, Vec<&str>)> = chains
        .iter()
        .filter(|(_, rules)| {
            rules
                .iter()
                .any(|r| target(r).is_some_and(|t| ip_of.contains_key(t)))
        })
        .collect();

    // Declarations first, then rules, then deletions, as kube-proxy writes a restore.
    let (mut declared, mut added, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    for (chain, rules) in &referring {
        // Declared again under --noflush, a chain is flushed.
        declared.push(format!(":{chain} - [0:0]"));
        for rule in rules {
            let rule = match target(rule).and_then(|t| Some((t, *ip_of.get(t)?))) {
                Some((endpoint, ip)) => rewritten(rule, endpoint, ip, version),
                None => (*rule).to_owned(),
            };
            added.push(format!("-A {chain} {rule}"));
        }
    }
    for &(endpoint, ip) in &endpoints {
        let (name, _) = moved(endpoint, version);
        declared.push(format!(":{name} - [0:0]"));
        for rule in rules_of[endpoint] {
            added.push(format!(
                "-A {name} {}",
                rewritten(rule, endpoint, ip, version)
            ));
        }
        // The previous version's chain, or the dump's own for services not moved before:
        // whichever is absent is created by its declaration and deleted at once, as
        // kube-proxy deletes stale chains.
        let mut previous = vec![endpoint.to_owned()];
        if version > 1 {
            previous.push(moved(endpoint, version - 1).0);
        }
        for old in previous {
            declared.push(format!(":{old} - [0:0]"));
            deleted.push(format!("-X {old}"));
        }
    }
    let lines = [
        vec!["*nat".to_owned()],
        declared,
        added,
        deleted,
        vec!["COMMIT\n".to_owned()],
    ];
    Ok(lines.concat().join("\n"))
}
