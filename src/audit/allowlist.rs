//! Allowlists as azure-iptables-monitor reads them: a directory of pattern files named
//! after the iptables tables plus `global`, one regular expression per line. They are
//! read again on every check, so that an updated ConfigMap takes effect without a
//! restart; reading a few small files is the only I/O here, and [`Allowlist::parse`]
//! is the pure part that the tests drive.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use regex_automata::meta::{self, Regex};
use regex_syntax::ast::{self, Ast, ClassPerl, ClassPerlKind, ClassSetItem};

use super::TABLES;

/// The file whose patterns apply to every table.
pub const GLOBAL: &str = "global";

/// The file of patterns for the lines of the native nftables tables (`audit --nftables`).
pub const NFTABLES: &str = "nftables";

/// Largest pattern file read: an allowlist is a few hundred lines, and a file far larger
/// is a mistake that must not be read into memory whole.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Largest compiled size of one pattern: far above what a rule-matching pattern needs,
/// and small enough that a few thousand hostile lines cannot take the collector's memory.
pub const MAX_PATTERN_BYTES: usize = 1 << 20;

/// Largest compiled size of all the patterns of one directory together.
pub const MAX_TOTAL_BYTES: usize = 32 << 20;

/// Memory each pattern's lazy DFA may use while matching; past it the engine clears it or
/// falls back to a slower one, so matching stays bounded too.
const MATCH_CACHE_BYTES: usize = 64 << 10;

/// Why an allowlist cannot be used. Every variant names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AllowlistError {
    /// The directory does not exist or is not a directory.
    #[error("allowlist directory {dir}: {reason}")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern file exists but cannot be read.
    #[error("cannot read {file}: {reason}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A pattern file is larger than [`MAX_FILE_BYTES`].
    #[error("{file}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge {
        /// The file.
        file: PathBuf,
    },
    /// A pattern file is a FIFO, a device or anything else that reading could block on.
    #[error("{file}: not a regular file")]
    NotRegular {
        /// The file.
        file: PathBuf,
    },
    /// A line is not a valid regular expression.
    #[error("{file}:{line}: invalid pattern")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The regex engine's explanation.
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A line compiles to more than [`MAX_PATTERN_BYTES`].
    #[error("{file}:{line}: pattern compiles to more than {MAX_PATTERN_BYTES} bytes")]
    PatternTooLarge {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// With this line, the directory's patterns compile to more than [`MAX_TOTAL_BYTES`].
    #[error(
        "{file}:{line}: the allowlist's patterns compile to more than {MAX_TOTAL_BYTES} bytes \
         together"
    )]
    TotalTooLarge {
        /// The file.
        file: PathBuf,
        /// 1-based line number of the pattern that crossed the limit.
        line: usize,
    },
    /// A line holds only blanks: as a pattern it would match every line, so it is far
    /// more likely a mistake than an intent.
    #[error("{file}:{line}: pattern of only whitespace (it would allow every rule)")]
    Whitespace {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// The compiled patterns of one directory.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    /// Patterns of `global`.
    global: Vec<Regex>,
    /// Patterns of each table's file, in [`TABLES`] order.
    tables: [Vec<Regex>; TABLES.len()],
    /// Patterns of `nftables`, for the lines of the native nftables tables.
    nftables: Vec<Regex>,
}

impl Allowlist {
    /// Reads the pattern files of `dir`. A missing file has no patterns (a ConfigMap
    /// may leave a table out); a missing directory is an error.
    pub fn load(dir: &Path) -> Result<Allowlist, AllowlistError> {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(AllowlistError::Directory {
                    dir: dir.to_owned(),
                    reason: "not a directory".to_owned(),
                });
            }
            Err(e) => {
                return Err(AllowlistError::Directory {
                    dir: dir.to_owned(),
                    reason: e.to_string(),
                });
            }
        }
        let mut files = Vec::new();
        for name in TABLES.iter().chain(&[GLOBAL, NFTABLES]) {
            let file = dir.join(name);
            if let Some(text) = read_bounded(&file)? {
                files.push((file, text));
            }
        }
        Allowlist::parse(
            files
                .iter()
                .map(|(file, text)| (file.as_path(), text.as_str())),
        )
    }

    /// Compiles the pattern files given as (path, text); a file's name says which table
    /// it is for, and a name that is none of [`TABLES`] nor [`GLOBAL`] is ignored.
    pub fn parse<'a>(
        files: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Allowlist, AllowlistError> {
        let mut allowlist = Allowlist::default();
        let mut compiled_bytes = 0;
        for (file, text) in files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let slot = match TABLES.iter().position(|t| *t == name) {
                Some(i) => &mut allowlist.tables[i],
                None if name == GLOBAL => &mut allowlist.global,
                None if name == NFTABLES => &mut allowlist.nftables,
                None => continue,
            };
            slot.extend(patterns(file, text, &mut compiled_bytes)?);
        }
        Ok(allowlist)
    }

    /// Whether a line of a native nftables table matches a pattern of `nftables` or of
    /// `global`.
    pub fn allows_nftables(&self, line: &str) -> bool {
        self.nftables
            .iter()
            .chain(&self.global)
            .any(|re| re.is_match(line))
    }

    /// Whether a line of `table` matches a pattern of that table or of `global`,
    /// anywhere in the line, as Go's `regexp.MatchString` searches it.
    pub fn allows(&self, table: &str, line: &str) -> bool {
        let own = TABLES
            .iter()
            .position(|t| *t == table)
            .map_or(&[][..], |i| &self.tables[i][..]);
        own.iter().chain(&self.global).any(|re| re.is_match(line))
    }
}

/// The patterns of one file: one per line, empty lines skipped. A line is used as it is
/// (no trimming, as the original does not trim), except for the `\r` of a CRLF ending.
/// `compiled_bytes` counts what the directory's patterns take so far.
fn patterns(
    file: &Path,
    text: &str,
    compiled_bytes: &mut usize,
) -> Result<Vec<Regex>, AllowlistError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.is_empty() {
            continue;
        }
        if line.trim().is_empty() {
            return Err(AllowlistError::Whitespace {
                file: file.to_owned(),
                line: line_no,
            });
        }
        let re = compile(line).map_err(|e| match e {
            CompileError::TooLarge => AllowlistError::PatternTooLarge {
                file: file.to_owned(),
                line: line_no,
            },
            CompileError::Invalid(source) => AllowlistError::Invalid {
                file: file.to_owned(),
                line: line_no,
                source,
            },
        })?;
        *compiled_bytes += re.memory_usage();
        if *compiled_bytes > MAX_TOTAL_BYTES {
            return Err(AllowlistError::TotalTooLarge {
                file: file.to_owned(),
                line: line_no,
            });
        }
        out.push(re);
    }
    Ok(out)
}

/// Why one pattern cannot be used.
enum CompileError {
    Invalid(std::sync::Arc<dyn std::error::Error + Send + Sync>),
    TooLarge,
}

/// `pattern` compiled with Go's meaning of the Perl classes and within
/// [`MAX_PATTERN_BYTES`]. The size limit holds while compiling, so a hostile pattern is
/// refused before it takes the memory.
fn compile(pattern: &str) -> Result<Regex, CompileError> {
    let pattern =
        go_perl_classes(pattern).map_err(|e| CompileError::Invalid(std::sync::Arc::new(e)))?;
    Regex::builder()
        .configure(
            meta::Config::new()
                .nfa_size_limit(Some(MAX_PATTERN_BYTES))
                .onepass_size_limit(Some(MAX_PATTERN_BYTES))
                .dfa_size_limit(Some(MAX_PATTERN_BYTES))
                .hybrid_cache_capacity(MATCH_CACHE_BYTES),
        )
        .build(&pattern)
        .map_err(|e| match e.size_limit() {
            Some(_) => CompileError::TooLarge,
            None => CompileError::Invalid(std::sync::Arc::new(e)),
        })
}

/// `pattern` with `\d \s \w` (and their negations) spelt as the ASCII classes they are in
/// Go's RE2 syntax, which the allowlists are written in, and `\b` as an ASCII word
/// boundary. In the regex crate they are Unicode classes, which are not only another
/// meaning but hundreds of times larger once repeated (`\w{50}`).
fn go_perl_classes(pattern: &str) -> Result<String, Box<ast::Error>> {
    struct Spans(Vec<(ast::Span, &'static str)>);
    impl ast::Visitor for Spans {
        type Output = Vec<(ast::Span, &'static str)>;
        type Err = ast::Error;
        fn finish(self) -> Result<Self::Output, ast::Error> {
            Ok(self.0)
        }
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ast::Error> {
            match ast {
                Ast::ClassPerl(class) => self.0.push((class.span, ascii_class(class))),
                Ast::Assertion(assertion) if assertion.kind == ast::AssertionKind::WordBoundary => {
                    self.0.push((assertion.span, r"(?-u:\b)"));
                }
                _ => {}
            }
            Ok(())
        }
        fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ast::Error> {
            if let ClassSetItem::Perl(class) = item {
                self.0.push((class.span, ascii_class(class)));
            }
            Ok(())
        }
    }
    let parsed = ast::parse::Parser::new().parse(pattern)?;
    let mut spans = ast::visit(&parsed, Spans(Vec::new()))?;
    // From the end, so that the offsets of those still to replace stay right.
    spans.sort_by_key(|(span, _)| std::cmp::Reverse(span.start.offset));
    let mut out = pattern.to_owned();
    for (span, replacement) in spans {
        out.replace_range(span.start.offset..span.end.offset, replacement);
    }
    Ok(out)
}

/// Go's ASCII class for a Perl class, as a bracketed class, which is valid both alone and
/// nested in another bracketed class.
fn ascii_class(class: &ClassPerl) -> &'static str {
    match (&class.kind, class.negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
        (ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
    }
}

/// The text of `file`, `None` when it does not exist. Anything but a regular file is
/// refused: opening a FIFO blocks until a writer comes, so the file is opened without
/// blocking and checked before it is read.
fn read_bounded(file: &Path) -> Result<Option<String>, AllowlistError> {
    let read_error = |e: std::io::Error| AllowlistError::Read {
        file: file.to_owned(),
        reason: e.to_string(),
    };
    let handle = match std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
    {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    if !handle.metadata().map_err(read_error)?.is_file() {
        return Err(AllowlistError::NotRegular {
            file: file.to_owned(),
        });
    }
    let mut bytes = Vec::new();
    handle
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(AllowlistError::TooLarge {
            file: file.to_owned(),
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| AllowlistError::Read {
            file: file.to_owned(),
            reason: format!("not UTF-8: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(files: &[(&str, &str)]) -> Result<Allowlist, AllowlistError> {
        let paths: Vec<(PathBuf, &str)> = files
            .iter()
            .map(|(name, text)| (Path::new("/cfg").join(name), *text))
            .collect();
        Allowlist::parse(paths.iter().map(|(p, t)| (p.as_path(), *t)))
    }

    #[test]
    fn table_patterns_apply_to_their_table_and_global_to_all() {
        let list = allowlist(&[
            (
                "nat",
                "^-A POSTROUTING -s 10\\.0\\.0\\.0/8 -j MASQUERADE$\n",
            ),
            ("global", "^-P [A-Z]+ ACCEPT$\n"),
        ])
        .expect("valid");
        let masquerade = "-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE";
        assert!(list.allows("nat", masquerade));
        assert!(!list.allows("filter", masquerade));
        assert!(list.allows("filter", "-P INPUT ACCEPT"));
        assert!(list.allows("nat", "-P OUTPUT ACCEPT"));
        assert!(!list.allows("filter", "-P INPUT DROP"));
    }

    #[test]
    fn patterns_search_unanchored_like_go_match_string() {
        let list = allowlist(&[("filter", "DOCKER")]).expect("valid");
        assert!(list.allows("filter", "-A FORWARD -j DOCKER-USER"));
        assert!(list.allows("filter", "-N DOCKER"));
        assert!(!list.allows("filter", "-A INPUT -j ACCEPT"));
    }

    #[test]
    fn blank_lines_are_skipped_and_crlf_endings_stripped() {
        let list = allowlist(&[("filter", "\n^-N X$\r\n\r\n\n^-N Y$")]).expect("valid");
        assert!(list.allows("filter", "-N X"));
        assert!(list.allows("filter", "-N Y"));
        assert!(!list.allows("filter", "-N Z"));
    }

    #[test]
    fn an_empty_allowlist_allows_nothing() {
        let list = allowlist(&[("unknown-name", ".*")]).expect("valid");
        assert!(!list.allows("filter", "-P INPUT ACCEPT"));
    }

    #[test]
    fn bad_patterns_name_file_and_line() {
        let err = allowlist(&[("filter", "ok\n\n(unclosed\n")]).expect_err("invalid");
        assert!(
            matches!(&err, AllowlistError::Invalid { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("/cfg/filter:3: invalid pattern"),
            "{err}"
        );
        for blank in [" ", "\t", "  \t "] {
            let text = format!("^-N A$\n{blank}\n");
            let err = allowlist(&[("global", &text)]).expect_err("whitespace");
            assert!(
                matches!(&err, AllowlistError::Whitespace { line: 2, .. }),
                "{blank:?}: {err:?}"
            );
            assert!(err.to_string().starts_with("/cfg/global:2:"), "{err}");
        }
    }

    #[test]
    fn patterns_too_large_once_compiled_are_refused_naming_file_and_line() {
        let err = allowlist(&[("filter", "^-N X$\n\\pL{100}\n")]).expect_err("too large");
        assert!(
            matches!(&err, AllowlistError::PatternTooLarge { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("/cfg/filter:2: "), "{err}");
        // Each under the limit, together over it: the line that crossed it is named.
        let many = "\\pL{20}\n".repeat(100);
        let err = allowlist(&[("global", "^-N X$\n"), ("nat", &many)]).expect_err("too large");
        let AllowlistError::TotalTooLarge { file, line } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(file, Path::new("/cfg/nat"));
        assert!((2..100).contains(line), "{line}");
        // What Unicode classes made huge is small with Go's ASCII ones.
        let list = allowlist(&[("filter", &"\\w{50}\n".repeat(2_000))]).expect("valid");
        assert!(list.allows("filter", &"x".repeat(50)));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("filter");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_owned();
        std::thread::spawn(move || tx.send(Allowlist::load(&path).map(drop)));
        let loaded = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("load returns instead of waiting for a writer");
        assert!(
            matches!(&loaded, Err(AllowlistError::NotRegular { file }) if *file == fifo),
            "{loaded:?}"
        );
    }

    #[test]
    fn patterns_keep_their_blanks() {
        let list = allowlist(&[("filter", " -j ACCEPT$")]).expect("valid");
        assert!(list.allows("filter", "-A INPUT -j ACCEPT"));
        assert!(!list.allows("filter", "-A INPUT-j ACCEPT"));
    }

    #[test]
    fn loading_reads_the_files_of_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("raw"), "^-A PREROUTING -j CT --notrack$\n").expect("write");
        let list = Allowlist::load(dir.path()).expect("loads");
        assert!(list.allows("raw", "-A PREROUTING -j CT --notrack"));
        assert!(!list.allows("nat", "-A PREROUTING -j CT --notrack"));
        std::fs::write(dir.path().join("nat"), "[").expect("write");
        let err = Allowlist::load(dir.path()).expect_err("invalid");
        assert!(err.to_string().contains("nat:1"), "{err}");
        let missing = dir.path().join("missing");
        assert!(matches!(
            Allowlist::load(&missing),
            Err(AllowlistError::Directory { .. })
        ));
        let big = "x\n".repeat(MAX_FILE_BYTES as usize / 2 + 1);
        std::fs::write(dir.path().join("nat"), big).expect("write");
        assert!(matches!(
            Allowlist::load(dir.path()),
            Err(AllowlistError::TooLarge { .. })
        ));
    }
}

/// The differences from Go's RE2 syntax that docs/audit.md lists, as the regex crate
/// shows them; if one of them changes, the document must change with it.
#[cfg(test)]
mod go_differences {
    use super::{Regex, compile};

    fn regex(pattern: &str) -> Option<Regex> {
        compile(pattern).ok()
    }

    #[test]
    fn documented_differences_hold() {
        // Accepted by both engines alike.
        for same in [
            r"\/",
            r"^-A KUBE-SEP-[A-Z0-9]{16} ",
            r"(?i)docker",
            r"[[:alpha:]]+",
        ] {
            assert!(regex(same).is_some(), "{same}");
        }
        // Go accepts these; the regex crate refuses them (an error naming file and line).
        for refused in [r"\Qa.b\E", r"\101", r"[[]"] {
            assert!(regex(refused).is_none(), "{refused}");
        }
        // Go has none of these, the regex crate gives them a meaning.
        assert!(regex(r"(?x) a b ").expect("x flag").is_match("ab"));
        let intersection = regex(r"^[a-c&&b-d]$").expect("class set operation");
        assert!(!intersection.is_match("&") && !intersection.is_match("a"));
        // `\B` stays Unicode-aware: between two letters, one of them not ASCII.
        assert!(regex(r"a\Bé").expect("not a word boundary").is_match("aé"));
    }

    #[test]
    fn perl_classes_and_word_boundaries_are_ascii_as_in_go() {
        let matches = |pattern: &str, line: &str| regex(pattern).expect(pattern).is_match(line);
        assert!(!matches(r"^\d$", "\u{663}") && matches(r"^\d$", "7"));
        assert!(!matches(r"^\w$", "é") && matches(r"^\w+$", "aZ_0"));
        assert!(matches(r"^\W$", "é") && !matches(r"^\W$", "a"));
        assert!(matches(r"^\s$", "\t") && !matches(r"^\s$", "\u{a0}") && !matches(r"^\s$", "\x0b"));
        assert!(matches(r"^\S$", "\u{a0}"));
        assert!(matches(r"^\D$", "\u{663}"));
        // Inside a bracketed class, and negated there.
        assert!(matches(r"^[\w-]+$", "KUBE-SEP") && !matches(r"^[\w-]+$", "é"));
        assert!(matches(r"^[^\w]$", "é") && !matches(r"^[^\w]$", "x"));
        assert!(matches(r"^[\S]$", "x") && !matches(r"^[\S]$", " "));
        // An escaped backslash before a letter is no class.
        assert!(matches(r"^\\w$", r"\w"));
        assert!(!matches(r"\bé", " é") && matches(r"a\bé", "aé"));
    }
}
