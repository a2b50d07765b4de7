//! The read half of Prometheus' HTTP API under [`PREFIX`], so Grafana's Prometheus datasource, promtool
//! and other Prometheus clients can read Luminate (docs/grafana.md): `query` and `query_range` (a
//! PromQL subset, [`luminate_promql`]), `labels`, `label/<name>/values`, `series`, `metadata`,
//! `query_exemplars` and `status/buildinfo`. Label names and values are dimensions; `__name__` is the
//! metric name.
//!
//! Answers use Prometheus' envelope, `{"status":"success","data":…}` or
//! `{"status":"error","errorType":…,"error":…}`, with its status codes ([`PromError`] maps them in one
//! place). Authentication, scopes, tenancy and rate limits are the JSON API's (the route guard in
//! [`crate::app`]); Basic auth whose password is a token is accepted as that bearer token
//! ([`basic_auth_as_bearer`]), since Grafana's datasource offers both. Queries run under the JSON API's
//! timeout and reserve memory from the same budget ([`source`]).

pub(crate) mod discovery;
mod params;
pub(crate) mod query;
mod source;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use luminate_model::StoreError;
use luminate_promql::EvalError;

pub use discovery::{buildinfo, exemplars, label_values, labels, metadata, series};
pub use query::{instant, range};

use crate::app::AppState;
use crate::error::ApiError;

/// Where the API is served: Grafana's datasource URL is the server's address followed by it.
pub const PREFIX: &str = "/prometheus";

/// A failure, in Prometheus' error classes.
#[derive(Debug)]
pub enum PromError {
    /// `400 bad_data`: a parameter or the expression is wrong or outside the subset.
    BadData(String),
    /// `422 execution`: a valid query that cannot be answered (matching, too many samples, too large).
    Execution(String),
    /// `503 timeout`: the query ran past its timeout.
    Timeout(String),
    /// `503 unavailable`: storage or the memory budget is unavailable now.
    Unavailable(String),
    /// `500 internal`.
    Internal(String),
}

impl PromError {
    /// The JSON API's code of the same failure (the `code` label of the query self-metrics).
    pub fn code(&self) -> luminate_model::ErrorCode {
        use luminate_model::ErrorCode;
        match self {
            Self::BadData(_) => ErrorCode::InvalidQuery,
            Self::Execution(_) => ErrorCode::QueryLimitExceeded,
            Self::Timeout(_) => ErrorCode::QueryTimeout,
            Self::Unavailable(_) => ErrorCode::StorageUnavailable,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

impl From<EvalError> for PromError {
    fn from(e: EvalError) -> Self {
        match e {
            EvalError::BadData(m) => Self::BadData(m),
            EvalError::Execution(_) | EvalError::TooManySamples => Self::Execution(e.to_string()),
            EvalError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for PromError {
    fn from(e: StoreError) -> Self {
        match e {
            // The same words as the route's own deadline (`query.rs`): which of the two notices the
            // timeout first is a race, and the answer must not depend on it.
            StoreError::Timeout { timeout } => Self::Timeout(format!(
                "query timed out in query execution (timeout {})",
                luminate_model::time::format_duration(timeout)
            )),
            StoreError::Unavailable { .. } | StoreError::Full { .. } => {
                Self::Unavailable(e.to_string())
            }
            StoreError::QueryTooLarge { .. } => Self::Execution(e.to_string()),
            StoreError::Internal { .. } => Self::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            Self::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            Self::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            Self::Timeout(m) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", m),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            Self::Internal(m) => {
                tracing::error!(message = %m, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
            }
        };
        let body = serde_json::json!({"status": "error", "errorType": kind, "error": message});
        (status, axum::Json(body)).into_response()
    }
}

/// A success: `data` is already JSON.
fn success(data: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"status":"success","data":{data}}}"#),
    )
        .into_response()
}

/// A success with Prometheus' `warnings` (what the store could not read: the answer is partial); a
/// plain [`success`] when there are none.
fn success_with_warnings(data: &str, warnings: &[String]) -> Response {
    if warnings.is_empty() {
        return success(data);
    }
    let warnings = serde_json::to_string(warnings).unwrap_or_else(|_| "[]".to_owned());
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"status":"success","data":{data},"warnings":{warnings}}}"#),
    )
        .into_response()
}

/// Lets a request with `Authorization: Basic` (any user, the token as password) through the guard as
/// one with `Bearer <token>`; leaves every other request as it is.
pub async fn basic_auth_as_bearer(mut request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, credentials) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then_some(credentials.trim())
        })
        .and_then(|credentials| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(_, password)| password.to_owned())
        })
        .and_then(|token| HeaderValue::from_str(&format!("Bearer {token}")).ok());
    if let Some(value) = bearer {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    next.run(request).await
}

impl From<ApiError> for PromError {
    /// The memory budget's refusals and other errors shaped for the JSON API.
    fn from(e: ApiError) -> Self {
        let status = e.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            Self::Unavailable(e.message)
        } else if status.is_client_error() {
            Self::Execution(e.message)
        } else {
            Self::Internal(e.message)
        }
    }
}

/// `query` and `query_range`, to be guarded as queries (a concurrency slot each).
pub fn query_routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            &format!("{PREFIX}/api/v1/query"),
            get(instant).post(instant),
        )
        .route(
            &format!("{PREFIX}/api/v1/query_range"),
            get(range).post(range),
        )
}

/// Discovery, metadata, exemplars and build information, to be guarded as reads.
pub fn read_routes() -> axum::Router<Arc<AppState>> {
    use axum::routing::get;
    axum::Router::new()
        .route(&format!("{PREFIX}/api/v1/labels"), get(labels).post(labels))
        .route(
            &format!("{PREFIX}/api/v1/label/{{name}}/values"),
            get(label_values),
        )
        .route(&format!("{PREFIX}/api/v1/series"), get(series).post(series))
        .route(&format!("{PREFIX}/api/v1/metadata"), get(metadata))
        .route(
            &format!("{PREFIX}/api/v1/query_exemplars"),
            get(exemplars).post(exemplars),
        )
        .route(&format!("{PREFIX}/api/v1/status/buildinfo"), get(buildinfo))
}

#[cfg(test)]
mod tests;
