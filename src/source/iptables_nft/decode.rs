//! The text `iptables-save` prints for a rule of iptables-nft, decoded from the rule's
//! expressions, so that a rule the cache does not know costs neither a listing nor a save.
//!
//! iptables-nft writes the addresses, interfaces, protocol and verdict of a rule, and some
//! matches and targets (`tcp`, `udp`, `mark`, `limit`, `NFLOG`), as native expressions
//! (`meta`, `payload`, `bitwise`, `cmp`, `range`, `immediate`, `limit`, `log`), and every other match and target as an x_tables
//! extension with its own structure ([`matches`], [`targets`]). The text is put back
//! together in the order `iptables-save` prints it: `-s`, `-d`, `-i`, `-o`, `-p`, the
//! matches in the rule's order, the target. What this module does not know (another
//! expression, an extension or a revision it cannot print) is an [`Extension`] the rule's
//! text must be listed for; printing differences between iptables versions are caught by
//! the reader, which compares decoded texts with the host's own listing before trusting
//! an extension.

mod info;
mod matches;
mod targets;

use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::ruleset::Family;
use crate::source::netlink::consts::{
    bitwise, cmp, data, expr, immediate, list, meta, payload, range, rule, verdict_attr, xt,
};
use crate::source::netlink::{Attr, Attrs};
use info::{ANY_PORT, Ports};

/// What printed a part of a rule's text, the unit in which decoders are trusted or not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Extension {
    /// A part iptables-nft writes as native expressions: `ip` for the addresses,
    /// interfaces, protocol and verdict every rule has, or the match or target it stands
    /// for (`tcp`, `udp`, `mark`, `limit`, `NFLOG`).
    Native(&'static str),
    /// An x_tables match at a revision.
    Match(String, u32),
    /// An x_tables target at a revision.
    Target(String, u32),
    /// An expression iptables does not write, or writes in a form not decoded here.
    Expression(String),
}

impl fmt::Display for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Extension::Native(name) => f.write_str(name),
            Extension::Match(name, rev) | Extension::Target(name, rev) => {
                write!(f, "{name} rev {rev}")
            }
            Extension::Expression(name) => write!(f, "{name} expression"),
        }
    }
}

/// A rule's text as `iptables-save` prints it, from `-A`, with what printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decoded {
    /// The line, without counters and newline.
    pub line: String,
    /// The extensions that printed it, each once; shared by the rules printed by the same
    /// ones.
    pub extensions: Arc<[Extension]>,
    /// A string of the rule was not valid UTF-8 (U+FFFD in its place).
    pub invalid_utf8: bool,
}

/// The name of the ipset of an index, which the `set` match and `SET` target hold instead of
/// the name their text shows.
pub(super) type SetNames<'a> = dyn FnMut(u16) -> Option<String> + 'a;

/// Decodes the text of the rule of `chain` whose message attributes are `attrs`; the error
/// names the first part it cannot print.
pub(super) fn rule(
    family: Family,
    chain: &str,
    attrs: Attrs<'_>,
    sets: &mut SetNames<'_>,
) -> Result<Decoded, Extension> {
    let mut walk = Walk::new(family, sets);
    for attr in attrs {
        let Ok(attr) = attr else {
            return Err(malformed("rule"));
        };
        if attr.kind != rule::EXPRESSIONS {
            continue;
        }
        for element in attr.nested() {
            match element {
                Ok(element) if element.kind == list::ELEM => walk.expression(element)?,
                Ok(_) => {}
                Err(_) => return Err(malformed("rule")),
            }
        }
    }
    Ok(walk.finish(chain))
}

fn malformed(what: &str) -> Extension {
    Extension::Expression(format!("malformed {what}"))
}

/// What the register holds: the last load, with the mask a `bitwise` applied to it.
#[derive(Debug, Clone)]
struct Loaded {
    what: Load,
    mask: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    Meta(u32),
    Payload { base: u32, offset: u32, len: u32 },
}

/// An address match, `-s` or `-d`.
#[derive(Debug, Default)]
struct Address {
    addr: Vec<u8>,
    mask: Vec<u8>,
    invert: bool,
}

/// A part of the text between the protocol and the target.
#[derive(Debug)]
enum Part {
    /// Printed already, from ` -m`.
    Text(String),
    /// A `tcp` or `udp` match written natively, printed once all its expressions are read.
    Transport(Transport),
}

#[derive(Debug, Default)]
struct Transport {
    tcp: bool,
    sport: Option<Ports>,
    dport: Option<Ports>,
    /// Mask, compared value, inverted.
    flags: Option<(u8, u8, bool)>,
}

/// A rule being read, expression by expression.
struct Walk<'s, 'f> {
    family: Family,
    sets: &'s mut SetNames<'f>,
    loaded: Option<Loaded>,
    /// A value an `immediate` put in a data register, for the expression that reads it.
    register: Option<Vec<u8>>,
    src: Option<Address>,
    dst: Option<Address>,
    iif: Option<(String, bool)>,
    oif: Option<(String, bool)>,
    proto: Option<(u8, bool)>,
    /// `-f` (inverted when `false`).
    fragment: Option<bool>,
    parts: Vec<Part>,
    target: Option<String>,
    extensions: Vec<Extension>,
    invalid_utf8: bool,
}

impl<'s, 'f> Walk<'s, 'f> {
    fn new(family: Family, sets: &'s mut SetNames<'f>) -> Self {
        Walk {
            family,
            sets,
            loaded: None,
            register: None,
            src: None,
            dst: None,
            iif: None,
            oif: None,
            proto: None,
            fragment: None,
            parts: Vec::new(),
            target: None,
            extensions: vec![Extension::Native("ip")],
            invalid_utf8: false,
        }
    }

    fn uses(&mut self, extension: Extension) {
        if !self.extensions.contains(&extension) {
            self.extensions.push(extension);
        }
    }

    fn expression(&mut self, element: Attr<'_>) -> Result<(), Extension> {
        let (mut name, mut data) = (None, None);
        for attr in element.nested() {
            let attr = attr.map_err(|_| malformed("expression"))?;
            match attr.kind {
                expr::NAME => name = Some(attr.string()),
                expr::DATA => data = Some(attr.nested()),
                _ => {}
            }
        }
        let name = name.ok_or_else(|| malformed("expression"))?;
        let unknown = || Extension::Expression(name.clone());
        let fields = Fields::of(data.unwrap_or(Attrs::new(&[]))).ok_or_else(unknown)?;
        let decoded = match name.as_str() {
            "counter" => Some(()),
            "meta" => self.meta(&fields),
            "payload" => self.payload(&fields),
            "bitwise" => self.bitwise(&fields),
            "cmp" => self.cmp(&fields),
            "range" => self.range(&fields),
            "immediate" => self.immediate(&fields),
            "limit" => self.limit(&fields),
            "log" => self.nflog(&fields),
            "match" | "target" => return self.extension(name == "match", &fields),
            _ => None,
        };
        decoded.ok_or_else(unknown)
    }

    fn meta(&mut self, fields: &Fields<'_>) -> Option<()> {
        let Some(_) = fields.u32(meta::DREG) else {
            // A meta expression that sets a value: iptables' only one is `-j TRACE`, the
            // trace flag set from a register an `immediate` filled with 1.
            let trace = fields.u32(meta::KEY)? == meta::NFTRACE
                && self
                    .register
                    .take()
                    .is_some_and(|v| v.first() == Some(&1) && v[1..].iter().all(|&b| b == 0));
            if !trace || self.target.is_some() {
                return None;
            }
            self.uses(Extension::Native("TRACE"));
            self.target = Some(" -j TRACE".to_owned());
            return Some(());
        };
        self.loaded = Some(Loaded {
            what: Load::Meta(fields.u32(meta::KEY)?),
            mask: None,
        });
        Some(())
    }

    fn payload(&mut self, fields: &Fields<'_>) -> Option<()> {
        fields.u32(payload::DREG)?;
        self.loaded = Some(Loaded {
            what: Load::Payload {
                base: fields.u32(payload::BASE)?,
                offset: fields.u32(payload::OFFSET)?,
                len: fields.u32(payload::LEN)?,
            },
            mask: None,
        });
        Some(())
    }

    fn bitwise(&mut self, fields: &Fields<'_>) -> Option<()> {
        if fields.u32(bitwise::OP).is_some_and(|op| op != 0) {
            return None;
        }
        let xor = fields.value(bitwise::XOR)?;
        if xor.iter().any(|&b| b != 0) {
            return None;
        }
        let loaded = self.loaded.as_mut()?;
        loaded.mask = Some(fields.value(bitwise::MASK)?.to_vec());
        Some(())
    }

    fn cmp(&mut self, fields: &Fields<'_>) -> Option<()> {
        let op = fields.u32(cmp::OP)?;
        let value = fields.value(cmp::DATA)?;
        let loaded = self.loaded.clone()?;
        let invert = match op {
            cmp::EQ => false,
            cmp::NEQ => true,
            cmp::GTE | cmp::LTE => return self.port_bound(&loaded, op, value),
            _ => return None,
        };
        match (loaded.what, &loaded.mask) {
            (Load::Meta(meta::IIFNAME), None) => self.iif = Some((iface(value)?, invert)),
            (Load::Meta(meta::OIFNAME), None) => self.oif = Some((iface(value)?, invert)),
            (Load::Meta(meta::L4PROTO), None) => self.proto = Some((*one(value)?, invert)),
            (Load::Meta(meta::MARK), mask) => {
                let value = u32::from_ne_bytes(value.try_into().ok()?);
                let mask = match mask {
                    Some(mask) => u32::from_ne_bytes(mask.as_slice().try_into().ok()?),
                    None => u32::MAX,
                };
                let mut text = String::from(" -m mark");
                text.push_str(if invert { " ! --mark " } else { " --mark " });
                let _ = write!(text, "{value:#x}");
                if mask != u32::MAX {
                    let _ = write!(text, "/{mask:#x}");
                }
                self.uses(Extension::Native("mark"));
                self.parts.push(Part::Text(text));
            }
            (Load::Payload { base, offset, len }, mask) => {
                self.payload_cmp(base, offset, len, mask.as_deref(), value, invert)?
            }
            _ => return None,
        }
        Some(())
    }

    /// A payload compared for (in)equality: an address, the protocol, a port or the TCP
    /// flags.
    fn payload_cmp(
        &mut self,
        base: u32,
        offset: u32,
        len: u32,
        mask: Option<&[u8]>,
        value: &[u8],
        invert: bool,
    ) -> Option<()> {
        if value.len() != len as usize {
            return None;
        }
        match base {
            payload::NETWORK_HEADER => {
                let (src, dst, proto, size) = match self.family {
                    Family::Ipv4 => (12, 16, 9, 4),
                    Family::Ipv6 => (8, 24, 6, 16),
                    _ => return None,
                };
                if offset == proto && len == 1 && mask.is_none() {
                    self.proto = Some((value[0], invert));
                    return Some(());
                }
                // `-f`: a fragment offset other than 0 (`! -f`: equal to 0).
                if self.family == Family::Ipv4
                    && (offset, len, mask) == (6, 2, Some(&[0x1f, 0xff][..]))
                    && value == [0, 0]
                {
                    self.fragment = Some(invert);
                    return Some(());
                }
                let slot = match offset {
                    o if o == src => &mut self.src,
                    o if o == dst => &mut self.dst,
                    _ => return None,
                };
                if len == 0 || len > size {
                    return None;
                }
                let mut addr = value.to_vec();
                let mut full_mask = match mask {
                    Some(mask) if mask.len() == value.len() => mask.to_vec(),
                    Some(_) => return None,
                    None => vec![0xff; value.len()],
                };
                addr.resize(size as usize, 0);
                full_mask.resize(size as usize, 0);
                *slot = Some(Address {
                    addr,
                    mask: full_mask,
                    invert,
                });
            }
            payload::TRANSPORT_HEADER => {
                let ports = self.transport()?;
                match (offset, len, mask) {
                    // Both ports, compared in one load: both inverted, or neither.
                    (0, 4, None) => {
                        let sport = u16::from_be_bytes([value[0], value[1]]);
                        let dport = u16::from_be_bytes([value[2], value[3]]);
                        ports.sport = Some((sport, sport, invert));
                        ports.dport = Some((dport, dport, invert));
                    }
                    (0 | 2, 2, None) => {
                        let port = u16::from_be_bytes(value.try_into().ok()?);
                        *ports.slot(offset)? = Some((port, port, invert));
                    }
                    (13, 1, mask) if ports.tcp => {
                        let mask = match mask {
                            Some([mask]) => *mask,
                            Some(_) => return None,
                            None => 0xff,
                        };
                        ports.flags = Some((mask, value[0], invert));
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// `cmp gte` and `cmp lte` on a port: the two ends of a range, or one end of a range
    /// open to the other.
    fn port_bound(&mut self, loaded: &Loaded, op: u32, value: &[u8]) -> Option<()> {
        let port = u16::from_be_bytes(value.try_into().ok()?);
        let slot = self.port_slot(loaded)?;
        *slot = match (op, *slot) {
            (cmp::GTE, _) => Some((port, u16::MAX, false)),
            (_, Some((low, u16::MAX, false))) => Some((low, port, false)),
            _ => Some((0, port, false)),
        };
        Some(())
    }

    fn range(&mut self, fields: &Fields<'_>) -> Option<()> {
        let invert = match fields.u32(range::OP)? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let from = u16::from_be_bytes(fields.value(range::FROM_DATA)?.try_into().ok()?);
        let to = u16::from_be_bytes(fields.value(range::TO_DATA)?.try_into().ok()?);
        let loaded = self.loaded.clone()?;
        *self.port_slot(&loaded)? = Some((from, to, invert));
        Some(())
    }

    /// The source or destination port of the rule's transport match that `loaded`, a load
    /// of one whole port, compares.
    fn port_slot(&mut self, loaded: &Loaded) -> Option<&mut Option<Ports>> {
        let Load::Payload {
            base: payload::TRANSPORT_HEADER,
            offset,
            len: 2,
        } = loaded.what
        else {
            return None;
        };
        if loaded.mask.is_some() {
            return None;
        }
        self.transport()?.slot(offset)
    }

    /// The native `tcp` or `udp` match of the rule's protocol, made on first use: iptables
    /// gathers every port and flag expression of the rule into one match.
    fn transport(&mut self) -> Option<&mut Transport> {
        let tcp = match self.proto {
            Some((6, false)) => true,
            Some((17, false)) => false,
            _ => return None,
        };
        let found = self
            .parts
            .iter()
            .position(|p| matches!(p, Part::Transport(t) if t.tcp == tcp));
        let index = match found {
            Some(index) => index,
            None => {
                self.uses(Extension::Native(if tcp { "tcp" } else { "udp" }));
                self.parts.push(Part::Transport(Transport {
                    tcp,
                    ..Transport::default()
                }));
                self.parts.len() - 1
            }
        };
        match &mut self.parts[index] {
            Part::Transport(transport) => Some(transport),
            Part::Text(_) => None,
        }
    }

    fn immediate(&mut self, fields: &Fields<'_>) -> Option<()> {
        let data = fields.nested(immediate::DATA)?;
        if fields.u32(immediate::DREG)? != 0 {
            self.register = Some(Fields::of(data)?.raw(data::VALUE)?.to_vec());
            return Some(());
        }
        if self.target.is_some() {
            return None;
        }
        let verdict = Fields::of(Fields::of(data)?.nested(data::VERDICT)?)?;
        let code = verdict.u32(verdict_attr::CODE)? as i32;
        let chain = || verdict.string(verdict_attr::CHAIN);
        self.target = Some(match code {
            verdict_attr::ACCEPT => " -j ACCEPT".to_owned(),
            verdict_attr::DROP => " -j DROP".to_owned(),
            verdict_attr::RETURN => " -j RETURN".to_owned(),
            verdict_attr::JUMP => format!(" -j {}", chain()?),
            verdict_attr::GOTO => format!(" -g {}", chain()?),
            _ => return None,
        });
        Some(())
    }

    /// `-m limit`, which iptables writes as nf_tables' own `limit`: its rate per unit of
    /// time turned back into iptables' average period, printed in the largest unit that
    /// keeps it whole enough, as the `limit` match prints it.
    fn limit(&mut self, fields: &Fields<'_>) -> Option<()> {
        use crate::source::netlink::consts::limit;
        const SCALE: u64 = 10_000;
        const UNITS: [(&str, u64); 4] = [
            ("day", SCALE * 24 * 60 * 60),
            ("hour", SCALE * 60 * 60),
            ("min", SCALE * 60),
            ("sec", SCALE),
        ];
        let packets = fields.u32(limit::TYPE).unwrap_or(0) == 0;
        if !packets || fields.u32(limit::FLAGS).unwrap_or(0) != 0 {
            return None;
        }
        let (rate, unit) = (fields.u64(limit::RATE)?, fields.u64(limit::UNIT)?);
        let burst = fields.u32(limit::BURST)?;
        let period = u64::from(u32::try_from(SCALE.checked_mul(unit)?.checked_div(rate)?).ok()?);
        if period == 0 {
            return None;
        }
        let at = UNITS[1..]
            .iter()
            .position(|&(_, mult)| period > mult || mult / period < mult % period)
            .map_or(UNITS.len() - 1, |i| i);
        let (name, mult) = UNITS[at];
        let mut text = format!(" -m limit --limit {}/{name}", mult / period);
        if burst != 5 {
            let _ = write!(text, " --limit-burst {burst}");
        }
        self.uses(Extension::Native("limit"));
        self.parts.push(Part::Text(text));
        Some(())
    }

    /// `-j NFLOG`, which iptables writes as nf_tables' own `log` to a group.
    fn nflog(&mut self, fields: &Fields<'_>) -> Option<()> {
        use crate::source::netlink::consts::log;
        if self.target.is_some() {
            return None;
        }
        let group = fields.be_u16(log::GROUP)?;
        let mut text = Text::default();
        text.push_str(" -j NFLOG");
        if let Some(prefix) = fields.raw(log::PREFIX) {
            let prefix = text.lossy(prefix);
            if !prefix.is_empty() {
                text.push_str(" --nflog-prefix");
                text.quoted(&prefix);
            }
        }
        if group != 0 {
            let _ = write!(text, " --nflog-group {group}");
        }
        if let Some(size) = fields.u32(log::SNAPLEN) {
            let _ = write!(text, " --nflog-size {size}");
        }
        if let Some(threshold) = fields.be_u16(log::QTHRESHOLD).filter(|&t| t != 0) {
            let _ = write!(text, " --nflog-threshold {threshold}");
        }
        self.invalid_utf8 |= text.invalid_utf8;
        self.uses(Extension::Native("NFLOG"));
        self.target = Some(text.line);
        Some(())
    }

    /// An x_tables match or target, printed by its decoder.
    fn extension(&mut self, is_match: bool, fields: &Fields<'_>) -> Result<(), Extension> {
        let name = fields
            .string(xt::NAME)
            .ok_or_else(|| malformed("extension"))?;
        let rev = fields.u32(xt::REV).ok_or_else(|| malformed("extension"))?;
        let info = fields.raw(xt::INFO).unwrap_or_default();
        let extension = if is_match {
            Extension::Match(name.clone(), rev)
        } else {
            Extension::Target(name.clone(), rev)
        };
        let mut text = Text {
            sets: Some(&mut *self.sets),
            ..Text::default()
        };
        let printed = if is_match {
            text.push_str(" -m ");
            matches::print(&name, rev, self.family, info, &mut text)
        } else {
            text.push_str(" -j ");
            targets::print(&name, rev, self.family, info, &mut text)
        };
        if printed.is_none() || (!is_match && self.target.is_some()) {
            return Err(extension);
        }
        let Text {
            line, invalid_utf8, ..
        } = text;
        self.invalid_utf8 |= invalid_utf8;
        self.uses(extension);
        if is_match {
            self.parts.push(Part::Text(line));
        } else {
            self.target = Some(line);
        }
        Ok(())
    }

    fn finish(self, chain: &str) -> Decoded {
        let mut line = format!("-A {chain}");
        if let Some(src) = &self.src {
            address(&mut line, 's', src);
        }
        if let Some(dst) = &self.dst {
            address(&mut line, 'd', dst);
        }
        for (letter, iface) in [('i', &self.iif), ('o', &self.oif)] {
            if let Some((name, invert)) = iface
                && !name.is_empty()
                && (name != "+" || *invert)
            {
                line.push_str(if *invert { " ! -" } else { " -" });
                line.push(letter);
                line.push(' ');
                line.push_str(name);
            }
        }
        if let Some((proto, invert)) = self.proto
            && proto != 0
        {
            line.push_str(if invert { " ! -p " } else { " -p " });
            match protocol_name(proto) {
                Some(name) => line.push_str(name),
                None => {
                    let _ = write!(line, "{proto}");
                }
            }
        }
        if let Some(fragment) = self.fragment {
            line.push_str(if fragment { " -f" } else { " ! -f" });
        }
        for part in &self.parts {
            match part {
                Part::Text(text) => line.push_str(text),
                Part::Transport(transport) => transport.print(&mut line),
            }
        }
        if let Some(target) = &self.target {
            line.push_str(target);
        }
        Decoded {
            line,
            extensions: self.extensions.into(),
            invalid_utf8: self.invalid_utf8,
        }
    }
}

impl Transport {
    /// The port at `offset` in the transport header: the source's or the destination's.
    fn slot(&mut self, offset: u32) -> Option<&mut Option<Ports>> {
        match offset {
            0 => Some(&mut self.sport),
            2 => Some(&mut self.dport),
            _ => None,
        }
    }

    fn print(&self, out: &mut String) {
        out.push_str(if self.tcp { " -m tcp" } else { " -m udp" });
        let (sport, dport) = (
            self.sport.unwrap_or(ANY_PORT),
            self.dport.unwrap_or(ANY_PORT),
        );
        info::transport(out, sport, dport, None, self.flags);
    }
}

/// ` -s 10.0.0.0/8`, ` ! -d fe80::/10`; nothing for an address that matches every packet.
fn address(line: &mut String, letter: char, address: &Address) {
    let prefix = prefix_len(&address.mask);
    if prefix == Some(0) && !address.invert && address.addr.iter().all(|&b| b == 0) {
        return;
    }
    line.push_str(if address.invert { " ! -" } else { " -" });
    line.push(letter);
    line.push(' ');
    match (address.addr.as_slice(), address.mask.as_slice()) {
        (&[a, b, c, d], &[m0, m1, m2, m3]) => {
            let _ = write!(line, "{}/", Ipv4Addr::new(a, b, c, d));
            match prefix {
                Some(prefix) => {
                    let _ = write!(line, "{prefix}");
                }
                None => {
                    let _ = write!(line, "{}", Ipv4Addr::new(m0, m1, m2, m3));
                }
            }
        }
        (addr, mask) => {
            let v6 = |bytes: &[u8]| ipv6_text(bytes.try_into().unwrap_or_default());
            let _ = write!(line, "{}/", v6(addr));
            match prefix {
                Some(prefix) => {
                    let _ = write!(line, "{prefix}");
                }
                None => {
                    let _ = write!(line, "{}", v6(mask));
                }
            }
        }
    }
}

/// An IPv6 address as glibc's `inet_ntop` prints it, which iptables uses: as Rust prints
/// it, but for an IPv4-compatible address (`::1.2.3.4`), which glibc prints with its
/// IPv4 part in dotted decimal and Rust in hexadecimal.
pub(super) fn ipv6_text(bytes: [u8; 16]) -> String {
    let addr = Ipv6Addr::from(bytes);
    let segments = addr.segments();
    if segments[..6].iter().all(|&s| s == 0) && segments[6] != 0 {
        let [.., a, b, c, d] = bytes;
        return format!("::{}", Ipv4Addr::new(a, b, c, d));
    }
    addr.to_string()
}

/// The prefix length of a contiguous mask, `None` for one with holes.
fn prefix_len(mask: &[u8]) -> Option<u32> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let contiguous = mask.iter().enumerate().all(|(i, &b)| {
        let bits_before = i as u32 * 8;
        let want = match ones.saturating_sub(bits_before) {
            0 => 0,
            n if n >= 8 => 0xff,
            n => 0xffu8 << (8 - n),
        };
        b == want
    });
    contiguous.then_some(ones)
}

/// The name `iptables-save` gives protocol number `proto`: from iptables' own table, else
/// from the system's protocol database (`/etc/protocols`), else none (the number).
fn protocol_name(proto: u8) -> Option<&'static str> {
    builtin_protocol_name(proto).or_else(|| system_protocols()[usize::from(proto)].as_deref())
}

/// The first name of each protocol number in `/etc/protocols`, read once.
fn system_protocols() -> &'static [Option<String>; 256] {
    static NAMES: std::sync::OnceLock<Box<[Option<String>; 256]>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Box<[Option<String>; 256]> = Box::new(std::array::from_fn(|_| None));
        let text = std::fs::read_to_string("/etc/protocols").unwrap_or_default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let (Some(name), Some(number)) = (fields.next(), fields.next()) else {
                continue;
            };
            if let Ok(number) = number.parse::<u8>() {
                names[usize::from(number)].get_or_insert_with(|| name.to_owned());
            }
        }
        names
    })
}

fn builtin_protocol_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        6 => "tcp",
        132 => "sctp",
        17 => "udp",
        136 => "udplite",
        1 => "icmp",
        58 => "ipv6-icmp",
        50 => "esp",
        51 => "ah",
        135 => "mobility-header",
        _ => return None,
    })
}

/// An interface name compared with `cmp`: the name and its NUL for an exact name, without
/// the NUL for a prefix (`eth+`).
fn iface(value: &[u8]) -> Option<String> {
    match value.iter().position(|&b| b == 0) {
        Some(end) => Some(String::from_utf8_lossy(&value[..end]).into_owned()),
        None => Some(format!("{}+", String::from_utf8_lossy(value))),
    }
}

fn one(value: &[u8]) -> Option<&u8> {
    match value {
        [byte] => Some(byte),
        _ => None,
    }
}

/// A printed extension, and whether a string in it was not valid UTF-8; with the names of
/// ipsets to print by index.
#[derive(Default)]
pub(crate) struct Text<'s, 'f> {
    line: String,
    invalid_utf8: bool,
    sets: Option<&'s mut SetNames<'f>>,
}

impl Text<'_, '_> {
    /// The name of the ipset of `index`.
    fn set_name(&mut self, index: u16) -> Option<String> {
        (self.sets.as_mut()?)(index)
    }

    fn push_str(&mut self, s: &str) {
        self.line.push_str(s);
    }

    /// A NUL-terminated string of an extension's structure, as it is: U+FFFD for bytes
    /// that are not UTF-8, noted.
    fn lossy(&mut self, bytes: &[u8]) -> String {
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        let text = String::from_utf8_lossy(bytes);
        self.invalid_utf8 |= matches!(text, std::borrow::Cow::Owned(_));
        text.into_owned()
    }

    /// A string as iptables saves one an extension holds: bare when it is only letters,
    /// digits, `-` and `_`, else in double quotes with `"`, `\` and `'` escaped.
    fn quoted(&mut self, value: &str) {
        let bare = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        self.line.push(' ');
        if bare {
            self.line.push_str(value);
            return;
        }
        self.line.push('"');
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '\'') {
                self.line.push('\\');
            }
            self.line.push(c);
        }
        self.line.push('"');
    }
}

impl fmt::Write for Text<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.line.push_str(s);
        Ok(())
    }
}

/// The attributes of an expression's data, by type.
struct Fields<'a> {
    attrs: Vec<Attr<'a>>,
}

impl<'a> Fields<'a> {
    fn of(attrs: Attrs<'a>) -> Option<Self> {
        Some(Fields {
            attrs: attrs.collect::<Result<_, _>>().ok()?,
        })
    }

    fn raw(&self, kind: u16) -> Option<&'a [u8]> {
        self.attrs
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.payload)
    }

    fn nested(&self, kind: u16) -> Option<Attrs<'a>> {
        self.attrs.iter().find(|a| a.kind == kind).map(Attr::nested)
    }

    fn u32(&self, kind: u16) -> Option<u32> {
        self.attrs.iter().find(|a| a.kind == kind)?.be_u32().ok()
    }

    fn u64(&self, kind: u16) -> Option<u64> {
        self.attrs.iter().find(|a| a.kind == kind)?.be_u64().ok()
    }

    fn be_u16(&self, kind: u16) -> Option<u16> {
        let bytes = self.raw(kind)?.try_into().ok()?;
        Some(u16::from_be_bytes(bytes))
    }

    fn string(&self, kind: u16) -> Option<String> {
        self.attrs
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.string())
    }

    /// The value of a nested `nft_data` attribute.
    fn value(&self, kind: u16) -> Option<&'a [u8]> {
        Fields::of(self.nested(kind)?)?.raw(data::VALUE)
    }
}

#[cfg(test)]
mod tests;
