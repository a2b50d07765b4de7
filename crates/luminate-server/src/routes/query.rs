//! `POST /api/v1/query` (CONTRACT §4): parse the request into a [`QueryPlan`], reserve the memory
//! its store expects it to hold from the server's budget ([`crate::query_memory`]: it may wait, or be
//! refused with `503` or `400`), run it under its timeout, and answer with the result's JSON. The
//! timeout covers all three. A query past its deadline is cancelled through its [`QueryContext`] (the
//! store's scans check it) and answered `504 QUERY_TIMEOUT`; its reservation travels in the context
//! and is released when the store's work has stopped.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use luminate_model::time::{format_duration, now_ms};
use luminate_model::{ErrorCode, QueryContext, QueryKind, QueryPlan, QueryRequest, Tenant};

use crate::app::AppState;
use crate::body::read_capped;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// Largest query body: a query is a small object, even with many filters.
const MAX_QUERY_BODY: usize = 1 << 20;

/// Handles a query, and records its type, time, answer size or error.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, ApiError> {
    let body = read_capped(
        request.into_body(),
        MAX_QUERY_BODY,
        state.config.server.read_timeout,
    )
    .await;
    let plan = body.and_then(|body| parse(&state, &body));
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            state
                .telemetry
                .query_failed(&tenant, UNPARSED, e.code, None);
            return Err(e);
        }
    };
    let query_type = query_type(&plan);
    let started = Instant::now();
    match run(&state, &tenant, &plan, started).await {
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

/// The `type` label of a query that did not parse.
const UNPARSED: &str = "unknown";

/// The query's `type` as the request named it.
fn query_type(plan: &QueryPlan) -> &'static str {
    match plan.kind {
        QueryKind::Range => "range",
        QueryKind::Aggregate(_) => "aggregate",
        QueryKind::Rate => "rate",
    }
}

fn parse(state: &AppState, body: &[u8]) -> Result<QueryPlan, ApiError> {
    let req: QueryRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("invalid query: {e}")))?;
    QueryPlan::from_request(req, now_ms(), &state.limits)
        .map_err(|e| ApiError::new(e.code, e.message))
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
        ApiError::new(
            ErrorCode::QueryTimeout,
            format!(
                "query exceeded its timeout of {}",
                format_duration(plan.timeout)
            ),
        )
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
        let response = Json(result.response(started.elapsed().as_millis() as u64)).into_response();
        Ok::<_, ApiError>((response, points))
    };
    tokio::time::timeout(ctx.remaining(), answered)
        .await
        .map_err(|_| timed_out())?
}
