//! The data directory's `LOCK` file: one engine per directory. Owns the advisory lock only; what the
//! directory holds is the business of the WAL and metadata modules.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::EngineError;
use crate::files::io_error;

/// Name of the lock file inside the data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// An exclusive lock on a data directory, released when dropped (the OS also releases it when the
/// process dies, so a crash never leaves a stale lock). The lock belongs to the open file, which a
/// child process forked meanwhile shares until it execs (the file is close-on-exec): reopening a
/// directory at that moment, in a process that spawns children, can fail as `Locked`.
#[derive(Debug)]
pub(crate) struct DirLock {
    // Held only so that the lock lives as long as the engine.
    _file: File,
}

impl DirLock {
    /// Takes the lock, failing with `Locked` if another engine (in this or another process) holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self, EngineError> {
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open lock file", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(EngineError::Locked { path }),
            Err(TryLockError::Error(source)) => Err(EngineError::Io {
                op: "lock",
                path,
                source,
            }),
        }
    }
}
