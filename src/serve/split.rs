//! Privilege separation: the collector (root, or CAP_NET_ADMIN) keeps netfilter to itself
//! and starts the HTTP server as a process of its own, the same program run with
//! [`SERVER_COMMAND`], which gives up its user and every capability before it accepts a
//! connection.
//!
//! The collector binds the listening sockets and passes them over a socket pair (the
//! server's standard input) with `SCM_RIGHTS`, then closes its copies; after that it only
//! sends [`Message`]s: the settings, each publication as it is kept (texts and compressed
//! pieces, nothing rendered or compressed again), the web config's files when they change,
//! and its own process figures. When either process dies the other sees it at once (the
//! collector the child's exit, the server the end of the socket) and exits non-zero.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use super::channel::{self, ChannelError, Message};
use super::connections::Limits;
use super::privileges::{self, PrivilegeError, WebUser};
use super::process::{self, ProcessStats};
use super::served::{SelfMetrics, Served};
use super::web_config::{WebConfigBundle, WebConfigFile};
use super::{AppState, TelemetryPath, fds};
use crate::collect::Publication;

/// The first argument that makes the program the server process. Not a flag of the
/// command line: only the collector starts it, with settings sent over the socket.
pub const SERVER_COMMAND: &str = "internal-web-server";

/// Most listening sockets passed.
const MAX_LISTENERS: usize = 64;

/// How often the collector sends its process figures and looks for a changed web config.
const TICK: Duration = Duration::from_secs(1);

/// How long the collector waits for the server to exit once told to stop.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What the server process needs to know besides the sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
    /// Bounds on connections and requests.
    pub limits: Limits,
    /// The user to switch to (the collector runs as root), or none: keep the user.
    pub user: Option<WebUser>,
    /// Log level, as `tracing`'s level filters print.
    pub log_level: String,
    /// Log format name of `--log.format`.
    pub log_format: String,
    /// Whether a web config follows the settings.
    pub web_config: bool,
}

/// Why the processes could not be started or ended in error.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The server process could not be started.
    #[error("cannot start the server process: {0}")]
    Spawn(#[source] std::io::Error),
    /// The listening sockets could not be handed over.
    #[error("cannot hand the listening sockets to the server process: {0}")]
    Handover(#[source] std::io::Error),
    /// A message could not be sent or received.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The server process exited while the collector was running.
    #[error("the server process exited ({0})")]
    ServerExited(ExitStatus),
    /// The server process could not give up its privileges.
    #[error(transparent)]
    Privileges(#[from] PrivilegeError),
    /// The first messages were not what a server starts from.
    #[error("the collector sent {0} first")]
    Handshake(&'static str),
    /// A setting sent does not hold.
    #[error("bad setting from the collector: {0}")]
    Settings(String),
    /// The open-file limit leaves no room for connections.
    #[error(transparent)]
    NoRoom(#[from] fds::NoRoom),
}

/// Runs as the collector's side: starts the server process on `listeners` (closed here
/// once handed over), feeds it until `shutdown` resolves, then tells it to stop and waits
/// for it. Returns an error as soon as the server process exits on its own.
pub async fn run_collector_side(
    listeners: Vec<OwnedFd>,
    settings: ServerSettings,
    web: Option<Arc<WebConfigFile>>,
    mut publications: watch::Receiver<Arc<Publication>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SplitError> {
    let (ours, theirs) = UnixStream::pair().map_err(SplitError::Spawn)?;
    let mut child = tokio::process::Command::new("/proc/self/exe")
        .arg0(env!("CARGO_PKG_NAME"))
        .arg(SERVER_COMMAND)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(SplitError::Spawn)?;
    tracing::info!(
        pid = child.id(),
        uid = settings.user.map(|u| u.uid),
        "server process started"
    );
    hand_over(&ours, &listeners).map_err(SplitError::Handover)?;
    drop(listeners);
    ours.set_nonblocking(true).map_err(SplitError::Handover)?;
    let mut socket = tokio::net::UnixStream::from_std(ours).map_err(SplitError::Handover)?;

    let mut last_web = web.as_ref().map(|w| w.bundle());
    let first = Served::of(&publications.borrow_and_update());
    let mut opening = vec![Message::Hello(Box::new(settings))];
    opening.extend(last_web.as_deref().cloned().map(Message::WebConfig));
    opening.push(Message::Publication(first));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(TICK);
    let mut pending = opening;
    loop {
        for message in pending.drain(..) {
            if let Err(e) = channel::send(&mut socket, &message).await {
                // A write fails when the server died: its exit status says more.
                return Err(match tokio::time::timeout(TICK, child.wait()).await {
                    Ok(Ok(status)) => SplitError::ServerExited(status),
                    _ => e.into(),
                });
            }
        }
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            status = child.wait() => {
                return Err(status.map_or_else(SplitError::Spawn, SplitError::ServerExited));
            }
            changed = publications.changed() => {
                if changed.is_err() {
                    break;
                }
                pending.push(Message::Publication(Served::of(&publications.borrow_and_update())));
            }
            _ = tick.tick() => {
                match process::read_self() {
                    Ok(stats) => pending.push(Message::Stats(stats)),
                    Err(e) => tracing::debug!(error = %e, "cannot read the process metrics"),
                }
                if let Some(web) = &web {
                    let bundle = web.bundle();
                    if last_web.as_ref().is_none_or(|last| !Arc::ptr_eq(last, &bundle)) {
                        pending.push(Message::WebConfig((*bundle).clone()));
                        last_web = Some(bundle);
                    }
                }
            }
        }
    }
    // Told to stop rather than seeing the socket end, the server exits 0.
    let _ = channel::send(&mut socket, &Message::Stop).await;
    drop(socket);
    match tokio::time::timeout(STOP_WAIT, child.wait()).await {
        Ok(_) => {}
        Err(_) => {
            tracing::warn!("the server process did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
    Ok(())
}

/// Sends `listeners` over `socket` with one byte of data.
fn hand_over(socket: &UnixStream, listeners: &[OwnedFd]) -> std::io::Result<()> {
    let fds: Vec<_> = listeners.iter().map(AsFd::as_fd).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("too many sockets"));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(b"L")],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// The server process before it serves: what the collector sent, privileges still held.
pub struct ServerStart {
    socket: UnixStream,
    listeners: Vec<std::net::TcpListener>,
    /// The settings sent.
    pub settings: ServerSettings,
    web: Option<WebConfigFile>,
    first: Served,
}

impl ServerStart {
    /// Reads the sockets and the first messages from standard input, blocking.
    pub fn receive() -> Result<Self, SplitError> {
        // Started through /proc/self/exe, the process would be named "exe" in ps and top.
        let _ = rustix::thread::set_name(c"nfe-web-server");
        let stdin = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(SplitError::Handover)?;
        let mut socket = UnixStream::from(stdin);
        let listeners = take_listeners(&socket).map_err(SplitError::Handover)?;
        let Message::Hello(settings) = channel::receive(&mut socket)? else {
            return Err(SplitError::Handshake("something other than the settings"));
        };
        let web = if settings.web_config {
            let Message::WebConfig(bundle) = channel::receive(&mut socket)? else {
                return Err(SplitError::Handshake("no web config"));
            };
            Some(
                WebConfigFile::from_bundle(bundle)
                    .map_err(|e| SplitError::Settings(e.to_string()))?,
            )
        } else {
            None
        };
        let Message::Publication(first) = channel::receive(&mut socket)? else {
            return Err(SplitError::Handshake("no publication"));
        };
        Ok(ServerStart {
            socket,
            listeners,
            settings: *settings,
            web,
            first,
        })
    }

    /// Gives up the user (for the one of the settings) and every capability; call it
    /// before any thread starts, as the calls change the calling thread only.
    pub fn drop_privileges(&self) -> Result<(), SplitError> {
        privileges::drop_to(self.settings.user)?;
        Ok(())
    }

    /// Serves until the collector says stop (`Ok`) or goes away (an error, at once).
    pub async fn serve(self) -> Result<(), SplitError> {
        let telemetry_path = TelemetryPath::new(self.settings.telemetry_path.clone())
            .map_err(|e| SplitError::Settings(e.to_string()))?;
        // Stopping is the collector's to decide: a service manager's SIGTERM to the whole
        // group reaches the collector too, which then tells this process to stop.
        for kind in [
            tokio::signal::unix::SignalKind::terminate(),
            tokio::signal::unix::SignalKind::interrupt(),
        ] {
            if let Err(e) = tokio::signal::unix::signal(kind) {
                tracing::warn!(error = %e, "cannot ignore a stop signal");
            }
        }
        let (publish, publications) = watch::channel(Arc::new(self.first));
        let (stats_sender, stats) = watch::channel(None::<ProcessStats>);
        let web = self.web.map(Arc::new);
        let (stop_sender, stop) = oneshot::channel();
        let (gone_sender, gone) = oneshot::channel();
        let reader_web = web.clone();
        let mut socket = self.socket;
        std::thread::Builder::new()
            .name("collector-channel".to_owned())
            .spawn(move || {
                let end =
                    read_messages(&mut socket, &publish, &stats_sender, reader_web.as_deref());
                match end {
                    Ok(()) => drop(stop_sender.send(())),
                    Err(e) => drop(gone_sender.send(e)),
                }
            })
            .map_err(SplitError::Spawn)?;
        let mut listeners = Vec::new();
        for listener in self.listeners {
            listener
                .set_nonblocking(true)
                .map_err(SplitError::Handover)?;
            listeners
                .push(tokio::net::TcpListener::from_std(listener).map_err(SplitError::Handover)?);
        }
        let app = super::router(AppState {
            publications,
            telemetry_path,
            self_metrics: Some(SelfMetrics::Server(stats)),
        });
        let serving = super::serve_listeners(listeners, app, self.settings.limits, web, async {
            // Dropped unused when the socket ended: that is the other branch below.
            if stop.await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        tokio::select! {
            served = serving => Ok(served?),
            // The sender drops unused when the collector said stop.
            Ok(gone) = gone => Err(SplitError::Channel(gone)),
        }
    }
}

/// Applies the collector's messages until it says stop (`Ok`) or the socket ends or fails.
fn read_messages(
    socket: &mut UnixStream,
    publish: &watch::Sender<Arc<Served>>,
    stats: &watch::Sender<Option<ProcessStats>>,
    web: Option<&WebConfigFile>,
) -> Result<(), ChannelError> {
    loop {
        match channel::receive(socket)? {
            Message::Publication(served) => {
                publish.send_replace(Arc::new(served));
            }
            Message::Stats(figures) => {
                stats.send_replace(Some(figures));
            }
            Message::WebConfig(bundle) => apply_web_config(web, bundle),
            Message::Stop => return Ok(()),
            Message::Hello(_) => return Err(ChannelError::Malformed("settings again".to_owned())),
        }
    }
}

fn apply_web_config(web: Option<&WebConfigFile>, bundle: WebConfigBundle) {
    let Some(web) = web else {
        tracing::error!("the collector sent a web config to a server started without one");
        return;
    };
    match web.replace(bundle) {
        Ok(()) => tracing::info!("web config reloaded"),
        Err(e) => tracing::error!(error = %e, "web config not reloaded, the last good one stays"),
    }
}

/// The listening sockets passed with the first byte of the socket.
fn take_listeners(socket: &UnixStream) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_LISTENERS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let received = rustix::net::recvmsg(
        socket,
        &mut [std::io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if received.bytes != 1 {
        return Err(std::io::Error::other(
            "the collector closed the socket first",
        ));
    }
    let mut listeners = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            listeners.extend(fds.map(std::net::TcpListener::from));
        }
    }
    if listeners.is_empty() {
        return Err(std::io::Error::other("no listening socket passed"));
    }
    Ok(listeners)
}
