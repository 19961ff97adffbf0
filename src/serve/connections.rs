//! The accept loop, with bounds. `axum::serve` keeps every connection for as long as the
//! client likes and accepts until the process runs out of file descriptors, and then the
//! collections cannot start `iptables-save` either. Here a connection that sends no
//! complete request header in time, stays idle between requests too long, or leaves its
//! response untaken too long is closed; the number of connections is capped; and at the
//! connection cap the connection idle the longest is closed to make room, so that a real
//! scrape still gets in when slow clients hold every slot. A connection whose response
//! waits on its client is idle as much as one waiting for its next request.
//!
//! What a request meets (the headers, authentication, the request cap) is the router's
//! policy (`policy`). Of the cap, only its eviction is here: at the cap, the policy asks
//! the registry of connections, through the [`ServerConnections`] in each request's
//! extensions, to close the connection whose response has held a request slot while
//! waiting on its client the longest.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::policy::{Connections, Holding, ServerConnections, SlotHeld};
use super::web_config::WebConfigFile;
use crate::error_chain::Chain;

/// How the server bounds its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Connections open at once, at most.
    pub max_connections: usize,
    /// Requests the server works on at once, at most; more get 503. The router's policy
    /// keeps this cap ([`Policy`](super::policy::Policy)), not the accept loop.
    pub max_requests: usize,
    /// Time a client has to send a complete request header: from the connection's
    /// accept for its first request, from the first byte for a later one.
    pub read_header_timeout: Duration,
    /// Time a connection may wait for its next request after a response.
    pub idle_timeout: Duration,
    /// Time a response may wait for the client to take more of it.
    pub write_timeout: Duration,
}

/// How long shutting down waits for responses in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long a new connection waits for an evicted one to close before it is refused.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// The largest request header (with the request line), in bytes; a larger one is answered
/// 431 as soon as this much came. Scrapes send a few hundred bytes. Hyper's own limit, the
/// size of its read buffer, is more than some clients send of a long header before they
/// wait for the answer (curl over TLS): they would get none until the header timeout.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The longest pause between two accepts that failed (out of descriptors, mostly).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `app` on `listeners` within `limits`, with the TLS of `web` when given, until
/// `shutdown` resolves; then closes the idle connections, lets those with a request in
/// progress finish for a few seconds, and returns. Accept errors are not fatal: they are
/// logged and retried after a pause.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Router,
    limits: Limits,
    web: Option<Arc<WebConfigFile>>,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::new(app, limits, web));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accepting = tokio::task::JoinSet::new();
    for listener in listeners {
        accepting.spawn(accept_loop(
            listener,
            Arc::clone(&registry),
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    accepting.abort_all();
    let _ = stop_tx.send(true);
    // Connections end within SHUTDOWN_GRACE; the margin is for their tasks to run.
    let closed = tokio::time::timeout(SHUTDOWN_GRACE * 2, registry.all_closed()).await;
    if closed.is_err() {
        tracing::warn!("connections still open at shutdown");
    }
}

async fn accept_loop(listener: TcpListener, registry: Arc<Registry>, stop: watch::Receiver<bool>) {
    let mut backoff = Duration::ZERO;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Once per run of failures: the pause keeps it from spinning, not the log.
                if backoff.is_zero() {
                    tracing::warn!(error = %Chain(&e), "cannot accept a connection");
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(5), MAX_ACCEPT_BACKOFF);
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        backoff = Duration::ZERO;
        if !registry.make_room().await {
            tracing::debug!("connection refused: every connection has a request in progress");
            continue;
        }
        let (id, conn) = registry.insert();
        let entry = Entry {
            registry: Arc::clone(&registry),
            id,
        };
        tokio::spawn(connection(entry, conn, stream, stop.clone()));
    }
}

/// Serves one connection until it ends, is evicted, times out or the server stops: the
/// TLS handshake first when the web config asks for TLS, within the header timeout.
async fn connection(
    entry: Entry,
    conn: Arc<Conn>,
    stream: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::clone(&entry.registry);
    let web = shared
        .web
        .as_ref()
        .map(|file| file.current())
        .unwrap_or_default();
    let Some(tls) = web.tls.clone() else {
        return serve_on(entry, conn, stream, stop).await;
    };
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    let stream = tokio::select! {
        done = tokio::time::timeout(shared.limits.read_header_timeout, handshake) => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(error = %Chain(&e), "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        () = conn.evict.notified() => return,
        _ = stop.wait_for(|stop| *stop) => return,
    };
    serve_on(entry, conn, stream, stop).await;
}

/// Serves HTTP/1 on `stream`.
async fn serve_on<S>(entry: Entry, conn: Arc<Conn>, stream: S, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::clone(&entry.registry);
    let limits = shared.limits;
    let io = TokioIo::new(Tracked {
        inner: stream,
        conn: Arc::clone(&conn),
    });
    let service_conn = Arc::clone(&conn);
    let app = shared.app.clone();
    // Which response waits on its client is known here only: the request cap asks through
    // this which connection to close for a slot.
    let connections = ServerConnections(Arc::clone(&shared) as Arc<dyn Connections>);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        // Every request counts for the timers, refused ones too.
        let guard = InFlight::start(Arc::clone(&service_conn));
        request.extensions_mut().insert(connections.clone());
        let app = app.clone();
        async move {
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            guard.sending(response.extensions().get::<SlotHeld>().is_some());
            Ok::<_, Infallible>(response.map(|body| Body::new(Holding::new(body, guard))))
        }
    });
    let mut served = pin!(
        hyper::server::conn::http1::Builder::new()
            // The timeouts are kept below, where a keep-alive wait is told apart.
            .header_read_timeout(None)
            .max_header_size(MAX_HEADER_BYTES)
            .serve_connection(io, service)
    );
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %Chain(&e), "connection failed");
            }
            return;
        }
        // Dropping the connection closes its socket.
        () = conn.evict.notified() => {
            tracing::debug!("connection evicted to make room");
            return;
        }
        () = expired(&conn, limits) => {
            tracing::debug!("connection timed out");
            return;
        }
        _ = stop.wait_for(|stop| *stop) => {}
    }
    if conn.state().phase == Phase::Idle {
        return;
    }
    served.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, served).await;
}

/// Resolves when the connection has waited longer than `limits` allow.
async fn expired(conn: &Conn, limits: Limits) {
    loop {
        // Made before the state is read, so that a change in between is not missed.
        let changed = conn.changed.notified();
        let deadline = conn.state().deadline(limits);
        match deadline {
            Some(at) if at <= Instant::now() => return,
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = changed => {}
                }
            }
            None => changed.await,
        }
    }
}

/// The connections of every listener, and what they share.
struct Registry {
    app: Router,
    web: Option<Arc<WebConfigFile>>,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Notified (all waiters) whenever a connection ends.
    closed: Notify,
    limits: Limits,
}

impl Registry {
    fn new(app: Router, limits: Limits, web: Option<Arc<WebConfigFile>>) -> Self {
        Self {
            app,
            web,
            conns: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            closed: Notify::new(),
            limits,
        }
    }

    fn conns(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        // The map stays consistent whatever panicked while holding it.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new());
        self.conns().insert(id, Arc::clone(&conn));
        (id, conn)
    }

    /// Makes sure a new connection fits under the cap: evicts the connection idle the
    /// longest when needed and waits for it to close. False when every connection has a
    /// request being handled or a response its client takes, or the evicted one did not
    /// close in time.
    async fn make_room(&self) -> bool {
        let room = async {
            loop {
                let closed = self.closed.notified();
                {
                    let conns = self.conns();
                    if conns.len() < self.limits.max_connections {
                        return true;
                    }
                    let states: Vec<_> = conns.values().map(|c| (c, c.state())).collect();
                    // One eviction at a time: the descriptors over the cap stay few.
                    if !states.iter().any(|(_, s)| s.evicting) {
                        let victim = states
                            .into_iter()
                            .filter_map(|(c, s)| Some((s.waiting_since()?, c, s)))
                            .min_by_key(|(since, _, _)| *since)
                            .map(|(_, c, s)| (c, s));
                        let Some((victim, mut state)) = victim else {
                            return false;
                        };
                        state.evicting = true;
                        victim.evict.notify_one();
                    }
                }
                closed.await;
            }
        };
        tokio::time::timeout(EVICTION_WAIT, room)
            .await
            .unwrap_or(false)
    }

    async fn all_closed(&self) {
        loop {
            let closed = self.closed.notified();
            if self.conns().is_empty() {
                return;
            }
            closed.await;
        }
    }
}

impl Connections for Registry {
    fn evict_for_slot(&self) -> bool {
        let conns = self.conns();
        let states: Vec<_> = conns.values().map(|c| (c, c.state())).collect();
        let victim = states
            .into_iter()
            .filter(|(_, s)| s.phase == Phase::Sending { slot: true } && !s.evicting)
            .filter_map(|(c, s)| Some((s.write_blocked?, c, s)))
            .min_by_key(|(since, _, _)| *since);
        let Some((_, victim, mut state)) = victim else {
            return false;
        };
        state.evicting = true;
        victim.evict.notify_one();
        true
    }
}

/// A connection's place in the [`Registry`], given up when its task ends.
struct Entry {
    registry: Arc<Registry>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.registry.conns().remove(&self.id);
        self.registry.closed.notify_waiters();
    }
}

/// What the server knows of one connection.
struct Conn {
    state: Mutex<ConnState>,
    /// Notified when the deadline may have moved: a request started or ended, or the
    /// first byte of the next one came.
    changed: Notify,
    /// Notified to close the connection.
    evict: Notify,
}

impl Conn {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(ConnState {
                accepted: now,
                idle_since: now,
                first_byte: None,
                write_blocked: None,
                phase: Phase::Idle,
                requests: 0,
                evicting: false,
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A write to the client could not go on (`blocked`), or went on.
    fn wrote(&self, blocked: bool) {
        let mut state = self.state();
        let changed = match (blocked, state.write_blocked) {
            (true, None) => {
                state.write_blocked = Some(Instant::now());
                true
            }
            (false, Some(_)) => {
                state.write_blocked = None;
                true
            }
            _ => false,
        };
        drop(state);
        if changed {
            self.changed.notify_one();
        }
    }

    /// Bytes came from the client.
    fn read_some(&self) {
        let mut state = self.state();
        if state.phase == Phase::Idle && state.first_byte.is_none() {
            state.first_byte = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }
}

/// What a connection is at, as to its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request (the next one, or its first).
    Idle,
    /// A request is authenticated or handled.
    Handling,
    /// Its response is sent; `slot` when it keeps its request slot until then.
    Sending { slot: bool },
}

#[derive(Debug)]
struct ConnState {
    accepted: Instant,
    /// When the last request ended, or the accept.
    idle_since: Instant,
    /// The first byte read since `idle_since`.
    first_byte: Option<Instant>,
    /// Since when the client has taken no byte of a response waiting to be sent.
    write_blocked: Option<Instant>,
    phase: Phase,
    /// Requests started on this connection.
    requests: u64,
    evicting: bool,
}

impl ConnState {
    /// When the connection times out; while a response is sent, only once the client
    /// stopped taking it; never while a request is handled.
    fn deadline(&self, limits: Limits) -> Option<Instant> {
        match self.phase {
            Phase::Handling => None,
            Phase::Sending { .. } => self.write_blocked.map(|since| since + limits.write_timeout),
            Phase::Idle => Some(match (self.requests, self.first_byte) {
                (0, _) => self.accepted + limits.read_header_timeout,
                (_, Some(first)) => first + limits.read_header_timeout,
                (_, None) => self.idle_since + limits.idle_timeout,
            }),
        }
    }

    /// Since when the connection has waited on its client with nothing for the server to
    /// do: for its next request, or for it to take more of a response. None while the
    /// server works on a request or the client takes its response.
    fn waiting_since(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle => Some(self.idle_since),
            Phase::Handling => None,
            Phase::Sending { .. } => self.write_blocked,
        }
    }
}

/// A request from its start until its response body has been sent (or dropped).
struct InFlight {
    conn: Arc<Conn>,
}

impl InFlight {
    fn start(conn: Arc<Conn>) -> Self {
        {
            let mut state = conn.state();
            state.phase = Phase::Handling;
            state.requests += 1;
        }
        conn.changed.notify_one();
        Self { conn }
    }

    /// The response is handed over; `slot` when it holds its request slot until it is sent.
    fn sending(&self, slot: bool) {
        self.conn.state().phase = Phase::Sending { slot };
        self.conn.changed.notify_one();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.conn.state();
            state.phase = Phase::Idle;
            state.idle_since = Instant::now();
            state.first_byte = None;
            state.write_blocked = None;
        }
        self.conn.changed.notify_one();
    }
}

/// A client stream that tells its [`Conn`] when bytes come.
struct Tracked<S> {
    inner: S,
    conn: Arc<Conn>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.conn.wrote(polled.is_pending());
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.conn.wrote(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;
