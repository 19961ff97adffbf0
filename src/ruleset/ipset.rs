//! The ipset part of a snapshot: every set of the network namespace with the figures of its
//! header and, when member counters are read, the counters of its members. Plain owned
//! data in the kernel's order, like the rest of the model.

use super::Family;

/// One ipset set, as `ipset list` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// Its name.
    pub name: String,
    /// Its type as `ipset list` prints it: `hash:ip`, `bitmap:port`, `list:set`, …
    pub type_name: String,
    /// The address family of its members; `None` for a set of none (`bitmap:port`,
    /// `hash:mac`, `list:set`).
    pub family: Option<Family>,
    /// Members now (the kernel's count, timed-out members left out).
    pub entries: u64,
    /// Most members it can hold: `maxelem` of a hash set, `size` of a `list:set`; `None`
    /// for a bitmap set, whose range bounds it instead.
    pub max_entries: Option<u64>,
    /// Kernel memory it takes, in bytes.
    pub memory_bytes: u64,
    /// Rules (`-m set`, `SET` target) and `list:set` sets that use it.
    pub references: u64,
    /// Its members with their counters, in the kernel's order, up to the member limit;
    /// empty unless [`Set::members_left_out`] is `Some`.
    pub members: Vec<Member>,
    /// Members listed beyond the member limit and left out of [`Set::members`]; `None`
    /// when members were not listed (member counters not asked for, or a set created
    /// without `counters`).
    pub members_left_out: Option<u64>,
}

/// A member of a set created with `counters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The element as `ipset list` prints it: `10.0.0.1`, `10.0.0.0/24`,
    /// `10.0.0.1,tcp:80`, `2001:db8::1`, …
    pub element: String,
    /// Packets that matched it.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}
