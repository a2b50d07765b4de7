//! `POST /api/v1/export` (docs/api.md, "Export"): every point of a metric, or of all the tenant's
//! metrics, in a time range and matching filters, streamed as JSON lines in the write route's point
//! shape — what `luminate import` and the write route take back unchanged.
//!
//! The answer streams as the store reads: batches from [`MetricsStore::export`] are encoded one at a
//! time and handed to the HTTP body, which asks for the next only once the connection has taken the
//! last, so a slow client slows the store instead of filling memory. No `range` limit and no query
//! timeout apply; the route sits outside the response deadline. Its own bounds are [`ExportSlots`]:
//! at most [`MAX_EXPORTS_PER_TENANT`] exports of one tenant and [`MAX_EXPORTS`] of the whole server at
//! once (`429` with `Retry-After` past either).
//!
//! Failures: a bad request is answered `400` before anything is read. The store's first batch is
//! awaited before the `200` is sent, so a store that cannot start answers in the contract's format. A
//! failure after that can no longer change the status: the body is cut without its terminating chunk,
//! which every HTTP client reports as an incomplete transfer, never as a short export that looks whole.
//!
//! [`MetricsStore::export`]: luminate_model::MetricsStore::export

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_core::Stream;
use luminate_model::time::now_ms;
use luminate_model::{
    ErrorCode, ExportBatch, ExportPlan, ExportRequest, ExportStream, StoreError, Tenant,
};
use serde_json::json;

use crate::app::AppState;
use crate::body::read_capped;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// Largest request body: an export request is a small object, even with many filters.
const MAX_EXPORT_BODY: usize = 1 << 20;
/// Exports of one tenant running at once.
pub const MAX_EXPORTS_PER_TENANT: usize = 2;
/// Exports running at once on the server, over every tenant: each holds a thread of the blocking
/// pool (embedded) or a ClickHouse connection while it runs.
pub const MAX_EXPORTS: usize = 8;
/// `Retry-After` of a refused export, in seconds.
const RETRY_AFTER_SECONDS: u64 = 5;

/// The exports running now, per tenant.
#[derive(Debug, Default)]
pub struct ExportSlots {
    running: Arc<Mutex<HashMap<Tenant, usize>>>,
}

/// A running export's slot, given back when the export's body is dropped (finished, failed or its
/// client gone).
#[derive(Debug)]
pub struct ExportSlot {
    running: Arc<Mutex<HashMap<Tenant, usize>>>,
    tenant: Tenant,
}

impl ExportSlots {
    /// A slot for one more export of `tenant`; `429 RATE_LIMIT_EXCEEDED` when the tenant or the server
    /// already runs its most.
    pub fn start(&self, tenant: &Tenant) -> Result<ExportSlot, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let total: usize = running.values().sum();
        let mine = running.get(tenant).copied().unwrap_or(0);
        let refused = |limit: &str, cap: usize, whose: String| {
            ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!(
                    "{whose} already runs {cap} exports, the most at once; retry when one finishes"
                ),
            )
            .with_details(
                json!({"limit": limit, "value": cap, "retry_after_seconds": RETRY_AFTER_SECONDS}),
            )
            .with_retry_after(RETRY_AFTER_SECONDS)
        };
        if mine >= MAX_EXPORTS_PER_TENANT {
            return Err(refused(
                "concurrent_exports_per_tenant",
                MAX_EXPORTS_PER_TENANT,
                format!("tenant {tenant}"),
            ));
        }
        if total >= MAX_EXPORTS {
            return Err(refused(
                "concurrent_exports",
                MAX_EXPORTS,
                "the server".to_owned(),
            ));
        }
        *running.entry(tenant.clone()).or_default() += 1;
        Ok(ExportSlot {
            running: self.running.clone(),
            tenant: tenant.clone(),
        })
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.tenant);
            }
        }
    }
}

/// Handles an export: checks the request, takes a slot, starts the store's export and streams it.
#[utoipa::path(
    post,
    path = "/api/v1/export",
    operation_id = "export",
    tag = "query",
    summary = "Stream every point of a metric (or of all metrics) in a time range, as JSON lines",
    description = "No `range` limit and no query timeout: the answer streams for as long as the export takes, with bounded memory. At most 2 exports run at once per tenant and 8 per server (`429` with `Retry-After` past either). A storage failure after the first line ends the stream early, without a last newline (docs/api.md, \"Export\").",
    request_body(content = crate::openapi::schemas::ExportRequest, examples(
        ("one metric" = (summary = "A metric's last hour", value = json!({"metricName": "api_latency", "timeRange": {"relative": "1h"}}))),
        ("every metric" = (summary = "Every metric of the tenant, filtered", value = json!({"timeRange": {"relative": "15m"}, "filters": {"region": ["eu", "us"]}}))),
    )),
    responses(
        (status = 200, description = "One point per line: `{\"name\",\"timestamp\",\"value\",\"dimensions\"}`.", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "`INVALID_QUERY` (the time range, a filter, the metric name), or a body that is not an export request.", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: a body over 1 MiB.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["read"])),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Result<Response, ApiError> {
    let body = read_capped(
        request.into_body(),
        MAX_EXPORT_BODY,
        state.config.server.read_timeout,
    )
    .await?;
    let plan = parse(&state, &body)?;
    let slot = state.exports.start(&tenant)?;
    let mut batches = state.store.export(&tenant, &plan).await?;
    // The first batch (or the end, or a failure) before the status: a store that cannot start is
    // answered with its error.
    let first = std::future::poll_fn(|cx| batches.as_mut().poll_next(cx)).await;
    let first = first.transpose()?;
    let lines = JsonLines {
        first,
        batches,
        _slot: slot,
        tenant,
    };
    let mut response = Body::from_stream(lines).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

fn parse(state: &AppState, body: &[u8]) -> Result<ExportPlan, ApiError> {
    let req: ExportRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("invalid export request: {e}"),
        )
    })?;
    ExportPlan::from_request(req, now_ms(), &state.limits)
        .map_err(|e| ApiError::new(e.code, e.message))
}

/// The response body: each batch of the store's stream as JSON lines, holding the export's slot.
struct JsonLines {
    /// The batch read before the status was sent.
    first: Option<ExportBatch>,
    batches: ExportStream,
    _slot: ExportSlot,
    /// For the log line of a failure.
    tenant: Tenant,
}

impl JsonLines {
    fn encode(batch: &ExportBatch) -> Bytes {
        // About 100 bytes a point: one allocation for most batches.
        let mut out = Vec::with_capacity(batch.len() * 100 + batch.text_bytes());
        batch.write_json_lines(&mut out);
        Bytes::from(out)
    }
}

impl Stream for JsonLines {
    type Item = Result<Bytes, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(batch) = self.first.take() {
            return Poll::Ready(Some(Ok(Self::encode(&batch))));
        }
        match self.batches.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(batch))) => Poll::Ready(Some(Ok(Self::encode(&batch)))),
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(tenant = %self.tenant, error = %e, "export failed after its answer began; the body is cut");
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_tenant_and_server_and_given_back() {
        let slots = ExportSlots::default();
        let a = Tenant::new("a");
        let held: Vec<ExportSlot> = (0..MAX_EXPORTS_PER_TENANT)
            .map(|_| slots.start(&a).unwrap())
            .collect();
        let e = slots.start(&a).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimitExceeded);
        drop(held);
        let mut held = Vec::new();
        for i in 0..MAX_EXPORTS {
            held.push(slots.start(&Tenant::new(format!("t{i}"))).unwrap());
        }
        let e = slots.start(&a).unwrap_err();
        assert!(
            e.message.contains("the server already runs 8 exports"),
            "{}",
            e.message
        );
        held.pop();
        assert!(slots.start(&a).is_ok());
    }
}
