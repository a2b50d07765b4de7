//! `/api/v1/dashboards`: the tenant's dashboards (the design's "JSON Query Language for Dashboards").
//! List (`?tag=`), create or import (`POST`, the design's `{"dashboard": {...}}` file or a bare
//! document), export (`GET /{id}`, a file that imports back to the same dashboard), replace (`PUT
//! /{id}`, naming the `version` it read: a stale one is `409 CONFLICT`) and delete. Every document is
//! checked before it is saved ([`luminate_model::dashboard::validate`]); the problems are listed with
//! their JSON paths. The body is bounded by `dashboards.max_body_bytes`, panels by
//! `dashboards.max_panels`, dashboards by `dashboards.max_per_tenant`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use luminate_model::ErrorCode;
use luminate_model::dashboard::document::parse_document;
use luminate_model::dashboard::{Dashboard, DashboardLimits, Expected, Problem, validate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::body::read_capped;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// The list route's query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only dashboards carrying this tag.
    tag: Option<String>,
}

/// `GET /api/v1/dashboards`: id, title, tags and version of each, by id.
#[utoipa::path(
    get,
    path = "/api/v1/dashboards",
    operation_id = "listDashboards",
    tag = "dashboards",
    summary = "The tenant's dashboards",
    params(("tag" = Option<String>, Query, description = "Only dashboards carrying this tag.")),
    responses(
        (status = 200, description = "Id, title, tags and version of each, by id.", body = crate::openapi::schemas::DashboardList),
        (status = 400, description = "`INVALID_REQUEST`: an unknown query parameter.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params?;
    let dashboards = state.dashboards.list(&tenant).await?;
    let listed: Vec<Value> = dashboards
        .into_iter()
        .filter(|d| params.tag.as_ref().is_none_or(|tag| d.tags.contains(tag)))
        .map(|d| json!({"id": d.id, "title": d.title, "tags": d.tags, "version": d.version}))
        .collect();
    Ok(Json(json!({"dashboards": listed})))
}

/// `GET /api/v1/dashboards/{id}`: the dashboard as a file (`{"dashboard": {...}}`).
#[utoipa::path(
    get,
    path = "/api/v1/dashboards/{id}",
    operation_id = "exportDashboard",
    tag = "dashboards",
    summary = "A dashboard, as a file that imports back",
    params(("id" = String, Path, example = "overview", description = "The dashboard's id.")),
    responses(
        (status = 200, description = "The design's dashboard file.", body = crate::openapi::schemas::DashboardFile),
        (status = 404, description = "`NOT_FOUND`.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn export(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.dashboards.get(&tenant, &id).await? {
        Some(dashboard) => Ok(Json(file(&dashboard))),
        None => Err(not_found(&id)),
    }
}

/// `POST /api/v1/dashboards`: creates (or imports) a dashboard; `201` with the saved document. An id
/// already taken is `409 CONFLICT`; a `version` in the document is ignored.
#[utoipa::path(
    post,
    path = "/api/v1/dashboards",
    operation_id = "createDashboard",
    tag = "dashboards",
    summary = "Create (or import) a dashboard",
    request_body(content = crate::openapi::schemas::DashboardUpload, example = json!({"dashboard": {
        "id": "latency", "title": "Latency", "tags": ["team"], "timeRange": {"relative": "24h"},
        "panels": [{"id": "p95", "title": "p95 by customer", "type": "timeseries", "gridPosition": {"x": 0, "y": 0, "w": 12, "h": 6},
            "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95", "groupBy": ["customer_id"]}}]}})),
    responses(
        (status = 201, description = "Saved, at version 1.", body = crate::openapi::schemas::DashboardFile),
        (status = 400, description = "`INVALID_REQUEST`: every problem of the document, with its JSON path (`details.problems`).", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`CONFLICT`: the id is taken.", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over `dashboards.max_body_bytes`.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["write"])),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, ApiError> {
    let dashboard = read_document(&state, request).await?;
    let saved = state
        .dashboards
        .put(&tenant, dashboard, Expected::Absent)
        .await?;
    Ok((StatusCode::CREATED, Json(file(&saved))).into_response())
}

/// `PUT /api/v1/dashboards/{id}`: replaces the dashboard whose `version` the document names (without
/// one: creates it, when the id is free). The document's id must be the path's.
#[utoipa::path(
    put,
    path = "/api/v1/dashboards/{id}",
    operation_id = "replaceDashboard",
    tag = "dashboards",
    summary = "Replace a dashboard, naming the version read",
    params(("id" = String, Path, example = "overview", description = "The dashboard's id.")),
    request_body(content = crate::openapi::schemas::DashboardUpload, example = json!({"dashboard": {
        "id": "overview", "title": "Overview", "version": 1,
        "panels": [{"id": "count", "title": "Points", "type": "gauge", "gridPosition": {"x": 0, "y": 0, "w": 6, "h": 4},
            "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "count", "timeRange": {"relative": "1h"}}}]}})),
    responses(
        (status = 200, description = "Saved, at the next version.", body = crate::openapi::schemas::DashboardFile),
        (status = 400, description = "`INVALID_REQUEST`: the document's problems, or an id other than the path's.", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`CONFLICT`: the dashboard changed since that version was read, or (without a version) exists.", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over `dashboards.max_body_bytes`.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["write"])),
)]
pub async fn replace(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let dashboard = read_document(&state, request).await?;
    if dashboard.id != id {
        return Err(invalid(vec![Problem {
            path: "id".into(),
            message: format!("{:?} is not the id in the path, {id:?}", dashboard.id),
        }]));
    }
    let expected = dashboard
        .version
        .map_or(Expected::Absent, Expected::Version);
    let saved = state.dashboards.put(&tenant, dashboard, expected).await?;
    Ok(Json(file(&saved)))
}

/// `DELETE /api/v1/dashboards/{id}`: `204`, or `404` when there is none.
#[utoipa::path(
    delete,
    path = "/api/v1/dashboards/{id}",
    operation_id = "deleteDashboard",
    tag = "dashboards",
    summary = "Delete a dashboard",
    params(("id" = String, Path, example = "overview", description = "The dashboard's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`NOT_FOUND`.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["write"])),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.dashboards.delete(&tenant, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// The design's file format.
fn file(dashboard: &Dashboard) -> Value {
    json!({ "dashboard": dashboard })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("dashboard {id:?} not found"))
}

/// `400 INVALID_REQUEST` listing every problem (`details.problems`: `{path, message}` each).
fn invalid(problems: Vec<Problem>) -> ApiError {
    let message = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let listed: Vec<Value> = problems
        .iter()
        .map(|p| json!({"path": p.path, "message": p.message}))
        .collect();
    ApiError::invalid_request(format!("invalid dashboard: {message}"))
        .with_details(json!({"problems": listed}))
}

/// Reads, parses and checks the request's dashboard document.
async fn read_document(state: &AppState, request: Request) -> Result<Dashboard, ApiError> {
    let cap = state.config.dashboards.max_body_bytes;
    let body = read_capped(request.into_body(), cap, state.config.server.read_timeout)
        .await
        .map_err(|e| {
            if e.code == ErrorCode::PayloadTooLarge {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("dashboard document exceeds dashboards.max_body_bytes of {cap} bytes"),
                )
                .with_details(json!({"max_body_bytes": cap}))
            } else {
                e
            }
        })?;
    let dashboard = parse_document(&body).map_err(|p| invalid(vec![p]))?;
    let limits = DashboardLimits {
        max_panels: state.config.dashboards.max_panels,
        query: state.limits.clone(),
    };
    let problems = validate(&dashboard, &limits);
    if problems.is_empty() {
        Ok(dashboard)
    } else {
        Err(invalid(problems))
    }
}
