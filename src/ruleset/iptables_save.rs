//! Parser for the output of `iptables-save --counters` (and ip6tables / legacy variants).
//!
//! It never fails as a whole: a line it does not understand is recorded in
//! [`Ruleset::unparsed`] with its line number and the rest of the dump is still read.
//!
//! Written by hand for speed, as the hot loop of every collection (a 100k-rule dump is
//! 13–17 MB): lines are found with `memchr`, and a rule is not split into arguments at all.
//! Only its comment matches are located (with a substring search for `--comment`, checked
//! against the quoting before it); everything else stays in the text, from which
//! [`Rule::matches`](super::Rule::matches) reads parameters when a view asks.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use memchr::{memchr, memchr2, memmem};

use super::tokens::{has_open_quote, scan_quotes, tokenize};
use super::{
    ChainData, Contents, Counters, LabelData, LineError, RuleData, Ruleset, Span, TableData, Text,
    Unparsed,
};

/// Longest excerpt of a bad line kept for logs.
const EXCERPT_CHARS: usize = 120;

/// The option whose argument is a comment.
const COMMENT_OPTION: &str = "--comment";

/// Parses a whole dump, which the snapshot keeps. Lines that do not fit the format are
/// listed in [`Ruleset::unparsed`].
pub fn parse(dump: impl Into<String>) -> Ruleset {
    parse_at_most(dump.into(), MAX_DUMP_LEN)
}

/// The longest dump read: a snapshot's offsets are 32-bit (`Span`). About 25 million
/// rules; the lines after it are reported as one unparsed line.
const MAX_DUMP_LEN: usize = u32::MAX as usize;

/// [`parse`], reading the lines that end within `max_len` bytes.
pub(super) fn parse_at_most(mut dump: String, max_len: usize) -> Ruleset {
    let beyond = (dump.len() > max_len).then(|| {
        let kept = memchr::memrchr(b'\n', &dump.as_bytes()[..max_len]).map_or(0, |i| i + 1);
        let unread = Unparsed {
            line: memchr::memchr_iter(b'\n', &dump.as_bytes()[..kept]).count() + 1,
            error: LineError::TooLarge(dump.len() - kept),
            excerpt: excerpt(&dump[kept..]),
        };
        dump.truncate(kept);
        unread
    });
    // The snapshot is kept until the next collection: give back the spare capacity of a
    // dump read by doubling (up to half of it; a shrink in place, not a copy).
    dump.shrink_to_fit();
    let mut contents = if dump.len() >= PARALLEL_LEN {
        parse_in_halves(&dump, dump.len() / 2).unwrap_or_else(|| parse_serially(&dump))
    } else {
        parse_serially(&dump)
    };
    contents.unparsed.extend(beyond);
    Ruleset { dump, contents }
}

/// From this many bytes of dump on (about 13k rules), the dump is parsed in two halves on
/// two threads: below, starting a thread costs more than it saves.
const PARALLEL_LEN: usize = 2 << 20;

fn parse_serially(dump: &str) -> Contents {
    let mut parser = Parser::new(dump, dump.len(), true);
    let lines = parser.read(0, dump.len());
    parser.finish(lines)
}

/// Parses the lines before the first rule line at or after `from` on this thread and the
/// rest on another, then joins the two. The second half starts inside a table whose chains
/// only the first half knows: its rules name their chains, which are looked up once both
/// are done. `None` (the caller parses serially) when the second thread cannot start or
/// when the halves cannot be joined into exactly what a serial parse gives: the split
/// was inside a quoted comment spanning lines, or the second half starts with something
/// else than rules of a table the first half left open.
pub(super) fn parse_in_halves(dump: &str, from: usize) -> Option<Contents> {
    let middle = rule_line_after(dump, from)?;
    std::thread::scope(|scope| {
        let second = std::thread::Builder::new()
            .name("parse".into())
            .spawn_scoped(scope, move || {
                let mut parser = Parser::new(dump, dump.len() - middle, false);
                parser.inherited = true;
                parser.table_open = true;
                let lines = parser.read(middle, dump.len());
                (parser, lines)
            })
            .ok()?;
        // Room for the whole dump's lists: the second half's are appended in place.
        let mut first = Parser::new(dump, dump.len(), true);
        let first_lines = first.read(0, middle);
        let (second, second_lines) = second.join().ok()?;
        let joinable = first.end == middle && first.table_open && !second.aborted;
        if !joinable {
            return None;
        }
        first.join(second, first_lines)?;
        Some(first.finish(first_lines + second_lines))
    })
}

/// The start of the first line at or after `from` (counting from the next line start)
/// that begins like a rule with counters.
fn rule_line_after(dump: &str, from: usize) -> Option<usize> {
    let bytes = dump.as_bytes();
    let mut start = from.checked_sub(1).map_or(Some(0), |before| {
        memchr(b'\n', bytes.get(before..)?).map(|i| before + i + 1)
    })?;
    while start < bytes.len() {
        if bytes[start] == b'[' {
            return Some(start);
        }
        start = line_end(bytes, start) + 1;
    }
    None
}

/// A rule line is rarely shorter (`[0:0] -A KUBE-SVC-… -j KUBE-SEP-…` is about 60 bytes).
const RULE_LEN_AT_LEAST: usize = 40;

/// Marks a rule's chain (`RuleData::chain`) that is an index into `Parser::deferred`. A
/// dump of at most 4 GiB declares fewer than 2³¹ chains.
const DEFERRED: usize = 1 << 31;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

struct Parser<'a> {
    dump: &'a str,
    out: Contents,
    /// False once a chain's rules stopped being contiguous.
    grouped: bool,
    /// Whether the last table of `out.tables` is still open (no COMMIT yet).
    table_open: bool,
    /// Chains of the open table by name.
    chain_index: FastMap<&'a str, usize>,
    /// The chain of the previous rule: iptables-save lists a chain's rules together, so
    /// this spares a map lookup for nearly every rule.
    last_chain: Option<(&'a str, usize)>,
    finder: memmem::Finder<'static>,
    /// Whether the current line ends inside a quote (only the end of the dump does that).
    open_quote: bool,
    /// Where the current line's quotes open and close (offsets in the dump), if `read`
    /// read it as a rule line (`quotes_read`).
    quotes: Vec<usize>,
    quotes_read: bool,
    /// How far [`Parser::inside_quotes`] has read the current rule's text.
    quote_cursor: QuoteCursor,
    /// Scratch: the comment matches cut from the current rule's label.
    cuts: Vec<(usize, usize)>,
    /// Where reading stopped: the start of the line after the last one read.
    end: usize,
    /// Whether the parser reads the second half of a dump and is still inside the table
    /// the first half opened, whose chains it does not know.
    inherited: bool,
    /// Chain names of the inherited table that rules used (`DEFERRED` chains of rules
    /// index them).
    deferred: Vec<&'a str>,
    /// Set when the second half meets a line it cannot read without the first half's
    /// state (a chain declaration or a new table inside the inherited table).
    aborted: bool,
}

impl<'a> Parser<'a> {
    /// A parser that will read about `len` bytes of `dump`. Its lists go into huge pages
    /// as they grow when they are `kept` as the snapshot's; those of a second half, copied
    /// into the first half's when joined, stay in small pages: a huge page would hold up to
    /// 2 MiB more per list, for a copy made off the critical path.
    fn new(dump: &'a str, len: usize, kept: bool) -> Self {
        // The lists are sized from the length of the text once, generously, rather than
        // copied while they double: pages reserved but never written cost no memory, and
        // the spare capacity is given back at the end.
        let rules = len / RULE_LEN_AT_LEAST;
        let certain = if kept { rules } else { 0 };
        let mut out = Contents::default();
        out.rules.reserve(rules, certain);
        out.comments.reserve(rules, certain);
        Parser {
            dump,
            out,
            grouped: true,
            table_open: false,
            chain_index: FastMap::default(),
            last_chain: None,
            finder: memmem::Finder::new(COMMENT_OPTION),
            open_quote: false,
            quotes: Vec::new(),
            quotes_read: false,
            quote_cursor: QuoteCursor::default(),
            cuts: Vec::new(),
            end: 0,
            inherited: false,
            deferred: Vec::new(),
            aborted: false,
        }
    }

    /// Reads the lines that start from `start` up to `limit` (the last one may go on past
    /// it); returns how many physical lines it read.
    fn read(&mut self, start: usize, limit: usize) -> usize {
        let dump = self.dump;
        let bytes = dump.as_bytes();
        let mut line_no = 0;
        let mut pos = start;
        while pos < limit && !self.aborted {
            line_no += 1;
            let first_line = line_no;
            self.quotes.clear();
            self.quotes_read = matches!(bytes[pos], b'[' | b'-');
            self.open_quote = false;
            let end = if self.quotes_read {
                // A quoted comment may hold a newline: the logical line is still one slice
                // of the dump, over several physical lines. Only the end of the dump
                // leaves a quote open.
                let quotes = &mut self.quotes;
                let scan = scan_quotes(bytes, pos, false, true, |quote| quotes.push(quote));
                line_no += scan.newlines;
                self.open_quote = scan.open;
                scan.end
            } else {
                line_end(bytes, pos)
            };
            let line = &dump[pos..end];
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Err(error) = self.line(line) {
                self.unparsed(first_line, error, line);
            }
            pos = end + 1;
        }
        self.end = pos;
        line_no
    }

    /// The offset of `part`, a slice of the dump, in the dump.
    fn offset(&self, part: &str) -> usize {
        part.as_ptr().addr() - self.dump.as_ptr().addr()
    }

    fn span(&self, part: &str) -> Span {
        let start = self.offset(part);
        Span::new(start, start + part.len())
    }

    fn line(&mut self, line: &'a str) -> Result<(), LineError> {
        let trimmed = line.trim_start();
        match trimmed.as_bytes().first() {
            None | Some(b'#') => Ok(()),
            Some(b'*' | b':') if self.inherited => {
                self.aborted = true;
                Ok(())
            }
            Some(b'*') => self.start_table(trimmed[1..].trim()),
            Some(b':') => self.declare_chain(&trimmed[1..]),
            Some(b'[') => {
                let (counters, len) = read_counters(trimmed).ok_or_else(|| {
                    let field = memchr(b']', trimmed.as_bytes())
                        .map_or(trimmed, |close| &trimmed[..=close]);
                    LineError::BadCounters(excerpt(field))
                })?;
                let rule = trimmed[len..].trim_start();
                match rule.strip_prefix("-A ") {
                    Some(rule) => self.append_rule(counters, rule),
                    None => Err(LineError::Unknown),
                }
            }
            Some(b'-') => match trimmed.strip_prefix("-A ") {
                // A dump taken without --counters: the rule exists, its counters are unknown
                // and reported as zero rather than dropping the rule.
                Some(rule) => self.append_rule(Counters::default(), rule),
                None => Err(LineError::Unknown),
            },
            _ if trimmed.trim_end() == "COMMIT" => {
                if !self.table_open {
                    return Err(LineError::OutsideTable);
                }
                self.close_table();
                Ok(())
            }
            _ => Err(LineError::Unknown),
        }
    }

    fn close_table(&mut self) {
        self.inherited = false;
        self.table_open = false;
        self.chain_index.clear();
        self.last_chain = None;
    }

    fn start_table(&mut self, name: &str) -> Result<(), LineError> {
        let previous = self.table_open.then(|| self.open_table_name());
        self.close_table();
        self.expect_chains(name);
        let chains = self.out.chains.len();
        self.out.tables.push(TableData {
            name: self.span(name),
            chains: Span::new(chains, chains),
        });
        self.table_open = true;
        match previous {
            Some(previous) => Err(LineError::Uncommitted(previous)),
            None => Ok(()),
        }
    }

    /// Makes room in the chain map and list for the declarations that follow the line of
    /// table `name` (a slice of it): a kube-proxy nat table declares tens of thousands of
    /// chains, and growing the map by doubling, rehashing each time, was a sixth of the
    /// parser's work on declarations. Counting them first is a search per line.
    fn expect_chains(&mut self, name: &str) {
        let bytes = self.dump.as_bytes();
        let mut pos = line_end(bytes, self.offset(name)) + 1;
        let mut declared = 0;
        while bytes.get(pos) == Some(&b':') {
            declared += 1;
            pos = line_end(bytes, pos) + 1;
        }
        self.chain_index.reserve(declared);
        self.out.chains.reserve(declared);
    }

    fn open_table_name(&self) -> String {
        self.out
            .tables
            .last()
            .map(|t| self.dump[t.name.range()].to_owned())
            .unwrap_or_default()
    }

    fn declare_chain(&mut self, decl: &'a str) -> Result<(), LineError> {
        if !self.table_open {
            return Err(LineError::OutsideTable);
        }
        let mut words = decl.split_ascii_whitespace();
        let name = words
            .next()
            .ok_or_else(|| LineError::BadChain("no chain name".to_owned()))?;
        let policy = words
            .next()
            .ok_or_else(|| LineError::BadChain(format!("chain {name:?} has no policy")))?
            .parse()
            .map_err(|e: super::UnknownPolicy| LineError::BadChain(e.to_string()))?;
        let counters = match words.next() {
            Some(counters) => parse_counters(counters)?,
            None => Counters::default(),
        };
        let index = self.out.chains.len();
        match self.chain_index.entry(name) {
            Entry::Occupied(_) => return Err(LineError::DuplicateChain(name.to_owned())),
            Entry::Vacant(slot) => slot.insert(index),
        };
        self.out.chains.push(ChainData {
            name: self.span(name),
            policy,
            counters,
            rules: Span::default(),
        });
        if let Some(table) = self.out.tables.last_mut() {
            table.chains = Span::new(table.chains.start(), index + 1);
        }
        Ok(())
    }

    fn append_rule(&mut self, counters: Counters, rule: &'a str) -> Result<(), LineError> {
        if !self.table_open {
            return Err(LineError::OutsideTable);
        }
        let (chain, text) = match rule.bytes().position(|b| b.is_ascii_whitespace()) {
            Some(i) => (&rule[..i], &rule[i + 1..]),
            // Spans are offsets into the dump: the empty text is its slice too.
            None => (rule, &rule[rule.len()..]),
        };
        let chain_index = match self.last_chain {
            Some((last, index)) if last == chain => index,
            _ => {
                let index = match self.chain_index.get(chain) {
                    Some(&index) => index,
                    None if self.inherited => {
                        self.deferred.push(chain);
                        DEFERRED | (self.deferred.len() - 1)
                    }
                    None => return Err(LineError::UndeclaredChain(chain.to_owned())),
                };
                self.last_chain = Some((chain, index));
                index
            }
        };
        if self.open_quote && has_open_quote(text) {
            // Only the end of the dump leaves a quote open (the line was extended until it
            // closed): let the tokenizer say where it opened.
            let mut tokens = Vec::new();
            let why = match tokenize(text, &mut tokens) {
                Err(e) => e.to_string(),
                Ok(()) => "unterminated quote".to_owned(),
            };
            return Err(LineError::BadArguments(why));
        }
        let comments_start = self.out.comments.len();
        self.scan_comments(text);
        let label = match self.cuts[..] {
            [] => LabelData {
                head: Text::dump(self.span(text)),
                tail: Span::default(),
            },
            [cut] => {
                let (start, end) = widened(text, cut, 0);
                LabelData {
                    head: Text::dump(self.span(&text[..start])),
                    tail: self.span(&text[end..]),
                }
            }
            _ => {
                let start = self.out.derived.len();
                strip_spans(text, &self.cuts, &mut self.out.derived);
                LabelData {
                    head: Text::derived(Span::new(start, self.out.derived.len())),
                    tail: Span::default(),
                }
            }
        };
        let index = self.out.rules.len();
        self.out.rules.push(RuleData {
            counters,
            text: self.span(text),
            label,
            comments: Span::new(comments_start, self.out.comments.len()),
            chain: chain_index as u32,
        });
        if chain_index & DEFERRED == 0 {
            self.place(index, chain_index);
        }
        Ok(())
    }

    /// Adds rule `index` to the rules of chain `chain`, noting when they stop being
    /// contiguous.
    fn place(&mut self, index: usize, chain: usize) {
        let rules = &mut self.out.chains[chain].rules;
        if rules.len() == 0 {
            *rules = Span::new(index, index + 1);
        } else if rules.end() == index {
            *rules = Span::new(rules.start(), index + 1);
        } else {
            self.grouped = false;
        }
    }

    /// Appends what `second` read of the lines after these, which started at the rules of
    /// the table this parser left open. `None` when a rule of `second` names a chain that
    /// table does not have (a serial parse reports it as a bad line, in place).
    fn join(&mut self, second: Parser<'a>, lines_before: usize) -> Option<()> {
        let resolved = second
            .deferred
            .iter()
            .map(|name| self.chain_index.get(name).copied())
            .collect::<Option<Vec<usize>>>()?;
        let out = &mut self.out;
        let (chains, rules, comments) = (out.chains.len(), out.rules.len(), out.comments.len());
        let derived = out.derived.len();
        let theirs = second.out;
        out.derived.push_str(&theirs.derived);
        out.comments
            .extend(theirs.comments.iter().map(|text| text.shifted(derived)));
        out.tables
            .extend(theirs.tables.into_iter().map(|table| TableData {
                chains: table.chains.shifted(chains),
                ..table
            }));
        // Their rules are placed again below, at their indices in the joined list.
        out.chains
            .extend(theirs.chains.into_iter().map(|chain| ChainData {
                rules: Span::default(),
                ..chain
            }));
        let chain_of = |rule: &RuleData| {
            let chain = rule.chain as usize;
            if chain & DEFERRED != 0 {
                resolved[chain & !DEFERRED]
            } else {
                chain + chains
            }
        };
        out.rules.extend(theirs.rules.iter().map(|rule| RuleData {
            label: LabelData {
                head: rule.label.head.shifted(derived),
                ..rule.label
            },
            comments: rule.comments.shifted(comments),
            chain: chain_of(rule) as u32,
            ..*rule
        }));
        out.unparsed
            .extend(theirs.unparsed.into_iter().map(|u| Unparsed {
                line: u.line + lines_before,
                ..u
            }));
        for index in rules..self.out.rules.len() {
            self.place(index, self.out.rules[index].chain as usize);
        }
        // The state the end of the dump left: the second half's, unless it never left
        // the table it inherited.
        if !second.inherited {
            self.table_open = second.table_open;
        }
        Some(())
    }

    /// Records the arguments of the rule's `--comment` options, and in `cuts` the
    /// `-m comment --comment …` matches the label leaves out. The text's quotes balance.
    fn scan_comments(&mut self, text: &'a str) {
        self.cuts.clear();
        self.quote_cursor = QuoteCursor::default();
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(found) = self.finder.find(&bytes[from..]) {
            let option = from + found;
            let after = option + COMMENT_OPTION.len();
            from = after;
            // A whole argument, not part of one, and not inside a quoted argument.
            let whole = (option == 0 || bytes[option - 1].is_ascii_whitespace())
                && bytes.get(after).is_some_and(u8::is_ascii_whitespace);
            if !whole || self.inside_quotes(text, option) {
                continue;
            }
            let value_start = after + skip_whitespace(&bytes[after..]);
            let Some((value_end, value)) = self.read_argument(text, value_start) else {
                continue;
            };
            self.out.comments.push(value);
            // The `-m comment` before the option must follow the previous comment's value:
            // in `--comment -m comment --comment x` that `-m` is the first comment, and
            // cutting it twice would cut the label backwards.
            let previous_end = self.cuts.last().map_or(0, |&(_, end)| end);
            if let Some(match_start) = comment_match_start(&text[..option])
                && match_start >= previous_end
            {
                self.cuts.push((match_start, value_end));
            }
            from = value_end;
        }
    }

    /// Whether offset `at` of `text` (the current rule line's text) lies inside a quoted
    /// argument, from the quotes `read` found, as [`has_open_quote`] of the text before it
    /// would say. A quote before the text (in a chain name) started the line's scan in
    /// another state, and lines not read as rule lines have no quotes recorded: those scan
    /// the text. Offsets are asked in increasing order, each one preceded by whitespace,
    /// so each question reads on from where the previous one stopped: a line of n
    /// `--comment` options took n² when each started over (found by fuzzing: a 1.9 MB
    /// line took 2.8 s, and takes 8 ms so).
    fn inside_quotes(&mut self, text: &str, at: usize) -> bool {
        let start = self.offset(text);
        let cursor = &mut self.quote_cursor;
        if self.quotes_read && self.quotes.first().is_none_or(|&q| q >= start) {
            let before = &self.quotes[cursor.quotes..];
            cursor.quotes += before.iter().take_while(|&&q| q < start + at).count();
            cursor.quotes % 2 == 1
        } else {
            if at < cursor.at {
                // Asked out of order after all: start over rather than slice backwards.
                *cursor = QuoteCursor::default();
            }
            let scan = scan_quotes(
                &text.as_bytes()[..at],
                cursor.at,
                cursor.open,
                false,
                |_| {},
            );
            (cursor.at, cursor.open) = (at, scan.open);
            scan.open
        }
    }

    /// Reads the argument starting at `start`: its end, and where its value (unquoted,
    /// unescaped) lives. None at the end of the text.
    fn read_argument(&mut self, text: &'a str, start: usize) -> Option<(usize, Text)> {
        let bytes = text.as_bytes();
        if start >= bytes.len() {
            return None;
        }
        if bytes[start] != b'"' {
            let end = start
                + bytes[start..]
                    .iter()
                    .position(u8::is_ascii_whitespace)
                    .unwrap_or(bytes.len() - start);
            return Some((end, Text::dump(self.span(&text[start..end]))));
        }
        let inner = start + 1;
        let mut i = inner;
        let mut escaped = false;
        loop {
            // The caller checked that the quotes balance, so the closing quote exists.
            i += memchr2(b'"', b'\\', bytes.get(i..)?)?;
            if bytes[i] == b'"' {
                break;
            }
            escaped = true;
            // Skip the backslash and the character it escapes (which may be a quote).
            i += 2;
        }
        let value = if escaped {
            let start = self.out.derived.len();
            unescape(&text[inner..i], &mut self.out.derived);
            Text::derived(Span::new(start, self.out.derived.len()))
        } else {
            Text::dump(self.span(&text[inner..i]))
        };
        Some((i + 1, value))
    }

    fn unparsed(&mut self, line: usize, error: LineError, text: &str) {
        self.out.unparsed.push(Unparsed {
            line,
            error,
            excerpt: excerpt(text),
        });
    }

    fn finish(mut self, last_line: usize) -> Contents {
        debug_assert!(!self.aborted && self.deferred.is_empty());
        if self.table_open {
            let name = self.open_table_name();
            self.unparsed(last_line, LineError::Uncommitted(name), "");
        }
        if !self.grouped {
            self.regroup();
        }
        self.out.shrink_to_fit();
        self.out
    }

    /// Makes each chain's rules contiguous again, keeping their order, for a dump that
    /// interleaved the rules of several chains (iptables-save never does).
    fn regroup(&mut self) {
        // A stable sort: each chain keeps its rules' order.
        self.out.rules.sort_by_key(|rule| rule.chain);
        for chain in &mut self.out.chains {
            chain.rules = Span::default();
        }
        for index in 0..self.out.rules.len() {
            self.place(index, self.out.rules[index].chain as usize);
        }
    }
}

/// Where [`Parser::inside_quotes`] stopped in the current rule's text: quotes counted of
/// those recorded, or, when it scans the text, the offset reached and whether a quoted
/// argument is open there.
#[derive(Debug, Clone, Copy, Default)]
struct QuoteCursor {
    quotes: usize,
    at: usize,
    open: bool,
}

/// The end of the physical line starting at `pos`: the offset of its `\n`, or the end.
fn line_end(bytes: &[u8], pos: usize) -> usize {
    memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i)
}

fn skip_whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len())
}

/// Where the `-m comment` before a `--comment` option starts, when `before` (the text up
/// to the option) ends with it.
fn comment_match_start(before: &str) -> Option<usize> {
    let is_space = |c: char| c.is_ascii_whitespace();
    let module = before.trim_end_matches(is_space).strip_suffix("comment")?;
    let option = module.trim_end_matches(is_space);
    if option.len() == module.len() {
        return None;
    }
    let rest = option.strip_suffix("-m")?;
    (rest.is_empty() || rest.ends_with(is_space)).then_some(rest.len())
}

/// Appends a quoted argument's inside with its backslash escapes resolved.
fn unescape(quoted: &str, out: &mut String) {
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// Parses `[packets:bytes]`, the whole of `field`.
fn parse_counters(field: &str) -> Result<Counters, LineError> {
    match read_counters(field) {
        Some((counters, len)) if len == field.len() => Ok(counters),
        _ => Err(LineError::BadCounters(excerpt(field))),
    }
}

/// Reads `[packets:bytes]` at the start of `text`: the counters and the field's length.
/// One pass over the digits: every rule line starts with this field, and splitting it
/// first was a tenth of the parser's instructions.
fn read_counters(text: &str) -> Option<(Counters, usize)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'[') {
        return None;
    }
    let (packets, colon) = read_u64(bytes, 1, b':')?;
    let (bytes_count, close) = read_u64(bytes, colon + 1, b']')?;
    let counters = Counters {
        packets,
        bytes: bytes_count,
    };
    Some((counters, close + 1))
}

/// The decimal number that starts at `start` and ends at the byte `end`, and where that
/// byte is. Digits only, as iptables-save prints counters (`str::parse` also takes a
/// sign); None when there is no digit, another byte, or an overflow.
fn read_u64(bytes: &[u8], start: usize, end: u8) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if b == end {
            return (i > start).then_some((n, i));
        }
        let digit = b.wrapping_sub(b'0');
        if digit >= 10 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    None
}

/// Appends `text` without each span and one space that separated it from its neighbours.
fn strip_spans(text: &str, spans: &[(usize, usize)], out: &mut String) {
    let mut kept_from = 0;
    for &span in spans {
        let (cut_start, cut_end) = widened(text, span, kept_from);
        out.push_str(&text[kept_from..cut_start]);
        kept_from = cut_end;
    }
    out.push_str(&text[kept_from..]);
}

/// The span widened by the one space that separated it from its neighbours in `text`:
/// the one before it if there is one after `kept_from`, else the one after it.
fn widened(text: &str, (start, end): (usize, usize), kept_from: usize) -> (usize, usize) {
    if start > kept_from && text.as_bytes()[start - 1] == b' ' {
        (start - 1, end)
    } else if text.as_bytes().get(end) == Some(&b' ') {
        (start, end + 1)
    } else {
        (start, end)
    }
}

#[cfg(test)]
mod tests;
