//! The ipset source: every set of the network namespace, read from the kernel over netlink
//! (`NFNL_SUBSYS_IPSET`; the `ipset` program is not needed).
//!
//! A read negotiates the protocol version (`IPSET_CMD_PROTOCOL`), then lists the headers of
//! every set in one dump (`IPSET_CMD_LIST` with `IPSET_FLAG_LIST_HEADER`): a set's size
//! costs the read nothing. Only with member counters does it list members, set by set, of
//! the sets created with `counters`, and it stops reading a set's dump once it holds the
//! member limit: what the kernel has not sent yet is counted from the header, never
//! received. The kernel releases an abandoned dump when its socket closes, so each set whose
//! dump was abandoned gets a fresh socket after it.
//!
//! Asking the ipset subsystem anything makes the kernel load the `ip_set` module when it is
//! not loaded; the exporter never loads a module, so a read first looks for
//! `/sys/module/ip_set` ([`presence`]) and sends nothing without it.

mod decode;
mod element;

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ruleset::ipset::Set;
use crate::source::Presence;
use crate::source::netlink::consts::ipset::{
    IPSET_ATTR_FLAGS, IPSET_ATTR_INDEX, IPSET_ATTR_PROTOCOL, IPSET_ATTR_SETNAME,
    IPSET_CMD_GET_BYINDEX, IPSET_CMD_LIST, IPSET_CMD_PROTOCOL, IPSET_FLAG_LIST_HEADER,
    IPSET_PROTOCOL, IPSET_PROTOCOL_MIN,
};
use crate::source::netlink::consts::netlink::{NLM_F_ACK, NLM_F_DUMP};
use crate::source::netlink::consts::nfnetlink::NFNL_SUBSYS_IPSET;
use crate::source::netlink::consts::nfproto;
use crate::source::netlink::{self, NetlinkError, Socket};

/// Where the kernel shows the `ip_set` module once it is loaded or built in.
pub const MODULE_DIR: &str = "/sys/module/ip_set";

/// Default of [`Settings::member_limit`].
pub const DEFAULT_MEMBER_LIMIT: u64 = 10_000;

/// The nfgenmsg family of every request: the kernel's ipset ignores it, and the `ipset`
/// program sends `NFPROTO_IPV4` (its `AF_INET`).
const REQUEST_FAMILY: u8 = nfproto::IPV4;

/// Listings of the set headers a read makes before it gives up on sets that keep being
/// renamed and created under it.
const ATTEMPTS: u32 = 4;

/// What to read (`--ipset.member-counters`, `--ipset.member-limit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// List the members of the sets created with `counters`, with their counters.
    pub member_counters: bool,
    /// Most members listed per set; the others are counted as left out. 0 lists none.
    pub member_limit: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            member_counters: false,
            member_limit: DEFAULT_MEMBER_LIMIT,
        }
    }
}

/// Why no sets were read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The kernel has no `ip_set`: asking the subsystem would load the module.
    #[error("the kernel has no ip_set module ({MODULE_DIR} is missing)")]
    NoModule,
    /// Whether the kernel has `ip_set` could not be told.
    #[error("cannot look for {MODULE_DIR}")]
    ModuleDir(#[source] io::Error),
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket to ipset")]
    Open(#[source] NetlinkError),
    /// The protocol version request failed.
    #[error("cannot ask the kernel for its ipset protocol version")]
    Protocol(#[source] NetlinkError),
    /// The kernel and the reader share no protocol version.
    #[error(
        "the kernel speaks ipset protocol {oldest} to {newest}, this reader {IPSET_PROTOCOL_MIN} to {IPSET_PROTOCOL}"
    )]
    Unsupported {
        /// The kernel's oldest version.
        oldest: u8,
        /// The kernel's newest version.
        newest: u8,
    },
    /// The listing of the set headers failed.
    #[error("cannot list the sets")]
    ListSets(#[source] NetlinkError),
    /// Every listing of the set headers saw a set name twice (sets renamed and created
    /// while the kernel listed them).
    #[error("the sets changed during each of {0} listings")]
    Changed(u32),
    /// The deadline passed.
    #[error("no complete read within {0:?}")]
    TimedOut(Duration),
    /// The listing of one set's members failed.
    #[error("cannot list the members of set {set:?}")]
    ListMembers {
        /// The set.
        set: String,
        /// Why.
        #[source]
        source: NetlinkError,
    },
}

/// The ipset source.
#[derive(Debug, Clone)]
pub struct Sets {
    settings: Settings,
}

impl Sets {
    /// The source reading what `settings` asks for.
    pub fn new(settings: Settings) -> Self {
        Sets { settings }
    }
}

impl crate::source::Source for Sets {
    fn id(&self) -> crate::source::SourceId {
        crate::source::SourceId::Ipset
    }

    fn presence(&self, _timeout: Duration) -> Presence {
        presence()
    }

    // Asking the subsystem can load the module: only a look at `/sys` comes first.
    fn asks_first(&self) -> bool {
        true
    }

    fn read(
        &self,
        limits: crate::source::Limits,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<crate::source::Reading, crate::source::SourceError>,
    > {
        let settings = self.settings.clone();
        let id = crate::source::SourceId::Ipset;
        Box::pin(crate::source::blocking(id, move || {
            read(&settings, limits.timeout)
                .map(|ipsets| {
                    crate::source::Reading::new(crate::ruleset::Ruleset {
                        ipsets,
                        ..crate::ruleset::Ruleset::default()
                    })
                })
                .map_err(|e| {
                    let command = id.reader().to_owned();
                    match e {
                        ReadError::NoModule => crate::source::SourceError::NotFound { command },
                        ReadError::TimedOut(timeout) => {
                            crate::source::SourceError::TimedOut { command, timeout }
                        }
                        e => crate::source::SourceError::Read {
                            command,
                            source: std::sync::Arc::new(e),
                        },
                    }
                })
        }))
    }
}

/// Whether the kernel has `ip_set`, from [`MODULE_DIR`] alone: nothing is asked of the
/// subsystem, which would load the module.
pub fn presence() -> Presence {
    match module_loaded(Path::new(MODULE_DIR)) {
        Ok(true) => Presence::Present,
        Ok(false) => Presence::Absent,
        Err(e) => Presence::Unknown(format!("cannot look for {MODULE_DIR}: {e}")),
    }
}

/// True when the module directory `dir` exists.
fn module_loaded(dir: &Path) -> io::Result<bool> {
    match std::fs::metadata(dir) {
        Ok(metadata) => Ok(metadata.is_dir()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads every set of the network namespace, in the kernel's order (`list:set` sets last),
/// with their members when `settings` asks for member counters. Gives up after `timeout`.
/// Blocking: run it on a thread that may block.
pub fn read(settings: &Settings, timeout: Duration) -> Result<Vec<Set>, ReadError> {
    match module_loaded(Path::new(MODULE_DIR)) {
        Ok(true) => {}
        Ok(false) => return Err(ReadError::NoModule),
        Err(e) => return Err(ReadError::ModuleDir(e)),
    }
    let deadline = Instant::now() + timeout;
    let open = || Socket::open_subsystem(NFNL_SUBSYS_IPSET, timeout).map_err(ReadError::Open);
    let mut socket = open()?;
    let version = protocol(&mut socket)?;
    let mut sets = None;
    for _ in 0..ATTEMPTS {
        in_time(deadline, timeout)?;
        sets = list_headers(&mut socket, version).map_err(ReadError::ListSets)?;
        if sets.is_some() {
            break;
        }
    }
    let sets = sets.ok_or(ReadError::Changed(ATTEMPTS))?;
    if !settings.member_counters {
        return Ok(sets.into_iter().map(|header| header.set).collect());
    }
    let mut read = Vec::with_capacity(sets.len());
    let mut socket = Some(socket);
    for header in sets {
        if !header.counters {
            read.push(header.set);
            continue;
        }
        in_time(deadline, timeout)?;
        let name = header.set.name.clone();
        let mut current = match socket.take() {
            Some(socket) => socket,
            None => open()?,
        };
        let listed = list_members(&mut current, version, header, settings.member_limit);
        match listed {
            Ok(Listed::Complete(set)) => {
                read.push(set);
                socket = Some(current);
            }
            // The rest of the dump is still queued on `current`, which closes here.
            Ok(Listed::Stopped(set)) => read.push(set),
            // Destroyed or renamed since the headers were listed: gone from this snapshot.
            Err(NetlinkError::Kernel(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                socket = Some(current);
            }
            Err(source) => return Err(ReadError::ListMembers { set: name, source }),
        }
    }
    Ok(read)
}

/// Set names by kernel index, asked of the kernel as they are needed: an iptables rule's
/// `-m set` holds a set's index, and its text the name, as `iptables-save` asks for it.
pub struct SetNames {
    timeout: Duration,
    /// The socket and protocol version, once opened; `None` inside when that failed.
    socket: Option<Option<(Socket, u8)>>,
    known: HashMap<u16, Option<String>>,
}

impl SetNames {
    /// Nothing asked yet; each request within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        SetNames {
            timeout,
            socket: None,
            known: HashMap::new(),
        }
    }

    /// The name of the set of `index`; `None` when there is none, or the kernel cannot say
    /// (no ip_set, a protocol older than 7). Blocking.
    pub fn name(&mut self, index: u16) -> Option<String> {
        if let Some(known) = self.known.get(&index) {
            return known.clone();
        }
        let name = self.ask(index);
        self.known.insert(index, name.clone());
        name
    }

    fn ask(&mut self, index: u16) -> Option<String> {
        let timeout = self.timeout;
        let opened = self.socket.get_or_insert_with(|| {
            // Without the module there are no sets, and asking would load it.
            if !module_loaded(Path::new(MODULE_DIR)).unwrap_or(false) {
                return None;
            }
            let mut socket = Socket::open_subsystem(NFNL_SUBSYS_IPSET, timeout).ok()?;
            let version = protocol(&mut socket).ok()?;
            Some((socket, version))
        });
        let (socket, version) = opened.as_mut()?;
        if *version < 7 {
            return None;
        }
        let mut attrs = Vec::new();
        netlink::push(&mut attrs, IPSET_ATTR_PROTOCOL, &[*version]);
        netlink::push(&mut attrs, IPSET_ATTR_INDEX, &index.to_be_bytes());
        let mut name = None;
        let asked = socket.request(
            IPSET_CMD_GET_BYINDEX,
            REQUEST_FAMILY,
            NLM_F_ACK,
            &attrs,
            |message| {
                if message.kind == IPSET_CMD_GET_BYINDEX {
                    for attr in message.attrs {
                        let attr = attr?;
                        if attr.kind == IPSET_ATTR_SETNAME {
                            name = Some(attr.string());
                        }
                    }
                }
                Ok(())
            },
        );
        asked.ok()?;
        name
    }
}

/// The protocol version to speak, negotiated with the kernel.
fn protocol(socket: &mut Socket) -> Result<u8, ReadError> {
    let mut attrs = Vec::new();
    netlink::push(&mut attrs, IPSET_ATTR_PROTOCOL, &[IPSET_PROTOCOL]);
    let mut kernel = None;
    socket
        .request(
            IPSET_CMD_PROTOCOL,
            REQUEST_FAMILY,
            NLM_F_ACK,
            &attrs,
            |message| {
                if message.kind == IPSET_CMD_PROTOCOL {
                    kernel = Some(decode::protocol(message.attrs)?);
                }
                Ok(())
            },
        )
        .map_err(ReadError::Protocol)?;
    let kernel = kernel.ok_or(ReadError::Protocol(
        netlink::Malformed("no protocol version in the answer").into(),
    ))?;
    decode::negotiate(kernel).ok_or(ReadError::Unsupported {
        oldest: kernel.oldest,
        newest: kernel.newest,
    })
}

/// The header of every set, in the kernel's order; `None` when a name came twice.
fn list_headers(
    socket: &mut Socket,
    version: u8,
) -> Result<Option<Vec<decode::Header>>, NetlinkError> {
    let mut attrs = Vec::new();
    netlink::push(&mut attrs, IPSET_ATTR_PROTOCOL, &[version]);
    netlink::push(
        &mut attrs,
        IPSET_ATTR_FLAGS,
        &IPSET_FLAG_LIST_HEADER.to_be_bytes(),
    );
    let mut headers: Vec<decode::Header> = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut twice = false;
    socket.request(
        IPSET_CMD_LIST,
        REQUEST_FAMILY,
        NLM_F_DUMP,
        &attrs,
        |message| {
            if message.kind != IPSET_CMD_LIST {
                return Ok(());
            }
            if let Some(header) = decode::list(message.attrs)?.header {
                twice |= !names.insert(header.set.name.clone());
                headers.push(header);
            }
            Ok(())
        },
    )?;
    Ok((!twice).then_some(headers))
}

/// A set with its members listed.
enum Listed {
    /// Every member was read.
    Complete(Set),
    /// The member limit was reached and the dump abandoned.
    Stopped(Set),
}

/// The members of the set of `header`, up to `limit`, with the header the listing sent.
fn list_members(
    socket: &mut Socket,
    version: u8,
    header: decode::Header,
    limit: u64,
) -> Result<Listed, NetlinkError> {
    let mut set = header.set;
    let Some(layout) = element::Layout::of(&set.type_name).filter(|_| limit > 0) else {
        // Members that cannot be written, or none asked for: each counted as left out.
        set.members_left_out = Some(set.entries);
        return Ok(Listed::Complete(set));
    };
    let mut attrs = Vec::new();
    netlink::push(&mut attrs, IPSET_ATTR_PROTOCOL, &[version]);
    netlink::push_str(&mut attrs, IPSET_ATTR_SETNAME, &set.name);
    let mut beyond = 0u64;
    let mut counters = header.counters;
    let listed = socket.request(
        IPSET_CMD_LIST,
        REQUEST_FAMILY,
        NLM_F_DUMP,
        &attrs,
        |message| {
            if message.kind != IPSET_CMD_LIST {
                return Ok(());
            }
            let decoded = decode::list(message.attrs)?;
            if let Some(fresh) = decoded.header {
                // The header of this listing, which the members match: a set swapped since the
                // headers were listed has the other set's figures now.
                counters = fresh.counters;
                set = fresh.set;
            }
            for data in decoded.members.into_iter().flatten() {
                let data = data?;
                if (set.members.len() as u64) < limit {
                    set.members.push(decode::member(&layout, data)?);
                } else {
                    beyond += 1;
                }
            }
            if set.members.len() as u64 >= limit {
                return Err(NetlinkError::Stopped);
            }
            Ok(())
        },
    );
    let stopped = match listed {
        Ok(()) => false,
        Err(NetlinkError::Stopped) => true,
        Err(e) => return Err(e),
    };
    set.members_left_out = if !counters {
        set.members.clear();
        None
    } else if stopped {
        let kept = set.members.len() as u64;
        Some(set.entries.saturating_sub(kept).max(beyond))
    } else {
        Some(beyond)
    };
    Ok(if stopped {
        Listed::Stopped(set)
    } else {
        Listed::Complete(set)
    })
}

/// The timeout error of a read of `timeout` once `deadline` passed.
fn in_time(deadline: Instant, timeout: Duration) -> Result<(), ReadError> {
    if Instant::now() >= deadline {
        return Err(ReadError::TimedOut(timeout));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_directory_decides_presence() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        assert!(module_loaded(dir.path()).expect("readable"));
        assert!(!module_loaded(&dir.path().join("ip_set")).expect("readable"));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").expect("a file");
        assert!(!module_loaded(&file).expect("readable"));
    }

    #[test]
    fn member_counters_are_off_by_default() {
        let settings = Settings::default();
        assert!(!settings.member_counters);
        assert_eq!(settings.member_limit, 10_000);
    }
}
