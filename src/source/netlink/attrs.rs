//! Netlink attributes (`struct nlattr`): a 16-bit length, a 16-bit type, the payload,
//! padding to four bytes. Decoding borrows from the message; nothing is copied until a
//! caller keeps a value.

use super::consts::netlink::NLA_TYPE_MASK;

/// A message or attribute that does not have the layout the kernel gives it: a bug on
/// one side, reported as a failed collection rather than guessed around.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed netlink message: {0}")]
pub struct Malformed(pub &'static str);

/// One attribute.
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    /// Its type, without the nested and byte-order flags.
    pub kind: u16,
    /// Its payload, without padding.
    pub payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The attributes nested in this one.
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }

    /// A big-endian `u32` (netlink's network byte order integers).
    pub fn be_u32(&self) -> Result<u32, Malformed> {
        let bytes = self.payload.try_into().map_err(|_| Malformed("u32 size"))?;
        Ok(u32::from_be_bytes(bytes))
    }

    /// A big-endian `u64`.
    pub fn be_u64(&self) -> Result<u64, Malformed> {
        let bytes = self.payload.try_into().map_err(|_| Malformed("u64 size"))?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// A NUL-terminated string; bytes that are not UTF-8 become U+FFFD, as everywhere in
    /// the exporter, so that one odd name does not cost the whole collection.
    pub fn string(&self) -> String {
        let bytes = self.payload.split(|&b| b == 0).next().unwrap_or_default();
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The attributes of a buffer, in order.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    /// The attributes that fill `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((header, _)) = self.rest.split_first_chunk::<4>() else {
            self.rest = &[];
            return Some(Err(Malformed("attribute header cut short")));
        };
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Malformed("attribute length out of bounds")));
        }
        let payload = &self.rest[4..len];
        let padded = len.next_multiple_of(4).min(self.rest.len());
        self.rest = &self.rest[padded..];
        Some(Ok(Attr { kind, payload }))
    }
}

/// Appends an attribute of `kind` holding `payload` to `buf`, padded, as requests carry
/// them.
pub(crate) fn push(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// Appends a string attribute (NUL-terminated, as the kernel's `NLA_STRING` policy reads
/// names).
pub(crate) fn push_str(buf: &mut Vec<u8>, kind: u16, value: &str) {
    let mut payload = Vec::with_capacity(value.len() + 1);
    payload.extend_from_slice(value.as_bytes());
    payload.push(0);
    push(buf, kind, &payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut buf = Vec::new();
        push_str(&mut buf, 1, "filter");
        push(&mut buf, 3, &7u64.to_be_bytes());
        let attrs: Vec<Attr<'_>> = Attrs::new(&buf)
            .collect::<Result<_, _>>()
            .expect("well-formed");
        assert_eq!(attrs.len(), 2);
        assert_eq!((attrs[0].kind, attrs[0].string()), (1, "filter".to_owned()));
        assert_eq!((attrs[1].kind, attrs[1].be_u64()), (3, Ok(7)));
    }

    #[test]
    fn the_nested_flag_is_not_part_of_the_type() {
        let mut buf = Vec::new();
        push(&mut buf, 4 | 0x8000, &[]);
        let attr = Attrs::new(&buf)
            .next()
            .expect("well-formed")
            .expect("well-formed");
        assert_eq!(attr.kind, 4);
    }

    #[test]
    fn truncated_and_oversized_attributes_are_errors_not_panics() {
        for buf in [&[8u8, 0][..], &[200, 0, 1, 0, 0, 0], &[2, 0, 1, 0]] {
            let mut attrs = Attrs::new(buf);
            assert!(matches!(attrs.next(), Some(Err(Malformed(_)))), "{buf:?}");
            assert!(attrs.next().is_none());
        }
    }

    #[test]
    fn integers_of_the_wrong_size_are_errors() {
        let attr = Attr {
            kind: 1,
            payload: &[1, 2, 3],
        };
        assert!(attr.be_u32().is_err());
        assert!(attr.be_u64().is_err());
    }

    #[test]
    fn strings_stop_at_nul_and_survive_invalid_utf8() {
        let attr = Attr {
            kind: 1,
            payload: b"caf\xe9\0junk",
        };
        assert_eq!(attr.string(), "caf\u{fffd}");
    }
}
