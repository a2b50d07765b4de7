//! write: staging one write on the writer thread — its points resolved to series ids (new series
//! defined, cardinality limits applied, a protocol write's samples kept only when newer), logged as one
//! record — and the lookup of its live series that runs before, on the caller's thread ([`Found`]).
//!
//! A keyed write (`Idempotency-Key`) whose key the window remembers (`crate::keys`) stores nothing and
//! is answered with the remembered answer. Otherwise its answer is built from its outcome before its
//! record is written, and logged in it (`KEYED_WRITE`), then the key enters the window. A keyed write
//! that stores no point logs nothing, so its key is not remembered: a retry stores nothing either.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::mpsc::Receiver;

use luminate_model::keyed::KeyedWrite;
use luminate_model::{Dimensions, PointBatch, Tenant, WriteOutcome};

use super::{Committer, Reply, Request, Staged, WriteRule, Written};
use crate::error::EngineError;
use crate::index::{KnownNames, NewSeriesIds, Prepared};
use crate::record::{KeyEntry, SeriesId, SeriesPoint, WriteBatch};
use crate::shared::Shared;
use crate::space::Job;

/// Points a writer looks up per hold of the index read lock (see [`Found::look_up`]).
const FIND_CHUNK: usize = 1024;

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
    /// By point: for a point whose series was not live, the first earlier point of this write with the
    /// same series, if any; empty when no point has one. The writer thread gives such a point the
    /// series it resolved for that first one instead of resolving it again: a write ordered by series
    /// (an import, a backfill, a Prometheus TSDB dump) has several points of each new series.
    same_as: Vec<Option<u32>>,
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
        let same_as = same_series(batch, &series, &hashes);
        let dims = batch
            .iter()
            .zip(&series)
            .enumerate()
            .map(|(i, (p, id))| {
                let follows = same_as.get(i).is_some_and(Option::is_some);
                (id.is_none() && !follows).then(|| p.dimensions())
            })
            .collect();
        Self {
            series,
            hashes,
            dims,
            known,
            same_as,
            deletes,
        }
    }
}

/// [`Found::same_as`]: among the points not found live, each one whose series an earlier point of the
/// write has (same hash, then the same name and dimensions compared), pointing at the first such point.
fn same_series(
    batch: &PointBatch,
    series: &[Option<SeriesId>],
    hashes: &[u64],
) -> Vec<Option<u32>> {
    // Without the tenant's index nothing was hashed; such a write is the tenant's first.
    if hashes.len() != batch.len() {
        return Vec::new();
    }
    let mut first: HashMap<u64, u32, BuildHasherDefault<HashedAlready>> = HashMap::default();
    let mut same_as = Vec::new();
    for (i, (&hash, id)) in hashes.iter().zip(series).enumerate() {
        if id.is_some() {
            continue;
        }
        let i = i as u32;
        let leader = *first.entry(hash).or_insert(i);
        if leader == i {
            continue;
        }
        let (p, q) = (batch.get(i as usize), batch.get(leader as usize));
        // Another series with the same hash resolves on its own.
        if p.name == q.name && p.pairs().eq(q.pairs()) {
            if same_as.is_empty() {
                same_as.resize(batch.len(), None);
            }
            same_as[i as usize] = Some(leader);
        }
    }
    same_as
}

/// The series hashes are already hashes: a map keyed by them uses them as they are.
#[derive(Default)]
struct HashedAlready(u64);

impl Hasher for HashedAlready {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this; any other input is folded in, never lost.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

impl Committer {
    /// Resolves and logs one write; it is answered when the group commits.
    #[allow(
        clippy::too_many_arguments,
        reason = "the fields of `Request::Write`, taken apart by `handle`, and the queue a refused write drains"
    )]
    pub(super) fn stage_write(
        &mut self,
        tenant: Tenant,
        points: &PointBatch,
        mut found: Found,
        rule: WriteRule,
        keyed: Option<KeyedWrite>,
        reply: Reply<Written>,
        requests: &Receiver<Request>,
    ) {
        if let Err(e) = self.ensure_not_poisoned() {
            let _ = reply.send(Err(e));
            return;
        }
        let now = luminate_model::time::now_ms();
        if let Some(k) = &keyed
            && let Some(first) = self.keys.get(&tenant, &k.key, now)
        {
            // Answered with the others of the group, after the fsync that makes the first durable
            // if it was staged in this group.
            self.staged.push(Staged {
                batch: None,
                new_ids: None,
                outcome: WriteOutcome::default(),
                dims: Vec::new(),
                response: Some(first.response.clone()),
                replayed: true,
                reply,
            });
            return;
        }
        if let Some(e) = self.head_full() {
            self.shared.observer.no_space(Job::Wal.as_str());
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
            // By point, the series it was given, for the points that follow it (`Found::same_as`).
            let mut given: Vec<Option<SeriesId>> = if found.same_as.is_empty() {
                Vec::new()
            } else {
                vec![None; points.len()]
            };
            for ((i, p), live) in points.iter().enumerate().zip(found.series) {
                let dims = found.dims.get_mut(i).and_then(Option::take);
                let follows = found
                    .same_as
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|first| given[first as usize]);
                let series = match (live, follows) {
                    (Some(id), _) if found_still_live => id,
                    // Resolved a moment ago on this thread, nothing applied in between: what
                    // resolving this point again would give.
                    (_, Some(id)) => id,
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
                if let Some(slot) = given.get_mut(i) {
                    *slot = Some(series);
                }
                batch.points.push(SeriesPoint {
                    series,
                    timestamp: p.timestamp,
                    value: p.value,
                });
            }
        }
        match rule {
            WriteRule::NewerOnly => self.keep_newer(&mut batch, &mut outcome),
            WriteRule::All => {
                // Put back if the record does not fit the disk (`Committer::unlogged`).
                self.newest
                    .save(&batch.tenant, &batch.points, &mut self.newest_saved);
                self.newest.observe(&batch.tenant, &batch.points);
            }
        }
        outcome.accepted = batch.points.len();
        let key = keyed.map(|k| KeyEntry {
            tenant: batch.tenant.clone(),
            response: (k.respond)(&outcome),
            key: k.key,
            at: now,
        });
        if batch.points.is_empty() {
            self.staged.push(Staged {
                batch: None,
                new_ids: None,
                outcome,
                dims: found.dims,
                response: key.map(|k| k.response),
                replayed: false,
                reply,
            });
            return;
        }
        let record = match &key {
            Some(key) => batch.encode_keyed(key),
            None => batch.encode(),
        };
        if let Err(e) = self.append(&record) {
            self.newest.restore(&batch.tenant, &self.newest_saved);
            let e = self.unlogged(e, record.len(), requests);
            let _ = reply.send(Err(e));
            return;
        }
        self.shared.space.clear(Job::Wal);
        self.shared.observer.wal_appended(record.len() as u64);
        self.unsynced = true;
        let response = key.map(|key| {
            let response = key.response.clone();
            self.keys.insert(key, now);
            response
        });
        self.staged.push(Staged {
            batch: Some(batch),
            new_ids,
            outcome,
            dims: found.dims,
            response,
            replayed: false,
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
    pub(super) fn keep_newer(&mut self, batch: &mut WriteBatch, outcome: &mut WriteOutcome) {
        let series = batch.points.iter().map(|p| p.series);
        if let Err(e) = self.read_unread_parts(&batch.tenant, series) {
            self.shared.poison(format!(
                "reading the newest samples of series from parts failed: {e}"
            ));
        }
        // After the parts' rows are in (they are stored): put back if the record does not fit the disk.
        self.newest
            .save(&batch.tenant, &batch.points, &mut self.newest_saved);
        let not_newer = self.newest.keep_newer(&batch.tenant, &mut batch.points);
        outcome.duplicates = not_newer.duplicates;
        outcome.out_of_order = not_newer.out_of_order;
    }

    /// Reads from parts the newest of those of `series` not read since start.
    pub(super) fn read_unread_parts(
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
}
