//! `top`: which rules the traffic hits right now. Readings of this host's sources
//! ([`local`]), or of a running exporter's /metrics ([`remote`]), become rows with packet
//! and byte rates, shown full-screen and refreshed, or printed once as a table
//! ([`table`]).
//!
//! Both kinds of reading go through the same exposition: a source read here is rendered by
//! the exporter's own views and read back ([`interpret`]), so a row is a series exactly as
//! /metrics keys it. The model ([`model`], [`rates`], [`rows`](mod@rows)) is pure; reading
//! and drawing are the only I/O.

pub mod fetch;
pub mod interpret;
pub mod local;
pub mod model;
pub mod rates;
pub mod remote;
pub mod rows;
mod screen;
pub mod series;
pub mod table;
mod terminal;
pub mod text;
mod ui;
mod view;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::collect::CollectConfig;
use crate::error_chain::Chain;
use crate::logging::{LogFormat, fatal};

use local::Local;
use model::{Model, State, Update};
use remote::Remote;
pub use rows::Group;
use rows::{Column, rows, sort};

/// Rows `--once` prints unless `--rows` says otherwise.
pub const DEFAULT_ROWS: usize = 20;

/// Top's settings; which sources it reads, how and how often (`--delay`) are in the
/// [`CollectConfig`] beside them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--once`: print this many rows at most, then exit.
    pub once: Option<usize>,
    /// What a row is at start.
    pub group: Group,
    /// `--url`: read this exporter instead of this host.
    pub exporter: Option<Exporter>,
    /// `--log.file`.
    pub log_file: Option<PathBuf>,
}

/// The exporter `--url` reads.
#[derive(Debug, Clone)]
pub struct Exporter {
    /// Its metrics URL.
    pub url: fetch::Url,
    /// `--http.config.file`.
    pub http_config_file: Option<PathBuf>,
}

/// Where the readings come from.
#[derive(Clone)]
enum Reader {
    Local(Arc<Local>),
    Remote(Arc<Remote>),
}

impl Reader {
    fn new(settings: &Settings, collect: &CollectConfig) -> Result<Reader, fetch::HttpConfigError> {
        Ok(match &settings.exporter {
            Some(exporter) => {
                let client = fetch::Client::new(
                    exporter.url.clone(),
                    exporter.http_config_file.as_deref(),
                    collect.timeout,
                    collect.max_output_bytes,
                )?;
                let prefix = &collect.accounting.prefix;
                Reader::Remote(Arc::new(Remote::new(client, prefix, collect.interval)))
            }
            None => Reader::Local(Arc::new(Local::new(collect))),
        })
    }

    /// One reading of every origin.
    async fn read(&self) -> Vec<Update> {
        match self {
            Reader::Local(local) => local.read_all().await,
            Reader::Remote(remote) => remote.read().await,
        }
    }

    /// Reads on, each origin at its pace, sending every update to `updates`.
    fn spawn(self, updates: tokio::sync::mpsc::UnboundedSender<Update>) {
        match self {
            Reader::Local(local) => local.spawn(updates),
            Reader::Remote(remote) => remote.spawn(updates),
        }
    }
}

/// Runs top as `settings` say, reading as `collect` says.
pub async fn run(settings: Settings, collect: CollectConfig, log_format: LogFormat) -> ExitCode {
    let reader = match Reader::new(&settings, &collect) {
        Ok(reader) => reader,
        Err(e) => {
            fatal(
                log_format,
                format_args!("--http.config.file: {}", Chain(&e)),
            );
            return ExitCode::from(2);
        }
    };
    let result = match settings.once {
        Some(rows) => once(reader, &settings, &collect, rows).await,
        None => screen::run(reader, &settings, collect.interval).await,
    };
    result.unwrap_or_else(|e| {
        fatal(log_format, Chain(&e));
        ExitCode::FAILURE
    })
}

/// Why top could not go on.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// `--log.file` cannot be opened.
    #[error("--log.file {path}")]
    LogFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The full screen needs a terminal.
    #[error("standard output is not a terminal: --once prints the rows as a table instead")]
    NotATerminal,
    /// The terminal could not be set up, drawn on or read.
    #[error("the terminal")]
    Terminal(#[source] std::io::Error),
    /// The table could not be written.
    #[error("cannot write to standard output")]
    Output(#[source] std::io::Error),
}

/// `--once`: two readings `--delay` apart, or more until an exporter has collected every
/// source again (at most `--collect-timeout`), then the first `rows` rows as a table. Exit
/// status 1 when an origin failed.
async fn once(
    reader: Reader,
    settings: &Settings,
    collect: &CollectConfig,
    rows_wanted: usize,
) -> Result<ExitCode, TopError> {
    let redirected = settings
        .log_file
        .as_deref()
        .map(|path| {
            terminal::Redirected::to(Some(path)).map_err(|source| TopError::LogFile {
                path: path.to_owned(),
                source,
            })
        })
        .transpose()?;
    let started = Instant::now();
    let mut model = Model::default();
    let read = async |model: &mut Model| {
        for update in reader.read().await {
            model.apply(update);
        }
    };
    read(&mut model).await;
    loop {
        tokio::time::sleep(collect.interval).await;
        read(&mut model).await;
        if model.rated() || started.elapsed() >= collect.timeout {
            break;
        }
    }
    drop(redirected);
    let mut rows = rows(model.series(), settings.group);
    sort(&mut rows, Column::default());
    rows.truncate(rows_wanted);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(table::plain(&rows, settings.group).as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(TopError::Output)?;
    Ok(say_states(&model))
}

/// Says on standard error what failed, was left out or noted; the exit status says
/// whether anything failed.
fn say_states(model: &Model) -> ExitCode {
    let mut failed = false;
    for (origin, state) in model.states() {
        match state {
            State::Failed(error) => {
                eprintln!("netfilter_exporter: {origin} failed: {error}");
                failed = true;
            }
            State::LeftOut(Some(why)) => eprintln!("netfilter_exporter: {origin} left out: {why}"),
            State::Read(health) => {
                for note in &health.notes {
                    eprintln!("netfilter_exporter: {origin}: {note}");
                }
            }
            State::LeftOut(None) => {}
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
