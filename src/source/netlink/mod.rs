//! NETLINK_NETFILTER, spoken directly: the socket, the framing of nfnetlink messages and
//! the decoding of their attributes. Written by hand rather than taken from a netlink
//! crate (docs/nftables.md says which were weighed): the nf_tables reader needs four
//! message kinds and a few dozen attributes, read once per collection over tens of
//! thousands of messages, and a decoder that borrows from the receive buffer is all it
//! takes.

mod attrs;
pub mod consts;
mod socket;

pub use attrs::{Attr, Attrs, Malformed};
pub(crate) use attrs::{push, push_str};
#[cfg(fuzzing)]
pub(crate) use socket::replies;
pub use socket::{Message, NetlinkError, Socket};
