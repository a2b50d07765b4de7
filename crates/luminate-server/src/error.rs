//! `ApiError`: every error response of the API, rendered as `{"error": {"code", "message", "details"}}`
//! (CONTRACT §8), and the one `match` from [`ErrorCode`] to HTTP status. Also turns axum's own
//! rejections (path, query string, body) and the store's errors into that shape, so no response ever
//! leaves in another format. A refusal that a retry may pass carries its `Retry-After`.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use luminate_model::dashboard::DashboardStoreError;
use luminate_model::{ErrorCode, StoreError};
use serde_json::{Value, json};

use crate::conn::framing::RefusalKind;

/// An error response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The contract's code; decides the status.
    pub code: ErrorCode,
    /// What went wrong, for a human.
    pub message: String,
    /// Machine-readable context (`{"max_batch_size": 10000, "received": 10001}`), `{}` when none.
    pub details: Value,
    /// `Retry-After` in seconds, for a refusal that a later retry may pass.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Adds a `Retry-After` of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// `404 NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `400 INVALID_REQUEST`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `500 INTERNAL_ERROR`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    /// The response body.
    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code.as_str(), "message": self.message, "details": self.details}})
    }
}

/// The one place where error codes become HTTP statuses.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidMetricName
        | ErrorCode::InvalidDimension
        | ErrorCode::DimensionLimitExceeded
        | ErrorCode::InvalidTimestamp
        | ErrorCode::InvalidValue
        | ErrorCode::CardinalityExceeded
        | ErrorCode::BatchTooLarge
        | ErrorCode::InvalidRequest
        | ErrorCode::InvalidQuery
        | ErrorCode::QueryLimitExceeded
        | ErrorCode::Unsupported => StatusCode::BAD_REQUEST,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::QueryTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::InternalError {
            tracing::error!(message = %self.message, "internal error");
        }
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// `Retry-After` of a write refused for want of space: freeing space is an operator's work, so a
/// client that retries every second only adds refusals; the first retry after it may pass.
pub const FULL_RETRY_AFTER_SECONDS: u64 = 5;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let full = matches!(e, StoreError::Full { .. });
        let error = Self::new(e.code(), e.to_string());
        if full {
            error.with_retry_after(FULL_RETRY_AFTER_SECONDS)
        } else {
            error
        }
    }
}

impl From<DashboardStoreError> for ApiError {
    fn from(e: DashboardStoreError) -> Self {
        match e {
            DashboardStoreError::Conflict { message, current } => {
                Self::new(ErrorCode::Conflict, message)
                    .with_details(json!({"current_version": current}))
            }
            DashboardStoreError::TooMany { max } => {
                Self::invalid_request(e.to_string()).with_details(json!({"max_per_tenant": max}))
            }
            DashboardStoreError::Store(e) => e.into(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::invalid_request(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::invalid_request(format!("invalid query string: {}", r.body_text()))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                ErrorCode::PayloadTooLarge,
                "request body exceeds the size limit",
            )
        } else {
            Self::invalid_request(format!("cannot read the request body: {}", r.body_text()))
        }
    }
}

/// A request head refused below the router (`crate::conn::framing`): `INVALID_REQUEST` in the contract's
/// body, with the status HTTP/1.1 gives the fault — the only errors whose status is not their code's.
pub(crate) fn refused_head(kind: RefusalKind, message: String) -> Response {
    let status = match kind {
        RefusalKind::TargetTooLong => StatusCode::URI_TOO_LONG,
        RefusalKind::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        RefusalKind::Malformed => StatusCode::BAD_REQUEST,
    };
    (
        status,
        axum::Json(ApiError::invalid_request(message).body()),
    )
        .into_response()
}

/// Fallback for paths no route matches.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

/// Fallback for a known path asked with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        let cases = [
            (ErrorCode::InvalidMetricName, 400),
            (ErrorCode::BatchTooLarge, 400),
            (ErrorCode::InvalidQuery, 400),
            (ErrorCode::QueryLimitExceeded, 400),
            (ErrorCode::PayloadTooLarge, 413),
            (ErrorCode::UnsupportedMediaType, 415),
            (ErrorCode::NotFound, 404),
            (ErrorCode::Conflict, 409),
            (ErrorCode::MethodNotAllowed, 405),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::RateLimitExceeded, 429),
            (ErrorCode::StorageUnavailable, 503),
            (ErrorCode::QueryTimeout, 504),
            (ErrorCode::InternalError, 500),
            (ErrorCode::Unsupported, 400),
        ];
        for (code, status) in cases {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }

    #[test]
    fn body_shape() {
        let e = ApiError::new(ErrorCode::BatchTooLarge, "too many")
            .with_details(json!({"max_batch_size": 1, "received": 2}));
        assert_eq!(
            e.body(),
            json!({"error": {"code": "BATCH_TOO_LARGE", "message": "too many", "details": {"max_batch_size": 1, "received": 2}}})
        );
        assert_eq!(
            ApiError::not_found("x").body()["error"]["details"],
            json!({})
        );
    }

    #[test]
    fn a_retry_after_becomes_the_header() {
        let response = ApiError::new(ErrorCode::StorageUnavailable, "busy")
            .with_retry_after(2)
            .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "2");
        let plain = ApiError::not_found("x").into_response();
        assert!(!plain.headers().contains_key("retry-after"));
    }

    #[test]
    fn store_errors_keep_their_code() {
        let e = ApiError::from(StoreError::Unavailable {
            reason: "disk full".into(),
        });
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("disk full"));
        assert_eq!(e.retry_after, None);
    }

    #[test]
    fn a_full_disk_is_storage_unavailable_with_a_retry_after() {
        let e = ApiError::from(StoreError::Full {
            reason: "write WAL record /data/wal/00000001.wal: No space left on device".into(),
        });
        assert_eq!(e.code, ErrorCode::StorageUnavailable);
        assert_eq!(e.retry_after, Some(FULL_RETRY_AFTER_SECONDS));
        assert_eq!(
            e.message,
            "storage unavailable: write WAL record /data/wal/00000001.wal: No space left on device"
        );
    }
}
