//! compact: background compaction of parts, one partition (tenant, metric, UTC day) at a time, off the
//! commit path. Per partition, from the current snapshot:
//! - a part entirely below its tombstone is dropped (the whole-partition drop of retention);
//! - a part whose tombstone cuts into it is rewritten without the deleted rows;
//! - `compaction_min_parts` parts or more of **similar size** (the largest at most [`TIER_RATIO`] times
//!   the smallest) are merged into one part. Size tiers keep the work of a partition that grows all day
//!   at about log₄(rows / flush size) rewrites of each row: merging every part, the day's big one
//!   included, each time a few small flushes arrive made every merge rewrite the whole day, so merges
//!   fell behind a sustained 200 000 points/s and parts (their memory and open files) piled up.
//!   [`Engine::settle`](crate::Engine::settle) still merges every part of a partition into one.
//!
//! A merge gives up as soon as the engine stops (its output is removed; the next start redoes it), so a
//! shutdown never waits for a long merge.
//!
//! Inputs are streamed series by series (a k-way merge by series id over one scan per part), so memory
//! is one series per input plus the writer's page. The new part is written atomically, then the
//! manifest is swapped under the catalog lock, then the old files are unlinked (queries still holding
//! them read through their open handles). A delete that raised an input's tombstone while the merge ran
//! makes the swap give up (the output is removed; the next round redoes it). A crash at any point leaves
//! the old manifest or the new one, and start-up removes files neither lists. A job that finds no room
//! for its new part or manifest removes what it wrote and leaves the old parts listed; the compactor
//! then retries with a backoff (`crate::space`), without waiting for the next nudge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;

use luminate_model::{Tenant, TimestampMs};

use crate::error::EngineError;
use crate::part::{PartSink, Selection, SeriesScan};
use crate::record::SeriesId;
use crate::shared::Shared;
use crate::space::{self, Backoff};
use crate::stored::{LivePart, Stored};

/// Largest ratio of rows between the biggest and the smallest part of one background merge.
pub(crate) const TIER_RATIO: u64 = 4;

/// Which parts of a partition are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// In the background: at least `min_parts` parts of similar size (see the module comment).
    Tiered {
        /// `compaction_min_parts`.
        min_parts: usize,
    },
    /// To settle: every partition of two or more parts, whatever their sizes.
    All,
}

/// One series' rows read from one input part, owned (a scan's run borrows the scan).
type OwnedRun = (SeriesId, Vec<TimestampMs>, Vec<f64>);

/// One partition's work.
struct Job {
    tenant: Tenant,
    metric: String,
    day: i64,
    /// Parts dropped whole.
    drop: Vec<LivePart>,
    /// Parts read into the one new part (with their tombstones applied).
    merge: Vec<LivePart>,
}

/// Starts the compactor thread: each nudge on `trigger` runs compaction until nothing is left to do;
/// it stops when every sender is gone.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    policy: Policy,
    trigger: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("luminate-compact".to_owned())
        .spawn(move || {
            // Set while compaction is stalled for want of space: it is retried after the pause even
            // without a nudge.
            let mut backoff: Option<Backoff> = None;
            loop {
                let nudged = match backoff.as_mut() {
                    None => trigger.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(b) => trigger.recv_timeout(b.next_pause()),
                };
                if let Err(RecvTimeoutError::Disconnected) = nudged {
                    break;
                }
                match compact_all(&shared, policy) {
                    Ok(()) => {
                        shared.space.clear(space::Job::Compaction);
                        backoff = None;
                    }
                    Err(e @ EngineError::NoSpace { .. }) => {
                        shared.observer.no_space(space::Job::Compaction.as_str());
                        shared.space.set(space::Job::Compaction, &e, 0);
                        backoff.get_or_insert_default();
                    }
                    Err(e) => {
                        // Compaction only ever replaces parts with equivalent ones: a failure leaves
                        // the data as it was, so it is reported and retried on the next nudge, not
                        // poisoned.
                        tracing::error!(error = %e, "compaction failed");
                        backoff = None;
                    }
                }
            }
        })
}

/// Compacts until no partition needs it (one job at a time, serialized with other callers), or the
/// engine stops.
pub(crate) fn compact_all(shared: &Shared, policy: Policy) -> Result<(), EngineError> {
    let _one_at_a_time = shared.compaction_lock();
    // Each job shrinks the work left; the bound only guards against a bug looping forever.
    for _ in 0..10_000 {
        if shared.poisoned().is_some() || shared.stopping() {
            return Ok(());
        }
        let snapshot = shared.read_stored();
        let Some(job) = next_job(&snapshot, policy) else {
            return Ok(());
        };
        drop(snapshot);
        let started = std::time::Instant::now();
        let (tenant, metric) = (job.tenant.clone(), job.metric.clone());
        let result = run(shared, job);
        shared.observer.compacted(started.elapsed(), result.is_ok());
        match result {
            // A damaged input part is set aside as a query would set it aside (`crate::contain`),
            // and the partition's work is looked at again without it.
            Err(EngineError::Corruption { .. })
                if !crate::contain::damaged_parts(shared, &tenant, &metric)?.is_empty() => {}
            other => other?,
        }
    }
    Ok(())
}

/// The first partition with work, if any.
fn next_job(stored: &Stored, policy: Policy) -> Option<Job> {
    let mut partitions: BTreeMap<(Tenant, String, i64), Vec<&LivePart>> = BTreeMap::new();
    for lp in &stored.parts {
        let meta = lp.part.meta();
        partitions
            .entry((meta.tenant.clone(), meta.metric.clone(), meta.day))
            .or_default()
            .push(lp);
    }
    for ((tenant, metric, day), parts) in partitions {
        let below = |lp: &LivePart, t: TimestampMs| lp.deleted_before.is_some_and(|d| d > t);
        let (drop, keep): (Vec<&LivePart>, Vec<&LivePart>) = parts
            .into_iter()
            .partition(|lp| below(lp, lp.part.meta().max_t));
        let cut = keep.iter().any(|lp| below(lp, lp.part.meta().min_t));
        let similar = match policy {
            Policy::All if keep.len() >= 2 => keep.clone(),
            Policy::All => Vec::new(),
            Policy::Tiered { min_parts } => similar_parts(&keep, min_parts.max(2)),
        };
        let merge = if !similar.is_empty() {
            similar
        } else if cut {
            keep.into_iter()
                .filter(|lp| below(lp, lp.part.meta().min_t))
                .take(1)
                .collect()
        } else {
            Vec::new()
        };
        if !drop.is_empty() || !merge.is_empty() {
            return Some(Job {
                tenant,
                metric,
                day,
                drop: drop.into_iter().cloned().collect(),
                merge: merge.into_iter().cloned().collect(),
            });
        }
    }
    None
}

/// The parts of the first run [`similar_run`] finds among `parts` sorted by rows (empty when none).
fn similar_parts<'a>(parts: &[&'a LivePart], min_parts: usize) -> Vec<&'a LivePart> {
    let mut sorted = parts.to_vec();
    sorted.sort_by(|a, b| (a.part.meta().rows, &a.file).cmp(&(b.part.meta().rows, &b.file)));
    let rows: Vec<u64> = sorted.iter().map(|lp| lp.part.meta().rows).collect();
    similar_run(&rows, min_parts).map_or_else(Vec::new, |run| sorted[run].to_vec())
}

/// In `rows` (ascending), the first run of at least `min_parts` sizes that are at most [`TIER_RATIO`]
/// times the run's first (the smallest): every size within that bound from it on.
fn similar_run(rows: &[u64], min_parts: usize) -> Option<std::ops::Range<usize>> {
    rows.iter().enumerate().find_map(|(i, &smallest)| {
        let bound = smallest.max(1).saturating_mul(TIER_RATIO);
        let end = i + rows[i..].partition_point(|&r| r <= bound);
        (end - i >= min_parts).then_some(i..end)
    })
}

/// Writes the job's new part, swaps the manifest, unlinks the old files. A merge the engine's stop cut
/// short changes nothing.
fn run(shared: &Shared, job: Job) -> Result<(), EngineError> {
    let written = if job.merge.is_empty() {
        Vec::new()
    } else {
        match merge(shared, &job)? {
            Some(written) => written,
            None => return Ok(()),
        }
    };
    let catalog = shared.catalog();
    let current = shared.read_stored();
    let unchanged = job.drop.iter().chain(&job.merge).all(|old| {
        current
            .parts
            .iter()
            .any(|lp| lp.file == old.file && lp.deleted_before == old.deleted_before)
    });
    if !unchanged {
        drop(catalog);
        let files: Vec<&str> = written.iter().map(|(file, _)| file.as_str()).collect();
        shared.remove_unlisted_parts(&files);
        return Ok(());
    }
    let gone: Vec<&str> = job
        .drop
        .iter()
        .chain(&job.merge)
        .map(|lp| lp.file.as_str())
        .collect();
    let mut parts: Vec<LivePart> = current
        .parts
        .iter()
        .filter(|lp| !gone.contains(&lp.file.as_str()))
        .cloned()
        .collect();
    let new_parts = written.len();
    parts.extend(written.into_iter().map(|(file, part)| LivePart {
        part: Arc::new(part),
        file,
        deleted_before: None,
    }));
    let next = Stored {
        frozen: current.frozen.clone(),
        parts,
    };
    let next_part = catalog.next_part;
    if let Err(e) = shared.write_manifest(catalog.wal_start, next_part, &next) {
        // The old parts stay listed: the new one is garbage (and out of space, the manifest rolled
        // its own temp file back).
        drop(catalog);
        let new: Vec<&str> = next.parts[next.parts.len() - new_parts..]
            .iter()
            .map(|lp| lp.file.as_str())
            .collect();
        shared.remove_unlisted_parts(&new);
        return Err(e);
    }
    shared.set_stored(&catalog, next);
    drop(catalog);
    shared.remove_unlisted_parts(&gone);
    Ok(())
}

/// Streams the job's inputs, minus their tombstoned rows, into new parts; `None` when the engine began
/// to stop meanwhile (the sink, dropped, removes what it wrote).
fn merge(
    shared: &Shared,
    job: &Job,
) -> Result<Option<Vec<(String, crate::part::Part)>>, EngineError> {
    let mut scans: Vec<SeriesScan<'_>> = job
        .merge
        .iter()
        .map(|lp| {
            let from = lp.deleted_before.unwrap_or(TimestampMs::MIN);
            lp.part.scan(Selection::All, from..)
        })
        .collect();
    // The next run of each scan, copied out (a run borrows its scan).
    let mut heads: Vec<Option<OwnedRun>> = Vec::new();
    for scan in &mut scans {
        heads.push(next_owned(scan)?);
    }
    let metas = job.merge.iter().map(|lp| lp.part.meta());
    let summary_block_ms = crate::part::summary_block_ms(
        metas.clone().map(|m| m.rows).sum(),
        merged_series_count(&job.merge),
        metas.clone().map(|m| m.min_t).min().unwrap_or_default(),
        metas.map(|m| m.max_t).max().unwrap_or_default(),
        shared.summary_min_rows,
    );
    let mut sink = PartSink::new(
        shared,
        job.tenant.clone(),
        &job.metric,
        job.day,
        summary_block_ms,
    );
    let mut rows: Vec<(TimestampMs, f64)> = Vec::new();
    let (mut timestamps, mut values) = (Vec::new(), Vec::new());
    let mut merged_series: u64 = 0;
    while let Some(id) = heads.iter().flatten().map(|h| h.0).min() {
        // A look at the flag every 1 024 series: cheap, and a stop waits a few milliseconds at most.
        merged_series += 1;
        if merged_series.is_multiple_of(1024) && shared.stopping() {
            tracing::info!(
                metric = %job.metric, day = job.day,
                "stopping: a merge was abandoned, to be redone after the next start"
            );
            return Ok(None);
        }
        rows.clear();
        for (i, head) in heads.iter_mut().enumerate() {
            if head.as_ref().is_some_and(|h| h.0 == id) {
                if let Some((_, ts, vs)) = head.take() {
                    rows.extend(ts.into_iter().zip(vs));
                }
                *head = next_owned(&mut scans[i])?;
            }
        }
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        timestamps.clear();
        values.clear();
        timestamps.extend(rows.iter().map(|r| r.0));
        values.extend(rows.iter().map(|r| r.1));
        sink.push(id, &timestamps, &values)?;
    }
    sink.finish().map(Some)
}

/// The distinct series of the parts a merge reads (one bit per series id, from their directories):
/// the flush's parts of a partition each hold most of its series, so their sum would count a
/// series once per part and the merged part's rows per series would look too few for summaries.
fn merged_series_count(merge: &[LivePart]) -> u64 {
    let max_id = merge
        .iter()
        .filter_map(|lp| lp.part.series_ids().last())
        .max()
        .map_or(0, |&id| id);
    crate::part::distinct_series(
        merge
            .iter()
            .flat_map(|lp| lp.part.series_ids().iter().copied()),
        max_id,
    )
}

/// The scan's next run as owned columns.
fn next_owned(scan: &mut SeriesScan<'_>) -> Result<Option<OwnedRun>, EngineError> {
    Ok(scan
        .next_run()?
        .map(|run| (run.series, run.timestamps.to_vec(), run.values.to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_sizes_are_merged_and_a_big_part_waits_for_its_peers() {
        // Four flushes of about the same size: all four.
        assert_eq!(similar_run(&[90, 100, 100, 120], 4), Some(0..4));
        // A day's big part and three flushes: not yet; a fourth flush makes a run of four small ones.
        assert_eq!(similar_run(&[100, 100, 100, 50_000], 4), None);
        assert_eq!(similar_run(&[100, 100, 100, 100, 50_000], 4), Some(0..4));
        // The bound is 4x the smallest of the run, inclusive; a run may start past a lone small part.
        assert_eq!(similar_run(&[10, 100, 200, 400, 401], 3), Some(1..4));
        assert_eq!(similar_run(&[10, 100, 200, 400, 401], 4), None);
        // Empty parts (every row deleted) count as one row.
        assert_eq!(similar_run(&[0, 0, 4], 3), Some(0..3));
        assert_eq!(similar_run(&[], 2), None);
    }
}
