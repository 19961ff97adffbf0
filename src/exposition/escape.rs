//! Escaping of label values and help texts for both exposition formats.

/// Appends a label value with backslash, double quote and newline escaped, as both formats
/// require.
pub(crate) fn escape_label_value(value: &str, out: &mut Vec<u8>) {
    let mut rest = value.as_bytes();
    while let Some(i) = memchr::memchr3(b'\\', b'"', b'\n', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Escapes a help text (backslash and newline; OpenMetrics also reads `\"`, which we never
/// produce since our help texts hold no quotes).
pub(crate) fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = Vec::new();
        escape_label_value(value, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn escapes_backslash_quote_and_newline_and_nothing_else() {
        for (value, expected) in [
            ("KUBE-SEP-ABC", "KUBE-SEP-ABC"),
            (r#"a"b"#, r#"a\"b"#),
            ("a\\b", "a\\\\b"),
            ("a\nb", "a\\nb"),
            ("ünïcødé ☃", "ünïcødé ☃"),
            (
                "a comment longer than thirty-two bytes with \" and \\ and \n",
                "a comment longer than thirty-two bytes with \\\" and \\\\ and \\n",
            ),
            ("", ""),
        ] {
            assert_eq!(escaped(value), expected, "{value:?}");
        }
    }
}
