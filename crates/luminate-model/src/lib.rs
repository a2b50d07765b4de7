//! Luminate's data model, shared by the server and every storage backend.
//!
//! Owns: points and their validation (CONTRACT §2), the query model and its exact semantics (§4), result
//! shapes, the [`MetricsStore`] trait, and the reference evaluator used as the test oracle. Owns no I/O.

pub mod backup;
pub mod batch;
pub mod dashboard;
pub mod error;
pub mod export;
pub mod exposition;
pub mod filter;
pub mod json;
pub mod keyed;
pub mod memory;
#[cfg(feature = "openapi")]
mod openapi;
pub mod point;
pub mod query;
pub mod reference;
pub mod result;
pub mod semantics;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
pub mod validate;
pub mod window;
pub mod wire;

pub use batch::{PointBatch, PointRef};
pub use error::ErrorCode;
pub use export::{ExportBatch, ExportPlan, ExportRequest, ExportStream};
pub use filter::Filter;
pub use point::{Dimensions, Point, Tenant};
pub use query::{
    Aggregation, DimensionValuesPlan, PlannedQuery, QueryKind, QueryLimits, QueryPlan, QueryRequest,
};
pub use result::{GroupKey, MetricCardinality, QueryResult, ValueCount};
pub use store::{MetricsStore, QueryContext, StoreError, WriteOutcome};
pub use time::TimestampMs;
pub use validate::ValidationRules;
