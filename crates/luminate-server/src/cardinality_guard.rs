//! Cardinality limits for backends that do not enforce them: a [`MetricsStore`] wrapper that refuses,
//! per point, a new metric past `max_metrics_per_tenant` or a new series past
//! `max_unique_series_per_metric` (`CARDINALITY_EXCEEDED` in the 207 body; the other points are
//! stored), and logs a warning when a tenant passes 80 % of either limit.
//!
//! The embedded engine knows its series and enforces both limits exactly, so it is not wrapped
//! ([`wrap`] looks at [`MetricsStore::backend_name`]). For the others (ClickHouse) the check is kept in
//! this process and is approximate:
//! - metrics per tenant are counted exactly (the set is bounded by the limit itself), starting from the
//!   backend's metric names, read once per tenant at its first write;
//! - series per metric are counted with a HyperLogLog sketch per (tenant, metric) ([`crate::hll`]:
//!   exact up to 256 series, then about 1.6 % standard error, 4 KiB each). A point whose series the
//!   sketch has not counted is refused once the estimate reaches the limit, so a metric ends within a
//!   few percent of it, on either side.
//! - Series counts start empty when the server starts and are per server process: series stored before
//!   a restart, or through another Luminate instance in front of the same ClickHouse, are not counted
//!   (seeding a sketch from a count would refuse the rewrites of existing series after a restart).
//!   Memory is bounded by tenants × `max_metrics_per_tenant` × 4 KiB.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use luminate_model::keyed::{KeyedOutcome, KeyedWrite};
use luminate_model::store::Rejection;
use luminate_model::{
    ErrorCode, MetricsStore, PointBatch, StoreError, Tenant, TimestampMs, WriteOutcome,
};

use crate::config::Config;
use crate::hll::Sketch;
use crate::storage::forward::{Decorate, Forward};
use crate::telemetry::Telemetry;
use crate::telemetry::collector::CardinalityWarnings;

/// Share of a limit at which a tenant is warned.
pub const WARN_RATIO: f64 = 0.8;

/// Wraps `store` in a [`CardinalityGuard`] unless it is the embedded engine, which enforces the
/// limits itself.
pub fn wrap(
    store: Arc<dyn MetricsStore>,
    config: &Config,
    telemetry: &Telemetry,
) -> Arc<dyn MetricsStore> {
    if store.backend_name() == "embedded" {
        return store;
    }
    let cl = &config.cardinality_limits;
    let mut guard = CardinalityGuard::new(
        store,
        cl.max_unique_series_per_metric,
        cl.max_metrics_per_tenant,
    );
    guard.warnings = Some(telemetry.cardinality.warnings.clone());
    Forward::store(guard)
}

/// The outcome of a write of the `kept` points of a batch, as the whole batch sees it: this guard's
/// `rejected` and the inner store's rejections by their indexes in the batch.
fn merge(kept: &[usize], mut rejected: Vec<Rejection>, outcome: WriteOutcome) -> WriteOutcome {
    rejected.extend(outcome.rejected.into_iter().map(|mut r| {
        r.index = kept[r.index];
        r
    }));
    rejected.sort_by_key(|r| r.index);
    WriteOutcome {
        rejected,
        ..outcome
    }
}

/// The level at which a limit warns: 80 %, at least 1.
pub fn warn_level(limit: u64) -> u64 {
    ((limit as f64 * WARN_RATIO).ceil() as u64).max(1)
}

/// Which write of the inner store a write goes to.
#[derive(Clone, Copy)]
enum Rule {
    /// [`MetricsStore::write`].
    All,
    /// [`MetricsStore::write_samples`].
    NewerOnly,
}

/// Per-tenant counts.
#[derive(Default)]
struct TenantCounts {
    /// Series sketch of each metric the tenant has written since start.
    metrics: HashMap<String, MetricCounts>,
    /// Whether the metrics warning was logged (reset when the count falls back below the level).
    metrics_warned: bool,
    /// Whether `metrics` started from the backend's metric names.
    seeded: bool,
}

#[derive(Default)]
struct MetricCounts {
    series: Sketch,
    warned: bool,
}

/// Approximate cardinality limits in front of a backend.
pub struct CardinalityGuard {
    inner: Arc<dyn MetricsStore>,
    max_series: u64,
    max_metrics: u64,
    /// A std mutex: held only while a batch is checked, never across an await.
    tenants: Mutex<HashMap<Tenant, TenantCounts>>,
    /// Counts the 80 % warnings (`luminate_cardinality_limit_warnings_total`).
    warnings: Option<CardinalityWarnings>,
}

impl CardinalityGuard {
    /// Limits `inner` to `max_series` per metric and `max_metrics` per tenant.
    pub fn new(inner: Arc<dyn MetricsStore>, max_series: u64, max_metrics: u64) -> Self {
        Self {
            inner,
            max_series,
            max_metrics,
            tenants: Mutex::new(HashMap::new()),
            warnings: None,
        }
    }

    /// Starts the tenant's metric set from the backend's names, once (again on the next write if the
    /// backend could not answer).
    async fn seed(&self, tenant: &Tenant) {
        let seeded = {
            let tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
            tenants.get(tenant).is_some_and(|t| t.seeded)
        };
        if seeded {
            return;
        }
        let Ok(names) = self.inner.metric_names(tenant).await else {
            return;
        };
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let counts = tenants.entry(tenant.clone()).or_default();
        if !counts.seeded {
            counts.seeded = true;
            for name in names {
                counts.metrics.entry(name).or_default();
            }
        }
    }

    /// Stores the admitted points of `batch` through the inner store's write for `rule`; rejections
    /// keep their indexes in `batch`.
    async fn write_admitted(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        rule: Rule,
    ) -> Result<WriteOutcome, StoreError> {
        self.seed(tenant).await;
        let (kept, rejected) = self.admit(tenant, &batch);
        let write = |batch| async move {
            match rule {
                Rule::All => self.inner.write(tenant, batch).await,
                Rule::NewerOnly => self.inner.write_samples(tenant, batch).await,
            }
        };
        if rejected.is_empty() {
            return write(batch).await;
        }
        if kept.is_empty() {
            return Ok(WriteOutcome {
                rejected,
                ..WriteOutcome::default()
            });
        }
        let subset = PointBatch::from_points(kept.iter().map(|&i| batch.get(i).to_point()));
        let outcome = write(Arc::new(subset)).await?;
        Ok(merge(&kept, rejected, outcome))
    }

    /// [`CardinalityGuard::write_admitted`] of a keyed write: the answer is built from the outcome
    /// as the whole batch sees it (this guard's rejections and the inner store's, by their indexes in
    /// `batch`).
    async fn write_keyed_admitted(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        self.seed(tenant).await;
        let (kept, rejected) = self.admit(tenant, &batch);
        if rejected.is_empty() {
            return self.inner.write_keyed(tenant, batch, keyed).await;
        }
        if kept.is_empty() {
            let outcome = WriteOutcome {
                rejected,
                ..WriteOutcome::default()
            };
            let response = (keyed.respond)(&outcome);
            return Ok(KeyedOutcome::Stored { outcome, response });
        }
        let subset = PointBatch::from_points(kept.iter().map(|&i| batch.get(i).to_point()));
        let (respond, seen_kept, seen_rejected) = (keyed.respond, kept.clone(), rejected.clone());
        let keyed = KeyedWrite {
            key: keyed.key,
            respond: Box::new(move |inner: &WriteOutcome| {
                respond(&merge(&seen_kept, seen_rejected, inner.clone()))
            }),
        };
        Ok(
            match self
                .inner
                .write_keyed(tenant, Arc::new(subset), keyed)
                .await?
            {
                KeyedOutcome::Stored { outcome, response } => KeyedOutcome::Stored {
                    outcome: merge(&kept, rejected, outcome),
                    response,
                },
                replayed @ KeyedOutcome::Replayed(_) => replayed,
            },
        )
    }

    /// Checks every point; returns the indexes to store and the rejections.
    fn admit(&self, tenant: &Tenant, batch: &PointBatch) -> (Vec<usize>, Vec<Rejection>) {
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let counts = tenants.entry(tenant.clone()).or_default();
        let mut kept = Vec::with_capacity(batch.len());
        let mut rejected = Vec::new();
        let reject = |index: usize, message: String| Rejection {
            index,
            code: ErrorCode::CardinalityExceeded,
            message,
        };
        for index in 0..batch.len() {
            let point = batch.get(index);
            if !counts.metrics.contains_key(point.name) {
                if counts.metrics.len() as u64 >= self.max_metrics {
                    rejected.push(reject(
                        index,
                        format!(
                            "metric {:?} would exceed max_metrics_per_tenant of {}",
                            point.name, self.max_metrics
                        ),
                    ));
                    continue;
                }
                counts
                    .metrics
                    .insert(point.name.to_owned(), MetricCounts::default());
                let level = warn_level(self.max_metrics);
                if !counts.metrics_warned && counts.metrics.len() as u64 >= level {
                    counts.metrics_warned = true;
                    self.warn(
                        tenant,
                        None,
                        "max_metrics_per_tenant",
                        counts.metrics.len() as u64,
                        self.max_metrics,
                    );
                }
            }
            let Some(metric) = counts.metrics.get_mut(point.name) else {
                continue;
            };
            let mut h = hasher.build_hasher();
            for (k, v) in point.pairs() {
                k.hash(&mut h);
                v.hash(&mut h);
            }
            let hash = h.finish();
            if metric.series.would_grow(hash) {
                if metric.series.estimate() >= self.max_series {
                    rejected.push(reject(
                        index,
                        format!(
                            "new series of metric {:?} would exceed max_unique_series_per_metric of {} (approximate count)",
                            point.name, self.max_series
                        ),
                    ));
                    continue;
                }
                metric.series.insert(hash);
                let estimate = metric.series.estimate();
                if !metric.warned && estimate >= warn_level(self.max_series) {
                    metric.warned = true;
                    self.warn(
                        tenant,
                        Some(point.name),
                        "max_unique_series_per_metric",
                        estimate,
                        self.max_series,
                    );
                }
            }
            kept.push(index);
        }
        (kept, rejected)
    }

    /// Forgets a metric's counts after its data is deleted.
    fn forget(&self, tenant: &Tenant, metric: &str) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = tenants.get_mut(tenant) {
            t.metrics.remove(metric);
            if (t.metrics.len() as u64) < warn_level(self.max_metrics) {
                t.metrics_warned = false;
            }
        }
    }
}

impl CardinalityGuard {
    /// The 80 % warning: a log line and `luminate_cardinality_limit_warnings_total`.
    fn warn(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
        limit: &'static str,
        count: u64,
        max: u64,
    ) {
        tracing::warn!(
            tenant = %tenant,
            metric = metric.unwrap_or(""),
            limit,
            count,
            max,
            "tenant passed 80% of a cardinality limit"
        );
        if let Some(warnings) = &self.warnings {
            warnings.record(tenant, limit);
        }
    }
}

impl CardinalityGuard {
    /// Forgets the metric's counts if it has no points left. Whether series remain after a delete is
    /// not known here: if the metric is gone, its counts must go too.
    async fn forget_if_gone(&self, tenant: &Tenant, metric: &str) {
        if self
            .inner
            .dimension_keys(tenant, metric)
            .await
            .is_ok_and(|keys| keys.is_none())
        {
            self.forget(tenant, metric);
        }
    }
}

#[async_trait]
impl Decorate for CardinalityGuard {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    fn inner(&self) -> Result<&dyn MetricsStore, StoreError> {
        Ok(self.inner.as_ref())
    }

    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.write_admitted(tenant, batch, Rule::All).await
    }

    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.write_admitted(tenant, batch, Rule::NewerOnly).await
    }

    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        self.write_keyed_admitted(tenant, batch, keyed).await
    }

    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError> {
        let deleted = self.inner.delete_before(tenant, metric, before).await?;
        self.forget_if_gone(tenant, metric).await;
        Ok(deleted)
    }

    async fn expire_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        cutoff: TimestampMs,
    ) -> Result<u64, StoreError> {
        let deleted = self.inner.expire_before(tenant, metric, cutoff).await?;
        // Also when the store left the points to expire by themselves (a ClickHouse TTL): they went
        // in a merge since the last sweep, or go before the next.
        self.forget_if_gone(tenant, metric).await;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use luminate_model::{Dimensions, Point};

    use super::*;
    use crate::testing::MemoryStore;

    fn batch(metric: &str, customers: std::ops::Range<u32>) -> Arc<PointBatch> {
        let now = luminate_model::time::now_ms();
        Arc::new(PointBatch::from_points(customers.map(|c| Point {
            name: metric.to_owned(),
            timestamp: now,
            value: 1.0,
            dimensions: Dimensions::from_pairs([("customer_id".to_owned(), format!("c{c}"))]),
        })))
    }

    #[tokio::test]
    async fn series_past_the_limit_are_refused_and_the_rest_stored() {
        let inner: Arc<dyn MetricsStore> = Arc::new(MemoryStore::default());
        let guard = CardinalityGuard::new(inner.clone(), 10, 2);
        let t = Tenant::new("t");
        let outcome = guard.write(&t, batch("m", 0..15)).await.unwrap();
        assert_eq!(outcome.accepted, 10);
        let indexes: Vec<usize> = outcome.rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, (10..15).collect::<Vec<_>>());
        assert!(
            outcome.rejected[0]
                .message
                .contains("max_unique_series_per_metric of 10")
        );
        // Known series still write; a second metric fits, a third does not.
        assert_eq!(
            guard.write(&t, batch("m", 0..10)).await.unwrap().accepted,
            10
        );
        assert_eq!(guard.write(&t, batch("n", 0..1)).await.unwrap().accepted, 1);
        let third = guard.write(&t, batch("o", 0..1)).await.unwrap();
        assert_eq!(third.accepted, 0);
        assert_eq!(third.rejected[0].code, ErrorCode::CardinalityExceeded);
        assert!(
            third.rejected[0]
                .message
                .contains("max_metrics_per_tenant of 2")
        );
        // Another tenant has counts of its own.
        let other = guard
            .write(&Tenant::new("u"), batch("m", 0..10))
            .await
            .unwrap();
        assert_eq!(other.accepted, 10);
    }

    #[tokio::test]
    async fn a_keyed_write_is_answered_from_the_whole_batch_s_outcome() {
        let inner: Arc<dyn MetricsStore> = Arc::new(MemoryStore::default());
        let guard = CardinalityGuard::new(inner.clone(), 10, 2);
        let t = Tenant::new("t");
        // The answer lists the rejected indexes it was given, as the write route's does.
        let keyed = || KeyedWrite {
            key: "k".to_owned(),
            respond: Box::new(|o: &WriteOutcome| luminate_model::keyed::KeyedResponse {
                status: 207,
                body: format!(
                    "{}:{:?}",
                    o.accepted,
                    o.rejected.iter().map(|r| r.index).collect::<Vec<_>>()
                )
                .into_bytes()
                .into(),
            }),
        };
        let KeyedOutcome::Stored { outcome, response } = guard
            .write_keyed(&t, batch("m", 0..12), keyed())
            .await
            .unwrap()
        else {
            panic!("a first write is stored")
        };
        assert_eq!(outcome.accepted, 10);
        assert_eq!(&*response.body, b"10:[10, 11]");
        // Every point refused here: answered without reaching the inner store.
        guard.write(&t, batch("n", 0..1)).await.unwrap();
        let KeyedOutcome::Stored { response, .. } = guard
            .write_keyed(&t, batch("o", 0..2), keyed())
            .await
            .unwrap()
        else {
            panic!("nothing to replay")
        };
        assert_eq!(&*response.body, b"0:[0, 1]");
        assert_eq!(inner.metric_names(&t).await.unwrap(), ["m", "n"]);
    }

    #[tokio::test]
    async fn metrics_stored_before_start_count_against_the_limit() {
        let inner: Arc<dyn MetricsStore> = Arc::new(MemoryStore::default());
        let t = Tenant::new("t");
        inner.write(&t, batch("old", 0..1)).await.unwrap();
        let guard = CardinalityGuard::new(inner, 10, 2);
        assert_eq!(
            guard.write(&t, batch("new", 0..1)).await.unwrap().accepted,
            1
        );
        let refused = guard.write(&t, batch("third", 0..1)).await.unwrap();
        assert_eq!(refused.accepted, 0);
        assert!(
            refused.rejected[0]
                .message
                .contains("max_metrics_per_tenant of 2")
        );
        assert_eq!(
            guard.write(&t, batch("old", 5..6)).await.unwrap().accepted,
            1
        );
    }

    #[tokio::test]
    async fn passing_80_percent_is_counted_by_tenant_and_limit() {
        let mut registry = crate::telemetry::Registry::default();
        let telemetry = crate::telemetry::Telemetry::register(&mut registry, 10);
        let mut config = Config::default();
        config.cardinality_limits.max_unique_series_per_metric = 10;
        config.cardinality_limits.max_metrics_per_tenant = 5;
        let guard = wrap(Arc::new(MemoryStore::default()), &config, &telemetry);
        let t = Tenant::new("acme");
        guard.write(&t, batch("m", 0..7)).await.unwrap();
        for name in ["a", "b"] {
            guard.write(&t, batch(name, 0..1)).await.unwrap();
        }
        let count = |limit: &str| {
            let text = crate::telemetry::tests::exposition(&registry);
            let series = format!(
                "luminate_cardinality_limit_warnings_total{{tenant=\"acme\",limit=\"{limit}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&series))
                .map(|v| v.parse::<u64>().unwrap())
        };
        assert_eq!(count("max_unique_series_per_metric"), None, "7 of 10");
        assert_eq!(count("max_metrics_per_tenant"), None, "3 of 5");
        guard.write(&t, batch("m", 7..9)).await.unwrap();
        guard.write(&t, batch("c", 0..1)).await.unwrap();
        guard.write(&t, batch("d", 0..1)).await.unwrap();
        assert_eq!(
            count("max_unique_series_per_metric"),
            Some(1),
            "8 of 10, once"
        );
        assert_eq!(count("max_metrics_per_tenant"), Some(1), "4 of 5, once");
    }

    #[test]
    fn warning_levels() {
        assert_eq!(warn_level(10), 8);
        assert_eq!(warn_level(1_000_000), 800_000);
        assert_eq!(warn_level(1), 1);
    }

    #[tokio::test]
    async fn only_backends_without_limits_are_wrapped() {
        let telemetry =
            crate::telemetry::Telemetry::register(&mut crate::telemetry::Registry::default(), 10);
        let memory: Arc<dyn MetricsStore> = Arc::new(MemoryStore::default());
        assert!(!Arc::ptr_eq(
            &memory,
            &wrap(memory.clone(), &Config::default(), &telemetry)
        ));
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.embedded.data_dir = dir.path().to_owned();
        let embedded = crate::storage::build_store(&config, &telemetry)
            .await
            .unwrap()
            .store;
        assert!(Arc::ptr_eq(
            &embedded,
            &wrap(embedded.clone(), &config, &telemetry)
        ));
        embedded.close().await.unwrap();
    }
}
