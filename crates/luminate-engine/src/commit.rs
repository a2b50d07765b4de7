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
//! a sync, a freeze, shutdown — first waits for the group in flight and commits what is staged
//! ([`Committer::drain`]).
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
//! If a write(2) or fsync fails, the records of the group may or may not be on disk: the engine is
//! poisoned, every waiting and later write fails with `Poisoned` naming the original error, and nothing
//! of the failed group is applied — nor of the group staged behind it while its fsync ran. Reads keep
//! serving what was acknowledged.
//!
//! Running out of file descriptors is not such a failure (see `crate::files`): the WAL opens a file only
//! when it rolls to a new segment, before it changes any of its state, and an open(2) that fails for
//! want of a descriptor creates nothing — so an append or roll that failed so is simply run again once a
//! descriptor is free ([`Committer::append`], [`Committer::roll`]). The writers of the group wait
//! meanwhile; nothing is poisoned.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use luminate_model::{Dimensions, PointBatch, Tenant, WriteOutcome};

use crate::apply::{apply_batch, apply_delete, apply_staged};
use crate::config::{CardinalityLimits, SyncPolicy};
use crate::error::EngineError;
use crate::files;
use crate::flush::FlushJob;
use crate::index::{KnownNames, NewSeriesIds, Prepared, Staging};
use crate::newest::Newest;
use crate::record::{DeleteBefore, SeriesId, SeriesPoint, WriteBatch};
use crate::shared::Shared;
use crate::stored::{Frozen, Stored, delete_in_frozen, delete_in_parts};
use crate::wal::{SyncJob, Wal};

/// Most requests committed as one group: bounds the latency one group adds to its first writer.
const MAX_GROUP: usize = 256;
/// Requests that may wait for the writer; senders block beyond it (back-pressure, bounded memory).
pub(crate) const QUEUE_DEPTH: usize = 1024;
/// New series a staging epoch may hold before a group is committed without overlapping the next
/// (which ends the epoch): bounds the epoch's memory under unbroken load.
const EPOCH_NEW_SERIES: usize = 1 << 16;
/// Points a writer looks up per hold of the index read lock (see [`Found::look_up`]).
const FIND_CHUNK: usize = 1024;

/// A reply channel for one request.
type Reply<T> = SyncSender<Result<T, EngineError>>;

/// The series of a write's points that were live when looked up on the caller's thread.
#[derive(Debug)]
pub(crate) struct Found {
    /// By point: its series, when live.
    series: Vec<Option<SeriesId>>,
    /// By point: its lookup hash in the tenant's index ([`crate::index::TenantIndex::hash`]), so the
    /// writer thread does not hash again; empty when the tenant had no index yet. A tenant's index is
    /// never replaced (only created once), so its hasher, and these hashes, stay valid.
    hashes: Vec<u64>,
    /// By point: its dimensions as an owned value when its series was not live, ready to become the
    /// definition of a new series (the copy is made here, in parallel, not on the writer thread).
    dims: Vec<Option<Dimensions>>,
    /// By point: the metric and postings of a point whose series was not live, when the index held
    /// them all (empty when the tenant had no index yet).
    known: KnownNames,
    /// The deletes applied then. A delete is the only way a series stops being live, so the ids still
    /// hold while no delete has been applied since.
    deletes: u64,
}

impl Found {
    /// The live series of each point of `batch`, found under the index read lock on the calling thread
    /// (writers resolve their batches in parallel; the writer thread then only resolves the rest).
    ///
    /// The lock is taken once per [`FIND_CHUNK`] points, not for the whole batch: the writer thread,
    /// waiting to apply a group, then waits for one chunk's lookups rather than for a whole batch's.
    pub(crate) fn look_up(shared: &Shared, tenant: &Tenant, batch: &PointBatch) -> Self {
        let mut series = Vec::with_capacity(batch.len());
        let mut hashes = Vec::with_capacity(batch.len());
        let mut points = Vec::with_capacity(batch.len().min(FIND_CHUNK));
        let mut known = KnownNames::default();
        let mut deletes = None;
        let mut start = 0;
        loop {
            let index = shared.read_index();
            // Read under the first chunk's lock: the ids are live as of this many deletes at the
            // latest (deletes only grow, so a delete between chunks only makes the writer re-resolve).
            deletes.get_or_insert_with(|| shared.deletes());
            // A tenant's index, once created, is never removed: absent here means absent at the
            // first chunk, and then no point is looked up.
            let Some(ti) = index.tenant(tenant) else {
                series.resize(batch.len(), None);
                break;
            };
            let end = batch.len().min(start + FIND_CHUNK);
            points.clear();
            points.extend((start..end).map(|i| batch.get(i)));
            hashes.extend(points.iter().map(|p| ti.hash(p.name, p.pairs())));
            ti.find_live_run(&hashes[start..end], &points, &mut series);
            // The names of the series not found live, looked up here rather than on the writer thread.
            for (p, id) in points.iter().zip(&series[start..end]) {
                match id {
                    Some(_) => known.push(None),
                    None => known.push_lookup(ti, p),
                }
            }
            if end == batch.len() {
                break;
            }
            start = end;
        }
        let deletes = deletes.unwrap_or_default();
        let dims = batch
            .iter()
            .zip(&series)
            .map(|(p, id)| id.is_none().then(|| p.dimensions()))
            .collect();
        Self {
            series,
            hashes,
            dims,
            known,
            deletes,
        }
    }
}

/// A stored write's answer.
pub(crate) struct Written {
    /// What was accepted and rejected.
    pub outcome: WriteOutcome,
    /// What the writer thread no longer needs, handed back so that the caller's thread frees it: freeing
    /// the definitions of thousands of new series is a good part of a batch's cost.
    pub spent: Spent,
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
    /// Commit what is staged, fsync, and stop.
    Shutdown,
    /// The fsync of the group in flight finished (sent by the fsync thread).
    Synced {
        result: Result<(), EngineError>,
        elapsed: Duration,
    },
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

/// Starts the writer thread. It stops on `Request::Shutdown` or when every sender is gone.
pub(crate) fn spawn(
    wal: Wal,
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
    let committer = Committer {
        wal,
        shared,
        policy,
        limits,
        staging: Staging::default(),
        newest,
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
            for request in group {
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
                reply,
            } => self.stage_write(tenant, &batch, found, rule, reply),
            Request::Delete { delete, reply } => {
                self.drain(requests);
                let result = self.delete(delete);
                let _ = reply.send(result);
            }
            Request::Sync { reply } => {
                self.drain(requests);
                self.sync_now();
                let _ = reply.send(self.ensure_not_poisoned());
            }
            Request::Flush { reply } => {
                self.drain(requests);
                if self.shared.read_head().points() > 0 {
                    self.freeze();
                }
                self.wait_for_flush();
                let _ = reply.send(self.ensure_not_poisoned());
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

    /// Resolves and logs one write; it is answered when the group commits.
    fn stage_write(
        &mut self,
        tenant: Tenant,
        points: &PointBatch,
        mut found: Found,
        rule: WriteRule,
        reply: Reply<Written>,
    ) {
        if let Err(e) = self.ensure_not_poisoned() {
            let _ = reply.send(Err(e));
            return;
        }
        // Only this thread applies deletes: the count cannot move while the batch is resolved.
        let found_still_live = found.deletes == self.shared.deletes();
        // Only a live series can have rows in parts, so reading those of the live series found before
        // anything is staged covers every series but one a delete raced with (`keep_newer`); a part
        // that cannot be read fails this write alone.
        if rule == WriteRule::NewerOnly
            && found_still_live
            && let Err(e) = self.read_unread_parts(&tenant, found.series.iter().flatten().copied())
        {
            let _ = reply.send(Err(e));
            return;
        }
        let mut outcome = WriteOutcome::default();
        let mut new_ids = Some(NewSeriesIds::default());
        let mut batch = WriteBatch {
            tenant,
            new_series: Vec::new(),
            points: Vec::with_capacity(points.len()),
        };
        {
            let index = self.shared.read_index();
            let ti = index.tenant(&batch.tenant);
            for ((i, p), live) in points.iter().enumerate().zip(found.series) {
                let dims = found.dims.get_mut(i).and_then(Option::take);
                let series = match live {
                    Some(id) if found_still_live => id,
                    _ => match self.staging.resolve(
                        ti,
                        &self.limits,
                        &batch.tenant,
                        i,
                        &p,
                        Prepared {
                            hash: found.hashes.get(i).copied(),
                            dims,
                        },
                    ) {
                        Ok(r) => {
                            if let Some(def) = r.new {
                                batch.new_series.push(def);
                                let hash = found.hashes.get(i).copied();
                                match (&mut new_ids, hash) {
                                    (Some(ids), Some(hash)) => {
                                        ids.hashes.push(hash);
                                        ids.known.push(found.known.get(i));
                                    }
                                    _ => new_ids = None,
                                }
                            }
                            r.series
                        }
                        Err(rejection) => {
                            outcome.rejected.push(rejection);
                            continue;
                        }
                    },
                };
                batch.points.push(SeriesPoint {
                    series,
                    timestamp: p.timestamp,
                    value: p.value,
                });
            }
        }
        match rule {
            WriteRule::NewerOnly => self.keep_newer(&mut batch, &mut outcome),
            WriteRule::All => self.newest.observe(&batch.tenant, &batch.points),
        }
        outcome.accepted = batch.points.len();
        if batch.points.is_empty() {
            self.staged.push(Staged {
                batch: None,
                new_ids: None,
                outcome,
                dims: found.dims,
                reply,
            });
            return;
        }
        let record = batch.encode();
        if let Err(e) = self.append(&record) {
            self.shared.observer.wal_write_failed();
            self.shared.poison(e.to_string());
            let _ = reply.send(Err(self.shared.poisoned_error()));
            return;
        }
        self.shared.observer.wal_appended(record.len() as u64);
        self.unsynced = true;
        self.staged.push(Staged {
            batch: Some(batch),
            new_ids,
            outcome,
            dims: found.dims,
            reply,
        });
    }

    /// Keeps the batch's samples that are newer than their series' newest (reading the parts of series
    /// not read since start first), each folded in before the next is judged: a sample repeated within
    /// the batch is stored once. Counts the others in `outcome`.
    ///
    /// The batch's series are resolved (new ones staged) by now, so a part that cannot be read here
    /// poisons the engine rather than leave staged series unlogged; it is read here only for a series
    /// a delete made the caller's lookup void (see [`Committer::stage_write`]).
    fn keep_newer(&mut self, batch: &mut WriteBatch, outcome: &mut WriteOutcome) {
        let series = batch.points.iter().map(|p| p.series);
        if let Err(e) = self.read_unread_parts(&batch.tenant, series) {
            self.shared.poison(format!(
                "reading the newest samples of series from parts failed: {e}"
            ));
        }
        let not_newer = self.newest.keep_newer(&batch.tenant, &mut batch.points);
        outcome.duplicates = not_newer.duplicates;
        outcome.out_of_order = not_newer.out_of_order;
    }

    /// Reads from parts the newest of those of `series` not read since start.
    fn read_unread_parts(
        &mut self,
        tenant: &Tenant,
        series: impl Iterator<Item = SeriesId>,
    ) -> Result<(), EngineError> {
        let unread = self.newest.unread(tenant, series);
        if unread.is_empty() {
            return Ok(());
        }
        let index = self.shared.read_index();
        let stored = self.shared.read_stored();
        self.newest.read_parts(tenant, &unread, &index, &stored)
    }

    /// fsyncs (per policy) what the group logged, applies it to the head, answers its writers. Only
    /// with no group in flight ([`Committer::drain`]).
    fn commit(&mut self) {
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
    fn end_epoch(&mut self) {
        for (tenant, limit) in self.staging.clear() {
            self.shared.observer.cardinality_warning(&tenant, limit);
        }
    }

    /// After a group's requests were handled: under `SyncPolicy::Always` its fsync goes to the fsync
    /// thread (or, while another runs, waits for it: [`Committer::finish_sync`] starts it); under the
    /// other policies it commits now.
    fn end_group(&mut self) {
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
    fn start_sync(&mut self) {
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
    fn finish_sync(&mut self, result: Result<(), EngineError>, elapsed: Duration) {
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
    fn drain(&mut self, requests: &Receiver<Request>) {
        while self.in_flight.is_some() {
            match requests.recv() {
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
    fn apply_and_answer(&mut self, staged: Vec<Staged>) {
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
                })
            } else {
                Err(self.shared.poisoned_error())
            };
            let _ = s.reply.send(result);
        }
    }

    /// Logs a delete, then applies it to the active head (rows removed), the frozen head and the parts
    /// (tombstones raised); returns the rows it hid, counted exactly.
    fn delete(&mut self, d: DeleteBefore) -> Result<u64, EngineError> {
        self.ensure_not_poisoned()?;
        let record = d.encode();
        if let Err(e) = self.append(&record) {
            self.shared.observer.wal_write_failed();
            self.shared.poison(e.to_string());
            return Err(self.shared.poisoned_error());
        }
        self.shared.observer.wal_appended(record.len() as u64);
        self.unsynced = true;
        self.sync_per_policy();
        self.ensure_not_poisoned()?;
        let catalog = self.shared.catalog();
        let stored = self.shared.read_stored();
        // The record is logged: a part that cannot be read now would fail replay too.
        let (parts, part_hidden) =
            match delete_in_parts(&stored.parts, &d.tenant, &d.metric, d.before) {
                Ok(r) => r,
                Err(e) => {
                    self.shared
                        .poison(format!("applying a delete to the parts failed: {e}"));
                    return Err(self.shared.poisoned_error());
                }
            };
        let (mut index, mut head) = self.shared.write_both();
        self.shared.count_delete(&index);
        let mut deleted = apply_delete(&mut index, &mut head, &d);
        let metric = index
            .tenant(&d.tenant)
            .and_then(|ti| ti.metric_id(&d.metric));
        if let (Some(ti), Some(m)) = (index.tenant(&d.tenant), metric) {
            self.newest
                .forget_before(&d.tenant, &ti.metric(m).series, d.before);
        }
        let frozen = match (&stored.frozen, metric) {
            (Some(f), Some(m)) => {
                let (next, hidden) = delete_in_frozen(f, &d.tenant, m, d.before);
                if let Some(ti) = index.existing_tenant_mut(&d.tenant) {
                    for &series in &hidden {
                        ti.add_points(series, -1);
                    }
                }
                deleted += hidden.len() as u64;
                Some(next)
            }
            (f, _) => f.clone(),
        };
        if let Some(ti) = index.existing_tenant_mut(&d.tenant) {
            for &(series, n) in &part_hidden {
                ti.add_points(series, -(n as i64));
                deleted += n;
            }
        }
        // Swapped before the index lock is released: a query sees the counts and the rows agree.
        self.shared.set_stored(&catalog, Stored { frozen, parts });
        drop((index, head, catalog));
        if !part_hidden.is_empty() {
            let _ = self.flush.compact.try_send(());
        }
        Ok(deleted)
    }

    /// Freezes the head if it is past its size or age threshold (after committing everything logged:
    /// the frozen head must hold every record of the segments below the roll).
    fn maybe_freeze(&mut self, requests: &Receiver<Request>) {
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
    fn freeze(&mut self) {
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

    /// Waits until the running flush, if any, has finished.
    fn wait_for_flush(&mut self) {
        if !self.flush.flushing {
            return;
        }
        if self.flush.done.recv().is_err() {
            self.shared.poison("the flusher thread stopped".to_owned());
        }
        self.flush.flushing = false;
    }

    /// How long until the head is old enough to be frozen.
    fn head_age_due_in(&self) -> Option<Duration> {
        if self.shared.poisoned().is_some() {
            return None;
        }
        self.flush
            .head_since
            .map(|t| self.flush.max_age.saturating_sub(t.elapsed()))
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
    fn final_sync(&mut self) {
        if self.unsynced {
            self.sync_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::time::{Duration, Instant};

    use luminate_model::{Dimensions, Point, Tenant};

    use crate::wal::fsync_gate::{self, State};
    use crate::{Engine, EngineConfig, EngineError};
    use luminate_model::WriteOutcome;

    /// Starts a write of one new series on its own thread; its answer comes on the channel.
    fn write_in_background(
        engine: &Arc<Engine>,
        customer: &str,
    ) -> mpsc::Receiver<Result<WriteOutcome, EngineError>> {
        let (tx, rx) = mpsc::channel();
        let (engine, customer) = (Arc::clone(engine), customer.to_owned());
        std::thread::spawn(move || {
            let point = Point {
                name: "m".to_owned(),
                timestamp: 1,
                value: 1.0,
                dimensions: Dimensions::from_pairs([("customer".to_owned(), customer)]),
            };
            let _ = tx.send(engine.write(&Tenant::new("t"), vec![point]));
        });
        rx
    }

    /// Waits (at most 10 s) until the first WAL segment holds more than `bytes`; returns its length.
    fn wal_grows_past(dir: &std::path::Path, bytes: u64) -> u64 {
        let segment = dir.join("wal").join("00000001.wal");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let len = std::fs::metadata(&segment).map_or(0, |m| m.len());
            if len > bytes || Instant::now() > deadline {
                return len;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Opens an engine (fsync always) whose commit-group fsyncs wait at a gate; returns the length of
    /// its empty WAL.
    fn gated_engine(dir: &std::path::Path) -> (Arc<Engine>, Arc<fsync_gate::Gate>, u64) {
        let engine = Arc::new(Engine::open(EngineConfig::new(dir)).unwrap());
        let gate = fsync_gate::install(&dir.join("wal"));
        let empty = wal_grows_past(dir, 0);
        (engine, gate, empty)
    }

    #[test]
    fn writers_are_answered_only_after_the_fsync_covering_their_record_while_the_next_group_is_staged()
     {
        let dir = tempfile::tempdir().unwrap();
        let (engine, gate, empty) = gated_engine(dir.path());
        let first = write_in_background(&engine, "a");
        // The first write's record is appended and its fsync waits at the gate.
        assert!(gate.wait_for_arrivals(1));
        let after_first = wal_grows_past(dir.path(), empty);
        assert!(after_first > empty);
        // A second write is staged and appended meanwhile, behind the fsync in flight.
        let second = write_in_background(&engine, "b");
        assert!(wal_grows_past(dir.path(), after_first) > after_first);
        // Neither is answered nor visible: nothing is applied before it is durable.
        assert_eq!(
            first.recv_timeout(Duration::from_millis(50)).unwrap_err(),
            RecvTimeoutError::Timeout
        );
        assert!(second.try_recv().is_err());
        assert_eq!(engine.memory().head_points, 0);

        gate.set(State::Open);
        for answer in [first, second] {
            let outcome = answer
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .unwrap();
            assert_eq!(outcome.accepted, 1);
        }
        assert_eq!(engine.memory().head_points, 2);
        assert_eq!(engine.memory().series, 2);
    }

    #[test]
    fn a_failed_fsync_fails_its_group_and_the_group_staged_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, gate, empty) = gated_engine(dir.path());
        let first = write_in_background(&engine, "a");
        assert!(gate.wait_for_arrivals(1));
        let after_first = wal_grows_past(dir.path(), empty);
        let second = write_in_background(&engine, "b");
        assert!(wal_grows_past(dir.path(), after_first) > after_first);

        gate.set(State::Fail);
        for answer in [first, second] {
            match answer.recv_timeout(Duration::from_secs(10)).unwrap() {
                Err(EngineError::Poisoned { reason }) => {
                    assert!(reason.contains("injected fsync failure"), "{reason}")
                }
                other => panic!("expected Poisoned, got {other:?}"),
            }
        }
        assert_eq!(engine.memory().head_points, 0);
        assert!(matches!(
            write_in_background(&engine, "c")
                .recv_timeout(Duration::from_secs(10))
                .unwrap(),
            Err(EngineError::Poisoned { .. })
        ));
    }
}
