//! space: running out of disk space, which the engine recovers from without a restart. Owns which of
//! the engine's jobs is stalled for want of space now ([`Stalls`]: the writer's appends, the flusher,
//! the compactor), the words a refusal uses for the disk ([`describe`]: the file system's free bytes
//! and the directory it holds), and, in tests, the seam that makes a write fail as a full disk does
//! ([`fault`]).
//!
//! # Why a full disk does not poison
//! A write(2) that fails with `ENOSPC` or `EDQUOT` has changed nothing that was acknowledged: the
//! bytes before it are where they were, and the bytes it did write (a short write comes first) are
//! past the end the engine knows. So each writer removes what it wrote — the WAL truncates its segment
//! back to the end of its last whole record, a part or temp file is deleted, a half-created segment is
//! removed — and only then reports [`EngineError::NoSpace`]; the write is refused (`503` with a
//! `Retry-After`) and the same write succeeds once space is freed. If the cleanup itself fails, the
//! error is the cleanup's, which poisons as before. A failed **fsync** is another matter and still
//! poisons: after it the kernel may have dropped the dirty pages it could not write and marked them
//! clean, so a second fsync can succeed while the data is gone (PostgreSQL's "fsyncgate", 2018); what is
//! durable is unknown, and only a restart, which re-reads the files, knows again.
//!
//! # While the disk is full
//! Every write still tries its append: the first one that fits clears the writer's stall, so writes
//! resume by themselves. The flusher keeps its frozen head (queries read it) and retries with a
//! backoff ([`Backoff`]), as does the compactor; the writer neither waits on a stalled flush nor grows
//! the head past its limit meanwhile (writes are refused with the flush's reason instead). Health
//! reports the stall with the space left ([`Stalls::report`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{EngineError, is_out_of_space};

/// The engine's jobs that write to disk, each stalled on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    /// The writer thread's WAL appends (writes and deletes) and segment rolls.
    Wal,
    /// The flusher: series log, parts, manifest.
    Flush,
    /// The compactor's new parts and manifest.
    Compaction,
}

impl Job {
    const ALL: [Job; 3] = [Job::Wal, Job::Flush, Job::Compaction];

    fn index(self) -> usize {
        self as usize
    }

    /// How the observer's and the log's labels name it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Wal => "write",
            Self::Flush => "flush",
            Self::Compaction => "compaction",
        }
    }
}

/// Why one job is stalled.
#[derive(Debug, Clone)]
struct Stall {
    /// The refusal's message (`EngineError::NoSpace`'s).
    reason: String,
    /// The directory of the file that did not fit: health reads the space left there.
    dir: PathBuf,
    /// Bytes the failed write needed at least (0 when unknown): health clears the writer's stall once
    /// that much is free, as the next write would.
    needed: u64,
    since: Instant,
}

/// Which jobs are stalled for want of space now. Set by a job when it fails with
/// [`EngineError::NoSpace`], cleared by its next success.
#[derive(Debug, Default)]
pub(crate) struct Stalls {
    jobs: Mutex<[Option<Stall>; 3]>,
    /// By job: whether it is stalled, read without the lock (the writer clears its stall after every
    /// append and looks at the flusher's on every write).
    stalled: [AtomicBool; 3],
}

impl Stalls {
    /// `job` failed with `error` (a `NoSpace`) writing `needed` bytes or more; logs the first failure
    /// of a stall.
    pub(crate) fn set(&self, job: Job, error: &EngineError, needed: u64) {
        let dir = match error {
            EngineError::NoSpace { path, .. } => dir_of(path),
            _ => PathBuf::from("."),
        };
        let mut jobs = self.lock();
        let slot = &mut jobs[job.index()];
        if slot.is_none() {
            tracing::warn!(
                job = job.as_str(), error = %error,
                "no space left on the data directory's file system: refusing what does not fit, \
                 retrying until space is freed (nothing acknowledged is lost)"
            );
        }
        let since = slot.as_ref().map_or_else(Instant::now, |s| s.since);
        *slot = Some(Stall {
            reason: error.to_string(),
            dir,
            needed,
            since,
        });
        self.stalled[job.index()].store(true, Ordering::Release);
    }

    /// `job` succeeded: its stall, if any, is over (logged).
    pub(crate) fn clear(&self, job: Job) {
        if !self.stalled[job.index()].swap(false, Ordering::AcqRel) {
            return;
        }
        if let Some(stall) = self.lock()[job.index()].take() {
            tracing::info!(
                job = job.as_str(),
                stalled_ms = stall.since.elapsed().as_millis() as u64,
                "space available again: resumed"
            );
        }
    }

    /// Whether the flusher is stalled now.
    pub(crate) fn flush_stalled(&self) -> bool {
        self.stalled[Job::Flush.index()].load(Ordering::Acquire)
    }

    /// The reason of `job`'s stall, if it is stalled.
    pub(crate) fn reason(&self, job: Job) -> Option<String> {
        self.lock()[job.index()].as_ref().map(|s| s.reason.clone())
    }

    /// For health: the stalls of the writer and the flusher (a stalled compaction refuses no write: it
    /// is logged and retried, not reported), each with the space left now. The writer's stall is
    /// cleared first when its file system now has room for the write that failed — writes are never
    /// refused on its account (each tries its append), so this only stops health from reporting a full
    /// disk that was freed while no write came.
    pub(crate) fn report(&self) -> Option<String> {
        let mut jobs = self.lock();
        let wal_fits = jobs[Job::Wal.index()].as_ref().is_some_and(|stall| {
            available_bytes(&stall.dir).is_some_and(|free| free > stall.needed)
        });
        if wal_fits {
            jobs[Job::Wal.index()] = None;
            self.stalled[Job::Wal.index()].store(false, Ordering::Release);
        }
        let reports: Vec<String> = [Job::Wal, Job::Flush]
            .into_iter()
            .filter_map(|job| {
                let stall = jobs[job.index()].as_ref()?;
                Some(format!(
                    "{} stalled for want of space for {} s ({}; now {}): {}",
                    job.as_str(),
                    stall.since.elapsed().as_secs(),
                    if job == Job::Wal {
                        "writes that do not fit are refused"
                    } else {
                        "the head is kept in memory and the WAL, and retried"
                    },
                    describe(&stall.dir),
                    stall.reason
                ))
            })
            .collect();
        (!reports.is_empty()).then(|| reports.join("; "))
    }

    /// Jobs stalled now, for logs at shutdown.
    pub(crate) fn stalled(&self) -> Vec<&'static str> {
        let jobs = self.lock();
        Job::ALL
            .into_iter()
            .filter(|job| jobs[job.index()].is_some())
            .map(Job::as_str)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<Stall>; 3]> {
        // Every change replaces a slot whole: a panicked holder left nothing half-written.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The failure of a write to `path` that its caller has cleaned up after: `NoSpace` when the file
/// system had no room (see the module doc), `Io` otherwise.
pub(crate) fn write_error(op: &'static str, path: &Path, source: std::io::Error) -> EngineError {
    if is_out_of_space(&source) {
        EngineError::NoSpace {
            op,
            path: path.to_path_buf(),
            space: describe(&dir_of(path)),
            source,
        }
    } else {
        EngineError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The directory holding `path` (`.` for a bare file name). Not `crate::files`' own: `files` reports
/// its failures through this module, which imports nothing but `error`.
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Bytes an unprivileged writer may still use on the file system holding `dir` (statvfs(3)'s
/// `f_bavail`), if it can be read.
pub(crate) fn available_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// `"4096 bytes free of 16777216 on the file system holding /data/wal"`: the disk, named for a refusal.
pub(crate) fn describe(dir: &Path) -> String {
    match rustix::fs::statvfs(dir) {
        Ok(stat) => format!(
            "{} bytes free of {} on the file system holding {}",
            stat.f_bavail.saturating_mul(stat.f_frsize),
            stat.f_blocks.saturating_mul(stat.f_frsize),
            dir.display()
        ),
        Err(e) => format!(
            "free space unknown on the file system holding {} ({e})",
            dir.display()
        ),
    }
}

/// The pauses of a job retrying after `NoSpace`: from [`Backoff::FIRST`], doubling up to
/// [`Backoff::MAX`], so a full disk costs one attempt every few seconds, never a spinning thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Backoff {
    /// The first pause.
    pub(crate) const FIRST: Duration = Duration::from_millis(200);
    /// The longest pause.
    pub(crate) const MAX: Duration = Duration::from_secs(5);

    /// The next pause (and doubles the one after).
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    /// Sleeps the next pause, in steps, returning early (false) once `stop` says so.
    pub(crate) fn sleep(&mut self, stop: impl Fn() -> bool) -> bool {
        let until = Instant::now() + self.next_pause();
        while Instant::now() < until {
            if stop() {
                return false;
            }
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(STOP_CHECK),
            );
        }
        !stop()
    }
}

/// How often a backoff's sleep looks whether the engine is stopping.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Makes writes under a directory fail as on a full disk, for tests of the rollbacks: keyed by
/// directory (as `crate::wal::fsync_gate`), so other engines in the same test process are not touched.
#[cfg(test)]
pub(crate) mod fault {
    use std::path::{Path, PathBuf};
    use std::sync::{Mutex, PoisonError};

    /// Per directory: how many more bytes fit before writes fail with `ENOSPC` (`None`: unlimited).
    static DISKS: Mutex<Vec<(PathBuf, Option<u64>)>> = Mutex::new(Vec::new());

    /// From now on, writes to files directly in `dir` fit `room` more bytes, then fail with `ENOSPC`
    /// (a write that straddles the limit writes what fits first, as write(2) does).
    pub(crate) fn fill(dir: &Path, room: u64) {
        set(dir, Some(room));
    }

    /// Writes to files in `dir` fit again.
    pub(crate) fn free(dir: &Path) {
        set(dir, None);
    }

    fn set(dir: &Path, room: Option<u64>) {
        let mut disks = DISKS.lock().unwrap_or_else(PoisonError::into_inner);
        disks.retain(|(d, _)| d != dir);
        disks.push((dir.to_path_buf(), room));
    }

    /// How many of `len` bytes a write to `path` may write; `None` when all of them.
    pub(crate) fn room(path: &Path, len: usize) -> Option<usize> {
        let mut disks = DISKS.lock().unwrap_or_else(PoisonError::into_inner);
        let (_, room) = disks
            .iter_mut()
            .find(|(dir, _)| Some(dir.as_path()) == path.parent())?;
        let left = room.as_mut()?;
        let fits = (*left).min(len as u64);
        *left -= fits;
        (fits < len as u64).then_some(fits as usize)
    }
}

#[cfg(test)]
mod engine_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_space_is_no_space_and_other_failures_stay_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000001.wal");
        let full = write_error(
            "write WAL record",
            &path,
            std::io::Error::from_raw_os_error(28),
        );
        let shown = full.to_string();
        assert!(matches!(full, EngineError::NoSpace { .. }), "{shown}");
        assert!(
            shown.starts_with(&format!(
                "write WAL record {}: No space left on device",
                path.display()
            )),
            "{shown}"
        );
        assert!(
            shown.contains(&format!(
                "bytes free of {}",
                rustix::fs::statvfs(dir.path()).unwrap().f_blocks
                    * rustix::fs::statvfs(dir.path()).unwrap().f_frsize
            )) && shown.contains(&format!(
                "on the file system holding {}",
                dir.path().display()
            )),
            "{shown}"
        );
        let quota = write_error("write", &path, std::io::Error::from_raw_os_error(122));
        assert!(matches!(quota, EngineError::NoSpace { .. }));
        let failing = write_error("write", &path, std::io::Error::from_raw_os_error(5));
        assert!(matches!(failing, EngineError::Io { .. }));
    }

    #[test]
    fn a_stall_is_reported_until_its_job_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let stalls = Stalls::default();
        assert_eq!(stalls.report(), None);
        let error = write_error(
            "write part temp file",
            &dir.path().join("p.tmp"),
            std::io::Error::from_raw_os_error(28),
        );
        stalls.set(Job::Flush, &error, 0);
        assert!(stalls.flush_stalled());
        let report = stalls.report().unwrap();
        assert!(
            report.starts_with("flush stalled for want of space"),
            "{report}"
        );
        assert!(report.contains(&error.to_string()), "{report}");
        stalls.set(Job::Compaction, &error, 0);
        assert_eq!(stalls.stalled(), ["flush", "compaction"]);
        stalls.clear(Job::Flush);
        assert!(!stalls.flush_stalled());
        // A stalled compaction refuses nothing: not a health matter.
        assert_eq!(stalls.report(), None);
    }

    #[test]
    fn the_writers_stall_ends_in_health_once_the_write_would_fit() {
        let dir = tempfile::tempdir().unwrap();
        let stalls = Stalls::default();
        let error = write_error(
            "write WAL record",
            &dir.path().join("00000001.wal"),
            std::io::Error::from_raw_os_error(28),
        );
        stalls.set(Job::Wal, &error, u64::MAX);
        assert!(stalls.report().unwrap().starts_with("write stalled"));
        stalls.set(Job::Wal, &error, 1);
        assert_eq!(stalls.report(), None);
        assert_eq!(stalls.reason(Job::Wal), None);
    }

    #[test]
    fn backoff_doubles_to_its_bound_and_stops_early() {
        let mut backoff = Backoff::default();
        let pauses: Vec<Duration> = (0..7).map(|_| backoff.next_pause()).collect();
        assert_eq!(pauses[0], Backoff::FIRST);
        assert_eq!(pauses[1], Backoff::FIRST * 2);
        assert_eq!(pauses[6], Backoff::MAX);
        let started = Instant::now();
        assert!(!Backoff::default().sleep(|| true));
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
