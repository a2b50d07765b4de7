//! The [`DashboardStore`] of the embedded engine, over its files ([`EmbeddedDashboards`]; ClickHouse's
//! is `luminate_clickhouse::ClickhouseDashboards`), and for a server given a store without dashboards
//! (`Server::bind_with_store`, `AppState::new`) one that says so ([`NoDashboards`], `503
//! STORAGE_UNAVAILABLE`).

use std::sync::Arc;

use async_trait::async_trait;
use luminate_engine::dashboards::DashboardFiles;
use luminate_model::dashboard::{Dashboard, DashboardStore, DashboardStoreError, Expected};
use luminate_model::{StoreError, Tenant};

/// Runs `f` on the blocking pool (file I/O and fsyncs must not stall the request threads).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal {
            message: format!("dashboard task failed: {e}"),
        })
}

/// Dashboards as files in the embedded engine's data directory.
#[derive(Debug, Clone)]
pub struct EmbeddedDashboards(pub Arc<DashboardFiles>);

#[async_trait]
impl DashboardStore for EmbeddedDashboards {
    async fn list(&self, tenant: &Tenant) -> Result<Vec<Dashboard>, StoreError> {
        let (files, tenant) = (self.0.clone(), tenant.clone());
        Ok(blocking(move || files.list(&tenant)).await??)
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Dashboard>, StoreError> {
        let (files, tenant, id) = (self.0.clone(), tenant.clone(), id.to_owned());
        Ok(blocking(move || files.get(&tenant, &id)).await??)
    }

    async fn put(
        &self,
        tenant: &Tenant,
        dashboard: Dashboard,
        expected: Expected,
    ) -> Result<Dashboard, DashboardStoreError> {
        let (files, tenant) = (self.0.clone(), tenant.clone());
        blocking(move || files.put(&tenant, dashboard, expected)).await?
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        let (files, tenant, id) = (self.0.clone(), tenant.clone(), id.to_owned());
        Ok(blocking(move || files.delete(&tenant, &id)).await??)
    }
}

/// The dashboards of a server given only a [`luminate_model::MetricsStore`]: every call is `503
/// STORAGE_UNAVAILABLE`.
#[derive(Debug, Clone, Copy)]
pub struct NoDashboards {
    /// The backend, for the message.
    pub backend: &'static str,
}

impl NoDashboards {
    fn refusal(&self) -> StoreError {
        StoreError::Unavailable {
            reason: format!(
                "this server was given a {} store without a place for dashboards",
                self.backend
            ),
        }
    }
}

#[async_trait]
impl DashboardStore for NoDashboards {
    async fn list(&self, _tenant: &Tenant) -> Result<Vec<Dashboard>, StoreError> {
        Err(self.refusal())
    }

    async fn get(&self, _tenant: &Tenant, _id: &str) -> Result<Option<Dashboard>, StoreError> {
        Err(self.refusal())
    }

    async fn put(
        &self,
        _tenant: &Tenant,
        _dashboard: Dashboard,
        _expected: Expected,
    ) -> Result<Dashboard, DashboardStoreError> {
        Err(self.refusal().into())
    }

    async fn delete(&self, _tenant: &Tenant, _id: &str) -> Result<bool, StoreError> {
        Err(self.refusal())
    }
}
