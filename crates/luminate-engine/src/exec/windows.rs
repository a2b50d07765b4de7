//! Series windows (`luminate_model::window`): each selected series' points in a time window folded as
//! they are read, so that PromQL's instant selectors and range functions over a dense metric hold one
//! window per series, never the points (a 5-minute lookback over 200 000 points/s is 60 M points).
//!
//! The same three phases as a query ([`super`]): the selection under the index lock; the head's rows
//! gathered under the head lock into a run per series ([`HeadRuns`]), sorted by time after; then each part, read
//! for the selected series only, in parallel by slices of the selection. A part gives each series'
//! rows in time order, so each source folds into one window per series, and the windows of the sources
//! of one series merge when their time spans are disjoint — what a series written in time order always
//! gives. When two sources overlap in time for a series (late points flushed into a newer part than
//! later ones), that series' windows are folded again from all its points, read and sorted
//! ([`refold`]): the cost of disorder is paid by the series that have it.

use luminate_model::window::{
    Fold, GroupMoments, GroupValue, GroupedValue, Moment, OutOfOrder, SeriesWindow, WindowSteps,
    WindowValue,
};
use luminate_model::{QueryContext, StoreError, TimestampMs};
use rayon::prelude::*;

use super::head_runs::{HeadRuns, Sample};
use super::{Finish, Prepared, Source};
use crate::buffer::filled;
use crate::index::TenantIndex;
use crate::part::{Part, Selection};
use crate::record::SeriesId;

/// Windows per position in the selection and step (`slots[position × per + step]`), and the slots
/// where sources overlapped in time (those windows are folded again from their points).
#[derive(Debug, Default)]
pub(crate) struct Windows {
    pub slots: Vec<Option<SeriesWindow>>,
    per: usize,
    redo: Vec<usize>,
}

impl Windows {
    fn new(positions: usize, per: usize) -> Self {
        Self {
            slots: filled(positions * per, None),
            per,
            redo: Vec::new(),
        }
    }

    /// Folds `run` (one series' samples, ascending by time) into that series' windows (the slots
    /// from `base`) of each step whose window holds some of it.
    fn fold_run(&mut self, base: usize, steps: &WindowSteps, run: impl Run) {
        let len = run.len();
        if len == 0 {
            return;
        }
        // Windows' starts and ends ascend with the step, so each bound is searched from the one
        // before: a few probes near it, not a binary search over the whole run per window (which was
        // half of this fold's time for a counter's 3 600 samples over 61 steps).
        let (mut from, mut to) = (0, 0);
        for i in steps.touching(run.time(0), run.time(len - 1)) {
            let (start, end) = steps.window(i);
            from = run.partition_point_from(from, |t| t < start);
            to = run.partition_point_from(to.max(from), |t| t <= end);
            match window_of(&run, from, to) {
                Ok(Some(w)) => self.add(base + i, w),
                Ok(None) => {}
                Err(OutOfOrder) => self.redo.push(base + i),
            }
        }
    }

    fn add(&mut self, slot: usize, window: SeriesWindow) {
        let merged = match &self.slots[slot] {
            None => Some(window),
            Some(held) => SeriesWindow::merge(held, &window),
        };
        match merged {
            Some(w) => self.slots[slot] = Some(w),
            None => self.redo.push(slot),
        }
    }
}

/// The window of `run[from..to]`; [`OutOfOrder`] when a sample is earlier than the one before it.
/// Samples strictly ascending in time (what a series written once per timestamp gives) take the short
/// way; the first repeated or earlier timestamp hands the run to [`Fold`], which keeps the greatest
/// value of a timestamp.
fn window_of(run: &impl Run, from: usize, to: usize) -> Result<Option<SeriesWindow>, OutOfOrder> {
    if from >= to {
        return Ok(None);
    }
    let mut window = SeriesWindow::new(run.sample(from));
    for k in from + 1..to {
        let sample = run.sample(k);
        if sample.0 <= window.last.0 {
            let mut fold = Fold::default();
            for k in from..to {
                fold.push(run.sample(k))?;
            }
            return Ok(fold.finish());
        }
        window.push_later(sample);
    }
    Ok(Some(window))
}

/// One series' samples in time order: a part's two columns, or a run of the head's samples.
trait Run {
    fn len(&self) -> usize;
    fn time(&self, i: usize) -> TimestampMs;
    fn sample(&self, i: usize) -> Sample;

    /// The first index whose time fails `before` (which holds for a prefix of the run), knowing that
    /// it holds for every index below `known`.
    fn partition_point_from(&self, known: usize, before: impl Fn(TimestampMs) -> bool) -> usize {
        super::search::gallop(known, self.len(), |i| before(self.time(i)))
    }
}

impl Run for (&[TimestampMs], &[f64]) {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn time(&self, i: usize) -> TimestampMs {
        self.0[i]
    }
    fn sample(&self, i: usize) -> Sample {
        (self.0[i], self.1[i])
    }
}

impl Run for &[Sample] {
    fn len(&self) -> usize {
        <[Sample]>::len(self)
    }
    fn time(&self, i: usize) -> TimestampMs {
        self[i].0
    }
    fn sample(&self, i: usize) -> Sample {
        self[i]
    }
}

/// The selected series, by position.
pub(crate) fn selected<'a>(prepared: &'a Prepared<'_>) -> &'a [SeriesId] {
    &prepared.selection.series
}

/// Windows one slice of a grouped fold holds at most (its series × steps): with a slice per thread,
/// what [`fold_grouped`] holds besides its groups' moments, however many series × steps are selected.
pub(crate) const SLICE_WINDOWS: usize = 1 << 15;

/// The parts of `parts` holding points in `[start, end]`, each with the time it is read from (above
/// its tombstone).
fn part_sources<'a>(
    parts: &'a [Source<'a>],
    (start, end): (TimestampMs, TimestampMs),
) -> Vec<(&'a Part, TimestampMs)> {
    parts
        .iter()
        .filter_map(|s| match *s {
            Source::Part { part, floor } => {
                let from = start.max(floor.unwrap_or(TimestampMs::MIN));
                let meta = part.meta();
                (meta.max_t >= from && meta.min_t <= end && from <= end).then_some((part, from))
            }
            Source::Rows { .. } => None,
        })
        .collect()
}

/// The selection's positions cut into slices of at most `size` series: (first position, ids).
fn slices<'a>(prepared: &'a Prepared<'_>, size: usize) -> Vec<(usize, &'a [SeriesId])> {
    prepared
        .selection
        .series
        .chunks(size.max(1))
        .enumerate()
        .map(|(i, ids)| (i * size.max(1), ids))
        .collect()
}

/// What every slice of a fold reads: the selection, the head's runs, the parts in the span, the
/// steps.
struct FoldInput<'a, 'p> {
    prepared: &'a Prepared<'p>,
    head: HeadRuns,
    parts: Vec<(&'a Part, TimestampMs)>,
    steps: &'a WindowSteps,
    ctx: &'a QueryContext,
}

impl<'a, 'p> FoldInput<'a, 'p> {
    fn new(
        prepared: &'a Prepared<'p>,
        head: HeadRuns,
        parts: &'a [Source<'a>],
        steps: &'a WindowSteps,
        ctx: &'a QueryContext,
    ) -> Self {
        Self {
            prepared,
            head,
            parts: part_sources(parts, steps.span()),
            steps,
            ctx,
        }
    }

    /// The windows of the series at positions `offset..offset + ids.len()`, refolded where their
    /// sources overlapped in time.
    fn slice(&self, (offset, ids): (usize, &[SeriesId])) -> Result<Windows, StoreError> {
        let (steps, ctx, end) = (self.steps, self.ctx, self.steps.span().1);
        let mut windows = Windows::new(ids.len(), steps.count);
        for &(part, from) in &self.parts {
            ctx.check()?;
            let scan = part.scan(Selection::Only(ids), from..=end);
            super::each_run(scan, ctx, |run| {
                if let Some(slot) = self.prepared.map.get(run.series) {
                    let base = (slot as usize - offset) * steps.count;
                    windows.fold_run(base, steps, (run.timestamps, run.values));
                }
                Ok(())
            })?;
        }
        for k in 0..ids.len() {
            windows.fold_run(k * steps.count, steps, self.head.run(offset + k));
        }
        if !windows.redo.is_empty() {
            self.refold(&mut windows, offset, ids)?;
        }
        Ok(windows)
    }

    /// Folds again, from their points of every source sorted by time, the windows of a slice whose
    /// sources overlapped in time (late points flushed into a newer part than later ones, or two
    /// writers interleaving around a flush): they did not merge. Only those windows' time is read
    /// again: where a flush cut two interleaved writers' rows, every series overlaps itself for a
    /// second or two, and folding each one whole again from all its points doubled a range rate.
    fn refold(
        &self,
        windows: &mut Windows,
        offset: usize,
        ids: &[SeriesId],
    ) -> Result<(), StoreError> {
        let (steps, ctx, per) = (self.steps, self.ctx, windows.per);
        let mut redo = std::mem::take(&mut windows.redo);
        redo.sort_unstable();
        redo.dedup();
        let (lo, hi) = redo
            .iter()
            .fold((TimestampMs::MAX, TimestampMs::MIN), |(lo, hi), &slot| {
                let (start, end) = steps.window(slot % per);
                (lo.min(start), hi.max(end))
            });
        // Positions ascend with series ids, and slots with positions.
        let mut positions: Vec<usize> = redo.iter().map(|&slot| slot / per).collect();
        positions.dedup();
        let redo_ids: Vec<SeriesId> = positions.iter().map(|&p| ids[p]).collect();
        let mut points: Vec<(u32, TimestampMs, f64)> = positions
            .iter()
            .flat_map(|&p| {
                let run = self.head.run(offset + p);
                let (a, b) = (
                    run.partition_point(|s| s.0 < lo),
                    run.partition_point(|s| s.0 <= hi),
                );
                run[a..b].iter().map(move |&(t, v)| (p as u32, t, v))
            })
            .collect();
        for &(part, from) in &self.parts {
            ctx.check()?;
            let from = from.max(lo);
            if from > hi {
                continue;
            }
            let scan = part.scan(Selection::Only(&redo_ids), from..=hi);
            super::each_run(scan, ctx, |run| {
                if let Some(position) = self.prepared.map.get(run.series) {
                    let position = position - offset as u32;
                    points.extend(
                        run.timestamps
                            .iter()
                            .zip(run.values)
                            .map(|(&t, &v)| (position, t, v)),
                    );
                }
                if points.len() > super::MAX_QUERY_VALUES {
                    return Err(super::too_large(super::MAX_QUERY_VALUES));
                }
                Ok(())
            })?;
        }
        ctx.check()?;
        // Each series' points are a few sorted runs, one per source: ordered in linear time but for
        // merging the runs.
        let points = by_position(points, ids.len());
        let mut samples: Vec<Sample> = Vec::new();
        for slots in redo.chunk_by(|a, b| a / per == b / per) {
            let p = (slots[0] / per) as u32;
            let rows =
                &points[points.partition_point(|r| r.0 < p)..points.partition_point(|r| r.0 <= p)];
            samples.clear();
            samples.extend(rows.iter().map(|r| (r.1, r.2)));
            for &slot in slots {
                let (start, end) = steps.window(slot % per);
                let from = samples.partition_point(|s| s.0 < start);
                let to = samples.partition_point(|s| s.0 <= end);
                // Sorted by time: never out of order.
                let window = window_of(&samples.as_slice(), from, to);
                debug_assert!(window.is_ok());
                windows.slots[slot] = window.ok().flatten();
            }
        }
        Ok(())
    }
}

/// Folds the head's runs and every part of `parts` into one window per selected series and
/// step, in parallel on `pool` by slices of the selection.
pub(crate) fn fold(
    prepared: &Prepared<'_>,
    head: HeadRuns,
    parts: &[Source<'_>],
    steps: &WindowSteps,
    ctx: &QueryContext,
    pool: &rayon::ThreadPool,
) -> Result<Windows, StoreError> {
    let per = steps.count;
    let series = prepared.selection.series.len();
    if series == 0 {
        return Ok(Windows::new(0, per));
    }
    let input = FoldInput::new(prepared, head, parts, steps, ctx);
    let tasks = pool.current_num_threads().max(1) * 4;
    let slices = slices(prepared, series.div_ceil(tasks));
    let pieces: Vec<Windows> = pool.install(|| {
        slices
            .par_iter()
            .map(|&slice| input.slice(slice))
            .collect::<Result<_, StoreError>>()
    })?;
    let mut all = Windows::new(0, per);
    all.slots.reserve(series * per);
    for piece in pieces {
        all.slots.extend(piece.slots);
    }
    Ok(all)
}

/// Per group and step, how many of the group's series' windows gave a value at that step, and one
/// moment of those values (`counts` and `moments[group × steps + step]`; no moments for
/// [`Moment::Count`]): 12 bytes a group and step (100 000 groups × 13 steps fit the cache; four
/// moments in an `Option` each were 40 and a cache miss per line for every series added).
#[derive(Debug)]
pub(crate) struct GroupedSteps {
    /// Series that gave a value, per group and step.
    counts: Vec<u32>,
    /// Their `moment`, per group and step (meaningful where the count is not 0).
    moments: Vec<f64>,
    moment: Moment,
    steps: usize,
}

/// [`fold`] with each series' windows reduced to `value` and added to its group's moment as soon as
/// its slice is folded: slices of at most [`SLICE_WINDOWS`] windows, a wave of one per thread at a
/// time, so memory holds the groups' moments and a wave's windows, not a window per series and step
/// (2 M series × 13 steps would be 2.7 GB). Waves are added in position order, so each sum adds its
/// series in order, as one pass would.
pub(crate) fn fold_grouped(
    prepared: &Prepared<'_>,
    head: HeadRuns,
    parts: &[Source<'_>],
    steps: &WindowSteps,
    ctx: &QueryContext,
    pool: &rayon::ThreadPool,
    value: &GroupedValue,
) -> Result<GroupedSteps, StoreError> {
    let per = steps.count;
    let groups = prepared.selection.groups.count;
    let mut out = GroupedSteps {
        counts: filled(groups * per, 0),
        moments: match value.moment {
            Moment::Count => Vec::new(),
            _ => filled(groups * per, 0.0),
        },
        moment: value.moment,
        steps: per,
    };
    if prepared.selection.series.is_empty() {
        return Ok(out);
    }
    let input = FoldInput::new(prepared, head, parts, steps, ctx);
    // A slice holds at most SLICE_WINDOWS windows, and there are four slices per thread at least: a
    // range query over a few hundred series (a counter's, 61 steps) would otherwise be one slice,
    // folded by one thread while the others wait. A wave holds as many windows as a thread's slice
    // each, whatever the slices' size.
    let threads = pool.current_num_threads().max(1);
    let widest = (SLICE_WINDOWS / per).max(1);
    let size = widest.min(prepared.selection.series.len().div_ceil(threads * 4));
    let slices = slices(prepared, size);
    for wave in slices.chunks(threads * (widest / size)) {
        let pieces: Vec<Windows> = pool.install(|| {
            wave.par_iter()
                .map(|&slice| input.slice(slice))
                .collect::<Result<_, StoreError>>()
        })?;
        let pieces: Vec<(usize, Windows)> = wave.iter().map(|s| s.0).zip(pieces).collect();
        out.add(prepared, &pieces, &*value.value, pool);
    }
    Ok(out)
}

/// No groups (a metric with no series).
impl Default for GroupedSteps {
    fn default() -> Self {
        Self {
            counts: Vec::new(),
            moments: Vec::new(),
            moment: Moment::Count,
            steps: 1,
        }
    }
}

impl GroupedSteps {
    /// Adds the `value` of each window of `pieces` (each the windows of the series from a position,
    /// in order) to its group. The groups are split into one contiguous range per thread of `pool`;
    /// each thread reads every window and adds those of its groups, so each group still adds its
    /// series in order — the same sums as one thread adding them all.
    fn add(
        &mut self,
        prepared: &Prepared<'_>,
        pieces: &[(usize, Windows)],
        value: &WindowValue,
        pool: &rayon::ThreadPool,
    ) {
        let (steps, moment) = (self.steps, self.moment);
        let groups = self.counts.len() / steps.max(1);
        let per_thread = groups.div_ceil(pool.current_num_threads().max(1)).max(1);
        let group_of = &prepared.selection.group_of;
        let mut moments = self.moments.chunks_mut(per_thread * steps);
        let ranges: Vec<_> = self
            .counts
            .chunks_mut(per_thread * steps)
            .enumerate()
            .map(|(t, counts)| (t * per_thread, counts, moments.next().unwrap_or_default()))
            .collect();
        pool.install(|| {
            ranges.into_par_iter().for_each(|(first, counts, moments)| {
                let mine = first..first + counts.len() / steps;
                for (offset, windows) in pieces {
                    for (k, series) in windows.slots.chunks(steps).enumerate() {
                        let g = group_of[offset + k] as usize;
                        if !mine.contains(&g) {
                            continue;
                        }
                        let row = (g - first) * steps;
                        for (i, w) in series.iter().enumerate() {
                            let Some(v) = w.as_ref().and_then(|w| value(i, w)) else {
                                continue;
                            };
                            let count = &mut counts[row + i];
                            if let Some(held) = moments.get_mut(row + i) {
                                if *count == 0 {
                                    *held = v;
                                } else {
                                    moment.add(held, v);
                                }
                            }
                            *count += 1;
                        }
                    }
                }
            });
        });
    }

    /// Group `g`'s values at each step (`None` where no series gave one).
    fn of(&self, g: usize) -> Vec<Option<GroupValue>> {
        let row = g * self.steps..(g + 1) * self.steps;
        self.counts[row.clone()]
            .iter()
            .zip(row)
            .map(|(&count, at)| {
                (count > 0).then(|| GroupValue {
                    count: u64::from(count),
                    value: self.moments.get(at).copied().unwrap_or(0.0),
                })
            })
            .collect()
    }

    /// Whether some series of group `g` gave a value at some step.
    fn present(&self, g: usize) -> bool {
        self.counts[g * self.steps..(g + 1) * self.steps]
            .iter()
            .any(|&c| c > 0)
    }
}

/// Points of a slice's refolded series ordered by position, then time: a stable counting sort by
/// position (linear), then a stable sort of each run not in time order (it merges the sorted runs of
/// the sources rather than sorting again).
fn by_position(
    rows: Vec<(u32, TimestampMs, f64)>,
    positions: usize,
) -> Vec<(u32, TimestampMs, f64)> {
    let mut starts = filled(positions + 1, 0usize);
    for r in &rows {
        starts[r.0 as usize + 1] += 1;
    }
    for p in 0..positions {
        starts[p + 1] += starts[p];
    }
    let mut next = starts.clone();
    let mut out = filled(rows.len(), (0u32, 0, 0.0));
    for r in rows {
        let at = &mut next[r.0 as usize];
        out[*at] = r;
        *at += 1;
    }
    for w in starts.windows(2) {
        out[w[0]..w[1]].sort_by_key(|r| r.1);
    }
    out
}

/// Per group of the plan's `group_by` (ordered by key), its moments at each step; groups where no
/// series gave a value are left out.
pub(crate) fn group(
    prepared: &Prepared<'_>,
    grouped: GroupedSteps,
    ti: Option<&TenantIndex>,
    pool: &rayon::ThreadPool,
) -> Vec<GroupMoments> {
    let selection = &prepared.selection;
    let out = Finish {
        plan: prepared.plan,
        selection,
        cells: None,
        ti,
        pool,
    };
    let groups: Vec<u32> = (0..selection.groups.count as u32)
        .filter(|&g| grouped.present(g as usize))
        .collect();
    // Each group's values resolved once, `width` to a group: a comparison in the sort resolved both
    // groups' values again (100 000 customers: over 3 M lookups in the strings).
    let width = prepared.plan.group_by.len();
    let values: Vec<&str> = groups
        .iter()
        .flat_map(|&g| selection.groups.of(g).iter().map(|&v| out.value(v)))
        .collect();
    let key = |i: usize| &values[i * width..(i + 1) * width];
    let mut order: Vec<usize> = (0..groups.len()).collect();
    pool.install(|| {
        // Byte-wise by values (the contract's group order); ties, if any, in the groups' order.
        order.par_sort_unstable_by(|&a, &b| key(a).cmp(key(b)).then(a.cmp(&b)));
        order
            .par_iter()
            .map(|&i| {
                let g = groups[i] as usize;
                (
                    prepared
                        .plan
                        .group_by
                        .iter()
                        .zip(key(i))
                        .map(|(k, v)| (k.clone(), (*v).to_owned()))
                        .collect(),
                    grouped.of(g),
                )
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `window_of` over every sub-range of `samples` against a fold of the same samples.
    fn check(samples: &[Sample]) {
        for from in 0..=samples.len() {
            for to in from..=samples.len() {
                let mut fold = Fold::default();
                let want = samples[from..to]
                    .iter()
                    .try_for_each(|&s| fold.push(s))
                    .map(|()| fold.finish());
                // Compared as text: a NaN sample equals itself there.
                let got = window_of(&samples, from, to);
                assert_eq!(format!("{got:?}"), format!("{want:?}"), "{from}..{to}");
            }
        }
    }

    #[test]
    fn a_bound_searched_from_a_known_prefix_equals_the_whole_runs_partition_point() {
        // Times with repeats and gaps.
        let times: Vec<TimestampMs> = (0..300).map(|i| (i / 3) * 7 + (i % 5)).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        let values = vec![0.0; sorted.len()];
        let run = (sorted.as_slice(), values.as_slice());
        for cut in -5..sorted[sorted.len() - 1] + 5 {
            let want = sorted.partition_point(|&t| t < cut);
            for known in 0..=want {
                assert_eq!(
                    run.partition_point_from(known, |t| t < cut),
                    want,
                    "{cut} {known}"
                );
            }
        }
        let empty: (&[TimestampMs], &[f64]) = (&[], &[]);
        assert_eq!(empty.partition_point_from(0, |t| t < 10), 0);
    }

    #[test]
    fn the_short_way_for_ascending_samples_equals_the_fold() {
        // Strictly ascending, with a counter reset and a NaN (replaced by the next value in min/max).
        check(&[(10, 5.0), (20, f64::NAN), (30, 2.0), (40, 3.0), (50, 1.0)]);
        // A repeated timestamp (the greater value counts) hands the run to the fold.
        check(&[(10, 5.0), (20, 8.0), (20, 9.0), (30, 1.0)]);
        // An earlier one is out of order.
        check(&[(10, 5.0), (30, 8.0), (20, 9.0)]);
        assert_eq!(
            window_of(&[(10, 5.0), (30, 8.0), (20, 9.0)].as_slice(), 0, 3),
            Err(OutOfOrder)
        );
        check(&[(7, 1.0)]);
    }
}
