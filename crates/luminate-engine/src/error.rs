//! error: what can go wrong in the engine ([`EngineError`], each with the file and operation involved)
//! and the one place those failures get their contract code (`From<EngineError> for StoreError`). Also
//! [`DroppedTail`], the damage recovery tolerates and reports instead of refusing to start. Depends on
//! no other module: every module reports its failures through it.

use std::path::PathBuf;

use luminate_model::store::StoreError;

/// A torn tail that recovery cut off: an incomplete last record of a log's last segment, with no
/// complete record after it (damage followed by a complete record refuses the start instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedTail {
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the first byte dropped (0: the segment header was torn, the segment is reset).
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    /// What ended the valid prefix (truncated payload, checksum mismatch, zero-filled tail, ...).
    pub reason: String,
}

/// Engine failures, with the file and operation involved.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Another process holds the data directory.
    #[error("data directory {path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds bytes that cannot be what the engine wrote (outside the tolerated torn tail).
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corruption {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A file the data directory's state says must exist is gone (the manifest of a directory holding
    /// data, a WAL segment the manifest names): the engine refuses to open rather than start without
    /// the data it held, and changes nothing.
    #[error("{path} is missing: {reason}")]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// Why it must exist, and what was found instead.
        reason: String,
    },
    /// An fsync or write failed earlier; the engine refuses further writes rather than lose data silently.
    #[error("engine is poisoned after a failed write or fsync: {reason}")]
    Poisoned {
        /// The original failure.
        reason: String,
    },
    /// A query-level failure (timeout, too large).
    #[error(transparent)]
    Query(#[from] StoreError),
}

/// The one place an engine failure gets its contract code: a locked or poisoned engine, and a storage
/// condition (disk full, over quota, read-only, failing: `is_storage_condition` below), are
/// `StorageUnavailable` (503); query failures keep theirs; anything else is internal (500).
impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Query(q) => q,
            EngineError::Poisoned { .. } | EngineError::Locked { .. } => StoreError::Unavailable {
                reason: e.to_string(),
            },
            EngineError::Io { ref source, .. } if is_storage_condition(source) => {
                StoreError::Unavailable {
                    reason: e.to_string(),
                }
            }
            other => StoreError::Internal {
                message: other.to_string(),
            },
        }
    }
}

/// `EIO` on Linux (and every Unix Luminate builds on): the device failed a read or write.
const EIO: i32 = 5;

/// True when `error` says the storage under the data directory cannot take the operation now — full
/// (`ENOSPC`), over quota (`EDQUOT`), mounted read-only (`EROFS`) or failing (`EIO`) — rather than that the
/// engine did something wrong. Such failures are answered `503 STORAGE_UNAVAILABLE` (an operator frees
/// space or fixes the device, and the client retries), not `500`: see `From<EngineError> for StoreError`.
pub(crate) fn is_storage_condition(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::ReadOnlyFilesystem
    ) || error.raw_os_error() == Some(EIO)
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use luminate_model::ErrorCode;

    use super::*;

    fn io(source: Error) -> EngineError {
        EngineError::Io {
            op: "write temp file",
            path: PathBuf::from("data/retention.json.tmp"),
            source,
        }
    }

    #[test]
    fn full_over_quota_read_only_and_failing_disks_are_storage_unavailable() {
        for source in [
            Error::from(ErrorKind::StorageFull),
            Error::from(ErrorKind::QuotaExceeded),
            Error::from(ErrorKind::ReadOnlyFilesystem),
            Error::from_raw_os_error(28),  // ENOSPC
            Error::from_raw_os_error(122), // EDQUOT
            Error::from_raw_os_error(30),  // EROFS
            Error::from_raw_os_error(EIO),
        ] {
            let shown = source.to_string();
            let error = StoreError::from(io(source));
            assert_eq!(error.code(), ErrorCode::StorageUnavailable, "{shown}");
            // The message keeps the operation, the file and the OS's words.
            assert!(
                error
                    .to_string()
                    .contains("write temp file data/retention.json.tmp")
                    && error.to_string().contains(&shown),
                "{error}"
            );
        }
    }

    #[test]
    fn other_io_failures_and_corruption_stay_internal_errors() {
        for source in [
            Error::from(ErrorKind::PermissionDenied),
            Error::from(ErrorKind::IsADirectory),
            Error::other("encoding failed"),
        ] {
            let shown = source.to_string();
            assert_eq!(
                StoreError::from(io(source)).code(),
                ErrorCode::InternalError,
                "{shown}"
            );
        }
        let corrupt = EngineError::Corruption {
            path: PathBuf::from("data/retention.json"),
            offset: 0,
            reason: "not JSON".into(),
        };
        assert_eq!(StoreError::from(corrupt).code(), ErrorCode::InternalError);
    }
}
