//! Series windows (`luminate_model::window`): each selected series' points in a time window folded as
//! they are read, so that PromQL's instant selectors and range functions over a dense metric hold one
//! window per series, never the points (a 5-minute lookback over 200 000 points/s is 60 M points).
//!
//! The same three phases as a query ([`super`]): the selection under the index lock; the head's rows
//! copied under the head lock (a bounded buffer) and sorted by series and time; then each part, read
//! for the selected series only, in parallel by slices of the selection. A part gives each series'
//! rows in time order, so each source folds into one window per series, and the windows of the sources
//! of one series merge when their time spans are disjoint — what a series written in time order always
//! gives. When two sources overlap in time for a series (late points flushed into a newer part than
//! later ones), that series' windows are folded again from all its points, read and sorted
//! ([`refold`]): the cost of disorder is paid by the series that have it.

use luminate_model::window::{
    Fold, GroupMoments, SeriesWindow, ValueMoments, WindowSteps, WindowValue,
};
use luminate_model::{QueryContext, StoreError, TimestampMs};
use rayon::prelude::*;

use super::{CHECK_EVERY, Finish, Prepared, Source};
use crate::head::Rows;
use crate::index::TenantIndex;
use crate::part::{Part, Selection};
use crate::record::SeriesId;

/// Windows per position in the selection and step (`slots[position × per + step]`), and the
/// positions whose sources overlapped in time (their windows are folded again from their points).
#[derive(Debug, Default)]
pub(crate) struct Windows {
    pub slots: Vec<Option<SeriesWindow>>,
    per: usize,
    redo: Vec<usize>,
}

impl Windows {
    fn new(positions: usize, per: usize) -> Self {
        Self {
            slots: vec![None; positions * per],
            per,
            redo: Vec::new(),
        }
    }

    /// Folds `run` (one series' samples, ascending by time) into that series' windows (the slots
    /// from `base`) of each step whose window holds some of it.
    fn fold_run(
        &mut self,
        base: usize,
        steps: &WindowSteps,
        times: &[TimestampMs],
        values: &[f64],
    ) {
        let (Some(&lo), Some(&hi)) = (times.first(), times.last()) else {
            return;
        };
        for i in steps.touching(lo, hi) {
            let (start, end) = steps.window(i);
            let from = times.partition_point(|&t| t < start);
            let to = times.partition_point(|&t| t <= end);
            let mut fold = Fold::default();
            for k in from..to {
                if fold.push((times[k], values[k])).is_err() {
                    self.redo.push(base / self.per);
                }
            }
            if let Some(w) = fold.finish() {
                self.add(base + i, w);
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
            None => self.redo.push(slot / self.per),
        }
    }
}

/// The selected series, by position.
pub(crate) fn selected<'a>(prepared: &'a Prepared<'_>) -> &'a [SeriesId] {
    &prepared.selection.series
}

/// The selected head rows in `[start, end]` (inclusive) of `rows`, as (position, timestamp, value).
pub(crate) fn copy_rows(
    prepared: &Prepared<'_>,
    rows: &Rows<'_>,
    floor: Option<TimestampMs>,
    (start, end): (TimestampMs, TimestampMs),
    ctx: &QueryContext,
    out: &mut Vec<(u32, TimestampMs, f64)>,
) -> Result<(), StoreError> {
    let start = start.max(floor.unwrap_or(TimestampMs::MIN));
    if rows.series.is_empty() || rows.max_t < start || rows.min_t > end {
        return Ok(());
    }
    for (i, &id) in rows.series.iter().enumerate() {
        if i % CHECK_EVERY == 0 {
            ctx.check()?;
        }
        let t = rows.timestamps[i];
        if t < start || t > end {
            continue;
        }
        if let Some(slot) = prepared.map.get(id) {
            out.push((slot, t, rows.values[i]));
        }
    }
    Ok(())
}

/// Folds the copied head rows and every part of `parts` into one window per selected series and
/// step, in parallel on `pool` by slices of the selection.
pub(crate) fn fold(
    prepared: &Prepared<'_>,
    head: Vec<(u32, TimestampMs, f64)>,
    parts: &[Source<'_>],
    steps: &WindowSteps,
    ctx: &QueryContext,
    pool: &rayon::ThreadPool,
) -> Result<Windows, StoreError> {
    let (start, end) = steps.span();
    let per = steps.count;
    let series = &prepared.selection.series;
    if series.is_empty() {
        return Ok(Windows::new(0, per));
    }
    let head = by_position(head, series.len());
    let parts: Vec<(&Part, TimestampMs)> = parts
        .iter()
        .filter_map(|s| match *s {
            Source::Part { part, floor } => {
                let from = start.max(floor.unwrap_or(TimestampMs::MIN));
                let meta = part.meta();
                (meta.max_t >= from && meta.min_t <= end && from <= end).then_some((part, from))
            }
            Source::Rows { .. } => None,
        })
        .collect();
    let tasks = pool.current_num_threads().max(1) * 4;
    let size = series.len().div_ceil(tasks).max(1);
    let slices: Vec<(usize, &[SeriesId])> = series
        .chunks(size)
        .enumerate()
        .map(|(i, ids)| (i * size, ids))
        .collect();
    let fold_slice = |&(offset, ids): &(usize, &[SeriesId])| -> Result<Windows, StoreError> {
        let mut windows = Windows::new(ids.len(), per);
        for &(part, from) in &parts {
            ctx.check()?;
            let scan = part.scan(Selection::Only(ids), from..=end);
            super::each_run(scan, ctx, |run| {
                if let Some(slot) = prepared.map.get(run.series) {
                    let base = (slot as usize - offset) * per;
                    windows.fold_run(base, steps, run.timestamps, run.values);
                }
                Ok(())
            })?;
        }
        // The head's rows of this slice, sorted by position and time.
        let lo = head.partition_point(|r| (r.0 as usize) < offset);
        let hi = head.partition_point(|r| (r.0 as usize) < offset + ids.len());
        for rows in head[lo..hi].chunk_by(|a, b| a.0 == b.0) {
            let times: Vec<TimestampMs> = rows.iter().map(|r| r.1).collect();
            let values: Vec<f64> = rows.iter().map(|r| r.2).collect();
            windows.fold_run((rows[0].0 as usize - offset) * per, steps, &times, &values);
        }
        Ok(windows)
    };
    let pieces: Vec<(usize, Windows)> = pool.install(|| {
        slices
            .par_iter()
            .map(|slice| Ok((slice.0, fold_slice(slice)?)))
            .collect::<Result<_, StoreError>>()
    })?;
    let mut all = Windows::new(0, per);
    all.slots.reserve(series.len() * per);
    for (offset, piece) in pieces {
        all.slots.extend(piece.slots);
        all.redo.extend(piece.redo.into_iter().map(|p| p + offset));
    }
    if !all.redo.is_empty() {
        refold(prepared, &mut all, &head, &parts, steps, ctx)?;
    }
    Ok(all)
}

/// Folds again, from all their points sorted by time, the series whose sources overlapped in time
/// (late points flushed into a newer part than later ones): their windows from the sources did not
/// merge.
fn refold(
    prepared: &Prepared<'_>,
    windows: &mut Windows,
    head: &[(u32, TimestampMs, f64)],
    parts: &[(&Part, TimestampMs)],
    steps: &WindowSteps,
    ctx: &QueryContext,
) -> Result<(), StoreError> {
    let end = steps.span().1;
    windows.redo.sort_unstable();
    windows.redo.dedup();
    let redo = std::mem::take(&mut windows.redo);
    // Positions ascend with series ids.
    let ids: Vec<SeriesId> = redo.iter().map(|&p| prepared.selection.series[p]).collect();
    let mut points: Vec<(u32, TimestampMs, f64)> = head
        .iter()
        .filter(|r| redo.binary_search(&(r.0 as usize)).is_ok())
        .copied()
        .collect();
    for &(part, from) in parts {
        ctx.check()?;
        let scan = part.scan(Selection::Only(&ids), from..=end);
        super::each_run(scan, ctx, |run| {
            if let Some(position) = prepared.map.get(run.series) {
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
    let points = by_position(points, prepared.selection.series.len());
    let per = windows.per;
    for rows in points.chunk_by(|a, b| a.0 == b.0) {
        let base = rows[0].0 as usize * per;
        windows.slots[base..base + per].fill(None);
        let times: Vec<TimestampMs> = rows.iter().map(|r| r.1).collect();
        let values: Vec<f64> = rows.iter().map(|r| r.2).collect();
        windows.fold_run(base, steps, &times, &values);
    }
    debug_assert!(windows.redo.is_empty());
    Ok(())
}

/// Head rows ordered by position, then time: a stable counting sort by position (linear: a series'
/// rows come in arrival order, which is time order when it is written in order), then a sort of the
/// runs that are not in time order.
fn by_position(
    rows: Vec<(u32, TimestampMs, f64)>,
    positions: usize,
) -> Vec<(u32, TimestampMs, f64)> {
    let mut starts = vec![0usize; positions + 1];
    for r in &rows {
        starts[r.0 as usize + 1] += 1;
    }
    for p in 0..positions {
        starts[p + 1] += starts[p];
    }
    let mut next = starts.clone();
    let mut out = vec![(0u32, 0, 0.0); rows.len()];
    for r in rows {
        let at = &mut next[r.0 as usize];
        out[*at] = r;
        *at += 1;
    }
    for w in starts.windows(2) {
        let run = &mut out[w[0]..w[1]];
        if !run.is_sorted_by_key(|r| r.1) {
            run.sort_by_key(|r| r.1);
        }
    }
    out
}

/// Per group of the plan's `group_by` (ordered by key), the moments of `value` over its series'
/// windows at each step, added in series order; groups where no series gave a value are left out.
pub(crate) fn group(
    prepared: &Prepared<'_>,
    windows: &Windows,
    steps: usize,
    ti: Option<&TenantIndex>,
    pool: &rayon::ThreadPool,
    value: &WindowValue,
) -> Vec<GroupMoments> {
    let selection = &prepared.selection;
    let mut moments: Vec<Option<ValueMoments>> = vec![None; selection.groups.count * steps];
    let mut present = vec![false; selection.groups.count];
    for (k, w) in windows.slots.iter().enumerate() {
        let (slot, i) = (k / steps, k % steps);
        let Some(v) = w.as_ref().and_then(|w| value(i, w)) else {
            continue;
        };
        let g = selection.group_of[slot] as usize;
        present[g] = true;
        match &mut moments[g * steps + i] {
            Some(m) => m.add(v),
            held @ None => *held = Some(ValueMoments::new(v)),
        }
    }
    let out = Finish {
        plan: prepared.plan,
        selection,
        ti,
        pool,
    };
    let mut groups: Vec<u32> = (0..selection.groups.count as u32)
        .filter(|&g| present[g as usize])
        .collect();
    groups.sort_by(|&a, &b| out.cmp_groups(a, b));
    groups
        .into_iter()
        .map(|g| {
            let g = g as usize;
            (
                out.key(g as u32).0,
                moments[g * steps..(g + 1) * steps].to_vec(),
            )
        })
        .collect()
}
