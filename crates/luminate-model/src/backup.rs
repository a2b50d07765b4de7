//! Online snapshots of what a backend stores, for `luminate backup`: what
//! [`crate::MetricsStore::snapshot`] hands the server. A snapshot is a list of files, each with the
//! size and CRC-32C of the bytes it holds, pinned — never changed nor removed by the backend — until
//! the snapshot is dropped. The server streams them; the client checks and writes them down. Owns no
//! I/O: a backend's snapshot reads its own files.

use std::io::Read;

use thiserror::Error;

use crate::store::StoreError;

/// One file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Its path relative to the root a restore writes it under, `/`-separated, no `.` or `..`
    /// component (`parts/0000000007.part`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// CRC-32C (Castagnoli) of those bytes.
    pub crc32c: u32,
}

/// A consistent set of files, pinned until dropped.
pub trait StoreSnapshot: Send + Sync + 'static {
    /// Its id, unique for the backend's data across restarts.
    fn id(&self) -> &str;

    /// Its files, in the order a restore writes them.
    fn files(&self) -> &[SnapshotFile];

    /// The bytes of the file at `path` (exactly its listed size); `None` for a path not in
    /// [`StoreSnapshot::files`]. Blocking I/O: the server calls it, and reads, on its blocking pool.
    fn open(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>, StoreError>;
}

/// Why no snapshot was taken.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum SnapshotError {
    /// The backend does not take snapshots; the message says what to use instead.
    #[error("{message}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// Why, and what backs it up instead.
        message: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
