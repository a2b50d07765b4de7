//! Luminate's own metrics (issue 6): their definitions, registration on a [`Registry`] the caller
//! passes in (no global), and the bounded labels. Owns no route: the exposition is served by
//! `crate::routes::exposition`.
//!
//! - [`http`]: the middleware that counts, times and sizes every request;
//! - [`storage`]: the store decorator that times every backend call, and the engine's and ClickHouse's
//!   observers;
//! - [`collector`]: the background task that refreshes the expensive gauges (sizes, cardinality,
//!   storage health) every `metrics.interval`, so that a scrape only reads;
//! - [`process`]: the process's own figures, read from `/proc` at scrape time (cheap);
//! - [`reference`]: the metrics reference (docs/metrics.md) generated from the registrations here.
//!
//! Every name starts with `luminate_` (the sub-registry's prefix) and every label is bounded:
//! - `route` is the matched route template (`/api/v1/metrics/{name}/dimensions`), never a raw path;
//!   requests no route matched are `unmatched`.
//! - `method` is one of the standard methods, anything else `other`.
//! - `tenant` is the request's tenant once the route guard resolved it; the first
//!   `metrics.max_tenant_labels` distinct tenants keep their id, later ones are `other`. A request with
//!   no tenant (health, the exposition, an unauthenticated or unmatched request) is `-`, which no tenant
//!   id can be (ids never start with `-`). A tenant really named `other` shares its label with the
//!   folded ones.
//! - `metric` (cardinality) appears only for the `metrics.top_metrics` metrics with the most series.
//! - `code` is a contract error code, `limit` a `rate_limits` or `cardinality_limits` key, `query_type`
//!   a query type, `operation` a store or ClickHouse operation, `backend` a storage backend.
//!
//! The seed's "Self-Monitoring Metrics" are these names with the seed's meanings (an operator's rules
//! look for them): `metrics_ingested_total`, `write_errors_total`, `write_latency_seconds`,
//! `query_latency_seconds` (by `query_type`, as in the seed's exposition), `storage_size_bytes`,
//! `series_count`, `cardinality_by_metric`, `rate_limit_exceeded_total`, `active_queries` and
//! `storage_health`, besides `up`, `write_requests_total`, `query_requests_total`, `query_errors_total`
//! and `query_result_points`. A test checks each one in a live exposition.

pub mod collector;
pub mod http;
pub mod overview;
pub mod process;
pub mod reference;
pub mod storage;

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use luminate_model::{ErrorCode, Tenant};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Metric;
pub use prometheus_client::registry::Registry;

pub use self::http::record_http;
pub use self::reference::MetricDoc;
use self::storage::{ClickhouseMetrics, EngineMetrics, StorageMetrics};

/// Prefix of every metric name.
pub const PREFIX: &str = "luminate";

/// The `route` of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `tenant` of tenants past `metrics.max_tenant_labels`.
pub const OTHER_TENANT: &str = "other";

/// The `tenant` of requests that have none (health, the exposition, refused before authentication).
pub const NO_TENANT: &str = "-";

/// Upper bounds of the duration histograms, in seconds: 0.5 ms to 30 s (the default
/// `server.write_timeout` and `query_limits.max_query_timeout`).
pub const DURATION_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Upper bounds of the size histograms, in bytes: 64 B to 64 MiB, by fours (the default largest write
/// body is 10 MiB).
pub const SIZE_BUCKETS: [f64; 11] = [
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

/// Upper bounds of the point-count histograms (batch sizes, result sizes): 1 to 1 M by tens.
pub const COUNT_BUCKETS: [f64; 7] = [1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0];

/// The compiler that built this binary (`rustc 1.x.y (...)`), recorded by `build.rs`.
const RUSTC_VERSION: &str = env!("LUMINATE_RUSTC_VERSION");

/// A histogram over [`DURATION_BUCKETS`].
pub(crate) fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

/// A histogram over [`SIZE_BUCKETS`].
pub(crate) fn size_histogram() -> Histogram {
    Histogram::new(SIZE_BUCKETS.iter().copied())
}

/// A histogram over [`COUNT_BUCKETS`].
pub(crate) fn count_histogram() -> Histogram {
    Histogram::new(COUNT_BUCKETS.iter().copied())
}

/// A family of histograms; the constructor is a plain function so that families share one type.
pub(crate) type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A family of histograms made by `constructor`.
pub(crate) fn histograms<L: Clone + std::hash::Hash + Eq>(
    constructor: fn() -> Histogram,
) -> HistogramFamily<L> {
    Family::new_with_constructor(constructor)
}

/// A floating-point gauge.
pub type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    rustc: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TenantLabels {
    pub tenant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WriteErrorLabels {
    tenant: String,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    tenant: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryLabels {
    tenant: String,
    query_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryTypeLabels {
    query_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryErrorLabels {
    query_type: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    pub tenant: String,
    pub limit: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AdmissionLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct MetricLabels {
    pub tenant: String,
    pub metric: String,
}

/// How a write request ended, for `write_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every point stored (200).
    Accepted,
    /// Some points stored, some rejected (207).
    Partial,
    /// No point stored: all invalid, or the batch refused whole (4xx but 429).
    Rejected,
    /// Refused by the tenant's points-per-second limit (429).
    RateLimited,
    /// The store failed (5xx).
    Error,
}

impl WriteOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Partial => "partial",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
            Self::Error => "error",
        }
    }
}

/// Registers metrics on the `luminate_` sub-registry and records each one for the reference.
struct Registrar<'a> {
    registry: &'a mut Registry,
    docs: Vec<MetricDoc>,
}

impl Registrar<'_> {
    /// Registers `metric` as `name` (without prefix or `_total`) with `labels`, and returns it.
    fn add<M: Metric + Clone>(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        metric: M,
    ) -> M {
        self.docs
            .push(MetricDoc::new(name, metric.metric_type(), labels, help));
        self.registry.register(name, help, metric.clone());
        metric
    }
}

/// The handles of every metric, behind one `Arc`: a clone is one reference count. (The HTTP middleware
/// clones its state for every request; cloning the thirty-odd shared families one by one cost about 1 %
/// of a request's CPU in contended atomic counts.)
#[derive(Debug, Clone)]
pub struct Telemetry(Arc<Metrics>);

impl std::ops::Deref for Telemetry {
    type Target = Metrics;

    fn deref(&self) -> &Metrics {
        &self.0
    }
}

/// Every metric's handle.
#[derive(Debug)]
pub struct Metrics {
    pub(crate) http: http::HttpMetrics,
    write_requests: Family<OutcomeLabels, Counter>,
    write_latency: Histogram,
    metrics_ingested: Family<TenantLabels, Counter>,
    write_errors: Family<WriteErrorLabels, Counter>,
    query_requests: Family<QueryLabels, Counter>,
    query_errors: Family<QueryErrorLabels, Counter>,
    query_latency: HistogramFamily<QueryTypeLabels>,
    query_result_points: HistogramFamily<QueryTypeLabels>,
    active_queries: Family<TenantLabels, Gauge>,
    rate_limit_checks: Family<LimitLabels, Counter>,
    rate_limit_exceeded: Family<LimitLabels, Counter>,
    rate_limit_tokens: Family<LimitLabels, Gauge>,
    pub(crate) query_memory: QueryMemoryMetrics,
    pub(crate) cardinality: collector::CardinalityMetrics,
    pub(crate) storage: StorageMetrics,
    pub(crate) engine: Arc<EngineMetrics>,
    #[cfg_attr(
        not(feature = "clickhouse"),
        allow(
            dead_code,
            reason = "the ClickHouse backend is the observer's only user"
        )
    )]
    pub(crate) clickhouse: Arc<ClickhouseMetrics>,
    pub(crate) collection_duration: FloatGauge,
    pub(crate) tenants: Arc<TenantLabelCap>,
    /// Unlabelled totals and the collector's snapshots, for the overview.
    pub(crate) totals: Arc<overview::Totals>,
    reference: Vec<MetricDoc>,
}

impl Telemetry {
    /// Registers every metric under `luminate_` on `registry`, with at most `max_tenant_labels` tenant
    /// label values (plus `other` and `-`).
    pub fn register(registry: &mut Registry, max_tenant_labels: usize) -> Self {
        let mut r = Registrar {
            registry: registry.sub_registry_with_prefix(PREFIX),
            docs: Vec::new(),
        };
        let up: Gauge = r.add(
            "up",
            "1 while this Luminate process serves",
            &[],
            Gauge::default(),
        );
        up.set(1);
        let build: Family<BuildLabels, Gauge> = r.add(
            "build_info",
            "Always 1; the labels give the version and the compiler that built it",
            &["version", "rustc"],
            Family::default(),
        );
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                rustc: RUSTC_VERSION,
            })
            .set(1);
        let http = http::HttpMetrics::register(&mut r);
        let tenants = Arc::new(TenantLabelCap::new(max_tenant_labels));
        let cardinality = collector::CardinalityMetrics::register(&mut r, tenants.clone());
        let metrics = Metrics {
            http,
            write_requests: r.add(
                "write_requests",
                "Write requests answered by the write route, by tenant and outcome (accepted, partial, rejected, rate_limited, error)",
                &["tenant", "outcome"],
                Family::default(),
            ),
            write_latency: r.add(
                "write_latency_seconds",
                "Time the write route takes to read, decode, validate and store one request",
                &[],
                duration_histogram(),
            ),
            metrics_ingested: r.add(
                "metrics_ingested",
                "Points (individual metrics) stored by the write route, by tenant",
                &["tenant"],
                Family::default(),
            ),
            write_errors: r.add(
                "write_errors",
                "Points sent to the write route and not stored, by tenant and error code: rejected one by one (the errors of a 207 or 400 answer) or with their whole decoded batch (RATE_LIMIT_EXCEEDED, STORAGE_UNAVAILABLE, ...); for remote write and OTLP also dropped by design (STALE_MARKER, NON_FINITE_VALUE, NATIVE_HISTOGRAM, EXEMPLAR; OTLP: NO_RECORDED_VALUE) or by the newest-sample rule (DUPLICATE_SAMPLE, OUT_OF_ORDER_SAMPLE)",
                &["tenant", "code"],
                Family::default(),
            ),
            query_requests: r.add(
                "query_requests",
                "Queries that passed parsing and ran, by tenant and query type (range, aggregate, rate, listDimensionValues)",
                &["tenant", "query_type"],
                Family::default(),
            ),
            query_errors: r.add(
                "query_errors",
                "Queries answered with an error, by query type (unknown when it did not parse) and error code",
                &["query_type", "code"],
                Family::default(),
            ),
            query_latency: r.add(
                "query_latency_seconds",
                "Time to run a query and serialize its answer, by query type",
                &["query_type"],
                histograms(duration_histogram),
            ),
            query_result_points: r.add(
                "query_result_points",
                "Data points in a query's answer (values for listDimensionValues), by query type",
                &["query_type"],
                histograms(count_histogram),
            ),
            active_queries: r.add(
                "active_queries",
                "Queries being handled now (each holds one of the tenant's rate_limits.concurrent_queries slots when that limit is in force), by tenant",
                &["tenant"],
                Family::default(),
            ),
            rate_limit_checks: r.add(
                "rate_limit_checks",
                "Rate-limit decisions, allowed or refused, by tenant and rate_limits key (only for quotas in force)",
                &["tenant", "limit"],
                Family::default(),
            ),
            rate_limit_exceeded: r.add(
                "rate_limit_exceeded",
                "Rate-limit decisions that refused a request (429), by tenant and rate_limits key",
                &["tenant", "limit"],
                Family::default(),
            ),
            rate_limit_tokens: r.add(
                "rate_limit_tokens_available",
                "Tokens (or free query slots) left in a tenant's bucket after its latest request",
                &["tenant", "limit"],
                Family::default(),
            ),
            query_memory: QueryMemoryMetrics::register(&mut r),
            engine: Arc::new(EngineMetrics::register(
                &mut r,
                cardinality.warnings.clone(),
            )),
            cardinality,
            storage: StorageMetrics::register(&mut r),
            clickhouse: Arc::new(ClickhouseMetrics::register(&mut r)),
            collection_duration: r.add(
                "metrics_collection_duration_seconds",
                "How long the background collector's latest refresh of the storage and cardinality gauges took",
                &[],
                FloatGauge::default(),
            ),
            tenants,
            totals: Arc::default(),
            reference: Vec::new(),
        };
        let mut reference = r.docs;
        reference.extend(process::register(r.registry));
        Self(Arc::new(Metrics {
            reference,
            ..metrics
        }))
    }

    /// The overview of `GET /api/v1/status/overview`.
    pub fn overview(&self) -> overview::Overview {
        self.totals.overview()
    }

    /// Every metric registered, in registration order: the source of docs/metrics.md.
    pub fn reference(&self) -> &[MetricDoc] {
        &self.reference
    }

    /// `tenant` passed 80 % of the cardinality limit `limit` (the caller has logged it).
    pub fn cardinality_warning(&self, tenant: &Tenant, limit: &'static str) {
        self.cardinality.warnings.record(tenant, limit);
    }

    /// The label of `tenant` (its id, or `other` past the cap).
    pub(crate) fn tenant_label(&self, tenant: &Tenant) -> String {
        self.tenants.label(tenant)
    }

    /// A write request ended with `outcome` after `elapsed` of work.
    pub fn write_finished(&self, tenant: &Tenant, outcome: WriteOutcome, elapsed: Duration) {
        self.write_requests
            .get_or_create(&OutcomeLabels {
                tenant: self.tenant_label(tenant),
                outcome: outcome.as_str(),
            })
            .inc();
        self.write_latency.observe(elapsed.as_secs_f64());
        self.totals.write(elapsed);
    }

    /// `n` points of `tenant` stored.
    pub fn points_ingested(&self, tenant: &Tenant, n: u64) {
        self.totals.points(n, 0);
        if n > 0 {
            self.metrics_ingested
                .get_or_create(&TenantLabels {
                    tenant: self.tenant_label(tenant),
                })
                .inc_by(n);
        }
    }

    /// One point of `tenant` rejected with `code` in the write's answer.
    pub fn point_rejected(&self, tenant: &Tenant, code: ErrorCode) {
        self.totals.points(0, 1);
        self.count_write_errors(tenant, code, 1);
    }

    /// A decoded batch of `n` points of `tenant` refused whole with `code` (rate limit, storage failure).
    /// Not in the overview's `points_rejected_total`, which counts the rejections an answer lists.
    pub fn batch_refused(&self, tenant: &Tenant, code: ErrorCode, n: u64) {
        self.count_write_errors(tenant, code, n);
    }

    /// `n` samples, histograms or exemplars of `tenant` sent through an ingest protocol and not stored
    /// though the body was valid (`STALE_MARKER`, `NATIVE_HISTOGRAM`, ...: see docs/ingest.md).
    pub fn samples_dropped(&self, tenant: &Tenant, reason: &'static str, n: u64) {
        if n > 0 {
            self.count_write_error_label(tenant, reason, n);
        }
    }

    fn count_write_errors(&self, tenant: &Tenant, code: ErrorCode, n: u64) {
        self.count_write_error_label(tenant, code.as_str(), n);
    }

    fn count_write_error_label(&self, tenant: &Tenant, code: &'static str, n: u64) {
        self.write_errors
            .get_or_create(&WriteErrorLabels {
                tenant: self.tenant_label(tenant),
                code,
            })
            .inc_by(n);
    }

    /// A query of `tenant` is being handled until the returned guard drops (`active_queries`).
    pub fn query_started(&self, tenant: &Tenant) -> ActiveQuery {
        let gauge = self
            .active_queries
            .get_or_create(&TenantLabels {
                tenant: self.tenant_label(tenant),
            })
            .clone();
        gauge.inc();
        ActiveQuery(gauge)
    }

    /// A query of `query_type` ran to an answer of `points` data points in `elapsed`.
    pub fn query_answered(
        &self,
        tenant: &Tenant,
        query_type: &'static str,
        points: usize,
        elapsed: Duration,
    ) {
        self.query_ran(tenant, query_type, elapsed);
        self.totals.query(Some(elapsed), false);
        self.query_result_points
            .get_or_create(&QueryTypeLabels { query_type })
            .observe(points as f64);
    }

    /// A query of `query_type` (`unknown` when it did not parse) failed with `code`; `ran` is the time
    /// it ran when it got to the store.
    pub fn query_failed(
        &self,
        tenant: &Tenant,
        query_type: &'static str,
        code: ErrorCode,
        ran: Option<Duration>,
    ) {
        if let Some(elapsed) = ran {
            self.query_ran(tenant, query_type, elapsed);
        }
        self.totals.query(ran, true);
        self.query_errors
            .get_or_create(&QueryErrorLabels {
                query_type,
                code: code.as_str(),
            })
            .inc();
    }

    fn query_ran(&self, tenant: &Tenant, query_type: &'static str, elapsed: Duration) {
        self.query_requests
            .get_or_create(&QueryLabels {
                tenant: self.tenant_label(tenant),
                query_type,
            })
            .inc();
        self.query_latency
            .get_or_create(&QueryTypeLabels { query_type })
            .observe(elapsed.as_secs_f64());
    }

    /// A rate-limit decision for `tenant` on the `rate_limits` key `limit`, leaving `available`
    /// tokens (or query slots).
    pub fn rate_limit_checked(
        &self,
        tenant: &Tenant,
        limit: &'static str,
        allowed: bool,
        available: u32,
    ) {
        let labels = LimitLabels {
            tenant: self.tenant_label(tenant),
            limit,
        };
        self.rate_limit_checks.get_or_create(&labels).inc();
        if !allowed {
            self.totals.rate_limited();
            self.rate_limit_exceeded.get_or_create(&labels).inc();
        }
        self.rate_limit_tokens
            .get_or_create(&labels)
            .set(i64::from(available));
    }
}

/// One query counted in `active_queries` while it lives.
#[derive(Debug)]
#[must_use = "the query stops counting as active when this drops"]
pub struct ActiveQuery(Gauge);

impl Drop for ActiveQuery {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The query memory budget's figures (`crate::query_memory`).
#[derive(Debug, Clone)]
pub(crate) struct QueryMemoryMetrics {
    pub(crate) budget: Gauge,
    reserved: Gauge,
    waiting: Gauge,
    admissions: Family<AdmissionLabels, Counter>,
}

impl QueryMemoryMetrics {
    fn register(r: &mut Registrar<'_>) -> Self {
        Self {
            budget: r.add(
                "query_memory_budget_bytes",
                "The query memory budget: bytes all running queries together may reserve (query_limits.memory_budget_bytes)",
                &[],
                Gauge::default(),
            ),
            reserved: r.add(
                "query_memory_reserved_bytes",
                "Bytes of the query memory budget reserved now by running queries (their stores' estimates)",
                &[],
                Gauge::default(),
            ),
            waiting: r.add(
                "query_memory_waiting",
                "Queries waiting now for room in the query memory budget",
                &[],
                Gauge::default(),
            ),
            admissions: r.add(
                "query_memory_admissions",
                "Queries admitted to or refused by the query memory budget, by outcome (immediate, waited, busy: refused after waiting, 503; too_large: over the whole budget, 400)",
                &["outcome"],
                Family::default(),
            ),
        }
    }

    /// A query's reservation ended with `outcome`.
    pub(crate) fn admitted(&self, outcome: &'static str) {
        self.admissions
            .get_or_create(&AdmissionLabels { outcome })
            .inc();
    }

    /// `bytes` are reserved now.
    pub(crate) fn set_reserved(&self, bytes: u64) {
        self.reserved.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts a waiting query until the guard is dropped (admitted, refused, or given up on).
    pub(crate) fn waiting(&self) -> Waiting {
        self.waiting.inc();
        Waiting(self.waiting.clone())
    }
}

/// One waiting query in `luminate_query_memory_waiting`, while it lives.
#[derive(Debug)]
pub(crate) struct Waiting(Gauge);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The tenant label's cap: remembers the first `max` tenants seen; every later one is `other`.
#[derive(Debug)]
pub(crate) struct TenantLabelCap {
    max: usize,
    /// A std mutex: nothing is awaited while it is held, and it is held for one set lookup.
    labelled: Mutex<HashSet<Tenant>>,
}

impl TenantLabelCap {
    fn new(max: usize) -> Self {
        Self {
            max,
            labelled: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn label(&self, tenant: &Tenant) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(|e| e.into_inner());
        if labelled.contains(tenant) {
            return tenant.to_string();
        }
        if labelled.len() < self.max {
            labelled.insert(tenant.clone());
            return tenant.to_string();
        }
        OTHER_TENANT.to_owned()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The exposition of `registry`, in the text format.
    pub(crate) fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    /// The distinct values of `label` among the samples of `metric` in an exposition.
    pub(crate) fn label_values(text: &str, metric: &str, label: &str) -> HashSet<String> {
        let prefix = format!("{metric}{{");
        let key = format!("{label}=\"");
        text.lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|rest| {
                let start = rest.find(&key)? + key.len();
                let end = rest[start..].find('"')? + start;
                Some(rest[start..end].to_owned())
            })
            .collect()
    }

    #[test]
    fn tenant_labels_stop_growing_at_the_cap() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 100);
        for i in 0..5_000 {
            let tenant = Tenant::new(format!("tenant-{i}"));
            telemetry.points_ingested(&tenant, 1);
            telemetry.point_rejected(&tenant, ErrorCode::InvalidValue);
            telemetry.rate_limit_checked(&tenant, "write_requests_per_second", false, 0);
            telemetry.write_finished(&tenant, WriteOutcome::Partial, Duration::from_millis(1));
            telemetry.query_answered(&tenant, "range", 3, Duration::from_millis(2));
            drop(telemetry.query_started(&tenant));
        }
        let text = exposition(&registry);
        let tenants = label_values(&text, "luminate_metrics_ingested_total", "tenant");
        assert_eq!(tenants.len(), 101);
        assert!(tenants.contains(OTHER_TENANT));
        assert!(tenants.contains("tenant-0") && tenants.contains("tenant-99"));
        assert!(!tenants.contains("tenant-100"));
        let other = format!("luminate_metrics_ingested_total{{tenant=\"{OTHER_TENANT}\"}} 4900");
        assert!(text.contains(&other), "{text}");
        for metric in [
            "luminate_write_errors_total",
            "luminate_rate_limit_exceeded_total",
            "luminate_rate_limit_checks_total",
            "luminate_rate_limit_tokens_available",
            "luminate_write_requests_total",
            "luminate_query_requests_total",
            "luminate_active_queries",
        ] {
            assert_eq!(label_values(&text, metric, "tenant").len(), 101, "{metric}");
        }
        assert!(
            text.contains(
                "luminate_query_result_points_bucket{le=\"10.0\",query_type=\"range\"} 5000"
            ),
            "{text}"
        );
        assert!(
            text.contains("luminate_write_latency_seconds_count 5000"),
            "{text}"
        );
    }

    /// The buckets span what the server can observe with its default limits: durations from well under a
    /// millisecond to the longest deadline, sizes to the largest body, counts to the largest batch and
    /// answer. An observation past the last bound lands only in `+Inf`, where no quantile can be read.
    #[test]
    fn buckets_cover_the_observable_ranges() {
        let config = crate::Config::default();
        let (first, last) = (|b: &[f64]| b[0], |b: &[f64]| b[b.len() - 1]);
        assert!(first(&DURATION_BUCKETS) <= 0.001);
        for deadline in [
            config.server.write_timeout,
            config.query_limits.max_query_timeout,
        ] {
            assert!(
                last(&DURATION_BUCKETS) >= deadline.as_secs_f64(),
                "{deadline:?}"
            );
        }
        assert!(
            first(&SIZE_BUCKETS) <= 100.0,
            "a tiny request has a bucket of its own"
        );
        assert!(last(&SIZE_BUCKETS) >= config.batch_write.max_request_size_bytes as f64);
        assert!(first(&COUNT_BUCKETS) <= 1.0);
        for most in [
            config.batch_write.max_batch_size,
            config.query_limits.max_result_points,
            config.query_limits.max_group_by_cardinality,
        ] {
            assert!(last(&COUNT_BUCKETS) >= most as f64, "{most}");
        }
        for buckets in [&DURATION_BUCKETS[..], &SIZE_BUCKETS, &COUNT_BUCKETS] {
            assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{buckets:?}");
        }
    }

    #[test]
    fn active_queries_count_the_queries_in_hand_and_refusals_are_counted_apart() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        let (a, b) = (Tenant::new("a"), Tenant::new("b"));
        let first = telemetry.query_started(&a);
        let second = telemetry.query_started(&a);
        let other = telemetry.query_started(&b);
        drop(first);
        telemetry.rate_limit_checked(&a, "query_requests_per_second", true, 1);
        telemetry.rate_limit_checked(&a, "query_requests_per_second", false, 0);
        telemetry.point_rejected(&a, ErrorCode::InvalidValue);
        telemetry.batch_refused(&a, ErrorCode::StorageUnavailable, 500);
        let text = exposition(&registry);
        for line in [
            "luminate_active_queries{tenant=\"a\"} 1",
            "luminate_active_queries{tenant=\"b\"} 1",
            "luminate_rate_limit_checks_total{tenant=\"a\",limit=\"query_requests_per_second\"} 2",
            "luminate_rate_limit_exceeded_total{tenant=\"a\",limit=\"query_requests_per_second\"} 1",
            "luminate_write_errors_total{tenant=\"a\",code=\"INVALID_VALUE\"} 1",
            "luminate_write_errors_total{tenant=\"a\",code=\"STORAGE_UNAVAILABLE\"} 500",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // The overview's rejected points are those an answer listed.
        assert_eq!(telemetry.overview().ingestion.points_rejected_total, 1);
        drop((second, other));
        let text = exposition(&registry);
        assert!(
            text.contains("luminate_active_queries{tenant=\"a\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn query_outcomes_are_counted_by_type_and_code() {
        let mut registry = Registry::default();
        let telemetry = Telemetry::register(&mut registry, 10);
        let t = Tenant::new("acme");
        telemetry.query_answered(&t, "aggregate", 12, Duration::from_millis(30));
        telemetry.query_failed(&t, "unknown", ErrorCode::InvalidQuery, None);
        telemetry.query_failed(
            &t,
            "rate",
            ErrorCode::QueryTimeout,
            Some(Duration::from_secs(3)),
        );
        let text = exposition(&registry);
        for line in [
            "luminate_query_requests_total{tenant=\"acme\",query_type=\"aggregate\"} 1",
            "luminate_query_requests_total{tenant=\"acme\",query_type=\"rate\"} 1",
            "luminate_query_errors_total{query_type=\"unknown\",code=\"INVALID_QUERY\"} 1",
            "luminate_query_errors_total{query_type=\"rate\",code=\"QUERY_TIMEOUT\"} 1",
            "luminate_query_latency_seconds_bucket{le=\"0.05\",query_type=\"aggregate\"} 1",
            "luminate_query_latency_seconds_bucket{le=\"2.5\",query_type=\"rate\"} 0",
            "luminate_query_latency_seconds_bucket{le=\"5.0\",query_type=\"rate\"} 1",
            "luminate_query_result_points_sum{query_type=\"aggregate\"} 12.0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(
            !text.contains("luminate_query_requests_total{tenant=\"acme\",query_type=\"unknown\"}"),
            "a query that never ran is an error, not a request that ran"
        );
    }
}
