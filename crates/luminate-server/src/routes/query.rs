//! `POST /api/v1/query` (CONTRACT §4): parse the request into a [`PlannedQuery`], reserve the memory
//! its store expects it to hold from the server's budget ([`crate::query_memory`]: it may wait, or be
//! refused with `503` or `400`), run it under its timeout, and answer with the result's JSON. The
//! timeout covers all three. A query past its deadline is cancelled through its [`QueryContext`] (the
//! store's scans check it) and answered `504 QUERY_TIMEOUT`; its reservation travels in the context
//! and is released when the store's work has stopped.
//!
//! `listDimensionValues` is answered by the store's discovery listing, the one the values route uses,
//! so both give the same values in the same order (it reserves no memory: its answer is bounded by
//! its limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use luminate_model::result::DimensionValuesResult;
use luminate_model::time::{format_duration, now_ms};
use luminate_model::{
    DimensionValuesPlan, ErrorCode, PlannedQuery, QueryContext, QueryKind, QueryPlan, QueryRequest,
    Tenant,
};

use crate::app::AppState;
use crate::body::read_capped;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// Largest query body: a query is a small object, even with many filters.
const MAX_QUERY_BODY: usize = 1 << 20;

/// Handles a query, and records its type, time, answer size or error; it counts in `active_queries`
/// until its answer is built.
#[utoipa::path(
    post,
    path = "/api/v1/query",
    operation_id = "query",
    tag = "query",
    summary = "Run a query: range, aggregate, rate or listDimensionValues",
    description = "The JSON query language (CONTRACT §4, docs/api.md). Runs under its `timeout` (default 10 s, at most 30 s) and reserves its memory from the server's budget first.",
    request_body(content = luminate_model::QueryRequest, examples(
        ("aggregate" = (summary = "p95 by customer over the last hour", value = json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95", "groupBy": ["customer_id"], "timeRange": {"relative": "1h"}}))),
        ("range" = (summary = "Raw points of one customer", value = json!({"queryType": "range", "metricName": "api_latency", "filters": {"customer_id": ["cust_1", "cust_2"]}, "timeRange": {"relative": "15m"}, "limit": 100}))),
        ("rate" = (summary = "Per-minute rate", value = json!({"queryType": "rate", "metricName": "api_requests", "interval": "1m", "timeRange": {"relative": "1h"}}))),
        ("listDimensionValues" = (summary = "A dashboard variable's options", value = json!({"queryType": "listDimensionValues", "metricName": "api_latency", "dimension": "customer_id", "limit": 10}))),
    )),
    responses(
        (status = 200, description = "The answer, shaped by `queryType`.", body = crate::openapi::schemas::QueryAnswer),
        (status = 400, description = "`INVALID_QUERY`, `QUERY_LIMIT_EXCEEDED` (naming the limit), or a body that is not a query.", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: a body over 1 MiB.", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "`STORAGE_UNAVAILABLE`, or the query memory budget taken by running queries (`Retry-After`).", body = crate::openapi::schemas::ErrorBody),
        (status = 504, description = "`QUERY_TIMEOUT`: the query ran past its timeout and was cancelled.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, ApiError> {
    let _active = state.telemetry.query_started(&tenant);
    let body = read_capped(
        request.into_body(),
        MAX_QUERY_BODY,
        state.config.server.read_timeout,
    )
    .await;
    let planned = body.and_then(|body| parse(&state, &body));
    let planned = match planned {
        Ok(planned) => planned,
        Err(e) => {
            state
                .telemetry
                .query_failed(&tenant, UNPARSED, e.code, None);
            return Err(e);
        }
    };
    let query_type = query_type(&planned);
    let started = Instant::now();
    let answer = match &planned {
        PlannedQuery::Points(plan) => run(&state, &tenant, plan, started).await,
        PlannedQuery::DimensionValues(plan) => list_values(&state, &tenant, plan, started).await,
    };
    match answer {
        Ok((response, points)) => {
            state
                .telemetry
                .query_answered(&tenant, query_type, points, started.elapsed());
            Ok(response)
        }
        Err(e) => {
            state
                .telemetry
                .query_failed(&tenant, query_type, e.code, Some(started.elapsed()));
            Err(e)
        }
    }
}

/// The `query_type` label of a query that did not parse.
const UNPARSED: &str = "unknown";

/// The query's `type` as the request named it (the `query_type` label).
fn query_type(planned: &PlannedQuery) -> &'static str {
    match planned {
        PlannedQuery::Points(plan) => match plan.kind {
            QueryKind::Range => "range",
            QueryKind::Aggregate(_) => "aggregate",
            QueryKind::Rate => "rate",
        },
        PlannedQuery::DimensionValues(_) => luminate_model::query::LIST_DIMENSION_VALUES,
    }
}

fn parse(state: &AppState, body: &[u8]) -> Result<PlannedQuery, ApiError> {
    let req: QueryRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("invalid query: {e}")))?;
    PlannedQuery::from_request(req, now_ms(), &state.limits)
        .map_err(|e| ApiError::new(e.code, e.message))
}

fn timed_out(timeout: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::QueryTimeout,
        format!("query exceeded its timeout of {}", format_duration(timeout)),
    )
}

/// Reserves the plan's memory and runs it, all under its timeout; the response and its number of
/// data points.
async fn run(
    state: &AppState,
    tenant: &Tenant,
    plan: &QueryPlan,
    started: Instant,
) -> Result<(Response, usize), ApiError> {
    let ctx = QueryContext::new(plan.timeout);
    let timed_out = || {
        // The store's work may still be running on another thread: tell it to stop.
        ctx.cancel();
        timed_out(plan.timeout)
    };
    let estimate = tokio::time::timeout(ctx.remaining(), state.store.query_memory(tenant, plan))
        .await
        .map_err(|_| timed_out())??;
    // A wait that the deadline cuts short is answered as a busy budget, not as a slow query.
    let wait = state.config.query_limits.memory_wait.min(ctx.remaining());
    let reservation = state.query_memory.reserve(estimate, wait).await?;
    let ctx = ctx.clone().holding(Arc::new(reservation));
    let answered = async {
        let result = state.store.query(tenant, plan, &ctx).await?;
        let points = result.point_count();
        // A backend that could not read some of its data says so in the context: the answer is
        // flagged partial rather than silently missing those points.
        let body = result
            .response(started.elapsed().as_millis() as u64)
            .with_warnings(ctx.warnings());
        let response = Json(body).into_response();
        Ok::<_, ApiError>((response, points))
    };
    tokio::time::timeout(ctx.remaining(), answered)
        .await
        .map_err(|_| timed_out())?
}

/// Lists the values under the plan's timeout; the response and its number of values.
async fn list_values(
    state: &AppState,
    tenant: &Tenant,
    plan: &DimensionValuesPlan,
    started: Instant,
) -> Result<(Response, usize), ApiError> {
    // One more than the limit: whether there is one tells `truncated`.
    let listing = state.store.dimension_values(
        tenant,
        &plan.metric,
        &plan.dimension,
        &plan.prefix,
        plan.limit + 1,
    );
    let listed = tokio::time::timeout(plan.timeout, listing)
        .await
        .map_err(|_| timed_out(plan.timeout))??;
    let result = DimensionValuesResult::from_listed(listed, plan.limit);
    let response = Json(result.response(started.elapsed().as_millis() as u64)).into_response();
    Ok((response, result.values.len()))
}
