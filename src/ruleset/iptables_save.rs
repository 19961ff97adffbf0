//! Parser for the output of `iptables-save --counters` (and ip6tables / legacy variants).
//!
//! It never fails as a whole: a line it does not understand is recorded in
//! [`Ruleset::unparsed`] with its line number and the rest of the dump is still read.

use std::collections::HashMap;

use super::tokens::{Token, has_open_quote, tokenize};
use super::{Chain, Counters, LineError, Matches, Param, Rule, Ruleset, Table, Unparsed};

/// Longest excerpt of a bad line kept for logs.
const EXCERPT_CHARS: usize = 120;

/// Parses a whole dump. Lines that do not fit the format are listed in `unparsed`.
pub fn parse(text: &str) -> Ruleset {
    let mut parser = Parser::default();
    let mut line_no = 0;
    let mut rest = text;
    while !rest.is_empty() {
        line_no += 1;
        let first_line = line_no;
        let (mut line, mut tail) = split_line(rest);
        // A quoted comment may hold a newline: keep reading physical lines until its quote
        // closes. The logical line is still one slice of the input.
        if (line.starts_with('[') || line.starts_with('-')) && has_open_quote(line) {
            let mut end = line.len();
            while has_open_quote(&rest[..end]) && !tail.is_empty() {
                let (next, next_tail) = split_line(tail);
                line_no += 1;
                end = rest.len() - tail.len() + next.len();
                tail = next_tail;
            }
            line = &rest[..end];
        }
        if let Err(error) = parser.line(line) {
            parser.unparsed(first_line, error, line);
        }
        rest = tail;
    }
    parser.finish(line_no)
}

/// Splits off the first physical line (without its `\n` or `\r\n`).
fn split_line(text: &str) -> (&str, &str) {
    let (line, tail) = match text.find('\n') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    (line.strip_suffix('\r').unwrap_or(line), tail)
}

#[derive(Default)]
struct Parser<'a> {
    ruleset: Ruleset,
    table: Option<Table>,
    chain_index: HashMap<String, usize>,
    /// The chain of the previous rule: iptables-save lists a chain's rules together, so
    /// this spares a map lookup for nearly every rule.
    last_chain: Option<(&'a str, usize)>,
    tokens: Vec<Token<'a>>,
    comment_spans: Vec<(usize, usize)>,
}

impl<'a> Parser<'a> {
    fn line(&mut self, line: &'a str) -> Result<(), LineError> {
        let trimmed = line.trim_start();
        match trimmed.as_bytes().first() {
            None | Some(b'#') => Ok(()),
            Some(b'*') => self.start_table(&trimmed[1..]),
            Some(b':') => self.declare_chain(&trimmed[1..]),
            Some(b'[') => {
                let close = trimmed
                    .find(']')
                    .ok_or_else(|| LineError::BadCounters(excerpt(trimmed)))?;
                let counters = parse_counters(&trimmed[..=close])?;
                let rule = trimmed[close + 1..].trim_start();
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
            _ if trimmed.trim_end() == "COMMIT" => match self.table.take() {
                Some(table) => {
                    self.ruleset.tables.push(table);
                    self.chain_index.clear();
                    self.last_chain = None;
                    Ok(())
                }
                None => Err(LineError::OutsideTable),
            },
            _ => Err(LineError::Unknown),
        }
    }

    fn start_table(&mut self, name: &str) -> Result<(), LineError> {
        let previous = self.table.replace(Table {
            name: name.trim().to_owned(),
            chains: Vec::new(),
        });
        self.chain_index.clear();
        self.last_chain = None;
        match previous {
            Some(previous) => {
                let name = previous.name.clone();
                self.ruleset.tables.push(previous);
                Err(LineError::Uncommitted(name))
            }
            None => Ok(()),
        }
    }

    fn declare_chain(&mut self, decl: &str) -> Result<(), LineError> {
        let table = self.table.as_mut().ok_or(LineError::OutsideTable)?;
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
        if self.chain_index.contains_key(name) {
            return Err(LineError::DuplicateChain(name.to_owned()));
        }
        self.chain_index.insert(name.to_owned(), table.chains.len());
        table.chains.push(Chain {
            name: name.to_owned(),
            policy,
            counters,
            rules: Vec::new(),
        });
        Ok(())
    }

    fn append_rule(&mut self, counters: Counters, rule: &'a str) -> Result<(), LineError> {
        let table = self.table.as_mut().ok_or(LineError::OutsideTable)?;
        let (chain, text) = match rule.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&rule[..i], &rule[i + 1..]),
            None => (rule, ""),
        };
        let index = match self.last_chain {
            Some((last, index)) if last == chain => index,
            _ => {
                let index = *self
                    .chain_index
                    .get(chain)
                    .ok_or_else(|| LineError::UndeclaredChain(chain.to_owned()))?;
                self.last_chain = Some((chain, index));
                index
            }
        };
        tokenize(text, &mut self.tokens).map_err(|e| LineError::BadArguments(e.to_string()))?;
        let rule = build_rule(counters, text, &self.tokens, &mut self.comment_spans);
        table.chains[index].rules.push(rule);
        Ok(())
    }

    fn unparsed(&mut self, line: usize, error: LineError, text: &str) {
        self.ruleset.unparsed.push(Unparsed {
            line,
            error,
            excerpt: excerpt(text),
        });
    }

    fn finish(mut self, last_line: usize) -> Ruleset {
        if let Some(table) = self.table.take() {
            let name = table.name.clone();
            self.ruleset.tables.push(table);
            self.unparsed(last_line, LineError::Uncommitted(name), "");
        }
        // The snapshot lives until the next collection: return what the rule lists
        // over-allocated while growing (a large list is remapped, not copied).
        for chain in self.ruleset.tables.iter_mut().flat_map(|t| &mut t.chains) {
            chain.rules.shrink_to_fit();
        }
        self.ruleset
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// Parses `[packets:bytes]`.
fn parse_counters(field: &str) -> Result<Counters, LineError> {
    let bad = || LineError::BadCounters(excerpt(field));
    let inner = field
        .strip_prefix('[')
        .and_then(|f| f.strip_suffix(']'))
        .ok_or_else(bad)?;
    let (packets, bytes) = inner.split_once(':').ok_or_else(bad)?;
    Ok(Counters {
        packets: packets.parse().map_err(|_| bad())?,
        bytes: bytes.parse().map_err(|_| bad())?,
    })
}

/// Builds a rule from its text and arguments: comments, the text without them, and the
/// parameters views interpret.
/// `comment_spans` is scratch space the caller reuses across rules.
fn build_rule(
    counters: Counters,
    text: &str,
    tokens: &[Token<'_>],
    comment_spans: &mut Vec<(usize, usize)>,
) -> Rule {
    let mut comments = Vec::new();
    comment_spans.clear();
    let mut matches = Matches::default();
    let mut negated = false;
    let mut i = 0;
    while i < tokens.len() {
        // Every option below starts with '-' or is "!": skip other tokens (module names,
        // values of options not read here) without comparing them to each option.
        if !matches!(tokens[i].value.as_bytes().first(), Some(b'-' | b'!')) {
            negated = false;
            i += 1;
            continue;
        }
        let arg = tokens.get(i + 1).map(|t| t.value.as_ref());
        let param = |value: &str| {
            Some(Param {
                negated,
                value: value.to_owned(),
            })
        };
        let mut consumed = 2;
        match (tokens[i].value.as_ref(), arg) {
            ("!", _) => {
                negated = true;
                i += 1;
                continue;
            }
            ("-m", Some("comment"))
                if tokens.get(i + 2).is_some_and(|t| t.value == "--comment")
                    && tokens.len() > i + 3 =>
            {
                comments.push(tokens[i + 3].value.clone().into_owned());
                comment_spans.push((tokens[i].start, tokens[i + 3].end));
                consumed = 4;
            }
            // A comment argument can look like an option; never read it as one.
            ("--comment", Some(value)) => comments.push(value.to_owned()),
            ("-s" | "--source", Some(v)) => matches.source = param(v),
            ("-d" | "--destination", Some(v)) => matches.destination = param(v),
            ("-p" | "--protocol", Some(v)) => matches.protocol = param(v),
            ("--sport" | "--source-port" | "--sports" | "--source-ports", Some(v)) => {
                matches.source_port = param(v)
            }
            ("--dport" | "--destination-port" | "--dports" | "--destination-ports", Some(v)) => {
                matches.destination_port = param(v)
            }
            ("-i" | "--in-interface", Some(v)) => matches.in_interface = param(v),
            ("-o" | "--out-interface", Some(v)) => matches.out_interface = param(v),
            ("-j" | "--jump" | "-g" | "--goto", Some(v)) => matches.target = Some(v.to_owned()),
            _ => consumed = 1,
        }
        negated = false;
        i += consumed;
    }
    let uncommented = (!comment_spans.is_empty()).then(|| strip_spans(text, comment_spans));
    // A rule usually has one comment; the first push reserved room for four.
    comments.shrink_to_fit();
    Rule {
        counters,
        text: text.to_owned(),
        uncommented,
        comments,
        matches,
    }
}

/// Removes each span and one space that separated it from its neighbours.
fn strip_spans(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut kept_from = 0;
    for &(start, end) in spans {
        let (cut_start, cut_end) = if start > kept_from && text.as_bytes()[start - 1] == b' ' {
            (start - 1, end)
        } else if text.as_bytes().get(end) == Some(&b' ') {
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
