//! The shapes of the JSON bodies that the handlers build with `json!` rather than from a type: the
//! error body, the write's answer, discovery, admin, dashboards' lists, health, and Prometheus'
//! envelope. They exist for the document only (nothing constructs them); the schemathesis test
//! (`crates/luminate/tests/openapi.rs`) checks every answer of the real server against them, so a
//! handler that changes its answer without its shape here fails CI. Bodies that are real types
//! (queries, results, dashboards, error codes) take their schemas from `luminate-model`.

#![allow(
    dead_code,
    reason = "schema-only types: described in the document, never built"
)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use luminate_model::ErrorCode;
use luminate_model::dashboard::Dashboard;
use luminate_model::result::{
    AggregateGroup, MetricCardinality, RangePoint, RateGroup, ValueCount,
};
use luminate_model::store::{CheckStatus, HealthStatus};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// Every error of the API (CONTRACT §8): `{"error": {"code", "message", "details"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The error itself.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Decides the status (docs/api.md, "Status codes").
    code: ErrorCode,
    /// What went wrong, for a human.
    message: String,
    /// Machine-readable context (`{"max_batch_size": 10000, "received": 10001}`); `{}` when none.
    #[schema(value_type = Object)]
    details: Map<String, Value>,
}

/// A timestamp on input: integer Unix milliseconds (a number, or a string of digits), or an RFC 3339
/// date-time; from 0 to 9223372036854 (docs/api.md, "Times, durations and body shapes").
pub struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(luminate_model::time::MAX_TIMESTAMP)),
            )
            .item(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "Integer Unix milliseconds (a number or a string of digits), or an RFC 3339 date-time.",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Timestamp")
    }
}

/// `POST /api/v1/write`'s JSON body.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    /// At most `max_batch_size` (10 000) points.
    metrics: Vec<WritePoint>,
}

/// One point as written. Each is validated on its own: an invalid one is reported in the answer's
/// `errors` by its index, the others are stored. Unknown fields are ignored.
#[derive(Serialize, ToSchema)]
pub struct WritePoint {
    /// `^[a-zA-Z_][a-zA-Z0-9_]*$`, 1–256 characters.
    name: String,
    /// Within `[now − 7d, now + 1h]` by default.
    #[schema(value_type = Timestamp)]
    timestamp: Value,
    /// A finite number.
    value: f64,
    /// At most 20; keys like names (1–128 characters, not `_tenant_id`), values 1–256 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<BTreeMap<String, String>>,
}

/// The answer to a JSON write: `200` when every point was stored, `207` when some were, `400` when none
/// was valid.
#[derive(Serialize, ToSchema)]
pub struct WriteResponse {
    /// Points stored.
    accepted: u64,
    /// Points refused, each listed in `errors`.
    rejected: u64,
    /// Why each refused point was refused.
    errors: Vec<PointRejection>,
}

/// One refused point.
#[derive(Serialize, ToSchema)]
pub struct PointRejection {
    /// Its index in the batch as sent.
    index: u64,
    /// Its name, when that was a string.
    metric: Option<String>,
    /// The contract's code (`INVALID_METRIC_NAME`, `INVALID_TIMESTAMP`, `CARDINALITY_EXCEEDED`, …).
    code: ErrorCode,
    /// Why.
    error: String,
}

/// A `400` of the write route: the write's answer when every point was invalid, or an error when the
/// body itself was refused.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum WriteRefusal {
    /// Every point was invalid.
    Points(WriteResponse),
    /// The body was refused (`INVALID_REQUEST`, `BATCH_TOO_LARGE`).
    Body(ErrorBody),
}

/// The answer to `POST /api/v1/query`, by `queryType`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum QueryAnswer {
    /// `range`: raw points ordered by timestamp, then series.
    Range(RangeAnswer),
    /// `aggregate`: groups ordered by value descending, then group key.
    Aggregate(AggregateAnswer),
    /// `rate`: groups ordered by group key.
    Rate(RateAnswer),
    /// `listDimensionValues`: values by stored points descending, then value.
    DimensionValues(DimensionValuesAnswer),
}

/// A `range` query's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RangeAnswer {
    /// `range`.
    #[schema(pattern = "^range$")]
    query_type: String,
    results: Vec<RangePoint>,
    /// A limit cut the answer.
    truncated: bool,
    execution_time_ms: u64,
    /// The backend could not read some of the data the query covers (a damaged part set aside):
    /// `true` when present, absent from a whole answer (docs/api.md, "Partial answers").
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    /// Why the answer is partial, one sentence per cause; absent from a whole answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// An `aggregate` query's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregateAnswer {
    /// `aggregate`.
    #[schema(pattern = "^aggregate$")]
    query_type: String,
    results: Vec<AggregateGroup>,
    /// A limit cut the answer.
    truncated: bool,
    execution_time_ms: u64,
    /// The backend could not read some of the data the query covers (a damaged part set aside):
    /// `true` when present, absent from a whole answer (docs/api.md, "Partial answers").
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    /// Why the answer is partial, one sentence per cause; absent from a whole answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// A `rate` query's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateAnswer {
    /// `rate`.
    #[schema(pattern = "^rate$")]
    query_type: String,
    results: Vec<RateGroup>,
    /// A limit cut the answer.
    truncated: bool,
    execution_time_ms: u64,
    /// The backend could not read some of the data the query covers (a damaged part set aside):
    /// `true` when present, absent from a whole answer (docs/api.md, "Partial answers").
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    /// Why the answer is partial, one sentence per cause; absent from a whole answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// A `listDimensionValues` query's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DimensionValuesAnswer {
    /// `listDimensionValues`.
    #[schema(pattern = "^listDimensionValues$")]
    query_type: String,
    results: Vec<ValueCount>,
    /// More values matched than `limit`.
    truncated: bool,
    execution_time_ms: u64,
    /// The backend could not read some of the data the query covers (a damaged part set aside):
    /// `true` when present, absent from a whole answer (docs/api.md, "Partial answers").
    #[serde(skip_serializing_if = "Option::is_none")]
    partial: Option<bool>,
    /// Why the answer is partial, one sentence per cause; absent from a whole answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// The tenant's metric names, sorted.
#[derive(Serialize, ToSchema)]
pub struct MetricList {
    metrics: Vec<String>,
}

/// A metric's dimension keys, sorted.
#[derive(Serialize, ToSchema)]
pub struct DimensionKeys {
    metric: String,
    dimensions: Vec<String>,
}

/// A dimension's values by stored points descending, ties by value.
#[derive(Serialize, ToSchema)]
pub struct DimensionValues {
    metric: String,
    key: String,
    values: Vec<ValueCount>,
}

/// Series per metric and distinct values per dimension key, largest first.
#[derive(Serialize, ToSchema)]
pub struct Cardinality {
    metrics: Vec<MetricCardinality>,
}

/// What an admin delete removed.
#[derive(Serialize, ToSchema)]
pub struct DeleteAnswer {
    metric_name: String,
    /// The bound, Unix ms: points before it were deleted.
    before: i64,
    deleted_points: u64,
}

/// `POST /api/v1/admin/retention`'s body.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    metric_name: String,
    /// Whole days, 1 to 36500.
    #[schema(minimum = 1, maximum = 36500)]
    retention_days: u64,
}

/// The retention now in force.
#[derive(Serialize, ToSchema)]
pub struct RetentionAnswer {
    metric_name: String,
    retention_days: u64,
    /// RFC 3339.
    applied_at: String,
}

/// A finished flush.
#[derive(Serialize, ToSchema)]
pub struct FlushAnswer {
    settled: bool,
    took_ms: u64,
}

/// The status overview (docs/api.md, "Status overview").
#[derive(Serialize, ToSchema)]
pub struct Overview {
    version: String,
    uptime_seconds: u64,
    /// `embedded` or `clickhouse`.
    backend: String,
    collector_interval_seconds: f64,
    /// Rates, latencies, errors and the collector's latest figures.
    #[schema(value_type = Object)]
    overview: Map<String, Value>,
}

/// The tenant's dashboards, by id.
#[derive(Serialize, ToSchema)]
pub struct DashboardList {
    dashboards: Vec<DashboardSummary>,
}

/// One dashboard of the list.
#[derive(Serialize, ToSchema)]
pub struct DashboardSummary {
    id: String,
    title: String,
    tags: Vec<String>,
    version: u64,
}

/// The design's dashboard file, `{"dashboard": {...}}`: what export answers and import reads.
#[derive(Serialize, ToSchema)]
pub struct DashboardFile {
    dashboard: Dashboard,
}

/// A dashboard to create or replace: the file, or the bare document.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum DashboardUpload {
    /// `{"dashboard": {...}}`.
    File(DashboardFile),
    /// The document itself.
    Document(Dashboard),
}

/// `GET /api/v1/health`'s answer.
#[derive(Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy` and `degraded` answer `200`, `unhealthy` `503`.
    #[schema(pattern = "^(healthy|degraded|unhealthy)$")]
    status: String,
    version: String,
    uptime_seconds: u64,
    storage: StorageReport,
    /// Every check by name: `storage` first, then the backend's.
    checks: BTreeMap<String, CheckReport>,
}

/// The storage's own report.
#[derive(Serialize, ToSchema)]
pub struct StorageReport {
    /// `embedded` or `clickhouse`.
    backend: String,
    status: HealthStatus,
    /// `null` when the storage is unavailable.
    disk_used_bytes: Option<u64>,
    /// Why the storage is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One health check.
#[derive(Serialize, ToSchema)]
pub struct CheckReport {
    status: CheckStatus,
    /// Why (every `warn` and `fail`), or what was verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    duration_ms: u64,
}

/// OTLP's `ExportMetricsServiceResponse` in JSON: `{}`, or the partial success.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpExportResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_success: Option<OtlpPartialSuccess>,
}

/// Data points rejected or dropped, and why.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpPartialSuccess {
    /// A decimal string (protobuf JSON's int64).
    rejected_data_points: String,
    error_message: String,
}

/// Prometheus' success envelope.
#[derive(Serialize, ToSchema)]
pub struct PromSuccess {
    /// `success`.
    #[schema(pattern = "^success$")]
    status: String,
    /// As Prometheus' HTTP API answers it for the route.
    data: Value,
    /// Why the answer is partial (a damaged part set aside), one sentence per cause; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

/// Prometheus' error envelope.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromFailure {
    /// `error`.
    #[schema(pattern = "^error$")]
    status: String,
    /// `bad_data` (400), `execution` (422), `timeout` or `unavailable` (503), `internal` (500).
    error_type: String,
    error: String,
}

/// Prometheus API parameters sent as a form body (`POST`): the same names as in the query string.
#[derive(Serialize, ToSchema)]
pub struct PromForm {
    /// A PromQL expression (query, query_range).
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// Unix seconds or RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    /// Seconds or a Prometheus duration (`1m30s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    /// Series selectors (labels, series).
    #[serde(rename = "match[]", skip_serializing_if = "Option::is_none")]
    matchers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
}

/// The request body of `POST /api/v1/export`: a JSON object, no field twice, no other field.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportRequest {
    /// The metric; every metric of the tenant when left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_name: Option<String>,
    /// Required: `start` and `end`, or `relative`. No longest range.
    #[schema(value_type = luminate_model::query::TimeRangeRequest)]
    time_range: Value,
    /// As a query's: a value, or a list of values (any of).
    #[serde(skip_serializing_if = "Option::is_none")]
    filters: Option<BTreeMap<String, luminate_model::filter::FilterValue>>,
}

/// A held backup snapshot, with its files (`POST /api/v1/admin/backups`).
#[derive(Serialize, ToSchema)]
pub struct BackupSnapshot {
    /// Names the snapshot in the other backup routes.
    id: String,
    /// `embedded`.
    backend: String,
    /// The lease: released this long after the last request to it.
    ttl_seconds: u64,
    /// The sum of the files' sizes.
    total_bytes: u64,
    files: Vec<BackupFile>,
}

/// One file of a snapshot, at its place under the data directory.
#[derive(Serialize, ToSchema)]
pub struct BackupFile {
    /// Relative to the data directory (`parts/0000000042.part`).
    path: String,
    size: u64,
    /// CRC-32C of the file's bytes, 8 lowercase hexadecimal digits.
    #[schema(pattern = "^[0-9a-f]{8}$")]
    crc32c: String,
}

/// The snapshots held (`GET /api/v1/admin/backups`), without their file lists.
#[derive(Serialize, ToSchema)]
pub struct BackupList {
    backups: Vec<BackupSummary>,
}

/// One held snapshot.
#[derive(Serialize, ToSchema)]
pub struct BackupSummary {
    id: String,
    /// How many files it holds.
    files: u64,
    total_bytes: u64,
    ttl_seconds: u64,
    /// Downloads in progress.
    downloads: u64,
    /// Seconds until the lease runs out; `null` while a download holds it.
    expires_in_seconds: Option<u64>,
}

/// A released snapshot (`DELETE /api/v1/admin/backups/{id}`).
#[derive(Serialize, ToSchema)]
pub struct BackupReleased {
    id: String,
    /// `true`.
    released: bool,
}

/// `GET /api/v1/health/live`'s answer.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// `alive` or `restart_needed`.
    #[schema(pattern = "^(alive|restart_needed)$")]
    status: String,
    /// Why only a restart recovers the process; with `restart_needed` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}
