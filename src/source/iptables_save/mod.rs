//! Parser for the output of `iptables-save --counters` (and the ip6tables and legacy
//! variants): the text of one iptables source → a [`Ruleset`].
//!
//! It never fails as a whole: a line it does not understand is recorded in
//! [`Ruleset::unparsed`] with its line number and the rest of the dump is still read.
//! Each rule is split into arguments once (module `tokens`); its comments, its `rule` label (the
//! text without its comment matches) and the match parameters views read all come from
//! those arguments.

mod tokens;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use memchr::memchr;

use crate::ruleset::{
    BaseChain, Chain, Counters, Family, Hook, LineError, Match, Matches, Param, Rule, Ruleset,
    Table, Unparsed,
};
use crate::source::{self, Limits, Presence, Reading, Source, SourceError, SourceId};

/// A source read by running its save command (`iptables-save --counters` and the ip6tables
/// and legacy variants), another command of the same output (Munin's `env.iptables`), or
/// from a saved dump (the audit's `--rules-file`).
#[derive(Debug, Clone)]
pub struct Saved {
    id: SourceId,
    input: Input,
}

#[derive(Debug, Clone)]
enum Input {
    Command(String),
    File(PathBuf),
}

impl Saved {
    /// `id` read by its own save command, found in `PATH`.
    pub fn new(id: SourceId) -> Self {
        Saved::with_command(id, id.reader())
    }

    /// `id` read by `command`.
    pub fn with_command(id: SourceId, command: impl Into<String>) -> Self {
        Saved {
            id,
            input: Input::Command(command.into()),
        }
    }

    /// `id` as saved in the file at `path`.
    pub fn from_file(id: SourceId, path: impl Into<PathBuf>) -> Self {
        Saved {
            id,
            input: Input::File(path.into()),
        }
    }

    /// The dump, unparsed: the command's output, or the file's text.
    fn dump(
        &self,
        limits: Limits,
    ) -> impl Future<Output = Result<source::CommandOutput, SourceError>> + Send + 'static {
        let (id, input) = (self.id, self.input.clone());
        async move {
            match input {
                Input::Command(command) => {
                    source::run(
                        &command,
                        &["--counters"],
                        limits.timeout,
                        limits.max_output_bytes,
                    )
                    .await
                }
                Input::File(path) => {
                    source::blocking(id, move || read_file(&path, limits.max_output_bytes)).await
                }
            }
        }
    }
}

impl Source for Saved {
    fn id(&self) -> SourceId {
        self.id
    }

    fn presence(&self, timeout: std::time::Duration) -> Presence {
        let family = self.id.family().unwrap_or(Family::Ipv4);
        match self.id {
            SourceId::IptablesLegacy | SourceId::Ip6tablesLegacy => source::legacy_presence(family),
            _ => source::iptables_presence(family, timeout),
        }
    }

    fn asks_first(&self) -> bool {
        matches!(
            self.id,
            SourceId::IptablesLegacy | SourceId::Ip6tablesLegacy
        )
    }

    fn read(&self, limits: Limits) -> BoxFuture<'static, Result<Reading, SourceError>> {
        let dump = self.dump(limits);
        let id = self.id;
        let family = id.family().unwrap_or(Family::Ipv4);
        Box::pin(async move {
            let output = dump.await?;
            // Parsing 100k rules takes CPU time: off the I/O threads.
            source::blocking(id, move || Ok(reading(family, output, None))).await
        })
    }
}

/// What a read that gave `output` found: `parsed`, when the dump was parsed already, else
/// its parse as a `family` dump.
pub(crate) fn reading(
    family: Family,
    output: source::CommandOutput,
    parsed: Option<Ruleset>,
) -> Reading {
    let ruleset = parsed.unwrap_or_else(|| parse(family, &output.stdout));
    Reading {
        invalid_utf8_lines: output.invalid_utf8_lines,
        stderr: output.stderr,
        ..Reading::new(ruleset)
    }
}

/// A saved dump, bounded as a dump command's output is, read lossily as a dump is (a
/// comment may hold any bytes).
fn read_file(path: &Path, limit: usize) -> Result<source::CommandOutput, SourceError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| SourceError::Read {
            command: path.display().to_string(),
            source: Arc::new(e),
        })?;
    if bytes.len() > limit {
        return Err(SourceError::OutputTooLarge {
            command: path.display().to_string(),
            limit,
        });
    }
    let (stdout, invalid_utf8_lines) = source::decode_lossily(bytes);
    Ok(source::CommandOutput {
        stdout,
        stderr: String::new(),
        invalid_utf8_lines,
    })
}

use tokens::{Token, tokenize_line};

/// Longest excerpt of a bad line kept for logs.
const EXCERPT_CHARS: usize = 120;

/// Parses a whole dump of a `family` iptables source. Lines that do not fit the format are listed
/// in [`Ruleset::unparsed`].
pub fn parse(family: Family, dump: &str) -> Ruleset {
    let mut parser = Parser {
        family,
        out: Ruleset::default(),
        table_open: false,
        chains: HashMap::new(),
        tokens: Vec::new(),
        incompatible: Vec::new(),
    };
    let bytes = dump.as_bytes();
    let (mut pos, mut line_no) = (0, 0);
    while pos < bytes.len() {
        line_no += 1;
        let first_line = line_no;
        let indent = bytes[pos..]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let end = match bytes.get(pos + indent) {
            Some(b'[' | b'-') => {
                let (end, newlines) = parser.rule_line(&dump[pos..], indent, first_line);
                line_no += newlines;
                pos + end
            }
            _ => {
                let end = memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
                let line = strip_cr(&dump[pos..end]);
                if let Err(error) = parser.other_line(line.trim()) {
                    parser.unparsed(first_line, error, line);
                }
                end
            }
        };
        pos = end + 1;
    }
    parser.finish(line_no)
}

struct Parser<'a> {
    family: Family,
    out: Ruleset,
    /// Whether the last table of `out.tables` is still open (no COMMIT yet).
    table_open: bool,
    /// Chains of the open table by name, as indices into its chains.
    chains: HashMap<&'a str, usize>,
    /// Scratch: the arguments of the current rule.
    tokens: Vec<Token<'a>>,
    /// Tables iptables-save said it cannot show: nf_tables tables of another tool that
    /// only share a name with an xtables table.
    incompatible: Vec<&'a str>,
}

impl<'a> Parser<'a> {
    /// Reads the rule line at the start of `rest` (after `indent` blanks): its end in
    /// `rest` and the physical lines it goes on to past the first (a quoted comment may
    /// hold a newline).
    fn rule_line(&mut self, rest: &'a str, indent: usize, line_no: usize) -> (usize, usize) {
        let first_end = memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        let fail = |parser: &mut Self, error, end: usize| {
            parser.unparsed(line_no, error, strip_cr(&rest[..end]));
            (end, 0)
        };
        let line = &rest[indent..first_end];
        let (counters, after) = if line.starts_with('[') {
            match read_counters(line) {
                Some((counters, len)) => (counters, indent + len),
                None => {
                    let field = memchr(b']', line.as_bytes()).map_or(line, |c| &line[..=c]);
                    let error = LineError::BadCounters(excerpt(strip_cr(field)));
                    return fail(self, error, first_end);
                }
            }
        } else {
            // A dump taken without --counters: the rule exists, its counters are unknown
            // and reported as zero rather than dropping the rule.
            (Counters::default(), indent)
        };
        let spaced = rest[after..first_end].trim_start_matches([' ', '\t']);
        let Some(rule) = spaced.strip_prefix("-A ") else {
            return fail(self, LineError::Unknown, first_end);
        };
        if !self.table_open {
            return fail(self, LineError::OutsideTable, first_end);
        }
        let rule_start = rule.as_ptr().addr() - rest.as_ptr().addr();
        // From here the rule may go on past the first physical line.
        let rule = &rest[rule_start..];
        let name_len = rule
            .bytes()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rule.len());
        let chain = &rule[..name_len];
        // The text starts after the one blank that ends the chain name; a newline there
        // ends the line.
        let text_start =
            rule_start + name_len + usize::from(rule[name_len..].starts_with([' ', '\t']));
        let mut tokens = std::mem::take(&mut self.tokens);
        let scanned = tokenize_line(&rest[text_start..], &mut tokens);
        let result = match scanned {
            Ok(line_end) => {
                let end = text_start + line_end.end;
                let text = strip_cr(&rest[text_start..end]);
                match self.chains.get(chain) {
                    Some(&index) => {
                        self.append_rule(index, counters, text, &tokens);
                        (end, line_end.newlines)
                    }
                    None => {
                        let error = LineError::UndeclaredChain(chain.to_owned());
                        self.unparsed(line_no, error, strip_cr(&rest[..end]));
                        (end, line_end.newlines)
                    }
                }
            }
            Err(error) => {
                // Only the end of the dump leaves a quote open: the rest is this line.
                let newlines = memchr::memchr_iter(b'\n', rest.as_bytes()).count();
                let line = strip_cr(rest.strip_suffix('\n').unwrap_or(rest));
                self.unparsed(line_no, LineError::BadArguments(error.to_string()), line);
                (rest.len(), newlines)
            }
        };
        self.tokens = tokens;
        result
    }

    fn append_rule(&mut self, chain: usize, counters: Counters, text: &str, tokens: &[Token<'_>]) {
        let read = read_rule(text, tokens);
        let Some(chain) = self
            .out
            .tables
            .last_mut()
            .and_then(|t| t.chains.get_mut(chain))
        else {
            return;
        };
        chain.rules.push(Rule {
            position: chain.rules.len() as u32 + 1,
            handle: None,
            counters,
            counted: true,
            text: text.to_owned(),
            stripped: read.stripped,
            comments: read.comments,
            matches: read.matches,
        });
    }

    /// A line that is not a rule, trimmed.
    fn other_line(&mut self, line: &'a str) -> Result<(), LineError> {
        match line.as_bytes().first() {
            Some(b'#') => {
                if let Some(name) = incompatible_table(line) {
                    self.incompatible.push(name);
                }
                Ok(())
            }
            None => Ok(()),
            Some(b'*') => self.start_table(line[1..].trim()),
            Some(b':') => self.declare_chain(&line[1..]),
            _ if line == "COMMIT" => {
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
        self.table_open = false;
        self.chains.clear();
    }

    fn start_table(&mut self, name: &str) -> Result<(), LineError> {
        let previous = self.table_open.then(|| self.open_table_name());
        self.close_table();
        self.out.tables.push(Table::new(self.family, name));
        self.table_open = true;
        match previous {
            Some(previous) => Err(LineError::Uncommitted(previous)),
            None => Ok(()),
        }
    }

    fn open_table_name(&self) -> String {
        self.out
            .tables
            .last()
            .map(|t| t.name.clone())
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
            .ok_or_else(|| LineError::BadChain(format!("chain {name:?} has no policy")))?;
        let counters = match words.next() {
            Some(counters) => parse_counters(counters)?,
            None => Counters::default(),
        };
        let base = match policy {
            "-" => None,
            policy => Some(BaseChain {
                hook: Hook::of_builtin_chain(name),
                policy: policy.parse().map_err(|e: crate::ruleset::UnknownPolicy| {
                    LineError::BadChain(e.to_string())
                })?,
                counters,
                chain_type: None,
                priority: None,
            }),
        };
        let Some(table) = self.out.tables.last_mut() else {
            return Err(LineError::OutsideTable);
        };
        match self.chains.entry(name) {
            Entry::Occupied(_) => return Err(LineError::DuplicateChain(name.to_owned())),
            Entry::Vacant(slot) => slot.insert(table.chains.len()),
        };
        table.chains.push(Chain {
            name: name.to_owned(),
            base,
            rules: Vec::new(),
        });
        Ok(())
    }

    fn unparsed(&mut self, line: usize, error: LineError, text: &str) {
        self.out.unparsed.push(Unparsed {
            line,
            error,
            excerpt: excerpt(text),
        });
    }

    fn finish(mut self, last_line: usize) -> Ruleset {
        if self.table_open {
            let name = self.open_table_name();
            self.unparsed(last_line, LineError::Uncommitted(name), "");
        }
        // What iptables-save 1.8.9 prints of such a table is its idea of the built-in
        // chains, not the table; the nftables source exports the real one.
        let incompatible = self.incompatible;
        self.out
            .tables
            .retain(|t| !incompatible.contains(&t.name.as_str()));
        self.out
    }
}

/// The table named by iptables-save's warning that it cannot show it: "# Table `nat'
/// contains incompatible base-chains, use 'nft' tool to list them." (1.8.9), or "# Table
/// `nat' is incompatible, use 'nft' tool." (earlier versions, which print no table after
/// it).
fn incompatible_table(comment: &str) -> Option<&str> {
    let rest = comment.strip_prefix("# Table `")?;
    let (name, after) = rest.split_once('\'')?;
    after.contains("incompatible").then_some(name)
}

/// What a rule's arguments say besides its text.
struct ReadRule {
    /// The text without its comment matches, if it had any.
    stripped: Option<String>,
    comments: Vec<String>,
    matches: Matches,
}

/// The option whose argument is a comment.
const COMMENT_OPTION: &str = "--comment";

/// Reads the comments, the label and the match parameters of a rule from its arguments.
///
/// Every unquoted `--comment` with an argument is a comment. The `-m comment --comment X`
/// matches are cut from the label, one blank each: a `-m comment` counts only when it
/// follows the previous cut, so that in `--comment -m comment --comment x` the first
/// comment's value `-m` is not cut twice.
fn read_rule(text: &str, tokens: &[Token<'_>]) -> ReadRule {
    let mut comments = Vec::new();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut matches = Matches::default();
    let mut negated = false;
    let is = |token: &Token<'_>, word: &str| !token.quoted && token.value == word;
    let mut i = 0;
    while i < tokens.len() {
        let arg = tokens.get(i + 1);
        if is(&tokens[i], COMMENT_OPTION)
            && let Some(value) = arg
        {
            comments.push(value.value.clone().into_owned());
            let previous_end = cuts.last().map_or(0, |&(_, end)| end);
            if i >= 2
                && is(&tokens[i - 2], "-m")
                && is(&tokens[i - 1], "comment")
                && tokens[i - 2].start >= previous_end
            {
                cuts.push((tokens[i - 2].start, value.end));
            }
            negated = false;
            i += 2;
            continue;
        }
        let param = |value: &str| Param {
            negated,
            value: value.into(),
        };
        let mut consumed = 2;
        match (tokens[i].value.as_ref(), arg.map(|a| a.value.as_ref())) {
            ("!", _) => {
                negated = true;
                i += 1;
                continue;
            }
            // A quoted `--comment` is some option's argument: never read what follows it as
            // an option either.
            (COMMENT_OPTION, Some(_)) => {}
            ("-s" | "--source", Some(v)) => matches.set(Match::Source, param(v)),
            ("-d" | "--destination", Some(v)) => matches.set(Match::Destination, param(v)),
            ("-p" | "--protocol", Some(v)) => matches.set(Match::Protocol, param(v)),
            ("--sport" | "--source-port" | "--sports" | "--source-ports", Some(v)) => {
                matches.set(Match::SourcePort, param(v))
            }
            ("--dport" | "--destination-port" | "--dports" | "--destination-ports", Some(v)) => {
                matches.set(Match::DestinationPort, param(v))
            }
            ("-i" | "--in-interface", Some(v)) => matches.set(Match::InInterface, param(v)),
            ("-o" | "--out-interface", Some(v)) => matches.set(Match::OutInterface, param(v)),
            ("-j" | "--jump" | "-g" | "--goto", Some(v)) => matches.set(
                Match::Target,
                Param {
                    negated: false,
                    value: v.into(),
                },
            ),
            _ => consumed = 1,
        }
        negated = false;
        i += consumed;
    }
    let stripped = (!cuts.is_empty()).then(|| strip_spans(text, &cuts));
    ReadRule {
        stripped,
        comments,
        matches,
    }
}

fn strip_cr(line: &str) -> &str {
    line.strip_suffix('\r').unwrap_or(line)
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
fn read_counters(text: &str) -> Option<(Counters, usize)> {
    let inner = text.strip_prefix('[')?;
    let close = memchr(b']', inner.as_bytes())?;
    let (packets, bytes) = inner[..close].split_once(':')?;
    let counters = Counters {
        packets: read_u64(packets)?,
        bytes: read_u64(bytes)?,
    };
    Some((counters, close + 2))
}

/// A decimal number of digits only, as iptables-save prints counters (`str::parse` also
/// takes a sign).
fn read_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `text` without each span and one blank that separated it from its neighbours: the one
/// before it if there is one after the previous span, else the one after it.
fn strip_spans(text: &str, spans: &[(usize, usize)]) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut kept_from = 0;
    for &(start, end) in spans {
        let (cut_start, cut_end) = if start > kept_from && bytes[start - 1] == b' ' {
            (start - 1, end)
        } else if bytes.get(end) == Some(&b' ') {
            (start, end + 1)
        } else {
            (start, end)
        };
        out.push_str(&text[kept_from..cut_start]);
        kept_from = cut_end;
    }
    out.push_str(&text[kept_from..]);
    out
}

#[cfg(test)]
mod tests;
