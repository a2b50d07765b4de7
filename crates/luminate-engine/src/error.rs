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
    /// A write found no room on the file system (`ENOSPC`, `EDQUOT`) and nothing of it was kept: what it
    /// had written was cut off or removed before this was returned, and nothing was acknowledged. The
    /// engine is not poisoned: the same write succeeds once space is freed (`crate::space`).
    #[error("{op} {path}: {source}; {space}: nothing of it was kept, retry once space is freed")]
    NoSpace {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error (`ENOSPC` or `EDQUOT`).
        source: std::io::Error,
        /// The file system's free space when it failed, with the directory it holds
        /// (`crate::space::describe`).
        space: String,
    },
    /// The flush of the frozen head is stalled for want of space (it keeps retrying by itself): a flush
    /// asked for cannot finish now, and with `head_points` the active head is at its limit too, so a
    /// write is refused rather than grow memory without bound. Nothing of the request was kept.
    #[error(
        "{}the flush of the head is stalled for want of space: {flush}",
        head_at_limit(.head_points)
    )]
    FlushStalled {
        /// Points in the active head, when a write was refused because of them.
        head_points: Option<u64>,
        /// The flusher's `NoSpace` error.
        flush: String,
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

/// The start of a `FlushStalled` message that refused a write.
fn head_at_limit(points: &Option<u64>) -> String {
    match points {
        Some(points) => format!("the head holds {points} points, its limit, and "),
        None => String::new(),
    }
}

/// The one place an engine failure gets its contract code: a write refused for want of space (nothing
/// kept, retry later) is `Full`; a locked or poisoned engine, and a storage condition (disk full, over
/// quota, read-only, failing: `is_storage_condition` below), are `StorageUnavailable` (503 both); query
/// failures keep theirs; anything else is internal (500).
impl From<EngineError> for StoreError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Query(q) => q,
            EngineError::NoSpace { .. } | EngineError::FlushStalled { .. } => StoreError::Full {
                reason: e.to_string(),
            },
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

/// True when `error` says the file system has no room for the write (`ENOSPC`) or the writer is over
/// its quota (`EDQUOT`): the failures a write recovers from once space is freed, when the caller
/// removed what it had written (see [`EngineError::NoSpace`]).
pub(crate) fn is_out_of_space(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    )
}

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
    fn a_write_refused_for_want_of_space_is_full_and_an_fsync_failure_is_not() {
        let refused = EngineError::NoSpace {
            op: "write WAL record",
            path: PathBuf::from("data/wal/00000001.wal"),
            source: Error::from_raw_os_error(28),
            space: "0 bytes free of 8388608 on the file system holding data/wal".into(),
        };
        let shown = refused.to_string();
        match StoreError::from(refused) {
            StoreError::Full { reason } => assert_eq!(reason, shown),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(
            shown,
            "write WAL record data/wal/00000001.wal: No space left on device (os error 28); 0 bytes \
             free of 8388608 on the file system holding data/wal: nothing of it was kept, retry once \
             space is freed"
        );
        let stalled = EngineError::FlushStalled {
            head_points: Some(10),
            flush: "write part temp file p.tmp: No space left on device".into(),
        };
        assert_eq!(
            stalled.to_string(),
            "the head holds 10 points, its limit, and the flush of the head is stalled for want of \
             space: write part temp file p.tmp: No space left on device"
        );
        assert!(matches!(StoreError::from(stalled), StoreError::Full { .. }));
        // A failed fsync stays 503 but is no `Full`: no retry mends it.
        let fsync = io(Error::from_raw_os_error(28));
        assert!(matches!(
            StoreError::from(fsync),
            StoreError::Unavailable { .. }
        ));
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
