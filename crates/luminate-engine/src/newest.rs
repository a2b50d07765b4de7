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
//! 16 bytes per series (timestamp and value) and one bit per series that existed at start.

use std::collections::HashMap;

use luminate_model::{Tenant, TimestampMs};

use crate::EngineError;
use crate::head::Head;
use crate::index::Index;
use crate::part::Selection;
use crate::record::SeriesId;
use crate::stored::Stored;

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

    /// The larger of the two in (timestamp, value) order.
    fn max(self, other: Sample) -> Sample {
        let newer = (other.timestamp, other.value.total_cmp(&self.value))
            > (self.timestamp, std::cmp::Ordering::Equal);
        if newer { other } else { self }
    }
}

/// What the rule says of one protocol sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Newer than the series' newest: store it.
    Store,
    /// The series' newest sample itself (a retry): not stored.
    Duplicate,
    /// Not after the series' newest: not stored.
    OutOfOrder,
}

/// The newest sample of every series, per tenant.
#[derive(Debug, Default)]
pub(crate) struct Newest {
    tenants: HashMap<Tenant, TenantNewest>,
}

#[derive(Debug, Default)]
struct TenantNewest {
    /// By series id.
    samples: Vec<Sample>,
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
        let i = id as usize;
        if self.samples.len() <= i {
            self.samples.resize(i + 1, Sample::NONE);
        }
        self.samples[i] = self.samples[i].max(sample);
    }

    fn get(&self, id: SeriesId) -> Sample {
        self.samples
            .get(id as usize)
            .copied()
            .unwrap_or(Sample::NONE)
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
                    samples: vec![Sample::NONE; n],
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

    /// Folds a staged point into its series' newest.
    pub(crate) fn observe(
        &mut self,
        tenant: &Tenant,
        points: impl Iterator<Item = (SeriesId, TimestampMs, f64)>,
    ) {
        let tn = self.tenant_mut(tenant);
        for (id, timestamp, value) in points {
            tn.fold(id, Sample { timestamp, value });
        }
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

    /// What the rule says of a protocol sample of `series` (read from parts already).
    pub(crate) fn verdict(
        &self,
        tenant: &Tenant,
        series: SeriesId,
        timestamp: TimestampMs,
        value: f64,
    ) -> Verdict {
        let newest = self
            .tenants
            .get(tenant)
            .map_or(Sample::NONE, |tn| tn.get(series));
        if timestamp > newest.timestamp {
            Verdict::Store
        } else if timestamp == newest.timestamp && value.total_cmp(&newest.value).is_eq() {
            Verdict::Duplicate
        } else {
            Verdict::OutOfOrder
        }
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
            if let Some(s) = tn.samples.get_mut(id as usize)
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
            .map(|t| t.samples.capacity() * size_of::<Sample>() + t.unread.capacity() * 8)
            .sum()
    }
}
