//! backup: online snapshots of the data directory, which `luminate backup` downloads through the
//! server (`Engine::snapshot`). Owns the snapshot directories `<data_dir>/backups/<id>/` and what a
//! snapshot pins; knows nothing of HTTP or of the backup's own format.
//!
//! # What a snapshot holds, and why it is consistent
//! A new engine opened on a copy must answer as this one does for every write acknowledged before the
//! snapshot was asked for. Start-up reads the manifest (the live parts, where WAL replay starts), the
//! parts it lists, the series log and the WAL from `wal_start` on, then `retention.json` and
//! `dashboards/`. So the log files are pinned in one step on the writer thread (`Request::Pause`), once
//! it has committed everything staged — every acknowledged write lies before the WAL's end — and, in
//! that step, under the catalog lock, which flushes, compactions and deletes hold to swap the manifest:
//! - `MANIFEST` as on disk (the catalog's holders wrote it; tombstones raised since are in the WAL's
//!   delete records, which replay applies again);
//! - every part it lists;
//! - the WAL segments from its `wal_start` to the active one, cut at the writer's end — a record
//!   boundary past every acknowledged record. No segment rolls meanwhile (freezing needs the writer
//!   thread), and a flush deletes segments only below a `wal_start` it swapped in under the catalog;
//! - the series log's segments up to where its last persist ended (the flusher may be appending past
//!   it). The parts a manifest lists had their series persisted before that manifest was written; a
//!   series the cut leaves out is defined by the WAL records copied, as after a crash.
//!
//! Then, outside the pause, `retention.json` and `dashboards/<tenant>/<id>.json`: each is replaced
//! whole by a rename, so a link holds one complete version.
//!
//! Not copied: `LOCK` (the engine opened on the copy takes its own), part files the manifest does not
//! list and temp files (garbage a start removes), `wal/health.probe`, and `backups/` itself.
//!
//! # Pinning
//! A file is pinned by a hard link in the snapshot's directory: compaction and retention unlink a
//! replaced part's name, a flush a replayed segment's, a save a dashboard's old version — the link
//! keeps the inode, and the log's appends past a cut are not served. Pinning costs one link(2) per file,
//! no copy; the space of what is replaced meanwhile stays held until the snapshot is dropped, which
//! removes its directory. [`remove_leftovers`] removes the snapshots of an earlier run when the engine
//! opens (nothing can download them any more), so a crash leaves no garbage past the next start. The
//! links need the data directory on one file system that has them (every local Linux one does).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use luminate_model::backup::{SnapshotFile, StoreSnapshot};
use luminate_model::store::StoreError;

use crate::dashboards::DASHBOARDS_DIR;
use crate::error::EngineError;
use crate::files::io_error;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::retention::RETENTION_FILE;
use crate::shared::Shared;
use crate::stored::PARTS_DIR;
use crate::wal::{self, LogEnd, SERIES_DIR, WAL_DIR, segment_file_name};

/// The directory of snapshots under the data directory.
pub(crate) const BACKUPS_DIR: &str = "backups";
/// Bytes read at a time to checksum a pinned file.
const CHECKSUM_BUFFER: usize = 1 << 20;

/// One file pinned for a snapshot.
pub(crate) struct Pinned {
    /// Its path in the data directory, `/`-separated (`parts/0000000007.part`).
    path: String,
    /// The hard link that pins it.
    link: PathBuf,
    /// Bytes that belong to the snapshot, for a log segment still being appended to; the whole file
    /// otherwise.
    cut: Option<u64>,
}

/// A consistent set of the data directory's files, pinned until dropped (see the module doc).
#[derive(Debug)]
pub struct Snapshot {
    id: String,
    /// `<data_dir>/backups/<id>`, removed on drop.
    dir: PathBuf,
    files: Vec<SnapshotFile>,
    /// The link of each file, in the order of `files`.
    links: Vec<PathBuf>,
}

impl Snapshot {
    /// Its id (unique across restarts: the time it was taken and a counter).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its files, each with the size and CRC-32C of the bytes that belong to it, in the order a
    /// restore can write them (`MANIFEST` first, then parts, WAL, series log, settings).
    pub fn files(&self) -> &[SnapshotFile] {
        &self.files
    }

    /// The bytes of the file at `path` (one of [`Snapshot::files`]): exactly its listed size, whatever
    /// is appended to the original meanwhile. `None` for a path the snapshot does not hold.
    pub fn read(&self, path: &str) -> Result<Option<std::io::Take<File>>, EngineError> {
        let Some(i) = self.files.iter().position(|f| f.path == path) else {
            return Ok(None);
        };
        let link = &self.links[i];
        let file = File::open(link).map_err(io_error("open pinned file", link))?;
        Ok(Some(file.take(self.files[i].size)))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a released snapshot");
        }
    }
}

impl StoreSnapshot for Snapshot {
    fn id(&self) -> &str {
        &self.id
    }

    fn files(&self) -> &[SnapshotFile] {
        &self.files
    }

    fn open(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>, StoreError> {
        Ok(self
            .read(path)?
            .map(|r| Box::new(r) as Box<dyn Read + Send>))
    }
}

/// The pinning of the logs, run by the writer thread once it has committed what was staged, with the
/// WAL's end.
pub(crate) type PinLogs = Box<dyn FnOnce(LogEnd) -> Result<Vec<Pinned>, EngineError> + Send>;

/// Takes a snapshot of the data directory `data_dir` (see the module doc); `paused` runs the pinning
/// of the logs on the writer thread (`Engine::paused`).
pub(crate) fn take(
    shared: &Arc<Shared>,
    data_dir: &Path,
    paused: impl FnOnce(PinLogs) -> Result<Vec<Pinned>, EngineError>,
) -> Result<Snapshot, EngineError> {
    let id = new_id();
    let dir = data_dir.join(BACKUPS_DIR).join(&id);
    fs::create_dir_all(&dir).map_err(io_error("create snapshot directory", &dir))?;
    // From here on a failure drops it, which removes the directory and what was linked so far.
    let mut snapshot = Snapshot {
        id,
        dir,
        files: Vec::new(),
        links: Vec::new(),
    };
    let (shared, from, to) = (
        Arc::clone(shared),
        data_dir.to_path_buf(),
        snapshot.dir.clone(),
    );
    let mut pinned = paused(Box::new(move |end| pin_logs(&shared, &from, &to, end)))?;
    pin_settings(data_dir, &snapshot.dir, &mut pinned)?;
    for p in pinned {
        let (size, crc32c) = checksum(&p.link, p.cut)?;
        snapshot.files.push(SnapshotFile {
            path: p.path,
            size,
            crc32c,
        });
        snapshot.links.push(p.link);
    }
    Ok(snapshot)
}

/// Removes the snapshot directories of an earlier run (called once the directory is locked).
pub(crate) fn remove_leftovers(data_dir: &Path) {
    let dir = data_dir.join(BACKUPS_DIR);
    match fs::remove_dir_all(&dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "removed the backup snapshots of an earlier run")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove the backup snapshots of an earlier run")
        }
    }
}

/// A new snapshot id: the time in ms (hex) and a counter, unique across restarts of one directory.
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{ms:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Pins the manifest, its parts, the WAL up to `wal_end` and the series log up to its last persist.
/// Runs on the writer thread, paused (see the module doc).
fn pin_logs(
    shared: &Shared,
    data_dir: &Path,
    dir: &Path,
    wal_end: LogEnd,
) -> Result<Vec<Pinned>, EngineError> {
    // A poisoned log may end in a record whose write failed half way.
    if shared.poisoned().is_some() {
        return Err(shared.poisoned_error());
    }
    let _catalog = shared.catalog();
    let series_end = shared.series_log_end();
    let manifest = Manifest::load(data_dir)?.ok_or_else(|| EngineError::Missing {
        path: data_dir.join(MANIFEST_FILE),
        reason: "an open engine always has a manifest".to_owned(),
    })?;
    let mut pinned = Vec::new();
    pin(data_dir, dir, MANIFEST_FILE.to_owned(), None, &mut pinned)?;
    for part in &manifest.parts {
        let path = format!("{PARTS_DIR}/{}", part.file);
        pin(data_dir, dir, path, None, &mut pinned)?;
    }
    for seq in manifest.wal_start..=wal_end.segment {
        let cut = (seq == wal_end.segment).then_some(wal_end.len);
        let path = format!("{WAL_DIR}/{}", segment_file_name(seq));
        pin(data_dir, dir, path, cut, &mut pinned)?;
    }
    for seq in wal::segment_numbers(&data_dir.join(SERIES_DIR))? {
        if seq > series_end.segment {
            break;
        }
        let cut = (seq == series_end.segment).then_some(series_end.len);
        let path = format!("{SERIES_DIR}/{}", segment_file_name(seq));
        pin(data_dir, dir, path, cut, &mut pinned)?;
    }
    Ok(pinned)
}

/// Pins `retention.json` and every dashboard, those that exist.
fn pin_settings(data_dir: &Path, dir: &Path, pinned: &mut Vec<Pinned>) -> Result<(), EngineError> {
    pin_if_present(data_dir, dir, RETENTION_FILE.to_owned(), pinned)?;
    let root = data_dir.join(DASHBOARDS_DIR);
    for tenant in list(&root)? {
        // Dashboards are `<id>.json`; `<id>.json.tmp` is a save under way (its rename is what counts).
        for name in list(&root.join(&tenant))? {
            if name.ends_with(".json") {
                let path = format!("{DASHBOARDS_DIR}/{tenant}/{name}");
                pin_if_present(data_dir, dir, path, pinned)?;
            }
        }
    }
    Ok(())
}

/// Names of the entries of `dir` (none when it does not exist or is not a directory); names that are
/// not UTF-8 are not the engine's (its names are percent-encoded ASCII).
fn list(dir: &Path) -> Result<Vec<String>, EngineError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(io_error("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("list", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Hard-links `data_dir/path` into `dir/path`.
fn pin(
    data_dir: &Path,
    dir: &Path,
    path: String,
    cut: Option<u64>,
    pinned: &mut Vec<Pinned>,
) -> Result<(), EngineError> {
    let from = data_dir.join(&path);
    let link = dir.join(&path);
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent).map_err(io_error("create snapshot directory", parent))?;
    }
    fs::hard_link(&from, &link).map_err(io_error("hard-link for a backup snapshot", &from))?;
    pinned.push(Pinned { path, link, cut });
    Ok(())
}

/// [`pin`], skipping a file that does not exist (no retention override yet, a dashboard deleted since
/// its directory was listed).
fn pin_if_present(
    data_dir: &Path,
    dir: &Path,
    path: String,
    pinned: &mut Vec<Pinned>,
) -> Result<(), EngineError> {
    match pin(data_dir, dir, path, None, pinned) {
        Err(EngineError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(())
        }
        other => other,
    }
}

/// The size of a pinned file's bytes that belong to the snapshot, and their CRC-32C.
fn checksum(link: &Path, cut: Option<u64>) -> Result<(u64, u32), EngineError> {
    let file = File::open(link).map_err(io_error("open pinned file", link))?;
    let size = match cut {
        Some(cut) => cut,
        None => file
            .metadata()
            .map_err(io_error("read the size of pinned file", link))?
            .len(),
    };
    let mut reader = file.take(size);
    let mut buffer = vec![0u8; CHECKSUM_BUFFER];
    let (mut crc, mut read) = (0u32, 0u64);
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(io_error("read pinned file", link))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buffer[..n]);
        read += n as u64;
    }
    if read != size {
        return Err(EngineError::Corruption {
            path: link.to_path_buf(),
            offset: read,
            reason: format!("the file ends at {read} bytes, before the {size} pinned"),
        });
    }
    Ok((size, crc))
}

#[cfg(test)]
mod tests;
