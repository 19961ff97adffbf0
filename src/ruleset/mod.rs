//! The model every view reads: one immutable snapshot of a ruleset as the kernel reported it.
//!
//! A [`Ruleset`] is the seam between the privileged part of the program (which runs
//! `iptables-save`) and everything else, so it is plain data: serialisable, cheap to share
//! behind an `Arc`, and kept in kernel order so that every output built from it is
//! deterministic.

mod iptables_save;
mod tokens;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use iptables_save::parse;
pub use tokens::{Token, tokenize};

/// Packet and byte counters of a chain policy or a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The address family a ruleset belongs to (`NFPROTO_IPV4` / `NFPROTO_IPV6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// `NFPROTO_IPV4`: iptables.
    Ipv4,
    /// `NFPROTO_IPV6`: ip6tables.
    Ipv6,
}

impl Family {
    /// The label value used in metrics and Munin names: `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chain's policy as `iptables-save` prints it after the chain name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Policy {
    /// `NF_ACCEPT`.
    Accept,
    /// `NF_DROP`.
    Drop,
    /// `NF_QUEUE` (only the legacy backend accepts it as a policy).
    Queue,
    /// `XT_RETURN` (only the legacy backend accepts it as a policy).
    Return,
    /// A user-defined chain, which has no policy; `iptables-save` prints `-`.
    None,
}

impl Policy {
    /// The text `iptables-save` prints, which is also the `policy` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
            Policy::Queue => "QUEUE",
            Policy::Return => "RETURN",
            Policy::None => "-",
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
            "-" => Ok(Policy::None),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One snapshot of every table a source reported, in the order it reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Tables in the order of the dump.
    pub tables: Vec<Table>,
    /// Lines the parser did not understand; everything else is still in `tables`.
    pub unparsed: Vec<Unparsed>,
}

impl Ruleset {
    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Number of rules over all tables and chains.
    pub fn rule_count(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum()
    }
}

/// A table (`*filter`, `*nat`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The table's name without the `*`.
    pub name: String,
    /// Chains in declaration order.
    pub chains: Vec<Chain>,
}

impl Table {
    /// Looks a chain up by name.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
}

/// A chain with its policy counters and its rules in kernel order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// The chain's name.
    pub name: String,
    /// Its policy ([`Policy::None`] for user-defined chains).
    pub policy: Policy,
    /// The policy counters (always zero for user-defined chains, as the kernel keeps none).
    pub counters: Counters,
    /// Rules in kernel order.
    pub rules: Vec<Rule>,
}

/// One rule: its counters, its text and the parameters later views need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's counters.
    pub counters: Counters,
    /// The rule's text after `-A CHAIN `, exactly as `iptables-save` printed it.
    pub text: String,
    /// The text with every `-m comment --comment …` match and its separating space removed;
    /// `None` when the rule has no comment, so that the common case costs no second string.
    pub uncommented: Option<String>,
    /// The arguments of every `--comment`, unquoted and unescaped, in rule order.
    pub comments: Vec<String>,
    /// The match parameters and target.
    pub matches: Matches,
}

impl Rule {
    /// The rule's text without its comment matches: the `rule` label.
    pub fn text_without_comments(&self) -> &str {
        self.uncommented.as_deref().unwrap_or(&self.text)
    }
}

/// A parameter value, with the `!` that may precede it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// True when the match is inverted with `!`.
    pub negated: bool,
    /// The argument as printed (addresses carry their prefix length).
    pub value: String,
}

/// The match parameters of a rule that views interpret; everything else stays in the text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matches {
    /// `-s`: source address with prefix length.
    pub source: Option<Param>,
    /// `-d`: destination address with prefix length.
    pub destination: Option<Param>,
    /// `-p`: protocol name or number.
    pub protocol: Option<Param>,
    /// `--sport` or `--sports`: source port(s).
    pub source_port: Option<Param>,
    /// `--dport` or `--dports`: destination port(s).
    pub destination_port: Option<Param>,
    /// `-i`: input interface.
    pub in_interface: Option<Param>,
    /// `-o`: output interface.
    pub out_interface: Option<Param>,
    /// `-j` target or `-g` goto chain.
    pub target: Option<String>,
}

/// A line of a dump the parser did not understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
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
