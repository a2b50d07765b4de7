//! `GET /api/v1/status/overview`: what an operator or a dashboard wants at a glance — ingestion rate,
//! write and query p95/p99 latency, series and storage use, errors — in one JSON object, from the
//! self-metrics' totals and the background collector's latest round (see
//! `crate::telemetry::overview`). It reads only cached figures, so it is as cheap as a scrape. It
//! shows every tenant's totals together, so it needs the `admin` scope when auth is on.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;

/// Handles an overview.
#[utoipa::path(
    get,
    path = "/api/v1/status/overview",
    operation_id = "statusOverview",
    tag = "admin",
    summary = "Ingestion, latency, errors and storage at a glance (every tenant)",
    responses((status = 200, description = "The overview.", body = crate::openapi::schemas::Overview)),
    security(("bearer" = ["admin"])),
)]
pub async fn overview(State(state): State<Arc<AppState>>) -> Json<Value> {
    let overview = state.telemetry.overview();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "backend": state.store.backend_name(),
        "collector_interval_seconds": state.config.metrics.interval.as_secs_f64(),
        "overview": overview,
    }))
}
