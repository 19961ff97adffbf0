//! What the server serves: the exposition of a publication and the sources' status for
//! the landing page, in the form the server process receives them; and where the process
//! metrics appended to each scrape come from.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::process::{self, ProcessStats};
use crate::collect::Publication;
use crate::error_chain::Chain;
use crate::exposition::deflate::OpenGzip;
use crate::exposition::{Exposition, Format};

/// One source's line on the landing page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The source.
    pub source: String,
    /// What its last collection found, or why it failed.
    pub status: String,
}

/// A publication as served.
#[derive(Debug, Default)]
pub struct Served {
    /// The rendered exposition.
    pub exposition: Exposition,
    /// The sources, in the order of the exposition.
    pub sources: Vec<SourceStatus>,
    /// The gzip stream of each format without its end, put together on first demand.
    gzip: [OnceLock<Option<OpenGzip>>; 2],
}

impl Served {
    /// What the server serves of `exposition` and `sources`.
    pub fn new(exposition: Exposition, sources: Vec<SourceStatus>) -> Self {
        Served {
            exposition,
            sources,
            gzip: Default::default(),
        }
    }

    /// What the server serves of `publication` (its exposition is shared, not copied).
    pub fn of(publication: &Publication) -> Self {
        let sources = publication
            .reports
            .iter()
            .map(|r| SourceStatus {
                source: r.source.to_string(),
                status: match &r.outcome {
                    Ok(reading) => {
                        let mut status = format!(
                            "ok, {} rules, {} unparsed lines",
                            reading.rules, reading.unparsed
                        );
                        if let Some(series) = r.series.filter(|s| s.dropped > 0) {
                            status.push_str(&format!(
                                ", {} series dropped over --max-series ({} kept)",
                                series.dropped, series.kept
                            ));
                        }
                        status
                    }
                    Err(e) => format!("failed: {}", crate::error_chain::Chain(e)),
                },
            })
            .collect();
        Served::new(publication.exposition.clone(), sources)
    }

    /// The exposition followed by `tail` as gzip chunks; the exposition's part is
    /// compressed on first use and kept (families kept compressed cost nothing then), only
    /// `tail` is compressed per call. `None` if compression failed.
    pub fn gzip(&self, tail: &Exposition, format: Format) -> Option<Vec<Bytes>> {
        let slot = match format {
            Format::Text => &self.gzip[0],
            Format::OpenMetrics => &self.gzip[1],
        };
        let start = slot.get_or_init(|| self.exposition.open_gzip(format));
        tail.close_gzip(start.as_ref()?, format)
    }
}

/// Where the process metrics of a scrape come from.
#[derive(Debug, Clone)]
pub enum SelfMetrics {
    /// Collector and server are this one process.
    OneProcess,
    /// This is the server process; the collector sends its figures.
    Server(watch::Receiver<Option<ProcessStats>>),
}

impl SelfMetrics {
    /// The process families, read now (the collector's as last sent).
    pub fn render(&self) -> Exposition {
        let own = match process::read_self() {
            Ok(stats) => Some(stats),
            Err(e) => {
                tracing::debug!(error = %Chain(&e), "cannot read the process metrics");
                None
            }
        };
        let mut processes = Vec::new();
        match self {
            SelfMetrics::OneProcess => processes.extend(own.map(|s| ("collector", s))),
            SelfMetrics::Server(collector) => {
                processes.extend(collector.borrow().map(|s| ("collector", s)));
                processes.extend(own.map(|s| ("server", s)));
            }
        }
        process::render(&processes)
    }
}

/// A receiver of `publications` as served, kept current by a task of its own.
pub fn served(mut publications: watch::Receiver<Arc<Publication>>) -> watch::Receiver<Arc<Served>> {
    let (sender, receiver) =
        watch::channel(Arc::new(Served::of(&publications.borrow_and_update())));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = publications.changed() => if changed.is_err() { return },
                () = sender.closed() => return,
            }
            let next = Served::of(&publications.borrow_and_update());
            sender.send_replace(Arc::new(next));
        }
    });
    receiver
}
