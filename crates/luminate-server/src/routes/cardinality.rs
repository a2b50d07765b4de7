//! `GET /api/v1/cardinality?metric=` (CONTRACT §5): series per metric and distinct values per key,
//! largest first — the cardinality explorer. With `metric`, only that metric (404 when unknown).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{check_metric_name, unknown_metric};
use crate::app::AppState;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// Query string.
#[derive(Debug, Deserialize)]
pub struct CardinalityParams {
    metric: Option<String>,
}

/// Handles the explorer.
#[utoipa::path(
    get,
    path = "/api/v1/cardinality",
    operation_id = "cardinality",
    tag = "discovery",
    summary = "Series per metric and distinct values per dimension key",
    params(("metric" = Option<String>, Query, description = "Only this metric.")),
    responses(
        (status = 200, description = "Largest first.", body = crate::openapi::schemas::Cardinality),
        (status = 400, description = "`INVALID_METRIC_NAME`, or a malformed query string (`INVALID_REQUEST`).", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: `metric` has no stored point.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    params: Result<Query<CardinalityParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params?;
    if let Some(metric) = &params.metric {
        check_metric_name(metric, &state.rules)?;
    }
    let metrics = state
        .store
        .cardinality(&tenant, params.metric.as_deref())
        .await?;
    if let Some(metric) = &params.metric
        && metrics.is_empty()
    {
        return Err(unknown_metric(metric));
    }
    Ok(Json(json!({"metrics": metrics})))
}
