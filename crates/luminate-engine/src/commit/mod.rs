//! commit: the single writer thread that owns the WAL and is the only mutator of the head. It gives
//! writes their order, durability and group commit; it knows nothing of queries.
//!
//! # One commit group
//! The thread blocks for a request, then drains every request already waiting (up to [`MAX_GROUP`]):
//! 1. each write's points are resolved to series ids against the head plus the batches staged before it
//!    (new ids are assigned here, so ids follow log order), cardinality limits reject points, a
//!    protocol write's samples that are not newer than their series' newest are set aside
//!    (`crate::newest`, which every staged point updates), and the accepted ones become one
//!    `WRITE_BATCH` record appended with write(2). Points of series that were
//!    already live were resolved before, on the caller's thread ([`Found::look_up`]), in
//!    parallel, as were the metric and postings of most new series (`crate::index::KnownNames`); a
//!    delete since then (the only way a series stops being live) voids those ids and they are resolved
//!    again here, so the limits stay exact;
//! 2. one fsync covers every record of the group (per [`SyncPolicy`]);
//! 3. the batches are applied to the index and the head, in log order, under their write locks (index
//!    first, then head: every holder of both takes them in that order);
//! 4. the lock is released, then every writer is answered.
//!
//! Under `SyncPolicy::Always` step 2 runs on a second thread (`luminate-fsync`), and commit groups are
//! pipelined: while group N's fsync runs, the writer thread receives and stages group N+1 (steps 1),
//! and when the fsync reports back (as a [`Request::Synced`] in the same queue) it applies and answers
//! group N, then hands group N+1's fsync over — one fsync in flight at a time, each covering only
//! records appended before it started. So a writer is still answered only after the fsync covering its
//! record, and nothing is applied before it is durable; the writer thread's CPU work and the disk's
//! fsync now overlap instead of alternating. Group N+1 is staged on top of N before N is applied:
//! `crate::index::Staging` keeps one *epoch* across such groups, counting from what the index held when
//! the epoch first touched a tenant or metric. Everything that needs the whole log applied — a delete,
//! a sync, a freeze, a backup's pause, shutdown — first waits for the group in flight and commits what
//! is staged ([`Committer::drain`]); the fsync's answer may have been taken from the queue with it, so
//! the requests after it wait in `deferred`, where `drain` looks first.
//!
//! So a write returns only when its points are durable (per the policy) and visible to later queries,
//! and replaying the WAL applies the same records in the same order (through the same `apply`), which
//! rebuilds the same index and head.
//! A delete or sync first commits the writes staged before it, then runs alone.
//!
//! # Freezing the head
//! After each group the thread checks the head against `head_max_points` / `head_max_age`: past either,
//! it rolls the WAL to a new segment `S`, takes the head whole (O(1)) into the snapshot as the frozen
//! head, and hands it with `S` to the flusher (`crate::flush`). If the previous frozen head is still
//! being flushed it first waits for it (back-pressure: at most two heads in memory, nothing dropped).
//! Deletes raise tombstones on the frozen head and the parts (`crate::stored`) under the catalog lock.
//!
//! # Poisoning
//! If an fsync fails, or a write(2) fails otherwise than for want of space, the records of the group
//! may or may not be on disk: the engine is poisoned, every waiting and later write fails with
//! `Poisoned` naming the original error, and nothing of the failed group is applied — nor of the group
//! staged behind it while its fsync ran. Reads keep serving what was acknowledged.
//!
//! # No space
//! An append that finds no room (`ENOSPC`, `EDQUOT`) is cut off the segment again by the WAL, and only
//! that write fails (`NoSpace`, `503` with a `Retry-After`): the newest samples it had changed are put
//! back, and what was staged before it is committed and the staging epoch ended, so that nothing of it
//! lingers in memory ([`Committer::unlogged`]). The next write tries its own append, and the first one
//! that fits resumes writing — no restart (`crate::space`). The same holds for a delete's record and
//! for the new segment a roll creates.
//!
//! Running out of file descriptors is not such a failure (see `crate::files`): the WAL opens a file only
//! when it rolls to a new segment, before it changes any of its state, and an open(2) that fails for
//! want of a descriptor creates nothing — so an append or roll that failed so is simply run again once a
//! descriptor is free ([`Committer::append`], [`Committer::roll`]). The writers of the group wait
//! meanwhile; nothing is poisoned.
//!
//! # Files
//! One file per job of the thread, each an `impl Committer` block: this one receives requests and
//! dispatches them ([`Committer::run`]); `write` stages a write (and looks up its live series on the
//! caller's thread first: [`Found`]); `group` commits a group — the fsync pipeline, applying and
//! answering; `delete` logs and applies a delete; `freeze` hands full heads to the flusher.

mod delete;
mod freeze;
mod group;
mod write;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use luminate_model::keyed::{KeyedResponse, KeyedWrite};
use luminate_model::{Dimensions, PointBatch, Tenant, WriteOutcome};

use crate::config::{CardinalityLimits, SyncPolicy};
use crate::error::EngineError;
use crate::files;
use crate::index::{NewSeriesIds, Staging};
use crate::keys::Window;
use crate::newest::{Newest, Saved};
use crate::record::{DeleteBefore, WriteBatch};
use crate::shared::Shared;
use crate::space::Job;
use crate::wal::{LogEnd, SyncJob, Wal};

pub(crate) use freeze::FlushControl;
pub(crate) use write::Found;

/// Most requests committed as one group: bounds the latency one group adds to its first writer.
const MAX_GROUP: usize = 256;

/// Requests that may wait for the writer; senders block beyond it (back-pressure, bounded memory).
pub(crate) const QUEUE_DEPTH: usize = 1024;

/// A reply channel for one request.
type Reply<T> = SyncSender<Result<T, EngineError>>;

/// A stored write's answer.
pub(crate) struct Written {
    /// What was accepted and rejected.
    pub outcome: WriteOutcome,
    /// What the writer thread no longer needs, handed back so that the caller's thread frees it: freeing
    /// the definitions of thousands of new series is a good part of a batch's cost.
    pub spent: Spent,
    /// A keyed write's answer: built from `outcome` now, or remembered from its first write.
    pub response: Option<KeyedResponse>,
    /// `response` is the first write's: nothing was stored now.
    pub replayed: bool,
}

/// Memory a write's request and record held (see [`Written`]).
#[derive(Default)]
pub(crate) struct Spent {
    _batch: Option<WriteBatch>,
    _dims: Vec<Option<Dimensions>>,
}

/// What the engine asks of the writer thread.
pub(crate) enum Request {
    /// Store points.
    Write {
        tenant: Tenant,
        batch: Arc<PointBatch>,
        found: Found,
        rule: WriteRule,
        /// The idempotency key and how to answer, for a keyed write (`WriteRule::All` only).
        keyed: Option<KeyedWrite>,
        reply: Reply<Written>,
    },
    /// Log and apply a delete.
    Delete {
        delete: DeleteBefore,
        reply: Reply<u64>,
    },
    /// fsync now, whatever the policy.
    Sync { reply: Reply<()> },
    /// Freeze the head and wait until it (and any flush running) is in parts.
    Flush { reply: Reply<()> },
    /// Commit what is staged, then run `job` with the WAL's end before handling any other request: no
    /// record is appended, and no head frozen, while it runs (a backup pins the log there:
    /// `crate::backup`).
    Pause { job: Box<dyn FnOnce(LogEnd) + Send> },
    /// Commit what is staged, fsync, and stop.
    Shutdown,
    /// The fsync of the group in flight finished (sent by the fsync thread).
    Synced {
        result: Result<(), EngineError>,
        elapsed: Duration,
    },
}

impl Request {
    /// Whether handling it first waits for the group in flight ([`Committer::drain`]).
    fn drains(&self) -> bool {
        matches!(
            self,
            Self::Delete { .. }
                | Self::Sync { .. }
                | Self::Flush { .. }
                | Self::Pause { .. }
                | Self::Shutdown
        )
    }
}

/// Which points of a write are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteRule {
    /// Every accepted point (the JSON API: never deduplicated).
    All,
    /// Only samples newer than their series' newest (protocol ingest, `crate::newest`).
    NewerOnly,
}

/// A write that is logged but not yet fsynced and applied.
struct Staged {
    batch: Option<WriteBatch>,
    /// The hashes, metrics and postings of the batch's new series, when every one's hash was prepared
    /// (the tenant had an index when the caller looked its points up): applied without hashing again.
    new_ids: Option<NewSeriesIds>,
    outcome: WriteOutcome,
    /// The points' dimensions no new series took.
    dims: Vec<Option<Dimensions>>,
    /// A keyed write's answer (see [`Written`]).
    response: Option<KeyedResponse>,
    replayed: bool,
    reply: Reply<Written>,
}

/// The writer thread's state.
struct Committer {
    wal: Wal,
    shared: Arc<Shared>,
    policy: SyncPolicy,
    limits: CardinalityLimits,
    staging: Staging,
    /// The newest sample of every series, as of the writes staged so far.
    newest: Newest,
    /// What the write being staged changed in `newest`, to put back if its record does not fit the
    /// disk (reused from write to write).
    newest_saved: Saved,
    /// The idempotency keys logged in the window, as of the writes staged so far.
    keys: Window,
    staged: Vec<Staged>,
    /// The group whose fsync runs on the fsync thread (`SyncPolicy::Always` only); `staged` waits
    /// for it.
    in_flight: Option<Vec<Staged>>,
    /// Hands fsyncs to the fsync thread (`SyncPolicy::Always` only).
    syncer: Option<SyncSender<SyncJob>>,
    /// Requests received while waiting for the group in flight, handled next.
    deferred: VecDeque<Request>,
    /// Records appended since the last fsync.
    unsynced: bool,
    last_sync: Instant,
    flush: FlushControl,
}

/// What the writer thread takes over from recovery: the WAL, positioned for appends, and the window of
/// idempotency keys its records hold.
pub(crate) struct Logged {
    pub wal: Wal,
    pub keys: Window,
}

/// Starts the writer thread. It stops on `Request::Shutdown` or when every sender is gone.
pub(crate) fn spawn(
    logged: Logged,
    shared: Arc<Shared>,
    policy: SyncPolicy,
    limits: CardinalityLimits,
    flush: FlushControl,
    requests: Receiver<Request>,
    loopback: SyncSender<Request>,
) -> std::io::Result<JoinHandle<()>> {
    // Under `Always` the fsyncs run on their own thread, so the next group is staged meanwhile; it
    // answers through the request queue, where the writer thread waits anyway.
    let (syncer, syncer_thread) = match policy {
        SyncPolicy::Always => {
            let (jobs, queue) = std::sync::mpsc::sync_channel::<SyncJob>(1);
            let thread = std::thread::Builder::new()
                .name("luminate-fsync".to_owned())
                .spawn(move || {
                    for job in queue {
                        let started = Instant::now();
                        let result = job.run();
                        let elapsed = started.elapsed();
                        if loopback.send(Request::Synced { result, elapsed }).is_err() {
                            break;
                        }
                    }
                })?;
            (Some(jobs), Some(thread))
        }
        SyncPolicy::Interval(_) | SyncPolicy::None => (None, None),
    };
    let newest = Newest::at_start(&shared.read_index(), &shared.read_head());
    shared.set_newest_bytes(newest.heap_bytes() as u64);
    let Logged { wal, keys } = logged;
    let committer = Committer {
        wal,
        shared,
        policy,
        limits,
        staging: Staging::default(),
        newest,
        newest_saved: Saved::default(),
        keys,
        staged: Vec::new(),
        in_flight: None,
        syncer,
        deferred: VecDeque::new(),
        unsynced: false,
        last_sync: Instant::now(),
        flush,
    };
    let shared = Arc::clone(&committer.shared);
    std::thread::Builder::new()
        .name("luminate-wal".to_owned())
        .spawn(move || {
            // A panic is a bug, but it must still surface as a poisoned engine (health, later writes) rather
            // than as writers that merely see a closed channel.
            if std::panic::catch_unwind(AssertUnwindSafe(|| committer.run(requests))).is_err() {
                shared.poison("the WAL writer thread panicked".to_owned());
            }
            // The committer is gone, and with it the fsync thread's queue: it stops.
            if let Some(thread) = syncer_thread
                && thread.join().is_err()
            {
                shared.poison("the WAL fsync thread panicked".to_owned());
            }
        })
}

impl Committer {
    fn run(mut self, requests: Receiver<Request>) {
        'serve: loop {
            let first = match self.deferred.pop_front() {
                Some(r) => r,
                None => {
                    let due = match (self.interval_sync_due_in(), self.head_age_due_in()) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let first = match due {
                        None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
                        Some(wait) => requests.recv_timeout(wait),
                    };
                    match first {
                        Ok(r) => r,
                        Err(RecvTimeoutError::Timeout) => {
                            if self.interval_sync_due_in() == Some(Duration::ZERO) {
                                self.sync_now();
                            }
                            self.maybe_freeze(&requests);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                if let Some(r) = self.deferred.pop_front() {
                    group.push(r);
                    continue;
                }
                match requests.try_recv() {
                    Ok(r) => group.push(r),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            let mut group = VecDeque::from(group);
            while let Some(request) = group.pop_front() {
                // A request that drains waits for the group in flight, whose `Synced` may be among
                // the requests taken with it: they go back to the front of `deferred`, where
                // `drain` looks for it first (waiting on the queue for it would never end).
                if request.drains() {
                    while let Some(later) = group.pop_back() {
                        self.deferred.push_front(later);
                    }
                }
                if !self.handle(request, &requests) {
                    break 'serve;
                }
            }
            self.end_group();
            self.maybe_freeze(&requests);
        }
        self.drain(&requests);
        self.final_sync();
    }

    /// Handles one request; false after `Shutdown`.
    fn handle(&mut self, request: Request, requests: &Receiver<Request>) -> bool {
        match request {
            Request::Write {
                tenant,
                batch,
                found,
                rule,
                keyed,
                reply,
            } => self.stage_write(tenant, &batch, found, rule, keyed, reply, requests),
            Request::Delete { delete, reply } => {
                self.drain(requests);
                let result = self.delete(delete, requests);
                let _ = reply.send(result);
            }
            Request::Sync { reply } => {
                self.drain(requests);
                self.sync_now();
                let _ = reply.send(self.ensure_not_poisoned());
            }
            Request::Flush { reply } => {
                self.drain(requests);
                let points = self.shared.read_head().points();
                let frozen = match points {
                    0 => Ok(()),
                    _ => self.freeze(),
                };
                let result = frozen
                    .and_then(|()| self.wait_for_flush())
                    .and_then(|()| self.ensure_not_poisoned());
                let _ = reply.send(result);
            }
            Request::Pause { job } => {
                self.drain(requests);
                job(self.wal.end());
            }
            Request::Shutdown => {
                self.drain(requests);
                self.final_sync();
                return false;
            }
            Request::Synced { result, elapsed } => self.finish_sync(result, elapsed),
        }
        true
    }

    /// Appends a record to the WAL, waiting for a file descriptor if rolling to the next segment needs
    /// one and there is none (see the module doc).
    fn append(&mut self, record: &[u8]) -> Result<(), EngineError> {
        let wal = &mut self.wal;
        files::wait_for_descriptors(
            "append to the WAL",
            || wal.append(record).map(drop),
            files::is_descriptor_shortage_error,
        )
    }

    /// Rolls the WAL to a new segment unless the active one is empty (see [`Wal::roll_now`]), waiting for
    /// a file descriptor if there is none.
    fn roll(&mut self) -> Result<u64, EngineError> {
        let wal = &mut self.wal;
        files::wait_for_descriptors(
            "roll the WAL",
            || wal.roll_now(),
            files::is_descriptor_shortage_error,
        )
    }

    /// After an append of a record of `payload_len` bytes failed: a `NoSpace` left the log as it was,
    /// so the writer's stall is recorded and the error returned as it is — but the record's new series
    /// were staged in the epoch, so what was logged before it is committed and the epoch ended: later
    /// writes resolve against the index alone, never against a series no record defines. Any other
    /// failure poisons. The caller has already put back the newest samples the record had changed.
    fn unlogged(
        &mut self,
        e: EngineError,
        payload_len: usize,
        requests: &Receiver<Request>,
    ) -> EngineError {
        if let EngineError::NoSpace { .. } = e {
            self.no_space(Job::Wal, &e, Wal::frame_len(payload_len));
            self.drain(requests);
            self.end_epoch();
            return e;
        }
        self.shared.observer.wal_write_failed();
        self.shared.poison(e.to_string());
        self.shared.poisoned_error()
    }

    /// Records that `job` found no room for `needed` bytes (or more): its stall and the observer's count.
    fn no_space(&self, job: Job, e: &EngineError, needed: u64) {
        self.shared.observer.no_space(job.as_str());
        self.shared.space.set(job, e, needed);
    }

    fn ensure_not_poisoned(&self) -> Result<(), EngineError> {
        match self.shared.poisoned() {
            Some(_) => Err(self.shared.poisoned_error()),
            None => Ok(()),
        }
    }
}
