//! forward: the one place that forwards every [`MetricsStore`] operation to a wrapped store. A
//! decorator — the self-metrics' timing ([`crate::telemetry`]), the cardinality guard, the ClickHouse
//! store that opens after start-up — implements [`Decorate`] with only what it changes, and
//! [`Forward`] makes it a `MetricsStore`. Adding an operation to the trait then means one forwarding
//! line here instead of one in every decorator.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use luminate_model::backup::{SnapshotError, StoreSnapshot};
use luminate_model::keyed::{KeyedOutcome, KeyedWrite};
use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{HealthCheck, RetentionOverride, StorageHealth};
use luminate_model::window::{
    GroupedValue, GroupedWindows, SeriesWindows, WindowRequest, WindowSteps,
};
use luminate_model::{
    ExportPlan, ExportStream, MetricsStore, PointBatch, QueryContext, QueryPlan, StoreError,
    Tenant, TimestampMs, WriteOutcome,
};

/// A forwarded call, boxed so that [`Decorate::around`] can wrap calls of every result type.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store operation, by the name the self-metrics give it (`operation` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// [`MetricsStore::write`].
    Write,
    /// [`MetricsStore::write_samples`].
    WriteSamples,
    /// [`MetricsStore::query`].
    Query,
    /// [`MetricsStore::query_memory`].
    QueryMemory,
    /// [`MetricsStore::series_windows`].
    SeriesWindows,
    /// [`MetricsStore::grouped_windows`].
    GroupedWindows,
    /// [`MetricsStore::series_windows_memory`].
    SeriesWindowsMemory,
    /// [`MetricsStore::metric_names`].
    MetricNames,
    /// [`MetricsStore::dimension_keys`].
    DimensionKeys,
    /// [`MetricsStore::dimension_values`].
    DimensionValues,
    /// [`MetricsStore::cardinality`].
    Cardinality,
    /// [`MetricsStore::delete_before`].
    DeleteBefore,
    /// [`MetricsStore::expire_before`].
    ExpireBefore,
    /// [`MetricsStore::set_retention`].
    SetRetention,
    /// [`MetricsStore::retention_overrides`].
    RetentionOverrides,
    /// [`MetricsStore::tenants`].
    Tenants,
    /// [`MetricsStore::settle`].
    Settle,
    /// [`MetricsStore::export`] (its start: the stream is not timed).
    Export,
}

impl Operation {
    /// The operation's label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Write => "write",
            Self::WriteSamples => "write_samples",
            Self::Query => "query",
            Self::QueryMemory => "query_memory",
            Self::SeriesWindows => "series_windows",
            Self::GroupedWindows => "grouped_windows",
            Self::SeriesWindowsMemory => "series_windows_memory",
            Self::MetricNames => "metric_names",
            Self::DimensionKeys => "dimension_keys",
            Self::DimensionValues => "dimension_values",
            Self::Cardinality => "cardinality",
            Self::DeleteBefore => "delete_before",
            Self::ExpireBefore => "expire_before",
            Self::SetRetention => "set_retention",
            Self::RetentionOverrides => "retention_overrides",
            Self::Tenants => "tenants",
            Self::Settle => "settle",
            Self::Export => "export",
        }
    }
}

/// What a decorator changes of the store it wraps. Every method but [`Decorate::inner`] and
/// [`Decorate::backend_name`] defaults to plain forwarding; the operations not listed here (queries,
/// discovery, retention) are always forwarded, through [`Decorate::around`].
#[async_trait]
pub trait Decorate: Send + Sync + 'static {
    /// The backend's name, as [`MetricsStore::backend_name`].
    fn backend_name(&self) -> &'static str;

    /// The wrapped store, or why it cannot be reached now (every forwarded call then fails with it).
    fn inner(&self) -> Result<&dyn MetricsStore, StoreError>;

    /// Runs one forwarded operation: the place to time or count every call. Health, checks and close
    /// do not pass through it.
    async fn around<'a, T: Send + 'a>(
        &'a self,
        _operation: Operation,
        call: Call<'a, T>,
    ) -> Result<T, StoreError> {
        call.await
    }

    /// [`MetricsStore::write`] of the wrapped store.
    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.inner()?.write(tenant, batch).await
    }

    /// [`MetricsStore::write_samples`] of the wrapped store.
    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        self.inner()?.write_samples(tenant, batch).await
    }

    /// [`MetricsStore::write_keyed`] of the wrapped store. A decorator that changes writes must change
    /// this one too (a keyed write does not pass through [`Decorate::write`]).
    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        self.inner()?.write_keyed(tenant, batch, keyed).await
    }

    /// [`MetricsStore::delete_before`] of the wrapped store.
    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError> {
        self.inner()?.delete_before(tenant, metric, before).await
    }

    /// [`MetricsStore::expire_before`] of the wrapped store.
    async fn expire_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        cutoff: TimestampMs,
    ) -> Result<u64, StoreError> {
        self.inner()?.expire_before(tenant, metric, cutoff).await
    }

    /// The wrapped store's health; failed with the reason when it cannot be reached.
    async fn health(&self) -> StorageHealth {
        match self.inner() {
            Ok(store) => store.health().await,
            Err(e) => StorageHealth::failed(e),
        }
    }

    /// The wrapped store's checks (none when it cannot be reached).
    fn checks(&self) -> Vec<HealthCheck> {
        self.inner().map(|s| s.checks()).unwrap_or_default()
    }

    /// The wrapped store's (never when it cannot be reached: a restart would not reach it either).
    fn restart_needed(&self) -> Option<String> {
        self.inner().ok().and_then(|s| s.restart_needed())
    }

    /// Closes the wrapped store.
    async fn close(&self) -> Result<(), StoreError> {
        self.inner()?.close().await
    }

    /// [`MetricsStore::snapshot`] of the wrapped store (not through [`Decorate::around`]: it is not a
    /// storage operation the self-metrics time, and its error is not a [`StoreError`]).
    async fn snapshot(&self) -> Result<Arc<dyn StoreSnapshot>, SnapshotError> {
        Ok(self.inner()?.snapshot().await?)
    }
}

/// A [`Decorate`] serving as a [`MetricsStore`].
pub struct Forward<D>(pub D);

impl<D: Decorate> Forward<D> {
    /// The decorator as a shareable store.
    pub fn store(decorator: D) -> Arc<dyn MetricsStore> {
        Arc::new(Self(decorator))
    }
}

#[async_trait]
impl<D: Decorate> MetricsStore for Forward<D> {
    fn backend_name(&self) -> &'static str {
        self.0.backend_name()
    }

    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        let d = &self.0;
        d.around(Operation::Write, Box::pin(d.write(tenant, batch)))
            .await
    }

    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        let d = &self.0;
        d.around(
            Operation::WriteSamples,
            Box::pin(d.write_samples(tenant, batch)),
        )
        .await
    }

    /// Timed as a write: it is one.
    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        let d = &self.0;
        d.around(
            Operation::Write,
            Box::pin(d.write_keyed(tenant, batch, keyed)),
        )
        .await
    }

    async fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, StoreError> {
        let d = &self.0;
        d.around(
            Operation::Query,
            Box::pin(async move { d.inner()?.query(tenant, plan, ctx).await }),
        )
        .await
    }

    async fn query_memory(&self, tenant: &Tenant, plan: &QueryPlan) -> Result<u64, StoreError> {
        let d = &self.0;
        d.around(
            Operation::QueryMemory,
            Box::pin(async move { d.inner()?.query_memory(tenant, plan).await }),
        )
        .await
    }

    async fn series_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        ctx: &QueryContext,
    ) -> Result<SeriesWindows, StoreError> {
        let d = &self.0;
        d.around(
            Operation::SeriesWindows,
            Box::pin(async move { d.inner()?.series_windows(tenant, request, steps, ctx).await }),
        )
        .await
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
        let d = &self.0;
        d.around(
            Operation::GroupedWindows,
            Box::pin(async move {
                d.inner()?
                    .grouped_windows(tenant, request, steps, group_by, value, ctx)
                    .await
            }),
        )
        .await
    }

    async fn series_windows_memory(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: usize,
        group_by: Option<&[String]>,
    ) -> Result<u64, StoreError> {
        let d = &self.0;
        d.around(
            Operation::SeriesWindowsMemory,
            Box::pin(async move {
                d.inner()?
                    .series_windows_memory(tenant, request, steps, group_by)
                    .await
            }),
        )
        .await
    }

    async fn metric_names(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
        let d = &self.0;
        d.around(
            Operation::MetricNames,
            Box::pin(async move { d.inner()?.metric_names(tenant).await }),
        )
        .await
    }

    async fn dimension_keys(
        &self,
        tenant: &Tenant,
        metric: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let d = &self.0;
        d.around(
            Operation::DimensionKeys,
            Box::pin(async move { d.inner()?.dimension_keys(tenant, metric).await }),
        )
        .await
    }

    async fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Option<Vec<ValueCount>>, StoreError> {
        let d = &self.0;
        d.around(
            Operation::DimensionValues,
            Box::pin(async move {
                d.inner()?
                    .dimension_values(tenant, metric, key, prefix, limit)
                    .await
            }),
        )
        .await
    }

    async fn cardinality(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
    ) -> Result<Vec<MetricCardinality>, StoreError> {
        let d = &self.0;
        d.around(
            Operation::Cardinality,
            Box::pin(async move { d.inner()?.cardinality(tenant, metric).await }),
        )
        .await
    }

    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError> {
        let d = &self.0;
        d.around(
            Operation::DeleteBefore,
            Box::pin(d.delete_before(tenant, metric, before)),
        )
        .await
    }

    async fn expire_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        cutoff: TimestampMs,
    ) -> Result<u64, StoreError> {
        let d = &self.0;
        d.around(
            Operation::ExpireBefore,
            Box::pin(d.expire_before(tenant, metric, cutoff)),
        )
        .await
    }

    async fn set_retention(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), StoreError> {
        let d = &self.0;
        d.around(
            Operation::SetRetention,
            Box::pin(async move { d.inner()?.set_retention(tenant, metric, retention).await }),
        )
        .await
    }

    async fn retention_overrides(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<RetentionOverride>, StoreError> {
        let d = &self.0;
        d.around(
            Operation::RetentionOverrides,
            Box::pin(async move { d.inner()?.retention_overrides(tenant).await }),
        )
        .await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let d = &self.0;
        d.around(
            Operation::Tenants,
            Box::pin(async move { d.inner()?.tenants().await }),
        )
        .await
    }

    async fn settle(&self) -> Result<(), StoreError> {
        let d = &self.0;
        d.around(
            Operation::Settle,
            Box::pin(async move { d.inner()?.settle().await }),
        )
        .await
    }

    async fn export(&self, tenant: &Tenant, plan: &ExportPlan) -> Result<ExportStream, StoreError> {
        let d = &self.0;
        d.around(
            Operation::Export,
            Box::pin(async move { d.inner()?.export(tenant, plan).await }),
        )
        .await
    }

    async fn health(&self) -> StorageHealth {
        self.0.health().await
    }

    fn checks(&self) -> Vec<HealthCheck> {
        self.0.checks()
    }

    fn restart_needed(&self) -> Option<String> {
        self.0.restart_needed()
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.0.close().await
    }

    async fn snapshot(&self) -> Result<Arc<dyn StoreSnapshot>, SnapshotError> {
        self.0.snapshot().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use luminate_model::store::HealthStatus;
    use luminate_model::{Dimensions, Point};

    use super::*;
    use crate::testing::MemoryStore;

    /// Forwards everything and writes down each operation `around` sees.
    struct Recorder {
        inner: Option<Arc<dyn MetricsStore>>,
        seen: Mutex<Vec<&'static str>>,
    }

    #[async_trait]
    impl Decorate for Recorder {
        fn backend_name(&self) -> &'static str {
            "recorder"
        }

        fn inner(&self) -> Result<&dyn MetricsStore, StoreError> {
            self.inner
                .as_deref()
                .ok_or_else(|| StoreError::Unavailable {
                    reason: "not open yet".to_owned(),
                })
        }

        async fn around<'a, T: Send + 'a>(
            &'a self,
            operation: Operation,
            call: Call<'a, T>,
        ) -> Result<T, StoreError> {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(operation.name());
            call.await
        }
    }

    fn recorder(inner: Option<Arc<dyn MetricsStore>>) -> Arc<Forward<Recorder>> {
        Arc::new(Forward(Recorder {
            inner,
            seen: Mutex::new(Vec::new()),
        }))
    }

    fn one_point(offset_ms: i64) -> Arc<PointBatch> {
        Arc::new(PointBatch::from_points([Point {
            name: "m".to_owned(),
            timestamp: luminate_model::time::now_ms() - 60_000 + offset_ms,
            value: 1.5,
            dimensions: Dimensions::from_pairs([("k".to_owned(), "v".to_owned())]),
        }]))
    }

    #[tokio::test]
    async fn every_operation_reaches_the_wrapped_store_through_around_once() {
        let inner = Arc::new(MemoryStore::default());
        let store = recorder(Some(inner.clone()));
        let t = Tenant::default_tenant();
        assert_eq!(store.write(&t, one_point(0)).await.unwrap().accepted, 1);
        assert_eq!(
            store
                .write_samples(&t, one_point(1))
                .await
                .unwrap()
                .accepted,
            1
        );
        assert_eq!(store.metric_names(&t).await.unwrap(), ["m"]);
        assert_eq!(
            store.dimension_keys(&t, "m").await.unwrap(),
            Some(vec!["k".to_owned()])
        );
        let values = store
            .dimension_values(&t, "m", "k", "", 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(values.len(), 1);
        assert_eq!(store.cardinality(&t, Some("m")).await.unwrap().len(), 1);
        assert_eq!(store.tenants().await.unwrap(), std::slice::from_ref(&t));
        store
            .set_retention(&t, "m", Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(store.retention_overrides(&t).await.unwrap().len(), 1);
        store.settle().await.unwrap();
        assert_eq!(store.delete_before(&t, "m", i64::MAX).await.unwrap(), 2);
        assert_eq!(inner.writes.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(
            *store.0.seen.lock().unwrap(),
            [
                "write",
                "write_samples",
                "metric_names",
                "dimension_keys",
                "dimension_values",
                "cardinality",
                "tenants",
                "set_retention",
                "retention_overrides",
                "settle",
                "delete_before",
            ]
        );
        // Health, checks and close are forwarded without passing through `around`.
        assert_eq!(store.health().await.status, HealthStatus::Healthy);
        store.close().await.unwrap();
        assert_eq!(store.0.seen.lock().unwrap().len(), 11);
    }

    #[tokio::test]
    async fn a_snapshot_is_the_wrapped_stores_and_bypasses_around() {
        let store = recorder(Some(Arc::new(MemoryStore::default())));
        match store.snapshot().await {
            Err(SnapshotError::Unsupported { backend, .. }) => {
                assert_eq!(backend, MemoryStore::default().backend_name());
            }
            other => panic!("{:?}", other.map(|s| s.id().to_owned())),
        }
        assert!(store.0.seen.lock().unwrap().is_empty());
        let unreachable = recorder(None);
        assert!(matches!(
            unreachable.snapshot().await.map(|_| ()),
            Err(SnapshotError::Store(StoreError::Unavailable { .. }))
        ));
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_reached_fails_every_call_with_the_reason() {
        let store = recorder(None);
        let t = Tenant::default_tenant();
        let unavailable = |e: StoreError| {
            assert_eq!(
                e,
                StoreError::Unavailable {
                    reason: "not open yet".to_owned()
                }
            );
        };
        unavailable(store.write(&t, one_point(0)).await.unwrap_err());
        unavailable(store.metric_names(&t).await.unwrap_err());
        unavailable(store.delete_before(&t, "m", 0).await.unwrap_err());
        let health = store.health().await;
        assert_eq!(health.status, HealthStatus::Unavailable);
        assert_eq!(health.error.as_deref(), Some("not open yet"));
        assert!(store.checks().is_empty());
    }
}
