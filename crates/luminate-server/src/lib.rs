//! Luminate's HTTP API (CONTRACT §3–§9): configuration, routes, errors, storage wiring, background
//! retention, and the server's lifecycle. Owns no storage: every read and write goes through a
//! [`luminate_model::MetricsStore`] for the request's tenant.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        reason = "a test fails loudly on the first unexpected error"
    )
)]

pub mod app;
pub mod auth;
pub mod body;
pub mod cardinality_guard;
pub mod config;
pub mod conn;
pub mod disk;
pub mod error;
pub mod gzip;
pub mod health;
pub mod hll;
pub mod idempotency;
pub mod limits;
pub mod openapi;
pub mod otlp;
pub mod query_memory;
pub mod remote_write;
pub mod retention;
pub mod routes;
pub mod storage;
pub mod telemetry;
pub mod tenant;
pub mod ui;

pub use app::{AppState, ServeError, Server, router, serve};
pub use config::Config;
pub use error::ApiError;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod testing;
