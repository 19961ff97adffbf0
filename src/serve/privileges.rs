//! What the server process gives up before it accepts a connection: the collector's user
//! when that is root (it becomes `--web.user`), every capability, and the means to gain
//! any back (no_new_privs). The calls change the calling thread only (raw system calls, not
//! libc's wrappers that signal every thread), so they run before the server starts any
//! thread, and [`check_dropped`] reads the result back.

use rustix::process::{Gid, Uid, getegid, geteuid, getgid, getuid};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// Why privileges could not be given up or looked up.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// `--web.user` names no user.
    #[error("--web.user: no user {0:?}")]
    NoUser(String),
    /// The user database could not be read.
    #[error("--web.user: cannot look up {name:?}")]
    Lookup {
        /// The name.
        name: String,
        /// What failed.
        #[source]
        source: nix::Error,
    },
    /// A system call that gives up privileges failed.
    #[error("cannot {what}")]
    Call {
        /// What was being given up.
        what: &'static str,
        /// The error.
        #[source]
        source: rustix::io::Errno,
    },
    /// A privilege is still held after giving it up.
    #[error("privileges still held after dropping them: {0}")]
    StillHeld(String),
}

/// The user and group the server process switches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebUser {
    /// User id.
    pub uid: u32,
    /// Group id (the user's primary group).
    pub gid: u32,
}

/// The user `--web.user` names: a name from the user database (NSS included), or a
/// numeric uid, whose group is then the uid's primary group when it has an entry and
/// the same number otherwise.
pub fn resolve_user(name: &str) -> Result<WebUser, PrivilegeError> {
    let lookup = |source| PrivilegeError::Lookup {
        name: name.to_owned(),
        source,
    };
    if let Ok(uid) = name.parse::<u32>() {
        let entry = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).map_err(lookup)?;
        return Ok(WebUser {
            uid,
            gid: entry.map_or(uid, |user| user.gid.as_raw()),
        });
    }
    match nix::unistd::User::from_name(name).map_err(lookup)? {
        Some(user) => Ok(WebUser {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }),
        None => Err(PrivilegeError::NoUser(name.to_owned())),
    }
}

/// True when this process holds something worth keeping from the HTTP side: it is root,
/// or it has a capability in any set a program it runs could use.
pub fn is_privileged() -> bool {
    if geteuid().is_root() || getuid().is_root() {
        return true;
    }
    let held = rustix::thread::capabilities(None)
        .map(|sets| !(sets.effective | sets.permitted).is_empty())
        .unwrap_or(true);
    held || ambient_capabilities()
}

fn ambient_capabilities() -> bool {
    (0..64).any(|bit| {
        rustix::thread::capability_is_in_ambient_set(CapabilitySet::from_bits_retain(1 << bit))
            .unwrap_or(false)
    })
}

/// Gives up this thread's privileges for good: as root, the bounding set, the
/// supplementary groups and the user (to `user`); in any case the ambient set, every
/// capability (effective, permitted, inheritable) and, with no_new_privs, any way back
/// through a set-user-ID program or file capabilities.
pub fn drop_to(user: Option<WebUser>) -> Result<(), PrivilegeError> {
    let call = |what| move |source| PrivilegeError::Call { what, source };
    if geteuid().is_root() {
        // Needs CAP_SETPCAP, so before the user changes; the first bit past the kernel's
        // last capability is refused.
        for bit in 0..64 {
            let cap = CapabilitySet::from_bits_retain(1 << bit);
            match rustix::thread::capability_is_in_bounding_set(cap) {
                Ok(true) => rustix::thread::remove_capability_from_bounding_set(cap)
                    .map_err(call("drop a capability from the bounding set"))?,
                Ok(false) => {}
                Err(_) => break,
            }
        }
    }
    rustix::thread::clear_ambient_capability_set()
        .map_err(call("clear the ambient capabilities"))?;
    if let Some(user) = user.filter(|_| geteuid().is_root()) {
        rustix::thread::set_thread_groups(&[]).map_err(call("drop the supplementary groups"))?;
        let gid = Gid::from_raw(user.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(call("change group"))?;
        let uid = Uid::from_raw(user.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(call("change user"))?;
    }
    let none = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    rustix::thread::set_capabilities(None, none).map_err(call("clear the capabilities"))?;
    rustix::thread::set_no_new_privs(true).map_err(call("set no_new_privs"))?;
    check_dropped(user)
}

/// Reads back what [`drop_to`] did; an error names what is still held.
pub fn check_dropped(user: Option<WebUser>) -> Result<(), PrivilegeError> {
    let mut held = Vec::new();
    if let Some(user) = user {
        let (uid, gid) = (user.uid, user.gid);
        if [getuid(), geteuid()].iter().any(|u| u.as_raw() != uid) {
            held.push(format!("the user is not {uid}"));
        }
        if [getgid(), getegid()].iter().any(|g| g.as_raw() != gid) {
            held.push(format!("the group is not {gid}"));
        }
    }
    match rustix::thread::capabilities(None) {
        Ok(sets) => {
            for (name, set) in [
                ("effective", sets.effective),
                ("permitted", sets.permitted),
                ("inheritable", sets.inheritable),
            ] {
                if !set.is_empty() {
                    held.push(format!("{name} capabilities {:#x}", set.bits()));
                }
            }
        }
        Err(e) => held.push(format!("capabilities unreadable ({e})")),
    }
    if ambient_capabilities() {
        held.push("ambient capabilities".to_owned());
    }
    if !rustix::thread::no_new_privs().unwrap_or(false) {
        held.push("no_new_privs is not set".to_owned());
    }
    if held.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::StillHeld(held.join(", ")))
    }
}
