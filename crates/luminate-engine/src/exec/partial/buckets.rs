//! The moments of each (group, bucket) of an aggregation with an interval: a dense grid when the
//! query's groups times its buckets are few, a hash map otherwise. A dashboard's timeseries panel
//! (tens of groups, a few hundred buckets) adds every row to one cell: an index into the grid where
//! a hash map hashed and probed the (group, bucket) key per row.

use hashbrown::HashMap;
use luminate_model::TimestampMs;
use luminate_model::semantics::bucket_start;

use super::super::grid::BucketGrid;
use super::{Moments, ScanSpec};
use crate::buffer::filled;

/// Most cells of a dense grid: 2 MiB of moments per scan task.
const DENSE_CELLS: usize = 1 << 16;

/// Moments per (group tag, bucket start).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BucketMoments {
    /// Cell `tag × slots + slot`; cells without rows have a count of 0.
    Dense {
        grid: BucketGrid,
        cells: Vec<Moments>,
    },
    /// Keyed by (tag, bucket start).
    Sparse {
        interval: i64,
        map: HashMap<(u32, TimestampMs), Moments>,
    },
}

impl BucketMoments {
    /// Empty, dense when the spec's groups times the buckets of its range are at most
    /// [`DENSE_CELLS`]. `None` without an interval.
    pub(in crate::exec) fn for_spec(spec: &ScanSpec<'_>) -> Option<Self> {
        let interval = spec.interval.filter(|&i| i > 0)?;
        let dense = BucketGrid::for_range(spec.start, spec.end, interval).and_then(|grid| {
            let cells = grid.slots().checked_mul(spec.groups)?;
            (cells <= DENSE_CELLS).then(|| Self::Dense {
                grid,
                cells: filled(cells, Moments::default()),
            })
        });
        Some(dense.unwrap_or_else(|| Self::Sparse {
            interval,
            map: HashMap::default(),
        }))
    }

    /// The moments of group `tag`'s bucket holding time `t`.
    #[inline]
    pub(super) fn cell(&mut self, tag: u32, t: TimestampMs) -> &mut Moments {
        let at = self.dense_index(tag, t);
        if at.is_none() && matches!(self, Self::Dense { .. }) {
            // Outside the grid (no scan adds such a row; kept exact all the same).
            self.make_sparse();
        }
        match self {
            // Still dense: `at` is in the grid.
            Self::Dense { cells, .. } => &mut cells[at.unwrap_or_default()],
            Self::Sparse { interval, map } => {
                map.entry((tag, bucket_start(t, *interval))).or_default()
            }
        }
    }

    /// Adds one series' rows (group `tag`): `values` empty for a count (each row adds 0.0), the
    /// minimum and maximum kept only when `min_max`. On a grid the run's cells are one row of it and
    /// the choice of accumulation is made once, not per row: through [`BucketMoments::cell`], its
    /// call, the grid-or-map match and the choice per row were a quarter of a bucketed count.
    pub(super) fn add_run(
        &mut self,
        tag: u32,
        timestamps: &[TimestampMs],
        values: &[f64],
        min_max: bool,
    ) {
        let mut done = 0;
        if let Self::Dense { grid, cells } = self {
            let first = tag as usize * grid.slots();
            if let Some(row) = cells.get_mut(first..first + grid.slots()) {
                done = match (values.is_empty(), min_max) {
                    (true, false) => add_on_row(grid, row, timestamps, |m, _| m.count += 1),
                    (true, true) => add_on_row(grid, row, timestamps, |m, _| m.add(0.0)),
                    (false, false) => add_on_row(grid, row, timestamps, |m, i| {
                        m.add_count_sum(values.get(i).copied().unwrap_or(0.0))
                    }),
                    (false, true) => add_on_row(grid, row, timestamps, |m, i| {
                        m.add(values.get(i).copied().unwrap_or(0.0))
                    }),
                };
            }
        }
        // Past the grid (no scan adds such a row; kept exact all the same) or sparse: cell by cell.
        for (i, &t) in timestamps.iter().enumerate().skip(done) {
            let v = values.get(i).copied().unwrap_or(0.0);
            self.cell(tag, t).add_with(v, min_max);
        }
    }

    /// The grid cell of (`tag`, `t`); `None` when sparse or outside the grid.
    #[inline]
    fn dense_index(&self, tag: u32, t: TimestampMs) -> Option<usize> {
        let Self::Dense { grid, cells } = self else {
            return None;
        };
        let slot = grid.slot(t)?;
        Some(tag as usize * grid.slots() + slot).filter(|&at| at < cells.len())
    }

    /// Adds `other`'s moments.
    pub(super) fn merge(&mut self, other: Self) {
        for ((tag, bucket), m) in other.into_cells() {
            self.cell(tag, bucket).merge(&m);
        }
    }

    /// Every (group, bucket) with rows and its moments, ascending by group then bucket.
    pub(in crate::exec) fn into_sorted(self) -> Vec<((u32, TimestampMs), Moments)> {
        let mut all = self.into_cells();
        // A grid's cells come out in this order already; the check is linear.
        if !all.is_sorted_by_key(|(key, _)| *key) {
            all.sort_unstable_by_key(|(key, _)| *key);
        }
        all
    }

    /// The cells with rows, in no particular order.
    fn into_cells(self) -> Vec<((u32, TimestampMs), Moments)> {
        match self {
            Self::Dense { grid, cells } => cells
                .into_iter()
                .enumerate()
                .filter(|(_, m)| m.count > 0)
                .map(|(i, m)| {
                    let slots = grid.slots();
                    (((i / slots) as u32, grid.bucket(i % slots)), m)
                })
                .collect(),
            Self::Sparse { map, .. } => map.into_iter().collect(),
        }
    }

    fn make_sparse(&mut self) {
        let Self::Dense { grid, .. } = self else {
            return;
        };
        let empty = Self::Sparse {
            interval: grid.interval(),
            map: HashMap::default(),
        };
        let dense = std::mem::replace(self, empty);
        if let Self::Sparse { map, .. } = self {
            map.extend(dense.into_cells());
        }
    }
}

/// Adds rows `0..` of `timestamps` to their cells of one group's `row` of the grid with `add(cell,
/// row index)`, up to the first row outside the grid; returns how many were added.
#[inline]
fn add_on_row(
    grid: &BucketGrid,
    row: &mut [Moments],
    timestamps: &[TimestampMs],
    mut add: impl FnMut(&mut Moments, usize),
) -> usize {
    for (i, &t) in timestamps.iter().enumerate() {
        match grid.slot(t).and_then(|slot| row.get_mut(slot)) {
            Some(cell) => add(cell, i),
            None => return i,
        }
    }
    timestamps.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(first: TimestampMs, interval: i64, slots: usize, groups: usize) -> BucketMoments {
        let end = first + slots as i64 * interval;
        let grid = BucketGrid::for_range(first, end, interval).unwrap();
        assert_eq!(grid.slots(), slots);
        BucketMoments::Dense {
            grid,
            cells: filled(slots * groups, Moments::default()),
        }
    }

    #[test]
    fn a_grid_and_a_map_hold_the_same_moments_even_past_the_grid() {
        let (first, interval) = (-30_000, 10_000);
        let rows: Vec<(u32, TimestampMs, f64)> = (0..500)
            .map(|i: i64| ((i % 3) as u32, first + (i % 7) * interval, i as f64 * 0.5))
            .collect();
        let (mut dense, mut sparse) = (
            grid(first, interval, 7, 3),
            BucketMoments::Sparse {
                interval,
                map: HashMap::default(),
            },
        );
        // A row anywhere in its bucket lands in the bucket's cell.
        for &(tag, bucket, v) in &rows {
            let t = bucket + (v as i64 * 37) % interval;
            dense.cell(tag, t).add(v);
            sparse.cell(tag, t).add(v);
        }
        assert!(matches!(dense, BucketMoments::Dense { .. }));
        let want = sparse.clone().into_sorted();
        assert_eq!(want.len(), 21);
        assert_eq!(dense.clone().into_sorted(), want);
        // Merging two grids, or a grid and a map, adds cell by cell.
        let mut twice = dense.clone();
        twice.merge(sparse.clone());
        let doubled: Vec<_> = want
            .iter()
            .map(|&(key, m)| {
                let mut m2 = m;
                m2.merge(&m);
                (key, m2)
            })
            .collect();
        assert_eq!(twice.into_sorted(), doubled);
        // A bucket past the grid, or a group outside it: the grid becomes a map, nothing is lost.
        dense.cell(1, first + 7 * interval).add(1.0);
        dense.cell(5, first).add(2.0);
        assert!(matches!(dense, BucketMoments::Sparse { .. }));
        let one = |v: f64| Moments {
            count: 1,
            sum: v,
            min: v,
            max: v,
        };
        let mut expected = want.clone();
        expected.push(((1, first + 7 * interval), one(1.0)));
        expected.push(((5, first), one(2.0)));
        expected.sort_by_key(|(key, _)| *key);
        assert_eq!(dense.into_sorted(), expected);
    }

    #[test]
    fn a_run_adds_to_its_cells_as_row_by_row_does_even_past_the_grid() {
        let (first, interval) = (60_000, 15_000);
        let (slots, groups) = (8, 3);
        let end = first + slots as i64 * interval;
        // Runs of one series, in time order: inside the grid, reaching past its end, and wholly past.
        let runs: Vec<(u32, Vec<TimestampMs>)> = vec![
            (0, (0..20).map(|i| first + i * 5_999).collect()),
            (2, vec![first, first + 14_999, first + 15_000, end - 1]),
            (1, (0..9).map(|i| end - 40_000 + i * 9_000).collect()),
            (2, vec![end, end + interval]),
            (0, vec![]),
        ];
        for (counting, min_max) in [(true, false), (true, true), (false, false), (false, true)] {
            let (mut by_run, mut by_row) = (
                grid(first, interval, slots, groups),
                BucketMoments::Sparse {
                    interval,
                    map: HashMap::default(),
                },
            );
            for (k, (tag, times)) in runs.iter().enumerate() {
                let values: Vec<f64> = if counting {
                    Vec::new()
                } else {
                    (0..times.len())
                        .map(|i| (k * 7 + i) as f64 * 1.25 - 9.0)
                        .collect()
                };
                by_run.add_run(*tag, times, &values, min_max);
                for (i, &t) in times.iter().enumerate() {
                    let v = values.get(i).copied().unwrap_or(0.0);
                    by_row.cell(*tag, t).add_with(v, min_max);
                }
            }
            let want = by_row.into_sorted();
            // Cells in the grid: 8 + 3 + 3 (the third run's first five rows); past it: 3 + 2. The
            // empty run adds none.
            assert_eq!(want.len(), 19, "{counting} {min_max}");
            assert_eq!(want.iter().map(|(_, m)| m.count).sum::<u64>(), 35);
            assert_eq!(
                by_run.into_sorted(),
                want,
                "counting {counting}, min and max {min_max}"
            );
        }
    }
}
