//! freeze: the writer thread's side of flushing — a head past its size or age rolled out of the WAL,
//! frozen into the snapshot and handed to the flusher (`crate::flush`), with back-pressure while the
//! previous one is still being flushed — and none while that flush is stalled for want of space: the
//! writer then refuses writes past the head's limit rather than wait (`crate::space`).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use super::{Committer, Request};
use crate::error::EngineError;
use crate::flush::FlushJob;
use crate::space::Job;
use crate::stored::Frozen;
use crate::wal::Wal;

/// How long a freeze that failed for want of space (or found the previous flush stalled) waits before
/// it is tried again: the writer thread wakes this often while the disk is full, never more.
pub(super) const FREEZE_RETRY: Duration = Duration::from_secs(1);
/// How often a wait for the running flush looks whether it is stalled.
const FLUSH_POLL: Duration = Duration::from_millis(50);

/// The commit thread's side of flushing.
pub(crate) struct FlushControl {
    /// Freeze the head past this many points.
    pub max_points: u64,
    /// Freeze a head whose first point is this old.
    pub max_age: Duration,
    /// Hands frozen heads to the flusher.
    pub jobs: SyncSender<FlushJob>,
    /// One message per finished flush.
    pub done: Receiver<()>,
    /// Wakes the compactor (after deletes).
    pub compact: SyncSender<()>,
    /// A frozen head is being flushed.
    pub flushing: bool,
    /// When the active head got its first point.
    pub head_since: Option<Instant>,
    /// A freeze failed (no space for the next WAL segment, or the previous flush stalled): not tried
    /// again before then.
    pub retry_at: Option<Instant>,
}

impl Committer {
    /// Freezes the head if it is past its size or age threshold (after committing everything logged:
    /// the frozen head must hold every record of the segments below the roll). Not while a failed
    /// freeze waits to be retried ([`FREEZE_RETRY`]), nor while the previous frozen head's flush is
    /// stalled for want of space (waiting for it would block every writer).
    pub(super) fn maybe_freeze(&mut self, requests: &Receiver<Request>) {
        if self.flush.flushing && self.flush.done.try_recv().is_ok() {
            self.flush.flushing = false;
        }
        if self.flush.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let points = self.shared.read_head().points();
        let old = self
            .flush
            .head_since
            .is_some_and(|t| t.elapsed() >= self.flush.max_age);
        if points > 0 && (points >= self.flush.max_points || old) {
            if self.flush.flushing && self.shared.space.flush_stalled() {
                self.flush.retry_at = Some(Instant::now() + FREEZE_RETRY);
                return;
            }
            self.drain(requests);
            // A failure is logged where it happens (a stall) or poisoned; the head stays active.
            let _ = self.freeze();
        }
    }

    /// Hands the head to the flusher and starts an empty one. Back-pressure: while the previous frozen
    /// head is still being flushed, this waits for it, so at most two heads are ever in memory — unless
    /// that flush is stalled for want of space, or the WAL has no room for the segment the roll
    /// creates: then nothing changes, the error says why, and the freeze is retried after
    /// [`FREEZE_RETRY`].
    pub(super) fn freeze(&mut self) -> Result<(), EngineError> {
        if let Err(e) = self.wait_for_flush() {
            self.flush.retry_at = Some(Instant::now() + FREEZE_RETRY);
            return Err(e);
        }
        self.ensure_not_poisoned()?;
        // Every record of the frozen head lies in segments below `wal_start`.
        let wal_start = match self.roll() {
            Ok(seq) => seq,
            Err(e @ EngineError::NoSpace { .. }) => {
                self.no_space(Job::Wal, &e, Wal::frame_len(0));
                self.flush.retry_at = Some(Instant::now() + FREEZE_RETRY);
                return Err(e);
            }
            Err(e) => {
                self.shared.poison(e.to_string());
                return Err(self.shared.poisoned_error());
            }
        };
        self.shared.space.clear(Job::Wal);
        self.flush.retry_at = None;
        if let Err(e) = self.carry_keys_over() {
            self.shared.poison(e.to_string());
            return Err(self.shared.poisoned_error());
        }
        let frozen = {
            let catalog = self.shared.catalog();
            let mut head = self.shared.write_head();
            let frozen = Arc::new(head.take());
            let mut stored = (*self.shared.read_stored()).clone();
            stored.frozen = Some(Frozen {
                head: Arc::clone(&frozen),
                tombstones: Default::default(),
            });
            self.shared.set_stored(&catalog, stored);
            frozen
        };
        self.flush.head_since = None;
        if self
            .flush
            .jobs
            .send(FlushJob { frozen, wal_start })
            .is_err()
        {
            self.shared.poison("the flusher thread stopped".to_owned());
            return Err(self.shared.poisoned_error());
        }
        self.flush.flushing = true;
        Ok(())
    }

    /// Logs the live idempotency keys at the start of the segment replay will start from once this flush
    /// deletes the segments below it, and makes them durable (whatever the sync policy: it is one fsync
    /// per flush) before the flusher can delete those segments. The cost is the window's size, once per
    /// flush (docs/engine.md, "Idempotency keys").
    fn carry_keys_over(&mut self) -> Result<(), crate::error::EngineError> {
        let records = self.keys.carried_over(luminate_model::time::now_ms());
        if records.is_empty() {
            return Ok(());
        }
        for record in &records {
            if let Err(e) = self.append(record) {
                self.shared.observer.wal_write_failed();
                return Err(e);
            }
            self.shared.observer.wal_appended(record.len() as u64);
        }
        self.unsynced = true;
        self.sync_now();
        self.ensure_not_poisoned()
    }

    /// Waits until the running flush, if any, has finished — or is stalled for want of space, which
    /// is the error (`FlushStalled`; the flush goes on retrying by itself).
    pub(super) fn wait_for_flush(&mut self) -> Result<(), EngineError> {
        while self.flush.flushing {
            match self.flush.done.recv_timeout(FLUSH_POLL) {
                Ok(()) => self.flush.flushing = false,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(e) = self.flush_stalled() {
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.shared.poison("the flusher thread stopped".to_owned());
                    self.flush.flushing = false;
                }
            }
        }
        Ok(())
    }

    /// The error of a write that the head has no room for: the head is at its limit while the flush
    /// that would empty it is stalled for want of space. `None` when there is room.
    pub(super) fn head_full(&self) -> Option<EngineError> {
        if !(self.flush.flushing && self.shared.space.flush_stalled()) {
            return None;
        }
        let points = self.shared.read_head().points();
        if points < self.flush.max_points {
            return None;
        }
        self.flush_stalled().map(|e| match e {
            EngineError::FlushStalled { flush, .. } => EngineError::FlushStalled {
                head_points: Some(points),
                flush,
            },
            other => other,
        })
    }

    /// `FlushStalled` with the flusher's reason, when it is stalled.
    fn flush_stalled(&self) -> Option<EngineError> {
        self.shared
            .space
            .reason(Job::Flush)
            .map(|flush| EngineError::FlushStalled {
                head_points: None,
                flush,
            })
    }

    /// How long until the head is old enough to be frozen (or a failed freeze is due to be retried).
    pub(super) fn head_age_due_in(&self) -> Option<Duration> {
        if self.shared.poisoned().is_some() {
            return None;
        }
        let age = self
            .flush
            .head_since
            .map(|t| self.flush.max_age.saturating_sub(t.elapsed()))?;
        Some(match self.flush.retry_at {
            Some(at) => age.max(at.saturating_duration_since(Instant::now())),
            None => age,
        })
    }
}
