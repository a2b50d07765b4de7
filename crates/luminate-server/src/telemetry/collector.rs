//! The background collector: every `metrics.interval` it refreshes the figures that cost more than a
//! scrape should pay — storage health and size, the engine's gauges, the filesystem's free space, and
//! cardinality per tenant and per metric with its usage of the `cardinality_limits` — and caches them in
//! gauges. A scrape only reads those gauges, so scraping stays cheap and a slow backend cannot slow it.
//!
//! Cardinality comes from the store's cardinality explorer (`MetricsStore::cardinality`) for every
//! tenant: on the embedded engine a walk of the in-memory index, on ClickHouse one query per tenant.
//! Only the `metrics.top_metrics` metrics with the most series get a `metric` label; usage ratios are
//! per tenant (folded tenants under `other` take the maximum), so their label sets stay bounded too.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use luminate_engine::Engine;
use luminate_model::MetricsStore;
use luminate_model::Tenant;
use luminate_model::store::HealthStatus;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use super::storage::BackendLabels;
use super::{
    FloatGauge, LimitLabels, MetricLabels, Registrar, Telemetry, TenantLabelCap, TenantLabels,
};
use crate::disk::disk_space;

/// Longest wait for the store's health or cardinality in one collection.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The `limit` label of the series-per-metric limit.
pub const SERIES_PER_METRIC: &str = "max_unique_series_per_metric";
/// The `limit` label of the metrics-per-tenant limit.
pub const METRICS_PER_TENANT: &str = "max_metrics_per_tenant";

/// Cardinality gauges, and the counter of 80 % warnings.
#[derive(Debug, Clone)]
pub(crate) struct CardinalityMetrics {
    series: Family<TenantLabels, Gauge>,
    metrics: Family<TenantLabels, Gauge>,
    metric_series: Family<MetricLabels, Gauge>,
    usage: Family<LimitLabels, FloatGauge>,
    pub warnings: CardinalityWarnings,
}

/// Counts the 80 % warnings where they are logged: in the engine's writer (through its observer) and
/// in the ClickHouse backend's cardinality guard.
#[derive(Debug, Clone)]
pub(crate) struct CardinalityWarnings {
    family: Family<LimitLabels, Counter>,
    tenants: Arc<TenantLabelCap>,
}

impl CardinalityWarnings {
    /// `tenant` passed 80 % of `limit`.
    pub(crate) fn record(&self, tenant: &Tenant, limit: &'static str) {
        self.family
            .get_or_create(&LimitLabels {
                tenant: self.tenants.label(tenant),
                limit,
            })
            .inc();
    }
}

impl CardinalityMetrics {
    pub(super) fn register(r: &mut Registrar<'_>, tenants: Arc<TenantLabelCap>) -> Self {
        Self {
            warnings: CardinalityWarnings {
                family: r.add(
                    "cardinality_limit_warnings",
                    "Times a tenant passed 80 % of a cardinality limit (each also logged), by tenant and limit",
                    &["tenant", "limit"],
                    Family::default(),
                ),
                tenants,
            },
            series: r.add(
                "series_count",
                "Series with stored points, by tenant",
                &["tenant"],
                Family::default(),
            ),
            metrics: r.add(
                "cardinality_metrics",
                "Metrics with stored points, by tenant",
                &["tenant"],
                Family::default(),
            ),
            metric_series: r.add(
                "cardinality_by_metric",
                "Series of the metrics.top_metrics metrics with the most series, by tenant and metric",
                &["tenant", "metric"],
                Family::default(),
            ),
            usage: r.add(
                "cardinality_limit_usage_ratio",
                "Use of a cardinality limit as a fraction of it, by tenant and limit (max_unique_series_per_metric: the tenant's largest metric)",
                &["tenant", "limit"],
                Family::default(),
            ),
        }
    }
}

/// What the collector needs besides the store.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The embedded engine, when that is the backend: its gauges and its data directory's filesystem.
    pub engine: Option<(Arc<Engine>, PathBuf)>,
    /// `cardinality_limits.max_unique_series_per_metric`.
    pub max_series_per_metric: u64,
    /// `cardinality_limits.max_metrics_per_tenant`.
    pub max_metrics_per_tenant: u64,
    /// `metrics.top_metrics`.
    pub top_metrics: usize,
}

/// Refreshes the gauges of `telemetry` from `store`.
#[derive(Clone)]
pub struct Collector {
    store: Arc<dyn MetricsStore>,
    telemetry: Telemetry,
    config: CollectorConfig,
}

impl Collector {
    /// A collector of `store`'s figures into `telemetry`.
    pub fn new(
        store: Arc<dyn MetricsStore>,
        telemetry: Telemetry,
        config: CollectorConfig,
    ) -> Self {
        Self {
            store,
            telemetry,
            config,
        }
    }

    /// Collects now, then every `interval` until `stop` turns true.
    pub fn spawn(
        self,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => self.collect().await,
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
            }
        })
    }

    /// One refresh of every gauge, and a snapshot for the overview. Figures that could not be read
    /// this round keep their previous values in the overview.
    pub async fn collect(&self) {
        let started = Instant::now();
        let mut summary = self.telemetry.overview().collected.unwrap_or_default();
        (summary.storage_up, summary.disk_bytes) = self.collect_storage().await;
        if let Some((engine, data_dir)) = self.config.engine.clone()
            && let Some(available) = self.collect_engine(engine, data_dir).await
        {
            summary.filesystem_available_bytes = Some(available);
        }
        if let Some(totals) = self.collect_cardinality().await {
            (summary.series, summary.metrics, summary.tenants) = totals;
        }
        summary.at_ms = luminate_model::time::now_ms();
        self.telemetry.totals.collected(summary);
        self.telemetry
            .collection_duration
            .set(started.elapsed().as_secs_f64());
    }

    /// Storage health and size: (up, bytes on disk).
    async fn collect_storage(&self) -> (bool, Option<u64>) {
        let backend = BackendLabels {
            backend: self.store.backend_name(),
        };
        let storage = &self.telemetry.storage;
        match tokio::time::timeout(CALL_TIMEOUT, self.store.health()).await {
            Ok(health) => {
                let up = health.status == HealthStatus::Healthy;
                storage.health.get_or_create(&backend).set(i64::from(up));
                if let Some(bytes) = health.disk_used_bytes {
                    storage
                        .size_bytes
                        .get_or_create(&backend)
                        .set(saturate(bytes));
                }
                (up, health.disk_used_bytes)
            }
            Err(_) => {
                storage.health.get_or_create(&backend).set(0);
                (false, None)
            }
        }
    }

    /// The engine's gauges and the filesystem's; the bytes available, when statvfs answered.
    async fn collect_engine(&self, engine: Arc<Engine>, data_dir: PathBuf) -> Option<u64> {
        let read = tokio::task::spawn_blocking(move || (engine.stats(), disk_space(&data_dir)));
        let (stats, space) = read.await.ok()?;
        self.telemetry.engine.set_stats(&stats);
        let backend = BackendLabels {
            backend: "embedded",
        };
        let space = space.ok()?;
        let storage = &self.telemetry.storage;
        storage
            .filesystem_size
            .get_or_create(&backend)
            .set(saturate(space.total_bytes));
        storage
            .filesystem_available
            .get_or_create(&backend)
            .set(saturate(space.available_bytes));
        Some(space.available_bytes)
    }

    /// Cardinality gauges; the totals (series, metrics, tenants with data) when the store answered.
    async fn collect_cardinality(&self) -> Option<(u64, u64, u64)> {
        let Ok(Ok(tenants)) = tokio::time::timeout(CALL_TIMEOUT, self.store.tenants()).await else {
            // The store is unavailable: the last figures stay (storage_health says why they are stale).
            return None;
        };
        let mut totals = (0, 0, 0);
        let mut per_label: HashMap<String, TenantFigures> = HashMap::new();
        let mut metrics: Vec<(u64, String, String)> = Vec::new();
        for tenant in &tenants {
            let Ok(Ok(cardinality)) =
                tokio::time::timeout(CALL_TIMEOUT, self.store.cardinality(tenant, None)).await
            else {
                continue;
            };
            let label = self.telemetry.tenant_label(tenant);
            let figures = per_label.entry(label.clone()).or_default();
            let live: Vec<_> = cardinality.iter().filter(|m| m.series > 0).collect();
            totals.0 += live.iter().map(|m| m.series).sum::<u64>();
            totals.1 += live.len() as u64;
            totals.2 += u64::from(!live.is_empty());
            figures.series += live.iter().map(|m| m.series).sum::<u64>();
            figures.metrics += live.len() as u64;
            let largest = live.iter().map(|m| m.series).max().unwrap_or(0);
            figures.series_usage = figures
                .series_usage
                .max(ratio(largest, self.config.max_series_per_metric));
            figures.metrics_usage = figures
                .metrics_usage
                .max(ratio(live.len() as u64, self.config.max_metrics_per_tenant));
            metrics.extend(
                live.iter()
                    .map(|m| (m.series, label.clone(), m.metric.clone())),
            );
        }
        let gauges = &self.telemetry.cardinality;
        // Tenants and metrics that are gone must not linger with their last value.
        gauges.series.clear();
        gauges.metrics.clear();
        gauges.usage.clear();
        gauges.metric_series.clear();
        for (tenant, figures) in per_label {
            let labels = TenantLabels {
                tenant: tenant.clone(),
            };
            gauges
                .series
                .get_or_create(&labels)
                .set(saturate(figures.series));
            gauges
                .metrics
                .get_or_create(&labels)
                .set(saturate(figures.metrics));
            for (limit, usage) in [
                (SERIES_PER_METRIC, figures.series_usage),
                (METRICS_PER_TENANT, figures.metrics_usage),
            ] {
                gauges
                    .usage
                    .get_or_create(&LimitLabels {
                        tenant: tenant.clone(),
                        limit,
                    })
                    .set(usage);
            }
        }
        metrics
            .sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| (&a.1, &a.2).cmp(&(&b.1, &b.2))));
        for (series, tenant, metric) in metrics.into_iter().take(self.config.top_metrics) {
            // Two folded tenants may share a metric name under `other`: their series add up.
            gauges
                .metric_series
                .get_or_create(&MetricLabels { tenant, metric })
                .inc_by(saturate(series));
        }
        Some(totals)
    }
}

/// One tenant label's figures (several tenants when folded into `other`).
#[derive(Debug, Default)]
struct TenantFigures {
    series: u64,
    metrics: u64,
    series_usage: f64,
    metrics_usage: f64,
}

/// `used / limit`, 0 for a limit of 0 (none).
fn ratio(used: u64, limit: u64) -> f64 {
    if limit == 0 {
        0.0
    } else {
        used as f64 / limit as f64
    }
}

fn saturate(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use luminate_engine::EngineConfig;
    use luminate_model::{Dimensions, Point};

    use super::*;
    use crate::storage::EmbeddedStore;
    use crate::telemetry::Registry;
    use crate::telemetry::tests::exposition;

    fn point(name: &str, customer: &str) -> Point {
        Point {
            name: name.to_owned(),
            timestamp: luminate_model::time::now_ms(),
            value: 1.0,
            dimensions: Dimensions::from_pairs([("customer".to_owned(), customer.to_owned())]),
        }
    }

    #[tokio::test]
    async fn gauges_follow_the_store_and_labels_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(EngineConfig::new(dir.path())).unwrap());
        let store: Arc<dyn MetricsStore> = Arc::new(EmbeddedStore::from_engine(
            engine.clone(),
            dir.path().to_owned(),
            crate::config::HealthConfig::default(),
        ));
        // Three tenants with a label of their own, seven folded into `other`.
        for t in 0..10 {
            let tenant = luminate_model::Tenant::new(format!("t{t}"));
            let mut points = vec![point("requests", "a"), point("requests", "b")];
            for c in 0..t {
                points.push(point("latency", &format!("c{c}")));
            }
            engine.write(&tenant, points).unwrap();
        }
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 3);
        let collector = Collector::new(
            store,
            telemetry.clone(),
            CollectorConfig {
                engine: Some((engine.clone(), dir.path().to_owned())),
                max_series_per_metric: 10,
                max_metrics_per_tenant: 4,
                top_metrics: 2,
            },
        );
        collector.collect().await;
        let text = exposition(&registry);
        for line in [
            "luminate_storage_health{backend=\"embedded\"} 1",
            // t0: 2 series; t1: 3; t2: 4.
            "luminate_series_count{tenant=\"t0\"} 2",
            "luminate_series_count{tenant=\"t2\"} 4",
            "luminate_cardinality_metrics{tenant=\"t0\"} 1",
            "luminate_cardinality_metrics{tenant=\"t1\"} 2",
            // t3..t9: 2 + 3..9 series each.
            "luminate_series_count{tenant=\"other\"} 56",
            "luminate_cardinality_metrics{tenant=\"other\"} 14",
            "luminate_cardinality_limit_usage_ratio{tenant=\"t2\",limit=\"max_unique_series_per_metric\"} 0.2",
            "luminate_cardinality_limit_usage_ratio{tenant=\"other\",limit=\"max_unique_series_per_metric\"} 0.9",
            "luminate_cardinality_limit_usage_ratio{tenant=\"t1\",limit=\"max_metrics_per_tenant\"} 0.5",
            // The two largest metrics: t9's and t8's latency, both under `other`.
            "luminate_cardinality_by_metric{tenant=\"other\",metric=\"latency\"} 17",
            "luminate_engine_series 65",
            "luminate_engine_head_points 65",
            "luminate_engine_parts 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert_eq!(
            text.matches("luminate_cardinality_by_metric{").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("luminate_storage_filesystem_available_bytes{backend=\"embedded\"} ")
        );
        assert!(text.contains("luminate_storage_size_bytes{backend=\"embedded\"} "));
        let summary = telemetry.overview().collected.unwrap();
        assert_eq!(
            (summary.series, summary.metrics, summary.tenants),
            (65, 19, 10)
        );
        assert!(summary.storage_up && summary.filesystem_available_bytes.unwrap() > 0);

        // A deleted metric's series disappear from the gauges at the next collection.
        let t2 = luminate_model::Tenant::new("t2");
        engine.delete_before(&t2, "latency", i64::MAX).unwrap();
        collector.collect().await;
        let text = exposition(&registry);
        assert!(
            text.contains("luminate_series_count{tenant=\"t2\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("luminate_cardinality_metrics{tenant=\"t2\"} 1"),
            "{text}"
        );
    }
}
