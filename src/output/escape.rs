//! Escaping of label values and help texts for both exposition formats.

use crate::buffer::TextBuffer;

/// Values shorter than this are checked eight bytes at a time ([`needs_escape_short`]);
/// longer ones are searched with `memchr3`, whose set-up costs more than it saves on them.
const SHORT: usize = 32;

/// Appends a label value with backslash, double quote and newline escaped, as both formats
/// require.
pub(crate) fn escape_label_value(value: &str, out: &mut TextBuffer) {
    let mut rest = value.as_bytes();
    // Most values need no escape and are copied whole after one check.
    if rest.len() < SHORT && !needs_escape_short(rest) {
        out.extend_from_slice(rest);
        return;
    }
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

/// True when `value` (shorter than [`SHORT`]) holds a backslash, a double quote or a
/// newline. Table and chain names, written for every chain of a large ruleset, are the
/// values this sees most: a byte-by-byte loop over them was a tenth of a 100k-rule render's
/// instructions (callgrind), eight bytes at a time is a third of that.
fn needs_escape_short(value: &[u8]) -> bool {
    let mut padded = [0u8; SHORT];
    padded[..value.len()].copy_from_slice(value);
    padded[..value.len().next_multiple_of(8)]
        .chunks_exact(8)
        .any(|word| {
            let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
            has_byte(word, b'\\') | has_byte(word, b'"') | has_byte(word, b'\n')
        })
}

/// True when one of the eight bytes of `word` is `byte`, i.e. a byte of `x` below is 0.
/// Subtracting 1 from every byte of `x` sets the high bit of a byte whose own high bit was
/// clear only if that byte was 0, or if a borrow came from a lower byte that was 0: either
/// way some byte was 0, so the test is exact.
fn has_byte(word: u64, byte: u8) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH != 0
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
        let mut out = TextBuffer::default();
        escape_label_value(value, &mut out);
        String::from_utf8(out.as_slice().to_vec()).expect("utf-8")
    }

    /// Every byte value at every position of every short length, beside bytes that differ
    /// from the escaped ones by one bit or that carry into the next byte.
    #[test]
    fn short_check_finds_every_escaped_byte_and_nothing_else() {
        for len in 1..SHORT {
            for position in 0..len {
                for byte in 0..=u8::MAX {
                    for filler in [b'a', 0x00, 0x01, 0x7f, 0x80, 0xff] {
                        let mut value = vec![filler; len];
                        value[position] = byte;
                        let expected = value.iter().any(|b| matches!(b, b'\\' | b'"' | b'\n'));
                        assert_eq!(
                            needs_escape_short(&value),
                            expected,
                            "{value:?} (length {len}, byte {byte:#x} at {position})"
                        );
                    }
                }
            }
        }
        assert!(!needs_escape_short(b""));
    }

    #[test]
    fn escapes_backslash_quote_and_newline_in_short_and_long_values() {
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
