//! The scan half of a query: what one source of rows (a chunk of head rows, or a part) contributes
//! to the answer, as a [`Partial`] that merges with the partials of other sources. Sources are scanned
//! independently — in parallel — and merged in any order: every final answer depends only on the merged
//! multiset of contributions (sums are exact for the tested data; see the conformance test).
//!
//! Two kinds of partial, by what the aggregation must remember:
//! - running [`Moments`] per group and per (group, bucket): count, sum, min, max, avg;
//! - [`Points`]: every selected point, tagged with its group (percentiles: value and bucket suffice) or
//!   its position in the selection (range, integral and rate need each series' points). Range
//!   candidates past the query's limit are dropped during the scan ([`Points::push_candidate`]).
//!
//! A scan checks the query's deadline every [`CHECK_EVERY`] rows and stops buffering past the query's
//! value bound.

use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::semantics::bucket_start;
use luminate_model::{QueryContext, StoreError, TimestampMs};

use super::grid::Cells;
use super::points::Points;
use super::select::SeriesMap;
use super::{CHECK_EVERY, too_large};
use crate::buffer::filled;
use crate::head::Rows;
use crate::part::{PageColumns, Part, Selection, SummaryColumns, block_span};
use crate::record::SeriesId;

mod buckets;
mod summaries;

pub(crate) use buckets::BucketMoments;

/// Count, sum, min and max of a set of values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Moments {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    #[inline]
    fn add(&mut self, v: f64) {
        if self.count == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.sum += v;
        self.count += 1;
    }

    /// Adds `v` to the count and sum only, for the aggregations that never read the minimum or the
    /// maximum (`count`, `sum`, `avg`): the two comparisons per row were a third of a bucketed
    /// average's accumulation.
    #[inline]
    fn add_count_sum(&mut self, v: f64) {
        self.sum += v;
        self.count += 1;
    }

    /// Adds `v` as `spec` needs it: with the minimum and maximum only when they are read.
    #[inline]
    fn add_for(&mut self, v: f64, spec: &ScanSpec<'_>) {
        self.add_with(v, spec.min_max());
    }

    /// Adds `v`, with the minimum and maximum when `min_max`.
    #[inline]
    fn add_with(&mut self, v: f64, min_max: bool) {
        if min_max {
            self.add(v);
        } else {
            self.add_count_sum(v);
        }
    }

    pub(super) fn merge(&mut self, other: &Self) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
    }

    pub(super) fn value(&self, agg: Aggregation) -> f64 {
        match agg {
            Aggregation::Count => self.count as f64,
            Aggregation::Sum => self.sum,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            // Avg; percentiles and integral never use moments.
            _ => self.sum / self.count as f64,
        }
    }
}

/// What one or more sources contributed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Partial {
    /// Per group (by index), or per (group, bucket start) when the plan has an interval: a group's
    /// totals are then its buckets' merged when the answer is built, so a row is added once.
    Moments {
        totals: Vec<Moments>,
        buckets: Option<BucketMoments>,
        /// Row by row additions of `count`, `sum` and `avg` without buckets, kept apart from `totals`
        /// until the scan task ends ([`Partial::end_task`]).
        compact: Compact,
    },
    /// Every selected point.
    Rows(Points),
}

/// Per-group accumulators smaller than [`Moments`] (32 bytes), for the aggregations that need no
/// minimum or maximum: a group-by adds each row to a random group, and 100 000 groups' counts (0.8 MB)
/// stay in a core's cache where their moments (3.2 MB) did not. Folded into the totals at the end of a
/// scan task, so sums add a task's rows in row order, then the task's sum to the others' (as merging
/// parallel partials does).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Compact {
    /// Moments are added to the totals directly (min, max, buckets, percentiles).
    Unused,
    /// `count`: rows per group.
    Counts(Vec<u64>),
    /// `sum` and `avg`: rows and their sum per group.
    CountSums(Vec<(u64, f64)>),
    /// `max` over more than [`FEW_GROUPS`] groups (a percentile's phase A groups by series: 2 M of
    /// them): rows and maximum per group, 16 bytes where moments take 32. The totals stay empty until
    /// the answer is read ([`Compact::fold_into`]): a task's partial is half the memory, and the
    /// page faults of phase A's pass with it.
    CountMaxes(Vec<(u64, f64)>),
}

/// Adds `v` to a (rows, maximum) pair as [`Moments::add`] adds it to the maximum.
#[inline]
pub(super) fn add_max(slot: &mut (u64, f64), v: f64) {
    slot.1 = if slot.0 == 0 { v } else { slot.1.max(v) };
    slot.0 += 1;
}

/// Adds `count` rows of maximum `max` to a (rows, maximum) pair as [`Moments::merge`] merges them.
#[inline]
pub(super) fn merge_max(slot: &mut (u64, f64), count: u64, max: f64) {
    if count == 0 {
        return;
    }
    slot.1 = if slot.0 == 0 { max } else { slot.1.max(max) };
    slot.0 += count;
}

impl Compact {
    fn for_spec(spec: &ScanSpec<'_>) -> Self {
        let max_only = spec.summary.max && !spec.summary.min && !spec.summary.sum;
        if spec.interval.is_none() && max_only && spec.groups > FEW_GROUPS {
            Self::CountMaxes(filled(spec.groups, (0, 0.0)))
        } else if spec.interval.is_some() || spec.min_max() {
            Self::Unused
        } else if spec.count_only {
            Self::Counts(filled(spec.groups, 0))
        } else {
            Self::CountSums(filled(spec.groups, (0, 0.0)))
        }
    }

    /// Adds what was accumulated to `totals` and starts again from nothing. Minimum and maximum are
    /// not kept (the aggregations that use counts or sums never read them), nor sums with maxima
    /// (`max` never reads them). `CountMaxes` fills `totals` when empty and is `Unused` after.
    pub(super) fn fold_into(&mut self, totals: &mut Vec<Moments>) {
        let moments = |count, sum| Moments {
            count,
            sum,
            min: 0.0,
            max: 0.0,
        };
        match self {
            Self::Unused => {}
            Self::Counts(counts) => {
                for (total, count) in totals.iter_mut().zip(counts.iter_mut()) {
                    total.merge(&moments(std::mem::take(count), 0.0));
                }
            }
            Self::CountSums(sums) => {
                for (total, (count, sum)) in totals.iter_mut().zip(sums.iter_mut()) {
                    total.merge(&moments(std::mem::take(count), std::mem::take(sum)));
                }
            }
            Self::CountMaxes(maxes) => {
                let of = |&(count, max): &(u64, f64)| Moments {
                    count,
                    sum: 0.0,
                    min: 0.0,
                    max,
                };
                if totals.is_empty() {
                    *totals = maxes.iter().map(of).collect();
                } else {
                    for (total, pair) in totals.iter_mut().zip(maxes.iter()) {
                        total.merge(&of(pair));
                    }
                }
                *self = Self::Unused;
            }
        }
    }

    /// Adds `v` to group `tag`: into these accumulators when they keep what the aggregation reads
    /// (`CountMaxes`, whose totals are empty), into `totals` otherwise.
    #[inline]
    pub(super) fn add_or_total(&mut self, totals: &mut [Moments], tag: usize, v: f64) {
        match self {
            Self::CountMaxes(maxes) => add_max(&mut maxes[tag], v),
            _ => totals[tag].add(v),
        }
    }

    /// Merges `m` into group `tag`, as [`Compact::add_or_total`] adds a value.
    #[inline]
    pub(super) fn merge_or_total(&mut self, totals: &mut [Moments], tag: usize, m: &Moments) {
        match self {
            Self::CountMaxes(maxes) => merge_max(&mut maxes[tag], m.count, m.max),
            _ => totals[tag].merge(m),
        }
    }
}

/// What a scan accumulates and over which rows.
#[derive(Clone, Copy)]
pub(super) struct ScanSpec<'a> {
    pub start: TimestampMs,
    pub end: TimestampMs,
    pub interval: Option<i64>,
    /// Rows of percentiles carry their bucket instead of their timestamp.
    pub bucketed_rows: bool,
    /// Rows keep a time (all but percentiles without an interval or with `cells`).
    pub timed: bool,
    /// Percentiles with an interval, over few enough (group, bucket) cells: each row is tagged with
    /// its cell instead of its group and bucket start (see [`super::Prepared`]).
    pub cells: Option<Cells>,
    pub moments: bool,
    /// Only counts are read (`count`): timestamps suffice, and a part inside the range answers from its
    /// row counts.
    pub count_only: bool,
    /// The block summary columns moments need (sum, min, max; counts always).
    pub summary: SummaryColumns,
    pub groups: usize,
    /// Range queries: their limit (candidates after the first `limit` are dropped during the scan).
    pub range_limit: Option<usize>,
    pub map: &'a SeriesMap,
    pub max_values: usize,
    /// Points a buffer is sized for up front (see [`Points::with_capacity`]); 0 to grow as needed.
    pub reserve: usize,
}

impl ScanSpec<'_> {
    /// The tag and time a buffered row of group (or position) `tag` at `t` keeps: its cell and no
    /// time with `cells`; other percentiles their bucket start (0 without an interval); the rest
    /// their own. Only rows in `[start, end)` are buffered, and the grid covers it.
    #[inline]
    fn kept(&self, tag: u32, t: TimestampMs) -> (u32, TimestampMs) {
        match (self.cells, self.bucketed_rows, self.interval) {
            (Some(cells), ..) => (cells.tag(tag, t), 0),
            (None, true, Some(interval)) => (tag, bucket_start(t, interval)),
            (None, true, None) => (tag, 0),
            (None, false, _) => (tag, t),
        }
    }

    /// True when the aggregation reads the minimum or the maximum of its moments.
    #[inline]
    fn min_max(&self) -> bool {
        self.summary.min || self.summary.max
    }

    /// True when some row of `rows` may fall in `[start, end)`.
    pub(super) fn overlaps(&self, rows: &Rows<'_>) -> bool {
        !rows.series.is_empty() && rows.max_t >= self.start && rows.min_t < self.end
    }
}

/// True when the plan's aggregation keeps running moments (and tags rows with groups).
pub(super) fn uses_moments(kind: QueryKind) -> bool {
    matches!(
        kind,
        QueryKind::Aggregate(
            Aggregation::Avg
                | Aggregation::Sum
                | Aggregation::Count
                | Aggregation::Min
                | Aggregation::Max
        )
    )
}

impl Partial {
    /// Nothing contributed yet.
    pub(super) fn empty(spec: &ScanSpec<'_>) -> Self {
        if spec.moments {
            let compact = Compact::for_spec(spec);
            let totals = match compact {
                // Filled when the answer is read.
                Compact::CountMaxes(_) => Vec::new(),
                _ => filled(spec.groups, Moments::default()),
            };
            Self::Moments {
                totals,
                buckets: BucketMoments::for_spec(spec),
                compact,
            }
        } else {
            Self::Rows(Points::with_capacity(spec.timed, spec.reserve))
        }
    }

    /// Adds the selected rows of `rows` in `[start, end)`.
    pub(super) fn scan(
        &mut self,
        rows: &Rows<'_>,
        spec: &ScanSpec<'_>,
        ctx: &QueryContext,
    ) -> Result<(), StoreError> {
        if !spec.overlaps(rows) {
            return Ok(());
        }
        match self {
            Self::Moments {
                totals,
                buckets,
                compact,
            } => match buckets {
                Some(buckets) => for_each_selected(rows, spec, ctx, |tag, t, v| {
                    buckets.cell(tag, t).add_for(v, spec);
                }),
                // Few groups: their moments stay cached, one pass is faster.
                None if spec.groups <= FEW_GROUPS => {
                    for_each_selected(rows, spec, ctx, |tag, _, v| {
                        totals[tag as usize].add(v);
                    })
                }
                None => add_selected_moments(rows, spec, ctx, totals, compact),
            },
            Self::Rows(out) if spec.range_limit.is_some() => {
                let limit = spec.range_limit.unwrap_or(usize::MAX);
                if rows.min_t > out.bound {
                    return Ok(());
                }
                for_each_selected(rows, spec, ctx, |tag, t, v| {
                    out.push_candidate(tag, t, v, limit);
                })?;
                if out.len() > spec.max_values {
                    return Err(too_large(spec.max_values));
                }
                Ok(())
            }
            Self::Rows(out) => {
                for_each_selected(rows, spec, ctx, |tag, t, v| {
                    let (tag, t) = spec.kept(tag, t);
                    out.push(tag, t, v);
                })?;
                if out.len() > spec.max_values {
                    return Err(too_large(spec.max_values));
                }
                Ok(())
            }
        }
    }

    /// Adds the rows of the `candidates` (ascending) that `part` holds in `[start, end)`, decoding only
    /// the pages that hold them. A page that fails its checksum fails the query (an internal error
    /// naming the file and offset), never a wrong answer.
    pub(super) fn scan_part(
        &mut self,
        part: &Part,
        candidates: &[SeriesId],
        spec: &ScanSpec<'_>,
        ctx: &QueryContext,
    ) -> Result<(), StoreError> {
        let meta = part.meta();
        if candidates.is_empty() || meta.max_t < spec.start || meta.min_t >= spec.end {
            return Ok(());
        }
        ctx.check()?;
        if let Self::Moments {
            totals, compact, ..
        } = self
            && spec.count_only
            && spec.interval.is_none()
            && meta.min_t >= spec.start
            && meta.max_t < spec.end
        {
            // Every row of the part is in range: the series directory has the answer, no page is read.
            // Into the compact counts when there are (8 bytes a group, where a group's moments take
            // 32: over 100 000 groups they stay in cache), folded into the totals after the task.
            match compact {
                Compact::Counts(counts) => for_each_part_series(part, candidates, |id, rows| {
                    if let Some(tag) = spec.map.get(id) {
                        counts[tag as usize] += u64::from(rows);
                    }
                }),
                _ => for_each_part_series(part, candidates, |id, rows| {
                    if let Some(tag) = spec.map.get(id) {
                        totals[tag as usize].count += u64::from(rows);
                    }
                }),
            }
            return Ok(());
        }
        if let (Self::Rows(out), Some(_)) = (&*self, spec.range_limit)
            && meta.min_t > out.bound
        {
            // Enough earlier range candidates are known: none of this part's rows can be returned.
            return Ok(());
        }
        if self.scan_part_summaries(part, candidates, spec, ctx)? {
            return Ok(());
        }
        // Without buckets, moments and percentiles read no time: over a part inside the range (no row
        // to cut by time) its timestamps are not decoded (only checksummed).
        let inside = meta.min_t >= spec.start && meta.max_t < spec.end;
        let untimed = spec.interval.is_none() && (spec.moments || spec.bucketed_rows) && inside;
        if spec.range_limit.is_none() {
            let (Some(&lo), Some(&hi)) = (candidates.first(), candidates.last()) else {
                return Ok(());
            };
            let span = part.series_ids().partition_point(|&id| id <= hi)
                - part.series_ids().partition_point(|&id| id < lo);
            // Most of the part's series in the candidates' span are selected: read its pages whole.
            if candidates.len() * 2 >= span {
                let columns = PageColumns {
                    timestamps: !untimed || spec.count_only,
                    values: !spec.count_only,
                };
                return self.scan_part_pages(part, lo..=hi, columns, inside, spec, ctx);
            }
        }
        let mut scan = part.scan(Selection::Only(candidates), spec.start..spec.end);
        if spec.count_only {
            scan = scan.timestamps_only();
        } else if untimed {
            scan = scan.values_only();
        }
        let mut since_check = 0;
        while let Some(run) = scan.next_run().map_err(StoreError::from)? {
            since_check += run.timestamps.len().max(run.values.len());
            if since_check >= CHECK_EVERY {
                ctx.check()?;
                since_check = 0;
            }
            let Some(tag) = spec.map.get(run.series) else {
                continue;
            };
            self.add_run(tag, run.timestamps, run.values, spec)?;
        }
        Ok(())
    }

    /// [`Partial::scan_part`] for a part most of whose series in the candidates' span are selected:
    /// its pages are read whole ([`Part::visit_rows`], only the `columns` the scan needs), rows of
    /// unselected series skipped through the map, and each series' rows cut to the range unless the
    /// part lies `inside` it.
    fn scan_part_pages(
        &mut self,
        part: &Part,
        ids: std::ops::RangeInclusive<SeriesId>,
        columns: PageColumns,
        inside: bool,
        spec: &ScanSpec<'_>,
        ctx: &QueryContext,
    ) -> Result<(), StoreError> {
        part.visit_rows(
            ids,
            columns,
            || ctx.check(),
            |series, timestamps, values| {
                let Some(tag) = spec.map.get(series) else {
                    return Ok(());
                };
                if inside || timestamps.is_empty() {
                    return self.add_run(tag, timestamps, values, spec);
                }
                // A piece of one series, in time order: its rows in the range are one slice.
                let a = timestamps.partition_point(|&t| t < spec.start);
                let b = timestamps.partition_point(|&t| t < spec.end);
                let values = values.get(a..b).unwrap_or_default();
                self.add_run(tag, &timestamps[a..b], values, spec)
            },
        )
    }

    /// Adds one series' rows (group or position `tag`), all in range: `timestamps` empty when not
    /// read (no time needed), `values` empty when not read (`count`).
    fn add_run(
        &mut self,
        tag: u32,
        timestamps: &[TimestampMs],
        values: &[f64],
        spec: &ScanSpec<'_>,
    ) -> Result<(), StoreError> {
        let rows = timestamps.len().max(values.len());
        let value = |i: usize| values.get(i).copied().unwrap_or(0.0);
        match self {
            Self::Moments {
                buckets: Some(buckets),
                ..
            } => buckets.add_run(tag, timestamps, values, spec.min_max()),
            Self::Moments {
                compact: Compact::Counts(counts),
                ..
            } => counts[tag as usize] += rows as u64,
            Self::Moments {
                compact: Compact::CountSums(sums),
                ..
            } => {
                let (count, sum) = &mut sums[tag as usize];
                *count += rows as u64;
                values.iter().for_each(|&v| *sum += v);
            }
            Self::Moments {
                compact: Compact::CountMaxes(maxes),
                ..
            } => {
                let slot = &mut maxes[tag as usize];
                if values.is_empty() {
                    (0..rows).for_each(|_| add_max(slot, 0.0));
                } else {
                    values.iter().for_each(|&v| add_max(slot, v));
                }
            }
            Self::Moments { totals, .. } => {
                let total = &mut totals[tag as usize];
                if values.is_empty() {
                    (0..rows).for_each(|_| total.add(0.0));
                } else {
                    values.iter().for_each(|&v| total.add(v));
                }
            }
            Self::Rows(out) if spec.range_limit.is_some() => {
                let limit = spec.range_limit.unwrap_or(usize::MAX);
                // A run is sorted by time: the rows after the bound are skipped at once.
                let cut = timestamps.partition_point(|&t| t <= out.bound);
                for (i, &t) in timestamps[..cut].iter().enumerate() {
                    out.push_candidate(tag, t, value(i), limit);
                }
            }
            Self::Rows(out) if timestamps.is_empty() => {
                // Percentiles without buckets: values only.
                for &v in values {
                    out.push(tag, 0, v);
                }
            }
            Self::Rows(out) => {
                for (i, &t) in timestamps.iter().enumerate() {
                    let (tag, t) = spec.kept(tag, t);
                    out.push(tag, t, value(i));
                }
            }
        }
        if let Self::Rows(out) = self
            && out.len() > spec.max_values
        {
            return Err(too_large(spec.max_values));
        }
        Ok(())
    }

    /// After a task's scan: compact accumulators are added to the totals (but `CountMaxes`, kept until
    /// the answer is read), and percentile rows are
    /// distributed among blocks of groups now, by the task's thread, so that the grouping in phase 3
    /// starts at its parallel pass.
    pub(super) fn end_task(&mut self, spec: &ScanSpec<'_>) {
        match self {
            Self::Moments {
                compact: Compact::CountMaxes(_),
                ..
            } => {}
            Self::Moments {
                totals, compact, ..
            } => compact.fold_into(totals),
            // Cells are grouped out of place, in one pass ([`Points::into_values_by_tag`]).
            Self::Rows(points) if spec.bucketed_rows && spec.cells.is_none() => {
                points.distribute_among_blocks(spec.groups);
            }
            Self::Rows(_) => {}
        }
    }

    /// Keeps the rows of the groups `keep` marks (rows tagged by group: a percentile without an
    /// interval); moments are left as they are.
    pub(crate) fn retain_groups(&mut self, keep: &[bool]) {
        if let Self::Rows(points) = self {
            points.retain_tags(keep.len(), |g| {
                keep.get(g as usize).copied().unwrap_or(false)
            });
        }
    }

    /// Values buffered (bounded by the query's value bound).
    pub(super) fn buffered(&self) -> usize {
        match self {
            Self::Moments { .. } => 0,
            Self::Rows(rows) => rows.len(),
        }
    }

    /// The contribution of both sources.
    pub(super) fn merge(self, other: Self) -> Self {
        match (self, other) {
            (
                Self::Moments {
                    mut totals,
                    mut buckets,
                    mut compact,
                },
                Self::Moments {
                    totals: mut t2,
                    buckets: b2,
                    compact: mut c2,
                },
            ) => {
                match (&mut compact, &mut c2) {
                    // Kept apart until the answer is read: merged pair by pair.
                    (Compact::CountMaxes(a), Compact::CountMaxes(b))
                        if totals.is_empty() && t2.is_empty() =>
                    {
                        for (a, &(count, max)) in a.iter_mut().zip(b.iter()) {
                            merge_max(a, count, max);
                        }
                    }
                    _ => {
                        // Tasks fold theirs at their end; anything left is folded here.
                        compact.fold_into(&mut totals);
                        c2.fold_into(&mut t2);
                        for (a, b) in totals.iter_mut().zip(&t2) {
                            a.merge(b);
                        }
                    }
                }
                if let (Some(buckets), Some(b2)) = (&mut buckets, b2) {
                    buckets.merge(b2);
                }
                Self::Moments {
                    totals,
                    buckets,
                    compact,
                }
            }
            (Self::Rows(a), Self::Rows(b)) => Self::Rows(a.merge(b)),
            // One plan makes one kind of partial: a mismatch cannot happen; keep the first.
            (a, _) => a,
        }
    }
}

/// Calls `f(tag, timestamp, value)` for each row of a selected series in `[start, end)`, checking the
/// deadline every `CHECK_EVERY` rows.
#[inline]
fn for_each_selected(
    rows: &Rows<'_>,
    spec: &ScanSpec<'_>,
    ctx: &QueryContext,
    mut f: impl FnMut(u32, TimestampMs, f64),
) -> Result<(), StoreError> {
    let (start, end, map) = (spec.start, spec.end, spec.map);
    // Whole chunk in range: skip the per-row time test.
    let inside = rows.min_t >= start && rows.max_t < end;
    let blocks = rows
        .series
        .chunks(CHECK_EVERY)
        .zip(rows.timestamps.chunks(CHECK_EVERY))
        .zip(rows.values.chunks(CHECK_EVERY));
    for ((series, timestamps), values) in blocks {
        ctx.check()?;
        for i in 0..series.len() {
            let t = timestamps[i];
            if !inside && (t < start || t >= end) {
                continue;
            }
            if let Some(tag) = map.get(series[i]) {
                f(tag, t, values[i]);
            }
        }
    }
    Ok(())
}

/// Up to this many groups (128 KB of moments) a head scan adds rows in one pass: measured on a quiet
/// machine, the two passes of [`add_selected_moments`] made a sum by region and status (50 groups)
/// 25 → 33 ms where they made a count or avg by customer (100 000) 38 → 25 ms.
const FEW_GROUPS: usize = 4_096;

/// Adds the selected rows of `rows` in `[start, end)` to their groups' totals (moments without
/// buckets), in blocks of [`CHECK_EVERY`] rows, checking the deadline between blocks. Each block is
/// read twice: first every row's group is looked up (loads that depend on nothing but the row, so
/// the processor keeps many of the per-query table's cache misses in flight), then the values are
/// added to the groups' totals. In one pass each row's total waited on its table load, and a row's
/// two misses in a row were most of a group-by over the head.
fn add_selected_moments(
    rows: &Rows<'_>,
    spec: &ScanSpec<'_>,
    ctx: &QueryContext,
    totals: &mut [Moments],
    compact: &mut Compact,
) -> Result<(), StoreError> {
    const NONE: u32 = u32::MAX;
    let (start, end, map) = (spec.start, spec.end, spec.map);
    let inside = rows.min_t >= start && rows.max_t < end;
    let mut tags = [NONE; CHECK_EVERY];
    let blocks = rows
        .series
        .chunks(CHECK_EVERY)
        .zip(rows.timestamps.chunks(CHECK_EVERY))
        .zip(rows.values.chunks(CHECK_EVERY));
    for ((series, timestamps), values) in blocks {
        ctx.check()?;
        let tags = &mut tags[..series.len()];
        for ((tag, &id), &t) in tags.iter_mut().zip(series).zip(timestamps) {
            *tag = if inside || (start..end).contains(&t) {
                map.get(id).unwrap_or(NONE)
            } else {
                NONE
            };
        }
        match compact {
            Compact::Counts(counts) => {
                for &tag in tags.iter().filter(|&&tag| tag != NONE) {
                    counts[tag as usize] += 1;
                }
            }
            Compact::CountSums(sums) => {
                for (&tag, &v) in tags.iter().zip(values) {
                    if tag != NONE {
                        let (count, sum) = &mut sums[tag as usize];
                        *count += 1;
                        *sum += v;
                    }
                }
            }
            Compact::CountMaxes(maxes) => {
                for (&tag, &v) in tags.iter().zip(values) {
                    if tag != NONE {
                        add_max(&mut maxes[tag as usize], v);
                    }
                }
            }
            Compact::Unused => {
                for (&tag, &v) in tags.iter().zip(values) {
                    if tag != NONE {
                        totals[tag as usize].add(v);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Calls `f(series, rows)` for the series of `part` among `candidates` (ascending), with their row counts, from the series
/// directory. When the candidates are most of the directory's span they cover (a group-by over the
/// whole metric), the span is walked in order and the caller's map drops the others: a binary search
/// per candidate, 2 M of them over a directory of 2 M, was most of a `count` by customer.
fn for_each_part_series(part: &Part, candidates: &[SeriesId], mut f: impl FnMut(SeriesId, u32)) {
    let (Some(&lo), Some(&hi)) = (candidates.first(), candidates.last()) else {
        return;
    };
    let ids = part.series_ids();
    let (first, end) = (
        ids.partition_point(|&id| id < lo),
        ids.partition_point(|&id| id <= hi),
    );
    if candidates.len() * 2 >= end - first {
        part.row_counts()
            .skip(first)
            .take(end - first)
            .for_each(|(id, rows)| f(id, rows));
    } else {
        for &id in candidates {
            if let Some(rows) = part.series_rows(id) {
                f(id, rows.end - rows.start);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn cancellation_stops_a_running_scan_within_one_block() {
        let n = 3 * CHECK_EVERY;
        let series = vec![0; n];
        let timestamps: Vec<TimestampMs> = (0..n as i64).collect();
        let values = vec![1.0; n];
        let rows = Rows {
            series: &series,
            timestamps: &timestamps,
            values: &values,
            min_t: 0,
            max_t: n as i64 - 1,
            runs: None,
        };
        let map = SeriesMap::new(&[0], &[0]);
        let spec = ScanSpec {
            start: 0,
            end: i64::MAX,
            interval: None,
            bucketed_rows: false,
            timed: true,
            moments: false,
            count_only: false,
            summary: SummaryColumns {
                sum: false,
                min: false,
                max: false,
            },
            groups: 1,
            cells: None,
            range_limit: None,
            map: &map,
            max_values: usize::MAX,
            reserve: 0,
        };
        let ctx = QueryContext::new(Duration::from_secs(10));
        let mut seen = 0;
        let outcome = for_each_selected(&rows, &spec, &ctx, |_, _, _| {
            seen += 1;
            if seen == 10 {
                ctx.cancel();
            }
        });
        assert_eq!(
            outcome,
            Err(StoreError::Timeout {
                timeout: Duration::from_secs(10)
            })
        );
        assert_eq!(seen, CHECK_EVERY);
    }

    #[test]
    fn moments_merge_as_if_added_together() {
        let (mut a, mut b, mut all) = (Moments::default(), Moments::default(), Moments::default());
        for v in [3.0, -1.0, 2.5] {
            a.add(v);
            all.add(v);
        }
        for v in [7.0, 0.25] {
            b.add(v);
            all.add(v);
        }
        let mut merged = a;
        merged.merge(&b);
        merged.merge(&Moments::default());
        assert_eq!(merged, all);
        let mut from_empty = Moments::default();
        from_empty.merge(&all);
        assert_eq!(from_empty, all);
    }
}
