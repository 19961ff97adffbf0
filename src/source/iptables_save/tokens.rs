//! Splits the arguments of one rule of an `iptables-save` dump the way iptables quoted them.
//!
//! iptables-save wraps an argument in double quotes when it holds a space or a special
//! character, and escapes `"`, `'` and `\` inside with a backslash; a comment may even hold a
//! raw newline, so a rule's line ends at the first newline outside quotes. This is the only
//! place that interprets that quoting: the parser finds line ends, comments, labels and
//! match parameters from these tokens.

use std::borrow::Cow;

/// One argument of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token<'a> {
    /// Byte offset of the argument's first character (its opening quote, if quoted).
    pub(super) start: usize,
    /// Byte offset just past the argument (past its closing quote, if quoted).
    pub(super) end: usize,
    /// The argument with quotes removed and escapes resolved.
    pub(super) value: Cow<'a, str>,
    /// True when the argument was quoted.
    pub(super) quoted: bool,
}

/// Why a rule could not be split into arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum TokenError {
    /// A `"` opened at this column (1-based, in the rule's text) is never closed.
    #[error("unterminated quote starting at column {0}")]
    UnterminatedQuote(usize),
}

/// Where [`tokenize_line`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LineEnd {
    /// Offset of the newline outside quotes that ends the line, or the text's length.
    pub(super) end: usize,
    /// Newlines passed inside quoted arguments: the physical lines the rule goes on to.
    pub(super) newlines: usize,
}

/// Splits `text` into arguments up to its first newline outside quotes, appending them to
/// `out` (cleared first) so that a caller parsing many rules reuses one buffer. Offsets are
/// into `text`. Reaching the end of `text` inside a quote is an error.
pub(super) fn tokenize_line<'a>(
    text: &'a str,
    out: &mut Vec<Token<'a>>,
) -> Result<LineEnd, TokenError> {
    out.clear();
    let bytes = text.as_bytes();
    let mut newlines = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => return Ok(LineEnd { end: i, newlines }),
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                out.push(Token {
                    start,
                    end: i,
                    value: Cow::Borrowed(&text[start..i]),
                    quoted: false,
                });
                continue;
            }
        }
        // Quoted: borrow the inside unless an escape forces a copy.
        let start = i;
        i += 1;
        let inner_start = i;
        let mut owned: Option<String> = None;
        let mut run_start = i;
        loop {
            let Some(found) = memchr::memchr3(b'"', b'\\', b'\n', &bytes[i..]) else {
                return Err(TokenError::UnterminatedQuote(start + 1));
            };
            i += found;
            match bytes[i] {
                b'"' => break,
                b'\n' => {
                    newlines += 1;
                    i += 1;
                }
                _ if i + 1 < bytes.len() => {
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(&text[run_start..i]);
                    // The escaped character may be multi-byte UTF-8: copy it whole.
                    let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if bytes[i + 1] == b'\n' {
                        newlines += 1;
                    }
                    buf.push_str(&text[i + 1..i + 1 + ch_len]);
                    i += 1 + ch_len;
                    run_start = i;
                }
                _ => return Err(TokenError::UnterminatedQuote(start + 1)),
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
            quoted: true,
        });
    }
    Ok(LineEnd {
        end: bytes.len(),
        newlines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        tokenize_line(text, &mut out).expect("tokenizes");
        out.into_iter().map(|t| t.value.into_owned()).collect()
    }

    #[test]
    fn plain_arguments_split_on_whitespace() {
        assert_eq!(
            values("-p  tcp\t--dport 22\r"),
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
    fn a_backslash_outside_quotes_is_a_character() {
        assert_eq!(values(r#"a\b \"#), [r#"a\b"#, r#"\"#]);
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
    fn the_line_ends_at_the_first_newline_outside_quotes() {
        let text = "--comment \"a\nb\\\nc\" -j X\n-A next";
        let mut out = Vec::new();
        let end = tokenize_line(text, &mut out).expect("tokenizes");
        assert_eq!(
            end,
            LineEnd {
                end: text.find("\n-A").expect("newline"),
                newlines: 2
            }
        );
        let values: Vec<&str> = out.iter().map(|t| t.value.as_ref()).collect();
        assert_eq!(values, ["--comment", "a\nb\nc", "-j", "X"]);
    }

    #[test]
    fn spans_cover_the_quotes_and_say_what_was_quoted() {
        let mut out = Vec::new();
        tokenize_line(r#"-m "a b" c"#, &mut out).expect("tokenizes");
        assert_eq!((out[1].start, out[1].end, out[1].quoted), (3, 8, true));
        assert_eq!((out[2].start, out[2].end, out[2].quoted), (9, 10, false));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let mut out = Vec::new();
        for (text, column) in [(r#"-m "abc"#, 4), ("\"a\\", 1), ("x \"a\\\"", 3)] {
            assert_eq!(
                tokenize_line(text, &mut out),
                Err(TokenError::UnterminatedQuote(column)),
                "{text}"
            );
        }
    }
}
