//! The API's routes, one file per endpoint. Each handler parses and checks its input, makes one or a
//! few store calls for the request's tenant, and shapes the answer; none knows which backend serves it.

pub mod admin;
pub mod backup;
pub mod cardinality;
pub mod dashboards;
pub mod export;
pub mod exposition;
pub mod health;
pub mod metrics;
pub mod otlp;
pub mod prometheus;
pub mod query;
pub mod remote_write;
pub mod status;
pub mod write;

use luminate_model::ValidationRules;
use luminate_model::validate::{validate_dimension_key, validate_metric_name};

use crate::error::ApiError;

/// A metric name from a path or query string, checked like a written one (`INVALID_METRIC_NAME`).
fn check_metric_name(name: &str, rules: &ValidationRules) -> Result<(), ApiError> {
    validate_metric_name(name, rules).map_err(|e| ApiError::new(e.code, e.message))
}

/// A dimension key from a path, checked like a written one (`INVALID_DIMENSION`).
fn check_dimension_key(key: &str, rules: &ValidationRules) -> Result<(), ApiError> {
    validate_dimension_key(key, rules).map_err(|e| ApiError::new(e.code, e.message))
}

fn unknown_metric(name: &str) -> ApiError {
    ApiError::not_found(format!("metric {name:?} not found"))
}
