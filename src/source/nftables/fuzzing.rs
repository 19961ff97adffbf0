//! A read decoded from bytes instead of the kernel's replies, for coverage-guided fuzzing
//! (docs/fuzzing.md). Compiled only with `--cfg fuzzing`, which cargo-fuzz sets: it drives
//! the reader's own decoders and assembly (`Build`, `push_rule`) through the framing of
//! the socket, in the order of a read.

use super::*;
use crate::source::netlink::consts::nfnetlink::NFNL_SUBSYS_NFTABLES;
use crate::source::netlink::replies;

/// The sequence number of the request every answer in the input replies to.
pub const SEQ: u32 = 1;

/// The read whose answers are `data`, one after another: the generation, the tables, the
/// chains, the sets, the objects, then one rule dump per chain and one element dump per
/// set without a count, in the order a read sends its requests. Each answer is datagrams
/// (each after its length, two bytes little endian) up to the one that ends it. An input
/// that ends early ends the read there.
pub fn read_replies(data: &[u8], tables: Tables) -> Result<Snapshot, NetlinkError> {
    let mut answers = Answers { data };
    let mut generation = 0;
    answers.next(|message| {
        if message.kind == msg::NEWGEN {
            generation = decode::generation(message.attrs)?;
        }
        Ok(())
    })?;
    let mut build = Build::default();
    for kind in [msg::NEWTABLE, msg::NEWCHAIN, msg::NEWSET, msg::NEWOBJ] {
        if kind == msg::NEWSET {
            build.leave(|table, dormant| left_out(&tables, table, dormant));
        }
        answers.next(|message| match decode::family(message.family) {
            Some(family) if message.kind == kind => match kind {
                msg::NEWTABLE => build.table(family, message.attrs),
                msg::NEWCHAIN => build.chain(family, message.attrs),
                msg::NEWSET => build.set(family, message.attrs),
                _ => build.object(family, message.attrs),
            },
            _ => Ok(()),
        })?;
    }
    let keyed = matches!(tables, Tables::IptablesNft(_));
    let mut handles = HashSet::new();
    for table in &mut build.tables {
        for chain in &mut table.chains {
            handles.clear();
            answers.next(|message| {
                if message.kind == msg::NEWRULE {
                    if keyed {
                        build.keys.push(decode::rule_key(message.attrs.clone())?);
                    }
                    push_rule(&mut chain.rules, &mut handles, message.attrs)?;
                }
                Ok(())
            })?;
        }
        for set in table
            .objects
            .sets
            .iter_mut()
            .filter(|s| s.elements.is_none())
        {
            let mut count = 0;
            answers.next(|message| {
                if message.kind == msg::NEWSETELEM {
                    count += decode::set_elements(message.attrs)?;
                }
                Ok(())
            })?;
            set.elements = Some(count);
        }
    }
    if build.changed {
        return Err(NetlinkError::Interrupted);
    }
    Ok(Snapshot {
        ruleset: Ruleset {
            tables: build.tables,
            unparsed: Vec::new(),
            generation: Some(generation),
        },
        keys: build.keys,
        attempts: 1,
    })
}

/// The answers left in the input.
struct Answers<'a> {
    data: &'a [u8],
}

impl Answers<'_> {
    /// Hands the messages of the next answer to `each`.
    fn next(
        &mut self,
        mut each: impl FnMut(Message<'_>) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        while let Some((len, rest)) = self.data.split_first_chunk::<2>() {
            let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
            let (datagram, rest) = rest.split_at(len);
            self.data = rest;
            if replies(datagram, SEQ, NFNL_SUBSYS_NFTABLES, &mut each)? {
                return Ok(());
            }
        }
        self.data = &[];
        Ok(())
    }
}
