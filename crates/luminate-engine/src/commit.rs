//! commit: the single writer thread that owns the WAL and is the only mutator of the head. It gives
//! writes their order, durability and group commit; it knows nothing of queries.
//!
//! # One commit group
//! The thread blocks for a request, then drains every request already waiting (up to [`MAX_GROUP`]):
//! 1. each write's points are resolved to series ids against the head plus the batches staged before it
//!    (new ids are assigned here, so ids follow log order), cardinality limits reject points, and the
//!    accepted ones become one `WRITE_BATCH` record appended with write(2);
//! 2. one fsync covers every record of the group (per [`SyncPolicy`]);
//! 3. the batches are applied to the index and the head, in log order, under their write locks (index
//!    first, then head: every holder of both takes them in that order);
//! 4. the lock is released, then every writer is answered.
//!
//! So a write returns only when its points are durable (per the policy) and visible to later queries,
//! and replaying the WAL applies the same records in the same order (through the same `apply`), which
//! rebuilds the same index and head.
//! A delete or sync first commits the writes staged before it, then runs alone.
//!
//! # Poisoning
//! If a write(2) or fsync fails, the records of the group may or may not be on disk: the engine is
//! poisoned, every waiting and later write fails with `Poisoned` naming the original error, and nothing
//! of the failed group is applied. Reads keep serving what was acknowledged.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use luminate_model::{Point, Tenant, WriteOutcome};

use crate::apply::{apply_batch, apply_delete};
use crate::head::Head;
use crate::index::{Index, Staging};
use crate::record::{DeleteBefore, SeriesPoint, WriteBatch};
use crate::wal::Wal;
use crate::{CardinalityLimits, EngineError, SyncPolicy};

/// Most requests committed as one group: bounds the latency one group adds to its first writer.
const MAX_GROUP: usize = 256;
/// Requests that may wait for the writer; senders block beyond it (back-pressure, bounded memory).
pub(crate) const QUEUE_DEPTH: usize = 1024;

/// State shared by the writer thread and the engine's readers.
///
/// Two locks, so that a query scanning the head does not stop discovery or the next query's index
/// phase. Lock order: `index` before `head` (a holder of `head` never waits for `index`).
#[derive(Debug)]
pub(crate) struct Shared {
    index: RwLock<Index>,
    head: RwLock<Head>,
    poison: OnceLock<String>,
}

impl Shared {
    /// An index and head rebuilt by replay.
    pub(crate) fn new(index: Index, head: Head) -> Self {
        Self {
            index: RwLock::new(index),
            head: RwLock::new(head),
            poison: OnceLock::new(),
        }
    }

    /// Read access to the index, for queries, discovery and series resolution.
    pub(crate) fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // Only the writer thread writes, and it applies a batch after checking it fits: a panic there
        // would be a bug that already stopped the writer (later writes fail), so reads may go on.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read access to the head, for scans. Take it after `read_index` when holding both.
    pub(crate) fn read_head(&self) -> RwLockReadGuard<'_, Head> {
        self.head.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to both, in lock order.
    fn write_both(&self) -> (RwLockWriteGuard<'_, Index>, RwLockWriteGuard<'_, Head>) {
        let index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let head = self.head.write().unwrap_or_else(PoisonError::into_inner);
        (index, head)
    }

    /// Why the engine is poisoned, if it is.
    pub(crate) fn poisoned(&self) -> Option<&str> {
        self.poison.get().map(String::as_str)
    }

    fn poison(&self, reason: String) {
        tracing::error!(%reason, "engine poisoned: refusing further writes");
        // The first failure is the one worth reporting; later ones are its consequences.
        let _ = self.poison.set(reason);
    }

    pub(crate) fn poisoned_error(&self) -> EngineError {
        EngineError::Poisoned {
            reason: self
                .poisoned()
                .unwrap_or("the commit thread stopped")
                .to_owned(),
        }
    }
}

/// A reply channel for one request.
type Reply<T> = SyncSender<Result<T, EngineError>>;

/// What the engine asks of the writer thread.
pub(crate) enum Request {
    /// Store points.
    Write {
        tenant: Tenant,
        points: Vec<Point>,
        reply: Reply<WriteOutcome>,
    },
    /// Log and apply a delete.
    Delete {
        delete: DeleteBefore,
        reply: Reply<u64>,
    },
    /// fsync now, whatever the policy.
    Sync { reply: Reply<()> },
    /// Commit what is staged, fsync, and stop.
    Shutdown,
}

/// A write that is logged but not yet fsynced and applied.
struct Staged {
    batch: Option<WriteBatch>,
    outcome: WriteOutcome,
    reply: Reply<WriteOutcome>,
}

/// The writer thread's state.
struct Committer {
    wal: Wal,
    shared: Arc<Shared>,
    policy: SyncPolicy,
    limits: CardinalityLimits,
    staging: Staging,
    staged: Vec<Staged>,
    /// Records appended since the last fsync.
    unsynced: bool,
    last_sync: Instant,
}

/// Starts the writer thread. It stops on `Request::Shutdown` or when every sender is gone.
pub(crate) fn spawn(
    wal: Wal,
    shared: Arc<Shared>,
    policy: SyncPolicy,
    limits: CardinalityLimits,
    requests: Receiver<Request>,
) -> std::io::Result<JoinHandle<()>> {
    let committer = Committer {
        wal,
        shared,
        policy,
        limits,
        staging: Staging::default(),
        staged: Vec::new(),
        unsynced: false,
        last_sync: Instant::now(),
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
        })
}

impl Committer {
    fn run(mut self, requests: Receiver<Request>) {
        loop {
            let first = match self.interval_sync_due_in() {
                None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => requests.recv_timeout(wait),
            };
            let first = match first {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    self.sync_now();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match requests.try_recv() {
                    Ok(r) => group.push(r),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            for request in group {
                if !self.handle(request) {
                    return;
                }
            }
            self.commit();
        }
        self.commit();
        self.final_sync();
    }

    /// Handles one request; false after `Shutdown`.
    fn handle(&mut self, request: Request) -> bool {
        match request {
            Request::Write {
                tenant,
                points,
                reply,
            } => self.stage_write(tenant, points, reply),
            Request::Delete { delete, reply } => {
                self.commit();
                let result = self.delete(delete);
                let _ = reply.send(result);
            }
            Request::Sync { reply } => {
                self.commit();
                self.sync_now();
                let _ = reply.send(self.ensure_not_poisoned());
            }
            Request::Shutdown => {
                self.commit();
                self.final_sync();
                return false;
            }
        }
        true
    }

    /// Resolves and logs one write; it is answered when the group commits.
    fn stage_write(&mut self, tenant: Tenant, points: Vec<Point>, reply: Reply<WriteOutcome>) {
        if let Err(e) = self.ensure_not_poisoned() {
            let _ = reply.send(Err(e));
            return;
        }
        let mut outcome = WriteOutcome::default();
        let mut batch = WriteBatch {
            tenant,
            new_series: Vec::new(),
            points: Vec::with_capacity(points.len()),
        };
        {
            let index = self.shared.read_index();
            let ti = index.tenant(&batch.tenant);
            for (i, p) in points.iter().enumerate() {
                match self.staging.resolve(ti, &self.limits, &batch.tenant, i, p) {
                    Ok(r) => {
                        batch.new_series.extend(r.new);
                        batch.points.push(SeriesPoint {
                            series: r.series,
                            timestamp: p.timestamp,
                            value: p.value,
                        });
                    }
                    Err(rejection) => outcome.rejected.push(rejection),
                }
            }
        }
        outcome.accepted = batch.points.len();
        if batch.points.is_empty() {
            self.staged.push(Staged {
                batch: None,
                outcome,
                reply,
            });
            return;
        }
        if let Err(e) = self.wal.append(&batch.encode()) {
            self.shared.poison(e.to_string());
            let _ = reply.send(Err(self.shared.poisoned_error()));
            return;
        }
        self.unsynced = true;
        self.staged.push(Staged {
            batch: Some(batch),
            outcome,
            reply,
        });
    }

    /// fsyncs (per policy) what the group logged, applies it to the head, answers its writers.
    fn commit(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        self.sync_per_policy();
        let staged = std::mem::take(&mut self.staged);
        self.staging.clear();
        // Writes before this index were applied; the rest fail with the poison reason.
        let mut applied = 0;
        if self.shared.poisoned().is_none() {
            let (mut index, mut head) = self.shared.write_both();
            for s in &staged {
                if let Some(Err(reason)) = s
                    .batch
                    .as_ref()
                    .map(|b| apply_batch(&mut index, &mut head, b))
                {
                    self.shared
                        .poison(format!("a logged batch does not fit the head: {reason}"));
                    break;
                }
                applied += 1;
            }
        }
        // Answer after releasing the lock, so woken writers do not queue on it.
        for (i, s) in staged.into_iter().enumerate() {
            let result = if i < applied {
                Ok(s.outcome)
            } else {
                Err(self.shared.poisoned_error())
            };
            let _ = s.reply.send(result);
        }
    }

    fn delete(&mut self, d: DeleteBefore) -> Result<u64, EngineError> {
        self.ensure_not_poisoned()?;
        if let Err(e) = self.wal.append(&d.encode()) {
            self.shared.poison(e.to_string());
            return Err(self.shared.poisoned_error());
        }
        self.unsynced = true;
        self.sync_per_policy();
        self.ensure_not_poisoned()?;
        let (mut index, mut head) = self.shared.write_both();
        Ok(apply_delete(&mut index, &mut head, &d))
    }

    fn ensure_not_poisoned(&self) -> Result<(), EngineError> {
        match self.shared.poisoned() {
            Some(_) => Err(self.shared.poisoned_error()),
            None => Ok(()),
        }
    }

    fn sync_per_policy(&mut self) {
        match self.policy {
            SyncPolicy::Always => self.sync_now(),
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync_now(),
            SyncPolicy::Interval(_) | SyncPolicy::None => {}
        }
    }

    /// Under `Interval`, how long until unsynced records are due for fsync.
    fn interval_sync_due_in(&self) -> Option<Duration> {
        match self.policy {
            SyncPolicy::Interval(every) if self.unsynced => {
                Some(every.saturating_sub(self.last_sync.elapsed()))
            }
            _ => None,
        }
    }

    fn sync_now(&mut self) {
        if self.shared.poisoned().is_some() {
            return;
        }
        match self.wal.sync() {
            Ok(()) => {
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Err(e) => self.shared.poison(e.to_string()),
        }
    }

    /// On shutdown, makes everything written durable under every policy.
    fn final_sync(&mut self) {
        if self.unsynced {
            self.sync_now();
        }
    }
}
