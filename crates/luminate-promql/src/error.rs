//! Why an expression could not be evaluated, in the classes of Prometheus' API (`errorType`), which the
//! server maps to status codes.

use luminate_model::StoreError;
use thiserror::Error;

/// Most samples one query may read, as Prometheus' `--query.max-samples` bounds it.
pub const MAX_SAMPLES: usize = 1_000_000;

/// A failure of parsing or evaluation.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum EvalError {
    /// The expression does not parse, uses a construct this subset does not evaluate, or has a bad
    /// argument (`bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The expression is valid but its evaluation failed, e.g. many-to-many matching (`execution`).
    #[error("{0}")]
    Execution(String),
    /// The query would read more than [`MAX_SAMPLES`] samples (`execution`).
    #[error(
        "query processing would load too many samples into memory in query execution (more than {MAX_SAMPLES})"
    )]
    TooManySamples,
    /// The store failed or the query ran out of time.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A `bad_data` error naming a construct outside the evaluated subset.
pub fn unsupported(construct: impl std::fmt::Display) -> EvalError {
    EvalError::BadData(format!("unsupported PromQL: {construct}"))
}
