//! Allowlists as azure-iptables-monitor reads them: a directory of pattern files named
//! after the iptables tables plus `global`, one regular expression per line. They are
//! read again on every check, so that an updated ConfigMap takes effect without a
//! restart; reading a few small files is the only I/O here, and [`Allowlist::parse`]
//! is the pure part that the tests drive.

use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::TABLES;

/// The file whose patterns apply to every table.
pub const GLOBAL: &str = "global";

/// The file of patterns for the lines of the native nftables tables (`audit --nftables`).
pub const NFTABLES: &str = "nftables";

/// Largest pattern file read: an allowlist is a few hundred lines, and a file far larger
/// is a mistake that must not be read into memory whole.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

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
    /// A line is not a valid regular expression.
    #[error("{file}:{line}: invalid pattern: {source}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The regex crate's explanation.
        #[source]
        source: regex::Error,
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
        for (file, text) in files {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let slot = match TABLES.iter().position(|t| *t == name) {
                Some(i) => &mut allowlist.tables[i],
                None if name == GLOBAL => &mut allowlist.global,
                None if name == NFTABLES => &mut allowlist.nftables,
                None => continue,
            };
            slot.extend(patterns(file, text)?);
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
fn patterns(file: &Path, text: &str) -> Result<Vec<Regex>, AllowlistError> {
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
        let re = Regex::new(line).map_err(|source| AllowlistError::Invalid {
            file: file.to_owned(),
            line: line_no,
            source,
        })?;
        out.push(re);
    }
    Ok(out)
}

/// The text of `file`, `None` when it does not exist.
fn read_bounded(file: &Path) -> Result<Option<String>, AllowlistError> {
    let read_error = |e: std::io::Error| AllowlistError::Read {
        file: file.to_owned(),
        reason: e.to_string(),
    };
    let handle = match std::fs::File::open(file) {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
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
    use regex::Regex;

    #[test]
    fn documented_differences_hold() {
        // Accepted by both engines alike.
        for same in [
            r"\/",
            r"^-A KUBE-SEP-[A-Z0-9]{16} ",
            r"(?i)docker",
            r"[[:alpha:]]+",
        ] {
            assert!(Regex::new(same).is_ok(), "{same}");
        }
        // Go accepts these; the regex crate refuses them (an error naming file and line).
        for refused in [r"\Qa.b\E", r"\101", r"[[]"] {
            assert!(Regex::new(refused).is_err(), "{refused}");
        }
        // Go has none of these, the regex crate gives them a meaning.
        assert!(Regex::new(r"(?x) a b ").expect("x flag").is_match("ab"));
        let intersection = Regex::new(r"^[a-c&&b-d]$").expect("class set operation");
        assert!(!intersection.is_match("&") && !intersection.is_match("a"));
        // Perl classes are Unicode-aware here, ASCII-only in Go.
        assert!(Regex::new(r"^\d$").expect("digit").is_match("\u{663}"));
        assert!(Regex::new(r"^\w$").expect("word").is_match("é"));
    }
}
