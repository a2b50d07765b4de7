//! `GET /api/v1/health` (CONTRACT §7, no auth): the version, the uptime, the storage's own report and
//! every named check with its status, message and time; 200 unless a check fails (see
//! [`crate::health`], which runs the checks and owns the verdict).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::health::{self, CHECK_TIMEOUT, Verdict};

/// Handles a health check.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "health",
    tag = "operations",
    summary = "Health: every check of the storage backend (no authentication)",
    responses(
        (status = 200, description = "`healthy` or `degraded`: ready.", body = crate::openapi::schemas::HealthReport),
        (status = 503, description = "`unhealthy`: a check failed; or no answer within `server.write_timeout` (the error body).", content(
            (crate::openapi::schemas::HealthReport = "application/json"),
        )),
    ),
)]
pub async fn handle(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let report = health::run(&state.store, CHECK_TIMEOUT).await;
    let storage = &report.storage;
    let mut storage_json = json!({
        "backend": state.store.backend_name(),
        "status": storage.status,
        "disk_used_bytes": storage.disk_used_bytes,
    });
    if let Some(error) = &storage.error {
        storage_json["error"] = json!(error);
    }
    let mut checks = Map::new();
    for check in &report.checks {
        let mut entry = json!({
            "status": check.outcome.status,
            "duration_ms": check.duration.as_millis() as u64,
        });
        if let Some(message) = &check.outcome.message {
            entry["message"] = json!(message);
        }
        checks.insert(check.name.to_owned(), entry);
    }
    let verdict = report.verdict();
    let body = json!({
        "status": verdict.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "storage": storage_json,
        "checks": checks,
    });
    let status = match verdict {
        Verdict::Healthy | Verdict::Degraded => StatusCode::OK,
        Verdict::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(body))
}

/// `GET /api/v1/health/live`: whether this process should be restarted (no authentication). `200
/// {"status": "alive"}` unless only a restart recovers the storage (the embedded engine poisoned by a
/// failed write or fsync): then `503 {"status": "restart_needed", "reason"}`. Everything else that
/// fails `/api/v1/health` — a full disk, an unreachable ClickHouse, a check timing out — answers 200
/// here, because a restart cures none of it and a pod restarted on a full disk only loses its page
/// cache and replays its WAL again. Orchestrators' liveness probes point here, readiness at
/// `/api/v1/health`. Answered without touching the storage, so it is as fast as the process is alive.
#[utoipa::path(
    get,
    path = "/api/v1/health/live",
    operation_id = "liveness",
    tag = "operations",
    summary = "Liveness: whether only a restart recovers this process (no authentication)",
    responses(
        (status = 200, description = "`alive`: a restart would not help, whatever `/api/v1/health` says.", body = crate::openapi::schemas::Liveness),
        (status = 503, description = "`restart_needed`, with the reason.", body = crate::openapi::schemas::Liveness),
    ),
)]
pub async fn live(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    match state.store.restart_needed() {
        None => (StatusCode::OK, Json(json!({"status": "alive"}))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "restart_needed", "reason": reason})),
        ),
    }
}
