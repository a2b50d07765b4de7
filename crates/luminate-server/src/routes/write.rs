//! `POST /api/v1/write` (CONTRACT §3), JSON; a protobuf body is Prometheus remote write, handed to
//! [`super::remote_write`]. For JSON: media type and encoding checks, bounded read and inflate,
//! lenient per-point decoding and validation, the store write, and the 200 / 207 / 400 answer with
//! per-point errors by their index in the batch. Retries with an `Idempotency-Key` replay the first
//! answer (see [`crate::idempotency`]); the answer is built from the store's outcome by a function
//! handed to the store ([`answer`]), so that a store that logs keys logs the answer with the batch. The tenant's points-per-second bucket is charged one token per
//! valid point once the batch is decoded (see [`crate::limits`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luminate_model::keyed::{KeyedOutcome, KeyedResponse, KeyedWrite, Respond};
use luminate_model::validate::Backfill;
pub(crate) use luminate_model::wire::recycle;
use luminate_model::wire::{BodyFormat, WireError, decode_write_batch};
use luminate_model::{ErrorCode, PointBatch, Tenant, ValidationRules};
use serde::Serialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::{Principal, Scope};
use crate::body::{gunzip_capped, read_capped};
use crate::error::ApiError;
use crate::idempotency::{IdempotencyCache, StoredResponse};
use crate::limits::{LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER};
use crate::telemetry::WriteOutcome;
use crate::tenant::RequestTenant;

/// Header naming a client's retry key.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header set on a replayed response.
const REPLAYED: &str = "idempotent-replayed";

/// One rejected point.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct PointRejection {
    /// Index in the batch as sent.
    index: usize,
    /// The point's name when it was a string.
    metric: Option<String>,
    /// The contract's code.
    code: ErrorCode,
    /// Why.
    error: String,
}

/// The batch after decoding and validation.
struct Validated {
    points: PointBatch,
    /// Batch index of each entry of `points`, to report store rejections where the client sent them.
    indexes: Vec<usize>,
    rejections: Vec<PointRejection>,
}

/// Handles a write, and records its outcome and time.
#[utoipa::path(
    post,
    path = "/api/v1/write",
    operation_id = "write",
    tag = "write",
    summary = "Write points (JSON), or Prometheus remote write (protobuf)",
    description = "JSON points (CONTRACT §3), optionally `Content-Encoding: gzip`; with `Content-Type: application/x-ndjson` one point object per line instead (what `/api/v1/export` streams; errors name the line); with `Content-Type: application/x-protobuf` (and `Content-Encoding: snappy`) the body is a Prometheus remote write 1.0 or 2.0 request, answered `204` (docs/ingest.md). A `2xx` means the accepted points are durable and visible to later queries.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 256 characters: a retry with the same key within 10 minutes is answered with the first answer and stores nothing twice (JSON only).")),
    request_body(content(
        (crate::openapi::schemas::WriteRequest = "application/json", example = json!({"metrics": [
            {"name": "api_latency", "timestamp": luminate_model::time::now_ms(), "value": 12.5, "dimensions": {"customer_id": "cust_1", "region": "eu"}}
        ]})),
        ("application/x-ndjson"),
        ("application/x-protobuf"),
    )),
    responses(
        (status = 200, description = "Every point stored.", body = crate::openapi::schemas::WriteResponse),
        (status = 204, description = "Remote write: every valid sample stored (or already stored)."),
        (status = 207, description = "Some points stored; the others listed in `errors`.", body = crate::openapi::schemas::WriteResponse),
        (status = 400, description = "No point valid (the write's answer), or a body that is not a batch (`INVALID_REQUEST`, `BATCH_TOO_LARGE`).", body = crate::openapi::schemas::WriteRefusal),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`: over `max_request_size_bytes` after decompression.", body = crate::openapi::schemas::ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: another content type or encoding.", body = crate::openapi::schemas::ErrorBody),
        (status = 503, description = "`STORAGE_UNAVAILABLE`; for remote write also the tenant's rate limits (senders retry `5xx`), with `Retry-After`.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["write"])),
)]
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Response {
    let started = Instant::now();
    let response = if super::remote_write::is_remote_write(request.headers()) {
        let (parts, body) = request.into_parts();
        super::remote_write::respond(&state, &tenant, &parts.headers, body).await
    } else {
        respond(&state, &tenant, request).await
    };
    let outcome = outcome_of(&response);
    state
        .telemetry
        .write_finished(&tenant, outcome, started.elapsed());
    response
}

/// The outcome a write's answer records in the self-metrics (also for OTLP, `super::otlp`).
pub(crate) fn outcome_of(response: &Response) -> WriteOutcome {
    match response.status() {
        StatusCode::OK | StatusCode::NO_CONTENT => WriteOutcome::Accepted,
        StatusCode::MULTI_STATUS => WriteOutcome::Partial,
        StatusCode::TOO_MANY_REQUESTS => WriteOutcome::RateLimited,
        // Remote write and OTLP answer their rate limits 503 (see `remote_write`).
        StatusCode::SERVICE_UNAVAILABLE
            if response.headers().contains_key(crate::limits::LIMIT_HEADER) =>
        {
            WriteOutcome::RateLimited
        }
        s if s.is_server_error() => WriteOutcome::Error,
        _ => WriteOutcome::Rejected,
    }
}

async fn respond(state: &Arc<AppState>, tenant: &Tenant, request: Request) -> Response {
    match prepare(state, request).await {
        Err(e) => e.into_response(),
        Ok((None, body)) => stored_to_response(write(state, tenant, None, body).await, false),
        Ok((Some(key), body)) => {
            // A keyed write runs to its end on a task of its own: when the client goes away or the
            // response deadline passes mid-write, the request's future is dropped, but the write
            // still completes and its key remembers the answer, so the retry the client makes
            // because of it is replayed instead of stored a second time.
            let (state, tenant) = (Arc::clone(state), tenant.clone());
            let keyed = tokio::spawn(async move {
                let work = write(&state, &tenant, Some(key.clone()), body);
                state.idempotency.run(&tenant, &key, work).await
            });
            match keyed.await {
                Ok((stored, replayed)) => stored_to_response(stored, replayed),
                Err(e) => ApiError::new(
                    ErrorCode::InternalError,
                    format!("the write's task failed: {e}"),
                )
                .into_response(),
            }
        }
    }
}

/// The checks that need no body, then the bounded read: returns the idempotency key and the raw body.
async fn prepare(
    state: &AppState,
    request: Request,
) -> Result<(Option<String>, Encoded), ApiError> {
    let (parts, body) = request.into_parts();
    let backfill = backfill_asked(&parts)?;
    let format = check_content_type(&parts.headers)?;
    let gzip = content_is_gzip(&parts.headers, state.config.batch_write.compression)?;
    let key = parts
        .headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyCache::check_key(v.as_bytes()))
        .transpose()?;
    let cap = state.config.batch_write.max_request_size_bytes;
    let raw = read_capped(body, cap, state.config.server.read_timeout).await?;
    Ok((
        key,
        Encoded {
            raw,
            format,
            gzip,
            backfill,
        },
    ))
}

/// A body as received.
struct Encoded {
    raw: Vec<u8>,
    /// `{"metrics": [...]}`, or JSON lines.
    format: BodyFormat,
    gzip: bool,
    /// `?backfill=true`, from a principal with the `admin` scope.
    backfill: bool,
}

/// Whether the request asks for a backfill (`?backfill=true`): points older than
/// `validation.max_past`, back to each metric's retention. Only a token with the `admin` scope may
/// (a backfill writes into days that dashboards and rollups have already shown as settled); any
/// other value of the parameter is a `400`.
fn backfill_asked(parts: &axum::http::request::Parts) -> Result<bool, ApiError> {
    let value = parts
        .uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == "backfill").then_some(value)
        });
    let asked = match value {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "backfill: {other:?} is not true or false"
            )));
        }
    };
    if asked {
        let principal = parts
            .extensions
            .get::<Principal>()
            .ok_or_else(|| ApiError::internal("the route guard set no principal for this write"))?;
        principal.require(Scope::Admin).map_err(|e| {
            ApiError::new(
                ErrorCode::Forbidden,
                "backfill=true requires the \"admin\" scope, which the token does not grant",
            )
            .with_details(e.details)
        })?;
    }
    Ok(asked)
}

/// The rules of a backfill: the configured ones, with each metric's window reaching back to its
/// retention (the tenant's admin override, else the first matching policy, else the default) — what
/// the retention task will keep.
async fn backfill_rules(state: &AppState, tenant: &Tenant) -> Result<ValidationRules, ApiError> {
    let overrides: HashMap<String, Duration> = state
        .store
        .retention_overrides(tenant)
        .await?
        .into_iter()
        .map(|o| (o.metric, o.retention))
        .collect();
    let config = Arc::clone(&state.config);
    let mut rules = state.rules.clone();
    rules.backfill = Some(Backfill::new(move |metric| {
        overrides
            .get(metric)
            .copied()
            .unwrap_or_else(|| config.policy_retention(metric))
    }));
    Ok(rules)
}

/// The body's layout by its media type: `application/json`, or JSON lines (`application/x-ndjson`, also
/// spelled `application/jsonl`) as `/api/v1/export` streams them.
fn check_content_type(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let value = headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str);
    let media_type = match value {
        Some(Ok(v)) => v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
        Some(Err(_)) => String::new(),
        None => {
            return Err(unsupported(
                "Content-Type is required: application/json, or application/x-ndjson for JSON lines",
            ));
        }
    };
    match media_type.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/x-ndjson" | "application/jsonl" => Ok(BodyFormat::JsonLines),
        _ => Err(unsupported(format!(
            "Content-Type {media_type:?} is not supported; send application/json, or \
             application/x-ndjson for JSON lines"
        ))),
    }
}

fn content_is_gzip(headers: &HeaderMap, gzip_enabled: bool) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let encoding = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(false),
        "gzip" if gzip_enabled => Ok(true),
        "gzip" => Err(unsupported(
            "Content-Encoding gzip is disabled (batch_write.compression)",
        )),
        other => Err(unsupported(format!(
            "Content-Encoding {other:?} is not supported; send gzip or no encoding"
        ))),
    }
}

fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedMediaType, message)
}

/// Decodes, validates and stores one batch (with its idempotency key, if any); every outcome becomes a
/// response to send or remember.
async fn write(
    state: &AppState,
    tenant: &Tenant,
    key: Option<String>,
    body: Encoded,
) -> StoredResponse {
    match write_inner(state, tenant, key, body).await {
        Ok(stored) => stored,
        Err(e) => {
            let mut headers = HeaderMap::new();
            // A refusal a later retry may pass (a full disk) says when.
            if let Some(seconds) = e.retry_after {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            StoredResponse {
                status: e.status(),
                body: Bytes::from(e.body().to_string()),
                headers,
            }
        }
    }
}

async fn write_inner(
    state: &AppState,
    tenant: &Tenant,
    key: Option<String>,
    body: Encoded,
) -> Result<StoredResponse, ApiError> {
    let cap = state.config.batch_write.max_request_size_bytes;
    let max_batch = state.config.batch_write.max_batch_size;
    let rules = if body.backfill {
        backfill_rules(state, tenant).await?
    } else {
        state.rules.clone()
    };
    // Inflating and parsing up to 10 MiB takes tens of milliseconds: off the request threads.
    let validated = tokio::task::spawn_blocking(move || decode(body, cap, max_batch, &rules))
        .await
        .map_err(|e| ApiError::internal(format!("write decoding task failed: {e}")))??;

    let Validated {
        points,
        indexes,
        rejections,
    } = validated;
    // The answer carries the points bucket's headers when that quota is in force: it is the one a
    // bulk load meets first (the route guard's request bucket headers apply otherwise).
    let mut headers = HeaderMap::new();
    if !points.is_empty() {
        match state.rate_limiter.check_points(tenant, points.len()) {
            Ok(snapshot) => {
                if let Some(snapshot) = snapshot {
                    snapshot.apply(&mut headers);
                }
            }
            Err(limited) => {
                state
                    .telemetry
                    .batch_refused(tenant, limited.error.code, points.len() as u64);
                limited.apply(&mut headers);
                return Ok(StoredResponse {
                    status: limited.error.status(),
                    body: Bytes::from(limited.error.body().to_string()),
                    headers,
                });
            }
        }
    }
    let decode_codes: Vec<ErrorCode> = rejections.iter().map(|r| r.code).collect();
    let points = Arc::new(points);
    let respond = answer(Arc::clone(&points), indexes, rejections);
    let stored = if points.is_empty() {
        let outcome = luminate_model::WriteOutcome::default();
        let response = respond(&outcome);
        KeyedOutcome::Stored { outcome, response }
    } else {
        let store = &state.store;
        let result = match key {
            Some(key) => {
                let keyed = KeyedWrite { key, respond };
                store.write_keyed(tenant, Arc::clone(&points), keyed).await
            }
            None => store
                .write(tenant, Arc::clone(&points))
                .await
                .map(|outcome| {
                    let response = respond(&outcome);
                    KeyedOutcome::Stored { outcome, response }
                }),
        };
        match result {
            Ok(stored) => stored,
            Err(e) => {
                let e = ApiError::from(e);
                state
                    .telemetry
                    .batch_refused(tenant, e.code, points.len() as u64);
                return Err(e);
            }
        }
    };
    let (outcome, response) = match stored {
        // The store remembered the key from before a restart: nothing was stored now.
        KeyedOutcome::Replayed(first) => {
            let mut headers = HeaderMap::new();
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            return Ok(stored_response(first, headers));
        }
        KeyedOutcome::Stored { outcome, response } => (outcome, response),
    };
    let telemetry = &state.telemetry;
    telemetry.points_ingested(tenant, outcome.accepted as u64);
    for code in decode_codes
        .into_iter()
        .chain(outcome.rejected.iter().map(|r| r.code))
    {
        telemetry.point_rejected(tenant, code);
    }
    Ok(stored_response(response, headers))
}

/// How a write is answered, from what the store accepted and rejected (`outcome.rejected` by index
/// in `points`) and the points decoding rejected: built before the store is called, because a store
/// that logs idempotency keys logs the answer with the batch.
fn answer(
    points: Arc<PointBatch>,
    indexes: Vec<usize>,
    mut rejections: Vec<PointRejection>,
) -> Respond {
    Box::new(move |outcome: &luminate_model::WriteOutcome| {
        for r in &outcome.rejected {
            let Some(&index) = indexes.get(r.index) else {
                let e = ApiError::internal(format!(
                    "store rejected point {} of a batch of {}",
                    r.index,
                    indexes.len()
                ));
                return KeyedResponse {
                    status: e.status().as_u16(),
                    body: e.body().to_string().into_bytes().into(),
                };
            };
            rejections.push(PointRejection {
                index,
                metric: Some(points.get(r.index).name.to_owned()),
                code: r.code,
                error: r.message.clone(),
            });
        }
        rejections.sort_by_key(|r| r.index);
        let accepted = outcome.accepted;
        let status = match (accepted, rejections.len()) {
            (_, 0) => StatusCode::OK,
            (0, _) => StatusCode::BAD_REQUEST,
            _ => StatusCode::MULTI_STATUS,
        };
        let body =
            json!({"accepted": accepted, "rejected": rejections.len(), "errors": rejections});
        KeyedResponse {
            status: status.as_u16(),
            body: body.to_string().into_bytes().into(),
        }
    })
}

/// A store's answer as the route sends and the cache remembers it (the body's bytes shared, not copied).
fn stored_response(response: KeyedResponse, headers: HeaderMap) -> StoredResponse {
    StoredResponse {
        status: StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body: Bytes::from_owner(response.body),
        headers,
    }
}

/// Inflate (bounded), parse, check the batch size, and validate each point as it is decoded. Valid
/// points go into a [`PointBatch`] whose strings are ranges of the body: nothing is copied per point.
fn decode(
    body: Encoded,
    cap: usize,
    max_batch: usize,
    rules: &ValidationRules,
) -> Result<Validated, ApiError> {
    let bytes = if body.gzip {
        gunzip_capped(&body.raw, cap)?
    } else {
        body.raw
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        ApiError::invalid_request(format!(
            "request body is not valid UTF-8 at byte offset {offset}"
        ))
        .with_details(json!({"offset": offset}))
    })?;
    let now = luminate_model::time::now_ms();
    let decoded = decode_write_batch(text, body.format, now, rules, max_batch)
        .map_err(|e| malformed_json(&e))?;
    let received = decoded.received;
    if received > max_batch {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("batch of {received} points exceeds max_batch_size of {max_batch}"),
        )
        .with_details(json!({"max_batch_size": max_batch, "received": received})));
    }
    Ok(Validated {
        points: decoded.points,
        indexes: decoded.indexes,
        rejections: decoded
            .rejections
            .into_iter()
            .map(|r| PointRejection {
                index: r.index,
                metric: r.metric,
                code: r.error.code,
                error: r.error.message,
            })
            .collect(),
    })
}

/// `400 INVALID_REQUEST` naming where the JSON broke: line, column and byte offset.
fn malformed_json(e: &WireError) -> ApiError {
    let offset = e.offset();
    ApiError::invalid_request(format!("malformed JSON body at byte offset {offset}: {e}"))
        .with_details(json!({"line": e.line(), "column": e.column(), "offset": offset}))
}

fn stored_to_response(stored: StoredResponse, replayed: bool) -> Response {
    let mut response = (
        stored.status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        stored.body,
    )
        .into_response();
    response.headers_mut().extend(stored.headers);
    if replayed {
        let headers = response.headers_mut();
        // A replay charged no points: the first answer's bucket state is stale, and the route guard
        // adds the request bucket's current one instead.
        for stale in [LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER] {
            headers.remove(stale);
        }
        headers.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use luminate_model::wire::decode_write_body;

    #[test]
    fn malformed_json_names_the_byte_offset() {
        let text = "{\"metrics\": [\n  {\"name\": \"a\",}\n]}";
        let e = decode_write_body(text, |_| {}).unwrap_err();
        let err = malformed_json(&e);
        let offset = err.details["offset"].as_u64().unwrap() as usize;
        assert_eq!(&text[offset..offset + 1], "}", "{}", err.message);
        assert!(err.message.contains(&format!("byte offset {offset}")));
    }

    fn body(points: &[String]) -> Encoded {
        Encoded {
            raw: format!(r#"{{"metrics":[{}]}}"#, points.join(",")).into_bytes(),
            format: BodyFormat::Json,
            gzip: false,
            backfill: false,
        }
    }

    /// A point of `name` at a time fixed for the whole test run (recent, so validation accepts it; the
    /// same for every call, so two bodies built a millisecond apart still decode to equal points).
    fn point_json(name: &str, customer: &str) -> String {
        static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
        let now = *NOW.get_or_init(luminate_model::time::now_ms);
        format!(
            r#"{{"name":"{name}","timestamp":{now},"value":1,"dimensions":{{"r":"eu","customer_id":"{customer}"}}}}"#
        )
    }

    #[test]
    fn escaped_strings_decode_like_plain_ones() {
        let rules = ValidationRules::default();
        let plain = decode(body(&[point_json("m", "cust_1")]), 1 << 20, 10, &rules).unwrap();
        let escaped = decode(
            body(&[point_json("\\u006d", "cust_\\u0031")]),
            1 << 20,
            10,
            &rules,
        )
        .unwrap();
        assert_eq!(plain.points.len(), 1);
        assert_eq!(plain.points.to_points(), escaped.points.to_points());
        assert_eq!(
            escaped.points.get(0).pairs().collect::<Vec<_>>(),
            vec![("customer_id", "cust_1"), ("r", "eu")]
        );
    }

    #[test]
    fn invalid_points_are_reported_by_index_and_the_rest_kept() {
        let rules = ValidationRules::default();
        let points = [
            point_json("ok", "a"),
            point_json("9bad", "b"),
            point_json("ok", "c"),
        ];
        let v = decode(body(&points), 1 << 20, 10, &rules).unwrap();
        assert_eq!(v.indexes, vec![0, 2]);
        assert_eq!(v.rejections.len(), 1);
        assert_eq!(v.rejections[0].index, 1);
        assert_eq!(v.rejections[0].metric.as_deref(), Some("9bad"));
        assert_eq!(v.rejections[0].code, ErrorCode::InvalidMetricName);
        let err = decode(body(&points), 1 << 20, 2, &rules).err().unwrap();
        assert_eq!(err.code, ErrorCode::BatchTooLarge);
        assert_eq!(err.details["received"], 3);
        // The same points as JSON lines (a blank line between): the same answer, point by point.
        let lines = Encoded {
            raw: points.join("\n\n").into_bytes(),
            format: BodyFormat::JsonLines,
            gzip: false,
            backfill: false,
        };
        let l = decode(lines, 1 << 20, 10, &rules).unwrap();
        assert_eq!((l.indexes, l.rejections), (v.indexes, v.rejections));
        let open = Encoded {
            raw: format!("{}\n{{\"name\":\"m\",\n\"value\":1}}", points[0]).into_bytes(),
            format: BodyFormat::JsonLines,
            gzip: false,
            backfill: false,
        };
        let err = decode(open, 1 << 20, 10, &rules).err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(err.details["line"], 2, "{}", err.message);
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(check_content_type(&h).unwrap(), BodyFormat::Json);
        for lines in ["application/x-ndjson", "application/jsonl; charset=utf-8"] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(lines));
            assert_eq!(check_content_type(&h).unwrap(), BodyFormat::JsonLines);
        }
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            check_content_type(&h).unwrap_err().code,
            ErrorCode::UnsupportedMediaType
        );
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(
            content_is_gzip(&h, true).unwrap_err().code,
            ErrorCode::UnsupportedMediaType
        );
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(content_is_gzip(&h, true).unwrap());
        assert!(content_is_gzip(&h, false).is_err());
    }
}
