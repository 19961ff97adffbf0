//! The model every view reads: one immutable snapshot of a ruleset as the kernel reported it.
//!
//! A [`Ruleset`] is the seam between the part of the program that reads netfilter and
//! everything else, so it is plain owned data that says nothing of where it came from:
//! `iptables-save` text is one producer of it (`source::iptables_save`), and a netlink
//! reader is another. It keeps kernel order, so that every output built from it is
//! deterministic.

pub mod ipset;

use std::fmt;
use std::str::FromStr;

/// Packet and byte counters of a chain policy, a rule or a named counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted (layer 3, as the kernel counts them).
    pub bytes: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, other: Self) {
        // Saturating: a sum of kernel counters cannot meaningfully wrap, and a panic in a
        // collection is never acceptable.
        self.packets = self.packets.saturating_add(other.packets);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// The address family of a table (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// `NFPROTO_IPV4`: iptables, nftables `ip`.
    Ipv4,
    /// `NFPROTO_IPV6`: ip6tables, nftables `ip6`.
    Ipv6,
    /// `NFPROTO_INET`: nftables `inet`, IPv4 and IPv6 together.
    Inet,
    /// `NFPROTO_ARP`: arptables, nftables `arp`.
    Arp,
    /// `NFPROTO_BRIDGE`: ebtables, nftables `bridge`.
    Bridge,
    /// `NFPROTO_NETDEV`: nftables `netdev` (ingress and egress of one device).
    Netdev,
}

impl Family {
    /// The family's name as `nft` writes it (`ip`, `ip6`, `inet`, …): the `family` label
    /// of the nftables families.
    pub fn nft_name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    /// The label value used in accounting series and Munin names: `ipv4` and `ipv6` as
    /// the Munin plugin and nfprom name them, the nftables family name otherwise.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A base chain's policy: the verdict for packets no rule decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `NF_ACCEPT`.
    Accept,
    /// `NF_DROP`.
    Drop,
    /// `NF_QUEUE` (only the legacy backend accepts it as a policy).
    Queue,
    /// `XT_RETURN` (only the legacy backend accepts it as a policy).
    Return,
}

impl Policy {
    /// The text `iptables-save` prints, which is also the `policy` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
            Policy::Queue => "QUEUE",
            Policy::Return => "RETURN",
        }
    }
}

/// A policy word that is none of the kernel's verdicts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown chain policy {0:?} (expected ACCEPT, DROP, QUEUE, RETURN or -)")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACCEPT" => Ok(Policy::Accept),
            "DROP" => Ok(Policy::Drop),
            "QUEUE" => Ok(Policy::Queue),
            "RETURN" => Ok(Policy::Return),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a base chain sees packets (`enum nf_inet_hooks`, `NF_NETDEV_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    Prerouting,
    /// `NF_INET_LOCAL_IN`.
    Input,
    /// `NF_INET_FORWARD`.
    Forward,
    /// `NF_INET_LOCAL_OUT`.
    Output,
    /// `NF_INET_POST_ROUTING`.
    Postrouting,
    /// `NF_INET_INGRESS` / `NF_NETDEV_INGRESS`.
    Ingress,
    /// `NF_NETDEV_EGRESS`.
    Egress,
}

impl Hook {
    /// The hook's name as `nft` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }

    /// The hook of an iptables built-in chain, from its name (`INPUT`, …).
    pub fn of_builtin_chain(name: &str) -> Option<Hook> {
        match name {
            "PREROUTING" => Some(Hook::Prerouting),
            "INPUT" => Some(Hook::Input),
            "FORWARD" => Some(Hook::Forward),
            "OUTPUT" => Some(Hook::Output),
            "POSTROUTING" => Some(Hook::Postrouting),
            _ => None,
        }
    }
}

/// The kind of an nftables base chain (`nft_chain_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    /// `filter`.
    Filter,
    /// `nat`.
    Nat,
    /// `route`.
    Route,
}

impl ChainType {
    /// The type's name as `nft` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

/// One snapshot of every table a source reported, in the order it reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Tables in the source's order.
    pub tables: Vec<Table>,
    /// What the source read but could not understand; everything else is in the tables.
    pub unparsed: Vec<Unparsed>,
    /// The kernel's ruleset generation the snapshot is of, when the source reads it
    /// (nf_tables over netlink).
    pub generation: Option<u32>,
    /// The ipset sets, when the source is ipset.
    pub ipsets: Vec<ipset::Set>,
}

impl Ruleset {
    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Every chain with its table, in order.
    pub fn chains(&self) -> impl Iterator<Item = (&Table, &Chain)> + Clone {
        self.tables
            .iter()
            .flat_map(|table| table.chains.iter().map(move |chain| (table, chain)))
    }

    /// True when the source reported no table and no set.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.ipsets.is_empty()
    }

    /// Number of rules over all tables and chains.
    pub fn rule_count(&self) -> usize {
        self.chains().map(|(_, chain)| chain.rules.len()).sum()
    }

    /// Keeps only the chains `keep` selects, whole, and the tables left with a chain: what
    /// a view that reads a few chains needs kept between collections.
    pub fn retain_chains(&mut self, mut keep: impl FnMut(&Table, &Chain) -> bool) {
        for table in &mut self.tables {
            let mut chains = std::mem::take(&mut table.chains);
            chains.retain(|chain| keep(table, chain));
            table.chains = chains;
        }
        self.tables.retain(|table| !table.chains.is_empty());
    }
}

/// A table: `*filter` of an iptables dump, or an nftables `table inet filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The family it belongs to.
    pub family: Family,
    /// Its name.
    pub name: String,
    /// Chains in the source's order (declaration order for iptables).
    pub chains: Vec<Chain>,
    /// Named counters, quotas and sets (nftables only; empty for iptables).
    pub objects: Objects,
}

impl Table {
    /// An empty table.
    pub fn new(family: Family, name: impl Into<String>) -> Table {
        Table {
            family,
            name: name.into(),
            chains: Vec::new(),
            objects: Objects::default(),
        }
    }

    /// Looks a chain up by name.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// The stateful objects of an nftables table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    /// Named counters (`counter NAME`).
    pub counters: Vec<NamedCounter>,
    /// Quotas (`quota NAME`).
    pub quotas: Vec<Quota>,
    /// Named sets and maps (anonymous sets are part of their rule).
    pub sets: Vec<Set>,
}

/// A named counter object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedCounter {
    /// Its name.
    pub name: String,
    /// Its values.
    pub counters: Counters,
}

/// A quota object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// Its name.
    pub name: String,
    /// Bytes used so far.
    pub used_bytes: u64,
    /// Bytes allowed.
    pub limit_bytes: u64,
}

/// A named set or map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Its name.
    pub name: String,
    /// True for a map (elements carry data).
    pub is_map: bool,
    /// Number of elements (an interval counts once), when the source could tell.
    pub elements: Option<u64>,
}

/// A chain with its rules in kernel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// What makes it a base (built-in) chain; `None` for a user-defined chain, which only
    /// sees packets that rules send to it.
    pub base: Option<BaseChain>,
    /// Rules in kernel order.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// The `policy` label value: the policy of a base chain, `-` for a user-defined chain
    /// (as `iptables-save` prints it).
    pub fn policy_label(&self) -> &'static str {
        self.base.as_ref().map_or("-", |base| base.policy.as_str())
    }

    /// The policy counters (zero for user-defined chains, as the kernel keeps none).
    pub fn counters(&self) -> Counters {
        self.base
            .as_ref()
            .map_or_else(Counters::default, |b| b.counters)
    }
}

/// What a base chain has that a user-defined chain has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    /// Where it hooks in, when the source says (an iptables built-in chain's name does).
    pub hook: Option<Hook>,
    /// The verdict for packets no rule decided on.
    pub policy: Policy,
    /// What the policy counted.
    pub counters: Counters,
    /// The nftables chain type (`None` for iptables).
    pub chain_type: Option<ChainType>,
    /// The nftables hook priority (`None` for iptables).
    pub priority: Option<i32>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1-based position in its chain, as `iptables -L --line-numbers` shows it.
    pub position: u32,
    /// The kernel's handle of the rule, when the source knows it (netlink does,
    /// `iptables-save` does not).
    pub handle: Option<u64>,
    /// What the rule counted.
    pub counters: Counters,
    /// True when the rule counts at all: every iptables rule does, an nftables rule only
    /// with a `counter` expression (its `counters` are then the sum of them all).
    pub counted: bool,
    /// The rule's text after `-A CHAIN `, as `iptables-save` and `iptables -S` print it.
    pub text: String,
    /// The text without its comment matches, when it has any ([`Rule::label`]).
    pub stripped: Option<String>,
    /// The rule's comments, unquoted and unescaped, in rule order.
    pub comments: Vec<String>,
    /// The match parameters and target views interpret.
    pub matches: Matches,
}

impl Rule {
    /// The `rule` label: the text with every comment match and its separating space
    /// removed.
    pub fn label(&self) -> &str {
        self.stripped.as_deref().unwrap_or(&self.text)
    }
}

/// A parameter value, with the `!` that may precede it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// True when the match is inverted with `!`.
    pub negated: bool,
    /// The argument as printed (addresses carry their prefix length).
    pub value: Box<str>,
}

/// Which of a rule's parameters a [`Param`] is: those views interpret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    /// `-s`: source address with prefix length.
    Source,
    /// `-d`: destination address with prefix length.
    Destination,
    /// `-p`: protocol name or number.
    Protocol,
    /// `--sport` or `--sports`: source port(s).
    SourcePort,
    /// `--dport` or `--dports`: destination port(s).
    DestinationPort,
    /// `-i`: input interface.
    InInterface,
    /// `-o`: output interface.
    OutInterface,
    /// `-j` target or `-g` goto chain (never negated).
    Target,
}

/// The match parameters of a rule that views interpret, at most one of each [`Match`];
/// everything else stays in the text. Only the parameters a rule has take room: a field
/// per kind made every rule of a snapshot several times larger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches(Vec<(Match, Param)>);

impl Matches {
    /// The parameter of kind `kind`, if the rule has it.
    pub fn get(&self, kind: Match) -> Option<&Param> {
        self.0.iter().find(|(k, _)| *k == kind).map(|(_, p)| p)
    }

    /// Sets the parameter of kind `kind`, replacing one the rule already had (the last
    /// one counts, as for iptables).
    pub fn set(&mut self, kind: Match, param: Param) {
        match self.0.binary_search_by_key(&kind, |(k, _)| *k) {
            Ok(i) => self.0[i].1 = param,
            Err(i) => self.0.insert(i, (kind, param)),
        }
    }

    /// The target (`-j`) or goto chain (`-g`).
    pub fn target(&self) -> Option<&str> {
        self.get(Match::Target).map(|p| &*p.value)
    }
}

/// Something a source read but did not understand (a line of a dump).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    /// 1-based number of the (first physical) line.
    pub line: usize,
    /// Why it was not understood.
    pub error: LineError,
    /// The start of the line, cut to a length that is safe to log.
    pub excerpt: String,
}

impl fmt::Display for Unparsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line, self.error, self.excerpt)
    }
}

/// Why one line of a dump was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line has none of the shapes of the format.
    #[error("not a line of the iptables-save format")]
    Unknown,
    /// A chain, rule or COMMIT line before any `*table` line.
    #[error("outside of a table")]
    OutsideTable,
    /// A `*table` line while the previous table was not committed.
    #[error("table {0:?} was not closed with COMMIT")]
    Uncommitted(String),
    /// A `:CHAIN` line without a policy, or with a policy that is not a verdict.
    #[error("bad chain declaration: {0}")]
    BadChain(String),
    /// The same chain declared twice in one table.
    #[error("chain {0:?} declared twice")]
    DuplicateChain(String),
    /// A `[packets:bytes]` field that is not two unsigned integers.
    #[error("bad counters {0:?}")]
    BadCounters(String),
    /// A rule appended to a chain the table did not declare.
    #[error("rule for undeclared chain {0:?}")]
    UndeclaredChain(String),
    /// A rule whose arguments cannot be split (an unterminated quote).
    #[error("{0}")]
    BadArguments(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_parses_and_prints_back() {
        for policy in [Policy::Accept, Policy::Drop, Policy::Queue, Policy::Return] {
            assert_eq!(policy.as_str().parse::<Policy>(), Ok(policy));
            assert_eq!(policy.to_string(), policy.as_str());
        }
        for bad in ["-", "accept", "REJECT", ""] {
            assert_eq!(bad.parse::<Policy>(), Err(UnknownPolicy(bad.to_owned())));
        }
    }

    #[test]
    fn builtin_chain_names_give_their_hooks() {
        let hooks = [
            ("PREROUTING", Hook::Prerouting),
            ("INPUT", Hook::Input),
            ("FORWARD", Hook::Forward),
            ("OUTPUT", Hook::Output),
            ("POSTROUTING", Hook::Postrouting),
        ];
        for (name, hook) in hooks {
            assert_eq!(Hook::of_builtin_chain(name), Some(hook));
            assert_eq!(hook.as_str(), name.to_ascii_lowercase());
        }
        assert_eq!(Hook::of_builtin_chain("input"), None);
        assert_eq!(Hook::of_builtin_chain("KUBE-SERVICES"), None);
    }

    fn chain(name: &str, base: Option<BaseChain>) -> Chain {
        Chain {
            name: name.to_owned(),
            base,
            rules: Vec::new(),
        }
    }

    #[test]
    fn user_chains_have_policy_dash_and_no_counters() {
        let user = chain("user", None);
        assert_eq!(
            (user.policy_label(), user.counters()),
            ("-", Counters::default())
        );
        let counters = Counters {
            packets: 1,
            bytes: 2,
        };
        let input = chain(
            "INPUT",
            Some(BaseChain {
                hook: Some(Hook::Input),
                policy: Policy::Drop,
                counters,
                chain_type: None,
                priority: None,
            }),
        );
        assert_eq!((input.policy_label(), input.counters()), ("DROP", counters));
    }

    #[test]
    fn retaining_chains_drops_the_tables_left_empty() {
        let mut filter = Table::new(Family::Ipv4, "filter");
        filter.chains = vec![chain("INPUT", None), chain("ACCT4", None)];
        let mut nat = Table::new(Family::Ipv4, "nat");
        nat.chains = vec![chain("PREROUTING", None)];
        let mut ruleset = Ruleset {
            tables: vec![filter, nat],
            ..Ruleset::default()
        };
        ruleset.retain_chains(|table, chain| table.name == "filter" && chain.name == "ACCT4");
        let kept: Vec<(&str, &str)> = ruleset
            .chains()
            .map(|(t, c)| (t.name.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(kept, [("filter", "ACCT4")]);
        assert_eq!(ruleset.tables.len(), 1);
    }

    #[test]
    fn a_rule_without_comment_matches_is_its_own_label() {
        let mut rule = Rule {
            position: 1,
            handle: None,
            counters: Counters::default(),
            counted: true,
            text: "-m comment --comment x -j ACCEPT".to_owned(),
            stripped: None,
            comments: Vec::new(),
            matches: Matches::default(),
        };
        assert_eq!(rule.label(), rule.text);
        rule.stripped = Some("-j ACCEPT".to_owned());
        assert_eq!(rule.label(), "-j ACCEPT");
    }

    #[test]
    fn matches_keep_one_parameter_of_each_kind_whatever_the_order() {
        let param = |value: &str| Param {
            negated: false,
            value: value.into(),
        };
        let mut a = Matches::default();
        a.set(Match::Target, param("DROP"));
        a.set(Match::Source, param("10.0.0.1/32"));
        a.set(Match::Source, param("10.0.0.2/32"));
        let mut b = Matches::default();
        b.set(Match::Source, param("10.0.0.2/32"));
        b.set(Match::Target, param("DROP"));
        assert_eq!(a, b);
        assert_eq!(a.get(Match::Source), Some(&param("10.0.0.2/32")));
        assert_eq!((a.target(), a.get(Match::Protocol)), (Some("DROP"), None));
    }

    #[test]
    fn counters_add_saturating() {
        let mut sum = Counters {
            packets: u64::MAX - 1,
            bytes: 5,
        };
        sum += Counters {
            packets: 3,
            bytes: 7,
        };
        assert_eq!(
            sum,
            Counters {
                packets: u64::MAX,
                bytes: 12
            }
        );
    }
}
