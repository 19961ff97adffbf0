//! The model every view reads: one immutable snapshot of a ruleset as the kernel reported it.
//!
//! A [`Ruleset`] is the seam between the privileged part of the program (which runs
//! `iptables-save`) and everything else, so it is plain data: it owns the dump, is cheap to
//! share behind an `Arc`, and keeps kernel order so that every output built from it is
//! deterministic.

mod iptables_save;
mod matches;
mod tokens;

use std::fmt::{self, Write as _};
use std::str::FromStr;

use bytemuck::{Pod, Zeroable};

use crate::buffer::HugeVec;

pub use iptables_save::parse;
pub use tokens::{Token, tokenize};

/// Packet and byte counters of a chain policy or a rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
///
/// The snapshot owns the dump text and refers to it: a table, chain or rule is a few
/// offsets, not a set of strings. A 100k-rule dump is read with a handful of allocations,
/// where one `String` per rule text, comment and parameter made the allocator half of the
/// collection's cost (docs/performance.md). Read it through [`Table`], [`Chain`] and
/// [`Rule`], which borrow the snapshot.
#[derive(Default)]
pub struct Ruleset {
    /// The dump as the command printed it.
    dump: String,
    /// What the parser found in it.
    contents: Contents,
}

/// Everything of a snapshot but the dump it refers to: what the parser builds.
#[derive(Default)]
struct Contents {
    /// Text the dump does not hold in one or two slices: the labels of rules with several
    /// comment matches cut out, and comments whose quoting had to be undone.
    derived: String,
    tables: Vec<TableData>,
    /// Every chain; a table holds a contiguous range.
    chains: Vec<ChainData>,
    /// Every rule; a chain holds a contiguous range, in kernel order. The two large lists
    /// are in huge pages once they are (src/buffer.rs): faulting them in 4 KiB pages was a
    /// fifth of a 100k-rule parse.
    rules: HugeVec<RuleData>,
    /// Every comment; a rule holds a contiguous range, in rule order.
    comments: HugeVec<Text>,
    unparsed: Vec<Unparsed>,
}

/// Where a piece of text of the snapshot lives: a slice of the dump, or of the derived
/// text. (Plain data rather than an enum, so that lists of it can live in huge pages.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Text {
    span: Span,
    /// 1 for the derived text, 0 for the dump.
    derived: u32,
}

impl Text {
    /// A slice of the dump.
    fn dump(span: Span) -> Text {
        Text { span, derived: 0 }
    }

    /// A slice of the derived text.
    fn derived(span: Span) -> Text {
        Text { span, derived: 1 }
    }

    /// The same text once the derived text it refers to is appended to `derived` bytes of
    /// other derived text.
    fn shifted(self, derived: usize) -> Text {
        if self.derived == 0 {
            self
        } else {
            Text::derived(self.span.shifted(derived))
        }
    }
}

/// A byte range (of text, or of one of the snapshot's lists). Offsets are 32-bit: the
/// parser refuses what lies beyond 4 GiB of dump ([`iptables_save::parse`]), and the lists
/// of a 100k-rule snapshot are 40% smaller than with 64-bit offsets (fewer pages faulted
/// in by every collection, docs/performance.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The range `start..end`; both are below 4 GiB (see the type's documentation).
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    fn start(self) -> usize {
        self.start as usize
    }

    fn end(self) -> usize {
        self.end as usize
    }

    fn len(self) -> usize {
        self.range().len()
    }

    /// The span moved `by` further.
    fn shifted(self, by: usize) -> Span {
        Span::new(self.start() + by, self.end() + by)
    }
}

#[derive(Debug)]
struct TableData {
    name: Span,
    chains: Span,
}

#[derive(Debug)]
struct ChainData {
    name: Span,
    policy: Policy,
    counters: Counters,
    rules: Span,
}

/// Where the `rule` label of a rule lives: `head`, then `tail`. Nearly every kube-proxy
/// rule has one comment match, and its label is the rule's text before it (`head`) and
/// after it (`tail`, a slice of the dump); copying such labels out was a quarter of the
/// snapshot's memory. Without a comment match the label is the rule's text; with several,
/// the derived text; `tail` is empty then.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct LabelData {
    head: Text,
    tail: Span,
}

#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct RuleData {
    counters: Counters,
    /// The text after `-A CHAIN `.
    text: Span,
    /// The `rule` label: the text without its comment matches.
    label: LabelData,
    comments: Span,
    /// The index of the rule's chain in the snapshot's chains (while the second half of a
    /// dump is parsed, possibly a deferred name, see `iptables_save`).
    chain: u32,
}

impl Contents {
    /// Gives back the spare capacity the lists grew by while parsing.
    fn shrink_to_fit(&mut self) {
        self.derived.shrink_to_fit();
        self.tables.shrink_to_fit();
        self.chains.shrink_to_fit();
        self.rules.shrink_to_fit();
        self.comments.shrink_to_fit();
    }
}

impl Ruleset {
    fn text(&self, text: Text) -> &str {
        if text.derived == 0 {
            &self.dump[text.span.range()]
        } else {
            &self.contents.derived[text.span.range()]
        }
    }

    /// Tables in the order of the dump.
    pub fn tables(&self) -> impl ExactSizeIterator<Item = Table<'_>> + Clone {
        self.contents
            .tables
            .iter()
            .map(move |data| Table { set: self, data })
    }

    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<Table<'_>> {
        self.tables().find(|t| t.name() == name)
    }

    /// Every chain of every table, in the order of the dump.
    pub fn chains(&self) -> impl Iterator<Item = Chain<'_>> + Clone {
        self.tables().flat_map(|t| t.chains())
    }

    /// Every rule, chain by chain in the order of [`Ruleset::chains`].
    pub fn rules(&self) -> impl Iterator<Item = Rule<'_>> + Clone {
        self.chains().flat_map(|c| c.rules())
    }

    /// True when the dump held no table.
    pub fn is_empty(&self) -> bool {
        self.contents.tables.is_empty()
    }

    /// Number of rules over all tables and chains.
    pub fn rule_count(&self) -> usize {
        self.contents.rules.len()
    }

    /// Lines the parser did not understand; everything else is in the tables.
    pub fn unparsed(&self) -> &[Unparsed] {
        &self.contents.unparsed
    }

    /// A snapshot of only the chains `keep` selects, whole (declaration, policy counters and
    /// every rule, in order), in their tables; tables left without a chain are left out.
    /// It is what a view that reads a few chains needs kept between collections, where the
    /// whole snapshot of a 100k-rule dump is about 33 MB (docs/performance.md).
    pub fn subset(&self, keep: impl Fn(Chain<'_>) -> bool) -> Ruleset {
        // Written back in the dump's own format and parsed again: one mechanism reads
        // every snapshot, and the subset owns a dump as small as the chains it keeps.
        let mut dump = String::new();
        for table in self.tables() {
            let kept: Vec<Chain<'_>> = table.chains().filter(|c| keep(*c)).collect();
            if kept.is_empty() {
                continue;
            }
            dump.push('*');
            dump.push_str(table.name());
            dump.push('\n');
            for chain in &kept {
                let Counters { packets, bytes } = chain.counters();
                let (name, policy) = (chain.name(), chain.policy());
                // Writing to a String cannot fail.
                let _ = writeln!(dump, ":{name} {policy} [{packets}:{bytes}]");
            }
            for chain in &kept {
                for rule in chain.rules() {
                    let Counters { packets, bytes } = rule.counters();
                    let (name, text) = (chain.name(), rule.text());
                    let _ = writeln!(dump, "[{packets}:{bytes}] -A {name} {text}");
                }
            }
            dump.push_str("COMMIT\n");
        }
        parse(dump)
    }
}

impl fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ruleset")
            .field("tables", &self.tables().collect::<Vec<_>>())
            .field("unparsed", &self.contents.unparsed)
            .finish()
    }
}

/// A table (`*filter`, `*nat`, …) of a [`Ruleset`].
#[derive(Clone, Copy)]
pub struct Table<'a> {
    set: &'a Ruleset,
    data: &'a TableData,
}

impl<'a> Table<'a> {
    /// The table's name without the `*`.
    pub fn name(&self) -> &'a str {
        &self.set.dump[self.data.name.range()]
    }

    /// Chains in declaration order.
    pub fn chains(&self) -> impl ExactSizeIterator<Item = Chain<'a>> + Clone + use<'a> {
        let (set, table) = (self.set, self.data);
        set.contents.chains[table.chains.range()]
            .iter()
            .map(move |data| Chain { set, table, data })
    }

    /// Looks a chain up by name.
    pub fn chain(&self, name: &str) -> Option<Chain<'a>> {
        self.chains().find(|c| c.name() == name)
    }
}

impl fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name())
            .field("chains", &self.chains().collect::<Vec<_>>())
            .finish()
    }
}

/// A chain with its policy counters and its rules in kernel order.
#[derive(Clone, Copy)]
pub struct Chain<'a> {
    set: &'a Ruleset,
    table: &'a TableData,
    data: &'a ChainData,
}

impl<'a> Chain<'a> {
    /// The chain's name.
    pub fn name(&self) -> &'a str {
        &self.set.dump[self.data.name.range()]
    }

    /// The name of the table the chain belongs to.
    pub fn table_name(&self) -> &'a str {
        &self.set.dump[self.table.name.range()]
    }

    /// Its policy ([`Policy::None`] for user-defined chains).
    pub fn policy(&self) -> Policy {
        self.data.policy
    }

    /// The policy counters (always zero for user-defined chains, as the kernel keeps none).
    pub fn counters(&self) -> Counters {
        self.data.counters
    }

    /// Rules in kernel order.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = Rule<'a>> + Clone + use<'a> {
        let set = self.set;
        set.contents.rules[self.data.rules.range()]
            .iter()
            .map(move |data| Rule { set, data })
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.data.rules.len()
    }

    /// What the labels of the chain's series take, read from the lengths the snapshot
    /// keeps rather than from the texts: a renderer sizes its output with it before its
    /// threads start, and going through every rule's label and comments instead was half
    /// of that serial pass (22.0 against 11.7 M instructions at 100k rules).
    pub fn label_sizes(&self) -> LabelSizes {
        let contents = &self.set.contents;
        let mut sizes = LabelSizes::default();
        for rule in &contents.rules[self.data.rules.range()] {
            sizes.rule_bytes += rule.label.head.span.len() + rule.label.tail.len();
            let comments = &contents.comments[rule.comments.range()];
            sizes.comments += comments.len();
            sizes.comment_bytes += comments.iter().map(|c| c.span.len()).sum::<usize>();
        }
        sizes
    }
}

/// The sizes of a chain's label values ([`Chain::label_sizes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelSizes {
    /// Bytes of the `rule` labels of its rules ([`Rule::label`]).
    pub rule_bytes: usize,
    /// Number of comments of its rules ([`Rule::comments`]).
    pub comments: usize,
    /// Bytes of those comments.
    pub comment_bytes: usize,
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("name", &self.name())
            .field("policy", &self.policy())
            .field("counters", &self.counters())
            .field("rules", &self.rules().collect::<Vec<_>>())
            .finish()
    }
}

/// One rule: its counters, its text and its comments; the parameters views interpret are
/// read from the text on demand ([`Rule::matches`]).
#[derive(Clone, Copy)]
pub struct Rule<'a> {
    set: &'a Ruleset,
    data: &'a RuleData,
}

impl<'a> Rule<'a> {
    /// The rule's counters.
    pub fn counters(&self) -> Counters {
        self.data.counters
    }

    /// The rule's text after `-A CHAIN `, exactly as `iptables-save` printed it.
    pub fn text(&self) -> &'a str {
        &self.set.dump[self.data.text.range()]
    }

    /// The text with every `-m comment --comment …` match and its separating space
    /// removed: the `rule` label.
    pub fn label(&self) -> Label<'a> {
        let LabelData { head, tail } = self.data.label;
        Label {
            head: self.set.text(head),
            tail: &self.set.dump[tail.range()],
        }
    }

    /// The arguments of every `--comment`, unquoted and unescaped, in rule order.
    pub fn comments(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + use<'a> {
        let set = self.set;
        set.contents.comments[self.data.comments.range()]
            .iter()
            .map(move |&text| set.text(text))
    }

    /// The match parameters and target, read from the label. Only views that interpret
    /// parameters (accounting) need them, so a collection does not pay for them.
    pub fn matches(&self) -> Matches {
        Matches::read(&self.label().to_string())
    }
}

impl fmt::Debug for Rule<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("counters", &self.counters())
            .field("text", &self.text())
            .field("comments", &self.comments().collect::<Vec<_>>())
            .finish()
    }
}

/// A rule's `rule` label ([`Rule::label`]): a text that the snapshot may hold in two
/// pieces. Labels compare and hash by their whole text, however it is cut.
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    head: &'a str,
    tail: &'a str,
}

impl<'a> Label<'a> {
    /// The text in its pieces, in order.
    pub fn parts(&self) -> [&'a str; 2] {
        [self.head, self.tail]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// True for the empty label (a rule of no arguments but its comment).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.head.bytes().chain(self.tail.bytes())
    }
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.head)?;
        f.write_str(self.tail)
    }
}

impl PartialEq for Label<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        if self.head.len() == other.head.len() {
            return self.head == other.head && self.tail == other.tail;
        }
        self.bytes().eq(other.bytes())
    }
}

impl Eq for Label<'_> {}

impl std::hash::Hash for Label<'_> {
    /// Hashes the whole text in words of eight bytes, so that two cuts of one text feed
    /// the hasher the same calls.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        let mut word = [0u8; 8];
        let mut filled = 0;
        for part in self.parts() {
            let mut bytes = part.as_bytes();
            if filled > 0 {
                let n = (8 - filled).min(bytes.len());
                word[filled..filled + n].copy_from_slice(&bytes[..n]);
                filled += n;
                bytes = &bytes[n..];
                if filled < 8 {
                    continue;
                }
                state.write_u64(u64::from_le_bytes(word));
            }
            let (words, rest) = bytes.as_chunks::<8>();
            for w in words {
                state.write_u64(u64::from_le_bytes(*w));
            }
            word[..rest.len()].copy_from_slice(rest);
            filled = rest.len();
        }
        if filled > 0 {
            word[filled..].fill(0);
            state.write_u64(u64::from_le_bytes(word));
        }
    }
}

/// A parameter value, with the `!` that may precede it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// True when the match is inverted with `!`.
    pub negated: bool,
    /// The argument as printed (addresses carry their prefix length).
    pub value: String,
}

/// The match parameters of a rule that views interpret; everything else stays in the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// The dump goes on beyond the 4 GiB the parser reads; the error holds how many bytes
    /// were not read.
    #[error("the dump is larger than 4 GiB: its last {0} bytes were not read")]
    TooLarge(usize),
}
