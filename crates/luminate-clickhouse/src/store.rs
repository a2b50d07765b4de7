//! [`ClickhouseStore`]: the [`MetricsStore`] over ClickHouse. Opening it reaches the server, reads its
//! version and puts the schema in place; each trait method hands over to the module that owns the
//! operation (`write`, `query`, `discovery`, `retention`). Owns health, the `clickhouse_reachable`
//! check, and shutdown.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use luminate_model::backup::{SnapshotError, StoreSnapshot};
use luminate_model::keyed::{KeyedOutcome, KeyedWrite};
use luminate_model::result::{MetricCardinality, QueryResult, ValueCount};
use luminate_model::store::{
    CheckOutcome, HealthCheck, HealthStatus, RetentionOverride, StorageHealth,
};
use luminate_model::{
    ExportPlan, ExportStream, MetricsStore, PointBatch, QueryContext, QueryPlan, StoreError,
    Tenant, TimestampMs, WriteOutcome,
};
use thiserror::Error;

use crate::dashboards::ClickhouseDashboards;
use crate::observe::{ClickhouseObserver, Unobserved};
use crate::rowbinary::RowReader;
use crate::schema::{SchemaError, ServerVersion};
use crate::service::Service;
use crate::settings::{ClickhouseSettings, SettingsError};
use crate::sql::quote;
use crate::transport::{Statement, Transport, TransportError};
use crate::{discovery, query, retention, schema, write};

/// Longest a health check waits for ClickHouse.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the reachability check waits for one address's `SELECT 1`: below the server's bound on a
/// check (5 s), so that a hung address is named rather than the whole check timing out.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// The name of the check that every configured address answers.
pub const REACHABLE_CHECK: &str = "clickhouse_reachable";

/// Why the store could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// A setting cannot work.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// ClickHouse could not be reached or did not answer `SELECT version()` in time: opening again
    /// later may succeed without anyone changing anything.
    #[error("cannot reach ClickHouse: {0}")]
    Unreachable(TransportError),
    /// Whatever listens at the address answered `SELECT version()` with an error: wrong credentials, or
    /// not ClickHouse's HTTP interface. `hint` says what to check when the answer tells.
    #[error("ClickHouse refused the first statement: {error}{hint}")]
    Refused {
        /// The answer.
        error: TransportError,
        /// `"; check …"`, or empty.
        hint: &'static str,
    },
    /// It answered something that is not a version.
    #[error("ClickHouse answered {0:?} to SELECT version()")]
    Version(String),
    /// The tables could not be created or do not fit.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

impl OpenError {
    /// Whether ClickHouse was down or did not answer in time (at the first statement or while the
    /// schema was being put in place): a later attempt may succeed by itself. Every other error
    /// (settings, credentials, a port that is not HTTP, a foreign table) needs an operator.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_)
                | Self::Schema(SchemaError::Statement(StoreError::Unavailable { .. }))
        )
    }

    fn from_first_answer(error: TransportError) -> Self {
        if error.is_outage() {
            return Self::Unreachable(error);
        }
        // ClickHouse's messages may span lines (the native port's does); one line reads better in logs.
        let error = match error {
            TransportError::Server { code, message } => TransportError::Server {
                code,
                message: message.split_whitespace().collect::<Vec<_>>().join(" "),
            },
            other => other,
        };
        let hint = match &error {
            // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED (ErrorCodes.cpp).
            TransportError::Server {
                code: Some(192 | 193 | 194 | 516),
                ..
            } => "; check storage.clickhouse.username and storage.clickhouse.password",
            // The native protocol's port answers an HTTP request with "Port 9000 is for
            // clickhouse-client program. You must use port 8123 for HTTP." (every version since 1.1).
            TransportError::Server { message, .. }
                if message.contains("is for clickhouse-client program") =>
            {
                "; storage.clickhouse.addresses names ClickHouse's native-protocol port, and this \
                 backend speaks HTTP: use the HTTP port (8123 by default)"
            }
            _ => "",
        };
        Self::Refused { error, hint }
    }
}

/// The ClickHouse backend. Cheap to clone; clones share connections and the circuit breaker.
#[derive(Debug, Clone)]
pub struct ClickhouseStore {
    service: Arc<Service>,
    /// The largest answer ClickHouse may send (`max_response_bytes`): what a query's answer is held to.
    max_response_bytes: u64,
    /// Shared by every dashboards handle of this store: its saves are serialized.
    dashboard_saves: Arc<crate::dashboards::Saves>,
    /// Series of protocol batches being written (`crate::newest`), shared by clones.
    in_flight: Arc<crate::newest::InFlight>,
}

impl ClickhouseStore {
    /// Connects, detects the server version and creates the database and tables if missing.
    pub async fn open(settings: ClickhouseSettings) -> Result<Self, OpenError> {
        Self::open_observed(settings, Arc::new(Unobserved)).await
    }

    /// [`ClickhouseStore::open`], telling `observer` of every request and breaker transition.
    pub async fn open_observed(
        settings: ClickhouseSettings,
        observer: Arc<dyn ClickhouseObserver>,
    ) -> Result<Self, OpenError> {
        let transport = Transport::new(&settings, observer.clone())?;
        let body = transport
            .execute(&Statement::new(
                "SELECT version() FORMAT RowBinary",
                settings.request_timeout,
            ))
            .await
            .map_err(OpenError::from_first_answer)?;
        let text = RowReader::new(&body)
            .string()
            .map_err(|e| OpenError::Version(e.to_string()))?;
        let version = ServerVersion::parse(&text).ok_or(OpenError::Version(text))?;
        let service = Service::new(transport, &settings, version, observer);
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
            max_response_bytes: settings.max_response_bytes as u64,
            dashboard_saves: Arc::default(),
            in_flight: Default::default(),
        })
    }

    /// The dashboards kept in this store's database, at most `max_per_tenant` per tenant.
    pub fn dashboards(&self, max_per_tenant: usize) -> ClickhouseDashboards {
        ClickhouseDashboards {
            service: self.service.clone(),
            saves: self.dashboard_saves.clone(),
            max_per_tenant,
        }
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

    async fn write_samples(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
    ) -> Result<WriteOutcome, StoreError> {
        crate::newest::write_samples(&self.service, &self.in_flight, tenant, &batch).await
    }

    /// Stored under an id derived from the key and the points, reconciled first, so a resend after a
    /// crash stores nothing (`crate::keyed`); its answer is rebuilt from the same outcome.
    async fn write_keyed(
        &self,
        tenant: &Tenant,
        batch: Arc<PointBatch>,
        keyed: KeyedWrite,
    ) -> Result<KeyedOutcome, StoreError> {
        let (outcome, resent) =
            crate::keyed::write_keyed(&self.service, tenant, &batch, &keyed.key).await?;
        let response = (keyed.respond)(&outcome);
        Ok(if resent {
            KeyedOutcome::Replayed(response)
        } else {
            KeyedOutcome::Stored { outcome, response }
        })
    }

    async fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, StoreError> {
        query::run(&self.service, tenant, plan, ctx).await
    }

    /// ClickHouse scans and aggregates; this process holds only the answer, which cannot exceed
    /// `max_response_bytes` as sent: the largest answer the plan allows, at most that.
    async fn query_memory(&self, _tenant: &Tenant, plan: &QueryPlan) -> Result<u64, StoreError> {
        Ok(luminate_model::memory::answer_only(
            plan,
            self.max_response_bytes,
        ))
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

    async fn expire_before(
        &self,
        tenant: &Tenant,
        metric: &str,
        cutoff: TimestampMs,
    ) -> Result<u64, StoreError> {
        let now = luminate_model::time::now_ms();
        if crate::ttl::covers(self.service.tables.ttl, cutoff, now) {
            // ClickHouse drops these points in its merges: no mutation (see `ttl`).
            return Ok(0);
        }
        retention::delete_before(&self.service, tenant, metric, cutoff).await
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

    async fn settle(&self) -> Result<(), StoreError> {
        retention::settle(&self.service).await
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
            Err(e) => StorageHealth::failed(e),
        }
    }

    /// `clickhouse_reachable`: every configured address answers `SELECT 1` (asked directly, whatever
    /// the circuit breaker's state; see [`reachable`]).
    fn checks(&self) -> Vec<HealthCheck> {
        let service = Arc::clone(&self.service);
        vec![HealthCheck::new(REACHABLE_CHECK, async move {
            reachable(service.ping_each(PING_TIMEOUT).await)
        })]
    }

    /// One streamed `SELECT` read off the HTTP body as it comes (the `export` module).
    async fn export(&self, tenant: &Tenant, plan: &ExportPlan) -> Result<ExportStream, StoreError> {
        crate::export::export(&self.service, tenant, plan).await
    }

    /// Nothing is buffered (a write returns once ClickHouse has it): stops new requests.
    async fn close(&self) -> Result<(), StoreError> {
        self.service.close();
        Ok(())
    }

    /// Unsupported: the points and dashboards live in ClickHouse ([`snapshot_unsupported`]).
    async fn snapshot(&self) -> Result<Arc<dyn StoreSnapshot>, SnapshotError> {
        Err(snapshot_unsupported())
    }
}

/// Why the ClickHouse backend takes no snapshot for `luminate backup`, and what backs it up instead:
/// Luminate in front of ClickHouse keeps nothing of its own, so ClickHouse's own tools do.
pub fn snapshot_unsupported() -> SnapshotError {
    SnapshotError::Unsupported {
        backend: "clickhouse",
        message:
            "the ClickHouse backend keeps every point and dashboard in ClickHouse, and Luminate \
                  in front of it stores nothing of its own: back up ClickHouse with its own tools \
                  (ALTER TABLE ... FREEZE on each table of Luminate's database, clickhouse-backup, \
                  or BACKUP DATABASE on ClickHouse 22.8 and later); `luminate backup` copies the \
                  embedded engine's data directory only"
                .to_owned(),
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

/// The reachability verdict over each address's answer to `SELECT 1`: a pass listing them, or a
/// failure naming every address that did not answer, and why.
fn reachable(answers: Vec<(String, Result<(), TransportError>)>) -> CheckOutcome {
    let total = answers.len();
    let mut answered = Vec::new();
    let mut unreachable = Vec::new();
    for (address, answer) in answers {
        match answer {
            Ok(()) => answered.push(address),
            // These name the address already.
            Err(e @ (TransportError::Unreachable { .. } | TransportError::Broken { .. })) => {
                unreachable.push(e.to_string())
            }
            Err(e) => unreachable.push(format!("{address}: {e}")),
        }
    }
    if unreachable.is_empty() {
        CheckOutcome::pass().with_message(format!("SELECT 1 answered by {}", answered.join(", ")))
    } else {
        CheckOutcome::fail(format!(
            "{} of {total} ClickHouse addresses did not answer SELECT 1: {}",
            unreachable.len(),
            unreachable.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_answer(code: Option<u32>, message: &str) -> OpenError {
        OpenError::from_first_answer(TransportError::Server {
            code,
            message: message.to_owned(),
        })
    }

    #[test]
    fn open_errors_say_whether_waiting_helps_and_what_to_check() {
        let down = OpenError::from_first_answer(TransportError::Unreachable {
            addresses: "ch:8123".into(),
            message: "connection refused".into(),
        });
        assert!(down.is_transient());
        assert!(down.to_string().contains("ch:8123"), "{down}");
        let timeout = OpenError::from_first_answer(TransportError::Timeout {
            after: Duration::from_secs(1),
        });
        assert!(timeout.is_transient());

        let password = first_answer(
            Some(193),
            "Code: 193, DB::Exception: Wrong password for user x",
        );
        assert!(!password.is_transient());
        assert!(
            password
                .to_string()
                .ends_with("Wrong password for user x; check storage.clickhouse.username and storage.clickhouse.password"),
            "{password}"
        );
        let native = first_answer(
            None,
            "Port 9000 is for clickhouse-client program.\nYou must use port 8123 for HTTP.",
        );
        assert!(!native.is_transient());
        assert!(
            native.to_string().contains("native-protocol port"),
            "{native}"
        );
        let other = first_answer(Some(81), "Database x doesn't exist");
        assert!(!other.is_transient());
        assert!(other.to_string().ends_with("doesn't exist"), "{other}");

        let mid_schema = OpenError::Schema(SchemaError::Statement(StoreError::Unavailable {
            reason: "circuit open".into(),
        }));
        assert!(mid_schema.is_transient());
        assert!(!OpenError::Schema(SchemaError::Incompatible("x".into())).is_transient());
    }
}
