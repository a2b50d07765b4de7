//! newest: the newest sample of every series, which the protocol ingest rule compares a sample with
//! (docs/ingest.md, "Retries and resends"): a protocol sample is stored only when its timestamp is
//! after the newest sample its series holds. Owned by the writer thread (`crate::commit`), which orders
//! every write, so two concurrent retries of one batch cannot both be stored; no lock.
//!
//! # What "newest" is
//! The largest (timestamp, value) of the series' stored points, in the order parts sort rows (several
//! points of one timestamp, which only the JSON API can store, leave the largest value). It is folded
//! over every point the writer thread stages, JSON or protocol; a delete forgets it for the series it
//! empties (a delete below the newest leaves it stored).
//!
//! # After a restart
//! The engine starts with the newest of the head's rows (the WAL's points since the last flush, read
//! once at start). The parts' rows are read lazily, the first time a protocol write touches a series
//! that existed at start: the last row of the series in each part of its metric, tombstones honoured
//! ([`Newest::read_parts`]). Series created since the start have no rows in those parts, and every
//! point written since is folded in as it is staged, so a series is read from parts at most once.
//!
//! # Memory
//! 16 bytes per series (timestamp and value), in chunks of [`CHUNK`] series, so that a growing tenant
//! never copies (and for a moment doubles) its whole table on the writer thread; and one bit per series
//! that existed at start. Measured at 2 M series (`examples/index_memory`): +16 bytes per series in the
//! engine's accounting, +30 MiB of peak resident memory.

use std::collections::HashMap;

use luminate_model::{Tenant, TimestampMs};

use crate::error::EngineError;
use crate::head::Head;
use crate::index::Index;
use crate::part::Selection;
use crate::record::{SeriesId, SeriesPoint};
use crate::stored::Stored;

/// Series per chunk of [`TenantNewest::chunks`] (1 MiB each).
const CHUNK: usize = 1 << 16;

/// A stored sample, or none (`timestamp == TimestampMs::MIN`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    timestamp: TimestampMs,
    value: f64,
}

impl Sample {
    const NONE: Sample = Sample {
        timestamp: TimestampMs::MIN,
        value: 0.0,
    };

    fn of(p: &SeriesPoint) -> Sample {
        Sample {
            timestamp: p.timestamp,
            value: p.value,
        }
    }

    /// The larger of the two in (timestamp, value) order.
    fn max(self, other: Sample) -> Sample {
        let newer = (other.timestamp, other.value.total_cmp(&self.value))
            > (self.timestamp, std::cmp::Ordering::Equal);
        if newer { other } else { self }
    }
}

/// Samples the rule did not store, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NotNewer {
    /// Equal to their series' newest (a retry).
    pub duplicates: usize,
    /// Otherwise not after their series' newest.
    pub out_of_order: usize,
}

/// The newest samples of some series as [`Newest::save`] found them.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    samples: Vec<(SeriesId, Sample)>,
}

/// The newest sample of every series, per tenant.
#[derive(Debug, Default)]
pub(crate) struct Newest {
    tenants: HashMap<Tenant, TenantNewest>,
}

#[derive(Debug, Default)]
struct TenantNewest {
    /// By series id: series `id` is `chunks[id / CHUNK][id % CHUNK]`.
    chunks: Vec<Box<[Sample]>>,
    /// Bit `id` set: series `id` existed at start and its parts' rows are not folded in yet.
    unread: Vec<u64>,
}

impl TenantNewest {
    fn is_unread(&self, id: SeriesId) -> bool {
        let (word, bit) = (id as usize / 64, id % 64);
        self.unread.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    fn mark_read(&mut self, id: SeriesId) {
        if let Some(w) = self.unread.get_mut(id as usize / 64) {
            *w &= !(1 << (id % 64));
        }
    }

    fn fold(&mut self, id: SeriesId, sample: Sample) {
        let (chunk, i) = (id as usize / CHUNK, id as usize % CHUNK);
        while self.chunks.len() <= chunk {
            self.chunks
                .push(vec![Sample::NONE; CHUNK].into_boxed_slice());
        }
        let s = &mut self.chunks[chunk][i];
        *s = s.max(sample);
    }

    fn get(&self, id: SeriesId) -> Sample {
        self.chunks
            .get(id as usize / CHUNK)
            .map_or(Sample::NONE, |c| c[id as usize % CHUNK])
    }

    fn get_mut(&mut self, id: SeriesId) -> Option<&mut Sample> {
        self.chunks
            .get_mut(id as usize / CHUNK)
            .map(|c| &mut c[id as usize % CHUNK])
    }
}

impl Newest {
    /// The state at start: every series of `index` is unread, the newest of the `head`'s rows folded in.
    pub(crate) fn at_start(index: &Index, head: &Head) -> Self {
        let mut tenants = HashMap::new();
        for (tenant, ti) in index.tenants() {
            let n = ti.series_count();
            let mut unread = vec![u64::MAX; n.div_ceil(64)];
            if let Some(last) = unread.last_mut()
                && n % 64 != 0
            {
                *last = (1u64 << (n % 64)) - 1;
            }
            tenants.insert(
                tenant.clone(),
                TenantNewest {
                    chunks: Vec::new(),
                    unread,
                },
            );
        }
        let mut newest = Self { tenants };
        for (tenant, metric) in head.partitions() {
            let tn = newest.tenant_mut(&tenant);
            for rows in head.rows(&tenant, metric) {
                for ((&id, &timestamp), &value) in
                    rows.series.iter().zip(rows.timestamps).zip(rows.values)
                {
                    tn.fold(id, Sample { timestamp, value });
                }
            }
        }
        newest
    }

    fn tenant_mut(&mut self, tenant: &Tenant) -> &mut TenantNewest {
        self.tenants.entry(tenant.clone()).or_default()
    }

    /// Saves into `saved` the newest of the series of `points` as they are now, for
    /// [`Newest::restore`] (what was there before is forgotten).
    pub(crate) fn save(&self, tenant: &Tenant, points: &[SeriesPoint], saved: &mut Saved) {
        saved.samples.clear();
        let Some(tn) = self.tenants.get(tenant) else {
            saved
                .samples
                .extend(points.iter().map(|p| (p.series, Sample::NONE)));
            return;
        };
        saved
            .samples
            .extend(points.iter().map(|p| (p.series, tn.get(p.series))));
    }

    /// Puts back the newest samples [`Newest::save`] saved: the points folded in since were not
    /// stored (their record did not fit the disk).
    pub(crate) fn restore(&mut self, tenant: &Tenant, saved: &Saved) {
        let tn = self.tenant_mut(tenant);
        // In reverse: a series saved twice gets its first saving, the one before any fold.
        for &(id, sample) in saved.samples.iter().rev() {
            if let Some(s) = tn.get_mut(id) {
                *s = sample;
            }
        }
    }

    /// Folds staged points into their series' newest.
    pub(crate) fn observe(&mut self, tenant: &Tenant, points: &[SeriesPoint]) {
        let tn = self.tenant_mut(tenant);
        for p in points {
            tn.fold(p.series, Sample::of(p));
        }
    }

    /// Keeps the protocol samples of `points` (their series read from parts already) whose timestamp
    /// is after their series' newest, in order, each kept one becoming its series' newest before the
    /// next is judged; counts the others.
    pub(crate) fn keep_newer(
        &mut self,
        tenant: &Tenant,
        points: &mut Vec<SeriesPoint>,
    ) -> NotNewer {
        let tn = self.tenant_mut(tenant);
        let mut not_newer = NotNewer::default();
        points.retain(|p| {
            let (sample, newest) = (Sample::of(p), tn.get(p.series));
            if sample.timestamp > newest.timestamp {
                tn.fold(p.series, sample);
                return true;
            }
            if sample.timestamp == newest.timestamp && sample.value.total_cmp(&newest.value).is_eq()
            {
                not_newer.duplicates += 1;
            } else {
                not_newer.out_of_order += 1;
            }
            false
        });
        not_newer
    }

    /// Of `series`, those that existed at start and whose parts' rows are not read yet.
    pub(crate) fn unread(
        &self,
        tenant: &Tenant,
        series: impl Iterator<Item = SeriesId>,
    ) -> Vec<SeriesId> {
        let Some(tn) = self.tenants.get(tenant) else {
            return Vec::new();
        };
        let mut unread: Vec<SeriesId> = series.filter(|&id| tn.is_unread(id)).collect();
        unread.sort_unstable();
        unread.dedup();
        unread
    }

    /// Folds in the last visible row of each of `series` (sorted, deduplicated) in every part of
    /// their metrics, then marks them read.
    pub(crate) fn read_parts(
        &mut self,
        tenant: &Tenant,
        series: &[SeriesId],
        index: &Index,
        stored: &Stored,
    ) -> Result<(), EngineError> {
        let Some(ti) = index.tenant(tenant) else {
            return Ok(());
        };
        let tn = self.tenant_mut(tenant);
        // By metric, each metric's ids ascending (as a part scan wants them).
        let mut by_metric: Vec<(crate::index::MetricId, SeriesId)> =
            series.iter().map(|&id| (ti.metric_of(id), id)).collect();
        by_metric.sort_unstable();
        for run in by_metric.chunk_by(|a, b| a.0 == b.0) {
            let metric = ti.metric_name(run[0].0);
            let ids: Vec<SeriesId> = run.iter().map(|&(_, id)| id).collect();
            for lp in stored.parts.iter().filter(|lp| lp.is_of(tenant, metric)) {
                let floor = lp.deleted_before.unwrap_or(TimestampMs::MIN);
                let mut scan = lp.part.scan(Selection::Only(&ids), floor..);
                while let Some(run) = scan.next_run()? {
                    if let (Some(&timestamp), Some(&value)) =
                        (run.timestamps.last(), run.values.last())
                    {
                        tn.fold(run.series, Sample { timestamp, value });
                    }
                }
            }
        }
        for &id in series {
            tn.mark_read(id);
        }
        Ok(())
    }

    /// After a delete of points `< before` of a metric with these series: forgets the newest of every
    /// series it emptied (its newest was below `before`, so every point of it was).
    pub(crate) fn forget_before(
        &mut self,
        tenant: &Tenant,
        series: &[SeriesId],
        before: TimestampMs,
    ) {
        let Some(tn) = self.tenants.get_mut(tenant) else {
            return;
        };
        for &id in series {
            if let Some(s) = tn.get_mut(id)
                && s.timestamp < before
            {
                *s = Sample::NONE;
            }
        }
    }

    /// Heap bytes held, for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.tenants
            .values()
            .map(|t| {
                t.chunks.len() * CHUNK * size_of::<Sample>()
                    + t.chunks.capacity() * size_of::<Box<[Sample]>>()
                    + t.unread.capacity() * 8
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(series: SeriesId, timestamp: TimestampMs, value: f64) -> SeriesPoint {
        SeriesPoint {
            series,
            timestamp,
            value,
        }
    }

    #[test]
    fn several_points_at_the_newest_timestamp_leave_the_largest_value_as_parts_sort_them() {
        let tenant = Tenant::new("t");
        let mut newest = Newest::default();
        newest.observe(&tenant, &[p(0, 10, 5.0), p(0, 10, 2.0), p(0, 9, 99.0)]);
        let mut resent = vec![p(0, 10, 2.0), p(0, 10, 5.0), p(0, 11, 1.0), p(0, 11, 1.0)];
        let not_newer = newest.keep_newer(&tenant, &mut resent);
        assert_eq!(resent, vec![p(0, 11, 1.0)]);
        assert_eq!(
            not_newer,
            NotNewer {
                duplicates: 2,
                out_of_order: 1
            }
        );
    }

    #[test]
    fn a_restore_puts_back_what_a_batch_that_was_not_stored_changed() {
        let tenant = Tenant::new("t");
        let mut newest = Newest::default();
        newest.observe(&tenant, &[p(0, 10, 1.0)]);
        let mut saved = Saved::default();
        let mut batch = vec![p(0, 20, 1.0), p(0, 30, 1.0), p(1, 5, 1.0)];
        newest.save(&tenant, &batch, &mut saved);
        newest.keep_newer(&tenant, &mut batch);
        assert_eq!(batch.len(), 3);
        newest.restore(&tenant, &saved);
        // The same batch, resent, is stored whole: nothing of it counts as a duplicate.
        let mut resent = vec![p(0, 20, 1.0), p(0, 30, 1.0), p(1, 5, 1.0)];
        assert_eq!(newest.keep_newer(&tenant, &mut resent), NotNewer::default());
        assert_eq!(resent.len(), 3);
    }

    #[test]
    fn a_delete_forgets_only_the_newest_it_removed() {
        let tenant = Tenant::new("t");
        let mut newest = Newest::default();
        newest.observe(&tenant, &[p(0, 10, 1.0), p(1, 30, 1.0)]);
        newest.forget_before(&tenant, &[0, 1], 20);
        let mut again = vec![p(0, 5, 1.0), p(1, 30, 1.0)];
        newest.keep_newer(&tenant, &mut again);
        assert_eq!(again, vec![p(0, 5, 1.0)]);
    }
}
