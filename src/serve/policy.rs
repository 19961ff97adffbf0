//! The HTTP policy, as layers on the router: the web config's response headers, basic
//! authentication and the request cap. They are part of the application, not of the accept
//! loop, so that a request answered in-process meets them as one from a socket does, and
//! every server that serves the router serves them. What the connections are (timeouts,
//! their cap) stays with whatever accepts them (`connections`).
//!
//! The web config's users and headers are read per request, so that a changed file applies
//! from the next request on, on connections kept alive too.
//!
//! A request slot (`--web.max-requests`) bounds the server's work, not the clients' reading:
//!
//! - Authentication comes first and takes no slot; it has a bound of its own (see `auth`),
//!   so that wrong passwords cannot keep a scraper whose password is remembered out.
//! - The slot is held while the application makes the response. A body that is in memory
//!   already (the exposition's shared buffers, its gzip stream, the small pages: everything
//!   but [`MadeWhileSent`]) gives the slot back as it is handed over: sending it is the
//!   kernel's work, and a client that does not read it holds only its connection, which the
//!   server's write timeout and connection cap bound. Held until sent, slots would let
//!   clients that never read keep every scrape out until the write timeout.
//! - A body made while it is sent (text decompressed as the client reads) keeps its slot
//!   until sent: making it holds a blocking thread and pieces of text, which the slots
//!   bound. So that a client that stops reading one cannot keep others out, a request that
//!   finds every slot taken has the server close the connection whose response has waited
//!   on its client the longest ([`Connections`]) and takes its slot; only when no response
//!   waits on its client is it answered 503.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::{Authenticator, Verdict};
use super::web_config::{WebConfig, WebConfigFile};

/// How long a request waits for the slot of a connection closed to free one.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// The policy of one server: its web config, the passwords it remembers and its request
/// slots. Clones share them.
#[derive(Debug, Clone)]
pub struct Policy {
    web: Option<Arc<WebConfigFile>>,
    auth: Arc<Authenticator>,
    requests: Arc<Semaphore>,
}

impl Policy {
    /// The users and headers of `web`, when given, and `max_requests` request slots.
    pub fn new(web: Option<Arc<WebConfigFile>>, max_requests: usize) -> Self {
        Self {
            web,
            auth: Arc::default(),
            requests: Arc::new(Semaphore::new(max_requests)),
        }
    }

    /// `routes` behind the policy: a request meets the headers first (so that refusals
    /// carry them too), then authentication, then the request cap.
    pub fn apply_to(self, routes: Router) -> Router {
        // Each layer wraps those added before it.
        routes
            .layer(from_fn_with_state(self.clone(), limit_requests))
            .layer(from_fn_with_state(self.clone(), authenticate))
            .layer(from_fn_with_state(self, add_headers))
    }

    /// The web config settings for `request`: those read for it by an outer layer, else
    /// the current ones.
    fn settings(&self, request: &Request) -> Arc<WebConfig> {
        if let Some(Settings(web)) = request.extensions().get() {
            return Arc::clone(web);
        }
        self.web
            .as_ref()
            .map(|file| file.current())
            .unwrap_or_default()
    }

    /// A request slot: a free one, else the one `connections` frees by closing the
    /// connection whose response has waited on its client the longest. None when nothing
    /// can be closed for one, or the closed one did not give its slot back in time.
    async fn request_slot(
        &self,
        connections: Option<&ServerConnections>,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = Arc::clone(&self.requests).try_acquire_owned() {
            return Some(slot);
        }
        if !connections?.0.evict_for_slot() {
            return None;
        }
        let slot = Arc::clone(&self.requests).acquire_owned();
        tokio::time::timeout(SLOT_WAIT, slot).await.ok()?.ok()
    }
}

/// The connections of the server a request came to, as the request cap needs them. Which
/// response waits on its client, and since when, is known only where connections are
/// accepted and written to; the cap asks through this rather than living there, so that
/// the slots (when one is taken, when it is given back) stay in the router, the same for
/// every server and for a request answered in-process.
pub trait Connections: Send + Sync {
    /// Closes the connection whose response holds a request slot ([`SlotHeld`]) and has
    /// waited on its client the longest; false when no such response waits on its client.
    fn evict_for_slot(&self) -> bool;
}

/// A request extension: the connections of the server that accepted the request. Without
/// it (a request answered in-process), a request that finds every slot taken gets 503.
#[derive(Clone)]
pub struct ServerConnections(pub Arc<dyn Connections>);

/// Marks a response whose body is made while it is sent, which keeps its request slot
/// until then (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct MadeWhileSent;

/// Marks a response whose body holds its request slot until it is sent or dropped: closing
/// its connection frees the slot.
#[derive(Debug, Clone, Copy)]
pub struct SlotHeld;

/// The web config settings read for one request, shared by the layers it passes.
#[derive(Clone)]
struct Settings(Arc<WebConfig>);

/// The web config's headers on every response of the application, refusals included.
async fn add_headers(State(policy): State<Policy>, mut request: Request, next: Next) -> Response {
    let web = policy.settings(&request);
    request.extensions_mut().insert(Settings(Arc::clone(&web)));
    let mut response = next.run(request).await;
    for (name, value) in &web.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// Basic authentication against the web config's users, when it has any.
async fn authenticate(State(policy): State<Policy>, request: Request, next: Next) -> Response {
    let web = policy.settings(&request);
    let authorization = request.headers().get(header::AUTHORIZATION);
    match policy.auth.check(&web.users, authorization).await {
        Verdict::Allowed => next.run(request).await,
        Verdict::Refused => unauthorized(),
        Verdict::Busy => unavailable("a password check is in progress\n"),
    }
}

/// The request cap: a slot while the response is made, and until it is sent when it is
/// [`MadeWhileSent`].
async fn limit_requests(State(policy): State<Policy>, request: Request, next: Next) -> Response {
    let connections = request.extensions().get::<ServerConnections>().cloned();
    let Some(slot) = policy.request_slot(connections.as_ref()).await else {
        return unavailable("too many requests in progress\n");
    };
    let mut response = next.run(request).await;
    if response.extensions().get::<MadeWhileSent>().is_none() {
        // Handed over: the slot goes back here.
        return response;
    }
    response.extensions_mut().insert(SlotHeld);
    response.map(|body| Body::new(Holding::new(body, slot)))
}

fn unauthorized() -> Response {
    let mut response = Response::new(Body::from("Unauthorized\n"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    response
}

fn unavailable(why: &'static str) -> Response {
    let mut response = Response::new(Body::from(why));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
}

/// A response body that holds `T` until it is dropped: once sent, or with its connection.
pub struct Holding<T> {
    body: Body,
    _held: T,
}

impl<T> Holding<T> {
    /// `body`, holding `held`.
    pub fn new(body: Body, held: T) -> Self {
        Self { body, _held: held }
    }
}

impl<T: Unpin> http_body::Body for Holding<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
