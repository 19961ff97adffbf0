//! The one-shot modes: `dump` and `textfile --once` collect every selected source once,
//! write the exposition, and say by their exit status whether a source failed.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::collect::{Collector, Publication};
use crate::error_chain::Chain;
use crate::exposition::Format;
use crate::logging::{LogFormat, fatal};

/// `dump`: the exposition on standard output.
pub async fn dump(collector: &Arc<Collector>, log_format: LogFormat) -> ExitCode {
    let publication = collector.collect_once().await;
    // Chunk by chunk: a 100k-rule exposition is tens of MB, not worth a second copy.
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let written = publication
        .exposition
        .chunks(Format::Text)
        .try_for_each(|chunk| stdout.write_all(&chunk))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        fatal(
            log_format,
            format_args!("cannot write to standard output: {e}"),
        );
        return ExitCode::FAILURE;
    }
    report_failures(&publication)
}

/// `textfile --once`: the exposition written atomically to `path`.
pub async fn textfile(path: &Path, collector: &Arc<Collector>, log_format: LogFormat) -> ExitCode {
    let publication = collector.collect_once().await;
    let chunks = publication.exposition.chunks(Format::Text);
    if let Err(e) = super::textfile::write_atomically(path, chunks) {
        fatal(log_format, Chain(&e));
        return ExitCode::FAILURE;
    }
    report_failures(&publication)
}

/// Prints one line per failed source on stderr; the exit status says whether any failed.
fn report_failures(publication: &Publication) -> ExitCode {
    let mut failed = false;
    for (source, error) in publication.failures() {
        eprintln!(
            "netfilter_exporter: source {source} failed: {}",
            Chain(error)
        );
        failed = true;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
