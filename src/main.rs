//! Entry point: flags → validated config → the chosen mode → exit status.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use netfilter_exporter::audit::run::Auditor;
use netfilter_exporter::audit::{self, Check, Verdict};
use netfilter_exporter::cli::{self, AuditOutput, LogArgs, LogFormat, LogLevel};
use netfilter_exporter::collect::CollectConfig;
use netfilter_exporter::collect::{Collector, Publication};
use netfilter_exporter::config::{AuditConfig, Config, Mode};
use netfilter_exporter::error_chain::Chain;
use netfilter_exporter::munin;
use netfilter_exporter::output::exposition::Format;
use netfilter_exporter::output::textfile;
use netfilter_exporter::serve::listen::ListenAddress;
use netfilter_exporter::serve::web_config::WebConfigFile;
use netfilter_exporter::serve::{
    self, AppState, TelemetryPath, connections, fds, privileges, served, split, systemd,
};
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
    if args.next().is_some_and(|arg| arg == split::SERVER_COMMAND) {
        return web_server();
    }
    let command = cli::parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let log_format = command.log().log_format;
    init_logging(log_level(command.log()), log_format);
    let config = match Config::from_args(&command) {
        Ok(config) => config,
        Err(e) => {
            fatal(log_format, e);
            return ExitCode::from(2);
        }
    };
    // Read before anything starts: a file that does not load is the user's to fix.
    let web_config_file = match &config.mode {
        Mode::Serve(serve) => serve.web_config_file.clone(),
        Mode::Audit(audit) => audit.web_config_file.clone(),
        _ => None,
    };
    let web = match web_config_file {
        Some(path) => match WebConfigFile::open(path.clone()) {
            Ok(file) => Some(Arc::new(file)),
            Err(e) => {
                let file = path.display();
                fatal(
                    log_format,
                    format_args!("--web.config.file {file}: {}", Chain(&e)),
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    // Before the runtime's threads start, as taking them changes the environment.
    let systemd_sockets = match &config.mode {
        Mode::Serve(serve) if serve.systemd_socket => match systemd::listeners() {
            Ok(listeners) => Some(listeners),
            Err(e) => {
                fatal(log_format, Chain(&e));
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            fatal(
                log_format,
                format_args!("cannot start the async runtime: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, web, systemd_sockets, log_format)) {
        Ok(code) => code,
        Err(e) => {
            fatal(log_format, format_args!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Says why the exporter cannot go on: one plain line as a command-line tool says it, or
/// one log record under `--log.format json`, where standard error is read by a machine.
fn fatal(format: LogFormat, message: impl std::fmt::Display) {
    match format {
        LogFormat::Json => tracing::error!("{message}"),
        LogFormat::Logfmt => eprintln!("netfilter_exporter: {message}"),
    }
}

/// Runs as the server process the collector started ([`split`]): takes the sockets and
/// settings, gives up every privilege, then serves until the collector stops it.
fn web_server() -> ExitCode {
    let start = match split::ServerStart::receive() {
        Ok(start) => start,
        Err(e) => {
            eprintln!("netfilter_exporter: server process: {e}");
            return ExitCode::FAILURE;
        }
    };
    let level = start
        .settings
        .log_level
        .parse()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let format = <LogFormat as clap::ValueEnum>::from_str(&start.settings.log_format, true)
        .unwrap_or(LogFormat::Logfmt);
    init_logging(level, format);
    // Before the runtime starts its threads: the calls change the calling thread only.
    if let Err(e) = start.drop_privileges() {
        tracing::error!(error = %e, "server process cannot give up its privileges");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "server process cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    // A hangup of the terminal reaches the whole process group: the server outlives it as
    // the collector does (a registered handler replaces the default action for good).
    let serving = runtime.block_on(async {
        drop(tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ));
        start.serve().await
    });
    match serving {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server process exiting");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: Config,
    web: Option<Arc<WebConfigFile>>,
    systemd_sockets: Option<Vec<std::net::TcpListener>>,
    log_format: LogFormat,
) -> anyhow::Result<ExitCode> {
    let collector = Collector::new(config.collect.clone());
    match config.mode {
        Mode::Serve(serve) => {
            serve::reload_on_hangup(web.clone());
            let listeners = if let Some(listeners) = systemd_sockets {
                for listener in &listeners {
                    let address = listener
                        .local_addr()
                        .map_or_else(|e| format!("unknown ({e})"), |a| a.to_string());
                    tracing::info!(%address, path = %serve.telemetry_path, "listening on a socket from systemd");
                }
                listeners
            } else {
                bind(&serve.listen, &serve.telemetry_path).await?
            };
            collector.spawn_loops();
            if let Some(audit) = serve.audit.clone() {
                spawn_serve_audit(audit, config.collect.clone(), Arc::clone(&collector));
            }
            let http = Http {
                listeners,
                telemetry_path: serve.telemetry_path,
                limits: serve.limits,
                web,
                web_user: serve.web_user,
                log_format,
            };
            serve_until_stopped(http, collector.subscribe()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Mode::Audit(audit) if audit.once => {
            let check = audit::run::check_once(&audit, &config.collect).await;
            // The report may go to a file: what failed is also said where a person looks.
            for (family, e) in check.failures() {
                eprintln!("netfilter_exporter: {family}: {}", Chain(e));
            }
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
        Mode::Audit(audit) => audit_until_stopped(&audit, &config.collect, web, log_format).await,
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
            serve::reload_on_hangup(None);
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
    let mut failures = 0;
    collector.spawn_loops();
    loop {
        let now = Instant::now();
        let due = cadence.due(&publications.borrow_and_update().rounds, now);
        if due.is_some_and(|at| at <= now) {
            let publication = Arc::clone(&publications.borrow());
            cadence.wrote(&publication.rounds, now);
            let target = path.to_owned();
            // Writing and syncing tens of megabytes blocks: keep it off the I/O threads.
            let tail = textfile::failures(failures);
            let written = tokio::task::spawn_blocking(move || {
                let chunks = publication.exposition.chunks_then(&tail, Format::Text);
                textfile::write_atomically(&target, chunks)
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|written| written.map_err(anyhow::Error::from));
            // A failed write is logged, counted and retried after the next collections: a
            // full disk must not stop the exporter.
            if let Err(e) = written {
                failures += 1;
                tracing::error!(error = %format!("{e:#}"), "cannot write textfile");
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
/// a check is clean and the node labelled so), serving the metrics of the last check when
/// asked to.
async fn audit_until_stopped(
    audit: &AuditConfig,
    collect: &CollectConfig,
    web: Option<Arc<WebConfigFile>>,
    log_format: LogFormat,
) -> anyhow::Result<ExitCode> {
    serve::reload_on_hangup(web.clone());
    let (publish, publications) = watch::channel(Arc::new(Publication::default()));
    let checks = async {
        let mut shutdown = std::pin::pin!(serve::shutdown_signal());
        let mut auditor = Auditor::new(audit.clone(), collect.clone());
        loop {
            let cycle = auditor.cycle().await;
            publish.send_replace(Arc::new(Publication::new(cycle.exposition)));
            if cycle.terminate {
                tracing::info!("every rule is allowed; exiting (--terminate-on-success)");
                return;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(auditor.interval()) => {}
            }
        }
    };
    if audit.listen.is_empty() {
        checks.await;
    } else {
        tokio::select! {
            () = checks => {}
            served = async {
                let http = Http {
                    listeners: bind(&audit.listen, &audit.telemetry_path).await?,
                    telemetry_path: audit.telemetry_path.clone(),
                    limits: audit.limits,
                    web,
                    web_user: audit.web_user.clone(),
                    log_format,
                };
                serve_until_stopped(http, publications).await
            } => served?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The audit inside `serve`: checks every interval for as long as the exporter runs, its
/// families put into the collector's publications.
fn spawn_serve_audit(audit: AuditConfig, collect: CollectConfig, collector: Arc<Collector>) {
    tokio::spawn(async move {
        let mut auditor = Auditor::new(audit, collect);
        loop {
            let cycle = auditor.cycle().await;
            collector.publish_audit(cycle.exposition).await;
            tokio::time::sleep(auditor.interval()).await;
        }
    });
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

/// The user the server process switches to: `--web.user` (by default nobody) when the
/// exporter runs as root; none otherwise, where the server keeps the user it was started
/// as and may not be given another.
fn web_user(name: Option<&str>) -> anyhow::Result<Option<privileges::WebUser>> {
    let euid = rustix::process::geteuid();
    if euid.is_root() {
        return Ok(Some(privileges::resolve_user(name.unwrap_or("nobody"))?));
    }
    if let Some(name) = name {
        let user = privileges::resolve_user(name)?;
        anyhow::ensure!(
            user.uid == euid.as_raw(),
            "--web.user {name}: only root can run the server as another user"
        );
    }
    Ok(None)
}

/// Binds `listen` (with SO_REUSEADDR, as tokio does, so that a restart finds the port free).
async fn bind(
    listen: &[ListenAddress],
    telemetry_path: &TelemetryPath,
) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::new();
    for address in listen {
        let bound = address
            .bind()
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        for listener in bound {
            let address = listener
                .local_addr()
                .map_or_else(|_| address.to_string(), |a| a.to_string());
            tracing::info!(%address, path = %telemetry_path, "listening");
            listeners.push(listener);
        }
    }
    Ok(listeners)
}

/// What serving the publications over HTTP takes.
struct Http {
    listeners: Vec<std::net::TcpListener>,
    telemetry_path: TelemetryPath,
    limits: connections::Limits,
    web: Option<Arc<WebConfigFile>>,
    /// `--web.user`, when given.
    web_user: Option<String>,
    log_format: LogFormat,
}

/// Serves `publications` until SIGTERM or SIGINT: from a server process of its own when
/// this one is privileged ([`split`]), else in this process, where there is nothing to
/// keep from the HTTP side.
async fn serve_until_stopped(
    http: Http,
    publications: watch::Receiver<Arc<Publication>>,
) -> anyhow::Result<()> {
    // Raised here, so that the server process inherits the raised limit.
    fds::raise_open_file_limit();
    if privileges::is_privileged() {
        let settings = split::ServerSettings {
            telemetry_path: http.telemetry_path.to_string(),
            limits: http.limits,
            user: web_user(http.web_user.as_deref())?,
            log_level: tracing::level_filters::LevelFilter::current().to_string(),
            log_format: format!("{:?}", http.log_format).to_lowercase(),
            web_config: http.web.is_some(),
        };
        let listeners = http.listeners.into_iter().map(std::os::fd::OwnedFd::from);
        split::run_collector_side(
            listeners.collect(),
            settings,
            http.web,
            publications,
            serve::shutdown_signal(),
        )
        .await?;
        return Ok(());
    }
    if http.web_user.is_some() {
        tracing::warn!("--web.user has no effect: the exporter runs unprivileged, in one process");
    }
    let app = serve::router(AppState {
        publications: served::served(publications),
        telemetry_path: http.telemetry_path,
        self_metrics: Some(served::SelfMetrics::OneProcess),
        policy: serve::policy::Policy::new(http.web.clone(), http.limits.max_requests),
    });
    let mut listeners = Vec::new();
    for listener in http.listeners {
        listener.set_nonblocking(true)?;
        listeners.push(tokio::net::TcpListener::from_std(listener)?);
    }
    serve::serve_listeners(
        listeners,
        app,
        http.limits,
        http.web,
        serve::shutdown_signal(),
    )
    .await?;
    Ok(())
}

fn log_level(log: &LogArgs) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match log.log_level {
        Some(LogLevel::Trace) => LevelFilter::TRACE,
        Some(LogLevel::Debug) => LevelFilter::DEBUG,
        Some(LogLevel::Info) => LevelFilter::INFO,
        Some(LogLevel::Warn) => LevelFilter::WARN,
        Some(LogLevel::Error) => LevelFilter::ERROR,
        None => match i16::from(log.verbose) - i16::from(log.quiet) {
            v if v >= 2 => LevelFilter::TRACE,
            1 => LevelFilter::DEBUG,
            0 => LevelFilter::INFO,
            -1 => LevelFilter::WARN,
            -2 => LevelFilter::ERROR,
            _ => LevelFilter::OFF,
        },
    }
}

fn init_logging(level: tracing_subscriber::filter::LevelFilter, format: LogFormat) {
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
