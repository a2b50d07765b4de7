//! group: committing a commit group — one fsync for every record of the group (under
//! `SyncPolicy::Always` on the fsync thread, pipelined with the staging of the next group), then the
//! group applied to the index and the head and its writers answered; a failed fsync poisons the engine.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::{Committer, Request, Spent, Staged, Written};
use crate::apply::{apply_batch, apply_staged};
use crate::config::SyncPolicy;
use crate::error::EngineError;

/// New series a staging epoch may hold before a group is committed without overlapping the next
/// (which ends the epoch): bounds the epoch's memory under unbroken load.
const EPOCH_NEW_SERIES: usize = 1 << 16;

impl Committer {
    /// fsyncs (per policy) what the group logged, applies it to the head, answers its writers. Only
    /// with no group in flight ([`Committer::drain`]).
    pub(super) fn commit(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        self.sync_per_policy();
        let staged = std::mem::take(&mut self.staged);
        self.end_epoch();
        self.apply_and_answer(staged);
    }

    /// Ends the staging epoch (every group staged in it is applied or failed) and reports its 80 %
    /// warnings.
    pub(super) fn end_epoch(&mut self) {
        for (tenant, limit) in self.staging.clear() {
            self.shared.observer.cardinality_warning(&tenant, limit);
        }
    }

    /// After a group's requests were handled: under `SyncPolicy::Always` its fsync goes to the fsync
    /// thread (or, while another runs, waits for it: [`Committer::finish_sync`] starts it); under the
    /// other policies it commits now.
    pub(super) fn end_group(&mut self) {
        if self.syncer.is_none() || self.shared.poisoned().is_some() {
            if self.in_flight.is_none() {
                self.commit();
            }
            return;
        }
        if self.in_flight.is_none() {
            self.start_sync();
        }
    }

    /// Hands the fsync of what is staged to the fsync thread: the group is in flight, and the writer
    /// thread goes on staging the next one. Everything staged was appended before the fsync starts, so
    /// it covers the whole group.
    pub(super) fn start_sync(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        if self.shared.poisoned().is_some() {
            // Nothing more is made durable: the group fails now.
            self.commit();
            return;
        }
        let job = self.wal.sync_job();
        match &self.syncer {
            Some(syncer) if syncer.send(job).is_ok() => {
                self.in_flight = Some(std::mem::take(&mut self.staged));
            }
            _ => {
                self.shared
                    .poison("the WAL fsync thread stopped".to_owned());
                self.commit();
            }
        }
    }

    /// The group in flight is durable (or its fsync failed: poisoned): applies and answers it, then
    /// starts the fsync of the group staged meanwhile. An epoch that grew past
    /// [`EPOCH_NEW_SERIES`] new series is ended: that group is committed here, without overlap.
    pub(super) fn finish_sync(&mut self, result: Result<(), EngineError>, elapsed: Duration) {
        self.shared.observer.wal_synced(elapsed, result.is_ok());
        match result {
            Ok(()) => self.last_sync = Instant::now(),
            Err(e) => self.shared.poison(e.to_string()),
        }
        let group = self.in_flight.take().unwrap_or_default();
        if self.staged.is_empty() {
            self.end_epoch();
        }
        self.apply_and_answer(group);
        if self.staging.new_series() >= EPOCH_NEW_SERIES {
            self.commit();
        } else {
            self.start_sync();
        }
    }

    /// Waits for the group in flight (keeping the requests that arrive meanwhile for later), then
    /// commits what is staged: afterwards everything logged is applied. Deletes, syncs, freezes and
    /// shutdown need that.
    pub(super) fn drain(&mut self, requests: &Receiver<Request>) {
        while self.in_flight.is_some() {
            // Its `Synced` may already have been received, with the request being handled.
            let synced = self
                .deferred
                .iter()
                .position(|r| matches!(r, Request::Synced { .. }))
                .and_then(|i| self.deferred.remove(i));
            let next = match synced {
                Some(request) => Ok(request),
                None => requests.recv(),
            };
            match next {
                Ok(Request::Synced { result, elapsed }) => self.finish_sync(result, elapsed),
                Ok(other) => self.deferred.push_back(other),
                Err(_) => {
                    self.shared
                        .poison("the WAL fsync thread stopped".to_owned());
                    let group = self.in_flight.take().unwrap_or_default();
                    self.apply_and_answer(group);
                }
            }
        }
        self.commit();
    }

    /// Applies a logged group to the index and the head (unless the engine is poisoned) and answers
    /// its writers.
    pub(super) fn apply_and_answer(&mut self, staged: Vec<Staged>) {
        // Writes before this index were applied; the rest fail with the poison reason.
        let mut applied = 0;
        if self.shared.poisoned().is_none() {
            let (mut index, mut head) = self.shared.write_both();
            for s in &staged {
                let applied_here = s.batch.as_ref().map(|b| match &s.new_ids {
                    Some(ids) => apply_staged(&mut index, &mut head, b, ids),
                    None => apply_batch(&mut index, &mut head, b),
                });
                if let Some(Err(reason)) = applied_here {
                    self.shared
                        .poison(format!("a logged batch does not fit the head: {reason}"));
                    break;
                }
                applied += 1;
            }
        }
        self.shared
            .set_newest_bytes(self.newest.heap_bytes() as u64);
        if applied > 0 && self.flush.head_since.is_none() {
            self.flush.head_since = Some(Instant::now());
        }
        // Answer after releasing the lock, so woken writers do not queue on it.
        for (i, s) in staged.into_iter().enumerate() {
            let result = if i < applied {
                Ok(Written {
                    outcome: s.outcome,
                    spent: Spent {
                        _batch: s.batch,
                        _dims: s.dims,
                    },
                    response: s.response,
                    replayed: s.replayed,
                })
            } else {
                Err(self.shared.poisoned_error())
            };
            let _ = s.reply.send(result);
        }
    }

    pub(super) fn sync_per_policy(&mut self) {
        match self.policy {
            SyncPolicy::Always => self.sync_now(),
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync_now(),
            SyncPolicy::Interval(_) | SyncPolicy::None => {}
        }
    }

    /// Under `Interval`, how long until unsynced records are due for fsync.
    pub(super) fn interval_sync_due_in(&self) -> Option<Duration> {
        match self.policy {
            SyncPolicy::Interval(every) if self.unsynced => {
                Some(every.saturating_sub(self.last_sync.elapsed()))
            }
            _ => None,
        }
    }

    pub(super) fn sync_now(&mut self) {
        if self.shared.poisoned().is_some() {
            return;
        }
        let started = Instant::now();
        let result = self.wal.sync();
        self.shared
            .observer
            .wal_synced(started.elapsed(), result.is_ok());
        match result {
            Ok(()) => {
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Err(e) => self.shared.poison(e.to_string()),
        }
    }

    /// On shutdown, makes everything written durable under every policy.
    pub(super) fn final_sync(&mut self) {
        if self.unsynced {
            self.sync_now();
        }
    }
}
