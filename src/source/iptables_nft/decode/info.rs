//! Reading an x_tables extension's structure, and the pieces of text the printers of
//! native forms, matches and targets share.

use std::fmt;
use std::net::Ipv4Addr;

use super::{Text, ipv6_text};
use crate::ruleset::Family;

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

/// A port range and whether it is inverted.
pub(super) type Ports = (u16, u16, bool);

/// Every port, not inverted: what a `tcp` or `udp` match without the option holds.
pub(super) const ANY_PORT: Ports = (0, u16::MAX, false);

/// The options of a `tcp` or `udp` match, written natively or as x_tables' structure:
/// ` --sport 80 ! --dport 1000:2000`, then `tcp`'s ` --tcp-option 2` and
/// ` --tcp-flags SYN,ACK ACK` (mask, compared, inverted), each where given.
pub(super) fn transport(
    out: &mut impl fmt::Write,
    sport: Ports,
    dport: Ports,
    option: Option<(u8, bool)>,
    flags: Option<(u8, u8, bool)>,
) {
    for (option, (low, high, invert)) in [("--sport", sport), ("--dport", dport)] {
        // Every port is no option, inverted or not: the match prints nothing for it.
        if (low, high) == (0, u16::MAX) {
            continue;
        }
        let _ = write!(out, "{} {option}", bang(invert));
        span(out, low.into(), high.into());
    }
    if let Some((option, invert)) = option {
        let _ = write!(out, "{} --tcp-option {option}", bang(invert));
    }
    if let Some((mask, compared, invert)) = flags {
        let _ = write!(out, "{} --tcp-flags ", bang(invert));
        tcp_flags(out, mask);
        let _ = out.write_char(' ');
        tcp_flags(out, compared);
    }
}

/// TCP flags by name, as the `tcp` match prints them: `FIN,SYN,RST,ACK`, `NONE`.
pub(super) fn tcp_flags(out: &mut impl fmt::Write, flags: u8) {
    const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
    if flags == 0 {
        let _ = out.write_str("NONE");
        return;
    }
    let _ = bit_names(out, flags.into(), &NAMES);
}

/// The names of the bits set in `mask`, comma-separated, bit `n` named `names[n]`; `None`
/// for a bit without a name.
pub(super) fn bit_names(out: &mut impl fmt::Write, mask: u32, names: &[&str]) -> Option<()> {
    if names.len() < 32 && mask >> names.len() != 0 {
        return None;
    }
    let set = names
        .iter()
        .enumerate()
        .filter(|&(bit, _)| mask & (1 << bit) != 0);
    for (i, (_, name)) in set.enumerate() {
        let _ = write!(out, "{}{name}", if i == 0 { "" } else { "," });
    }
    Some(())
}

/// ` !` before an inverted option.
pub(super) fn bang(invert: bool) -> &'static str {
    if invert { " !" } else { "" }
}

/// ` 80`, ` 80:90`: one value, or a range of two.
pub(super) fn span(out: &mut impl fmt::Write, low: u64, high: u64) {
    if low == high {
        let _ = write!(out, " {low}");
    } else {
        let _ = write!(out, " {low}:{high}");
    }
}

/// The option of each flag set in `value`, in the table's order.
pub(super) fn options(out: &mut Text, value: u32, table: &[(u32, &str)]) {
    for &(flag, text) in table {
        if value & flag != 0 {
            out.push_str(text);
        }
    }
}

/// [`options`], `None` for a flag the table does not name.
pub(super) fn known_options(out: &mut Text, value: u32, table: &[(u32, &str)]) -> Option<()> {
    let known = table.iter().fold(0, |all, (flag, _)| all | flag);
    if value & !known != 0 {
        return None;
    }
    options(out, value, table);
    Some(())
}

/// The first 4 or 16 bytes of `bytes` as an address of `family`, as `inet_ntop` prints it.
pub(super) fn address(family: Family, bytes: &[u8]) -> Option<String> {
    match family {
        Family::Ipv4 => {
            let bytes: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
            Some(Ipv4Addr::from(bytes).to_string())
        }
        Family::Ipv6 => Some(ipv6_text(bytes.get(..16)?.try_into().ok()?)),
        _ => None,
    }
}
