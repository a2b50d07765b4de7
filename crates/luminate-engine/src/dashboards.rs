//! [`DashboardFiles`]: dashboards kept as JSON files in the data directory, one file per dashboard at
//! `dashboards/<tenant>/<id>.json` (names percent-encoded, see [`file_name`]), so a copy of the data
//! directory carries them. Every save replaces its file atomically (temp file, fsync, rename, fsync
//! the directory): a crash at any point leaves the old or the new document, never a torn one. Saves
//! and deletes are serialized, which makes the version check and the per-tenant count exact.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use luminate_model::Tenant;
use luminate_model::dashboard::{Dashboard, DashboardStoreError, Expected, next_version};

use crate::error::EngineError;
use crate::files::{create_dir_durable, io_error, sync_dir, write_atomic};

/// The directory under the data directory.
pub const DASHBOARDS_DIR: &str = "dashboards";
const EXTENSION: &str = ".json";

/// The dashboards of every tenant, under one data directory.
#[derive(Debug)]
pub struct DashboardFiles {
    root: PathBuf,
    max_per_tenant: usize,
    /// Held by saves and deletes: read, check, write as one step.
    changing: Mutex<()>,
}

/// `name` as a file name: `A-Z a-z 0-9 _ -` kept, `.` kept except first (no `.` or `..`), every
/// other byte `%XX`.
pub fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl DashboardFiles {
    /// The dashboards under `data_dir` (created on the first save); a create beyond `max_per_tenant`
    /// of one tenant is refused.
    pub fn new(data_dir: &Path, max_per_tenant: usize) -> Self {
        Self {
            root: data_dir.join(DASHBOARDS_DIR),
            max_per_tenant,
            changing: Mutex::new(()),
        }
    }

    fn tenant_dir(&self, tenant: &Tenant) -> PathBuf {
        self.root.join(file_name(tenant.as_str()))
    }

    fn path(&self, tenant: &Tenant, id: &str) -> PathBuf {
        self.tenant_dir(tenant)
            .join(format!("{}{EXTENSION}", file_name(id)))
    }

    /// Every dashboard of `tenant`, by id.
    pub fn list(&self, tenant: &Tenant) -> Result<Vec<Dashboard>, EngineError> {
        let dir = self.tenant_dir(tenant);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list dashboards in", &dir)(e)),
        };
        let mut dashboards = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_error("list dashboards in", &dir))?.path();
            // A `.json.tmp` is a save that crashed before its rename: not a dashboard.
            if path.to_string_lossy().ends_with(EXTENSION) {
                dashboards.push(read(&path)?);
            }
        }
        dashboards.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(dashboards)
    }

    /// The dashboard `id` of `tenant`.
    pub fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Dashboard>, EngineError> {
        match read(&self.path(tenant, id)) {
            Ok(dashboard) => Ok(Some(dashboard)),
            Err(EngineError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Saves `dashboard` if the stored one is as `expected`; the saved document with its version.
    pub fn put(
        &self,
        tenant: &Tenant,
        mut dashboard: Dashboard,
        expected: Expected,
    ) -> Result<Dashboard, DashboardStoreError> {
        let _changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.get(tenant, &dashboard.id).map_err(store_error)?;
        let version = next_version(&dashboard.id, current.and_then(|d| d.version), expected)?;
        if expected == Expected::Absent
            && self.count(tenant).map_err(store_error)? >= self.max_per_tenant
        {
            return Err(DashboardStoreError::TooMany {
                max: self.max_per_tenant,
            });
        }
        dashboard.version = Some(version);
        let bytes = serde_json::to_vec_pretty(&dashboard).map_err(|e| {
            DashboardStoreError::Store(luminate_model::StoreError::Internal {
                message: format!("cannot encode dashboard {:?}: {e}", dashboard.id),
            })
        })?;
        let dir = self.tenant_dir(tenant);
        create_dir_durable(&dir).map_err(store_error)?;
        write_atomic(&self.path(tenant, &dashboard.id), &bytes).map_err(store_error)?;
        Ok(dashboard)
    }

    /// Removes the dashboard `id` of `tenant`; false when there was none.
    pub fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, EngineError> {
        let _changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.path(tenant, id);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.tenant_dir(tenant))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("delete dashboard", &path)(e)),
        }
    }

    fn count(&self, tenant: &Tenant) -> Result<usize, EngineError> {
        let dir = self.tenant_dir(tenant);
        match fs::read_dir(&dir) {
            Ok(entries) => Ok(entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(EXTENSION))
                .count()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_error("count dashboards in", &dir)(e)),
        }
    }
}

fn read(path: &Path) -> Result<Dashboard, EngineError> {
    let bytes = fs::read(path).map_err(io_error("read dashboard", path))?;
    serde_json::from_slice(&bytes).map_err(|e| EngineError::Corruption {
        path: path.to_path_buf(),
        offset: e.column() as u64,
        reason: format!("not a dashboard document: {e}"),
    })
}

fn store_error(e: EngineError) -> DashboardStoreError {
    DashboardStoreError::Store(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use luminate_model::dashboard::document::from_value;
    use serde_json::json;

    fn dashboard(id: &str, title: &str) -> Dashboard {
        from_value(json!({"id": id, "title": title})).unwrap()
    }

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(file_name("acme.prod-1_x"), "acme.prod-1_x");
        assert_eq!(file_name(".."), "%2E.");
        assert_eq!(file_name("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn saves_are_versioned_counted_and_per_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let files = DashboardFiles::new(dir.path(), 2);
        let (a, b) = (Tenant::new("a"), Tenant::new("b"));
        let saved = files
            .put(&a, dashboard("d1", "one"), Expected::Absent)
            .unwrap();
        assert_eq!(saved.version, Some(1));
        let saved = files
            .put(&a, dashboard("d1", "one'"), Expected::Version(1))
            .unwrap();
        assert_eq!(saved.version, Some(2));
        assert!(matches!(
            files.put(&a, dashboard("d1", "stale"), Expected::Version(1)),
            Err(DashboardStoreError::Conflict {
                current: Some(2),
                ..
            })
        ));
        files
            .put(&a, dashboard("d2", "two"), Expected::Absent)
            .unwrap();
        assert!(matches!(
            files.put(&a, dashboard("d3", "three"), Expected::Absent),
            Err(DashboardStoreError::TooMany { max: 2 })
        ));
        // Another tenant has its own namespace and count.
        assert_eq!(files.list(&b).unwrap(), []);
        files
            .put(&b, dashboard("d1", "b's"), Expected::Absent)
            .unwrap();
        let titles: Vec<_> = files
            .list(&a)
            .unwrap()
            .into_iter()
            .map(|d| d.title)
            .collect();
        assert_eq!(titles, ["one'", "two"]);
        // A crashed save's temp file is not a dashboard.
        fs::write(dir.path().join("dashboards/a/d9.json.tmp"), b"{").unwrap();
        assert_eq!(files.list(&a).unwrap().len(), 2);
        assert!(files.delete(&a, "d1").unwrap());
        assert!(!files.delete(&a, "d1").unwrap());
        assert_eq!(files.get(&a, "d1").unwrap(), None);
        assert_eq!(files.get(&b, "d1").unwrap().unwrap().title, "b's");
    }
}
