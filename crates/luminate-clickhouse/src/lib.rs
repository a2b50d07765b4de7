//! Luminate's ClickHouse backend: [`ClickhouseStore`], the `MetricsStore` for users who outgrow one
//! machine. Luminate instances become stateless; ClickHouse stores, replicates and shards. Every query
//! answers exactly as the embedded engine and the reference evaluator do (CONTRACT §4–6), which the
//! differential conformance suite checks against a real `clickhouse-server`.
//!
//! # Modules, one layer calling the next
//! - `store`: the trait implementation, open (version detection, schema), health and the
//!   `clickhouse_reachable` check, close;
//! - `write`, `query/` (range, aggregate, rate), `discovery`, `retention`, `export`: one operation
//!   family each, turning a request into statements and answers (`export` streams its answer);
//! - `service`: ClickHouse behind the circuit breaker: deadlines, `KILL QUERY` on cancellation, and the
//!   mapping of ClickHouse failures to [`luminate_model::StoreError`];
//! - `breaker`: the circuit breaker's state machine; `transport`: HTTP, pooling, failover;
//! - `schema`: DDL and server features; `columns`: dimension columns of their own for configured keys;
//!   `filters`: a filter as a SQL condition; `sql`: the one escaping function; `rowbinary`: the wire
//!   format;
//! - `settings`: [`ClickhouseSettings`]; `testing` (feature `test-server`): real servers for tests,
//!   one shared per test binary, stoppable and restartable, and two-shard clusters.
//!
//! # Schema
//! See [`schema`] for the DDL. In short: one `points` table (`MergeTree`, partitioned by UTC day,
//! ordered by `(tenant, metric, series, timestamp)`, dimensions as parallel `Array(String)` columns
//! `dim_keys`/`dim_values` sorted by key, `series = cityHash64(dim_keys, dim_values)` computed on
//! insert, a `write_id` per write call, 1 024 rows per granule, and a column of its own for each
//! configured dimension key) and a `retention_overrides` table (`ReplacingMergeTree`). Both are created
//! if missing on open. With `cluster` set, every address is a node of that cluster: the
//! tables above are created on each node as `points_local` / `retention_overrides_local`, and
//! `points` / `retention_overrides` become `Distributed` tables over them (sharded by series); inserts
//! are synchronous (`insert_distributed_sync=1`) so an acknowledgement still means stored. Newer servers get `LowCardinality(String)` tenant and metric columns
//! and a bloom-filter skip index on dimension values (≥ 20.1), and queries that stop when their client
//! disconnects (≥ 19.11); 18.16 (Debian's package) gets none of them and needs none.
//!
//! # Transport: a small client over hyper rather than the `clickhouse` crate
//! The official crate (0.15) was weighed and set aside, for reasons that matter to this backend:
//! - failure classes: safe retries and the circuit breaker need to know whether a request was sent at
//!   all (connect failure) or its outcome is unknown (broken mid-request); the crate folds both into one
//!   network error, hyper's client tells them apart;
//! - 18.16: the crate validates rows with `RowBinaryWithNamesAndTypes` (absent in 18.16) unless told
//!   not to, reports errors after a 200 as decode errors unless `wait_end_of_query` is set, and its `?`
//!   binds are client-side escaping anyway (18.16 has no server-side parameters);
//! - dependencies: it adds `bnum`, `half`, `rand`, a second `hashbrown`, `clickhouse-types` and a proc
//!   macro crate on a 2-core build machine; hyper, `hyper-util` and `http-body-util` are already built
//!   for axum.
//!
//! What the backend needs of the protocol is small: POST a statement, read a `RowBinary` answer
//! (`rowbinary`, ~150 lines with tests) or send a `RowBinary` insert body. `transport` does that with a
//! bounded pool (`max_open_conns` permits, `max_idle_conns` idle connections per endpoint, the pool
//! renewed after `conn_max_lifetime`), round-robin over `addresses` with failover while connecting
//! fails, per-request deadlines, and bounded response bodies.
//!
//! # Writes and retries
//! One `INSERT … FORMAT RowBinary` per `write` call, acknowledged when ClickHouse has committed it
//! (`wait_end_of_query=1`). 18.16 deduplicates retried inserts only on replicated tables, so a retry of
//! an insert whose outcome is unknown first counts, per (day, metric, series), the points already stored
//! under the batch's random `write_id` and resends only the missing ones (the `write` module says why
//! that is exact, also over shards). A failed insert is an error, never an acknowledgement. Durability
//! of an acknowledged insert is ClickHouse's: parts are written before the answer but, on 18.16, not
//! fsynced (a killed server keeps them; a power loss may not).
//!
//! # Queries, timeouts and cancellation
//! Exact semantics in SQL: `quantileExact` for percentiles (its position `floor(q × n)` equals
//! `semantics::quantile_index`, pinned by a test against the server), per-series integral and rate from
//! `arraySort(groupArray((timestamp, value)))` with `arrayDifference` (no window functions in 18.16),
//! epoch-aligned buckets with a floor that also holds for negative timestamps, orders and `limit` cuts in
//! `ORDER BY … LIMIT limit + 1`. Each query carries a `query_id` and `max_execution_time` (whole seconds,
//! rounded up, from the context's remaining time); when the context is cancelled, its deadline passes
//! or the future is dropped, `KILL QUERY` is sent to every endpoint — 18.16 keeps running a query whose
//! HTTP client has gone. Queries run with `readonly=2`.
//!
//! # Failure handling
//! A circuit breaker (`breaker`) opens after `breaker_failure_threshold` consecutive outages
//! (connection refused, connection broken, a non-query request past its deadline); while open, every
//! call fails at once with `StoreError::Unavailable` (503 `STORAGE_UNAVAILABLE`) and `health` reports
//! the reason; after `breaker_cool_down` one request (or health check) probes, and a success closes it.
//! A query past its own deadline is the query's budget, not an outage, and does not count.
//!
//! # Limits of this backend
//! Cardinality limits (`CARDINALITY_EXCEEDED`) are not enforced here: every valid point is stored.
//! Deletes are mutations (see the `retention` module): a partition holds every tenant, so none can be dropped.

mod breaker;
mod columns;
mod dashboards;
mod discovery;
mod export;
mod filters;
mod keyed;
mod newest;
pub mod observe;
mod query;
mod retention;
mod rollups;
mod rowbinary;
pub mod schema;
mod service;
mod settings;
mod sql;
mod store;
#[cfg(feature = "test-server")]
pub mod testing;
mod transport;
mod ttl;
mod write;

pub use dashboards::ClickhouseDashboards;
pub use settings::{ClickhouseSettings, SettingsError};
pub use store::{ClickhouseStore, OpenError, REACHABLE_CHECK, snapshot_unsupported};
