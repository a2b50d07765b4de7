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
