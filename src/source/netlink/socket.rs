//! A NETLINK_NETFILTER socket that sends one request at a time to one nfnetlink subsystem
//! (nf_tables or ipset) and hands each reply to a callback straight from the receive
//! buffer.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::sockopt::Timeout;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::attrs::{Attrs, Malformed};
use super::consts::netlink::{NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR};
use super::consts::nfnetlink::{NFNETLINK_V0, NFNL_SUBSYS_NFTABLES};

/// Bytes read per `recv`. The kernel sizes the buffer of each dump chunk by the largest
/// read the socket has seen, up to 32 KiB, and rebuilds a chunk by walking its lists from
/// the start: larger reads make every dump slower, and no dump chunk is larger.
const RECV_BUFFER: usize = 32 * 1024;

/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nfgenmsg)`.
const NFGENMSG_LEN: usize = 4;

/// Why a request got no complete answer. After any of them the socket may still hold
/// parts of the answer: open a new one.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The socket could not be made (`EPROTONOSUPPORT` without nfnetlink).
    #[error("cannot open a netlink socket")]
    Open(#[source] io::Error),
    /// The socket could not be bound.
    #[error("cannot bind the netlink socket")]
    Bind(#[source] io::Error),
    /// The receive timeout could not be set.
    #[error("cannot set the netlink socket's receive timeout")]
    SetTimeout(#[source] io::Error),
    /// The request could not be sent.
    #[error("cannot send the netlink request")]
    Send(#[source] io::Error),
    /// The answer could not be received.
    #[error("cannot receive the netlink answer")]
    Receive(#[source] io::Error),
    /// The kernel answered with an error (`EPERM` without CAP_NET_ADMIN, `ENOENT` for an
    /// object that went away, …).
    #[error("the kernel refused the request")]
    Kernel(#[source] io::Error),
    /// The kernel did not answer within the deadline.
    #[error("no answer from the kernel within {0:?}")]
    TimedOut(Duration),
    /// The ruleset changed while a dump was under way: the kernel flagged a reply
    /// (`NLM_F_DUMP_INTR`), or the reader saw it in what the replies hold.
    #[error("the ruleset changed during a dump")]
    Interrupted,
    /// A reply did not have the kernel's layout.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// The caller's callback stopped reading the answer before its end.
    #[error("stopped reading before the end of the answer")]
    Stopped,
}

/// One message of a reply.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// Its type within the subsystem (`NFT_MSG_*`, `IPSET_CMD_*`).
    pub kind: u16,
    /// Its `NFPROTO_*` family.
    pub family: u8,
    /// The nfgenmsg resource id: in nf_tables replies, the low 16 bits of the ruleset
    /// generation the message was read from.
    pub res_id: u16,
    /// Its attributes.
    pub attrs: Attrs<'a>,
}

/// A netlink socket speaking to one nfnetlink subsystem.
pub struct Socket {
    fd: OwnedFd,
    /// The `NFNL_SUBSYS_*` of its requests and replies.
    subsystem: u16,
    seq: u32,
    timeout: Duration,
    buf: Vec<u8>,
    request: Vec<u8>,
}

impl Socket {
    /// Opens a socket speaking to nf_tables whose reads give up after `timeout` without an
    /// answer.
    pub fn open(timeout: Duration) -> Result<Socket, NetlinkError> {
        Socket::open_subsystem(NFNL_SUBSYS_NFTABLES, timeout)
    }

    /// Opens a socket speaking to the nfnetlink subsystem `subsystem` (`NFNL_SUBSYS_*`)
    /// whose reads give up after `timeout` without an answer.
    pub fn open_subsystem(subsystem: u16, timeout: Duration) -> Result<Socket, NetlinkError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::NETFILTER),
        )
        .map_err(|e| NetlinkError::Open(e.into()))?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))
            .map_err(|e| NetlinkError::Bind(e.into()))?;
        // A zero timeout would mean "wait forever" to the kernel.
        let timeout = timeout.max(Duration::from_millis(1));
        rustix::net::sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(timeout))
            .map_err(|e| NetlinkError::SetTimeout(e.into()))?;
        Ok(Socket {
            fd,
            subsystem,
            seq: 0,
            timeout,
            buf: vec![0; RECV_BUFFER],
            request: Vec::with_capacity(256),
        })
    }

    /// Sends the request `kind` of the socket's subsystem for `family` with `flags` (besides
    /// `NLM_F_REQUEST`) and the attributes `attrs`, and calls `each` for every message of
    /// the answer until the kernel ends it (`NLMSG_DONE`, or an acknowledgement for a
    /// request with `NLM_F_ACK`).
    pub fn request(
        &mut self,
        kind: u16,
        family: u8,
        flags: u16,
        attrs: &[u8],
        mut each: impl FnMut(Message<'_>) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let len = NLMSG_HDRLEN + NFGENMSG_LEN + attrs.len();
        let request = &mut self.request;
        request.clear();
        request.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
        request.extend_from_slice(&(self.subsystem << 8 | kind).to_ne_bytes());
        request.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        request.extend_from_slice(&seq.to_ne_bytes());
        request.extend_from_slice(&0u32.to_ne_bytes());
        request.extend_from_slice(&[family, NFNETLINK_V0, 0, 0]);
        request.extend_from_slice(attrs);
        rustix::net::send(&self.fd, request, SendFlags::empty())
            .map_err(|e| NetlinkError::Send(e.into()))?;
        loop {
            let (read, full) =
                match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                    Ok(sizes) => sizes,
                    Err(rustix::io::Errno::AGAIN) => {
                        return Err(NetlinkError::TimedOut(self.timeout));
                    }
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(NetlinkError::Receive(e.into())),
                };
            if full > read {
                return Err(Malformed("reply larger than the receive buffer").into());
            }
            if replies(&self.buf[..read], seq, self.subsystem, &mut each)? {
                return Ok(());
            }
        }
    }
}

/// Hands the messages of one datagram that answer request `seq` of subsystem `subsystem`
/// to `each`; true when the answer ended in it.
pub(crate) fn replies(
    mut datagram: &[u8],
    seq: u32,
    subsystem: u16,
    each: &mut impl FnMut(Message<'_>) -> Result<(), NetlinkError>,
) -> Result<bool, NetlinkError> {
    while !datagram.is_empty() {
        let header = datagram
            .get(..NLMSG_HDRLEN)
            .ok_or(Malformed("message header cut short"))?;
        let field = |at: usize| {
            u32::from_ne_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let len = field(0) as usize;
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let flags = u16::from_ne_bytes([header[6], header[7]]);
        if len < NLMSG_HDRLEN || len > datagram.len() {
            return Err(Malformed("message length out of bounds").into());
        }
        let body = &datagram[NLMSG_HDRLEN..len];
        datagram = &datagram[len.next_multiple_of(4).min(datagram.len())..];
        // Left over from an earlier request that ended in an error: not this answer.
        if field(8) != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = body
                    .first_chunk::<4>()
                    .map(|b| i32::from_ne_bytes(*b))
                    .ok_or(Malformed("error message cut short"))?;
                // The kernel sends 0 or a negated errno.
                return match code.checked_neg() {
                    Some(0) => Ok(true),
                    Some(errno) if errno > 0 => {
                        Err(NetlinkError::Kernel(io::Error::from_raw_os_error(errno)))
                    }
                    _ => Err(Malformed("error code out of range").into()),
                };
            }
            _ => {}
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            return Err(NetlinkError::Interrupted);
        }
        if kind >> 8 != subsystem {
            return Err(Malformed("a message of another nfnetlink subsystem").into());
        }
        let nfgen = body
            .get(..NFGENMSG_LEN)
            .ok_or(Malformed("nfgenmsg cut short"))?;
        each(Message {
            kind: kind & 0xff,
            family: nfgen[0],
            res_id: u16::from_be_bytes([nfgen[2], nfgen[3]]),
            attrs: Attrs::new(&body[NFGENMSG_LEN..]),
        })?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(body);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    /// Kind, family and resource id of a message.
    type Seen = (u16, u8, u16);

    fn collect(datagram: &[u8], seq: u32) -> Result<(bool, Vec<Seen>), NetlinkError> {
        let mut seen = Vec::new();
        let ended = replies(datagram, seq, NFNL_SUBSYS_NFTABLES, &mut |m| {
            seen.push((m.kind, m.family, m.res_id));
            Ok(())
        })?;
        Ok((ended, seen))
    }

    #[test]
    fn messages_of_the_request_then_done() {
        let mut datagram = message(10 << 8, 2, 7, &[2, 0, 0x12, 0x34]);
        datagram.extend(message(10 << 8 | 6, 2, 6, &[2, 0, 0, 0]));
        datagram.extend(message(NLMSG_DONE, 2, 7, &[0; 4]));
        let (ended, seen) = collect(&datagram, 7).expect("a complete answer");
        assert!(ended);
        assert_eq!(
            seen,
            vec![(0, 2, 0x1234)],
            "the message of seq 6 is skipped"
        );
    }

    #[test]
    fn a_kernel_error_and_an_ack() {
        let error = message(NLMSG_ERROR, 0, 1, &(-1i32).to_ne_bytes());
        assert!(
            matches!(collect(&error, 1), Err(NetlinkError::Kernel(e)) if e.raw_os_error() == Some(1))
        );
        let ack = message(NLMSG_ERROR, 0, 1, &0i32.to_ne_bytes());
        assert!(collect(&ack, 1).expect("a complete answer").0);
    }

    /// Found by fuzzing: an error code of `i32::MIN` overflowed its negation.
    #[test]
    fn error_codes_that_are_no_negated_errno_are_malformed() {
        for code in [i32::MIN, 1] {
            let error = message(NLMSG_ERROR, 0, 1, &code.to_ne_bytes());
            assert!(
                matches!(collect(&error, 1), Err(NetlinkError::Malformed(_))),
                "{code}"
            );
        }
    }

    #[test]
    fn an_interrupted_dump_is_an_error() {
        let datagram = message(10 << 8 | 6, 2 | NLM_F_DUMP_INTR, 1, &[2, 0, 0, 0]);
        assert!(matches!(
            collect(&datagram, 1),
            Err(NetlinkError::Interrupted)
        ));
    }

    #[test]
    fn bad_lengths_are_errors_not_panics() {
        let mut datagram = message(10 << 8, 2, 1, &[2, 0, 0, 0]);
        datagram[0] = 200;
        assert!(matches!(
            collect(&datagram, 1),
            Err(NetlinkError::Malformed(_))
        ));
        assert!(matches!(
            collect(&datagram[..10], 1),
            Err(NetlinkError::Malformed(_))
        ));
        let short = message(10 << 8, 2, 1, &[2, 0]);
        assert!(matches!(
            collect(&short, 1),
            Err(NetlinkError::Malformed(_))
        ));
    }
}
