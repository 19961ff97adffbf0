//! Labels derived from the rule itself, as the older (iptables) nfprom exported them, for
//! rules of a chosen chain that carry no comment of an active grammar.
//!
//! - `direction`: `in` when the rule matches a destination address or destination port,
//!   else `out` when it matches a source address or source port, else `all`;
//! - `address`: the address of that side with its prefix length (`0.0.0.0/0` or `::/0`
//!   when the rule matches none), `!` in front when the match is inverted;
//! - `port`: the port(s) of that side as iptables prints them (`22`, `80,443`,
//!   `1024:65535`), empty when none;
//! - `l2proto`: `ipv4` or `ipv6`; `l3proto`: the `-p` protocol, or `all`.

use super::series::{Series, SeriesSet};
use super::{AccountingConfig, Problem};
use crate::ruleset::{Family, Match, Matches, Param, Ruleset};
use crate::source::SourceId;

/// `!value` for an inverted match.
fn shown(param: &Param) -> String {
    if param.negated {
        format!("!{}", param.value)
    } else {
        param.value.to_string()
    }
}

/// The labels of one rule, sorted by name.
fn derive(family: Family, matches: &Matches) -> Vec<(String, String)> {
    let side = |address, port| (matches.get(address), matches.get(port));
    let (direction, (address, port)) = match (
        side(Match::Destination, Match::DestinationPort),
        side(Match::Source, Match::SourcePort),
    ) {
        (destination @ ((Some(_), _) | (_, Some(_))), _) => ("in", destination),
        (_, source @ ((Some(_), _) | (_, Some(_)))) => ("out", source),
        _ => ("all", (None, None)),
    };
    let any = match family {
        Family::Ipv4 => "0.0.0.0/0",
        Family::Ipv6 => "::/0",
        // Rule parameters are read from iptables rules, which are of one of the two.
        Family::Inet | Family::Arp | Family::Bridge | Family::Netdev => "any",
    };
    let l3proto = matches
        .get(Match::Protocol)
        .map_or_else(|| "all".to_owned(), |p| shown(p).to_ascii_lowercase());
    vec![
        (
            "address".to_owned(),
            address.map_or_else(|| any.to_owned(), shown),
        ),
        ("direction".to_owned(), direction.to_owned()),
        ("l2proto".to_owned(), family.as_str().to_owned()),
        ("l3proto".to_owned(), l3proto),
        ("port".to_owned(), port.map(shown).unwrap_or_default()),
    ]
}

/// The rule-parameter series of the chosen chain, and the rules left out (two rules that
/// derive the same labels).
pub(super) fn param_view(
    rulesets: &[(SourceId, &Ruleset)],
    config: &AccountingConfig,
) -> (Vec<Series>, Vec<Problem>) {
    let mut set = SeriesSet::default();
    let Some(wanted) = config.rule_params_chain.as_deref() else {
        return (set.series, set.problems);
    };
    for located in super::rules(rulesets, |source, _, chain| {
        config.derives(source, chain) && chain.name == wanted
    }) {
        if located.rule.comments.iter().any(|c| config.claims(c)) {
            continue;
        }
        set.add(&located, derive(located.family, &located.rule.matches));
    }
    (set.series, set.problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(family: Family, rule: &str) -> Vec<(String, String)> {
        let text = format!("*filter\n:prometheus - [0:0]\n-A prometheus {rule}\nCOMMIT\n");
        let ruleset = crate::source::iptables_save::parse(family, &text);
        let (_, chain) = ruleset.chains().next().expect("one chain");
        derive(family, &chain.rules[0].matches)
    }

    fn values(list: &[(String, String)]) -> Vec<&str> {
        list.iter().map(|(_, v)| v.as_str()).collect()
    }

    #[test]
    fn destination_rules_are_in() {
        let l = labels(
            Family::Ipv4,
            "-d 203.0.113.140/32 -p tcp -m tcp --dport 22 -j RETURN",
        );
        assert_eq!(values(&l), ["203.0.113.140/32", "in", "ipv4", "tcp", "22"]);
    }

    #[test]
    fn source_rules_are_out() {
        let l = labels(
            Family::Ipv6,
            "-s 2001:db8::1/128 -p udp -m udp --sport 53 -j RETURN",
        );
        assert_eq!(values(&l), ["2001:db8::1/128", "out", "ipv6", "udp", "53"]);
    }

    #[test]
    fn catch_all_and_inverted() {
        let l = labels(Family::Ipv4, "-j RETURN");
        assert_eq!(values(&l), ["0.0.0.0/0", "all", "ipv4", "all", ""]);
        let l = labels(Family::Ipv4, "! -s 10.2.3.0/24 -p tcp -m tcp --dport 22");
        assert_eq!(values(&l), ["0.0.0.0/0", "in", "ipv4", "tcp", "22"]);
        let l = labels(Family::Ipv4, "! -s 10.2.3.0/24 -p tcp");
        assert_eq!(values(&l), ["!10.2.3.0/24", "out", "ipv4", "tcp", ""]);
    }
}
