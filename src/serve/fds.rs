//! File descriptors of the server process. Every open connection holds one, and so does
//! every pipe to a running `iptables-save`: without a reserve, enough idle clients make
//! the collections fail with "Too many open files". The soft limit is raised to the hard
//! one at start, and the connection cap is what is left after a reserve for everything
//! that is not a connection.

use crate::error_chain::Chain;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything besides connections and the descriptors open at start:
/// the pipes and `/dev/null` of up to four dump commands running at once (about eight each
/// while one is spawned), the web config and TLS files being re-read, a connection
/// accepted while another is evicted, and the runtime's own.
pub const RESERVED_FDS: u64 = 64;

/// The open-file limit leaves no room for any connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the open-file limit ({limit}) leaves no room for connections once {reserved} descriptors \
     are kept for collections and the {open} open at start; raise it (ulimit -n, LimitNOFILE=)"
)]
pub struct NoRoom {
    /// The soft limit in force.
    pub limit: u64,
    /// Descriptors open when the server started.
    pub open: u64,
    /// [`RESERVED_FDS`].
    pub reserved: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in
/// force (`None`: unlimited). Failing to raise it is logged, not fatal: the cap is then
/// computed from the old limit.
pub fn raise_open_file_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return limit.maximum,
            Err(e) => tracing::warn!(error = %Chain(&e), "cannot raise the open-file limit"),
        }
    }
    limit.current
}

/// How many descriptors the process has open now, from `/proc/self/fd` (`None` when it
/// cannot be read).
pub fn open_now() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory's own descriptor is among the entries.
    Some((entries.count() as u64).saturating_sub(1))
}

/// Closes every descriptor above standard error that this process inherited: whoever
/// started the exporter may have left files open without close-on-exec (a key readable by
/// root only, say), and the server process, once it gives up its privileges, must hold
/// nothing it was not given. It needs only standard input (its socket to the collector),
/// output and error: the listening sockets, systemd's included, come over that socket.
///
/// Call it first in the server process, before anything opens a descriptor. Read from
/// `/proc/self/fd` rather than with `close_range`, which kernels before 5.9 lack.
pub fn close_inherited() -> std::io::Result<()> {
    let inherited: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    // The directory's own descriptor is among them, closed already when the iterator
    // dropped: closing it again fails with EBADF, which changes nothing.
    for fd in inherited {
        // SAFETY: nothing in this process owns a descriptor above 2 yet (this runs before
        // any file, socket or thread of the program exists), so no owner is left with a
        // closed or reused number; the directory's descriptor is closed already.
        #[allow(unsafe_code)]
        unsafe {
            libc::close(fd);
        }
    }
    Ok(())
}

/// The number of connections the server may hold: `wanted`, lowered so that `open`
/// descriptors plus [`RESERVED_FDS`] stay free under `limit` (`None`: unlimited).
pub fn connection_cap(wanted: usize, limit: Option<u64>, open: u64) -> Result<usize, NoRoom> {
    let Some(limit) = limit else {
        return Ok(wanted);
    };
    let room = limit.saturating_sub(open.saturating_add(RESERVED_FDS));
    if room == 0 {
        return Err(NoRoom {
            limit,
            open,
            reserved: RESERVED_FDS,
        });
    }
    Ok(usize::try_from(room).map_or(wanted, |room| room.min(wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_the_reserve_free() {
        assert_eq!(connection_cap(1000, Some(1024), 10), Ok(1024 - 10 - 64));
        assert_eq!(connection_cap(100, Some(1024), 10), Ok(100));
        assert_eq!(connection_cap(100, None, 10), Ok(100));
        assert_eq!(
            connection_cap(100, Some(74), 10),
            Err(NoRoom {
                limit: 74,
                open: 10,
                reserved: 64
            })
        );
        assert_eq!(connection_cap(100, Some(75), 10), Ok(1));
    }
}
