//! Splits one rule of an `iptables-save` dump into arguments the way iptables quoted them.
//!
//! iptables-save wraps an argument in double quotes when it holds a space or a special
//! character, and escapes `"`, `'` and `\` inside with a backslash; a comment may even hold a
//! raw newline. Written by hand because it is the hot loop of every collection (a 100k-rule
//! dump is about 13 MB) and must borrow rather than allocate in the common, unquoted case.

use std::borrow::Cow;

/// One argument of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// Byte offset of the argument's first character (its opening quote, if quoted).
    pub start: usize,
    /// Byte offset just past the argument (past its closing quote, if quoted).
    pub end: usize,
    /// The argument with quotes removed and escapes resolved.
    pub value: Cow<'a, str>,
}

/// Why a rule could not be split into arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A `"` opened at this byte offset is never closed.
    #[error("unterminated quote starting at column {0}")]
    UnterminatedQuote(usize),
}

/// Splits `text` into arguments, appending them to `out` (cleared first) so that a caller
/// parsing many rules reuses one buffer.
pub fn tokenize<'a>(text: &'a str, out: &mut Vec<Token<'a>>) -> Result<(), TokenError> {
    out.clear();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if bytes[i] != b'"' {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(Token {
                start,
                end: i,
                value: Cow::Borrowed(&text[start..i]),
            });
            continue;
        }
        // Quoted: borrow the inside unless an escape forces a copy.
        i += 1;
        let inner_start = i;
        let mut owned: Option<String> = None;
        let mut run_start = i;
        loop {
            match bytes.get(i) {
                None => return Err(TokenError::UnterminatedQuote(start + 1)),
                Some(b'"') => break,
                Some(b'\\') if i + 1 < bytes.len() => {
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(&text[run_start..i]);
                    // The escaped character may be multi-byte UTF-8: copy it whole.
                    let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    buf.push_str(&text[i + 1..i + 1 + ch_len]);
                    i += 1 + ch_len;
                    run_start = i;
                }
                Some(_) => i += 1,
            }
        }
        let value = match owned {
            Some(mut buf) => {
                buf.push_str(&text[run_start..i]);
                Cow::Owned(buf)
            }
            None => Cow::Borrowed(&text[inner_start..i]),
        };
        i += 1;
        out.push(Token {
            start,
            end: i,
            value,
        });
    }
    Ok(())
}

/// True when `text` opens a quote it does not close, i.e. a quoted argument continues on
/// the next physical line (iptables-save prints a comment's newline as is).
pub(crate) fn has_open_quote(text: &str) -> bool {
    scan_quotes(text.as_bytes(), 0, false, false, |_| {}).open
}

/// What [`scan_quotes`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuoteScan {
    /// Where the scan stopped: a newline outside quotes, or the end of the bytes.
    pub(crate) end: usize,
    /// Whether a quoted argument is still open there.
    pub(crate) open: bool,
    /// Newlines passed inside quoted arguments.
    pub(crate) newlines: usize,
}

/// Scans `bytes` from `start`, inside a quoted argument if `open`, for quoted arguments:
/// a double quote opens or closes one, and inside one a backslash escapes the next byte
/// (which may be a quote or a newline). With `stop_at_newline` the scan ends at the first
/// newline outside quotes, otherwise at the end. `on_quote` gets the offset of every quote
/// that opens or closes an argument.
/// One vectorised search for the three bytes that matter: the parser reads every rule
/// line through it, and the line ends and quote counts it gives were a third of the
/// parser's instructions when searched for apart (docs/performance.md).
pub(crate) fn scan_quotes(
    bytes: &[u8],
    start: usize,
    mut open: bool,
    stop_at_newline: bool,
    mut on_quote: impl FnMut(usize),
) -> QuoteScan {
    let (mut newlines, mut at) = (0, start);
    while let Some(found) = memchr::memchr3(b'\n', b'"', b'\\', &bytes[at..]) {
        let i = at + found;
        at = i + 1;
        match bytes[i] {
            b'\n' if !open && stop_at_newline => {
                return QuoteScan {
                    end: i,
                    open,
                    newlines,
                };
            }
            b'\n' if open => newlines += 1,
            b'"' => {
                open = !open;
                on_quote(i);
            }
            b'\\' if open => {
                if bytes.get(i + 1) == Some(&b'\n') {
                    newlines += 1;
                }
                at = (i + 2).min(bytes.len());
            }
            _ => {}
        }
    }
    QuoteScan {
        end: bytes.len(),
        open,
        newlines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        tokenize(text, &mut out).expect("tokenizes");
        out.into_iter().map(|t| t.value.into_owned()).collect()
    }

    #[test]
    fn plain_arguments_split_on_whitespace() {
        assert_eq!(
            values("-p  tcp\t--dport 22"),
            ["-p", "tcp", "--dport", "22"]
        );
    }

    #[test]
    fn quoted_arguments_lose_quotes_and_escapes() {
        assert_eq!(
            values(r#"--comment "a \"b\" \\c \'q\'" -j X"#),
            ["--comment", r#"a "b" \c 'q'"#, "-j", "X"]
        );
    }

    #[test]
    fn empty_quotes_are_an_empty_argument() {
        assert_eq!(values(r#"--comment "" -j X"#), ["--comment", "", "-j", "X"]);
    }

    #[test]
    fn escaped_multibyte_character_is_kept_whole() {
        assert_eq!(values("\"\\ü x\""), ["ü x"]);
    }

    #[test]
    fn newline_inside_quotes_is_part_of_the_argument() {
        assert_eq!(
            values("--comment \"a\nb\" -j X"),
            ["--comment", "a\nb", "-j", "X"]
        );
    }

    #[test]
    fn spans_cover_the_quotes() {
        let mut out = Vec::new();
        tokenize(r#"-m "a b" c"#, &mut out).expect("tokenizes");
        assert_eq!((out[1].start, out[1].end), (3, 8));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let mut out = Vec::new();
        assert_eq!(
            tokenize(r#"-m "abc"#, &mut out),
            Err(TokenError::UnterminatedQuote(4))
        );
        assert_eq!(
            tokenize("\"a\\", &mut out),
            Err(TokenError::UnterminatedQuote(1))
        );
    }

    #[test]
    fn open_quote_detection_respects_escapes() {
        assert!(has_open_quote(r#"--comment "line1"#));
        assert!(!has_open_quote(r#"--comment "a \" b""#));
        assert!(has_open_quote(r#"--comment "a \" b"#));
        assert!(!has_open_quote("no quotes"));
    }
}
