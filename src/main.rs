//! Entry point: flags → validated config → the chosen mode → exit status.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use netfilter_exporter::audit::{self, Allowlist, AuditError, Check, FamilyCheck, Verdict};
use netfilter_exporter::cli::{self, AuditOutput, Cli, LogFormat, LogLevel};
use netfilter_exporter::collect::CollectConfig;
use netfilter_exporter::collect::{Collector, Publication};
use netfilter_exporter::config::{AuditConfig, AuditFamily, AuditInput, Config, Mode};
use netfilter_exporter::munin;
use netfilter_exporter::output::exposition::Format;
use netfilter_exporter::output::textfile;
use netfilter_exporter::serve::web_config::WebConfigFile;
use netfilter_exporter::serve::{self, AppState, TelemetryPath, connections, fds};
use netfilter_exporter::source::{self, iptables_save};
use tokio::sync::watch;

/// jemalloc rather than glibc's malloc: glibc keeps the memory a collection freed in
/// per-thread arenas, so the server's resident size grew to more than the sum of what it
/// holds (docs/performance.md, "Memory"); jemalloc, set up by [`MALLOC_CONF`], gives it
/// back at once.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, compiled into the program so that `cargo install` builds behave as
/// the repository's: freed pages go back to the kernel at once instead of after ten
/// seconds, so that a collection does not stack on the freed pages of the previous one and
/// the peak stays lower (docs/performance.md). `_RJEM_MALLOC_CONF` still overrides them at
/// run time.
// SAFETY: jemalloc reads this symbol (its `malloc_conf`, prefixed as tikv-jemalloc-sys
// builds it) once, at its first allocation, as a `const char *`: a thin pointer to a
// NUL-terminated string that lives as long as the program and is never written.
#[allow(unsafe_code)]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 34] = b"dirty_decay_ms:0,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    // Linked as traffic_accounting[_<family>_<tag>], the binary is a Munin plugin: munin-node
    // passes the plugin command as the only argument, never a flag.
    let mut args = std::env::args_os();
    if let Some(name) = args.next().as_deref().and_then(munin::plugin_name) {
        return munin_plugin(name, args.next().as_deref());
    }
    let cli = Cli::parse_from(cli::normalise_args(std::env::args_os().collect()));
    init_logging(&cli);
    let config = match Config::from_cli(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("netfilter_exporter: {e}");
            return ExitCode::from(2);
        }
    };
    // Read before anything starts: a file that does not load is the user's to fix.
    let web = match &config.mode {
        Mode::Serve(serve) => match serve.web_config_file.clone().map(WebConfigFile::open) {
            Some(Ok(file)) => Some(Arc::new(file)),
            Some(Err(e)) => {
                eprintln!("netfilter_exporter: --web.config.file: {e}");
                return ExitCode::from(2);
            }
            None => None,
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netfilter_exporter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, web)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netfilter_exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, web: Option<Arc<WebConfigFile>>) -> anyhow::Result<ExitCode> {
    let collector = Collector::new(config.collect.clone());
    match config.mode {
        Mode::Serve(serve) => {
            collector.spawn_loops();
            serve_http(
                &serve.listen,
                &serve.telemetry_path,
                serve.limits,
                web,
                collector.subscribe(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Mode::Audit(audit) if audit.once => {
            let check = check_once(&audit, &config.collect).await;
            // Status 2, not the 1 of a failed mode: 1 means unexpected rules here.
            if let Err(e) = print_check(&check, audit.output) {
                eprintln!("netfilter_exporter: {e:#}");
                return Ok(ExitCode::from(2));
            }
            Ok(match check.verdict() {
                Verdict::Clean => ExitCode::SUCCESS,
                Verdict::Unexpected => ExitCode::from(1),
                Verdict::Failed => ExitCode::from(2),
            })
        }
        Mode::Audit(audit) => audit_until_stopped(&audit, &config.collect).await,
        Mode::Dump => {
            let publication = collector.collect_once().await;
            // Chunk by chunk: a 100k-rule exposition is tens of MB, not worth a second copy.
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            for chunk in publication.exposition.chunks(Format::Text) {
                stdout
                    .write_all(&chunk)
                    .context("cannot write to standard output")?;
            }
            stdout.flush().context("cannot write to standard output")?;
            Ok(report_failures(&publication))
        }
        Mode::Textfile { path, once: true } => {
            let publication = collector.collect_once().await;
            textfile::write_atomically(&path, publication.exposition.chunks(Format::Text))?;
            Ok(report_failures(&publication))
        }
        Mode::Munin { action } => Ok(answer_munin(&munin::Name::Bare, action).await),
        Mode::Textfile { path, once: false } => {
            write_textfile_until_stopped(&path, &config.collect, &collector).await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `path` whenever [`textfile::Cadence`] says so, until SIGTERM or SIGINT.
async fn write_textfile_until_stopped(
    path: &std::path::Path,
    collect: &CollectConfig,
    collector: &Arc<Collector>,
) {
    // One signal future for the whole loop: one made per turn would not be listening
    // while the file is written, and a signal then would be lost.
    let mut shutdown = std::pin::pin!(serve::shutdown_signal());
    let mut publications = collector.subscribe();
    let mut cadence = textfile::Cadence::new(collect.selection.targets(), collect.interval);
    collector.spawn_loops();
    loop {
        let now = Instant::now();
        let due = cadence.due(&publications.borrow_and_update().rounds, now);
        if due.is_some_and(|at| at <= now) {
            let publication = Arc::clone(&publications.borrow());
            cadence.wrote(&publication.rounds, now);
            let target = path.to_owned();
            // Writing and syncing tens of megabytes blocks: keep it off the I/O threads.
            let written = tokio::task::spawn_blocking(move || {
                textfile::write_atomically(&target, publication.exposition.chunks(Format::Text))
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|written| written.map_err(anyhow::Error::from));
            // A failed write is logged and retried after the next collections: a full
            // disk must not stop the exporter.
            if let Err(e) = written {
                tracing::error!(error = %e, "cannot write textfile");
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

/// Checks every family of `audit` once: each allowlist read again, each ruleset dumped
/// (or read from its saved file) and parsed.
async fn check_once(audit: &AuditConfig, collect: &CollectConfig) -> Check {
    let mut families = Vec::new();
    for family in &audit.families {
        let outcome = check_family(family, collect).await;
        families.push(FamilyCheck {
            family: family.family,
            outcome,
        });
    }
    // Read each check, so that a map pinned again is found; blocking, but one small
    // system call per key.
    let map = audit.map_path.as_deref().map(audit::bpf::read);
    Check {
        families,
        map,
        finished_at: std::time::SystemTime::now(),
    }
}

async fn check_family(
    family: &AuditFamily,
    collect: &CollectConfig,
) -> Result<Vec<audit::TableFindings>, AuditError> {
    let allowlist = Allowlist::load(&family.allowlist)?;
    let dump = match &family.input {
        AuditInput::Live(target) => {
            // No counters: the lines checked are the rules' text only.
            let output = source::run(
                target.reader(),
                &[],
                collect.timeout,
                collect.max_output_bytes,
            )
            .await?;
            output.stdout
        }
        AuditInput::File(path) => read_rules_file(path, collect.max_output_bytes)?,
    };
    // Parsing 100k rules takes CPU time: off the I/O threads that also serve the metrics.
    // A panic there is a bug, shown as a failed check of this family, not the end of the
    // loop.
    let kind = family.family;
    tokio::task::spawn_blocking(move || {
        audit::check_dump(&iptables_save::parse(kind, &dump), &allowlist)
    })
    .await
    .unwrap_or_else(|e| {
        Err(AuditError::Internal {
            reason: e.to_string(),
        })
    })
}

/// A saved dump, bounded as a dump command's output is, read lossily as a dump is (a
/// comment may hold any bytes). Only `--once` reads one, so blocking here is fine.
fn read_rules_file(path: &std::path::Path, limit: usize) -> Result<String, AuditError> {
    use std::io::Read;
    let error = |reason: String| AuditError::RulesFile {
        path: path.display().to_string(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| error(e.to_string()))?;
    if bytes.len() > limit {
        return Err(error(format!(
            "larger than {limit} bytes (--collect-max-output-bytes)"
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn print_check(check: &Check, output: AuditOutput) -> anyhow::Result<()> {
    let text = match output {
        AuditOutput::Text => check.to_text(),
        AuditOutput::Json => format!("{:#}\n", check.to_json()),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to standard output")
}

/// Checks every interval until SIGTERM or SIGINT (or, with --terminate-on-success, until
/// a check is clean), logging each unexpected line when it appears and when it goes, and
/// serving the metrics of the last check when asked to.
async fn audit_until_stopped(
    audit: &AuditConfig,
    collect: &CollectConfig,
) -> anyhow::Result<ExitCode> {
    if audit.events {
        tracing::warn!("--events: Kubernetes events are not implemented yet; none are created");
    }
    let (publish, publications) = watch::channel(Arc::new(Publication::default()));
    let checks = async {
        let mut shutdown = std::pin::pin!(serve::shutdown_signal());
        let mut tracker = audit::Tracker::default();
        let mut blocks = audit::bpf::BlockWatch::default();
        loop {
            let check = check_once(audit, collect).await;
            log_check(&check, &mut tracker);
            if let Some(map) = &check.map {
                log_map(map, &mut blocks);
            }
            publish.send_replace(Arc::new(Publication::new(check.render())));
            if audit.terminate_on_success && check.verdict() == Verdict::Clean {
                tracing::info!("every rule is allowed; exiting (--terminate-on-success)");
                return;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(audit.interval) => {}
            }
        }
    };
    if audit.listen.is_empty() {
        checks.await;
    } else {
        tokio::select! {
            () = checks => {}
            served = serve_http(&audit.listen, &audit.telemetry_path, audit.limits, None, publications) => served?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs what changed since the last check, and every failed family.
fn log_check(check: &Check, tracker: &mut audit::Tracker) {
    let changes = tracker.update(check);
    for (family, table, rule) in &changes.appeared {
        tracing::warn!(%family, table, rule, "unexpected rule appeared");
    }
    for (family, table, rule) in &changes.gone {
        tracing::info!(%family, table, rule, "unexpected rule gone");
    }
    for family in &check.families {
        if let Err(e) = &family.outcome {
            tracing::error!(family = %family.family, error = %e, "audit check failed");
        }
    }
}

/// Logs a failed read of the BPF map, and a rise of its blocked count since the last read
/// (the original's `BlockedIPTablesRule` event, until events exist).
fn log_map(
    map: &Result<audit::bpf::MapValues, audit::bpf::BpfError>,
    blocks: &mut audit::bpf::BlockWatch,
) {
    if let Err(e) = map {
        tracing::warn!(error = %e, "cannot read the BPF map");
    }
    if let Some(rise) = blocks.observe(map) {
        tracing::warn!(
            rise,
            "attempts to add iptables rules were blocked since the last check"
        );
    }
}

/// Runs as the Munin plugin named `name` with the command in `argument`.
fn munin_plugin(
    name: Result<munin::Name, munin::BadName>,
    argument: Option<&std::ffi::OsStr>,
) -> ExitCode {
    let (name, action) = match (name, munin::Action::from_argument(argument)) {
        (Ok(name), Ok(action)) => (name, action),
        (Err(e), _) => return munin_usage_error(&e),
        (_, Err(e)) => return munin_usage_error(&e),
    };
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(answer_munin(&name, action)),
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", munin_prefix());
            ExitCode::FAILURE
        }
    }
}

fn munin_usage_error(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{}: {error}", munin_prefix());
    ExitCode::from(2)
}

fn munin_prefix() -> &'static str {
    netfilter_exporter::output::munin::PLUGIN_NAME
}

/// Answers one plugin command with the settings munin-node put in the environment.
async fn answer_munin(name: &munin::Name, action: munin::Action) -> ExitCode {
    let settings = match munin::Settings::from_env(|var| std::env::var(var).ok()) {
        Ok(settings) => settings,
        Err(e) => return munin_usage_error(&e),
    };
    let outcome = munin::run(name, action, &settings).await;
    for message in &outcome.messages {
        eprintln!("{}: {message}", munin_prefix());
    }
    if let Err(e) = std::io::stdout()
        .lock()
        .write_all(outcome.stdout.as_bytes())
    {
        eprintln!("{}: cannot write to standard output: {e}", munin_prefix());
        return ExitCode::FAILURE;
    }
    if outcome.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Prints one line per failed source on stderr; the exit status says whether any failed.
fn report_failures(publication: &Publication) -> ExitCode {
    let mut failed = false;
    for (target, error) in publication.failures() {
        eprintln!("netfilter_exporter: source {target} failed: {error}");
        failed = true;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn serve_http(
    listen: &[std::net::SocketAddr],
    telemetry_path: &TelemetryPath,
    limits: connections::Limits,
    web: Option<Arc<WebConfigFile>>,
    publications: watch::Receiver<Arc<Publication>>,
) -> anyhow::Result<()> {
    let app = serve::router(AppState {
        publications,
        telemetry_path: telemetry_path.clone(),
    });
    let limit = fds::raise_open_file_limit();
    let mut listeners = Vec::new();
    for address in listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tracing::info!(address = %address, path = %telemetry_path, "listening");
        listeners.push(listener);
    }
    // Counted after the listeners and the collector's start, which hold descriptors too.
    let open = fds::open_now().unwrap_or(0);
    let max_connections = fds::connection_cap(limits.max_connections, limit, open)?;
    if max_connections < limits.max_connections {
        tracing::info!(
            max_connections,
            open_file_limit = limit,
            "connection cap lowered to fit the open-file limit"
        );
    }
    let limits = connections::Limits {
        max_connections,
        ..limits
    };
    connections::serve(listeners, app, limits, web, serve::shutdown_signal()).await;
    Ok(())
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match cli.log_level {
        Some(LogLevel::Trace) => LevelFilter::TRACE,
        Some(LogLevel::Debug) => LevelFilter::DEBUG,
        Some(LogLevel::Info) => LevelFilter::INFO,
        Some(LogLevel::Warn) => LevelFilter::WARN,
        Some(LogLevel::Error) => LevelFilter::ERROR,
        None => match i16::from(cli.verbose) - i16::from(cli.quiet) {
            v if v >= 2 => LevelFilter::TRACE,
            1 => LevelFilter::DEBUG,
            0 => LevelFilter::INFO,
            -1 => LevelFilter::WARN,
            -2 => LevelFilter::ERROR,
            _ => LevelFilter::OFF,
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    match cli.log_format {
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
