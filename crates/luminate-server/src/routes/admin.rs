//! Admin routes (CONTRACT §6), scoped to the request's tenant: delete a metric's points before a time,
//! and set a per-metric retention that the store persists and the retention task applies (it is woken
//! at once so the new retention takes effect without waiting for the next cleanup interval).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use luminate_model::ErrorCode;
use luminate_model::json::{FromObject, deserialize_object};
use luminate_model::time::{MAX_DURATION, format_rfc3339, now_ms, parse_timestamp_str};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess};
use serde_json::{Value, json};

use super::check_metric_name;
use crate::app::AppState;
use crate::body::read_capped;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// Largest retention accepted, in days: the longest duration Luminate accepts anywhere (a century:
/// anything longer is a mistake, not a policy).
pub const MAX_RETENTION_DAYS: u64 = MAX_DURATION.as_secs() / 86_400;
/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 << 10;

/// Query string of the delete route.
#[derive(Debug, Deserialize)]
pub struct DeleteParams {
    before: Option<String>,
}

/// `DELETE /api/v1/admin/metrics/{name}?before=<RFC 3339 | Unix ms>`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/metrics/{name}",
    operation_id = "deleteMetricPoints",
    tag = "admin",
    summary = "Delete a metric's points older than a time",
    params(
        ("name" = String, Path, example = "api_latency", description = "A metric name: `^[a-zA-Z_][a-zA-Z0-9_]*$`, 1–256 characters."),
        ("before" = String, Query, example = "2000-01-01T00:00:00Z", description = "RFC 3339 or Unix milliseconds: points before it are deleted."),
    ),
    responses(
        (status = 200, description = "How many points were deleted.", body = crate::openapi::schemas::DeleteAnswer),
        (status = 400, description = "`INVALID_METRIC_NAME`, or `before` missing or malformed (`INVALID_QUERY`).", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_before(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    name: Result<Path<String>, PathRejection>,
    params: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name?;
    let Query(params) = params?;
    check_metric_name(&name, &state.rules)?;
    // `before` bounds the points selected, as a query's time range does, and fails the same way.
    let text = params.before.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "before is required (RFC 3339 or Unix milliseconds)",
        )
    })?;
    let before = parse_timestamp_str(&text)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("before: {e}")))?;
    let deleted = state.store.delete_before(&tenant, &name, before).await?;
    tracing::info!(tenant = %tenant, metric = %name, before, deleted, "admin delete");
    Ok(Json(
        json!({"metric_name": name, "before": before, "deleted_points": deleted}),
    ))
}

/// Body of the retention route: a JSON object (not an array of its fields).
#[derive(Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
struct RetentionRequest {
    metric_name: String,
    #[serde(deserialize_with = "retention_days")]
    retention_days: u64,
}

/// `retention_days` as a u64, an error naming the field and what arrived (serde's own names neither).
fn retention_days<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = Value::deserialize(d)?;
    value.as_u64().ok_or_else(|| {
        de::Error::custom(format!(
            "retention_days: {value} is not an integer from 1 to {MAX_RETENTION_DAYS}"
        ))
    })
}

// The derived function is inherent (`remote = "Self"`); this reaches it only through an object.
impl<'de> FromObject<'de> for RetentionRequest {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Self::deserialize(MapAccessDeserializer::new(map))
    }
}

impl<'de> Deserialize<'de> for RetentionRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_object(d)
    }
}

/// `POST /api/v1/admin/retention {"metric_name", "retention_days"}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/retention",
    operation_id = "setRetention",
    tag = "admin",
    summary = "Set a metric's retention",
    request_body = crate::openapi::schemas::RetentionRequest,
    responses(
        (status = 200, description = "In force, and kept across restarts.", body = crate::openapi::schemas::RetentionAnswer),
        (status = 400, description = "`INVALID_REQUEST` (the body, `retention_days`, a retention longer than the ClickHouse backend's `storage.clickhouse.ttl`) or `INVALID_METRIC_NAME`.", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: a body over 64 KiB.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn set_retention(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let body = read_capped(
        request.into_body(),
        MAX_ADMIN_BODY,
        state.config.server.read_timeout,
    )
    .await?;
    let req: RetentionRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(format!("invalid retention request: {e}")))?;
    check_metric_name(&req.metric_name, &state.rules)?;
    if !(1..=MAX_RETENTION_DAYS).contains(&req.retention_days) {
        return Err(ApiError::invalid_request(format!(
            "retention_days: {} is not an integer from 1 to {MAX_RETENTION_DAYS}",
            req.retention_days
        )));
    }
    // At most MAX_RETENTION_DAYS (checked above): the product is far inside u64.
    let retention = Duration::from_secs(req.retention_days * 86_400);
    let storage = &state.config.storage;
    if let Some(ttl) = storage.clickhouse.ttl
        && storage.backend == crate::config::Backend::Clickhouse
        && retention > ttl
    {
        return Err(ApiError::invalid_request(format!(
            "retention_days: {} days is longer than storage.clickhouse.ttl ({}), after which ClickHouse \
             deletes every point; raise the TTL first",
            req.retention_days,
            luminate_model::time::format_duration(ttl)
        )));
    }
    state
        .store
        .set_retention(&tenant, &req.metric_name, retention)
        .await?;
    tracing::info!(tenant = %tenant, metric = %req.metric_name, days = req.retention_days, "retention override set");
    state.retention_wakeup.notify_one();
    Ok(Json(json!({
        "metric_name": req.metric_name,
        "retention_days": req.retention_days,
        "applied_at": format_rfc3339(now_ms()),
    })))
}

/// `POST /api/v1/admin/flush`: settles the stored data of every tenant now
/// ([`luminate_model::MetricsStore::settle`]) → `{"settled": true, "took_ms"}`. No body. It changes how
/// data is laid out on disk, never what it holds, so an admin token of any tenant may ask for it.
#[utoipa::path(
    post,
    path = "/api/v1/admin/flush",
    operation_id = "flush",
    tag = "admin",
    summary = "Settle the stored data of every tenant",
    responses((status = 200, description = "Settled.", body = crate::openapi::schemas::FlushAnswer)),
    security(("bearer" = ["admin"])),
)]
pub async fn flush(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let started = std::time::Instant::now();
    state.store.settle().await?;
    let took_ms = started.elapsed().as_millis() as u64;
    tracing::info!(took_ms, "admin flush: stored data settled");
    Ok(Json(json!({"settled": true, "took_ms": took_ms})))
}
