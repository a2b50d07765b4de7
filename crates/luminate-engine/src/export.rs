//! export: every point an [`ExportPlan`] selects, handed out in [`ExportBatch`]es with bounded memory
//! (`POST /api/v1/export`). Knows nothing of HTTP or of how a batch is encoded; reads the index, the
//! head and the parts as queries do, without their limits and deadline.
//!
//! # Order and consistency
//! Metrics by name; within a metric, UTC day by day (the parts' partitions); within a day, series by
//! series in id order (the order they were first written), each series' points of that day in one run
//! ordered by (timestamp, value) — its rows from the day's parts, the frozen head and the active head
//! merged. A series that has points on several days thus comes in one run per day.
//!
//! Each metric is read from one snapshot, taken as a query takes it: the series matching the filters
//! under the index lock, the head's rows (copied) and the snapshot of frozen head and parts under the
//! head lock, so every point stored when the metric's turn came is exported exactly once. Writes that
//! land later are in the export if their metric's turn has not come yet.
//!
//! # Memory
//! At most, at once: the selected series' ids (4 bytes each), the metric's selected head rows in the
//! range (the head is bounded by `head_max_points`, frozen and active: 20 bytes a row), one decoded
//! page and one run per part of the day being read, and the batch being filled. The caller's sink
//! bounds the rest: it blocks while the consumer is behind, and stops the export by returning false.

use luminate_model::export::EXPORT_BATCH_POINTS;
use luminate_model::{ExportBatch, ExportPlan, Tenant, TimestampMs};

use crate::EngineError;
use crate::index::{Index, MetricId};
use crate::part::Selection;
use crate::record::SeriesId;
use crate::shared::Shared;
use crate::stored::LivePart;

const DAY_MS: i64 = 86_400_000;

/// Streams the plan's points into `sink`, one batch at a time; stops early (with `Ok`) when the sink
/// returns false.
pub(crate) fn run(
    shared: &Shared,
    tenant: &Tenant,
    plan: &ExportPlan,
    sink: &mut dyn FnMut(ExportBatch) -> bool,
) -> Result<(), EngineError> {
    let metrics = match &plan.metric {
        Some(m) => vec![m.clone()],
        None => shared.read_index().metric_names(tenant),
    };
    let mut out = Out::new(shared, tenant, sink);
    for metric in &metrics {
        if !export_metric(shared, tenant, metric, plan, &mut out)? {
            return Ok(());
        }
    }
    out.flush();
    Ok(())
}

/// A head row copied out of the head.
#[derive(Debug, Clone, Copy)]
struct HeadRow {
    series: SeriesId,
    timestamp: TimestampMs,
    value: f64,
}

impl HeadRow {
    fn day(&self) -> i64 {
        self.timestamp.div_euclid(DAY_MS)
    }
}

/// The selected series, for the head rows' membership test: a bit per id up to the largest selected
/// (`None`: every series is selected).
struct Wanted(Option<Vec<u64>>);

impl Wanted {
    fn new(selected: &[SeriesId], everything: bool) -> Self {
        if everything {
            return Self(None);
        }
        let words = selected.last().map_or(0, |&id| id as usize / 64 + 1);
        let mut bits = vec![0u64; words];
        for &id in selected {
            bits[id as usize / 64] |= 1 << (id % 64);
        }
        Self(Some(bits))
    }

    fn contains(&self, id: SeriesId) -> bool {
        self.0.as_ref().is_none_or(|bits| {
            bits.get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
        })
    }
}

/// Exports one metric from its snapshot; false when the sink stopped the export.
fn export_metric(
    shared: &Shared,
    tenant: &Tenant,
    metric: &str,
    plan: &ExportPlan,
    out: &mut Out<'_>,
) -> Result<bool, EngineError> {
    let (selected, mut head_rows, stored) = {
        let index = shared.read_index();
        let Some((ti, m)) = index
            .tenant(tenant)
            .and_then(|ti| Some((ti, ti.metric_id(metric)?)))
        else {
            return Ok(true);
        };
        let selected = crate::exec::matching_series(ti, m, &plan.filters);
        if selected.is_empty() {
            return Ok(true);
        }
        // Taken before the index lock is released, as a query does, so whole write batches are seen.
        let head = shared.read_head();
        let stored = shared.read_stored();
        drop(index);
        let wanted = Wanted::new(&selected, plan.filters.is_empty());
        let mut rows = Vec::new();
        copy_head_rows(&head, tenant, m, None, plan, &wanted, &mut rows);
        if let Some(frozen) = &stored.frozen {
            let floor = frozen.tombstones.get(&(tenant.clone(), m)).copied();
            copy_head_rows(&frozen.head, tenant, m, floor, plan, &wanted, &mut rows);
        }
        (selected, rows, stored)
    };
    head_rows.sort_unstable_by(|a, b| {
        (a.day(), a.series, a.timestamp)
            .cmp(&(b.day(), b.series, b.timestamp))
            .then(a.value.total_cmp(&b.value))
    });
    let parts: Vec<&LivePart> = stored
        .parts
        .iter()
        .filter(|lp| lp.is_of(tenant, metric) && part_range(lp, plan).is_some())
        .collect();
    let mut days: Vec<i64> = parts.iter().map(|lp| lp.part.meta().day).collect();
    days.extend(head_rows.iter().map(HeadRow::day));
    days.sort_unstable();
    days.dedup();
    let selection = if plan.filters.is_empty() {
        Selection::All
    } else {
        Selection::Only(&selected)
    };
    let mut rest = head_rows.as_slice();
    for day in days {
        let split = rest.partition_point(|r| r.day() <= day);
        let (today, later) = rest.split_at(split);
        rest = later;
        let day_parts = parts.iter().filter(|lp| lp.part.meta().day == day);
        if !merge_day(day_parts.copied(), today, selection, plan, out)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The part's rows the plan can see: `[max(start, tombstone), end)`, `None` when empty or when the
/// part's rows all lie outside it.
fn part_range(lp: &LivePart, plan: &ExportPlan) -> Option<(TimestampMs, TimestampMs)> {
    let lo = lp
        .deleted_before
        .map_or(plan.start, |floor| floor.max(plan.start));
    let meta = lp.part.meta();
    (lo < plan.end && meta.min_t < plan.end && meta.max_t >= lo).then_some((lo, plan.end))
}

/// Copies the rows of metric `m` the plan selects (at or above `floor`, a tombstone) out of `head`.
fn copy_head_rows(
    head: &crate::head::Head,
    tenant: &Tenant,
    m: MetricId,
    floor: Option<TimestampMs>,
    plan: &ExportPlan,
    wanted: &Wanted,
    out: &mut Vec<HeadRow>,
) {
    let lo = floor.map_or(plan.start, |f| f.max(plan.start));
    for rows in head.rows(tenant, m) {
        if rows.max_t < lo || rows.min_t >= plan.end {
            continue;
        }
        for i in 0..rows.series.len() {
            let t = rows.timestamps[i];
            if t >= lo && t < plan.end && wanted.contains(rows.series[i]) {
                out.push(HeadRow {
                    series: rows.series[i],
                    timestamp: t,
                    value: rows.values[i],
                });
            }
        }
    }
}

/// One part of a day being read: its scan and the run it holds (copied out of the scan's buffers, so
/// that runs of several parts can be held at once).
struct PartSource<'a> {
    scan: crate::part::SeriesScan<'a>,
    run: Option<SeriesId>,
    timestamps: Vec<TimestampMs>,
    values: Vec<f64>,
    done: bool,
}

impl PartSource<'_> {
    /// Reads the next run if none is held.
    fn fill(&mut self) -> Result<(), EngineError> {
        if self.run.is_some() || self.done {
            return Ok(());
        }
        match self.scan.next_run()? {
            None => self.done = true,
            Some(run) => {
                self.run = Some(run.series);
                self.timestamps.clear();
                self.timestamps.extend_from_slice(run.timestamps);
                self.values.clear();
                self.values.extend_from_slice(run.values);
            }
        }
        Ok(())
    }
}

/// Exports one day of a metric: the day's parts and head rows merged series by series, in id order.
fn merge_day<'a>(
    parts: impl Iterator<Item = &'a LivePart>,
    mut head: &[HeadRow],
    selection: Selection<'_>,
    plan: &ExportPlan,
    out: &mut Out<'_>,
) -> Result<bool, EngineError> {
    let mut sources: Vec<PartSource<'_>> = parts
        .filter_map(|lp| {
            let (lo, hi) = part_range(lp, plan)?;
            Some(PartSource {
                scan: lp.part.scan(selection, lo..hi),
                run: None,
                timestamps: Vec::new(),
                values: Vec::new(),
                done: false,
            })
        })
        .collect();
    let mut merged: Vec<(TimestampMs, f64)> = Vec::new();
    loop {
        for source in &mut sources {
            source.fill()?;
        }
        let next = sources
            .iter()
            .filter_map(|s| s.run)
            .chain(head.first().map(|r| r.series))
            .min();
        let Some(series) = next else {
            return Ok(true);
        };
        let head_len = head.partition_point(|r| r.series == series);
        let (head_run, head_rest) = head.split_at(head_len);
        head = head_rest;
        let mut holding = sources.iter_mut().filter(|s| s.run == Some(series));
        let first = holding.next();
        let more = holding.next();
        let stopped = match (first, more) {
            // One source: its run is already in order.
            (Some(only), None) if head_run.is_empty() => {
                !out.push_run(series, &only.timestamps, &only.values)
            }
            (None, _) => {
                merged.clear();
                merged.extend(head_run.iter().map(|r| (r.timestamp, r.value)));
                !out.push_pairs(series, &merged)
            }
            (Some(first), more) => {
                merged.clear();
                merged.extend(head_run.iter().map(|r| (r.timestamp, r.value)));
                for s in std::iter::once(first).chain(more).chain(holding) {
                    merged.extend(s.timestamps.iter().copied().zip(s.values.iter().copied()));
                }
                merged.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                !out.push_pairs(series, &merged)
            }
        };
        // The holders of this series are consumed; the borrow of `holding` ended above.
        for source in &mut sources {
            if source.run == Some(series) {
                source.run = None;
            }
        }
        if stopped {
            return Ok(false);
        }
    }
}

/// The batch being filled: runs by series id, resolved to names and dimensions (under the index lock,
/// briefly) when the batch is handed to the sink.
struct Out<'s> {
    shared: &'s Shared,
    tenant: &'s Tenant,
    sink: &'s mut dyn FnMut(ExportBatch) -> bool,
    /// Each run's series and the end of its points.
    runs: Vec<(SeriesId, usize)>,
    timestamps: Vec<TimestampMs>,
    values: Vec<f64>,
}

impl<'s> Out<'s> {
    fn new(
        shared: &'s Shared,
        tenant: &'s Tenant,
        sink: &'s mut dyn FnMut(ExportBatch) -> bool,
    ) -> Self {
        Self {
            shared,
            tenant,
            sink,
            runs: Vec::new(),
            timestamps: Vec::with_capacity(EXPORT_BATCH_POINTS),
            values: Vec::with_capacity(EXPORT_BATCH_POINTS),
        }
    }

    /// Adds a run of `series`, cutting it where the batch fills; false when the sink stopped.
    fn push_run(&mut self, series: SeriesId, timestamps: &[TimestampMs], values: &[f64]) -> bool {
        let mut at = 0;
        while at < timestamps.len() {
            let room = EXPORT_BATCH_POINTS - self.timestamps.len();
            let take = room.min(timestamps.len() - at);
            self.timestamps
                .extend_from_slice(&timestamps[at..at + take]);
            self.values.extend_from_slice(&values[at..at + take]);
            at += take;
            self.runs.push((series, self.timestamps.len()));
            if self.timestamps.len() >= EXPORT_BATCH_POINTS && !self.flush() {
                return false;
            }
        }
        true
    }

    /// [`Out::push_run`] of (timestamp, value) pairs.
    fn push_pairs(&mut self, series: SeriesId, pairs: &[(TimestampMs, f64)]) -> bool {
        let mut at = 0;
        while at < pairs.len() {
            let room = EXPORT_BATCH_POINTS - self.timestamps.len();
            let take = room.min(pairs.len() - at);
            for &(t, v) in &pairs[at..at + take] {
                self.timestamps.push(t);
                self.values.push(v);
            }
            at += take;
            self.runs.push((series, self.timestamps.len()));
            if self.timestamps.len() >= EXPORT_BATCH_POINTS && !self.flush() {
                return false;
            }
        }
        true
    }

    /// Hands the batch to the sink (nothing when it is empty); false when the sink stopped.
    fn flush(&mut self) -> bool {
        if self.timestamps.is_empty() {
            return true;
        }
        let batch = {
            let index = self.shared.read_index();
            self.build(&index)
        };
        self.runs.clear();
        self.timestamps.clear();
        self.values.clear();
        (self.sink)(batch)
    }

    fn build(&self, index: &Index) -> ExportBatch {
        let mut batch = ExportBatch::with_capacity(self.timestamps.len());
        let Some(ti) = index.tenant(self.tenant) else {
            return batch;
        };
        let mut start = 0;
        for &(series, end) in &self.runs {
            let view = ti.series(series);
            batch.start_series(view.metric(), view.pairs());
            batch.extend(&self.timestamps[start..end], &self.values[start..end]);
            start = end;
        }
        batch
    }
}

#[cfg(test)]
mod tests;
