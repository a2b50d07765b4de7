//! ClickHouse's HTTP interface: one POST per statement, over a bounded, pooled set of HTTP/1
//! connections to one or more endpoints.
//!
//! Owns connection handling, failover between endpoints, deadlines, response bounds, and the
//! classification of failures into what the callers need to decide on retries and the circuit breaker:
//! a request that never reached a server ([`TransportError::Unreachable`]) can be sent elsewhere; one
//! whose outcome is unknown ([`TransportError::Broken`], [`TransportError::Timeout`]) cannot be assumed
//! to have failed; an answer with a ClickHouse exception ([`TransportError::Server`]) means the server
//! is up. Knows nothing of tables, tenants or SQL beyond carrying it.
//!
//! Every request asks for `wait_end_of_query=1`: ClickHouse then buffers the whole answer before the
//! status line, so an error during execution is an HTTP error rather than a 200 with a truncated body.
//! The one exception is [`Transport::stream`] (exports), whose answer is read as it comes: an error
//! after the status is then text at the end of the body, which the reader must tell from rows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::observe::{ClickhouseObserver, Operation};
use crate::settings::{ClickhouseSettings, Endpoint, SettingsError};
use crate::sql::percent_encode;

/// How long an idle connection is kept. Below every ClickHouse release's `keep_alive_timeout` (3 s in
/// recent ones, 10 s in 18.16), so the pool never sends on a connection the server is closing.
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of an error body kept for the message.
const ERROR_BODY_BYTES: usize = 64 << 10;

/// Why a statement produced no answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TransportError {
    /// No endpoint accepted a connection: the statement was not sent anywhere.
    #[error("cannot connect to ClickHouse at {addresses}: {message}")]
    Unreachable {
        /// The endpoints tried.
        addresses: String,
        /// The last connection error.
        message: String,
    },
    /// The connection failed after the statement was sent: it may or may not have run.
    #[error("connection to ClickHouse at {address} failed mid-request: {message}")]
    Broken {
        /// The endpoint.
        address: String,
        /// What failed.
        message: String,
    },
    /// No answer before the deadline: the statement may or may not have run.
    #[error("no answer from ClickHouse within {after:?}")]
    Timeout {
        /// The deadline it had.
        after: Duration,
    },
    /// ClickHouse answered with an exception.
    #[error("ClickHouse error {}: {message}", code.map_or_else(|| "(no code)".to_owned(), |c| c.to_string()))]
    Server {
        /// ClickHouse's error code (`Code: N` of its message), when it gave one.
        code: Option<u32>,
        /// Its message.
        message: String,
    },
    /// The answer is larger than `max_response_bytes`.
    #[error("ClickHouse's answer exceeds the {limit}-byte response limit")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

impl TransportError {
    /// Failures that say ClickHouse cannot be reached or does not answer (what trips the breaker).
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Broken { .. } | Self::Timeout { .. }
        )
    }
}

/// One statement to send.
#[derive(Debug, Clone, Copy)]
pub struct Statement<'a> {
    /// The SQL. With `data`, it goes in the URL and `data` is the body (an `INSERT … FORMAT`).
    pub sql: &'a str,
    /// Insert body.
    pub data: Option<&'a Bytes>,
    /// `query_id`, so that the statement can be killed.
    pub query_id: Option<&'a str>,
    /// Extra ClickHouse settings, as URL parameters.
    pub settings: &'a [(&'static str, String)],
    /// Deadline for the whole exchange (waiting for a connection, sending, and reading the answer).
    pub timeout: Duration,
}

impl<'a> Statement<'a> {
    /// A statement with no body, id or settings.
    pub fn new(sql: &'a str, timeout: Duration) -> Self {
        Self {
            sql,
            data: None,
            query_id: None,
            settings: &[],
            timeout,
        }
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The pool of keep-alive connections, replaced as a whole when it reaches `conn_max_lifetime`:
/// hyper's pool has no per-connection age limit, and a fresh pool bounds every connection's life to
/// the lifetime plus the request it is serving.
struct Pool {
    client: HttpClient,
    born: Instant,
}

/// The HTTP client of one store.
pub struct Transport {
    endpoints: Vec<Endpoint>,
    /// Round-robin position: each request starts at the next endpoint.
    next: AtomicUsize,
    pool: Mutex<Pool>,
    /// `max_open_conns`: a permit per request in flight, so connections never exceed it (a streamed
    /// answer holds its permit until it is dropped).
    permits: Arc<Semaphore>,
    user: HeaderValue,
    key: HeaderValue,
    connect_timeout: Duration,
    max_idle_conns: usize,
    conn_max_lifetime: Duration,
    max_response_bytes: usize,
    /// Told of every request's operation, time and outcome.
    observer: Arc<dyn ClickhouseObserver>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A client for the settings' endpoints (nothing is connected yet), telling `observer` of every
    /// request.
    pub fn new(
        settings: &ClickhouseSettings,
        observer: Arc<dyn ClickhouseObserver>,
    ) -> Result<Self, SettingsError> {
        settings.check()?;
        let header = |key: &'static str, value: &str| {
            HeaderValue::from_str(value).map_err(|e| SettingsError {
                key,
                message: e.to_string(),
            })
        };
        let mut key = header("password", &settings.password)?;
        key.set_sensitive(true);
        let transport = Self {
            endpoints: settings.endpoints()?,
            next: AtomicUsize::new(0),
            pool: Mutex::new(Pool {
                client: new_client(settings.connect_timeout, settings.max_idle_conns as usize),
                born: Instant::now(),
            }),
            permits: Arc::new(Semaphore::new(settings.max_open_conns as usize)),
            user: header("username", &settings.username)?,
            key,
            connect_timeout: settings.connect_timeout,
            max_idle_conns: settings.max_idle_conns as usize,
            conn_max_lifetime: settings.conn_max_lifetime,
            max_response_bytes: settings.max_response_bytes,
            observer,
        };
        Ok(transport)
    }

    /// Number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The `host:port` of endpoint `index` (in the order of `addresses`).
    pub fn address(&self, index: usize) -> &str {
        &self.endpoints[index].authority
    }

    fn client(&self) -> HttpClient {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.born.elapsed() >= self.conn_max_lifetime {
            *pool = Pool {
                client: new_client(self.connect_timeout, self.max_idle_conns),
                born: Instant::now(),
            };
        }
        pool.client.clone()
    }

    /// Sends the statement to the next endpoint, moving on to the following ones while connecting
    /// fails; returns the answer's body.
    pub async fn execute(&self, statement: &Statement<'_>) -> Result<Bytes, TransportError> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let order: Vec<usize> = (0..self.endpoints.len())
            .map(|i| (first + i) % self.endpoints.len())
            .collect();
        self.execute_in_order(statement, &order).await
    }

    /// Sends the statement to endpoint `index` only (to kill a query on every server).
    pub async fn execute_on(
        &self,
        index: usize,
        statement: &Statement<'_>,
    ) -> Result<Bytes, TransportError> {
        self.execute_in_order(statement, &[index]).await
    }

    async fn execute_in_order(
        &self,
        statement: &Statement<'_>,
        order: &[usize],
    ) -> Result<Bytes, TransportError> {
        let exchange = async {
            let _permit =
                self.permits
                    .acquire()
                    .await
                    .map_err(|_| TransportError::Unreachable {
                        addresses: self.addresses(),
                        message: "the store is closed".into(),
                    })?;
            let mut last_connect_error = String::new();
            for &i in order {
                match self.send(&self.endpoints[i], statement).await {
                    Err(Attempt::NotConnected(message)) => last_connect_error = message,
                    Err(Attempt::Failed(e)) => return Err(e),
                    Ok(body) => return Ok(body),
                }
            }
            Err(TransportError::Unreachable {
                addresses: order
                    .iter()
                    .map(|&i| self.endpoints[i].authority.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                message: last_connect_error,
            })
        };
        let started = Instant::now();
        let result = tokio::time::timeout(statement.timeout, exchange)
            .await
            .unwrap_or(Err(TransportError::Timeout {
                after: statement.timeout,
            }));
        self.observer.request(
            Operation::of(statement.sql),
            started.elapsed(),
            result.is_ok(),
        );
        result
    }

    /// Sends a query whose answer is read as it arrives (no `wait_end_of_query`): returns once the
    /// status and headers are in, within `statement.timeout`, with the body still to read; the
    /// connection's permit is held by the answer. Fails over between endpoints while connecting fails,
    /// as [`Transport::execute`]. A non-200 answer is its exception, as for `execute`.
    pub async fn stream(&self, statement: &Statement<'_>) -> Result<Streamed, TransportError> {
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            let permit = self.permits.clone().acquire_owned().await.map_err(|_| {
                TransportError::Unreachable {
                    addresses: self.addresses(),
                    message: "the store is closed".into(),
                }
            })?;
            let mut last_connect_error = String::new();
            for i in 0..self.endpoints.len() {
                let endpoint = &self.endpoints[(first + i) % self.endpoints.len()];
                match self.send_streaming(endpoint, statement).await {
                    Err(Attempt::NotConnected(message)) => last_connect_error = message,
                    Err(Attempt::Failed(e)) => return Err(e),
                    Ok(body) => {
                        return Ok(Streamed {
                            body,
                            address: endpoint.authority.clone(),
                            _permit: permit,
                        });
                    }
                }
            }
            Err(TransportError::Unreachable {
                addresses: self.addresses(),
                message: last_connect_error,
            })
        };
        let started = Instant::now();
        let result = tokio::time::timeout(statement.timeout, exchange)
            .await
            .unwrap_or(Err(TransportError::Timeout {
                after: statement.timeout,
            }));
        self.observer.request(
            Operation::of(statement.sql),
            started.elapsed(),
            result.is_ok(),
        );
        result
    }

    async fn send_streaming(
        &self,
        endpoint: &Endpoint,
        st: &Statement<'_>,
    ) -> Result<hyper::body::Incoming, Attempt> {
        let mut url = format!("http://{}/?", endpoint.authority);
        if let Some(id) = st.query_id {
            url.push_str("query_id=");
            url.push_str(&percent_encode(id));
        }
        for (name, value) in st.settings {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        let broken = |message: String| {
            Attempt::Failed(TransportError::Broken {
                address: endpoint.authority.clone(),
                message,
            })
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header("X-ClickHouse-User", self.user.clone())
            .header("X-ClickHouse-Key", self.key.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::copy_from_slice(st.sql.as_bytes())))
            .map_err(|e| broken(format!("cannot build the request: {e}")))?;
        let response = self.client().request(request).await.map_err(|e| {
            if e.is_connect() {
                Attempt::NotConnected(format!("{}: {}", endpoint.authority, error_chain(&e)))
            } else {
                broken(error_chain(&e))
            }
        })?;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response.into_body());
        }
        let body = match Limited::new(response.into_body(), ERROR_BODY_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::from_static(b"(error body unreadable or too long)"),
        };
        Err(Attempt::Failed(server_error(status, &body)))
    }

    /// Stops handing out connections: requests waiting for one, and later ones, fail.
    pub fn close(&self) {
        self.permits.close();
    }

    fn addresses(&self) -> String {
        self.endpoints
            .iter()
            .map(|e| e.authority.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn send(&self, endpoint: &Endpoint, st: &Statement<'_>) -> Result<Bytes, Attempt> {
        let mut url = format!("http://{}/?wait_end_of_query=1", endpoint.authority);
        if let Some(id) = st.query_id {
            url.push_str("&query_id=");
            url.push_str(&percent_encode(id));
        }
        for (name, value) in st.settings {
            url.push('&');
            url.push_str(name);
            url.push('=');
            url.push_str(&percent_encode(value));
        }
        let body = match st.data {
            Some(data) => {
                url.push_str("&query=");
                url.push_str(&percent_encode(st.sql));
                data.clone()
            }
            None => Bytes::copy_from_slice(st.sql.as_bytes()),
        };
        let broken = |message: String| {
            Attempt::Failed(TransportError::Broken {
                address: endpoint.authority.clone(),
                message,
            })
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header("X-ClickHouse-User", self.user.clone())
            .header("X-ClickHouse-Key", self.key.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(body))
            .map_err(|e| broken(format!("cannot build the request: {e}")))?;
        let response = self.client().request(request).await.map_err(|e| {
            if e.is_connect() {
                Attempt::NotConnected(format!("{}: {}", endpoint.authority, error_chain(&e)))
            } else {
                broken(error_chain(&e))
            }
        })?;
        let status = response.status();
        let limit = if status == StatusCode::OK {
            self.max_response_bytes
        } else {
            ERROR_BODY_BYTES
        };
        let body = match Limited::new(response.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                if status != StatusCode::OK {
                    return Err(Attempt::Failed(server_error(
                        status,
                        b"(error body too long)",
                    )));
                }
                return Err(Attempt::Failed(TransportError::TooLarge { limit }));
            }
            Err(e) => return Err(broken(format!("reading the answer: {e}"))),
        };
        if status != StatusCode::OK {
            return Err(Attempt::Failed(server_error(status, &body)));
        }
        Ok(body)
    }
}

/// A streamed answer ([`Transport::stream`]): the body to read, holding its connection's permit.
#[derive(Debug)]
pub struct Streamed {
    /// The answer's body, read frame by frame.
    pub body: hyper::body::Incoming,
    /// The endpoint that answers.
    pub address: String,
    _permit: OwnedSemaphorePermit,
}

/// The outcome of trying one endpoint.
enum Attempt {
    /// Connecting failed: try the next endpoint.
    NotConnected(String),
    /// Anything else: final.
    Failed(TransportError),
}

fn new_client(connect_timeout: Duration, max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

/// An error and its sources, `: `-joined (hyper's top-level messages alone say little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A ClickHouse exception from an error answer: `Code: 60, e.displayText() = DB::Exception: …`.
fn server_error(status: StatusCode, body: &[u8]) -> TransportError {
    let text = String::from_utf8_lossy(body).trim().to_owned();
    let code = text
        .strip_prefix("Code: ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    let message = if text.is_empty() {
        format!("HTTP {status}")
    } else {
        text
    };
    TransportError::Server { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes_are_parsed() {
        let e = server_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            b"Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist., e.what() = DB::Exception\n",
        );
        assert_eq!(
            e,
            TransportError::Server {
                code: Some(60),
                message: "Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist., e.what() = DB::Exception".into()
            }
        );
        let e = server_error(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(
            e,
            TransportError::Server {
                code: None,
                message: "HTTP 502 Bad Gateway".into()
            }
        );
    }

    #[test]
    fn outages_are_what_trips_the_breaker() {
        let server = TransportError::Server {
            code: Some(1),
            message: String::new(),
        };
        assert!(!server.is_outage());
        assert!(!TransportError::TooLarge { limit: 1 }.is_outage());
        assert!(
            TransportError::Timeout {
                after: Duration::from_secs(1)
            }
            .is_outage()
        );
    }
}
