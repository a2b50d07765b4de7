//! [`DashboardStore`]: where a backend keeps dashboards, per tenant. The embedded engine keeps them as
//! files in its data directory; a ClickHouse-backed server would keep them in a table every replica
//! reads. Stores keep documents already validated; they own versions and the per-tenant count.

use async_trait::async_trait;
use thiserror::Error;

use super::Dashboard;
use crate::point::Tenant;
use crate::store::StoreError;

/// What a save expects to replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Nothing: a create, refused when the id is taken.
    Absent,
    /// The dashboard at this version: a replace, refused when another save came first.
    Version(u64),
}

/// Why a save or delete did not happen.
#[derive(Debug, Error)]
pub enum DashboardStoreError {
    /// The stored dashboard is not the one expected (`409 CONFLICT`).
    #[error("{message}")]
    Conflict {
        /// What was expected and what is stored.
        message: String,
        /// The stored version, if there is a dashboard.
        current: Option<u64>,
    },
    /// A create beyond the tenant's `dashboards.max_per_tenant`.
    #[error(
        "the tenant already has {max} dashboards, the maximum (dashboards.max_per_tenant); delete one first"
    )]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tenant-scoped dashboard storage.
#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Every dashboard of `tenant`, by id.
    async fn list(&self, tenant: &Tenant) -> Result<Vec<Dashboard>, StoreError>;

    /// The dashboard `id` of `tenant`, if there is one.
    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Dashboard>, StoreError>;

    /// Saves `dashboard` (its `version` is ignored) if the stored one is as `expected`, durably before
    /// returning; the saved document, carrying its new version (1 for a create, one more for a
    /// replace).
    async fn put(
        &self,
        tenant: &Tenant,
        dashboard: Dashboard,
        expected: Expected,
    ) -> Result<Dashboard, DashboardStoreError>;

    /// Removes the dashboard `id` of `tenant`; false when there was none.
    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError>;
}

/// The version a save under `expected` gives, or the conflict, given the `current` stored version.
pub fn next_version(
    id: &str,
    current: Option<u64>,
    expected: Expected,
) -> Result<u64, DashboardStoreError> {
    match (current, expected) {
        (None, Expected::Absent) => Ok(1),
        (Some(v), Expected::Version(e)) if v == e => Ok(v + 1),
        (Some(v), Expected::Absent) => Err(DashboardStoreError::Conflict {
            message: format!(
                "dashboard {id:?} already exists (version {v}); replace it with PUT /api/v1/dashboards/{id}"
            ),
            current: Some(v),
        }),
        (Some(v), Expected::Version(e)) => Err(DashboardStoreError::Conflict {
            message: format!(
                "dashboard {id:?} is at version {v}, not {e}: it was changed since it was read; \
                 read it again and reapply the change"
            ),
            current: Some(v),
        }),
        (None, Expected::Version(_)) => Err(DashboardStoreError::Conflict {
            message: format!(
                "dashboard {id:?} does not exist (it was deleted); create it with POST"
            ),
            current: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_follow_the_expected_one() {
        assert_eq!(next_version("d", None, Expected::Absent).unwrap(), 1);
        assert_eq!(next_version("d", Some(4), Expected::Version(4)).unwrap(), 5);
        for (current, expected, stored) in [
            (Some(1), Expected::Absent, Some(1)),
            (Some(5), Expected::Version(4), Some(5)),
            (None, Expected::Version(1), None),
        ] {
            match next_version("d", current, expected) {
                Err(DashboardStoreError::Conflict { current, .. }) => assert_eq!(current, stored),
                other => panic!("{other:?}"),
            }
        }
    }
}
