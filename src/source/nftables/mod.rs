//! The nftables source: every nf_tables table of every family, read from the kernel over
//! netlink (no `nft` binary), as one consistent snapshot.
//!
//! The kernel rebuilds each ~32 KiB chunk of a dump by walking its lists from the start,
//! so one dump of every rule costs time quadratic in the ruleset; a dump per chain costs
//! the walk of one chain. The reader therefore dumps tables, chains, sets and objects
//! once each and then the rules chain by chain. Between the generation id read before
//! and after, the generation every reply carries, and names that must be unique in one
//! generation, a snapshot that spans a ruleset change is detected and read again; only GET
//! requests are sent, never the `*_RESET` ones, which zero counters. A dormant table is
//! left out of the nftables source's reads: none of its chains is on a hook.

mod decode;
#[cfg(fuzzing)]
pub mod fuzzing;
mod ownership;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::ruleset::{Chain, Family, Rule, Ruleset, Table};
use crate::source::netlink::consts::netlink::{NLM_F_ACK, NLM_F_DUMP};
use crate::source::netlink::consts::nfnetlink::NFPROTO_UNSPEC;
use crate::source::netlink::consts::{msg, rule, set_elem};
use crate::source::netlink::{self, Attrs, Message, NetlinkError, Socket};
use crate::source::{SourceError, SourceId};

pub(crate) use ownership::builtin_chains;
pub use ownership::is_iptables_nft;

/// Reads of one collection before it gives up on a ruleset that keeps changing.
pub const ATTEMPTS: u32 = 4;

/// Default of [`ReadConfig::set_elements_limit`].
pub const DEFAULT_SET_ELEMENTS_LIMIT: u64 = 100_000;

/// Which tables a read covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tables {
    /// Every table but the iptables-nft tables ([`is_iptables_nft`]) of these families,
    /// which an iptables source exports.
    Native {
        /// The families an iptables source reads.
        leave_to_iptables: Vec<Family>,
    },
    /// Only the iptables-nft tables of one family, with each rule's [`RuleKey`]: the
    /// netlink read of an iptables source.
    IptablesNft(Family),
}

/// What a rule is, whatever its counters and handle: a digest of its expressions (the
/// counters' values left out) and its user data. Two rules with the same key have the same
/// `iptables-save` text.
pub type RuleKey = [u8; 32];

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    /// Deadline of the whole read, all attempts together.
    pub timeout: Duration,
    /// The tables to read.
    pub tables: Tables,
    /// For a set whose element count the kernel does not send, most elements counted by
    /// dumping them; a larger set is reported without a count. 0: never dump elements.
    pub set_elements_limit: u64,
}

/// One consistent snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The tables read, in the kernel's order, with the ruleset's generation.
    pub ruleset: Ruleset,
    /// With [`Tables::IptablesNft`], the key of every rule, in the order of
    /// [`Ruleset::chains`] and of each chain's rules; empty otherwise.
    pub keys: Vec<RuleKey>,
    /// Reads it took (1 when the ruleset did not change during the first).
    pub attempts: u32,
}

/// Why no snapshot was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The kernel has no nf_tables (no module, or netlink's netfilter family missing).
    #[error("nf_tables is not available")]
    Unavailable(#[source] NetlinkError),
    /// Talking to the kernel failed.
    #[error(transparent)]
    Netlink(NetlinkError),
    /// The ruleset changed during every attempt.
    #[error("the ruleset changed during each of {0} reads; no snapshot of a single ruleset")]
    Changed(u32),
    /// The deadline passed.
    #[error("no complete read within {0:?}")]
    TimedOut(Duration),
}

impl From<ReadError> for SourceError {
    fn from(e: ReadError) -> Self {
        let command = SourceId::Nftables.reader().to_owned();
        match e {
            ReadError::Unavailable(_) => SourceError::NotFound { command },
            ReadError::TimedOut(timeout) => SourceError::TimedOut { command, timeout },
            e => SourceError::Read {
                command,
                source: std::sync::Arc::new(e),
            },
        }
    }
}

/// The nftables source: every nf_tables table that is not an iptables source's.
#[derive(Debug, Clone)]
pub struct Native {
    leave_to_iptables: Vec<Family>,
    set_elements_limit: u64,
}

impl Native {
    /// The source as `settings` set it up.
    pub fn new(settings: &crate::source::Settings) -> Self {
        Native {
            leave_to_iptables: settings.leave_to_iptables.clone(),
            set_elements_limit: settings.set_elements_limit,
        }
    }
}

impl Native {
    /// Reads the tables once: what [`crate::source::Source::read`] gives. Blocking.
    fn snapshot(&self, timeout: Duration) -> Result<Snapshot, SourceError> {
        let config = ReadConfig {
            timeout,
            tables: Tables::Native {
                leave_to_iptables: self.leave_to_iptables.clone(),
            },
            set_elements_limit: self.set_elements_limit,
        };
        read(&config).map_err(SourceError::from)
    }
}

impl crate::source::Source for Native {
    fn id(&self) -> SourceId {
        SourceId::Nftables
    }

    fn presence(&self, _timeout: Duration) -> crate::source::Presence {
        // The read itself tells: a kernel without nf_tables is "not found", and no tables
        // leave the source out.
        crate::source::Presence::Present
    }

    fn read(
        &self,
        limits: crate::source::Limits,
    ) -> futures_util::future::BoxFuture<'static, Result<crate::source::Reading, SourceError>> {
        let native = self.clone();
        Box::pin(crate::source::blocking(SourceId::Nftables, move || {
            native
                .snapshot(limits.timeout)
                .map(|snapshot| crate::source::Reading {
                    attempts: snapshot.attempts,
                    ..crate::source::Reading::new(snapshot.ruleset)
                })
        }))
    }
}

/// Reads the whole nf_tables ruleset, again when it changed during the read, up to
/// [`ATTEMPTS`] times. Blocking: run it on a thread that may block.
pub fn read(config: &ReadConfig) -> Result<Snapshot, ReadError> {
    read_with(config, &mut |_| {})
}

/// A rule of an iptables source's read ([`Tables::IptablesNft`]), as its message came.
pub struct SeenRule<'a> {
    /// The read it was met in, from 1: what an earlier read met is not in the snapshot.
    pub attempt: u32,
    /// Its place in [`Snapshot::keys`].
    pub index: usize,
    /// Its key.
    pub key: &'a RuleKey,
    /// The name of its chain.
    pub chain: &'a str,
    /// The attributes of its message, expressions included.
    pub attrs: Attrs<'a>,
}

/// [`read`], handing `on_rule` every rule of an iptables source's read as it comes, so
/// that what a caller needs of its expressions is taken without keeping them all.
pub fn read_with(
    config: &ReadConfig,
    on_rule: &mut dyn FnMut(SeenRule<'_>),
) -> Result<Snapshot, ReadError> {
    let deadline = Instant::now() + config.timeout;
    for attempt in 1..=ATTEMPTS {
        let read = Reader::new(config, deadline).and_then(|reader| reader.read(attempt, on_rule));
        match read {
            Ok(Some((ruleset, keys))) => {
                return Ok(Snapshot {
                    ruleset,
                    keys,
                    attempts: attempt,
                });
            }
            Ok(None) | Err(NetlinkError::Interrupted) => continue,
            // An object listed a moment ago and gone now: the ruleset changed.
            Err(NetlinkError::Kernel(e)) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(NetlinkError::TimedOut(_)) => return Err(ReadError::TimedOut(config.timeout)),
            Err(e) if unavailable(&e) => return Err(ReadError::Unavailable(e)),
            Err(e) => return Err(ReadError::Netlink(e)),
        }
    }
    Err(ReadError::Changed(ATTEMPTS))
}

/// True for the errors of a kernel without nf_tables.
fn unavailable(e: &NetlinkError) -> bool {
    let (NetlinkError::Open(e) | NetlinkError::Kernel(e)) = e else {
        return false;
    };
    matches!(
        e.raw_os_error(),
        Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT | libc::EOPNOTSUPP)
    )
}

/// One attempt at a snapshot.
struct Reader<'a> {
    config: &'a ReadConfig,
    deadline: Instant,
    socket: Socket,
    /// The socket of set element dumps, which may be abandoned mid-dump.
    elements: Option<Socket>,
    /// The generation the snapshot is of; every reply carries its low 16 bits.
    generation: u32,
    build: Build,
}

/// The snapshot being put together from the messages of the dumps, which the reader hands
/// to it one by one.
///
/// While a transaction that deletes a table and creates it again commits, a dump can walk
/// the old objects and then the new ones, every message carrying the generation the read
/// began with: the kernel bumps the generation before it switches which objects are
/// visible. Names are unique among the objects of one generation, so a table (family,
/// name), or a chain, set or object name within a table, listed twice is that: the read is
/// [`NetlinkError::Interrupted`] and made again.
#[derive(Default)]
struct Build {
    tables: Vec<Table>,
    /// Whether each table of `tables` is dormant.
    dormant: Vec<bool>,
    index: HashMap<(Family, String), usize>,
    /// The chains, sets and objects added so far, by table (its place in `tables`), kind
    /// and name.
    names: HashSet<(usize, Named, String)>,
    keys: Vec<RuleKey>,
    /// Set when a reply shows that the ruleset changed after the first generation read.
    changed: bool,
}

/// What a name in [`Build::names`] names: each kind has names of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Named {
    Chain,
    Set,
    Counter,
    Quota,
}

impl Build {
    /// A table message.
    fn table(&mut self, family: Family, attrs: Attrs<'_>) -> Result<(), NetlinkError> {
        let decoded = decode::table(attrs)?;
        if self.find(family, &decoded.name).is_some() {
            return Err(NetlinkError::Interrupted);
        }
        self.push_table(Table::new(family, decoded.name), decoded.dormant);
        Ok(())
    }

    /// A chain message: the chain is added to its table, which the table dump listed.
    fn chain(&mut self, family: Family, attrs: Attrs<'_>) -> Result<(), NetlinkError> {
        let chain = decode::chain(family, attrs)?;
        let Some(i) = self.find(family, &chain.table) else {
            self.changed = true;
            return Ok(());
        };
        self.name(i, Named::Chain, &chain.name)?;
        self.tables[i].chains.push(Chain {
            name: chain.name,
            base: chain.base,
            rules: Vec::new(),
        });
        Ok(())
    }

    /// A set message: a named set is added to its table when the table is read.
    fn set(&mut self, family: Family, attrs: Attrs<'_>) -> Result<(), NetlinkError> {
        let set = decode::set(attrs)?;
        if set.anonymous {
            return Ok(());
        }
        if let Some(i) = self.find(family, &set.table) {
            self.name(i, Named::Set, &set.set.name)?;
            self.tables[i].objects.sets.push(set.set);
        }
        Ok(())
    }

    /// An object message: a counter or quota is added to its table when the table is read.
    fn object(&mut self, family: Family, attrs: Attrs<'_>) -> Result<(), NetlinkError> {
        let (table, object) = decode::object(attrs)?;
        let (Some(object), Some(i)) = (object, self.find(family, &table)) else {
            return Ok(());
        };
        match object {
            decode::Object::Counter(c) => {
                self.name(i, Named::Counter, &c.name)?;
                self.tables[i].objects.counters.push(c);
            }
            decode::Object::Quota(q) => {
                self.name(i, Named::Quota, &q.name)?;
                self.tables[i].objects.quotas.push(q);
            }
        }
        Ok(())
    }

    /// Records that table `i` holds a `kind` named `name`; listed twice, the read is
    /// interrupted.
    fn name(&mut self, i: usize, kind: Named, name: &str) -> Result<(), NetlinkError> {
        if self.names.insert((i, kind, name.to_owned())) {
            Ok(())
        } else {
            Err(NetlinkError::Interrupted)
        }
    }

    fn push_table(&mut self, table: Table, dormant: bool) {
        self.index
            .insert((table.family, table.name.clone()), self.tables.len());
        self.tables.push(table);
        self.dormant.push(dormant);
    }

    /// The place in `tables` of the table of `family` named `name`.
    fn find(&self, family: Family, name: &str) -> Option<usize> {
        self.index.get(&(family, name.to_owned())).copied()
    }

    /// Leaves out the tables `leave` selects (given each table and whether it is dormant).
    /// Call it once the chains are read: the names recorded so far are forgotten, since
    /// the tables move.
    fn leave(&mut self, leave: impl Fn(&Table, bool) -> bool) {
        let tables = std::mem::take(&mut self.tables);
        let dormant = std::mem::take(&mut self.dormant);
        self.index.clear();
        self.names.clear();
        for (table, dormant) in tables.into_iter().zip(dormant) {
            if !leave(&table, dormant) {
                self.push_table(table, dormant);
            }
        }
    }
}

/// True when a read of `tables` leaves `table` out.
fn left_out(tables: &Tables, table: &Table, dormant: bool) -> bool {
    match tables {
        // A dormant table's base chains are not attached to their hooks: exported, its
        // chains would be described as filtering traffic that never reaches them.
        Tables::Native { leave_to_iptables } => {
            dormant || (leave_to_iptables.contains(&table.family) && is_iptables_nft(table))
        }
        // iptables-save prints a dormant table as any other; so does this read.
        Tables::IptablesNft(family) => table.family != *family || !is_iptables_nft(table),
    }
}

/// Appends the rule of a rule message to `rules`, the rules of one chain listed so far,
/// whose handles are `handles`. A handle is unique within a table, so one listed twice is
/// a dump that walked the chain across a change (see [`Build`]): the read is
/// [`NetlinkError::Interrupted`].
fn push_rule(
    rules: &mut Vec<Rule>,
    handles: &mut HashSet<u64>,
    attrs: Attrs<'_>,
) -> Result<(), NetlinkError> {
    let mut decoded = decode::rule(attrs)?;
    if let Some(handle) = decoded.rule.handle
        && !handles.insert(handle)
    {
        return Err(NetlinkError::Interrupted);
    }
    decoded.rule.position = rules.len() as u32 + 1;
    rules.push(decoded.rule);
    Ok(())
}

impl<'a> Reader<'a> {
    fn new(config: &'a ReadConfig, deadline: Instant) -> Result<Self, NetlinkError> {
        let mut socket = Socket::open(remaining(deadline)?)?;
        let generation = read_generation(&mut socket)?;
        Ok(Reader {
            config,
            deadline,
            socket,
            elements: None,
            generation,
            build: Build::default(),
        })
    }

    /// The snapshot and its rule keys, or `None` when the ruleset changed.
    fn read(
        mut self,
        attempt: u32,
        on_rule: &mut dyn FnMut(SeenRule<'_>),
    ) -> Result<Option<(Ruleset, Vec<RuleKey>)>, NetlinkError> {
        self.dump(msg::GETTABLE, |build, message, family| match message.kind {
            msg::NEWTABLE => build.table(family, message.attrs),
            _ => Ok(()),
        })?;
        self.dump(msg::GETCHAIN, |build, message, family| match message.kind {
            msg::NEWCHAIN => build.chain(family, message.attrs),
            _ => Ok(()),
        })?;
        let tables = &self.config.tables;
        self.build
            .leave(|table, dormant| left_out(tables, table, dormant));
        self.dump(msg::GETSET, |build, message, family| match message.kind {
            msg::NEWSET => build.set(family, message.attrs),
            _ => Ok(()),
        })?;
        self.dump(msg::GETOBJ, |build, message, family| match message.kind {
            msg::NEWOBJ => build.object(family, message.attrs),
            _ => Ok(()),
        })?;
        self.read_rules(attempt, on_rule)?;
        self.count_set_elements()?;
        if self.build.changed || read_generation(&mut self.socket)? != self.generation {
            return Ok(None);
        }
        let ruleset = Ruleset {
            tables: self.build.tables,
            unparsed: Vec::new(),
            generation: Some(self.generation),
            ipsets: Vec::new(),
        };
        Ok(Some((ruleset, self.build.keys)))
    }

    /// The rules of every chain, one dump per chain, with their keys when the read is
    /// an iptables source's.
    fn read_rules(
        &mut self,
        attempt: u32,
        on_rule: &mut dyn FnMut(SeenRule<'_>),
    ) -> Result<(), NetlinkError> {
        let keyed = matches!(self.config.tables, Tables::IptablesNft(_));
        let mut attrs = Vec::new();
        let mut handles = HashSet::new();
        let keys = &mut self.build.keys;
        for table in &mut self.build.tables {
            let family = decode::nfproto(table.family);
            for chain in &mut table.chains {
                remaining(self.deadline)?;
                attrs.clear();
                netlink::push_str(&mut attrs, rule::TABLE, &table.name);
                netlink::push_str(&mut attrs, rule::CHAIN, &chain.name);
                let rules = &mut chain.rules;
                handles.clear();
                let generation = self.generation;
                request(
                    &mut self.socket,
                    msg::GETRULE,
                    family,
                    &attrs,
                    generation,
                    |message| {
                        if message.kind == msg::NEWRULE {
                            if keyed {
                                let key = decode::rule_key(message.attrs.clone())?;
                                on_rule(SeenRule {
                                    attempt,
                                    index: keys.len(),
                                    key: &key,
                                    chain: &chain.name,
                                    attrs: message.attrs.clone(),
                                });
                                keys.push(key);
                            }
                            push_rule(rules, &mut handles, message.attrs)?;
                        }
                        Ok(())
                    },
                )?;
            }
        }
        Ok(())
    }

    /// Element counts the kernel did not send, by dumping the elements, up to the limit.
    fn count_set_elements(&mut self) -> Result<(), NetlinkError> {
        let limit = self.config.set_elements_limit;
        if limit == 0 {
            return Ok(());
        }
        let mut attrs = Vec::new();
        for table in &mut self.build.tables {
            let family = decode::nfproto(table.family);
            for set in table
                .objects
                .sets
                .iter_mut()
                .filter(|s| s.elements.is_none())
            {
                remaining(self.deadline)?;
                attrs.clear();
                netlink::push_str(&mut attrs, set_elem::LIST_TABLE, &table.name);
                netlink::push_str(&mut attrs, set_elem::LIST_SET, &set.name);
                let mut socket = match self.elements.take() {
                    Some(socket) => socket,
                    None => Socket::open(remaining(self.deadline)?)?,
                };
                let mut count = 0u64;
                let counted = request(
                    &mut socket,
                    msg::GETSETELEM,
                    family,
                    &attrs,
                    self.generation,
                    |message| {
                        if message.kind == msg::NEWSETELEM {
                            count += decode::set_elements(message.attrs)?;
                        }
                        if count > limit {
                            Err(NetlinkError::Stopped)
                        } else {
                            Ok(())
                        }
                    },
                );
                match counted {
                    Ok(()) => {
                        set.elements = Some(count);
                        self.elements = Some(socket);
                    }
                    // Left uncounted; the socket, which still holds the rest of the dump,
                    // is closed.
                    Err(NetlinkError::Stopped) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Dumps `kind` of every family, handing each reply of a family the model knows to
    /// `each`.
    fn dump(
        &mut self,
        kind: u16,
        mut each: impl FnMut(&mut Build, Message<'_>, Family) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        remaining(self.deadline)?;
        let build = &mut self.build;
        request(
            &mut self.socket,
            kind,
            NFPROTO_UNSPEC,
            &[],
            self.generation,
            |message| match decode::family(message.family) {
                Some(family) => each(build, message, family),
                None => Ok(()),
            },
        )
    }
}

/// Dumps `kind` of `family` selected by `attrs` on `socket`; a reply read from another
/// generation than `generation` is [`NetlinkError::Interrupted`].
fn request(
    socket: &mut Socket,
    kind: u16,
    family: u8,
    attrs: &[u8],
    generation: u32,
    mut each: impl FnMut(Message<'_>) -> Result<(), NetlinkError>,
) -> Result<(), NetlinkError> {
    let expected = generation as u16;
    socket.request(kind, family, NLM_F_DUMP, attrs, |message| {
        if message.res_id != expected {
            return Err(NetlinkError::Interrupted);
        }
        each(message)
    })
}

/// The generation id of the ruleset now, on a socket of its own. Blocking.
pub fn generation(timeout: Duration) -> Result<u32, NetlinkError> {
    read_generation(&mut Socket::open(timeout)?)
}

/// The generation id of the ruleset now.
fn read_generation(socket: &mut Socket) -> Result<u32, NetlinkError> {
    let mut generation = None;
    socket.request(msg::GETGEN, NFPROTO_UNSPEC, NLM_F_ACK, &[], |message| {
        if message.kind == msg::NEWGEN {
            generation = Some(decode::generation(message.attrs)?);
        }
        Ok(())
    })?;
    generation.ok_or(netlink::Malformed("no generation in the answer").into())
}

/// Time left until `deadline`, or the timeout error once it passed.
fn remaining(deadline: Instant) -> Result<Duration, NetlinkError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(NetlinkError::TimedOut(Duration::ZERO));
    }
    Ok(left)
}

#[cfg(test)]
mod tests;
