//! conn: the connections below the router — accepting them within a cap, serving each with hyper's
//! HTTP/1.1, refusing malformed or ambiguous requests before they are routed, dropping clients that
//! stall, and closing them all at shutdown. Knows nothing of routes, tenants or storage: it serves
//! whatever [`axum::Router`] it is given.
//!
//! - **Cap** ([`serve`]): a semaphore permit is taken *before* each accept and held by the connection
//!   until it closes. At `server.max_connections` the listener stops accepting: further connections
//!   wait in the kernel's accept queue, where they cost the process no file descriptor, and are served
//!   as others close (those the queue cannot hold are refused by the kernel). Accepting and closing at
//!   once was rejected: each such accept still costs a descriptor and a syscall per attempt, and a
//!   flood would keep the loop spinning. The default cap is derived from the open-file limit
//!   ([`open_files`]), so that a flood of connections cannot take the descriptors the engine needs.
//! - **Framing and timeouts** ([`gate`], [`framing`]): hyper reads each connection through a gate that
//!   checks every request head first and runs the header-read and idle clocks (hyper's own header read
//!   timeout is off: it also runs while a keep-alive connection waits for its next request, so it could
//!   not be longer than the idle timeout).
//! - **Refusals**: a refused head (414, 431, 400: see [`framing`]) is never given to hyper; the gate
//!   hands hyper a stand-in request instead, and [`Dispatch`] answers it with the contract's JSON error
//!   (`INVALID_REQUEST`, `crate::error::refused_head`) and `connection: close`. hyper's own error
//!   responses — a head-only `400`/`414`/`431` with an empty body — are thereby never needed: rewriting
//!   them on their way out was rejected, since they cannot be told apart reliably from the bytes of
//!   pipelined responses written just before them.
//! - **Unread bodies** ([`unread`]): a response sent before its request's body was read to the end (a
//!   refusal) carries `connection: close`, since hyper closes such a connection after it.
//! - **Shutdown**: when `stop` turns true, [`serve`] stops accepting, asks every connection to finish
//!   (hyper's graceful shutdown: the request in flight is answered, then the connection closes; an idle
//!   one closes at once) and returns when every permit is back, i.e. every connection closed.

pub(crate) mod framing;
mod gate;
pub mod open_files;
mod unread;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use self::framing::Refusal;
use self::gate::Gate;
use crate::config::ServerConfig;

/// Connections the exposition's own listener (`metrics.listen`) accepts at once: scrapers are few, and
/// a cap of its own keeps a flood of the API's address from locking them out.
pub const METRICS_LISTENER_CONNECTIONS: u32 = 16;
/// How long accepting pauses after an error that is not the client's (the process out of descriptors,
/// say): retrying at once would spin while nothing frees.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(500);

/// The clocks of a connection (see [`gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `server.header_read_timeout`.
    pub header_read: Duration,
    /// `server.idle_timeout`.
    pub idle: Duration,
}

/// How one listener serves its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: u32,
    /// Their clocks.
    pub timeouts: Timeouts,
}

impl ConnectionLimits {
    /// The API listener's limits: `server.*`, with `max_connections` derived from `open_file_limit`
    /// when unset (see [`open_files::default_max_connections`]).
    pub fn api(server: &ServerConfig, open_file_limit: Option<u64>) -> Self {
        Self {
            max_connections: server
                .max_connections
                .unwrap_or_else(|| open_files::default_max_connections(open_file_limit)),
            timeouts: Timeouts {
                header_read: server.header_read_timeout,
                idle: server.idle_timeout,
            },
        }
    }

    /// The exposition listener's: the same clocks, [`METRICS_LISTENER_CONNECTIONS`] connections.
    pub fn metrics(&self) -> Self {
        Self {
            max_connections: METRICS_LISTENER_CONNECTIONS,
            ..*self
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true (or its sender is dropped), then lets every
/// connection finish its request in flight and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    loop {
        // The semaphore is never closed, so acquiring fails only if it were: stop then too.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopping(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping(&mut stop) => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(connection(
                    stream,
                    router.clone(),
                    limits.timeouts,
                    stop.clone(),
                    permit,
                ));
            }
            // The client gave up between its handshake and the accept: nothing to do.
            Err(e) if is_client_error(&e) => {}
            Err(e) => {
                tracing::error!(error = %e, "accepting a connection failed; pausing");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    () = stopping(&mut stop) => break,
                }
            }
        }
    }
    // No new connection from here: the kernel refuses them once the listener is closed.
    drop(listener);
    // Each connection holds a permit until it has closed: all of them back means all closed.
    let _ = permits.acquire_many(limits.max_connections).await;
}

/// Completes when `stop` turns true or its sender is gone.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

fn is_client_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}

/// Serves one connection until it closes; `_permit` returns to the cap then.
async fn connection(
    stream: TcpStream,
    router: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Responses are written whole by hyper; waiting to coalesce them (Nagle) only adds latency.
    let _ = stream.set_nodelay(true);
    let state = Arc::new(ConnectionState::default());
    let gate = Gate::new(stream, timeouts, state.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    // The gate runs the header-read clock (see the module doc).
    http.header_read_timeout(None);
    let served = http.serve_connection(gate, Dispatch { router, state });
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = stopping(&mut stop) => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// What the gate and the dispatch of one connection share.
#[derive(Debug, Default)]
struct ConnectionState {
    /// Requests handed to the router whose response is not built yet: the idle clock waits for them.
    in_flight: AtomicUsize,
    /// Requests dispatched so far: the index of the next one.
    dispatched: AtomicU64,
    /// The refused head, by its index among the heads the gate let through (at most one: the
    /// connection closes after it).
    refusal: Mutex<Option<(u64, Refusal)>>,
}

impl ConnectionState {
    fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn refuse(&self, head: u64, refusal: Refusal) {
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some((head, refusal));
    }

    fn take_refusal(&self, head: u64) -> Option<Refusal> {
        let mut slot = self.refusal.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.take() {
            Some((index, refusal)) if index == head => Some(refusal),
            other => {
                *slot = other;
                None
            }
        }
    }
}

/// Counts a request in flight until dropped (its response built, or the request abandoned).
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn enter(state: &Arc<ConnectionState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// hyper's service for one connection: the router, unless the request is the stand-in of a refused
/// head, which is answered with the refusal.
struct Dispatch {
    router: Router,
    state: Arc<ConnectionState>,
}

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let index = self.state.dispatched.fetch_add(1, Ordering::AcqRel);
        if let Some(refusal) = self.state.take_refusal(index) {
            let response = crate::error::refused_head(refusal.kind, refusal.message);
            return Box::pin(std::future::ready(Ok(response)));
        }
        let in_flight = InFlight::enter(&self.state);
        let router = self.router.clone();
        let (request, read) = unread::track(request);
        Box::pin(async move {
            let _in_flight = in_flight;
            let response = router.oneshot(request).await;
            response.map(|r| read.close_if_unread(r))
        })
    }
}
