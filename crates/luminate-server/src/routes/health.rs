//! `GET /api/v1/health` (CONTRACT §7, no auth): 200 when the storage is healthy, else 503, with the
//! version, uptime, the storage's own report and a timed check. The check is bounded so that a hung
//! backend makes health say so instead of hanging too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use luminate_model::store::{HealthStatus, StorageHealth};
use serde_json::{Value, json};

use crate::app::AppState;

/// Longest wait for the storage's health.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Handles a health check.
pub async fn handle(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let started = Instant::now();
    let storage = tokio::time::timeout(CHECK_TIMEOUT, state.store.health())
        .await
        .unwrap_or_else(|_| StorageHealth {
            status: HealthStatus::Unavailable,
            disk_used_bytes: None,
            error: Some(format!(
                "storage health check did not answer within {}s",
                CHECK_TIMEOUT.as_secs()
            )),
        });
    let duration_ms = started.elapsed().as_millis() as u64;
    let healthy = storage.status == HealthStatus::Healthy;
    let mut check = json!({"status": if healthy { "healthy" } else { "unhealthy" }, "duration_ms": duration_ms});
    if let Some(error) = &storage.error {
        check["message"] = json!(error);
    }
    let mut storage_json = json!({
        "backend": state.store.backend_name(),
        "status": storage.status,
        "disk_used_bytes": storage.disk_used_bytes,
    });
    if let Some(error) = &storage.error {
        storage_json["error"] = json!(error);
    }
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "storage": storage_json,
        "checks": {"storage": check},
    });
    (
        if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
