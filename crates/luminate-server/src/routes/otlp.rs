//! OTLP/HTTP metrics at `POST /v1/metrics` (docs/ingest.md): protobuf or JSON by `Content-Type`,
//! optionally gzip, bounded by `max_request_size_bytes` before and after inflating; the points-per-second
//! charge; the store writes in batches; and the spec's answer, an `ExportMetricsServiceResponse` in the
//! request's encoding:
//!
//! - `200`, with `partial_success {rejected_data_points, error_message}` when some data points were
//!   rejected or dropped (also when all were: the spec forbids retrying them, which a `200` ensures).
//!   Points are written under the newest-sample rule (docs/ingest.md): points not after their series'
//!   newest are not stored and not reported there either — a retried export's points are exactly
//!   that, and the rule cannot tell a resent older point from a late one; they are counted
//!   (`DUPLICATE_SAMPLE`, `OUT_OF_ORDER_SAMPLE`) and the out-of-order ones logged;
//! - `400` for a body that is not the message, `413` past the size cap, `415` for another media type or
//!   encoding;
//! - `503` with `Retry-After` for every transient refusal (rate limits, storage): OTel exporters retry
//!   429/502/503/504 only.
//!
//! Auth, tenancy and the request bucket are the route guard's (`write` scope), as for JSON writes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luminate_model::{ErrorCode, Tenant};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use serde_json::json;

use crate::app::AppState;
use crate::body::{gunzip_capped, read_capped};
use crate::error::ApiError;
use crate::limits::Limited;
use crate::otlp::{Export, decode_json, decode_protobuf};
use crate::remote_write::DropReason;
use crate::routes::remote_write::{count_not_newer, log_drops, retryable};
use crate::routes::write::outcome_of;
use crate::telemetry::WriteOutcome;
use crate::tenant::RequestTenant;

/// The route, the OTLP/HTTP default path for metrics.
pub const PATH: &str = "/v1/metrics";

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, message)
}

/// The encoding and whether the body is gzip, or `415`.
fn negotiate(headers: &HeaderMap) -> Result<(Encoding, bool), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    let encoding = match media.as_deref() {
        Some("application/x-protobuf") => Encoding::Protobuf,
        Some("application/json") => Encoding::Json,
        Some(other) => {
            return Err(unsupported(format!(
                "OTLP Content-Type {other:?} is not supported; send application/x-protobuf or application/json"
            )));
        }
        None => return Err(unsupported("Content-Type is required")),
    };
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match coding.as_deref() {
        None | Some("identity") | Some("") => Ok((encoding, false)),
        Some("gzip") => Ok((encoding, true)),
        Some(other) => Err(unsupported(format!(
            "Content-Encoding {other:?} is not supported; send gzip or no encoding"
        ))),
    }
}

/// `POST /v1/metrics`.
#[utoipa::path(
    post,
    path = "/v1/metrics",
    operation_id = "otlpExportMetrics",
    tag = "write",
    summary = "OTLP/HTTP metrics export",
    description = "An `ExportMetricsServiceRequest` as protobuf or JSON, optionally gzip (docs/ingest.md). Answered in the request's encoding; the tenant's rate limits answer `503` with `Retry-After` (OTLP exporters retry 429/502/503/504 only).",
    request_body(content(
        ("application/x-protobuf"),
        (Object = "application/json"),
    )),
    responses(
        (status = 200, description = "Stored; `partialSuccess` names the data points rejected or dropped.", content(
            (crate::openapi::schemas::OtlpExportResponse = "application/json"),
            ("application/x-protobuf"),
        )),
        (status = 400, description = "`INVALID_REQUEST`: not an `ExportMetricsServiceRequest`.", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over `max_request_size_bytes` before or after inflating.", body = crate::openapi::schemas::ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: another content type or encoding.", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "`STORAGE_UNAVAILABLE`, or the tenant's rate limits, with `Retry-After`.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["write"])),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (encoding, gzip) = match negotiate(&parts.headers) {
        Ok(n) => n,
        Err(e) => {
            state
                .telemetry
                .write_finished(&tenant, WriteOutcome::Rejected, Default::default());
            return e.into_response();
        }
    };
    let started = std::time::Instant::now();
    let (response, outcome) = match export(&state, &tenant, encoding, gzip, body).await {
        Ok((rejected, message)) => (
            answer(encoding, rejected, message),
            if rejected > 0 {
                WriteOutcome::Partial
            } else {
                WriteOutcome::Accepted
            },
        ),
        Err(refusal) => {
            let response = retryable(refusal);
            let outcome = outcome_of(&response);
            (response, outcome)
        }
    };
    state
        .telemetry
        .write_finished(&tenant, outcome, started.elapsed());
    response
}

/// The `200` answer.
fn answer(encoding: Encoding, rejected: u64, message: String) -> Response {
    let body = match encoding {
        Encoding::Protobuf => {
            use prost::Message;
            ExportMetricsServiceResponse {
                partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected as i64,
                    error_message: message,
                }),
            }
            .encode_to_vec()
        }
        Encoding::Json if rejected > 0 => json!({
            "partialSuccess": {"rejectedDataPoints": rejected.to_string(), "errorMessage": message}
        })
        .to_string()
        .into_bytes(),
        Encoding::Json => b"{}".to_vec(),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

/// Decodes, charges and stores a body; returns the rejected data points and the message saying why.
async fn export(
    state: &AppState,
    tenant: &Tenant,
    encoding: Encoding,
    gzip: bool,
    body: Body,
) -> Result<(u64, String), Response> {
    let cap = state.config.batch_write.max_request_size_bytes;
    let raw = read_capped(body, cap, state.config.server.read_timeout)
        .await
        .map_err(IntoResponse::into_response)?;
    let rules = state.rules.clone();
    let max_batch = state.config.batch_write.max_batch_size;
    let promoted = state.config.otlp.promote_resource_attributes.clone();
    let export = tokio::task::spawn_blocking(move || {
        let body = if gzip { gunzip_capped(&raw, cap)? } else { raw };
        let now = luminate_model::time::now_ms();
        match encoding {
            Encoding::Protobuf => decode_protobuf(&body, now, &rules, max_batch, &promoted),
            Encoding::Json => decode_json(&body, now, &rules, max_batch, &promoted),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("OTLP decoding task failed: {e}")))
    .and_then(|decoded| decoded)
    .map_err(IntoResponse::into_response)?;
    store(state, tenant, export)
        .await
        .map_err(Refusal::into_response)
}

/// Why a decoded export was not stored at all; both are transient for the sender.
pub(crate) enum Refusal {
    /// The tenant's points-per-second limit.
    RateLimited(Limited),
    /// The store refused the write (`503` with `Retry-After` when it is unavailable).
    Store(ApiError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::RateLimited(limited) => limited.into_response(),
            Self::Store(e) => e.into_response(),
        }
    }
}

/// Charges and stores a decoded export (the part OTLP/HTTP and OTLP/gRPC share); returns the rejected
/// data points and the message saying why.
pub(crate) async fn store(
    state: &AppState,
    tenant: &Tenant,
    export: Export,
) -> Result<(u64, String), Refusal> {
    let Export {
        decoded,
        mut rejected_data_points,
    } = export;
    let telemetry = &state.telemetry;
    for reason in DropReason::ALL {
        telemetry.samples_dropped(tenant, reason.as_str(), decoded.drops.get(reason));
    }
    let valid = decoded.points();
    if valid > 0
        && let Err(limited) = state.rate_limiter.check_points(tenant, valid)
    {
        telemetry.batch_refused(tenant, limited.error.code, valid as u64);
        return Err(Refusal::RateLimited(limited));
    }
    let mut stored = 0usize;
    let mut messages: Vec<String> = decoded
        .rejections
        .iter()
        .map(|r| format!("{}: {}", r.error.code.as_str(), r.error.message))
        .collect();
    for r in &decoded.rejections {
        telemetry.point_rejected(tenant, r.error.code);
    }
    let mut out_of_order = 0;
    for batch in decoded.batches {
        let n = batch.len();
        let outcome = match state.store.write_samples(tenant, Arc::new(batch)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let e = ApiError::from(e);
                telemetry.batch_refused(tenant, e.code, n as u64);
                let e = if e.status().is_server_error() && e.retry_after.is_none() {
                    e.with_retry_after(1)
                } else {
                    e
                };
                return Err(Refusal::Store(e));
            }
        };
        stored += outcome.accepted;
        out_of_order += count_not_newer(telemetry, tenant, &outcome);
        // The store refuses single points (cardinality limits): counted as points, not data points.
        rejected_data_points += outcome.rejected.len() as u64;
        for r in outcome.rejected {
            telemetry.point_rejected(tenant, r.code);
            messages.push(format!("{}: {}", r.code.as_str(), r.message));
        }
    }
    telemetry.points_ingested(tenant, stored as u64);
    log_drops(
        "otlp",
        tenant,
        &decoded.rejections,
        decoded.drops.total() + out_of_order,
    );
    for reason in DropReason::ALL {
        let n = decoded.drops.get(reason);
        if n > 0 && reason != DropReason::Exemplar {
            messages.push(format!("{n} dropped as {}", reason.as_str()));
        }
    }
    let message = match messages.len() {
        0 => String::new(),
        1 => messages.remove(0),
        n => format!("{} (and {} more)", messages.remove(0), n - 1),
    };
    Ok((rejected_data_points, message))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::Ordering;

    use axum::Router;
    use luminate_model::time::now_ms;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data,
        number_data_point::Value as NumberValue,
    };
    use prost::Message;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;
    use crate::testing::{MemoryStore, router_over};

    async fn send(
        app: &Router,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request =
            axum::http::Request::post(PATH).header(header::CONTENT_TYPE, content_type);
        if let Some(encoding) = encoding {
            request = request.header(header::CONTENT_ENCODING, encoding);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    /// A gauge named `name` with one data point per value, a millisecond apart from now on (one
    /// series: data points at one timestamp would be out of order after the first).
    fn gauge(name: &str, values: &[f64]) -> Vec<u8> {
        gauge_at(name, values, now_ms())
    }

    /// [`gauge`] from `start_ms` on.
    fn gauge_at(name: &str, values: &[f64], start_ms: i64) -> Vec<u8> {
        let start = start_ms as u64 * 1_000_000;
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: name.into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: values
                                .iter()
                                .zip(0u64..)
                                .map(|(v, i)| NumberDataPoint {
                                    time_unix_nano: start + i * 1_000_000,
                                    value: Some(NumberValue::AsDouble(*v)),
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[tokio::test]
    async fn protobuf_partial_success_is_200_with_the_rejected_count_in_protobuf() {
        let store = Arc::new(MemoryStore::refusing("limited"));
        let app = router_over(store.clone(), Config::default());
        let (status, headers, body) = send(
            &app,
            "application/x-protobuf",
            Some("gzip"),
            gzip(&gauge("temp", &[1.0, f64::NAN, 2.0])),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        let answer = ExportMetricsServiceResponse::decode(&body[..]).unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected_data_points, 1);
        assert!(
            partial.error_message.contains("NON_FINITE_VALUE"),
            "{partial:?}"
        );

        // Cardinality refusals by the store count one each; a full success has no partial_success.
        let (status, _, body) = send(
            &app,
            "application/x-protobuf",
            None,
            gauge("limited_x", &[1.0]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let partial = ExportMetricsServiceResponse::decode(&body[..])
            .unwrap()
            .partial_success
            .unwrap();
        assert_eq!(partial.rejected_data_points, 1);
        assert!(
            partial.error_message.contains("CARDINALITY_EXCEEDED"),
            "{partial:?}"
        );
        let (status, _, body) =
            send(&app, "application/x-protobuf", None, gauge("ok", &[1.0])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            ExportMetricsServiceResponse::decode(&body[..])
                .unwrap()
                .partial_success,
            None
        );
        assert_eq!(store.writes.load(Ordering::SeqCst), 3);
        let request = axum::http::Request::get("/metrics")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let metrics = String::from_utf8(bytes.to_vec()).unwrap();
        for line in [
            "luminate_write_errors_total{tenant=\"default\",code=\"NON_FINITE_VALUE\"} 1",
            "luminate_write_errors_total{tenant=\"default\",code=\"CARDINALITY_EXCEEDED\"} 1",
            "luminate_write_requests_total{tenant=\"default\",outcome=\"partial\"} 2",
            "luminate_write_requests_total{tenant=\"default\",outcome=\"accepted\"} 1",
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
        }
    }

    #[tokio::test]
    async fn a_retried_export_stores_nothing_twice_and_answers_a_full_success() {
        let store = Arc::new(MemoryStore::default());
        let app = router_over(store.clone(), Config::default());
        let now = now_ms();
        let body = gauge_at("temp", &[1.0, 2.0], now);
        for _ in 0..2 {
            let (status, _, answer) =
                send(&app, "application/x-protobuf", None, body.clone()).await;
            assert_eq!(status, StatusCode::OK);
            let answer = ExportMetricsServiceResponse::decode(&answer[..]).unwrap();
            assert_eq!(answer.partial_success, None);
        }
        // Before the newest, with another value: not stored, counted.
        let (status, _, answer) = send(
            &app,
            "application/x-protobuf",
            None,
            gauge_at("temp", &[5.0], now),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let answer = ExportMetricsServiceResponse::decode(&answer[..]).unwrap();
        assert_eq!(answer.partial_success, None);
        let metrics = String::from_utf8(
            axum::body::to_bytes(
                app.clone()
                    .oneshot(
                        axum::http::Request::get("/metrics")
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap()
                    .into_body(),
                usize::MAX,
            )
            .await
            .unwrap()
            .to_vec(),
        )
        .unwrap();
        for line in [
            "luminate_write_errors_total{tenant=\"default\",code=\"DUPLICATE_SAMPLE\"} 1",
            "luminate_write_errors_total{tenant=\"default\",code=\"OUT_OF_ORDER_SAMPLE\"} 2",
            "luminate_metrics_ingested_total{tenant=\"default\"} 2",
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
        }
    }

    #[tokio::test]
    async fn other_encodings_are_415_bad_bodies_400_and_gzip_bombs_413() {
        let app = router_over(Arc::new(MemoryStore::default()), Config::default());
        for (content_type, encoding) in [
            ("application/x-protobuf", Some("zstd")),
            ("application/grpc", None),
            ("text/plain", None),
        ] {
            let (status, _, _) = send(&app, content_type, encoding, gauge("m", &[1.0])).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        }
        let full = gauge("m", &[1.0]);
        let (status, _, _) = send(
            &app,
            "application/x-protobuf",
            None,
            full[..full.len() - 2].to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _, _) = send(
            &app,
            "application/x-protobuf",
            Some("gzip"),
            b"not gzip".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let mut config = Config::default();
        config.batch_write.max_request_size_bytes = 1 << 16;
        let app = router_over(Arc::new(MemoryStore::default()), config);
        let bomb = gzip(&vec![b' '; 1 << 20]);
        let (status, _, _) = send(&app, "application/json", Some("gzip"), bomb).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn storage_unavailable_answers_503_with_retry_after() {
        let store = Arc::new(MemoryStore::default());
        store.unavailable.store(true, Ordering::SeqCst);
        let app = router_over(store.clone(), Config::default());
        let (status, headers, text) =
            send(&app, "application/x-protobuf", None, gauge("m", &[1.0])).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(String::from_utf8_lossy(&text).contains("STORAGE_UNAVAILABLE"));
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn rate_limits_answer_503_with_retry_after_and_store_nothing() {
        let store = Arc::new(MemoryStore::default());
        let mut config = Config::default();
        config.rate_limits.metrics_per_second = Some(2);
        config.batch_write.max_batch_size = 3;
        let app = router_over(store.clone(), config);
        let body = gauge("m", &[1.0, 2.0, 3.0]);
        let (status, _, _) = send(&app, "application/x-protobuf", None, body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        let (status, headers, text) = send(&app, "application/x-protobuf", None, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(String::from_utf8_lossy(&text).contains("RATE_LIMIT_EXCEEDED"));
        assert!(headers.contains_key(header::RETRY_AFTER));
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);

        let mut config = Config::default();
        config.rate_limits.write_requests_per_second = Some(1);
        let app = router_over(Arc::new(MemoryStore::default()), config);
        let (first, _, _) = send(&app, "application/json", None, b"{}".to_vec()).await;
        let (second, headers, _) = send(&app, "application/json", None, b"{}".to_vec()).await;
        assert_eq!(
            (first, second),
            (StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE)
        );
        assert!(headers.contains_key(header::RETRY_AFTER));
    }
}
