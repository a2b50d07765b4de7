//! Storage wiring: [`build_store`] opens the backend that `storage.backend` names — the embedded engine
//! ([`embedded`]) or ClickHouse ([`clickhouse`], in builds with the `clickhouse` feature) — and says
//! why when it cannot. Owns no storage logic: each backend is a [`MetricsStore`].

#[cfg(feature = "clickhouse")]
pub mod clickhouse;
pub mod dashboards;
pub mod embedded;
pub mod forward;

use std::path::PathBuf;
use std::sync::Arc;

use luminate_engine::dashboards::DashboardFiles;
use luminate_engine::{Engine, EngineConfig, EngineError};
use luminate_model::MetricsStore;
use luminate_model::dashboard::DashboardStore;
use thiserror::Error;

pub use self::embedded::{EmbeddedStore, engine_config};
use crate::config::{Backend, Config};
use crate::telemetry::Telemetry;

/// Why the storage backend could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The embedded engine refused to open (locked directory, I/O, corruption, a lost manifest or WAL
    /// segment).
    #[error("cannot open the embedded engine in {data_dir}: {source}")]
    Engine {
        /// The data directory.
        data_dir: std::path::PathBuf,
        /// The engine's error.
        source: EngineError,
    },
    /// ClickHouse refused for a reason that waiting cannot fix (credentials, a port that is not its
    /// HTTP interface, a foreign table in the database, a setting). ClickHouse merely being down is
    /// not an error: the server then starts degraded (see [`clickhouse`]).
    #[cfg(feature = "clickhouse")]
    #[error(
        "cannot open the ClickHouse backend (storage.clickhouse.addresses: {addresses}; database {database}): {source}"
    )]
    Clickhouse {
        /// The configured addresses, comma-separated.
        addresses: String,
        /// The configured database.
        database: String,
        /// The backend's error.
        source: luminate_clickhouse::OpenError,
    },
    /// The configured backend is not built into this binary.
    #[error(
        "storage.backend: this build of Luminate has no {0} backend (its cargo feature `{0}` was left out); \
         set storage.backend to embedded, or use a build with the feature (the default)"
    )]
    NotBuilt(&'static str),
    /// The blocking task that opened the engine died.
    #[error("opening the engine panicked: {0}")]
    Panicked(String),
}

/// An opened backend, with what its gauges are read from.
pub struct OpenedStore {
    /// The backend.
    pub store: Arc<dyn MetricsStore>,
    /// Where the backend keeps dashboards.
    pub dashboards: Arc<dyn DashboardStore>,
    /// The embedded engine and its data directory, when that is the backend.
    pub engine: Option<(Arc<Engine>, PathBuf)>,
}

/// Opens the backend named by `storage.backend`; the backend reports its internals to `telemetry`.
pub async fn build_store(config: &Config, telemetry: &Telemetry) -> Result<OpenedStore, OpenError> {
    match config.storage.backend {
        Backend::Embedded => {
            let engine_config = EngineConfig {
                observer: telemetry.engine.clone(),
                ..engine_config(config)
            };
            let data_dir = engine_config.data_dir.clone();
            let store = EmbeddedStore::open(engine_config, config.health.clone()).await?;
            // Opened after the engine, which holds the data directory's lock.
            let files = DashboardFiles::new(&data_dir, config.dashboards.max_per_tenant);
            Ok(OpenedStore {
                dashboards: Arc::new(dashboards::EmbeddedDashboards(Arc::new(files))),
                engine: Some((store.engine().clone(), data_dir)),
                store: Arc::new(store),
            })
        }
        #[cfg(feature = "clickhouse")]
        Backend::Clickhouse => {
            let (store, dashboards) = clickhouse::open(
                &config.storage.clickhouse,
                config.dashboards.max_per_tenant,
                telemetry.clickhouse.clone(),
            )
            .await?;
            Ok(OpenedStore {
                store,
                dashboards,
                engine: None,
            })
        }
        #[cfg(not(feature = "clickhouse"))]
        Backend::Clickhouse => Err(OpenError::NotBuilt("clickhouse")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;

    /// Only a build without the `clickhouse` feature runs this (`scripts/test.sh` does, besides the
    /// default build's suite).
    #[cfg(not(feature = "clickhouse"))]
    #[tokio::test]
    async fn a_build_without_the_backend_refuses_it_naming_the_key() {
        let mut config = Config::default();
        config.storage.backend = Backend::Clickhouse;
        let telemetry = Telemetry::register(&mut Registry::default(), 10);
        let err = build_store(&config, &telemetry)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("storage.backend: this build of Luminate has no clickhouse backend"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_embedded_engine_opens_over_its_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.embedded.data_dir = dir.path().to_owned();
        let telemetry = Telemetry::register(&mut Registry::default(), 10);
        let opened = build_store(&config, &telemetry).await.unwrap();
        assert!(opened.engine.is_some());
        let store = opened.store;
        assert_eq!(store.backend_name(), "embedded");
        store.close().await.unwrap();
    }
}
