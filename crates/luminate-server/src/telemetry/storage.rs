//! Storage metrics: [`InstrumentedStore`], the decorator that counts and times every call the server
//! makes to its backend (the same figures for every backend), and the observers through which the
//! embedded engine ([`EngineMetrics`]) and the ClickHouse client ([`ClickhouseMetrics`]) report their
//! internals. The gauges of both (sizes, health) are refreshed by the collector.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use luminate_engine::EngineObserver;
use luminate_model::keyed::{KeyedOutcome, KeyedWrite};
use luminate_model::{MetricsStore, PointBatch, StoreError, Tenant, WriteOutcome};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::collector::CardinalityWarnings;
use super::{HistogramFamily, Registrar, count_histogram, duration_histogram, histograms};
use crate::storage::forward::{Call, Decorate, Forward, Operation};

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct BackendLabels {
    pub backend: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    backend: &'static str,
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationOutcomeLabels {
    backend: &'static str,
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationErrorLabels {
    backend: &'static str,
    operation: &'static str,
    kind: &'static str,
}

/// The engine's operations that can find no space (`luminate_engine_disk_full_refusals_total`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EngineOperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// `ok` or `error`.
fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

/// The label of a store error's kind.
fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Unavailable { .. } => "unavailable",
        StoreError::Full { .. } => "full",
        StoreError::Timeout { .. } => "timeout",
        StoreError::QueryTooLarge { .. } => "query_too_large",
        StoreError::Internal { .. } => "internal",
    }
}

/// The handles of the backend-independent storage metrics.
#[derive(Debug, Clone)]
pub(crate) struct StorageMetrics {
    operations: Family<OperationOutcomeLabels, Counter>,
    durations: HistogramFamily<OperationLabels>,
    errors: Family<OperationErrorLabels, Counter>,
    write_batch_points: HistogramFamily<BackendLabels>,
    pub health: Family<BackendLabels, Gauge>,
    pub size_bytes: Family<BackendLabels, Gauge>,
    pub filesystem_size: Family<BackendLabels, Gauge>,
    pub filesystem_available: Family<BackendLabels, Gauge>,
}

impl StorageMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            operations: r.add(
                "storage_operations",
                "Calls to the storage backend, by backend, operation and outcome (ok, error)",
                &["backend", "operation", "outcome"],
                Family::default(),
            ),
            durations: r.add(
                "storage_operation_duration_seconds",
                "Time of calls to the storage backend, by backend and operation",
                &["backend", "operation"],
                histograms(duration_histogram),
            ),
            errors: r.add(
                "storage_errors",
                "Failed calls to the storage backend, by backend, operation and kind (unavailable, full: no space for a write, timeout, query_too_large, internal)",
                &["backend", "operation", "kind"],
                Family::default(),
            ),
            write_batch_points: r.add(
                "storage_write_batch_points",
                "Points per batch handed to the storage backend",
                &["backend"],
                histograms(count_histogram),
            ),
            health: r.add(
                "storage_health",
                "Health of the storage backend at the latest collection: 1 healthy (serving reads and writes), 0 unavailable",
                &["backend"],
                Family::default(),
            ),
            size_bytes: r.add(
                "storage_size_bytes",
                "Bytes the stored data takes on disk (the data directory; ClickHouse's parts of Luminate's tables)",
                &["backend"],
                Family::default(),
            ),
            filesystem_size: r.add(
                "storage_filesystem_size_bytes",
                "Size of the filesystem holding the data directory (embedded backend)",
                &["backend"],
                Family::default(),
            ),
            filesystem_available: r.add(
                "storage_filesystem_available_bytes",
                "Bytes still available to Luminate on the filesystem holding the data directory (embedded backend)",
                &["backend"],
                Family::default(),
            ),
        }
    }

    fn record<T>(
        &self,
        backend: &'static str,
        operation: &'static str,
        started: Instant,
        result: &Result<T, StoreError>,
    ) {
        self.durations
            .get_or_create(&OperationLabels { backend, operation })
            .observe(started.elapsed().as_secs_f64());
        self.operations
            .get_or_create(&OperationOutcomeLabels {
                backend,
                operation,
                outcome: outcome(result.is_ok()),
            })
            .inc();
        if let Err(e) = result {
            self.errors
                .get_or_create(&OperationErrorLabels {
                    backend,
                    operation,
                    kind: error_kind(e),
                })
                .inc();
        }
    }
}

/// A decorator that counts and times every call to the store it wraps. Health is forwarded untimed:
/// the collector polls it, and counting the polls would only add noise.
pub struct InstrumentedStore {
    inner: Arc<dyn MetricsStore>,
    metrics: StorageMetrics,
    backend: &'static str,
}

impl InstrumentedStore {
    /// Wraps `inner`, recording on `metrics` under its backend's name.
    pub(crate) fn wrap(
        inner: Arc<dyn MetricsStore>,
        metrics: &StorageMetrics,
    ) -> Arc<dyn MetricsStore> {
        Forward::store(Self {
            backend: inner.backend_name(),
            inner,
            metrics: metrics.clone(),
        })
    }

    fn observe_batch(&self, batch: &PointBatch) {
        self.metrics
            .write_batch_points
            .get_or_create(&BackendLabels {
                backend: self.backend,
            })
            .observe(batch.len() as f64);
    }
}

#[async_trait]
impl Decorate for InstrumentedStore {
    fn backend_name(&self) -> &'static str {
        self.backend
    }

    fn inner(&self) -> Result<&dyn MetricsStore, StoreError> {
        Ok(self.inner.as_ref())
    }

    async fn around<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        call: Call<'a, T>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .record(self.backend, operation.name(), started, &result);
        result
    }

    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.observe_batch(&batch);
        self.inner.write(tenant, batch).await
    }

    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.observe_batch(&batch);
        self.inner.write_samples(tenant, batch).await
    }

    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        self.observe_batch(&batch);
        self.inner.write_keyed(tenant, batch, keyed).await
    }
}

/// The embedded engine's metrics: its events as counters and histograms, its gauges as the collector
/// last read them.
#[derive(Debug, Clone)]
pub(crate) struct EngineMetrics {
    wal_appends: Counter,
    wal_appended_bytes: Counter,
    wal_fsync_duration: Histogram,
    wal_fsync_errors: Counter,
    no_space: Family<EngineOperationLabels, Counter>,
    flushes: Family<OutcomeLabels, Counter>,
    flush_duration: Histogram,
    compactions: Family<OutcomeLabels, Counter>,
    compaction_duration: Histogram,
    pub wal_segments: Gauge,
    pub wal_bytes: Gauge,
    pub series: Gauge,
    pub index_bytes: Gauge,
    pub head_points: Gauge,
    pub head_bytes: Gauge,
    pub parts: Gauge,
    /// Damaged parts set aside in `quarantine/` (docs/runbooks/LuminateQuarantinedParts.md).
    pub quarantined_parts: Gauge,
    warnings: CardinalityWarnings,
}

impl EngineMetrics {
    pub(super) fn register(r: &mut Registrar<'_>, warnings: CardinalityWarnings) -> Self {
        let metrics = Self {
            warnings,
            wal_appends: r.add(
                "engine_wal_appends",
                "Records appended to the write-ahead log (one per commit group's write, one per delete)",
                &[],
                Counter::default(),
            ),
            wal_appended_bytes: r.add(
                "engine_wal_appended_bytes",
                "Payload bytes appended to the write-ahead log",
                &[],
                Counter::default(),
            ),
            wal_fsync_duration: r.add(
                "engine_wal_fsync_duration_seconds",
                "Time of each fsync of the write-ahead log (one per commit group under sync: always)",
                &[],
                duration_histogram(),
            ),
            wal_fsync_errors: r.add(
                "engine_wal_fsync_errors",
                "Failed writes or fsyncs of the write-ahead log; each poisons the engine (writes refused until restart)",
                &[],
                Counter::default(),
            ),
            no_space: r.add(
                "engine_disk_full_refusals",
                "Operations that found no space on the data directory's filesystem (ENOSPC, EDQUOT) and kept nothing of what they wrote, by operation (write: a write or delete refused with 503, or a WAL segment not created; flush, compaction: an attempt, retried with a backoff); nothing is poisoned and writes resume by themselves once space is freed",
                &["operation"],
                Family::default(),
            ),
            flushes: r.add(
                "engine_flushes",
                "Frozen heads flushed to parts, by outcome (ok, error)",
                &["outcome"],
                Family::default(),
            ),
            flush_duration: r.add(
                "engine_flush_duration_seconds",
                "Time to flush one frozen head to parts",
                &[],
                duration_histogram(),
            ),
            compactions: r.add(
                "engine_compactions",
                "Compaction jobs (one partition's parts merged into one), by outcome (ok, error)",
                &["outcome"],
                Family::default(),
            ),
            compaction_duration: r.add(
                "engine_compaction_duration_seconds",
                "Time of one compaction job",
                &[],
                duration_histogram(),
            ),
            wal_segments: r.add(
                "engine_wal_segments",
                "Segment files of the write-ahead log",
                &[],
                Gauge::default(),
            ),
            wal_bytes: r.add(
                "engine_wal_bytes",
                "Bytes of the write-ahead log's segments",
                &[],
                Gauge::default(),
            ),
            series: r.add(
                "engine_series",
                "Series defined in the index, over every tenant",
                &[],
                Gauge::default(),
            ),
            index_bytes: r.add(
                "engine_index_bytes",
                "Heap bytes of the series index",
                &[],
                Gauge::default(),
            ),
            head_points: r.add(
                "engine_head_points",
                "Points buffered in memory, not yet flushed to parts (the active head and one being flushed)",
                &[],
                Gauge::default(),
            ),
            head_bytes: r.add(
                "engine_head_bytes",
                "Heap bytes of the in-memory heads",
                &[],
                Gauge::default(),
            ),
            parts: r.add(
                "engine_parts",
                "Live part files",
                &[],
                Gauge::default(),
            ),
            quarantined_parts: r.add(
                "engine_quarantined_parts",
                "Damaged parts set aside in quarantine/: their points are missing from answers, which say so, until an operator restores or forgets them",
                &[],
                Gauge::default(),
            ),
        };
        // Both outcomes exist from the start, at 0: `increase()` over a rare event (a compaction, a
        // failed flush) then has a series to work on before the first one happens.
        for ok in [true, false] {
            let labels = OutcomeLabels {
                outcome: outcome(ok),
            };
            drop(metrics.flushes.get_or_create(&labels));
            drop(metrics.compactions.get_or_create(&labels));
        }
        for operation in ["write", "flush", "compaction"] {
            drop(
                metrics
                    .no_space
                    .get_or_create(&EngineOperationLabels { operation }),
            );
        }
        metrics
    }

    /// Sets the gauges from the engine's figures.
    pub(crate) fn set_stats(&self, stats: &luminate_engine::EngineStats) {
        let set = |gauge: &Gauge, value: u64| {
            gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        };
        set(&self.wal_segments, stats.wal_segments);
        set(&self.wal_bytes, stats.wal_bytes);
        set(&self.series, stats.memory.series);
        set(&self.index_bytes, stats.memory.index_bytes);
        set(&self.head_points, stats.memory.head_points);
        set(&self.head_bytes, stats.memory.head_bytes);
        set(&self.parts, stats.parts);
        set(&self.quarantined_parts, stats.quarantined_parts);
    }
}

impl EngineObserver for EngineMetrics {
    fn wal_appended(&self, bytes: u64) {
        self.wal_appends.inc();
        self.wal_appended_bytes.inc_by(bytes);
    }

    fn wal_synced(&self, elapsed: Duration, ok: bool) {
        self.wal_fsync_duration.observe(elapsed.as_secs_f64());
        if !ok {
            self.wal_fsync_errors.inc();
        }
    }

    fn wal_write_failed(&self) {
        self.wal_fsync_errors.inc();
    }

    fn no_space(&self, operation: &'static str) {
        self.no_space
            .get_or_create(&EngineOperationLabels { operation })
            .inc();
    }

    fn flushed(&self, elapsed: Duration, ok: bool) {
        self.flush_duration.observe(elapsed.as_secs_f64());
        self.flushes
            .get_or_create(&OutcomeLabels {
                outcome: outcome(ok),
            })
            .inc();
    }

    fn cardinality_warning(&self, tenant: &Tenant, limit: &'static str) {
        self.warnings.record(tenant, limit);
    }

    fn compacted(&self, elapsed: Duration, ok: bool) {
        self.compaction_duration.observe(elapsed.as_secs_f64());
        self.compactions
            .get_or_create(&OutcomeLabels {
                outcome: outcome(ok),
            })
            .inc();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClickhouseRequestLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClickhouseOperationLabels {
    operation: &'static str,
}

/// The ClickHouse client's metrics. Registered in every build (the reference is the same); only a
/// build with the `clickhouse` feature records anything.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(feature = "clickhouse"),
    allow(
        dead_code,
        reason = "registered for the reference; only the backend records"
    )
)]
pub(crate) struct ClickhouseMetrics {
    requests: Family<ClickhouseRequestLabels, Counter>,
    durations: HistogramFamily<ClickhouseOperationLabels>,
    breaker_state: Gauge,
}

impl ClickhouseMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            requests: r.add(
                "clickhouse_requests",
                "HTTP requests to ClickHouse, by operation (insert, select, command) and outcome (ok, error)",
                &["operation", "outcome"],
                Family::default(),
            ),
            durations: r.add(
                "clickhouse_request_duration_seconds",
                "Time of HTTP requests to ClickHouse, by operation",
                &["operation"],
                histograms(duration_histogram),
            ),
            breaker_state: r.add(
                "clickhouse_breaker_state",
                "The ClickHouse circuit breaker: 0 closed (requests pass), 1 half-open (one probe), 2 open (failing fast)",
                &[],
                Gauge::default(),
            ),
        }
    }
}

#[cfg(feature = "clickhouse")]
impl luminate_clickhouse::observe::ClickhouseObserver for ClickhouseMetrics {
    fn request(
        &self,
        operation: luminate_clickhouse::observe::Operation,
        elapsed: Duration,
        ok: bool,
    ) {
        let operation = operation.as_str();
        self.durations
            .get_or_create(&ClickhouseOperationLabels { operation })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&ClickhouseRequestLabels {
                operation,
                outcome: outcome(ok),
            })
            .inc();
    }

    fn breaker(&self, state: luminate_clickhouse::observe::BreakerState) {
        self.breaker_state.set(state.as_gauge());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::tests::exposition;
    use crate::telemetry::{Registry, Telemetry};
    use crate::testing::MemoryStore;

    #[tokio::test]
    async fn every_call_is_counted_and_timed_and_failures_are_kinded() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        let store = InstrumentedStore::wrap(Arc::new(MemoryStore::default()), &telemetry.storage);
        let tenant = Tenant::new("acme");
        store.metric_names(&tenant).await.unwrap();
        store.metric_names(&tenant).await.unwrap();
        store.tenants().await.unwrap();
        let text = exposition(&registry);
        let backend = store.backend_name();
        for line in [
            format!(
                "luminate_storage_operations_total{{backend=\"{backend}\",operation=\"metric_names\",outcome=\"ok\"}} 2"
            ),
            format!(
                "luminate_storage_operations_total{{backend=\"{backend}\",operation=\"tenants\",outcome=\"ok\"}} 1"
            ),
            format!(
                "luminate_storage_operation_duration_seconds_count{{backend=\"{backend}\",operation=\"metric_names\"}} 2"
            ),
        ] {
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(!text.contains("luminate_storage_errors_total{"), "{text}");
    }

    #[test]
    fn store_errors_have_bounded_kinds() {
        let kinds: Vec<_> = [
            StoreError::Unavailable { reason: "x".into() },
            StoreError::Full { reason: "x".into() },
            StoreError::Timeout {
                timeout: Duration::from_secs(1),
            },
            StoreError::QueryTooLarge {
                message: "x".into(),
            },
            StoreError::Internal {
                message: "x".into(),
            },
        ]
        .iter()
        .map(error_kind)
        .collect();
        assert_eq!(
            kinds,
            [
                "unavailable",
                "full",
                "timeout",
                "query_too_large",
                "internal"
            ]
        );
    }

    #[test]
    fn engine_events_become_counters_and_histograms() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        let engine = &telemetry.engine;
        engine.wal_appended(100);
        engine.wal_appended(50);
        engine.wal_synced(Duration::from_micros(700), true);
        engine.wal_synced(Duration::from_millis(40), false);
        engine.wal_write_failed();
        engine.no_space("write");
        engine.no_space("write");
        engine.no_space("flush");
        engine.flushed(Duration::from_millis(200), true);
        engine.compacted(Duration::from_secs(2), false);
        let text = exposition(&registry);
        for line in [
            "luminate_engine_wal_appends_total 2",
            "luminate_engine_wal_appended_bytes_total 150",
            "luminate_engine_wal_fsync_duration_seconds_count 2",
            "luminate_engine_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 1",
            "luminate_engine_wal_fsync_duration_seconds_bucket{le=\"0.05\"} 2",
            "luminate_engine_wal_fsync_errors_total 2",
            "luminate_engine_disk_full_refusals_total{operation=\"write\"} 2",
            "luminate_engine_disk_full_refusals_total{operation=\"flush\"} 1",
            "luminate_engine_disk_full_refusals_total{operation=\"compaction\"} 0",
            "luminate_engine_flushes_total{outcome=\"ok\"} 1",
            "luminate_engine_compactions_total{outcome=\"error\"} 1",
            "luminate_engine_compaction_duration_seconds_bucket{le=\"1.0\"} 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
