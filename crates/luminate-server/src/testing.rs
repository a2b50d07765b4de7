//! Test doubles: [`MemoryStore`], a `MetricsStore` over the model's reference evaluator, with knobs to
//! make queries slow and to refuse points as a backend's cardinality limits would. Lets the routes be
//! tested without the embedded engine.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use luminate_model::reference::ReferenceStore;
use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{
    CheckOutcome, HealthCheck, HealthStatus, Rejection, RetentionOverride, StorageHealth,
};
use luminate_model::{
    Dimensions, ErrorCode, MetricsStore, PointBatch, QueryContext, QueryPlan, StoreError, Tenant,
    TimestampMs, WriteOutcome,
};

/// The server's router over `store`, configured by `config`, with a fresh registry.
pub(crate) fn router_over(store: Arc<MemoryStore>, config: crate::config::Config) -> axum::Router {
    crate::app::router(Arc::new(
        crate::app::AppState::new(
            Arc::new(config),
            store,
            prometheus_client::registry::Registry::default(),
        )
        .expect("a test configuration without keys to read"),
    ))
}

/// A series: tenant, metric and dimensions.
type SeriesKey = (Tenant, String, Dimensions);

/// In-memory store.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<ReferenceStore>,
    tenants: Mutex<BTreeSet<Tenant>>,
    overrides: Mutex<HashMap<(Tenant, String), Duration>>,
    /// Queries wait this long (checking their context) before answering.
    pub query_delay: Option<Duration>,
    /// Points whose name starts with this are refused with `CARDINALITY_EXCEEDED`.
    pub refuse_prefix: Option<String>,
    /// Set when a slow query saw its context cancelled.
    pub saw_cancel: Arc<AtomicBool>,
    /// Calls to `write` and `write_samples`.
    pub writes: AtomicUsize,
    /// Writes wait this long before storing anything.
    pub write_delay: Option<Duration>,
    /// The newest (timestamp, value) of every series, for `write_samples`' rule.
    newest: Mutex<HashMap<SeriesKey, (TimestampMs, f64)>>,
    /// While set, every `write` fails as an unreachable backend would.
    pub unavailable: AtomicBool,
    /// Named health checks, each answering its outcome after its delay.
    pub health_checks: Vec<(&'static str, CheckOutcome, Duration)>,
    /// What `restart_needed` answers.
    pub restart_reason: Mutex<Option<String>>,
}

impl MemoryStore {
    /// How many points of `metric` the store holds for `tenant`, at any time.
    pub fn points_of(&self, tenant: &str, metric: &str) -> u64 {
        use luminate_model::query::{Aggregation, QueryKind};
        let plan = luminate_model::QueryPlan {
            kind: QueryKind::Aggregate(Aggregation::Count),
            metric: metric.into(),
            start: i64::MIN,
            end: i64::MAX,
            filters: vec![],
            group_by: vec![],
            interval_ms: None,
            limit: 1,
            timeout: Duration::from_secs(1),
        };
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        match data.query(&Tenant::new(tenant), &plan) {
            QueryResult::Aggregate { results, .. } => results.iter().map(|g| g.count).sum(),
            other => panic!("a count answered {other:?}"),
        }
    }

    /// A store whose queries take `delay` (checking their context meanwhile).
    pub fn slow(delay: Duration) -> Self {
        Self {
            query_delay: Some(delay),
            ..Self::default()
        }
    }

    /// A store whose writes take `delay` before storing anything.
    pub fn slow_writes(delay: Duration) -> Self {
        Self {
            write_delay: Some(delay),
            ..Self::default()
        }
    }

    /// A store that refuses points whose name starts with `prefix`.
    pub fn refusing(prefix: &str) -> Self {
        Self {
            refuse_prefix: Some(prefix.to_owned()),
            ..Self::default()
        }
    }

    /// A store with these named health checks, each answering its outcome after its delay.
    pub fn with_checks(checks: Vec<(&'static str, CheckOutcome, Duration)>) -> Self {
        Self {
            health_checks: checks,
            ..Self::default()
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores what a write keeps of `batch`: every point, or (`newer_only`) the samples newer than their
    /// series' newest, as the backends' `write_samples` does (a model of it, not its implementation).
    fn store(
        &self,
        tenant: &Tenant,
        batch: &PointBatch,
        newer_only: bool,
    ) -> Result<WriteOutcome, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                reason: "the test made it unavailable".into(),
            });
        }
        let mut outcome = WriteOutcome::default();
        let mut data = Self::lock(&self.data);
        let mut newest = Self::lock(&self.newest);
        for (index, point) in batch.iter().enumerate() {
            if self
                .refuse_prefix
                .as_deref()
                .is_some_and(|p| point.name.starts_with(p))
            {
                outcome.rejected.push(Rejection {
                    index,
                    code: ErrorCode::CardinalityExceeded,
                    message: "too many series".into(),
                });
                continue;
            }
            let key = (tenant.clone(), point.name.to_owned(), point.dimensions());
            let sample = (point.timestamp, point.value);
            match newest.get(&key) {
                Some(&n) if newer_only && sample == n => outcome.duplicates += 1,
                Some(&(t, _)) if newer_only && point.timestamp <= t => outcome.out_of_order += 1,
                known => {
                    if known.is_none_or(|&n| n < sample) {
                        newest.insert(key, sample);
                    }
                    data.insert(tenant, point.to_point());
                    outcome.accepted += 1;
                }
            }
        }
        Self::lock(&self.tenants).insert(tenant.clone());
        Ok(outcome)
    }
}

#[async_trait]
impl MetricsStore for MemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        if let Some(delay) = self.write_delay {
            tokio::time::sleep(delay).await;
        }
        self.store(tenant, &batch, false)
    }

    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.store(tenant, &batch, true)
    }

    async fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, StoreError> {
        if let Some(delay) = self.query_delay {
            // Like a backend's worker thread, the slow part runs apart from the request's future, so it
            // goes on after the route stops waiting — unless it honours the cancellation.
            let (ctx, saw_cancel) = (ctx.clone(), self.saw_cancel.clone());
            let worker = tokio::spawn(async move {
                let until = tokio::time::Instant::now() + delay;
                while tokio::time::Instant::now() < until {
                    if let Err(e) = ctx.check() {
                        saw_cancel.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(())
            });
            worker.await.map_err(|e| StoreError::Internal {
                message: e.to_string(),
            })??;
        }
        Ok(Self::lock(&self.data).query(tenant, plan))
    }

    async fn metric_names(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
        Ok(Self::lock(&self.data).metric_names(tenant))
    }

    async fn dimension_keys(
        &self,
        tenant: &Tenant,
        metric: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(Self::lock(&self.data).dimension_keys(tenant, metric))
    }

    async fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Option<Vec<ValueCount>>, StoreError> {
        Ok(Self::lock(&self.data).dimension_values(tenant, metric, key, prefix, limit))
    }

    async fn cardinality(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
    ) -> Result<Vec<MetricCardinality>, StoreError> {
        Ok(Self::lock(&self.data).cardinality(tenant, metric))
    }

    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError> {
        Ok(Self::lock(&self.data).delete_before(tenant, metric, before))
    }

    async fn set_retention(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), StoreError> {
        Self::lock(&self.overrides).insert((tenant.clone(), metric.to_owned()), retention);
        Self::lock(&self.tenants).insert(tenant.clone());
        Ok(())
    }

    /// Nothing to settle: the points are kept as they arrived.
    async fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn retention_overrides(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<RetentionOverride>, StoreError> {
        let overrides = Self::lock(&self.overrides);
        let mut out: Vec<RetentionOverride> = overrides
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, metric), retention)| RetentionOverride {
                metric: metric.clone(),
                retention: *retention,
            })
            .collect();
        out.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(out)
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        Ok(Self::lock(&self.tenants).iter().cloned().collect())
    }

    async fn health(&self) -> StorageHealth {
        StorageHealth {
            status: HealthStatus::Healthy,
            disk_used_bytes: Some(0),
            error: None,
        }
    }

    fn restart_needed(&self) -> Option<String> {
        Self::lock(&self.restart_reason).clone()
    }

    fn checks(&self) -> Vec<HealthCheck> {
        self.health_checks
            .iter()
            .map(|(name, outcome, delay)| {
                let (outcome, delay) = (outcome.clone(), *delay);
                HealthCheck::new(name, async move {
                    tokio::time::sleep(delay).await;
                    outcome
                })
            })
            .collect()
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
