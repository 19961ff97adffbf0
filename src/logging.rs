//! Where the log goes and how it looks, and how a fatal error is said: set up once per
//! process, by the program's entry and by the server process.

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// key=value pairs.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Logs to standard error at `level` in `format`, for the rest of the process.
pub fn init(level: tracing_subscriber::filter::LevelFilter, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Logfmt => {
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;
            tracing_subscriber::registry()
                .with(level)
                .with(
                    tracing_logfmt::builder()
                        .layer()
                        .with_writer(std::io::stderr),
                )
                .init()
        }
    }
}

/// Says why the exporter cannot go on: one plain line as a command-line tool says it, or
/// one log record under `--log.format json`, where standard error is read by a machine.
pub fn fatal(format: LogFormat, message: impl std::fmt::Display) {
    match format {
        LogFormat::Json => tracing::error!("{message}"),
        LogFormat::Logfmt => eprintln!("netfilter_exporter: {message}"),
    }
}

/// The async runtime every mode runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
