//! [`Service`]: ClickHouse as the backend's operations see it — the transport behind the circuit
//! breaker, statements run with a deadline, queries that are killed on the server when they time out
//! or are abandoned, and every failure mapped to a [`StoreError`].
//!
//! Owns the rules "what trips the breaker" and "which ClickHouse error is which contract error"; owns
//! no SQL of its own beyond `KILL QUERY` and the `SELECT 1` of [`Service::ping_each`].

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use luminate_model::{QueryContext, StoreError};

use crate::breaker::CircuitBreaker;
use crate::observe::ClickhouseObserver;
use crate::schema::{Features, ServerVersion, Tables};
use crate::settings::ClickhouseSettings;
use crate::sql::quote;
use crate::transport::{Statement, Transport, TransportError};

/// How long a `KILL QUERY` may take; it is best-effort (the query's `max_execution_time` is the bound
/// when it cannot be delivered).
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a running query looks at its context's cancellation flag.
const CANCEL_POLL: Duration = Duration::from_millis(10);

/// ClickHouse error codes with a contract meaning (ClickHouse's `ErrorCodes.cpp`).
mod code {
    pub const TOO_MANY_ROWS: u32 = 158;
    pub const TIMEOUT_EXCEEDED: u32 = 159;
    pub const TOO_MANY_SIMULTANEOUS_QUERIES: u32 = 202;
    pub const NO_FREE_CONNECTION: u32 = 203;
    pub const SOCKET_TIMEOUT: u32 = 209;
    pub const NETWORK_ERROR: u32 = 210;
    pub const MEMORY_LIMIT_EXCEEDED: u32 = 241;
    pub const TOO_MANY_PARTS: u32 = 252;
    pub const ALL_CONNECTION_TRIES_FAILED: u32 = 279;
    pub const TOO_MANY_BYTES: u32 = 307;
    pub const QUERY_WAS_CANCELLED: u32 = 394;
    pub const TOO_MANY_ROWS_OR_BYTES: u32 = 396;
}

/// The backend's access to ClickHouse.
#[derive(Debug)]
pub struct Service {
    /// Shared with the tasks that kill abandoned queries.
    transport: Arc<Transport>,
    breaker: CircuitBreaker,
    /// Luminate's tables.
    pub tables: Tables,
    /// The server's version at open.
    pub version: ServerVersion,
    /// What the server supports.
    pub features: Features,
    /// Deadline of statements that are not queries.
    pub request_timeout: Duration,
    /// Prefix of this process's query ids, random so that replicas never collide.
    query_id_prefix: String,
    next_query: AtomicU64,
    /// Set by `close`: every later call fails with `Unavailable`.
    closed: AtomicBool,
}

impl Service {
    /// A service over `transport`; `version` decides the features used.
    pub fn new(
        transport: Transport,
        settings: &ClickhouseSettings,
        version: ServerVersion,
        observer: Arc<dyn ClickhouseObserver>,
    ) -> Self {
        Self {
            transport: Arc::new(transport),
            breaker: CircuitBreaker::observed(
                settings.breaker_failure_threshold,
                settings.breaker_cool_down,
                observer,
            ),
            tables: Tables::new(
                &settings.database,
                settings.cluster.as_deref(),
                &settings.dimension_columns,
            )
            .with_sort_dimensions(&settings.sort_dimensions)
            .with_ttl(settings.ttl)
            .with_rollups(settings.rollups),
            version,
            features: version.features(),
            request_timeout: settings.request_timeout,
            query_id_prefix: format!("luminate-{:016x}", random_u64()),
            next_query: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Lets a request through unless the store is closed or the circuit is open.
    fn admit(&self) -> Result<(), String> {
        if self.closed.load(Ordering::Relaxed) {
            return Err("the ClickHouse store is closed".into());
        }
        self.breaker.admit().map_err(|refused| refused.reason)
    }

    /// Runs a statement that is not a query (DDL, insert, discovery, mutation) with the request
    /// deadline, through the breaker.
    pub async fn run(&self, sql: &str) -> Result<Bytes, StoreError> {
        self.run_with_timeout(sql, self.request_timeout).await
    }

    /// [`Service::run`] with another deadline.
    pub async fn run_with_timeout(
        &self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Bytes, StoreError> {
        // Through a `Distributed` table, an INSERT is otherwise queued on the receiving node and sent
        // to the shards later: the acknowledgement would not mean stored.
        let settings = [("insert_distributed_sync", "1".to_owned())];
        let st = Statement {
            settings: if self.tables.cluster.is_some() {
                &settings
            } else {
                &[]
            },
            ..Statement::new(sql, timeout)
        };
        self.run_statement(&st)
            .await
            .map_err(|e| self.to_store_error(e))
    }

    /// Runs a statement on every endpoint, in order (DDL and mutations of a cluster's local tables);
    /// returns the answers in endpoint order.
    pub async fn run_on_each(&self, sql: &str) -> Result<Vec<Bytes>, StoreError> {
        let mut answers = Vec::with_capacity(self.endpoint_count());
        for i in 0..self.endpoint_count() {
            answers.push(self.run_on(i, sql, self.request_timeout).await?);
        }
        Ok(answers)
    }

    /// Where a step that works on storage tables runs: on each node of a cluster (`Some(index)`), or
    /// once on any endpoint otherwise (`None`: they all serve the same data).
    pub fn storage_nodes(&self) -> Vec<Option<usize>> {
        if self.tables.cluster.is_some() {
            (0..self.endpoint_count()).map(Some).collect()
        } else {
            vec![None]
        }
    }

    /// Runs a statement on one of [`Service::storage_nodes`] with `timeout`.
    pub async fn run_on_node(
        &self,
        node: Option<usize>,
        sql: &str,
        timeout: Duration,
    ) -> Result<Bytes, StoreError> {
        match node {
            Some(index) => self.run_on(index, sql, timeout).await,
            None => self.run_with_timeout(sql, timeout).await,
        }
    }

    /// Runs a statement on endpoint `index` only, with `timeout`.
    pub async fn run_on(
        &self,
        index: usize,
        sql: &str,
        timeout: Duration,
    ) -> Result<Bytes, StoreError> {
        self.admit()
            .map_err(|reason| StoreError::Unavailable { reason })?;
        let result = self
            .transport
            .execute_on(index, &Statement::new(sql, timeout))
            .await;
        self.record(result.as_ref().err());
        result.map_err(|e| map_error(e, None))
    }

    /// Like [`Service::run`], for a prepared statement; the raw transport error lets the writer tell
    /// an unknown outcome from a failure.
    pub async fn run_statement(&self, st: &Statement<'_>) -> Result<Bytes, Failure> {
        self.admit().map_err(Failure::Refused)?;
        let result = self.transport.execute(st).await;
        self.record(result.as_ref().err());
        result.map_err(Failure::Transport)
    }

    /// Tells the breaker how a request ended (`None`: it succeeded).
    fn record(&self, error: Option<&TransportError>) {
        match error {
            Some(e) if e.is_outage() => self.breaker.record_outage(&e.to_string()),
            _ => self.breaker.record_success(),
        }
    }

    /// The contract error for a failure of a non-query statement.
    pub fn to_store_error(&self, failure: Failure) -> StoreError {
        match failure {
            Failure::Refused(reason) => StoreError::Unavailable { reason },
            Failure::Transport(e) => map_error(e, None),
        }
    }

    /// Runs a read-only query with the context's deadline: ClickHouse gets `max_execution_time` and a
    /// `query_id`; when the context is cancelled, the deadline passes, or the caller drops this future,
    /// the query is killed on every endpoint rather than left running (18.16 does not stop a query
    /// whose HTTP client went away). `timeout` is the query's own, for the error.
    pub async fn query(
        &self,
        sql: &str,
        ctx: &QueryContext,
        timeout: Duration,
    ) -> Result<Bytes, StoreError> {
        let timed_out = StoreError::Timeout { timeout };
        if ctx.check().is_err() {
            return Err(timed_out);
        }
        let remaining = ctx.remaining();
        self.admit()
            .map_err(|reason| StoreError::Unavailable { reason })?;
        let query_id = format!(
            "{}-{}",
            self.query_id_prefix,
            self.next_query.fetch_add(1, Ordering::Relaxed)
        );
        // Whole seconds only (18.16 truncates fractions, and 0 means no limit): round up, so the
        // server never stops a query that still has time; our own deadline is the exact one.
        let mut settings = vec![(
            "max_execution_time",
            remaining.as_secs_f64().ceil().max(1.0).to_string(),
        )];
        if self.features.cancel_on_client_close {
            settings.push(("cancel_http_readonly_queries_on_client_close", "1".into()));
        }
        settings.push(("readonly", "2".into()));
        let mut guard = KillOnDrop {
            transport: Some(self.transport.clone()),
            query_id: query_id.clone(),
        };
        let st = Statement {
            sql,
            data: None,
            query_id: Some(&query_id),
            settings: &settings,
            timeout: remaining,
        };
        let outcome = tokio::select! {
            result = self.transport.execute(&st) => Some(result),
            () = cancelled(ctx) => None,
        };
        match outcome {
            Some(Ok(body)) => {
                guard.disarm();
                self.breaker.record_success();
                Ok(body)
            }
            // The query's own budget ran out: not a sign that ClickHouse is down, so the breaker is
            // not told (health probes and other requests are).
            None | Some(Err(TransportError::Timeout { .. })) => {
                guard.kill_now().await;
                Err(timed_out)
            }
            Some(Err(e)) => {
                if !matches!(e, TransportError::Broken { .. }) {
                    // An answer (or no connection at all): nothing is left running.
                    guard.disarm();
                }
                self.record(Some(&e));
                Err(map_error(e, Some(timeout)))
            }
        }
    }

    /// Starts a read-only query whose answer is read as it arrives (exports): through the breaker,
    /// with a `query_id`, no execution time limit, and `start_timeout` for the answer to begin. The
    /// returned query is killed on every endpoint when it is dropped before [`StreamedQuery::finished`]
    /// (18.16 keeps running a query whose HTTP client went away).
    pub async fn stream(
        &self,
        sql: &str,
        start_timeout: Duration,
    ) -> Result<StreamedQuery, StoreError> {
        self.admit()
            .map_err(|reason| StoreError::Unavailable { reason })?;
        let query_id = format!(
            "{}-{}",
            self.query_id_prefix,
            self.next_query.fetch_add(1, Ordering::Relaxed)
        );
        let mut settings = vec![("readonly", "2".to_owned())];
        if self.features.cancel_on_client_close {
            settings.push(("cancel_http_readonly_queries_on_client_close", "1".into()));
        }
        let mut guard = KillOnDrop {
            transport: Some(self.transport.clone()),
            query_id: query_id.clone(),
        };
        let st = Statement {
            sql,
            data: None,
            query_id: Some(&query_id),
            settings: &settings,
            timeout: start_timeout,
        };
        match self.transport.stream(&st).await {
            Ok(answer) => {
                self.breaker.record_success();
                Ok(StreamedQuery { answer, guard })
            }
            Err(e) => {
                if !matches!(
                    e,
                    TransportError::Broken { .. } | TransportError::Timeout { .. }
                ) {
                    guard.disarm();
                }
                self.record(Some(&e));
                Err(map_error(e, None))
            }
        }
    }

    /// Sends `SELECT 1` to every endpoint at once, each bounded by `timeout`; returns each address
    /// with how it answered, in the order of `addresses`. Outside the circuit breaker, neither asking
    /// it nor telling it: this asks whether each address answers now, not whether the store may send
    /// it work (the breaker's probe is `health`).
    pub async fn ping_each(&self, timeout: Duration) -> Vec<(String, Result<(), TransportError>)> {
        let pings: Vec<_> = (0..self.endpoint_count())
            .map(|i| {
                let transport = Arc::clone(&self.transport);
                tokio::spawn(async move {
                    transport
                        .execute_on(i, &Statement::new("SELECT 1", timeout))
                        .await
                        .map(drop)
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(pings.len());
        for (i, ping) in pings.into_iter().enumerate() {
            let address = self.transport.address(i).to_owned();
            let answer = ping.await.unwrap_or_else(|e| {
                Err(TransportError::Broken {
                    address: address.clone(),
                    message: format!("the ping task failed: {e}"),
                })
            });
            answers.push((address, answer));
        }
        answers
    }

    /// Stops new requests.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.transport.close();
    }

    /// Number of endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.transport.endpoint_count()
    }
}

/// A query being streamed ([`Service::stream`]).
pub struct StreamedQuery {
    /// Its answer.
    pub answer: crate::transport::Streamed,
    guard: KillOnDrop,
}

impl std::fmt::Debug for StreamedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedQuery")
            .field("query_id", &self.guard.query_id)
            .finish_non_exhaustive()
    }
}

impl StreamedQuery {
    /// The answer was read to its end: nothing is left to kill.
    pub fn finished(mut self) {
        self.guard.disarm();
    }
}

/// A failure before mapping: refused by the breaker, or from the transport.
#[derive(Debug)]
pub enum Failure {
    /// The circuit is open.
    Refused(String),
    /// The transport's error.
    Transport(TransportError),
}

/// The contract error for a transport error; `query_timeout` is set for queries (whose server-side
/// timeouts and cancellations are the query's timeout).
fn map_error(e: TransportError, query_timeout: Option<Duration>) -> StoreError {
    match e {
        TransportError::Unreachable { .. }
        | TransportError::Broken { .. }
        | TransportError::Timeout { .. } => StoreError::Unavailable {
            reason: e.to_string(),
        },
        TransportError::TooLarge { .. } => StoreError::QueryTooLarge {
            message: e.to_string(),
        },
        TransportError::Server {
            code: Some(c),
            ref message,
        } => match c {
            code::TIMEOUT_EXCEEDED | code::QUERY_WAS_CANCELLED if query_timeout.is_some() => {
                StoreError::Timeout {
                    timeout: query_timeout.unwrap_or_default(),
                }
            }
            code::MEMORY_LIMIT_EXCEEDED
            | code::TOO_MANY_ROWS
            | code::TOO_MANY_BYTES
            | code::TOO_MANY_ROWS_OR_BYTES => StoreError::QueryTooLarge {
                message: format!("ClickHouse refused the query: {message}"),
            },
            code::TOO_MANY_PARTS
            | code::TOO_MANY_SIMULTANEOUS_QUERIES
            | code::NO_FREE_CONNECTION
            | code::SOCKET_TIMEOUT
            | code::NETWORK_ERROR
            | code::ALL_CONNECTION_TRIES_FAILED => StoreError::Unavailable {
                reason: e.to_string(),
            },
            _ => StoreError::Internal {
                message: e.to_string(),
            },
        },
        TransportError::Server { code: None, .. } => StoreError::Unavailable {
            reason: e.to_string(),
        },
    }
}

/// Resolves once the context is cancelled or past its deadline.
async fn cancelled(ctx: &QueryContext) {
    while ctx.check().is_ok() {
        tokio::time::sleep(CANCEL_POLL.min(ctx.remaining())).await;
    }
}

/// Kills a query on every endpoint unless disarmed — also when the future running the query is
/// dropped (the server's route drops it when the request's timeout fires).
struct KillOnDrop {
    transport: Option<Arc<Transport>>,
    query_id: String,
}

impl KillOnDrop {
    fn disarm(&mut self) {
        self.transport = None;
    }

    async fn kill_now(&mut self) {
        if let Some(transport) = self.transport.take() {
            kill(transport, std::mem::take(&mut self.query_id)).await;
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(transport) = self.transport.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(kill(transport, std::mem::take(&mut self.query_id)));
        }
    }
}

/// `KILL QUERY … ASYNC` on every endpoint (the query ran on one of them; which one the transport's
/// failover decided). Best-effort and outside the breaker.
async fn kill(transport: Arc<Transport>, query_id: String) {
    let sql = format!("KILL QUERY WHERE query_id = {} ASYNC", quote(&query_id));
    for i in 0..transport.endpoint_count() {
        if let Err(e) = transport
            .execute_on(i, &Statement::new(&sql, KILL_TIMEOUT))
            .await
        {
            tracing::debug!(query_id, error = %e, "KILL QUERY failed");
        }
    }
}

/// 64 random bits, from the standard library's per-process random hasher keys (no RNG crate needed for
/// ids that only have to be unlikely to collide).
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new()
        .hash_one((nanos, COUNTER.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u32) -> TransportError {
        TransportError::Server {
            code: Some(code),
            message: format!("Code: {code}"),
        }
    }

    #[test]
    fn errors_map_to_contract_errors() {
        let t = Some(Duration::from_secs(3));
        assert_eq!(
            map_error(server(159), t),
            StoreError::Timeout {
                timeout: Duration::from_secs(3)
            }
        );
        assert!(matches!(
            map_error(server(159), None),
            StoreError::Internal { .. }
        ));
        assert!(matches!(
            map_error(server(241), t),
            StoreError::QueryTooLarge { .. }
        ));
        assert!(matches!(
            map_error(server(252), None),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(
            map_error(server(62), t),
            StoreError::Internal { .. }
        ));
        assert!(matches!(
            map_error(
                TransportError::Unreachable {
                    addresses: "a:1".into(),
                    message: "refused".into()
                },
                t
            ),
            StoreError::Unavailable { reason } if reason.contains("a:1")
        ));
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_u64(), random_u64());
    }

    /// A query that runs for many seconds unless killed.
    const SLOW: &str = "SELECT count() FROM numbers(100000000000) FORMAT RowBinary";

    fn service() -> Service {
        let settings = crate::testing::shared().settings("service_tests");
        let transport = Transport::new(&settings, Arc::new(crate::observe::Unobserved)).unwrap();
        let version = ServerVersion::parse("18.16.1").unwrap();
        Service::new(
            transport,
            &settings,
            version,
            Arc::new(crate::observe::Unobserved),
        )
    }

    /// Waits until the number of `service`'s queries running on the server is (or is not, with
    /// `equal` false) `n`; false after 5 s.
    async fn running_becomes(service: &Service, n: &str, equal: bool) -> bool {
        let sql = format!(
            "SELECT count() FROM system.processes WHERE startsWith(query_id, {})",
            quote(&service.query_id_prefix)
        );
        for _ in 0..250 {
            if (crate::testing::shared().sql(&sql).unwrap().trim() == n) == equal {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    async fn no_query_left(service: &Service) -> bool {
        running_becomes(service, "0", true).await
    }

    async fn seen_running(service: &Service) -> bool {
        running_becomes(service, "0", false).await
    }

    #[tokio::test]
    async fn a_query_past_its_deadline_is_killed_on_the_server() {
        if crate::testing::skip_on_adapter(
            "KILL QUERY: the adapter runs one statement at a time, so there is never a running query to kill",
        ) {
            return;
        }
        let service = service();
        let ctx = QueryContext::new(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let (result, seen) = tokio::join!(
            service.query(SLOW, &ctx, Duration::from_millis(300)),
            seen_running(&service)
        );
        assert!(seen, "the query ran on the server");
        let err = result.unwrap_err();
        assert_eq!(
            err,
            StoreError::Timeout {
                timeout: Duration::from_millis(300)
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(no_query_left(&service).await);
    }

    #[tokio::test]
    async fn a_cancelled_query_is_killed_on_the_server() {
        if crate::testing::skip_on_adapter(
            "KILL QUERY: the adapter runs one statement at a time, so there is never a running query to kill",
        ) {
            return;
        }
        let service = service();
        let ctx = QueryContext::new(Duration::from_secs(30));
        let canceller = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                ctx.cancel();
            })
        };
        let (result, seen) = tokio::join!(
            service.query(SLOW, &ctx, Duration::from_secs(30)),
            seen_running(&service)
        );
        assert!(seen, "the query ran on the server");
        let err = result.unwrap_err();
        canceller.await.unwrap();
        assert!(matches!(err, StoreError::Timeout { .. }), "{err}");
        assert!(no_query_left(&service).await);
    }

    #[tokio::test]
    async fn an_abandoned_query_is_killed_on_the_server() {
        if crate::testing::skip_on_adapter(
            "KILL QUERY: the adapter runs one statement at a time, so there is never a running query to kill",
        ) {
            return;
        }
        let service = service();
        let ctx = QueryContext::new(Duration::from_secs(30));
        let mut query = Box::pin(service.query(SLOW, &ctx, Duration::from_secs(30)));
        tokio::select! {
            result = &mut query => panic!("a query of minutes finished: {result:?}"),
            seen = seen_running(&service) => assert!(seen, "the query ran on the server"),
        }
        // What the server's route does when the request's timeout fires: drop the query's future.
        drop(query);
        assert!(no_query_left(&service).await);
    }
}
