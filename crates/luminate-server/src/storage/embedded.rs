//! [`EmbeddedStore`]: the [`MetricsStore`] over the embedded engine, and the engine's settings from the
//! configuration.
//!
//! The engine's API is synchronous (it may fsync, scan or wait for group commit), so every call runs on
//! tokio's blocking pool and never stalls the threads that serve requests. Owns no query logic. Its
//! health checks are `disk_space` (the data directory's filesystem, under the `health` section's
//! floors: [`crate::health::disk_space`]), `wal_writable` ([`Engine::probe_wal`]) and `parts_intact`
//! (warns, naming the files, while damaged parts are in quarantine: [`Engine::quarantined`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use luminate_engine::{CardinalityLimits, Engine, EngineConfig, KeyWindow, SyncPolicy};
use luminate_model::backup::{SnapshotError, StoreSnapshot};
use luminate_model::keyed::{KeyedOutcome, KeyedWrite};
use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{CheckOutcome, HealthCheck, RetentionOverride, StorageHealth};
use luminate_model::window::{
    GroupedValue, GroupedWindows, SeriesWindows, WindowRequest, WindowSteps,
};
use luminate_model::{
    ExportBatch, ExportPlan, ExportStream, MetricsStore, PointBatch, QueryContext, QueryPlan,
    StoreError, Tenant, TimestampMs, WriteOutcome,
};
use tokio::sync::mpsc;

use super::OpenError;
use crate::config::{Config, HealthConfig, SyncMode};
use crate::health::{self, DISK_SPACE_CHECK};

/// The name of the check that the WAL directory accepts a new file.
pub const WAL_WRITABLE_CHECK: &str = "wal_writable";
/// The name of the check that no part is in quarantine.
pub const PARTS_INTACT_CHECK: &str = "parts_intact";

/// The engine's settings from `storage.embedded` and `cardinality_limits`.
pub fn engine_config(config: &Config) -> EngineConfig {
    let e = &config.storage.embedded;
    let sync = match e.sync {
        SyncMode::Always => SyncPolicy::Always,
        SyncMode::Interval => SyncPolicy::Interval(e.sync_interval),
        SyncMode::None => SyncPolicy::None,
    };
    let limits = CardinalityLimits {
        max_series_per_metric: config.cardinality_limits.max_unique_series_per_metric,
        max_metrics_per_tenant: config.cardinality_limits.max_metrics_per_tenant,
    };
    EngineConfig {
        data_dir: e.data_dir.clone(),
        sync,
        wal_segment_bytes: e.wal_segment_size,
        limits,
        head_max_points: e.head_max_points,
        head_max_age: e.head_max_age,
        keys: KeyWindow {
            ttl: config.batch_write.idempotency_key_ttl,
            capacity: config.batch_write.idempotency_max_keys,
        },
        ..EngineConfig::new(&e.data_dir)
    }
}

/// Batches an export holds between the engine's thread and the HTTP body: the engine reads on while
/// one is being sent and one waits, and blocks after that.
const EXPORT_QUEUE: usize = 2;

/// The receiving end of an export's queue, as the store's stream of batches.
struct QueuedBatches(mpsc::Receiver<Result<ExportBatch, StoreError>>);

impl futures_core::Stream for QueuedBatches {
    type Item = Result<ExportBatch, StoreError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// [`MetricsStore`] over the embedded engine.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    engine: Arc<Engine>,
    /// For the `disk_space` check.
    data_dir: PathBuf,
    /// The `disk_space` check's floors.
    health: HealthConfig,
}

/// Runs `f` on the blocking pool; a panic inside the engine becomes an internal error, not a crash.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal {
            message: format!("engine task failed: {e}"),
        })
}

impl EmbeddedStore {
    /// The store over an engine already open on `data_dir`.
    pub fn from_engine(engine: Arc<Engine>, data_dir: PathBuf, health: HealthConfig) -> Self {
        Self {
            engine,
            data_dir,
            health,
        }
    }

    /// The engine (for its gauges).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Opens (locks, replays) the engine; the engine logs what recovery found. `health` holds the
    /// floors of the `disk_space` check.
    pub async fn open(config: EngineConfig, health: HealthConfig) -> Result<Self, OpenError> {
        let data_dir = config.data_dir.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(config))
            .await
            .map_err(|e| OpenError::Panicked(e.to_string()))?
            .map_err(|source| OpenError::Engine {
                data_dir: data_dir.clone(),
                source,
            })?;
        Ok(Self {
            engine: Arc::new(engine),
            data_dir,
            health,
        })
    }
}

/// `warn` (the server is `degraded`, still serving) while parts are in quarantine, naming each file and
/// why: the answers over them are partial, and an operator decides what becomes of them
/// (docs/operations.md, *Damage, check and repair*). Not `fail`: taking the node out of rotation would
/// not bring the points back, and everything else is served.
fn parts_intact(quarantined: &[luminate_engine::QuarantinedPart]) -> CheckOutcome {
    if quarantined.is_empty() {
        return CheckOutcome::pass();
    }
    let files: Vec<String> = quarantined
        .iter()
        .map(|r| format!("quarantine/{} ({}): {}", r.file, r.held(), r.reason))
        .collect();
    CheckOutcome::warn(format!(
        "{} damaged part{} set aside, {} points missing from answers: {}",
        quarantined.len(),
        if quarantined.len() == 1 { "" } else { "s" },
        quarantined.iter().map(|r| r.rows).sum::<u64>(),
        files.join("; ")
    ))
}

#[async_trait]
impl MetricsStore for EmbeddedStore {
    fn backend_name(&self) -> &'static str {
        "embedded"
    }

    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        let (engine, tenant) = (self.engine.clone(), tenant.clone());
        Ok(blocking(move || engine.write_batch(&tenant, batch)).await??)
    }

    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        let (engine, tenant) = (self.engine.clone(), tenant.clone());
        Ok(blocking(move || engine.write_samples(&tenant, batch)).await??)
    }

    /// [`Engine::write_keyed`]: the key and the answer logged with the batch, so a retry after a
    /// crash is answered from the WAL instead of stored again.
    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        let (engine, tenant) = (self.engine.clone(), tenant.clone());
        Ok(blocking(move || engine.write_keyed(&tenant, batch, keyed)).await??)
    }

    async fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, StoreError> {
        let (engine, tenant, plan, ctx) = (
            self.engine.clone(),
            tenant.clone(),
            plan.clone(),
            ctx.clone(),
        );
        Ok(blocking(move || engine.query(&tenant, &plan, &ctx)).await??)
    }

    async fn query_memory(&self, tenant: &Tenant, plan: &QueryPlan) -> Result<u64, StoreError> {
        let (engine, tenant, plan) = (self.engine.clone(), tenant.clone(), plan.clone());
        blocking(move || engine.query_memory(&tenant, &plan)).await
    }

    async fn series_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        ctx: &QueryContext,
    ) -> Result<SeriesWindows, StoreError> {
        let (engine, tenant, request, steps, ctx) = (
            self.engine.clone(),
            tenant.clone(),
            request.clone(),
            *steps,
            ctx.clone(),
        );
        Ok(blocking(move || engine.series_windows(&tenant, &request, &steps, &ctx)).await??)
    }

    async fn grouped_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        group_by: &[String],
        value: GroupedValue,
        ctx: &QueryContext,
    ) -> Result<GroupedWindows, StoreError> {
        let (engine, tenant, request, steps, group_by, ctx) = (
            self.engine.clone(),
            tenant.clone(),
            request.clone(),
            *steps,
            group_by.to_vec(),
            ctx.clone(),
        );
        Ok(blocking(move || {
            engine.grouped_windows(&tenant, &request, &steps, &group_by, &value, &ctx)
        })
        .await??)
    }

    async fn series_windows_memory(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: usize,
        group_by: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let (engine, tenant, request) = (self.engine.clone(), tenant.clone(), request.clone());
        let group_by = group_by.map(<[String]>::to_vec);
        blocking(move || {
            engine.series_windows_memory(&tenant, &request, steps, group_by.as_deref())
        })
        .await
    }

    async fn metric_names(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
        let (engine, tenant) = (self.engine.clone(), tenant.clone());
        blocking(move || engine.metric_names(&tenant)).await
    }

    async fn dimension_keys(
        &self,
        tenant: &Tenant,
        metric: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let (engine, tenant, metric) = (self.engine.clone(), tenant.clone(), metric.to_owned());
        blocking(move || engine.dimension_keys(&tenant, &metric)).await
    }

    async fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Option<Vec<ValueCount>>, StoreError> {
        let engine = self.engine.clone();
        let (tenant, metric, key, prefix) = (
            tenant.clone(),
            metric.to_owned(),
            key.to_owned(),
            prefix.to_owned(),
        );
        blocking(move || engine.dimension_values(&tenant, &metric, &key, &prefix, limit)).await
    }

    async fn cardinality(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
    ) -> Result<Vec<MetricCardinality>, StoreError> {
        let (engine, tenant, metric) = (
            self.engine.clone(),
            tenant.clone(),
            metric.map(str::to_owned),
        );
        blocking(move || engine.cardinality(&tenant, metric.as_deref())).await
    }

    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError> {
        let (engine, tenant, metric) = (self.engine.clone(), tenant.clone(), metric.to_owned());
        Ok(blocking(move || engine.delete_before(&tenant, &metric, before)).await??)
    }

    async fn set_retention(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), StoreError> {
        let (engine, tenant, metric) = (self.engine.clone(), tenant.clone(), metric.to_owned());
        Ok(blocking(move || engine.set_retention(&tenant, &metric, retention)).await??)
    }

    async fn retention_overrides(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<RetentionOverride>, StoreError> {
        let (engine, tenant) = (self.engine.clone(), tenant.clone());
        blocking(move || engine.retention_overrides(&tenant)).await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let engine = self.engine.clone();
        blocking(move || engine.tenants()).await
    }

    /// [`Engine::settle`]: the head flushed, each partition merged into one part.
    async fn settle(&self) -> Result<(), StoreError> {
        let engine = self.engine.clone();
        Ok(blocking(move || engine.settle()).await??)
    }

    async fn health(&self) -> StorageHealth {
        let engine = self.engine.clone();
        blocking(move || engine.health())
            .await
            .unwrap_or_else(|e| StorageHealth::unavailable(e.to_string()))
    }

    fn restart_needed(&self) -> Option<String> {
        self.engine
            .poisoned()
            .map(|reason| format!("engine is poisoned after a failed write or fsync: {reason}"))
    }

    fn checks(&self) -> Vec<HealthCheck> {
        let (data_dir, floors) = (self.data_dir.clone(), self.health.clone());
        let engine = self.engine.clone();
        let quarantined = self.engine.quarantined();
        vec![
            HealthCheck::new(DISK_SPACE_CHECK, async move {
                blocking(move || health::disk_space(&data_dir, &floors))
                    .await
                    .unwrap_or_else(|e| CheckOutcome::fail(e.to_string()))
            }),
            HealthCheck::new(WAL_WRITABLE_CHECK, async move {
                match blocking(move || engine.probe_wal()).await {
                    Ok(Ok(dir)) => CheckOutcome::pass().with_message(format!(
                        "created, wrote, fsynced and removed a file in {}",
                        dir.display()
                    )),
                    Ok(Err(e)) => CheckOutcome::fail(e.to_string()),
                    Err(e) => CheckOutcome::fail(e.to_string()),
                }
            }),
            HealthCheck::new(
                PARTS_INTACT_CHECK,
                async move { parts_intact(&quarantined) },
            ),
        ]
    }

    /// [`Engine::snapshot`]: the data directory's files pinned by hard links until dropped.
    async fn snapshot(&self) -> Result<Arc<dyn StoreSnapshot>, SnapshotError> {
        let engine = self.engine.clone();
        let snapshot = blocking(move || engine.snapshot())
            .await?
            .map_err(StoreError::from)?;
        Ok(Arc::new(snapshot))
    }

    /// Makes everything written durable. A poisoned engine can make nothing more durable (a retried
    /// fsync proves nothing: docs/engine.md, "Failure classes") and has already answered every write
    /// since with the reason: stopping it is the clean stop an operator asked for, so the reason is
    /// logged and the server exits 0 after SIGTERM as after any other.
    async fn close(&self) -> Result<(), StoreError> {
        let engine = self.engine.clone();
        if let Some(reason) = self.engine.poisoned() {
            tracing::error!(
                %reason,
                "closing a poisoned engine: writes were refused since this failure; the next \
                 start replays the WAL"
            );
            return Ok(());
        }
        Ok(blocking(move || engine.sync()).await??)
    }

    /// [`Engine::export`] on a thread of the blocking pool, feeding a queue of [`EXPORT_QUEUE`]
    /// batches: the engine waits while the queue is full and stops when the stream is dropped.
    async fn export(&self, tenant: &Tenant, plan: &ExportPlan) -> Result<ExportStream, StoreError> {
        let (engine, tenant, plan) = (self.engine.clone(), tenant.clone(), plan.clone());
        let (queue, batches) = mpsc::channel(EXPORT_QUEUE);
        tokio::task::spawn_blocking(move || {
            let done = engine.export(&tenant, &plan, |batch| {
                queue.blocking_send(Ok(batch)).is_ok()
            });
            if let Err(e) = done {
                let _ = queue.blocking_send(Err(e.into()));
            }
        });
        Ok(Box::pin(QueuedBatches(batches)))
    }
}
