//! Writes the exposition for node_exporter's textfile collector, atomically: the collector
//! must never read a half-written file, so the text goes to a temporary file in the same
//! directory, is synced, and is renamed over the target.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the textfile could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TextfileError {
    /// Creating, writing or syncing the temporary file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error("cannot rename {from} to {to}: {source}")]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `path` atomically with the concatenation of `chunks` (an exposition is
/// written chunk by chunk, never copied into one buffer first).
pub fn write_atomically<C: AsRef<[u8]>>(
    path: &Path,
    chunks: impl IntoIterator<Item = C>,
) -> Result<(), TextfileError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // node_exporter reads only `*.prom`, so a leftover temporary file is never collected.
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for chunk in chunks {
            file.write_all(chunk.as_ref())?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    if let Err(source) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(TextfileError::Write { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        TextfileError::Rename {
            from: tmp.clone(),
            to: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netfilter.prom");
        std::fs::write(&path, "old").expect("write");
        write_atomically(&path, ["ne", "w\n"]).expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new\n");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn missing_directory_is_a_write_error() {
        let err = write_atomically(Path::new("/nonexistent-dir/x.prom"), ["x"]).expect_err("fails");
        assert!(matches!(err, TextfileError::Write { .. }), "{err}");
    }
}
