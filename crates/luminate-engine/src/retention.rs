//! Retention overrides set through the admin API, persisted in `retention.json` in the data directory
//! (rewritten atomically on every change). Owns storing them; applying retention (deleting old points)
//! is the server's cleanup task, which calls `delete_before`.
//!
//! Format (version 1):
//! `{"format": 1, "overrides": [{"tenant": "...", "metric": "...", "retention_ms": 86400000}, ...]}`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use luminate_model::Tenant;
use luminate_model::store::RetentionOverride;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::files::{io_error, write_atomic};

/// File name inside the data directory.
pub(crate) const RETENTION_FILE: &str = "retention.json";
/// The format this build writes and reads.
const FORMAT_V1: u32 = 1;

#[derive(Serialize, Deserialize)]
struct FileV1 {
    format: u32,
    overrides: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    tenant: String,
    metric: String,
    retention_ms: u64,
}

/// Per tenant, per metric.
type Overrides = BTreeMap<Tenant, BTreeMap<String, Duration>>;

/// The overrides, in memory and on disk.
#[derive(Debug)]
pub(crate) struct RetentionStore {
    path: PathBuf,
    // Held while the file is rewritten, so concurrent changes cannot reorder on disk.
    overrides: Mutex<Overrides>,
}

impl RetentionStore {
    /// Loads `retention.json` from `data_dir` (none yet: no overrides).
    pub(crate) fn load(data_dir: &Path) -> Result<Self, EngineError> {
        let path = data_dir.join(RETENTION_FILE);
        let mut overrides = Overrides::new();
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("read retention overrides", &path)(e)),
            Ok(bytes) => {
                let corrupt = |reason: String| EngineError::Corruption {
                    path: path.clone(),
                    offset: 0,
                    reason,
                };
                let file: FileV1 =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if file.format != FORMAT_V1 {
                    return Err(corrupt(format!(
                        "unsupported format {} (this build reads {FORMAT_V1})",
                        file.format
                    )));
                }
                for e in file.overrides {
                    overrides
                        .entry(Tenant::new(e.tenant))
                        .or_default()
                        .insert(e.metric, Duration::from_millis(e.retention_ms));
                }
            }
        }
        Ok(Self {
            path,
            overrides: Mutex::new(overrides),
        })
    }

    /// Sets (or replaces) one override; it is on disk when this returns. On failure nothing changes.
    pub(crate) fn set(
        &self,
        tenant: &Tenant,
        metric: &str,
        retention: Duration,
    ) -> Result<(), EngineError> {
        let mut overrides = self.lock();
        let mut next = overrides.clone();
        next.entry(tenant.clone())
            .or_default()
            .insert(metric.to_owned(), retention);
        let file = FileV1 {
            format: FORMAT_V1,
            overrides: next
                .iter()
                .flat_map(|(t, metrics)| {
                    metrics.iter().map(|(m, d)| Entry {
                        tenant: t.as_str().to_owned(),
                        metric: m.clone(),
                        retention_ms: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                    })
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| EngineError::Io {
            op: "encode retention overrides",
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&self.path, &bytes)?;
        *overrides = next;
        Ok(())
    }

    /// The tenant's overrides, by metric name.
    pub(crate) fn of(&self, tenant: &Tenant) -> Vec<RetentionOverride> {
        self.lock()
            .get(tenant)
            .map(|m| {
                m.iter()
                    .map(|(metric, &retention)| RetentionOverride {
                        metric: metric.clone(),
                        retention,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Tenants with at least one override.
    pub(crate) fn tenants(&self) -> Vec<Tenant> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Overrides> {
        // The map is replaced only after a successful write, never left half-changed by a panic.
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
