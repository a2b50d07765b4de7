//! Dashboards in ClickHouse, so that every stateless replica sees the same ones: each save or delete
//! inserts a row `(tenant, id, written, deleted, document)` into `dashboards` (a
//! `ReplacingMergeTree(written)`), and a read takes, per id, the row written last (`argMax(…,
//! written)`), a delete being a row with `deleted = 1`. `written` is nanoseconds since the epoch,
//! strictly increasing within a process.
//!
//! The version check of a save reads and then inserts: this process serializes its own saves, but two
//! replicas saving the same dashboard at the same instant can both pass the check (the later row
//! wins). ClickHouse has no compare-and-set; a single-writer UI makes this rare, and the loser's change
//! is visible in the dashboard's history of rows until a merge.

use std::sync::Arc;

use async_trait::async_trait;
use luminate_model::dashboard::{
    Dashboard, DashboardStore, DashboardStoreError, Expected, next_version,
};
use luminate_model::{StoreError, Tenant};
use tokio::sync::Mutex;

use crate::retention::next_version as next_row_version;
use crate::rowbinary::{DecodeError, RowReader};
use crate::service::Service;
use crate::sql::quote;

fn decode_error(e: DecodeError) -> StoreError {
    StoreError::Internal {
        message: e.to_string(),
    }
}

/// Serializes this process's saves and deletes (the read-check-insert of one).
#[derive(Debug, Default)]
pub struct Saves(Mutex<()>);

/// The live dashboards of `tenant` (only `id` when given), by id.
pub async fn list(
    service: &Service,
    tenant: &Tenant,
    id: Option<&str>,
) -> Result<Vec<Dashboard>, StoreError> {
    let only = id.map_or(String::new(), |id| format!(" AND id = {}", quote(id)));
    let sql = format!(
        "SELECT argMax(document, written), toUInt64(argMax(deleted, written)) FROM {} \
         WHERE tenant = {}{only} GROUP BY id ORDER BY id FORMAT RowBinary",
        service.tables.dashboards,
        quote(tenant.as_str())
    );
    let body = service.run(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut out = Vec::new();
    while !r.is_empty() {
        let document = r.string().map_err(decode_error)?;
        let deleted = r.u64().map_err(decode_error)?;
        if deleted == 0 {
            out.push(
                serde_json::from_str(&document).map_err(|e| StoreError::Internal {
                    message: format!("a stored dashboard is not a dashboard document: {e}"),
                })?,
            );
        }
    }
    Ok(out)
}

async fn insert(
    service: &Service,
    tenant: &Tenant,
    id: &str,
    deleted: bool,
    document: &str,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {} (tenant, id, written, deleted, document) VALUES ({}, {}, {}, {}, {})",
        service.tables.dashboards,
        quote(tenant.as_str()),
        quote(id),
        next_row_version(),
        u8::from(deleted),
        quote(document)
    );
    service.run(&sql).await.map(drop)
}

/// Saves `dashboard` if the stored one is as `expected` and, for a create, the tenant has fewer than
/// `max_per_tenant`.
pub async fn put(
    service: &Service,
    saves: &Saves,
    max_per_tenant: usize,
    tenant: &Tenant,
    mut dashboard: Dashboard,
    expected: Expected,
) -> Result<Dashboard, DashboardStoreError> {
    let _saving = saves.0.lock().await;
    let current = list(service, tenant, Some(&dashboard.id)).await?;
    let version = next_version(
        &dashboard.id,
        current.first().and_then(|d| d.version),
        expected,
    )?;
    if expected == Expected::Absent && list(service, tenant, None).await?.len() >= max_per_tenant {
        return Err(DashboardStoreError::TooMany {
            max: max_per_tenant,
        });
    }
    dashboard.version = Some(version);
    let document = serde_json::to_string(&dashboard).map_err(|e| StoreError::Internal {
        message: format!("cannot encode dashboard {:?}: {e}", dashboard.id),
    })?;
    insert(service, tenant, &dashboard.id, false, &document).await?;
    Ok(dashboard)
}

/// Deletes the dashboard `id`; false when there is none.
pub async fn delete(
    service: &Service,
    saves: &Saves,
    tenant: &Tenant,
    id: &str,
) -> Result<bool, StoreError> {
    let _saving = saves.0.lock().await;
    if list(service, tenant, Some(id)).await?.is_empty() {
        return Ok(false);
    }
    insert(service, tenant, id, true, "").await?;
    Ok(true)
}

/// The [`DashboardStore`] over a ClickHouse store's tables (from [`crate::ClickhouseStore::dashboards`]).
#[derive(Debug, Clone)]
pub struct ClickhouseDashboards {
    pub(crate) service: Arc<Service>,
    pub(crate) saves: Arc<Saves>,
    pub(crate) max_per_tenant: usize,
}

#[async_trait]
impl DashboardStore for ClickhouseDashboards {
    async fn list(&self, tenant: &Tenant) -> Result<Vec<Dashboard>, StoreError> {
        list(&self.service, tenant, None).await
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Dashboard>, StoreError> {
        Ok(list(&self.service, tenant, Some(id)).await?.pop())
    }

    async fn put(
        &self,
        tenant: &Tenant,
        dashboard: Dashboard,
        expected: Expected,
    ) -> Result<Dashboard, DashboardStoreError> {
        put(
            &self.service,
            &self.saves,
            self.max_per_tenant,
            tenant,
            dashboard,
            expected,
        )
        .await
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        delete(&self.service, &self.saves, tenant, id).await
    }
}
