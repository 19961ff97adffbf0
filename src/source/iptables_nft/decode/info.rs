//! Reading an x_tables extension's structure, shared by the printers of matches and
//! targets.

use super::Text;

/// An extension's structure, read field by field at its offsets; out of range is `None`.
pub(super) struct Info<'a>(pub(super) &'a [u8]);

impl Info<'_> {
    pub(super) fn len_at_least(&self, len: usize) -> Option<()> {
        (self.0.len() >= len).then_some(())
    }

    pub(super) fn bytes(&self, at: usize, len: usize) -> Option<&[u8]> {
        self.0.get(at..at + len)
    }

    pub(super) fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }

    pub(super) fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(self.bytes(at, 2)?.try_into().ok()?))
    }

    pub(super) fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(self.bytes(at, 4)?.try_into().ok()?))
    }

    pub(super) fn u64(&self, at: usize) -> Option<u64> {
        Some(u64::from_ne_bytes(self.bytes(at, 8)?.try_into().ok()?))
    }

    /// A NUL-terminated string in a field of `len` bytes, without its NUL; `None` for a
    /// field without one, which C would read past.
    pub(super) fn string(&self, at: usize, len: usize) -> Option<&[u8]> {
        let field = self.bytes(at, len)?;
        let end = field.iter().position(|&b| b == 0)?;
        Some(&field[..end])
    }

    /// A field in network byte order.
    pub(super) fn be_u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_be_bytes(self.bytes(at, 2)?.try_into().ok()?))
    }
}

/// `IPSET_INVALID_ID`: no set.
pub(super) const INVALID_SET: u16 = u16::MAX;

/// The name of the set of the `xt_set_info` at `at`, asked of ipset.
pub(super) fn set_name(info: &Info<'_>, at: usize, out: &mut Text) -> Option<String> {
    out.set_name(info.u16(at)?)
}

/// The directions of the `xt_set_info` at `at`: ` src,dst`, one per dimension.
pub(super) fn set_dimensions(info: &Info<'_>, at: usize, out: &mut Text) -> Option<()> {
    let (dimensions, flags) = (info.u8(at + 2)?, info.u8(at + 3)?);
    if dimensions > 6 {
        return None;
    }
    for i in 1..=dimensions {
        out.push_str(if i == 1 { " " } else { "," });
        out.push_str(if flags & (1 << i) != 0 { "src" } else { "dst" });
    }
    Some(())
}
