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
//! collector the child's exit, the server the end of the socket) and exits non-zero; a
//! server that stops reading is killed (see `STALL`), and never holds up a shutdown.

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
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::channel::{self, ChannelError, Message, ServerSettings};
use super::privileges::{self, PrivilegeError};
use super::process::{self, ProcessStats};
use super::served::{SelfMetrics, Served};
use super::web_config::{WebConfigBundle, WebConfigFile};
use super::{AppState, TelemetryPath, fds};
use crate::collect::Publication;
use crate::error_chain::Chain;

/// The first argument that makes the program the server process. Not a flag of the
/// command line: only the collector starts it, with settings sent over the socket.
pub const SERVER_COMMAND: &str = "internal-web-server";

/// Most listening sockets passed.
const MAX_LISTENERS: usize = 64;

/// How often the collector sends its process figures and looks for a changed web config.
const TICK: Duration = Duration::from_secs(1);

/// How long the collector waits for the server to exit once told to stop, the message in
/// flight and the stop message included.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How long a look at one of the web config's files may last before the collector logs
/// it as stuck: a regular file on a working disk is read at once.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// How long the server process may leave the collector's bytes unread before it counts as
/// hung (stopped, deadlocked, or compromised). Its reader does nothing but copy them into
/// memory, so a healthy server never comes near this even on a loaded machine, while one
/// that reads nothing serves stale publications as current: the collector then kills it and
/// exits with an error, so that the service manager restarts both, as when the server dies.
const STALL: Duration = Duration::from_secs(30);

/// Why the processes could not be started or ended in error.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The server process could not be started.
    #[error("cannot start the server process")]
    Spawn(#[source] std::io::Error),
    /// The descriptors the server process inherited could not be closed.
    #[error("cannot close the descriptors the server process inherited")]
    Inherited(#[source] std::io::Error),
    /// The listening sockets could not be handed over.
    #[error("cannot hand the listening sockets to the server process")]
    Handover(#[source] std::io::Error),
    /// A message could not be sent or received.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The server process exited while the collector was running.
    #[error("the server process exited ({0})")]
    ServerExited(ExitStatus),
    /// The server process stopped reading its socket, and was killed.
    #[error("killed the server process")]
    ServerHung(#[source] ChannelError),
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
/// for it. Returns an error as soon as the server process exits on its own, or once it
/// has read nothing for a while (it is then killed).
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
    let socket = tokio::net::UnixStream::from_std(ours).map_err(SplitError::Handover)?;

    let first_web = web.as_ref().map(|w| w.bundle());
    let first = Served::of(&publications.borrow_and_update());
    let mut opening = vec![Message::Hello(Box::new(settings))];
    opening.extend(first_web.as_deref().cloned().map(Message::WebConfig));
    opening.push(Message::Publication(first));
    let (stats_sender, stats) = watch::channel(None);
    let (web_sender, web_bundles) = watch::channel(first_web.clone().unwrap_or_default());
    if let (Some(web), Some(first)) = (&web, first_web) {
        watch_web_config(Arc::clone(web), first, web_sender).map_err(SplitError::Spawn)?;
    }
    let (stop_sender, stop) = watch::channel(());
    let updates = Updates {
        publications,
        stats,
        web: web_bundles,
        stop,
    };
    // Boxed, so that dropping it closes the socket.
    let mut feeding = Box::pin(feed(socket, opening, updates));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tick = tokio::time::interval(TICK);
    let mut stuck_on = None;
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            status = child.wait() => {
                return Err(status.map_or_else(SplitError::Spawn, SplitError::ServerExited));
            }
            fed = &mut feeding => {
                return match fed {
                    // The publications ended; the server was told to stop.
                    Ok(()) => {
                        stop_server(&mut child, Instant::now() + STOP_WAIT).await;
                        Ok(())
                    }
                    Err(e) => Err(server_failed(e, &mut child).await),
                };
            }
            _ = tick.tick() => {
                match process::read_self() {
                    Ok(figures) => {
                        stats_sender.send_replace(Some(figures));
                    }
                    Err(e) => tracing::debug!(error = %Chain(&e), "cannot read the process metrics"),
                }
                let stuck = web.as_ref().and_then(|web| web.stuck(READ_LIMIT));
                if let Some(file) = stuck.as_ref().filter(|&file| stuck_on.as_ref() != Some(file)) {
                    tracing::error!(
                        file = %file.display(),
                        "reading a file of the web config does not finish (a hung mount?); \
                         the server keeps the last good web config until it does"
                    );
                }
                stuck_on = stuck;
            }
        }
    }
    // Told to stop rather than seeing the socket end, the server exits 0. The message in
    // flight is finished first, as one cut off would leave the server a malformed stream.
    let deadline = Instant::now() + STOP_WAIT;
    stop_sender.send_replace(());
    match tokio::time::timeout_at(deadline, feeding).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %Chain(&e), "cannot tell the server process to stop"),
        // The server is killed below; dropping the feed closed the socket.
        Err(_) => {}
    }
    stop_server(&mut child, deadline).await;
    Ok(())
}

/// Re-reads the web config's files every [`TICK`] on a thread of its own, and hands each
/// new bundle (after `first`) to `changed`, until its receiver is gone. A read blocks for
/// as long as a file does (a hung mount): here it holds up neither the publications nor a
/// shutdown, and [`WebConfigFile::stuck`] names the file meanwhile.
fn watch_web_config(
    web: Arc<WebConfigFile>,
    first: Arc<WebConfigBundle>,
    changed: watch::Sender<Arc<WebConfigBundle>>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("web-config".to_owned())
        .spawn(move || {
            let mut last = first;
            while !changed.is_closed() {
                std::thread::sleep(TICK);
                web.reload_if_changed();
                let bundle = web.bundle();
                if !Arc::ptr_eq(&last, &bundle) {
                    changed.send_replace(Arc::clone(&bundle));
                    last = bundle;
                }
            }
        })?;
    Ok(())
}

/// What the feed sends after the opening messages: of each kind the newest only, as a
/// newer one replaces what the server has not taken yet.
struct Updates {
    publications: watch::Receiver<Arc<Publication>>,
    stats: watch::Receiver<Option<ProcessStats>>,
    web: watch::Receiver<Arc<WebConfigBundle>>,
    /// Changes once, when the server is to stop.
    stop: watch::Receiver<()>,
}

/// Sends `opening`, then each update as it comes, until told to stop or the publications
/// end, then [`Message::Stop`]. Every message is sent within [`STALL`], so that a server
/// that does not read ends the feed instead of holding it for ever.
async fn feed(
    mut socket: tokio::net::UnixStream,
    opening: Vec<Message>,
    mut updates: Updates,
) -> Result<(), ChannelError> {
    for message in &opening {
        channel::send(&mut socket, message, STALL).await?;
    }
    drop(opening);
    loop {
        let message = tokio::select! {
            biased;
            _ = updates.stop.changed() => break,
            Ok(()) = updates.web.changed() => {
                Message::WebConfig((**updates.web.borrow_and_update()).clone())
            }
            changed = updates.publications.changed() => {
                if changed.is_err() {
                    break;
                }
                Message::Publication(Served::of(&updates.publications.borrow_and_update()))
            }
            Ok(()) = updates.stats.changed() => match *updates.stats.borrow_and_update() {
                Some(figures) => Message::Stats(figures),
                None => continue,
            },
        };
        channel::send(&mut socket, &message, STALL).await?;
    }
    channel::send(&mut socket, &Message::Stop, STALL).await
}

/// Waits for the server to exit until `deadline`, then kills it.
async fn stop_server(child: &mut tokio::process::Child, deadline: Instant) {
    if tokio::time::timeout_at(deadline, child.wait())
        .await
        .is_err()
    {
        tracing::warn!("the server process did not stop in time; killing it");
        let _ = child.kill().await;
    }
}

/// What ends the collector when the feed failed: a server that stopped reading is killed;
/// otherwise the write failed because the server died, and its exit status says more.
async fn server_failed(e: ChannelError, child: &mut tokio::process::Child) -> SplitError {
    if let ChannelError::Stalled(_) = e {
        let _ = child.kill().await;
        return SplitError::ServerHung(e);
    }
    match tokio::time::timeout(TICK, child.wait()).await {
        Ok(Ok(status)) => SplitError::ServerExited(status),
        _ => e.into(),
    }
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
    /// Closes the descriptors the process inherited ([`fds::close_inherited`]), then
    /// reads the sockets and the first messages from standard input, blocking. Call it
    /// first in the server process.
    pub fn receive() -> Result<Self, SplitError> {
        fds::close_inherited().map_err(SplitError::Inherited)?;
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
                tracing::warn!(error = %Chain(&e), "cannot ignore a stop signal");
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
            policy: super::policy::Policy::new(web.clone(), self.settings.limits.max_requests),
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
        Err(e) => {
            tracing::error!(error = %Chain(&e), "web config not reloaded, the last good one stays")
        }
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
