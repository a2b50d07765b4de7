//! The error codes of the API contract (CONTRACT §2, §8). Only the names live here; which HTTP status each
//! one maps to is decided in one place, in the server.

use serde::Serialize;

/// A machine-readable error code, serialized as in the contract (`INVALID_METRIC_NAME`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)] // each variant is its own documentation: the contract's code
pub enum ErrorCode {
    InvalidMetricName,
    InvalidDimension,
    DimensionLimitExceeded,
    InvalidTimestamp,
    InvalidValue,
    CardinalityExceeded,
    BatchTooLarge,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidRequest,
    InvalidQuery,
    QueryLimitExceeded,
    QueryTimeout,
    NotFound,
    Conflict,
    MethodNotAllowed,
    Unauthorized,
    Forbidden,
    RateLimitExceeded,
    StorageUnavailable,
    InternalError,
    /// The configured backend does not do what was asked (a backup snapshot of ClickHouse).
    Unsupported,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidMetricName => "INVALID_METRIC_NAME",
            Self::InvalidDimension => "INVALID_DIMENSION",
            Self::DimensionLimitExceeded => "DIMENSION_LIMIT_EXCEEDED",
            Self::InvalidTimestamp => "INVALID_TIMESTAMP",
            Self::InvalidValue => "INVALID_VALUE",
            Self::CardinalityExceeded => "CARDINALITY_EXCEEDED",
            Self::BatchTooLarge => "BATCH_TOO_LARGE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::InvalidQuery => "INVALID_QUERY",
            Self::QueryLimitExceeded => "QUERY_LIMIT_EXCEEDED",
            Self::QueryTimeout => "QUERY_TIMEOUT",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::InternalError => "INTERNAL_ERROR",
            Self::Unsupported => "UNSUPPORTED",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_form_matches_as_str() {
        for code in [
            ErrorCode::InvalidMetricName,
            ErrorCode::QueryTimeout,
            ErrorCode::StorageUnavailable,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }
}
