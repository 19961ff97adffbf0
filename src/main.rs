//! Entry point: flags → validated config → the chosen mode → exit status.

use std::process::ExitCode;
use std::sync::Arc;

use netfilter_exporter::audit;
use netfilter_exporter::cli;
use netfilter_exporter::collect::Collector;
use netfilter_exporter::config::{Config, Mode};
use netfilter_exporter::error_chain::Chain;
use netfilter_exporter::logging::{self, LogFormat, fatal};
use netfilter_exporter::munin;
use netfilter_exporter::output::{self, textfile};
use netfilter_exporter::serve::run::{self as serving, Http};
use netfilter_exporter::serve::web_config::WebConfigFile;
use netfilter_exporter::serve::{split, systemd};
use netfilter_exporter::top;

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
        return munin::plugin_main(name, args.next().as_deref());
    }
    if args.next().is_some_and(|arg| arg == split::SERVER_COMMAND) {
        return serving::server_main();
    }
    let command = cli::parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let log_format = command.log().log_format;
    logging::init(command.log().level(), log_format);
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
    let runtime = match logging::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            fatal(
                log_format,
                format_args!("cannot start the async runtime: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config, web, systemd_sockets, log_format))
}

/// Runs the mode of `config`.
async fn run(
    config: Config,
    web: Option<Arc<WebConfigFile>>,
    systemd_sockets: Option<Vec<std::net::TcpListener>>,
    log_format: LogFormat,
) -> ExitCode {
    // Top reads its sources itself, every reading whole.
    let collector = || Collector::new(config.collect.clone());
    let failed = |e: &(dyn std::error::Error + 'static)| {
        fatal(log_format, Chain(e));
        ExitCode::FAILURE
    };
    match config.mode {
        Mode::Serve(serve) => {
            let listeners = match systemd_sockets {
                Some(listeners) => {
                    serving::log_systemd_sockets(&listeners, &serve.telemetry_path);
                    listeners
                }
                None => match serving::bind(&serve.listen, &serve.telemetry_path).await {
                    Ok(listeners) => listeners,
                    Err(e) => return failed(&e),
                },
            };
            let collector = collector();
            if let Some(audit) = serve.audit.clone() {
                audit::run::spawn_in_collector(audit, config.collect, Arc::clone(&collector));
            }
            let http = Http {
                listeners,
                telemetry_path: serve.telemetry_path,
                limits: serve.limits,
                web,
                web_user: serve.web_user,
                log_format,
            };
            match serving::serve(http, &collector).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failed(&e),
            }
        }
        Mode::Audit(audit) if audit.once => audit::run::once(&audit, &config.collect).await,
        Mode::Audit(audit) => {
            match audit::run::until_stopped(&audit, &config.collect, web, log_format).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failed(&e),
            }
        }
        Mode::Dump => output::once::dump(&collector(), log_format).await,
        Mode::Textfile { path, once: true } => {
            output::once::textfile(&path, &collector(), log_format).await
        }
        Mode::Textfile { path, once: false } => {
            textfile::write_until_stopped(&path, &config.collect, &collector()).await;
            ExitCode::SUCCESS
        }
        Mode::Munin { action } => munin::answer(&munin::Name::Bare, action).await,
        Mode::Top(settings) => top::run(settings, config.collect, log_format).await,
    }
}
