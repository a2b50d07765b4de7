//! `api/v1/query` and `api/v1/query_range`: parse the expression, resolve the steps, and evaluate under
//! the query timeout (the `timeout` parameter, capped by `query_limits.max_timeout`; the JSON API's
//! default otherwise). A query past its deadline is cancelled through its context and answered
//! `503 timeout`, as Prometheus answers it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::Response;
use luminate_model::QueryContext;
use luminate_model::time::now_ms;
use luminate_promql::{Expr, Steps, encode};

use super::params::Params;
use super::source::StoreSource;
use super::{PromError, success_with_warnings};
use crate::app::AppState;
use crate::tenant::RequestTenant;

/// The label of these queries in the query self-metrics.
const QUERY_TYPE: &str = "promql";

/// `GET|POST api/v1/query`: `query`, `time` (default now), `timeout`.
#[utoipa::path(
    method(get, post),
    path = "/prometheus/api/v1/query",
    operation_id = "promQuery",
    tag = "prometheus",
    summary = "PromQL instant query",
    params(("query" = Option<String>, Query, example = "sum by (customer_id) (api_latency)", description = "A PromQL expression (required)."), ("time" = Option<String>, Query, description = "Unix seconds or RFC 3339 (default now)."), ("timeout" = Option<String>, Query, description = "Seconds or a duration, capped by `query_limits.max_timeout`.")),
    request_body(content((crate::openapi::schemas::PromForm = "application/x-www-form-urlencoded")), description = "`POST`: the parameters as a form, instead of or besides the query string."),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
        (status = 400, description = "`bad_data`: a parameter or the expression is wrong or outside the subset.", body = crate::openapi::schemas::PromFailure),
        (status = 422, description = "`execution`: a valid query that cannot be answered.", body = crate::openapi::schemas::PromFailure),
        (status = 503, description = "`timeout` or `unavailable` (Prometheus' envelope); or the guard's `STORAGE_UNAVAILABLE`.", content(
            (crate::openapi::schemas::PromFailure = "application/json"),
        )),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn instant(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, PromError> {
    let params = Params::read(request, state.config.server.read_timeout).await?;
    let t = params.time("time", now_ms())?;
    let expr = expression(&params)?;
    let steps = Steps::instant(t);
    let (value, warnings) = run(&state, &tenant, &params, &expr, &steps, false).await?;
    Ok(success_with_warnings(
        &encode::instant(&value, t),
        &warnings,
    ))
}

/// `GET|POST api/v1/query_range`: `query`, `start`, `end`, `step`, `timeout`.
#[utoipa::path(
    method(get, post),
    path = "/prometheus/api/v1/query_range",
    operation_id = "promQueryRange",
    tag = "prometheus",
    summary = "PromQL range query",
    params(("query" = Option<String>, Query, example = "sum by (customer_id) (api_latency)", description = "A PromQL expression (required)."), ("start" = Option<String>, Query, example = "2026-01-01T00:00:00Z", description = "Unix seconds or RFC 3339 (required)."), ("end" = Option<String>, Query, example = "2026-01-01T01:00:00Z", description = "Unix seconds or RFC 3339 (required)."), ("step" = Option<String>, Query, example = "60", description = "Seconds or a duration (required)."), ("timeout" = Option<String>, Query, description = "Seconds or a duration.")),
    request_body(content((crate::openapi::schemas::PromForm = "application/x-www-form-urlencoded")), description = "`POST`: the parameters as a form, instead of or besides the query string."),
    responses(
        (status = 200, description = "Prometheus' success envelope.", body = crate::openapi::schemas::PromSuccess),
        (status = 400, description = "`bad_data`: a parameter or the expression is wrong or outside the subset.", body = crate::openapi::schemas::PromFailure),
        (status = 422, description = "`execution`: a valid query that cannot be answered.", body = crate::openapi::schemas::PromFailure),
        (status = 503, description = "`timeout` or `unavailable` (Prometheus' envelope); or the guard's `STORAGE_UNAVAILABLE`.", content(
            (crate::openapi::schemas::PromFailure = "application/json"),
        )),
    ),
    security(("bearer" = ["read"]), ("basic" = ["read"])),
)]
pub async fn range(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, PromError> {
    let params = Params::read(request, state.config.server.read_timeout).await?;
    let required = |name: &str| {
        params
            .get(name)
            .is_some_and(|v| !v.is_empty())
            .then_some(())
            .ok_or_else(|| PromError::BadData(format!("invalid parameter \"{name}\": missing")))
    };
    required("start")?;
    required("end")?;
    let start = params.time("start", 0)?;
    let end = params.time("end", 0)?;
    let step = params.duration("step")?.ok_or_else(|| {
        PromError::BadData(
            "invalid parameter \"step\": cannot parse \"\" to a valid duration".into(),
        )
    })?;
    let expr = expression(&params)?;
    let steps = luminate_promql::range_steps(start, end, step)?;
    let (value, warnings) = run(&state, &tenant, &params, &expr, &steps, true).await?;
    Ok(success_with_warnings(
        &encode::range(&value, &steps),
        &warnings,
    ))
}

fn expression(params: &Params) -> Result<Expr, PromError> {
    Ok(luminate_promql::parse(params.get("query").unwrap_or(""))?)
}

/// Evaluates under the query's timeout, recording it in the query self-metrics; the value and what
/// the store could not read for it (Prometheus' `warnings`, empty for a whole answer).
async fn run(
    state: &AppState,
    tenant: &luminate_model::Tenant,
    params: &Params,
    expr: &Expr,
    steps: &Steps,
    range_query: bool,
) -> Result<(luminate_promql::Value, Vec<String>), PromError> {
    let limits = &state.limits;
    let timeout = match params.duration("timeout")? {
        None => limits.default_timeout,
        Some(ms) => Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(limits.max_timeout),
    };
    let _active = state.telemetry.query_started(tenant);
    let started = Instant::now();
    let reservations = Arc::new(Mutex::new(Vec::new()));
    let ctx = QueryContext::new(timeout).holding(reservations.clone());
    let source = StoreSource {
        state,
        tenant,
        ctx: ctx.clone(),
        reservations,
    };
    let evaluated = tokio::time::timeout(
        ctx.remaining(),
        luminate_promql::evaluate(&source, expr, steps, range_query),
    )
    .await;
    let answer = match evaluated {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(PromError::from(e)),
        Err(_) => {
            ctx.cancel();
            Err(PromError::Timeout(format!(
                "query timed out in query execution (timeout {})",
                luminate_model::time::format_duration(timeout)
            )))
        }
    };
    match &answer {
        Ok(value) => {
            let points = match value {
                luminate_promql::Value::Vector(series) => series
                    .iter()
                    .map(|s| s.values.iter().filter(|v| v.is_some()).count())
                    .sum(),
                luminate_promql::Value::Scalar(v) => v.len(),
                _ => 1,
            };
            state
                .telemetry
                .query_answered(tenant, QUERY_TYPE, points, started.elapsed());
        }
        Err(e) => {
            state
                .telemetry
                .query_failed(tenant, QUERY_TYPE, e.code(), Some(started.elapsed()))
        }
    }
    answer.map(|value| (value, ctx.warnings()))
}
