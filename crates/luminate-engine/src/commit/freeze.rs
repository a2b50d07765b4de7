//! freeze: the writer thread's side of flushing — a head past its size or age rolled out of the WAL,
//! frozen into the snapshot and handed to the flusher (`crate::flush`), with back-pressure while the
//! previous one is still being flushed.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use super::{Committer, Request};
use crate::flush::FlushJob;
use crate::stored::Frozen;

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
}

impl Committer {
    /// Freezes the head if it is past its size or age threshold (after committing everything logged:
    /// the frozen head must hold every record of the segments below the roll).
    pub(super) fn maybe_freeze(&mut self, requests: &Receiver<Request>) {
        if self.flush.flushing && self.flush.done.try_recv().is_ok() {
            self.flush.flushing = false;
        }
        let points = self.shared.read_head().points();
        let old = self
            .flush
            .head_since
            .is_some_and(|t| t.elapsed() >= self.flush.max_age);
        if points > 0 && (points >= self.flush.max_points || old) {
            self.drain(requests);
            self.freeze();
        }
    }

    /// Hands the head to the flusher and starts an empty one. Back-pressure: while the previous frozen
    /// head is still being flushed, this waits for it, so at most two heads are ever in memory.
    pub(super) fn freeze(&mut self) {
        self.wait_for_flush();
        if self.shared.poisoned().is_some() {
            return;
        }
        // Every record of the frozen head lies in segments below `wal_start`.
        let wal_start = match self.roll() {
            Ok(seq) => seq,
            Err(e) => {
                self.shared.poison(e.to_string());
                return;
            }
        };
        if let Err(e) = self.carry_keys_over() {
            self.shared.poison(e.to_string());
            return;
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
            return;
        }
        self.flush.flushing = true;
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

    /// Waits until the running flush, if any, has finished.
    pub(super) fn wait_for_flush(&mut self) {
        if !self.flush.flushing {
            return;
        }
        if self.flush.done.recv().is_err() {
            self.shared.poison("the flusher thread stopped".to_owned());
        }
        self.flush.flushing = false;
    }

    /// How long until the head is old enough to be frozen.
    pub(super) fn head_age_due_in(&self) -> Option<Duration> {
        if self.shared.poisoned().is_some() {
            return None;
        }
        self.flush
            .head_since
            .map(|t| self.flush.max_age.saturating_sub(t.elapsed()))
    }
}
