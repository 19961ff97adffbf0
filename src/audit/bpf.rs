//! The pinned BPF map azure-iptables-monitor watches: an array map whose key 0 counts the
//! attempts to add iptables rules that a blocking program refused (and key 1, when the map
//! has it, the attempts it let through). It is opened read-only on every check, so that a
//! map pinned again after a restart of its owner is read afresh, and a missing map is a
//! reported failure of that read, never of the audit.
//!
//! The map is read with the `bpf(2)` system call directly: three commands on plain
//! structures, which no crate makes simpler than the few `unsafe` blocks below.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `BPF_MAP_LOOKUP_ELEM` (`enum bpf_cmd`, include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
/// `BPF_OBJ_GET`.
const BPF_OBJ_GET: libc::c_long = 7;
/// `BPF_OBJ_GET_INFO_BY_FD`.
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
/// `BPF_F_RDONLY`: the file descriptor only reads the map.
const BPF_F_RDONLY: u32 = 1 << 3;
/// `BPF_MAP_TYPE_ARRAY` (`enum bpf_map_type`).
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// The attributes of `BPF_OBJ_GET`.
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}

/// The attributes of `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// The start of `struct bpf_map_info`; the kernel fills as much as it is given room for.
#[repr(C)]
#[derive(Default)]
struct MapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// The attributes of `BPF_MAP_LOOKUP_ELEM`.
#[repr(C)]
#[derive(Default)]
struct LookupAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// What the map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapValues {
    /// Key 0: refused attempts.
    pub blocked: u64,
    /// Key 1, when the map has two entries or more: attempts let through.
    pub allowed: Option<u64>,
}

/// Why the map could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BpfError {
    /// The pinned path cannot be opened as a BPF object (missing, no bpffs, no permission).
    #[error("cannot open pinned BPF map {path}: {reason}")]
    Open {
        /// The pinned path.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// Its description cannot be read.
    #[error("cannot read what BPF map {path} is: {reason}")]
    Info {
        /// The pinned path.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// It is not an array of u64 values with u32 keys.
    #[error(
        "BPF map {path} is not an array of 8-byte values with 4-byte keys (type {map_type}, key {key_size} bytes, value {value_size} bytes)"
    )]
    Shape {
        /// The pinned path.
        path: PathBuf,
        /// `bpf_map_type`.
        map_type: u32,
        /// Key size in bytes.
        key_size: u32,
        /// Value size in bytes.
        value_size: u32,
    },
    /// A lookup failed.
    #[error("cannot read key {key} of BPF map {path}: {reason}")]
    Lookup {
        /// The pinned path.
        path: PathBuf,
        /// The key.
        key: u32,
        /// The operating system's reason.
        reason: String,
    },
}

fn bpf<T>(command: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a #[repr(C)] prefix of `union bpf_attr` for `command`, valid for
    // its size; every pointer in it points to memory that outlives the call and is as
    // large as the kernel writes (checked by the callers).
    let result = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            command,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if result < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Opens the map pinned at `path` read-only and reads keys 0 and 1.
pub fn read(path: &Path) -> Result<MapValues, BpfError> {
    let open_error = |reason: String| BpfError::Open {
        path: path.to_owned(),
        reason,
    };
    let name = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| open_error("the path holds a NUL byte".to_owned()))?;
    let mut attr = ObjGetAttr {
        pathname: name.as_ptr() as u64,
        file_flags: BPF_F_RDONLY,
        ..ObjGetAttr::default()
    };
    let raw = bpf(BPF_OBJ_GET, &mut attr).map_err(|e| open_error(e.to_string()))?;
    let raw = i32::try_from(raw).map_err(|_| open_error(format!("descriptor {raw}")))?;
    // SAFETY: a successful BPF_OBJ_GET returns a new file descriptor that nothing else owns.
    let map = unsafe { OwnedFd::from_raw_fd(raw) };
    let fd = map.as_raw_fd() as u32;

    let mut info = MapInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: fd,
        info_len: std::mem::size_of::<MapInfo>() as u32,
        info: &mut info as *mut MapInfo as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|e| BpfError::Info {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    // The kernel writes value_size bytes per lookup: only the shape read into a u64 is
    // looked up.
    if info.map_type != BPF_MAP_TYPE_ARRAY || info.key_size != 4 || info.value_size != 8 {
        return Err(BpfError::Shape {
            path: path.to_owned(),
            map_type: info.map_type,
            key_size: info.key_size,
            value_size: info.value_size,
        });
    }
    let lookup = |key: u32| -> Result<u64, BpfError> {
        let mut value = [0u8; 8];
        let mut attr = LookupAttr {
            map_fd: fd,
            key: &key as *const u32 as u64,
            value: value.as_mut_ptr() as u64,
            ..LookupAttr::default()
        };
        bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).map_err(|e| BpfError::Lookup {
            path: path.to_owned(),
            key,
            reason: e.to_string(),
        })?;
        Ok(u64::from_ne_bytes(value))
    };
    Ok(MapValues {
        blocked: lookup(0)?,
        allowed: if info.max_entries >= 2 {
            Some(lookup(1)?)
        } else {
            None
        },
    })
}

/// Tells when the blocked count rose. The baseline is the first value read, so that a
/// restart does not report blocks that happened before it, and a failed read keeps it.
#[derive(Debug, Default)]
pub struct BlockWatch {
    baseline: Option<u64>,
}

impl BlockWatch {
    /// Takes in one read; the rise since the last successful read, when there is one. A
    /// count that went down (the map was created again) becomes the new baseline.
    pub fn observe(&mut self, read: &Result<MapValues, BpfError>) -> Option<u64> {
        let Ok(values) = read else {
            return None;
        };
        let previous = self.baseline.replace(values.blocked)?;
        values
            .blocked
            .checked_sub(previous)
            .filter(|&rise| rise > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(n: u64) -> Result<MapValues, BpfError> {
        Ok(MapValues {
            blocked: n,
            allowed: None,
        })
    }

    #[test]
    fn rises_are_counted_from_the_first_read_and_kept_over_failures() {
        let mut watch = BlockWatch::default();
        let failed = Err(BpfError::Open {
            path: PathBuf::from("/m"),
            reason: "gone".to_owned(),
        });
        assert_eq!(watch.observe(&failed), None);
        assert_eq!(watch.observe(&blocked(7)), None, "old blocks at start");
        assert_eq!(watch.observe(&blocked(7)), None);
        assert_eq!(watch.observe(&blocked(9)), Some(2));
        assert_eq!(watch.observe(&failed), None);
        assert_eq!(watch.observe(&blocked(10)), Some(1), "baseline kept");
        assert_eq!(watch.observe(&blocked(3)), None, "map created again");
        assert_eq!(watch.observe(&blocked(4)), Some(1));
    }

    #[test]
    fn a_missing_map_is_an_open_error() {
        let err = read(Path::new("/nonexistent/map")).expect_err("missing");
        assert!(matches!(err, BpfError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/map"), "{err}");
    }
}
