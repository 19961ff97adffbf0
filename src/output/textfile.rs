//! Writes the exposition for node_exporter's textfile collector, atomically: the collector
//! must never read a half-written file, so the text goes to a temporary file of a unique
//! name in the same directory, is synced, and is renamed over the target; the directory is
//! synced too, so that the new name survives a crash. [`Cadence`] decides when the looping
//! mode writes: the whole file is rewritten and synced each time, which for a large
//! ruleset is not worth doing after every source's collection.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exposition::{Exposition, ExpositionBuilder, MetricType, Storage};
use std::sync::Arc;

use crate::collect::{CollectConfig, Collector};
use crate::error_chain::Chain;
use crate::exposition::Format;
use crate::metrics::names::exporter::TEXTFILE_WRITE_FAILURES;
use crate::source::SourceId;

/// The family that counts the looping mode's failed writes, written after the exposition:
/// a write that failed is seen in the next file that lands (a file that stops changing is
/// seen by node_exporter's `node_textfile_mtime_seconds`).
pub fn failures(count: u64) -> Exposition {
    let mut builder = ExpositionBuilder::new(Storage::Plain);
    let (name, help) = TEXTFILE_WRITE_FAILURES;
    builder
        .family(name, help, MetricType::Counter)
        .sample(&[], count as f64);
    builder.finish()
}

/// Why the textfile could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TextfileError {
    /// Creating, writing or syncing the temporary file failed.
    #[error("cannot write {path}")]
    Write {
        /// The temporary file, or its directory when it could not be created.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error("cannot rename {from} to {to}")]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The target.
        to: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is in place, but syncing its directory failed: after a crash the old
    /// file may be back.
    #[error("cannot sync directory {path}")]
    SyncDirectory {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `path` atomically with the concatenation of `chunks` (an exposition is
/// written chunk by chunk, never copied into one buffer first), readable by everyone
/// (mode 0644) as node_exporter may run as another user. A failure leaves no temporary
/// file behind.
pub fn write_atomically<C: AsRef<[u8]>>(
    path: &Path,
    chunks: impl IntoIterator<Item = C>,
) -> Result<(), TextfileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // node_exporter reads only `*.prom`, so the temporary file is never collected; the
    // random part keeps two writers of one target from sharing it.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| TextfileError::Write {
            path: dir.to_owned(),
            source,
        })?;
    let write = |file: &std::fs::File| -> std::io::Result<()> {
        // Set on the open file, so the umask does not narrow it.
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        let mut out = std::io::BufWriter::new(file);
        for chunk in chunks {
            out.write_all(chunk.as_ref())?;
        }
        out.flush()?;
        file.sync_all()
    };
    // On every error below, dropping the temporary file removes it.
    if let Err(source) = write(tmp.as_file()) {
        return Err(TextfileError::Write {
            path: tmp.path().to_owned(),
            source,
        });
    }
    let from = tmp.path().to_owned();
    tmp.persist(path).map_err(|e| TextfileError::Rename {
        from,
        to: path.to_owned(),
        source: e.error,
    })?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| TextfileError::SyncDirectory {
            path: dir.to_owned(),
            source,
        })
}

/// When the looping textfile mode writes: once every source has finished a collection
/// since the last write (so that one write carries the news of all of them), and at most
/// once per interval.
#[derive(Debug)]
pub struct Cadence {
    sources: Vec<SourceId>,
    interval: Duration,
    written: Option<(Instant, BTreeMap<SourceId, u64>)>,
}

impl Cadence {
    /// The cadence of collecting `sources` (every one that has a loop, found present or
    /// not) once per `interval`.
    pub fn new(sources: Vec<SourceId>, interval: Duration) -> Self {
        Cadence {
            sources,
            interval,
            written: None,
        }
    }

    /// When a publication made after `rounds` (collections ended per source, see
    /// [`crate::collect::Publication::rounds`]) is to be written, as seen at `now`;
    /// `None` while a source has not finished a collection since the last write.
    pub fn due(&self, rounds: &BTreeMap<SourceId, u64>, now: Instant) -> Option<Instant> {
        let count = |map: Option<&BTreeMap<SourceId, u64>>, t: &SourceId| {
            map.and_then(|m| m.get(t)).copied().unwrap_or(0)
        };
        let written = self.written.as_ref().map(|(_, rounds)| rounds);
        let all_new = self
            .sources
            .iter()
            .all(|t| count(Some(rounds), t) > count(written, t));
        all_new.then(|| match &self.written {
            Some((at, _)) => now.max(*at + self.interval),
            None => now,
        })
    }

    /// Records that the publication made after `rounds` was written at `now`.
    pub fn wrote(&mut self, rounds: &BTreeMap<SourceId, u64>, now: Instant) {
        self.written = Some((now, rounds.clone()));
    }
}

/// Writes `path` whenever [`Cadence`] says so, until SIGTERM or SIGINT, with the
/// collector's loops running; SIGHUP does not end it.
pub async fn write_until_stopped(
    path: &std::path::Path,
    collect: &CollectConfig,
    collector: &Arc<Collector>,
) {
    // One signal future for the whole loop: one made per turn would not be listening
    // while the file is written, and a signal then would be lost.
    crate::serve::reload_on_hangup(None);
    let mut shutdown = std::pin::pin!(crate::serve::shutdown_signal());
    let mut publications = collector.subscribe();
    let mut cadence = Cadence::new(collect.selection.sources(), collect.interval);
    let mut failed_writes = 0;
    collector.spawn_loops();
    loop {
        let now = Instant::now();
        let due = cadence.due(&publications.borrow_and_update().rounds, now);
        if due.is_some_and(|at| at <= now) {
            let publication = Arc::clone(&publications.borrow());
            cadence.wrote(&publication.rounds, now);
            let file = path.to_owned();
            // Writing and syncing tens of megabytes blocks: keep it off the I/O threads.
            let tail = failures(failed_writes);
            let written = tokio::task::spawn_blocking(move || {
                let chunks = publication.exposition.chunks_then(&tail, Format::Text);
                write_atomically(&file, chunks)
            })
            .await;
            // A failed write is logged, counted and retried after the next collections: a
            // full disk must not stop the exporter.
            let error = match written {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Chain(&e).to_string()),
                Err(e) => Some(format!("the write panicked, a bug to report: {e}")),
            };
            if let Some(error) = error {
                failed_writes += 1;
                tracing::error!(%error, "cannot write textfile");
            }
            continue;
        }
        let wake = tokio::time::Instant::from_std(due.unwrap_or(now));
        tokio::select! {
            // Shutdown first, so that the signals are listened for from the first turn on.
            biased;
            () = &mut shutdown => return,
            changed = publications.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep_until(wake), if due.is_some() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netfilter.prom");
        std::fs::write(&path, "old").expect("write");
        write_atomically(&path, ["ne", "w\n"]).expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new\n");
        assert_eq!(names(dir.path()), ["netfilter.prom"]);
    }

    #[test]
    fn the_file_is_readable_by_everyone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netfilter.prom");
        write_atomically(&path, ["x\n"]).expect("written");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{mode:o}");
    }

    #[test]
    fn missing_directory_is_a_write_error() {
        let err = write_atomically(Path::new("/nonexistent-dir/x.prom"), ["x"]).expect_err("fails");
        assert!(matches!(err, TextfileError::Write { .. }), "{err}");
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netfilter.prom");
        std::fs::create_dir(&path).expect("a directory where the file goes");
        std::fs::write(path.join("inside"), "x").expect("write");
        let err = write_atomically(&path, ["x\n"]).expect_err("fails");
        assert!(matches!(err, TextfileError::Rename { .. }), "{err}");
        assert_eq!(names(dir.path()), ["netfilter.prom"]);
    }

    #[test]
    fn writers_of_one_target_do_not_share_a_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("netfilter.prom");
        let contents = ["a\n".repeat(100_000), "b\n".repeat(100_000)];
        std::thread::scope(|scope| {
            for content in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..30 {
                        write_atomically(path, [content.as_bytes()]).expect("written");
                    }
                });
            }
        });
        let last = std::fs::read_to_string(&path).expect("read");
        assert!(contents.contains(&last), "a mix of both writers");
        assert_eq!(names(dir.path()), ["netfilter.prom"]);
    }

    fn rounds(counts: &[(SourceId, u64)]) -> BTreeMap<SourceId, u64> {
        counts.iter().copied().collect()
    }

    #[test]
    fn the_first_write_waits_for_every_source() {
        let cadence = Cadence::new(
            vec![SourceId::Iptables, SourceId::Ip6tables],
            Duration::from_secs(5),
        );
        let now = Instant::now();
        assert_eq!(cadence.due(&rounds(&[]), now), None);
        assert_eq!(cadence.due(&rounds(&[(SourceId::Iptables, 1)]), now), None);
        assert_eq!(
            cadence.due(
                &rounds(&[(SourceId::Iptables, 1), (SourceId::Ip6tables, 1)]),
                now
            ),
            Some(now)
        );
    }

    #[test]
    fn later_writes_wait_for_every_source_and_the_interval() {
        let interval = Duration::from_secs(5);
        let mut cadence = Cadence::new(vec![SourceId::Iptables, SourceId::Ip6tables], interval);
        let start = Instant::now();
        let first = rounds(&[(SourceId::Iptables, 1), (SourceId::Ip6tables, 1)]);
        cadence.wrote(&first, start);
        // Nothing new, or only one source again: no write, however late.
        let later = start + 10 * interval;
        assert_eq!(cadence.due(&first, later), None);
        let one = rounds(&[(SourceId::Iptables, 3), (SourceId::Ip6tables, 1)]);
        assert_eq!(cadence.due(&one, later), None);
        // Both again: at the end of the interval, or now when that is past.
        let both = rounds(&[(SourceId::Iptables, 3), (SourceId::Ip6tables, 2)]);
        let soon = start + Duration::from_secs(1);
        assert_eq!(cadence.due(&both, soon), Some(start + interval));
        assert_eq!(cadence.due(&both, later), Some(later));
    }
}
