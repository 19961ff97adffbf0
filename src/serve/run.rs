//! The serve mode put together: bind (or take systemd's sockets), start the collector's
//! loops and the audit inside serve, and serve the publications until stopped, from a
//! server process of its own when privileged ([`super::split`]). Also the entry of that
//! server process, and what the audit's own server shares with serve.

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::watch;

use super::channel::ServerSettings;
use super::connections::Limits;
use super::listen::ListenAddress;
use super::privileges::{self, PrivilegeError, WebUser};
use super::split::{self, SplitError};
use super::web_config::WebConfigFile;
use super::{AppState, TelemetryPath, fds, served};
use crate::collect::{Collector, Publication};
use crate::error_chain::Chain;
use crate::logging::{self, LogFormat};

/// Why serving could not start or ended in error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address as given.
        address: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A listening socket could not be made ready for the async runtime.
    #[error("cannot use a listening socket")]
    Socket(#[source] io::Error),
    /// `--web.user` names another user while the exporter is not root.
    #[error("--web.user {0}: only root can run the server as another user")]
    NotRoot(String),
    /// `--web.user` cannot be resolved.
    #[error(transparent)]
    User(#[from] PrivilegeError),
    /// The server process failed.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// The open-file limit leaves no room for connections.
    #[error(transparent)]
    NoRoom(#[from] fds::NoRoom),
}

/// What serving the publications over HTTP takes.
pub struct Http {
    /// The bound listening sockets.
    pub listeners: Vec<std::net::TcpListener>,
    /// Path of the metrics endpoint.
    pub telemetry_path: TelemetryPath,
    /// Bounds on connections and requests.
    pub limits: Limits,
    /// The web config, when given.
    pub web: Option<Arc<WebConfigFile>>,
    /// `--web.user`, when given.
    pub web_user: Option<String>,
    /// `--log.format`, for the server process.
    pub log_format: LogFormat,
}

/// Binds `listen` (with SO_REUSEADDR, as tokio does, so that a restart finds the port free).
pub async fn bind(
    listen: &[ListenAddress],
    telemetry_path: &TelemetryPath,
) -> Result<Vec<std::net::TcpListener>, RunError> {
    let mut listeners = Vec::new();
    for address in listen {
        let bound = address.bind().await.map_err(|source| RunError::Listen {
            address: address.to_string(),
            source,
        })?;
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

/// Logs each socket systemd passed, as [`bind`] logs what it binds.
pub fn log_systemd_sockets(listeners: &[std::net::TcpListener], telemetry_path: &TelemetryPath) {
    for listener in listeners {
        let address = listener
            .local_addr()
            .map_or_else(|e| format!("unknown ({e})"), |a| a.to_string());
        tracing::info!(%address, path = %telemetry_path, "listening on a socket from systemd");
    }
}

/// Serves the collector's publications on `http` until SIGTERM or SIGINT, with its loops
/// running; SIGHUP re-reads the web config.
pub async fn serve(http: Http, collector: &Arc<Collector>) -> Result<(), RunError> {
    super::reload_on_hangup(http.web.clone());
    collector.spawn_loops();
    serve_until_stopped(http, collector.subscribe()).await
}

/// Serves `publications` until SIGTERM or SIGINT: from a server process of its own when
/// this one is privileged ([`split`]), else in this process, where there is nothing to
/// keep from the HTTP side.
pub async fn serve_until_stopped(
    http: Http,
    publications: watch::Receiver<Arc<Publication>>,
) -> Result<(), RunError> {
    // Raised here, so that the server process inherits the raised limit.
    fds::raise_open_file_limit();
    if privileges::is_privileged() {
        let settings = ServerSettings {
            telemetry_path: http.telemetry_path.to_string(),
            limits: http.limits,
            user: web_user(http.web_user.as_deref())?,
            log_level: tracing::level_filters::LevelFilter::current().to_string(),
            log_format: format!("{:?}", http.log_format).to_lowercase(),
            web_config: http.web.is_some(),
        };
        let listeners = http.listeners.into_iter().map(OwnedFd::from);
        split::run_collector_side(
            listeners.collect(),
            settings,
            http.web,
            publications,
            super::shutdown_signal(),
        )
        .await?;
        return Ok(());
    }
    if http.web_user.is_some() {
        tracing::warn!("--web.user has no effect: the exporter runs unprivileged, in one process");
    }
    let app = super::router(AppState {
        policy: super::policy::Policy::new(http.web.clone(), http.limits.max_requests),
        publications: served::served(publications),
        telemetry_path: http.telemetry_path,
        self_metrics: Some(served::SelfMetrics::OneProcess),
    });
    let mut listeners = Vec::new();
    for listener in http.listeners {
        listener.set_nonblocking(true).map_err(RunError::Socket)?;
        listeners.push(tokio::net::TcpListener::from_std(listener).map_err(RunError::Socket)?);
    }
    super::serve_listeners(
        listeners,
        app,
        http.limits,
        http.web,
        super::shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// The user the server process switches to: `--web.user` (by default nobody) when the
/// exporter runs as root; none otherwise, where the server keeps the user it was started
/// as and may not be given another.
fn web_user(name: Option<&str>) -> Result<Option<WebUser>, RunError> {
    let euid = rustix::process::geteuid();
    if euid.is_root() {
        return Ok(Some(privileges::resolve_user(name.unwrap_or("nobody"))?));
    }
    if let Some(name) = name {
        let user = privileges::resolve_user(name)?;
        if user.uid != euid.as_raw() {
            return Err(RunError::NotRoot(name.to_owned()));
        }
    }
    Ok(None)
}

/// Runs as the server process the collector started ([`split`]): takes the sockets and
/// settings, gives up every privilege, then serves until the collector stops it.
pub fn server_main() -> ExitCode {
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
    logging::init(level, format);
    // Before the runtime starts its threads: the calls change the calling thread only.
    if let Err(e) = start.drop_privileges() {
        tracing::error!(error = %Chain(&e), "server process cannot give up its privileges");
        return ExitCode::FAILURE;
    }
    let runtime = match logging::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "server process cannot start the async runtime");
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
            tracing::error!(error = %Chain(&e), "server process exiting");
            ExitCode::FAILURE
        }
    }
}
