//! Discovery (CONTRACT §5): metric names, a metric's dimension keys, and a key's values by stored
//! points with a prefix for autocomplete. Names are checked before the store is asked; an unknown
//! metric is `404 NOT_FOUND`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use luminate_model::ErrorCode;
// Shared with `listDimensionValues`, which answers as this route does.
use luminate_model::query::{DEFAULT_VALUES_LIMIT, MAX_VALUES_LIMIT};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{check_dimension_key, check_metric_name, unknown_metric};
use crate::app::AppState;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// `GET /api/v1/metrics`.
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    operation_id = "listMetrics",
    tag = "discovery",
    summary = "The tenant's metric names",
    responses((status = 200, description = "Sorted metric names.", body = crate::openapi::schemas::MetricList)),
    security(("bearer" = ["read"])),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
) -> Result<Json<Value>, ApiError> {
    let names = state.store.metric_names(&tenant).await?;
    Ok(Json(json!({"metrics": names})))
}

/// `GET /api/v1/metrics/{name}/dimensions`.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/{name}/dimensions",
    operation_id = "listDimensions",
    tag = "discovery",
    summary = "A metric's dimension keys",
    params(("name" = String, Path, example = "api_latency", description = "A metric name: `^[a-zA-Z_][a-zA-Z0-9_]*$`, 1–256 characters.")),
    responses(
        (status = 200, description = "Sorted dimension keys.", body = crate::openapi::schemas::DimensionKeys),
        (status = 400, description = "`INVALID_METRIC_NAME`.", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the tenant has no stored point of the metric.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn dimensions(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = name?;
    check_metric_name(&name, &state.rules)?;
    let keys = state
        .store
        .dimension_keys(&tenant, &name)
        .await?
        .ok_or_else(|| unknown_metric(&name))?;
    Ok(Json(json!({"metric": name, "dimensions": keys})))
}

/// Query string of the values route.
#[derive(Debug, Deserialize)]
pub struct ValuesParams {
    limit: Option<String>,
    prefix: Option<String>,
}

/// `GET /api/v1/metrics/{name}/dimensions/{key}/values?limit=&prefix=`.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/{name}/dimensions/{key}/values",
    operation_id = "listDimensionValues",
    tag = "discovery",
    summary = "A dimension's values, by stored points",
    params(
        ("name" = String, Path, example = "api_latency", description = "A metric name: `^[a-zA-Z_][a-zA-Z0-9_]*$`, 1–256 characters."),
        ("key" = String, Path, example = "customer_id", description = "A dimension key, same pattern, 1–128 characters."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many values (default 100)."),
        ("prefix" = Option<String>, Query, description = "Only values starting with it (autocomplete)."),
    ),
    responses(
        (status = 200, description = "Values by stored points descending, ties by value.", body = crate::openapi::schemas::DimensionValues),
        (status = 400, description = "`INVALID_METRIC_NAME`, `INVALID_DIMENSION`, `INVALID_REQUEST` (limit, prefix), `QUERY_LIMIT_EXCEEDED` (limit over 1000).", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: the tenant has no stored point of the metric.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn values(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<ValuesParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((name, key)) = path?;
    let Query(params) = params?;
    check_metric_name(&name, &state.rules)?;
    check_dimension_key(&key, &state.rules)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let prefix = params.prefix.unwrap_or_default();
    if prefix.chars().count() > state.rules.max_value_len {
        return Err(ApiError::invalid_request(format!(
            "prefix is longer than the longest dimension value ({} characters)",
            state.rules.max_value_len
        )));
    }
    let values = state
        .store
        .dimension_values(&tenant, &name, &key, &prefix, limit)
        .await?
        .ok_or_else(|| unknown_metric(&name))?;
    Ok(Json(json!({"metric": name, "key": key, "values": values})))
}

fn parse_limit(text: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_VALUES_LIMIT);
    };
    let limit: usize = text.parse().map_err(|_| {
        ApiError::invalid_request(format!(
            "limit: {text:?} is not an integer between 1 and {MAX_VALUES_LIMIT}"
        ))
    })?;
    if limit == 0 {
        return Err(ApiError::invalid_request("limit must be at least 1"));
    }
    if limit > MAX_VALUES_LIMIT {
        return Err(ApiError::new(
            ErrorCode::QueryLimitExceeded,
            format!("limit {limit} exceeds the maximum of {MAX_VALUES_LIMIT}"),
        )
        .with_details(json!({"max_limit": MAX_VALUES_LIMIT})));
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("1000")).unwrap(), 1000);
        assert_eq!(
            parse_limit(Some("1001")).unwrap_err().status().as_u16(),
            400
        );
        assert_eq!(
            parse_limit(Some("0")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse_limit(Some("-1")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }
}
