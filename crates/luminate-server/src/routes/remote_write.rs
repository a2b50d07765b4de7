//! Prometheus remote write at `POST /api/v1/write` with `Content-Type: application/x-protobuf`
//! (docs/ingest.md): the version from `proto=`, the snappy body bounded by `max_request_size_bytes`
//! after decompression, the points-per-second charge, the store writes in batches, and an answer whose
//! status follows the sender's retry rules:
//!
//! - `204` once every valid sample is stored (also when some were rejected or dropped: a `400` would make
//!   the sender drop the valid ones too), or found already stored: samples are written under the
//!   newest-sample rule ([`luminate_model::MetricsStore::write_samples`], docs/ingest.md), so a retry is a success that
//!   stores nothing twice; `400` when samples were sent and none was valid (never
//!   retried; the error names the first reason); `400`/`413` for a body that is not a remote-write body.
//! - `415` for what is not supported (a `Content-Encoding` other than snappy, an unknown `proto=`), so
//!   that senders that negotiate fall back.
//! - `503` with `Retry-After` for every transient refusal, the tenant's rate limits included: Prometheus
//!   (2.42 at least) retries `429` only with `retry_on_http_429: true` and drops the batch otherwise, while
//!   every sender retries `5xx`.
//!
//! Auth, tenancy and the request bucket are the route guard's, as for JSON writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luminate_model::{ErrorCode, Tenant, WriteOutcome};

use crate::app::AppState;
use crate::body::read_capped;
use crate::error::ApiError;
use crate::remote_write::{
    Decoded, DropReason, PROTO_V1, PROTO_V2, PROTOBUF, Version, decode, unsnappy_capped,
};
use crate::telemetry::Telemetry;

/// Remote write 2.0's answer headers.
const SAMPLES_WRITTEN: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-samples-written");
const HISTOGRAMS_WRITTEN: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-histograms-written");
const EXEMPLARS_WRITTEN: HeaderName =
    HeaderName::from_static("x-prometheus-remote-write-exemplars-written");

/// `luminate_write_errors_total` code of protocol samples equal to their series' newest: retries.
pub(crate) const DUPLICATE_SAMPLE: &str = "DUPLICATE_SAMPLE";
/// `luminate_write_errors_total` code of protocol samples not after their series' newest.
pub(crate) const OUT_OF_ORDER_SAMPLE: &str = "OUT_OF_ORDER_SAMPLE";

/// Shortest time between two log lines about dropped samples (process-wide).
const DROP_LOG_INTERVAL_MS: i64 = 10_000;

/// True when a write request is a remote-write request (its media type is protobuf), whatever its
/// `proto=`: the route guard answers such a request's rate-limit refusal with `503`.
pub fn is_remote_write(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|(media, _)| media == PROTOBUF)
}

/// The media type, lower-cased, and its `proto=` parameter.
fn media_type(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut parts = value.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    let proto = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("proto")
            .then(|| v.trim().trim_matches('"').to_owned())
    });
    Some((media, proto))
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, message)
}

/// The version a request's headers ask for, or `415`.
fn version(headers: &HeaderMap) -> Result<Version, ApiError> {
    let version = match media_type(headers) {
        Some((_, None)) => Version::V1,
        Some((_, Some(proto))) if proto == PROTO_V1 => Version::V1,
        Some((_, Some(proto))) if proto == PROTO_V2 => Version::V2,
        Some((_, Some(proto))) => {
            return Err(unsupported(format!(
                "remote write proto={proto:?} is not supported; send {PROTO_V1} or {PROTO_V2}"
            )));
        }
        None => return Err(unsupported("Content-Type is required")),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        Some("snappy") => Ok(version),
        Some(other) => Err(unsupported(format!(
            "remote write Content-Encoding {other:?} is not supported; send snappy"
        ))),
        None => Err(unsupported(
            "remote write needs Content-Encoding: snappy (the block format)",
        )),
    }
}

/// What the answer reports, besides its status.
struct Written {
    samples: usize,
    version: Version,
}

impl Written {
    fn apply(&self, response: &mut Response) {
        if self.version == Version::V2 {
            let headers = response.headers_mut();
            headers.insert(SAMPLES_WRITTEN, HeaderValue::from(self.samples));
            headers.insert(HISTOGRAMS_WRITTEN, HeaderValue::from(0));
            headers.insert(EXEMPLARS_WRITTEN, HeaderValue::from(0));
        }
    }
}

/// Answers a remote-write request.
pub async fn respond(
    state: &AppState,
    tenant: &Tenant,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let version = match version(headers) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut written = Written {
        samples: 0,
        version,
    };
    let mut response = match write(state, tenant, version, body, &mut written).await {
        Ok(status) => status.into_response(),
        Err(refusal) => retryable(refusal),
    };
    written.apply(&mut response);
    response
}

async fn write(
    state: &AppState,
    tenant: &Tenant,
    version: Version,
    body: Body,
    written: &mut Written,
) -> Result<StatusCode, Response> {
    let cap = state.config.batch_write.max_request_size_bytes;
    let raw = read_capped(body, cap, state.config.server.read_timeout)
        .await
        .map_err(IntoResponse::into_response)?;
    let rules = state.rules.clone();
    let max_batch = state.config.batch_write.max_batch_size;
    let decoded = tokio::task::spawn_blocking(move || {
        let body = unsnappy_capped(&raw, cap)?;
        decode(
            version,
            &body,
            luminate_model::time::now_ms(),
            &rules,
            max_batch,
        )
    })
    .await
    .map_err(|e| ApiError::internal(format!("remote write decoding task failed: {e}")))
    .and_then(|decoded| decoded)
    .map_err(IntoResponse::into_response)?;
    let Decoded {
        batches,
        mut rejections,
        drops,
    } = decoded;
    let telemetry = &state.telemetry;
    for reason in DropReason::ALL {
        telemetry.samples_dropped(tenant, reason.as_str(), drops.get(reason));
    }
    let valid: usize = batches.iter().map(|b| b.len()).sum();
    if valid > 0
        && let Err(limited) = state.rate_limiter.check_points(tenant, valid)
    {
        telemetry.batch_refused(tenant, limited.error.code, valid as u64);
        // `429` with `Retry-After` and the bucket's headers, made `503` by `respond`.
        return Err(limited.into_response());
    }
    let mut out_of_order = 0;
    for batch in batches {
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
                return Err(e.into_response());
            }
        };
        written.samples += outcome.accepted;
        out_of_order += count_not_newer(telemetry, tenant, &outcome);
        for r in outcome.rejected {
            rejections.push(crate::remote_write::Rejection {
                metric: String::new(),
                error: luminate_model::validate::PointError {
                    code: r.code,
                    message: r.message,
                },
            });
        }
    }
    telemetry.points_ingested(tenant, written.samples as u64);
    for r in &rejections {
        telemetry.point_rejected(tenant, r.error.code);
    }
    log_drops(
        "remote write",
        tenant,
        &rejections,
        drops.total() + out_of_order,
    );
    match rejections.first() {
        Some(first) if written.samples == 0 => Err(ApiError::new(
            first.error.code,
            format!(
                "none of {} samples stored; first rejection: {}",
                rejections.len(),
                first.error.message
            ),
        )
        .into_response()),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// Counts the samples of a protocol write the newest-sample rule did not store, by code; returns the
/// out-of-order ones, which are logged as drops (duplicates are retries: counted, not logged).
pub(crate) fn count_not_newer(
    telemetry: &Telemetry,
    tenant: &Tenant,
    outcome: &WriteOutcome,
) -> u64 {
    telemetry.samples_dropped(tenant, DUPLICATE_SAMPLE, outcome.duplicates as u64);
    telemetry.samples_dropped(tenant, OUT_OF_ORDER_SAMPLE, outcome.out_of_order as u64);
    outcome.out_of_order as u64
}

/// A `429` turned into the `503` every remote write sender retries; `Retry-After` and the body (its
/// code `RATE_LIMIT_EXCEEDED`) are kept.
pub fn retryable(mut response: Response) -> Response {
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    response
}

/// Logs rejected and dropped samples of a protocol (remote write, OTLP), at most once per
/// [`DROP_LOG_INTERVAL_MS`] across the process (a sender retrying a bad batch would otherwise fill the
/// log).
pub(crate) fn log_drops(
    protocol: &'static str,
    tenant: &Tenant,
    rejections: &[crate::remote_write::Rejection],
    dropped: u64,
) {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    if rejections.is_empty() && dropped == 0 {
        return;
    }
    let now = luminate_model::time::now_ms();
    let last = LAST.load(Ordering::Relaxed);
    if now.saturating_sub(last) < DROP_LOG_INTERVAL_MS
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let first = rejections.first();
    tracing::warn!(
        protocol,
        tenant = %tenant,
        rejected = rejections.len(),
        dropped,
        first_code = first.map(|r| r.error.code.as_str()),
        first_metric = first.map(|r| r.metric.as_str()),
        first_error = first.map(|r| r.error.message.as_str()),
        "samples not stored (see luminate_write_errors_total; logged at most every 10 s)"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use axum::Router;
    use luminate_model::time::now_ms;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;
    use crate::remote_write::STALE_NAN_BITS;
    use crate::remote_write::wire::*;
    use crate::testing::{MemoryStore, router_over};

    async fn send(
        app: &Router,
        content_type: &str,
        encoding: &str,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, String) {
        let request = axum::http::Request::post("/api/v1/write")
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_ENCODING, encoding)
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    async fn exposition(app: &Router) -> String {
        let request = axum::http::Request::get("/metrics")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn has_line(text: &str, prefix: &str, value: &str) -> bool {
        text.lines()
            .any(|l| l.starts_with(prefix) && l.ends_with(&format!(" {value}")))
    }

    #[tokio::test]
    async fn partial_v1_batch_stores_the_valid_samples_answers_204_and_counts_each_drop() {
        let store = Arc::new(MemoryStore::refusing("limited"));
        let app = router_over(store.clone(), Config::default());
        let now = now_ms();
        let stale = f64::from_bits(STALE_NAN_BITS);
        let body = request_v1(&[
            series_v1(
                &[("__name__", "up"), ("job", "a")],
                &[(1.0, now), (stale, now + 1)],
                1,
                0,
            ),
            series_v1(&[("__name__", "hist")], &[], 0, 2),
            series_v1(&[("__name__", "9bad")], &[(1.0, now)], 0, 0),
            series_v1(&[("__name__", "limited_x")], &[(1.0, now)], 0, 0),
        ]);
        let (status, _, text) = send(&app, PROTOBUF, "snappy", snappy(&body)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);
        let metrics = exposition(&app).await;
        let errors = |code: &str| {
            format!("luminate_write_errors_total{{tenant=\"default\",code=\"{code}\"}}")
        };
        for (code, n) in [
            ("STALE_MARKER", "1"),
            ("EXEMPLAR", "1"),
            ("NATIVE_HISTOGRAM", "2"),
            ("INVALID_METRIC_NAME", "1"),
            ("CARDINALITY_EXCEEDED", "1"),
        ] {
            assert!(has_line(&metrics, &errors(code), n), "{code}: {metrics}");
        }
        assert!(has_line(
            &metrics,
            "luminate_metrics_ingested_total{tenant=\"default\"}",
            "1"
        ));
    }

    #[tokio::test]
    async fn a_resent_batch_is_204_stores_nothing_twice_and_counts_duplicates_and_older_samples() {
        let store = Arc::new(MemoryStore::default());
        let app = router_over(store.clone(), Config::default());
        let now = now_ms();
        let body = snappy(&request_v1(&[series_v1(
            &[("__name__", "up"), ("job", "a")],
            &[(1.0, now - 1), (2.0, now)],
            0,
            0,
        )]));
        for _ in 0..2 {
            let (status, _, text) = send(&app, PROTOBUF, "snappy", body.clone()).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        }
        let metrics = exposition(&app).await;
        let errors = |code: &str| {
            format!("luminate_write_errors_total{{tenant=\"default\",code=\"{code}\"}}")
        };
        assert!(
            has_line(&metrics, &errors(DUPLICATE_SAMPLE), "1"),
            "{metrics}"
        );
        assert!(
            has_line(&metrics, &errors(OUT_OF_ORDER_SAMPLE), "1"),
            "{metrics}"
        );
        assert!(has_line(
            &metrics,
            "luminate_metrics_ingested_total{tenant=\"default\"}",
            "2"
        ));
    }

    #[tokio::test]
    async fn all_invalid_is_400_and_metadata_only_is_204() {
        let store = Arc::new(MemoryStore::default());
        let app = router_over(store.clone(), Config::default());
        let body = request_v1(&[series_v1(&[("__name__", "old")], &[(1.0, 5)], 0, 0)]);
        let (status, _, text) = send(&app, PROTOBUF, "snappy", snappy(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("INVALID_TIMESTAMP"), "{text}");
        let (status, _, _) = send(&app, PROTOBUF, "snappy", snappy(&request_v1(&[]))).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(store.writes.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn v2_answers_with_the_written_headers() {
        let app = router_over(Arc::new(MemoryStore::default()), Config::default());
        let now = now_ms();
        let body = request_v2(
            &["", "__name__", "m", "customer_id", "c1"],
            &[series_v2(&[1, 2, 3, 4], &[(1.0, now), (2.0, now + 1)], 1)],
        );
        let v2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
        let (status, headers, text) = send(&app, v2, "snappy", snappy(&body)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        assert_eq!(headers[&SAMPLES_WRITTEN], "2");
        assert_eq!(headers[&HISTOGRAMS_WRITTEN], "0");
        assert_eq!(headers[&EXEMPLARS_WRITTEN], "0");
    }

    #[tokio::test]
    async fn unsupported_encodings_and_versions_are_415_and_bad_bodies_400_or_413() {
        let app = router_over(Arc::new(MemoryStore::default()), Config::default());
        let body = snappy(&request_v1(&[]));
        for (content_type, encoding) in [
            (PROTOBUF, "zstd"),
            (PROTOBUF, "identity"),
            (
                "application/x-protobuf;proto=io.prometheus.write.v3.Request",
                "snappy",
            ),
            ("text/plain", "snappy"),
        ] {
            let (status, _, text) = send(&app, content_type, encoding, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type} {encoding}: {text}"
            );
        }
        let mut bomb = Vec::new();
        varint(u64::from(u32::MAX), &mut bomb);
        let (status, _, _) = send(&app, PROTOBUF, "snappy", bomb).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let full = request_v1(&[series_v1(&[("__name__", "m")], &[(1.0, now_ms())], 0, 0)]);
        let truncated = snappy(&full[..full.len() - 3]);
        let (status, _, text) = send(&app, PROTOBUF, "snappy", truncated).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("malformed protobuf"), "{text}");
        let (status, _, _) = send(&app, PROTOBUF, "snappy", b"not snappy".to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn large_bodies_are_stored_in_batches_past_max_batch_size() {
        let store = Arc::new(MemoryStore::default());
        let mut config = Config::default();
        config.batch_write.max_batch_size = 10;
        let app = router_over(store.clone(), config);
        let now = now_ms();
        let samples: Vec<(f64, i64)> = (0..25).map(|i| (1.0, now - i)).collect();
        let body = request_v1(&[series_v1(&[("__name__", "m")], &samples, 0, 0)]);
        let (status, _, text) = send(&app, PROTOBUF, "snappy", snappy(&body)).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        assert_eq!(store.writes.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn rate_limits_answer_503_with_retry_after_which_senders_retry() {
        let store = Arc::new(MemoryStore::default());
        let mut config = Config::default();
        config.rate_limits.metrics_per_second = Some(2);
        // The points bucket's burst is max(rate, max_batch_size): 5 here.
        config.batch_write.max_batch_size = 5;
        let app = router_over(store.clone(), config);
        let now = now_ms();
        let samples: Vec<(f64, i64)> = (0..5).map(|i| (1.0, now - i)).collect();
        let body = snappy(&request_v1(&[series_v1(
            &[("__name__", "m")],
            &samples,
            0,
            0,
        )]));
        let (status, _, _) = send(&app, PROTOBUF, "snappy", body.clone()).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, headers, text) = send(&app, PROTOBUF, "snappy", body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        assert!(text.contains("RATE_LIMIT_EXCEEDED"), "{text}");
        assert!(headers.contains_key(header::RETRY_AFTER));
        assert_eq!(headers[crate::limits::LIMIT_HEADER], "5");
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);

        let mut config = Config::default();
        config.rate_limits.write_requests_per_second = Some(1);
        let app = router_over(Arc::new(MemoryStore::default()), config);
        let empty = snappy(&request_v1(&[]));
        let (first, _, _) = send(&app, PROTOBUF, "snappy", empty.clone()).await;
        let (second, headers, _) = send(&app, PROTOBUF, "snappy", empty).await;
        assert_eq!(
            (first, second),
            (StatusCode::NO_CONTENT, StatusCode::SERVICE_UNAVAILABLE)
        );
        assert!(headers.contains_key(header::RETRY_AFTER));
    }
}
