//! Durable file operations shared by the WAL and metadata: the one atomic-write helper, directory fsync,
//! waiting out a shortage of file descriptors, and disk-use accounting. Owns no file format.
//!
//! # Out of descriptors is not a failed write
//! An open(2) that fails with `EMFILE` (the process has no descriptor left) or `ENFILE` (the system has
//! none) says nothing about the disk: it fails before anything is created or written, and succeeds once
//! descriptors are closed — by the connections the server drops, say. So the opens of the write path
//! (a directory opened to fsync it, a temp or part file) wait for a descriptor, pausing between tries
//! (growing to [`MAX_DESCRIPTOR_PAUSE`]) and warning every [`DESCRIPTOR_WARNING_EVERY`], instead of
//! failing — a failure there would poison the engine, and writes would fail until a restart, for a
//! condition that passes by itself. A failed fsync still fails (and poisons): after it, what is on disk
//! is unknown. A write or rename that found no room removes its temp file and fails with `NoSpace`,
//! which poisons nothing (`crate::space`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::EngineError;

/// The first pause after an open failed for want of a descriptor; each next one doubles, up to
/// [`MAX_DESCRIPTOR_PAUSE`].
const FIRST_DESCRIPTOR_PAUSE: Duration = Duration::from_millis(5);
const MAX_DESCRIPTOR_PAUSE: Duration = Duration::from_secs(1);
/// How often a wait for a descriptor is logged again while it lasts.
const DESCRIPTOR_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Builds an `EngineError::Io` for `op` on `path`.
pub(crate) fn io_error(
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |source| EngineError::Io { op, path, source }
}

/// Whether `e` is the process (`EMFILE`) or the system (`ENFILE`) being out of file descriptors.
pub(crate) fn is_descriptor_shortage(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::MFILE.raw_os_error())
        || code == Some(rustix::io::Errno::NFILE.raw_os_error())
}

/// Whether `e` is an I/O call that failed for want of a file descriptor.
pub(crate) fn is_descriptor_shortage_error(e: &EngineError) -> bool {
    matches!(e, EngineError::Io { source, .. } if is_descriptor_shortage(source))
}

/// Runs `attempt` until it fails otherwise than for want of a file descriptor (`shortage` says which
/// failures are), pausing between tries: see the module doc. `attempt` must be safe to repeat after
/// such a failure, as an open(2) is. Blocks the calling thread: the engine's writer and flusher are
/// threads of their own, which have nothing better to do than wait.
pub(crate) fn wait_for_descriptors<T, E: std::fmt::Display>(
    what: &str,
    mut attempt: impl FnMut() -> Result<T, E>,
    shortage: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let started = Instant::now();
    let mut pause = FIRST_DESCRIPTOR_PAUSE;
    let mut warned: Option<Instant> = None;
    loop {
        match attempt() {
            Err(e) if shortage(&e) => {
                if warned.is_none_or(|at| at.elapsed() >= DESCRIPTOR_WARNING_EVERY) {
                    tracing::warn!(
                        what, error = %e, waited_ms = started.elapsed().as_millis() as u64,
                        "out of file descriptors: waiting for one (not a disk failure)"
                    );
                    warned = Some(Instant::now());
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_DESCRIPTOR_PAUSE);
            }
            result => {
                if warned.is_some() {
                    tracing::info!(
                        what,
                        waited_ms = started.elapsed().as_millis() as u64,
                        "file descriptors available again"
                    );
                }
                return result;
            }
        }
    }
}

/// Opens `path` with `options`, waiting for a descriptor if there is none.
pub(crate) fn open_waiting(path: &Path, options: &OpenOptions) -> io::Result<File> {
    wait_for_descriptors(
        &path.display().to_string(),
        || options.open(path),
        is_descriptor_shortage,
    )
}

/// fsyncs a directory so that entries created, renamed or removed in it survive a power loss. Opening
/// it waits for a descriptor if there is none; the fsync's failure is the only error that says the
/// entries may not be durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    open_waiting(dir, OpenOptions::new().read(true))
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Creates `dir` (and parents) if missing, making the new entry durable in its parent.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), EngineError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// Replaces `path` with `bytes` atomically: write a temp file beside it, fsync it, rename it over
/// `path`, fsync the directory. A crash leaves either the old or the new content, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = parent_dir(path);
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let file = open_waiting(
        &tmp,
        OpenOptions::new().write(true).create(true).truncate(true),
    )
    .map_err(|e| crate::space::write_error("create temp file", &tmp, e))?;
    if let Err(e) = write_all(&file, &tmp, bytes) {
        // Nothing half-written survives: the old file is untouched, the temp file goes.
        drop(file);
        remove_written(&tmp)?;
        return Err(crate::space::write_error("write temp file", &tmp, e));
    }
    file.sync_all().map_err(io_error("fsync temp file", &tmp))?;
    drop(file);
    if let Err(e) = fs::rename(&tmp, path) {
        // A rename that found no room for the directory entry changed nothing.
        remove_written(&tmp)?;
        return Err(crate::space::write_error("rename temp file into", path, e));
    }
    sync_dir(&dir)
}

/// write(2)s all of `bytes` to `file` (named `path`). In tests, [`crate::space::fault`] can make it
/// fail part-way as a full disk does.
pub(crate) fn write_all(mut file: &File, path: &Path, bytes: &[u8]) -> io::Result<()> {
    #[cfg(test)]
    if let Some(fits) = crate::space::fault::room(path, bytes.len()) {
        file.write_all(&bytes[..fits])?;
        return Err(io::Error::from_raw_os_error(28));
    }
    #[cfg(not(test))]
    let _ = path;
    file.write_all(bytes)
}

/// Removes a file a failed write left behind; a failure to remove it is the error (the caller's
/// write then counts as failed in an unknown state).
pub(crate) fn remove_written(path: &Path) -> Result<(), EngineError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove what a failed write left in", path)(e)),
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Total size of the regular files under `dir`, recursively; `None` if the directory cannot be read.
pub(crate) fn disk_used_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).ok()? {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("meta.json")]);
        assert_eq!(disk_used_bytes(dir.path()), Some(6));
    }

    #[test]
    fn an_atomic_write_that_finds_no_room_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retention.json");
        write_atomic(&path, b"old").unwrap();
        crate::space::fault::fill(dir.path(), 5);
        let err = write_atomic(&path, b"much longer content").unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::NoSpace {
                    op: "write temp file",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(!dir.path().join("retention.json.tmp").exists());
        crate::space::fault::free(dir.path());
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }
}
