//! `POST /api/v1/write` (CONTRACT §3): media type and encoding checks, bounded read and inflate,
//! lenient per-point decoding and validation, the store write, and the 200 / 207 / 400 answer with
//! per-point errors by their index in the batch. Retries with an `Idempotency-Key` replay the first
//! answer (see [`crate::idempotency`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use luminate_model::validate::validate_point;
use luminate_model::wire::{WireScalar, WriteBody};
use luminate_model::{ErrorCode, Point, Tenant, ValidationRules};
use serde::Serialize;
use serde_json::json;

use crate::app::AppState;
use crate::body::{gunzip_capped, read_capped};
use crate::error::ApiError;
use crate::idempotency::{IdempotencyCache, StoredResponse};
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
    points: Vec<Point>,
    /// Batch index of each entry of `points`, to report store rejections where the client sent them.
    indexes: Vec<usize>,
    rejections: Vec<PointRejection>,
}

/// Handles a write.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    request: Request,
) -> Response {
    match prepare(&state, request).await {
        Err(e) => e.into_response(),
        Ok((None, body)) => stored_to_response(write(&state, &tenant, body).await, false),
        Ok((Some(key), body)) => {
            let (stored, replayed) = state
                .idempotency
                .run(&tenant, &key, write(&state, &tenant, body))
                .await;
            stored_to_response(stored, replayed)
        }
    }
}

/// The checks that need no body, then the bounded read: returns the idempotency key and the raw body.
async fn prepare(
    state: &AppState,
    request: Request,
) -> Result<(Option<String>, Encoded), ApiError> {
    let (parts, body) = request.into_parts();
    check_content_type(&parts.headers)?;
    let gzip = content_is_gzip(&parts.headers, state.config.batch_write.compression)?;
    let key = parts
        .headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| IdempotencyCache::check_key(v.as_bytes()))
        .transpose()?;
    let cap = state.config.batch_write.max_request_size_bytes;
    let raw = read_capped(body, cap, state.config.server.read_timeout).await?;
    Ok((key, Encoded { raw, gzip }))
}

/// A body as received.
struct Encoded {
    raw: Vec<u8>,
    gzip: bool,
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
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
                "Content-Type is required and must be application/json",
            ));
        }
    };
    if media_type != "application/json" {
        return Err(unsupported(format!(
            "Content-Type {media_type:?} is not supported; send application/json"
        )));
    }
    Ok(())
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

/// Decodes, validates and stores one batch; every outcome becomes a response to send or remember.
async fn write(state: &AppState, tenant: &Tenant, body: Encoded) -> StoredResponse {
    match write_inner(state, tenant, body).await {
        Ok(stored) => stored,
        Err(e) => StoredResponse {
            status: e.status(),
            body: Bytes::from(e.body().to_string()),
        },
    }
}

async fn write_inner(
    state: &AppState,
    tenant: &Tenant,
    body: Encoded,
) -> Result<StoredResponse, ApiError> {
    let cap = state.config.batch_write.max_request_size_bytes;
    let max_batch = state.config.batch_write.max_batch_size;
    let rules = state.rules.clone();
    // Inflating and parsing up to 10 MiB takes tens of milliseconds: off the request threads.
    let validated = tokio::task::spawn_blocking(move || decode(body, cap, max_batch, &rules))
        .await
        .map_err(|e| ApiError::internal(format!("write decoding task failed: {e}")))??;

    let Validated {
        points,
        indexes,
        mut rejections,
    } = validated;
    let mut accepted = 0;
    if !points.is_empty() {
        let names: Vec<String> = points.iter().map(|p| p.name.clone()).collect();
        let outcome = state.store.write(tenant, points).await?;
        accepted = outcome.accepted;
        for r in outcome.rejected {
            let Some(&index) = indexes.get(r.index) else {
                return Err(ApiError::internal(format!(
                    "store rejected point {} of a batch of {}",
                    r.index,
                    indexes.len()
                )));
            };
            rejections.push(PointRejection {
                index,
                metric: names.get(r.index).cloned(),
                code: r.code,
                error: r.message,
            });
        }
        rejections.sort_by_key(|r| r.index);
    }
    let status = match (accepted, rejections.len()) {
        (_, 0) => StatusCode::OK,
        (0, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::MULTI_STATUS,
    };
    let body = json!({"accepted": accepted, "rejected": rejections.len(), "errors": rejections});
    Ok(StoredResponse {
        status,
        body: Bytes::from(body.to_string()),
    })
}

/// Inflate (bounded), parse, check the batch size, and validate each point.
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
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError::invalid_request(format!(
            "request body is not valid UTF-8 at byte offset {}",
            e.valid_up_to()
        ))
        .with_details(json!({"offset": e.valid_up_to()}))
    })?;
    let batch: WriteBody = serde_json::from_str(text).map_err(|e| malformed_json(text, &e))?;
    let received = batch.metrics.len();
    if received > max_batch {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!("batch of {received} points exceeds max_batch_size of {max_batch}"),
        )
        .with_details(json!({"max_batch_size": max_batch, "received": received})));
    }
    let now = luminate_model::time::now_ms();
    let mut out = Validated {
        points: Vec::with_capacity(received),
        indexes: Vec::with_capacity(received),
        rejections: Vec::new(),
    };
    for (index, wire) in batch.metrics.into_iter().enumerate() {
        let metric = match &wire.name {
            WireScalar::Str(s) => Some(s.clone()),
            _ => None,
        };
        match validate_point(wire, now, rules) {
            Ok(point) => {
                out.points.push(point);
                out.indexes.push(index);
            }
            Err(e) => out.rejections.push(PointRejection {
                index,
                metric,
                code: e.code,
                error: e.message,
            }),
        }
    }
    Ok(out)
}

/// `400 INVALID_REQUEST` naming where the JSON broke: line, column and byte offset.
fn malformed_json(text: &str, e: &serde_json::Error) -> ApiError {
    let (line, column) = (e.line(), e.column());
    // serde_json counts columns in bytes from 1; a column of 0 means "before the first byte of the line".
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let offset = (line_start + column.saturating_sub(1)).min(text.len());
    ApiError::invalid_request(format!("malformed JSON body at byte offset {offset}: {e}"))
        .with_details(json!({"line": line, "column": column, "offset": offset}))
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
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_names_the_byte_offset() {
        let text = "{\"metrics\": [\n  {\"name\": \"a\",}\n]}";
        let e = serde_json::from_str::<WriteBody>(text).unwrap_err();
        let err = malformed_json(text, &e);
        let offset = err.details["offset"].as_u64().unwrap() as usize;
        assert_eq!(&text[offset..offset + 1], "}", "{}", err.message);
        assert!(err.message.contains(&format!("byte offset {offset}")));
    }

    #[test]
    fn media_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(check_content_type(&h).is_ok());
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
