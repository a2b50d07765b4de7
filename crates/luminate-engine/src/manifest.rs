//! manifest: the list of live parts, their tombstones, and where WAL replay starts — the one file that
//! says which on-disk state is current. Owns its format; flush, deletes and compaction decide what it
//! holds.
//!
//! # Format (version 1): `<data_dir>/MANIFEST`, JSON
//! ```text
//! { "version": 1,
//!   "wal_start": 7,          first WAL segment to replay: every record of lower segments is in parts
//!   "next_part": 42,         next part file number (never reused, so a name always means one content)
//!   "parts": [ { "file": "0000000041.part", "tenant": "t", "metric": "m", "day": 20454,
//!                "rows": 1200, "min_t": 1767225600000, "max_t": 1767311999000,
//!                "deleted_before": null } ] }
//! ```
//! `deleted_before` is the part's tombstone: its rows with a timestamp below it are deleted. Replaced
//! whole with `files::write_atomic`, so a crash leaves the old or the new manifest. Start-up writes
//! the first one (empty) as soon as it has opened a new directory, before any flush: so a directory
//! without a manifest is new (or from a build that wrote none before its first flush), and one that
//! lost its manifest is told apart by the data it holds (`crate::recovery`).

use std::path::Path;

use luminate_model::TimestampMs;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::files::{io_error, write_atomic};

/// File name of the manifest in the data directory.
pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
/// The format this build writes and reads.
const VERSION: u32 = 1;

/// The live on-disk state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Format version.
    pub version: u32,
    /// First WAL segment replayed at start-up.
    pub wal_start: u64,
    /// Number of the next part file.
    pub next_part: u64,
    /// Live parts.
    pub parts: Vec<PartEntry>,
}

/// One live part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// File name in `<data_dir>/parts/`.
    pub file: String,
    /// Owner (the tenant's name).
    pub tenant: String,
    /// Metric.
    pub metric: String,
    /// Partition day (days since 1970-01-01 UTC).
    pub day: i64,
    /// Rows in the file (tombstoned ones included).
    pub rows: u64,
    /// Smallest timestamp in the file.
    pub min_t: TimestampMs,
    /// Largest timestamp in the file (inclusive).
    pub max_t: TimestampMs,
    /// Rows with a timestamp below this are deleted.
    pub deleted_before: Option<TimestampMs>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            version: VERSION,
            wal_start: 1,
            next_part: 1,
            parts: Vec::new(),
        }
    }
}

impl Manifest {
    /// Reads the manifest of `data_dir`: `None` when there is none, corruption when it is unreadable or
    /// of an unknown version.
    pub(crate) fn load(data_dir: &Path) -> Result<Option<Self>, EngineError> {
        let path = data_dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read manifest", &path)(e)),
        };
        Self::decode(&path, &bytes).map(Some)
    }

    /// The manifest in `bytes`, read from `path`: corruption when they are not JSON of this version.
    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Self, EngineError> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|e| EngineError::Corruption {
                path: path.to_path_buf(),
                offset: e.column() as u64,
                reason: format!("manifest is not valid JSON of version {VERSION}: {e}"),
            })?;
        if manifest.version != VERSION {
            return Err(EngineError::Corruption {
                path: path.to_path_buf(),
                offset: 0,
                reason: format!(
                    "unsupported manifest version {} (this build reads {VERSION})",
                    manifest.version
                ),
            });
        }
        Ok(manifest)
    }

    /// The bytes [`Manifest::store`] writes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }

    /// Replaces the manifest of `data_dir` atomically.
    pub(crate) fn store(&self, data_dir: &Path) -> Result<(), EngineError> {
        let path = data_dir.join(MANIFEST_FILE);
        let bytes = self
            .encode()
            .map_err(|e| io_error("encode manifest", &path)(std::io::Error::other(e)))?;
        write_atomic(&path, &bytes)
    }
}

/// The file name of part number `n`.
pub(crate) fn part_file_name(n: u64) -> String {
    format!("{n:010}.part")
}

/// The number of a part file name, if it is one.
pub(crate) fn parse_part_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".part")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        let m = Manifest {
            version: VERSION,
            wal_start: 3,
            next_part: 8,
            parts: vec![PartEntry {
                file: part_file_name(7),
                tenant: "t".into(),
                metric: "m".into(),
                day: 1,
                rows: 2,
                min_t: 86_400_000,
                max_t: 86_400_001,
                deleted_before: Some(86_400_001),
            }],
        };
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
        assert_eq!(parse_part_file_name(&part_file_name(7)), Some(7));
        assert_eq!(parse_part_file_name("0000000007.part.tmp"), None);
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{").unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(EngineError::Corruption { .. })
        ));
    }
}
