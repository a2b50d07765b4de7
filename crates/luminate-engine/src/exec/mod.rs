//! exec: query execution over the index and the head's columns, with the exact semantics of CONTRACT §4
//! (the answers of `luminate_model::reference`). Knows nothing of how the head is filled or persisted.
//!
//! A query runs in three phases, so the engine holds each lock only as long as it needs it:
//! 1. [`prepare`] (index lock): filters → selected series through the postings; each selected series →
//!    its group, once; a per-query table from series id to group (or position). Only ids are kept.
//! 2. [`scan_sources`]: each source of rows — a chunk of the active head (under the head lock), of the
//!    frozen head, or a part (from the query's snapshot, after the lock is released) — is scanned once
//!    into a [`Partial`], sources in parallel on the engine's pool, and the partials are merged. A part
//!    is read for the selected series only (`Selection::Only`) and the query's range above its
//!    tombstone; `count` over a part inside the range reads its series directory, no page.
//! 3. [`finish`] (index lock again, for strings): the merged partial becomes the answer; group keys and
//!    dimensions are built only for what is returned.
//!
//! Scans check the query's deadline every [`CHECK_EVERY`] rows, so a timeout stops the work. Memory per
//! query is bounded by [`MAX_QUERY_VALUES`]: the points a range, percentile, integral or rate query
//! buffers may not exceed it (the number of groups computed is not limited, per the contract). Before a
//! query runs, [`estimate`] tells from the index and the sources' headers how much it will hold, for the
//! server's budget of all queries together.

mod aggregate;
pub(crate) mod bounds;
pub(crate) mod estimate;
mod grid;
pub(crate) mod head_runs;
mod partial;
mod points;
mod range;
mod rate;
mod search;
mod select;
pub(crate) mod windows;

use std::cmp::Ordering;

use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::result::GroupKey;
use luminate_model::{QueryContext, QueryPlan, QueryResult, StoreError, TimestampMs};
use rayon::prelude::*;

use crate::head::Rows;
use crate::index::{MetricId, StrId, TenantIndex};
use crate::part::Part;
use crate::record::SeriesId;
use grid::{BucketGrid, Cells};
pub(crate) use partial::Partial;
use partial::{ScanSpec, uses_moments};
use select::{MISSING, Selection, SeriesMap};

/// Most values one query may buffer (range candidates, percentile inputs, integral and rate points).
pub(crate) const MAX_QUERY_VALUES: usize = 50_000_000;
/// Most points a query's buffer is sized for before it knows how many it gets (16 Mi: 320 MiB of
/// address space for timed points).
const MAX_RESERVE: usize = 1 << 24;
/// Rows scanned between two deadline checks.
const CHECK_EVERY: usize = 4096;
/// Below this many rows a query scans on the calling thread: splitting would cost more than it saves.
const PARALLEL_ROWS: usize = 1 << 17;
/// Most (group, bucket) cells a percentile query tags its rows with (see [`Prepared::cells`]): their
/// starts take 8 bytes each when the rows are grouped.
const MAX_CELLS: usize = 1 << 22;

/// What phase 1 took from the index: ids only, valid after the lock is released (ids never change).
#[derive(Debug)]
pub(crate) struct Prepared<'p> {
    plan: &'p QueryPlan,
    selection: Selection,
    map: SeriesMap,
    /// Stored points of the selected series when the index was read (a bound, not an exact count of
    /// what lies in the range): a range whose series hold no more than its limit cannot stop early;
    /// buffers are sized from it. 0 for moments, which buffer nothing.
    stored_points: u64,
}

impl Prepared<'_> {
    /// The metric whose rows the scan needs (`None`: the metric is unknown, nothing to scan).
    pub(crate) fn metric(&self) -> Option<MetricId> {
        self.selection.metric
    }

    /// Percentiles with an interval tag each row they buffer with its (group, bucket) cell, when the
    /// cells are at most [`MAX_CELLS`] and not far more than the points: the rows then keep no time
    /// (12 bytes a point instead of 20), and grouping them by cell leaves each bucket's values
    /// together, where grouping by group left each group's to be gathered again by bucket.
    fn cells(&self) -> Option<Cells> {
        let QueryKind::Aggregate(agg) = self.plan.kind else {
            return None;
        };
        agg.percentile()?;
        let grid = BucketGrid::for_range(self.plan.start, self.plan.end, self.plan.interval_ms?)?;
        let cells = Cells { grid };
        let tags = cells.tags(self.selection.groups.count)?;
        let few = tags <= MAX_CELLS
            && tags as u64 <= self.stored_points.saturating_mul(4).saturating_add(4096);
        few.then_some(cells)
    }

    fn spec(&self, max_values: usize) -> ScanSpec<'_> {
        let moments = uses_moments(self.plan.kind);
        let bucketed_rows =
            matches!(self.plan.kind, QueryKind::Aggregate(a) if a.percentile().is_some());
        let cells = self.cells();
        ScanSpec {
            start: self.plan.start,
            end: self.plan.end,
            interval: self.plan.interval_ms,
            bucketed_rows,
            timed: !bucketed_rows || (self.plan.interval_ms.is_some() && cells.is_none()),
            cells,
            moments,
            count_only: self.plan.kind == QueryKind::Aggregate(Aggregation::Count),
            summary: summary_columns(self.plan.kind),
            groups: self.selection.groups.count,
            range_limit: (self.plan.kind == QueryKind::Range).then_some(self.plan.limit),
            map: &self.map,
            max_values,
            // Ranges keep about their limit; the others every point of their series in the range, at
            // most what the series store (a bound that ignores the time range, hence the cap).
            reserve: if moments || self.plan.kind == QueryKind::Range {
                0
            } else {
                usize::try_from(self.stored_points)
                    .unwrap_or(usize::MAX)
                    .min(max_values)
                    .min(MAX_RESERVE)
            },
        }
    }
}

/// The block summary columns a plan's moments read (counts always).
fn summary_columns(kind: QueryKind) -> crate::part::SummaryColumns {
    let agg = match kind {
        QueryKind::Aggregate(agg) => Some(agg),
        _ => None,
    };
    crate::part::SummaryColumns {
        sum: matches!(agg, Some(Aggregation::Sum | Aggregation::Avg)),
        min: agg == Some(Aggregation::Min),
        max: agg == Some(Aggregation::Max),
    }
}

/// The series of metric `m` that hold points and match every filter, ascending: a query's selection
/// without its groups (what an export reads).
pub(crate) fn matching_series(
    ti: &TenantIndex,
    m: MetricId,
    filters: &[luminate_model::Filter],
) -> Vec<SeriesId> {
    select::matching(ti, m, filters)
}

/// Phase 1: resolves the plan's filters and groups against the tenant's index (grouping in parallel on
/// `pool`).
pub(crate) fn prepare<'p>(
    ti: Option<&TenantIndex>,
    plan: &'p QueryPlan,
    ctx: &QueryContext,
    pool: &rayon::ThreadPool,
) -> Result<Prepared<'p>, StoreError> {
    ctx.check()?;
    let mut selection = select::select(ti, &plan.metric, &plan.filters, &plan.group_by, pool);
    // Moments and percentiles accumulate per group; the others need each series' own points.
    let by_group = matches!(plan.kind, QueryKind::Aggregate(a) if a != Aggregation::Integral);
    let map = if by_group {
        SeriesMap::from_owned(&selection.series, std::mem::take(&mut selection.group_of))
    } else {
        let positions: Vec<u32> = (0..selection.series.len() as u32).collect();
        SeriesMap::new(&selection.series, &positions)
    };
    let stored_points = match (ti, selection.metric) {
        // Moments buffer no points: the count is not read (a cache miss per selected series).
        _ if uses_moments(plan.kind) => 0,
        // Every live series of the metric: the metric's count is their sum.
        (Some(ti), Some(m)) if plan.filters.is_empty() => ti.metric(m).points,
        (Some(ti), _) => selection
            .series
            .iter()
            .map(|&id| ti.series_points(id))
            .sum(),
        (None, _) => 0,
    };
    Ok(Prepared {
        plan,
        stored_points,
        selection,
        map,
    })
}

/// One source of rows a query scans.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// A chunk of the active or the frozen head.
    Rows {
        /// The rows.
        rows: Rows<'a>,
        /// Tombstone: rows with a timestamp below it are deleted.
        floor: Option<TimestampMs>,
    },
    /// A part.
    Part {
        /// The part.
        part: &'a Part,
        /// Tombstone: rows with a timestamp below it are deleted.
        floor: Option<TimestampMs>,
    },
}

impl Source<'_> {
    /// Rows the source may contribute: the unit of work split among threads.
    fn weight(&self) -> usize {
        match self {
            Self::Rows { rows, .. } => rows.series.len(),
            Self::Part { part, .. } => part.meta().rows as usize,
        }
    }

    /// No row is older.
    fn min_t(&self) -> TimestampMs {
        match self {
            Self::Rows { rows, .. } => rows.min_t,
            Self::Part { part, .. } => part.meta().min_t,
        }
    }

    /// True when some row may fall in `[start, end)` above the tombstone.
    fn overlaps(&self, spec: &ScanSpec<'_>) -> bool {
        let (min_t, max_t, floor) = match self {
            Self::Rows { rows, floor } => (rows.min_t, rows.max_t, *floor),
            Self::Part { part, floor } => (part.meta().min_t, part.meta().max_t, *floor),
        };
        let start = spec.start.max(floor.unwrap_or(TimestampMs::MIN));
        self.weight() > 0 && max_t >= start && min_t < spec.end && start < spec.end
    }
}

/// Phase 2 over head rows only (tests; see [`scan_sources`]).
#[cfg(test)]
pub(crate) fn scan(
    prepared: &Prepared<'_>,
    sources: &[Rows<'_>],
    ctx: &QueryContext,
    max_values: usize,
    pool: &rayon::ThreadPool,
) -> Result<Partial, StoreError> {
    let sources: Vec<Source<'_>> = sources
        .iter()
        .map(|&rows| Source::Rows { rows, floor: None })
        .collect();
    scan_sources(prepared, &sources, ctx, max_values, pool)
}

/// Phase 2: scans every source into one merged partial, in parallel on `pool` when there is enough work.
pub(crate) fn scan_sources(
    prepared: &Prepared<'_>,
    sources: &[Source<'_>],
    ctx: &QueryContext,
    max_values: usize,
    pool: &rayon::ThreadPool,
) -> Result<Partial, StoreError> {
    let spec = prepared.spec(max_values);
    let mut sources: Vec<&Source<'_>> = sources.iter().filter(|s| s.overlaps(&spec)).collect();
    let rows: usize = sources.iter().map(|s| s.weight()).sum();
    let tasks = if prepared.selection.series.is_empty() {
        1
    } else if spec
        .range_limit
        .is_some_and(|limit| prepared.stored_points > limit as u64)
    {
        // Range: one task over the sources in time order, so that once `limit` earlier candidates are
        // known every later source is skipped unread (the first part usually settles it). A range
        // whose series hold no more points than its limit reads everything anyway: it runs in
        // parallel like the others.
        sources.sort_by_key(|s| s.min_t());
        1
    } else {
        (rows / PARALLEL_ROWS).clamp(1, pool.current_num_threads())
    };
    let candidates = &prepared.selection.series;
    // Units of work: a head chunk, or a part restricted to a slice of the candidates. A part much
    // larger than a task's share is split by candidates (its series directory is ordered by id), so a
    // metric held in one or two big parts still keeps every thread busy.
    let per_task = rows.div_ceil(tasks).max(1);
    let mut units: Vec<(&Source<'_>, &[SeriesId], usize)> = Vec::with_capacity(sources.len());
    for &source in &sources {
        let weight = source.weight();
        match source {
            Source::Part { .. } if tasks > 1 && weight > per_task && candidates.len() > 1 => {
                let pieces = weight.div_ceil(per_task).min(candidates.len());
                let size = candidates.len().div_ceil(pieces);
                for piece in candidates.chunks(size) {
                    units.push((source, piece, weight * piece.len() / candidates.len()));
                }
            }
            _ => units.push((source, candidates, weight)),
        }
    }
    let scan_task = |task: &[(&Source<'_>, &[SeriesId], usize)]| -> Result<Partial, StoreError> {
        let mut partial = Partial::empty(&spec);
        if candidates.is_empty() {
            return Ok(partial);
        }
        for &(source, candidates, _) in task {
            match *source {
                Source::Rows { rows, floor } => {
                    let spec = with_floor(&spec, floor);
                    partial.scan(&rows, &spec, ctx)?;
                }
                Source::Part { part, floor } => {
                    let spec = with_floor(&spec, floor);
                    partial.scan_part(part, candidates, &spec, ctx)?;
                }
            }
        }
        partial.end_task(&spec);
        Ok(partial)
    };
    if tasks <= 1 {
        return scan_task(&units);
    }
    // Contiguous runs of units with about the same number of rows, one task each.
    let mut runs: Vec<&[(&Source<'_>, &[SeriesId], usize)]> = Vec::with_capacity(tasks + 1);
    let (mut begin, mut acc) = (0, 0);
    for (i, unit) in units.iter().enumerate() {
        acc += unit.2;
        if acc >= per_task {
            runs.push(&units[begin..=i]);
            (begin, acc) = (i + 1, 0);
        }
    }
    if begin < units.len() {
        runs.push(&units[begin..]);
    }
    let partials: Vec<Partial> = pool.install(|| {
        runs.par_iter()
            .map(|run| scan_task(run))
            .collect::<Result<_, _>>()
    })?;
    let merged = partials
        .into_iter()
        .reduce(Partial::merge)
        .unwrap_or_else(|| Partial::empty(&spec));
    if merged.buffered() > max_values {
        return Err(too_large(max_values));
    }
    Ok(merged)
}

/// The partials of two scans of disjoint sources as one.
pub(crate) fn merge(a: Partial, b: Partial, max_values: usize) -> Result<Partial, StoreError> {
    let merged = a.merge(b);
    if merged.buffered() > max_values {
        return Err(too_large(max_values));
    }
    Ok(merged)
}

/// `spec` restricted to rows at or above a tombstone.
fn with_floor<'a>(spec: &ScanSpec<'a>, floor: Option<TimestampMs>) -> ScanSpec<'a> {
    ScanSpec {
        start: spec.start.max(floor.unwrap_or(TimestampMs::MIN)),
        ..*spec
    }
}

/// Phase 3: the answer from the merged partial; `ti` resolves the strings of what is returned.
pub(crate) fn finish(
    prepared: &Prepared<'_>,
    partial: Partial,
    ti: Option<&TenantIndex>,
    ctx: &QueryContext,
    max_values: usize,
    pool: &rayon::ThreadPool,
) -> Result<QueryResult, StoreError> {
    ctx.check()?;
    if partial.buffered() > max_values {
        return Err(too_large(max_values));
    }
    let out = Finish {
        plan: prepared.plan,
        selection: &prepared.selection,
        cells: prepared.cells(),
        ti,
        pool,
    };
    Ok(match prepared.plan.kind {
        QueryKind::Range => range::finish(&out, partial),
        QueryKind::Aggregate(agg) => aggregate::finish(&out, agg, partial),
        QueryKind::Rate => rate::finish(&out, partial),
    })
}

/// Runs a whole query over `sources` (tests, and the engine when it needs no lock juggling).
#[cfg(test)]
pub(crate) fn run(
    ti: Option<&TenantIndex>,
    sources: &[Rows<'_>],
    plan: &QueryPlan,
    ctx: &QueryContext,
    max_values: usize,
    pool: &rayon::ThreadPool,
) -> Result<QueryResult, StoreError> {
    let prepared = prepare(ti, plan, ctx, pool)?;
    let partial = scan(&prepared, sources, ctx, max_values, pool)?;
    finish(&prepared, partial, ti, ctx, max_values, pool)
}

/// What phase 3 reads: the plan, the selection, and the index for strings.
struct Finish<'a> {
    plan: &'a QueryPlan,
    selection: &'a Selection,
    /// Percentile rows are tagged by (group, bucket) cell ([`Prepared::cells`]).
    cells: Option<Cells>,
    ti: Option<&'a TenantIndex>,
    /// Grouping, selection and per-series sorting run on the engine's pool.
    pool: &'a rayon::ThreadPool,
}

impl Finish<'_> {
    /// The string of a group value (`""` for a missing key).
    fn value(&self, id: StrId) -> &str {
        match self.ti {
            Some(ti) if id != MISSING => ti.strings().resolve(id),
            _ => "",
        }
    }

    /// Orders two groups by their values, byte-wise (the contract's group order).
    fn cmp_groups(&self, a: u32, b: u32) -> Ordering {
        let groups = &self.selection.groups;
        groups
            .of(a)
            .iter()
            .map(|&v| self.value(v).as_bytes())
            .cmp(groups.of(b).iter().map(|&v| self.value(v).as_bytes()))
    }

    /// The key of group `g`, with its strings.
    fn key(&self, g: u32) -> GroupKey {
        GroupKey(
            self.plan
                .group_by
                .iter()
                .zip(self.selection.groups.of(g))
                .map(|(k, &v)| (k.clone(), self.value(v).to_owned()))
                .collect(),
        )
    }
}

/// Calls `visit` with each run `scan` yields, checking the query's deadline every [`CHECK_EVERY`] rows.
pub(crate) fn each_run(
    mut scan: crate::part::SeriesScan<'_>,
    ctx: &QueryContext,
    mut visit: impl FnMut(crate::part::Run<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut since_check = 0;
    while let Some(run) = scan.next_run().map_err(StoreError::from)? {
        since_check += run.timestamps.len();
        if since_check >= CHECK_EVERY {
            ctx.check()?;
            since_check = 0;
        }
        visit(run)?;
    }
    Ok(())
}

/// `QueryTooLarge` for a query that would buffer more than `max_values`.
fn too_large(max_values: usize) -> StoreError {
    StoreError::QueryTooLarge {
        message: format!(
            "query would buffer more than {max_values} values (the embedded engine's per-query memory bound); \
             narrow the time range or add filters"
        ),
    }
}

#[cfg(test)]
mod tests;
