//! [`ClickhouseStore`]: the [`MetricsStore`] over ClickHouse. Opening it reaches the server, reads its
//! version and puts the schema in place; each trait method hands over to the module that owns the
//! operation (`write`, `query`, `discovery`, `retention`). Owns health and shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{HealthStatus, RetentionOverride, StorageHealth};
use luminate_model::{
    MetricsStore, PointBatch, QueryContext, QueryPlan, StoreError, Tenant, TimestampMs,
    WriteOutcome,
};
use thiserror::Error;

use crate::rowbinary::RowReader;
use crate::schema::{SchemaError, ServerVersion};
use crate::service::Service;
use crate::settings::{ClickhouseSettings, SettingsError};
use crate::sql::quote;
use crate::transport::{Statement, Transport, TransportError};
use crate::{discovery, query, retention, schema, write};

/// Longest a health check waits for ClickHouse.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// A setting cannot work.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// ClickHouse did not answer `SELECT version()`.
    #[error("cannot reach ClickHouse: {0}")]
    Unreachable(TransportError),
    /// It answered something that is not a version.
    #[error("ClickHouse answered {0:?} to SELECT version()")]
    Version(String),
    /// The tables could not be created or do not fit.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// The ClickHouse backend. Cheap to clone; clones share connections and the circuit breaker.
#[derive(Debug, Clone)]
pub struct ClickhouseStore {
    service: Arc<Service>,
}

impl ClickhouseStore {
    /// Connects, detects the server version and creates the database and tables if missing.
    pub async fn open(settings: ClickhouseSettings) -> Result<Self, OpenError> {
        let transport = Transport::new(&settings)?;
        let body = transport
            .execute(&Statement::new(
                "SELECT version() FORMAT RowBinary",
                settings.request_timeout,
            ))
            .await
            .map_err(OpenError::Unreachable)?;
        let text = RowReader::new(&body)
            .string()
            .map_err(|e| OpenError::Version(e.to_string()))?;
        let version = ServerVersion::parse(&text).ok_or(OpenError::Version(text))?;
        let service = Service::new(transport, &settings, version);
        schema::ensure(&service).await?;
        tracing::info!(
            %version,
            database = %settings.database,
            endpoints = service.endpoint_count(),
            features = ?service.features,
            "ClickHouse store open"
        );
        Ok(Self {
            service: Arc::new(service),
        })
    }

    /// The server version found at open.
    pub fn server_version(&self) -> ServerVersion {
        self.service.version
    }
}

#[async_trait]
impl MetricsStore for ClickhouseStore {
    fn backend_name(&self) -> &'static str {
        "clickhouse"
    }

    async fn write(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        write::write(&self.service, tenant, &batch).await
    }

    async fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, StoreError> {
        query::run(&self.service, tenant, plan, ctx).await
    }

    async fn metric_names(&self, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
        discovery::metric_names(&self.service, tenant).await
    }

    async fn dimension_keys(
        &self,
        tenant: &Tenant,
        metric: &str,
    ) -> Result<Option<Vec<String>>, StoreError> {
        discovery::dimension_keys(&self.service, tenant, metric).await
    }

    async fn dimension_values(
        &self,
        tenant: &Tenant,
        metric: &str,
        key: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Option<Vec<ValueCount>>, StoreError> {
        discovery::dimension_values(&self.service, tenant, metric, key, prefix, limit).await
    }

    async fn cardinality(
        &self,
        tenant: &Tenant,
        metric: Option<&str>,
    ) -> Result<Vec<MetricCardinality>, StoreError> {
        discovery::cardinality(&self.service, tenant, metric).await
    }

    async fn delete_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        before: TimestampMs,
    ) -> Result<u64, StoreError> {
        retention::delete_before(&self.service, tenant, metric, before).await
    }

    async fn set_retention(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), StoreError> {
        retention::set_retention(&self.service, tenant, metric, retention).await
    }

    async fn retention_overrides(
        &self,
        tenant: &Tenant,
    ) -> Result<Vec<RetentionOverride>, StoreError> {
        retention::retention_overrides(&self.service, tenant).await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        retention::tenants(&self.service).await
    }

    /// A live check that also reads the disk space of Luminate's tables. It goes through the breaker:
    /// while the circuit is open it answers at once with the breaker's reason, and past the cool-down
    /// it is the probe that closes the circuit when ClickHouse is back.
    async fn health(&self) -> StorageHealth {
        match self.disk_used_bytes().await {
            Ok(bytes) => StorageHealth {
                status: HealthStatus::Healthy,
                disk_used_bytes: Some(bytes),
                error: None,
            },
            Err(e) => StorageHealth {
                status: HealthStatus::Unavailable,
                disk_used_bytes: None,
                error: Some(match e {
                    StoreError::Unavailable { reason } => reason,
                    other => other.to_string(),
                }),
            },
        }
    }

    /// Nothing is buffered (a write returns once ClickHouse has it): stops new requests.
    async fn close(&self) -> Result<(), StoreError> {
        self.service.close();
        Ok(())
    }
}

impl ClickhouseStore {
    /// Bytes of the active parts of Luminate's database.
    async fn disk_used_bytes(&self) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT toUInt64(sum(bytes_on_disk)) FROM system.parts WHERE database = {} AND active \
             FORMAT RowBinary",
            quote(&self.service.tables.database)
        );
        let body = self.service.run_with_timeout(&sql, HEALTH_TIMEOUT).await?;
        RowReader::new(&body)
            .u64()
            .map_err(|e| StoreError::Internal {
                message: e.to_string(),
            })
    }
}
