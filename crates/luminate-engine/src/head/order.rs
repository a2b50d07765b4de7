//! A full chunk's rows put in series order: done once, by the writer, when the chunk fills
//! (`super::TenantAppender::order_filled`).
//!
//! A series-window fold (`exec::head_runs`) wants each selected series' rows in time order; the head
//! receives them in arrival order, every series interleaved. Looking each row's series up and sorting
//! each series' run again per query cost a range rate over 1.4 M counter rows 60 % of its time; an
//! order of row indexes kept beside the rows (2 bytes a row) took that away but left a gather: a
//! series' rows of a chunk lie every few hundred rows apart, two cache misses a row, a fifth of the
//! fold. A full chunk is never appended to again, so its columns are rearranged instead, in place, by
//! (series, timestamp, arrival): a fold then copies each series' rows of the chunk as two contiguous
//! slices, and the order costs nothing per row. Nothing else reads a chunk's rows in arrival order
//! (scans fold them, a flush sorts them by series, timestamp and value).
//!
//! The order pays only when series have several rows in a chunk: a chunk of a metric with a series per
//! row or two (2 M series, 5 points each in an hour) gains nothing, so it stays in arrival order and is
//! read row by row as before.

use luminate_model::TimestampMs;

use crate::record::SeriesId;

/// Rows per series a chunk must hold on average for it to be put in series order.
const MIN_ROWS_PER_SERIES: usize = 4;

/// Live series a metric may have for its chunks to be put in series order: with more, a full chunk
/// may hold fewer than [`MIN_ROWS_PER_SERIES`] rows per series, and sorting it only to find that is
/// not worth the writer's time.
pub(crate) const MAX_ORDERED_SERIES: u64 = (super::CHUNK_ROWS / MIN_ROWS_PER_SERIES) as u64;

/// The series of a chunk in series order, ascending, with where their rows start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Runs {
    /// Each series of the chunk once, ascending.
    pub series: Vec<SeriesId>,
    /// Series `k`'s rows are `starts[k]..starts[k + 1]`, ascending by time (equal timestamps in
    /// arrival order).
    pub starts: Vec<u32>,
}

/// Bits of a series id sorted per pass of [`by_series`].
const DIGIT_BITS: u32 = 11;

impl Runs {
    /// Rearranges a chunk's rows (at most 65 536) by (series, timestamp, arrival) and returns its
    /// runs; `None`, the rows left as they are, when they hold fewer than [`MIN_ROWS_PER_SERIES`] rows
    /// per series.
    pub(crate) fn order(
        series: &mut Vec<SeriesId>,
        timestamps: &mut Vec<TimestampMs>,
        values: &mut Vec<f64>,
    ) -> Option<Self> {
        debug_assert!(series.len() <= usize::from(u16::MAX) + 1);
        let mut rows = by_series(series);
        let distinct = rows
            .chunk_by(|&a, &b| series[usize::from(a)] == series[usize::from(b)])
            .count();
        if distinct.saturating_mul(MIN_ROWS_PER_SERIES) > rows.len() {
            return None;
        }
        // Each series' rows are in arrival order, which is time order but where writers interleave:
        // a stable sort puts them right and keeps equal timestamps in arrival order.
        let time = |r: &u16| timestamps[usize::from(*r)];
        for run in rows.chunk_by_mut(|&a, &b| series[usize::from(a)] == series[usize::from(b)]) {
            if !run.is_sorted_by_key(time) {
                run.sort_by_key(time);
            }
        }
        *series = rows.iter().map(|&r| series[usize::from(r)]).collect();
        *timestamps = rows.iter().map(|&r| timestamps[usize::from(r)]).collect();
        *values = rows.iter().map(|&r| values[usize::from(r)]).collect();
        rows.clear();
        Some(Self::of_grouped(series))
    }

    /// The runs of rows already grouped by series in ascending order (a chunk in series order, or
    /// what a delete left of one).
    pub(crate) fn of_grouped(series: &[SeriesId]) -> Self {
        let mut runs = Self {
            series: Vec::new(),
            starts: Vec::new(),
        };
        let mut at = 0u32;
        for run in series.chunk_by(|a, b| a == b) {
            runs.series.push(run[0]);
            runs.starts.push(at);
            at += run.len() as u32;
        }
        runs.starts.push(at);
        runs
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.series.capacity() * size_of::<SeriesId>() + self.starts.capacity() * size_of::<u32>()
    }
}

/// The row indexes of `series` ordered by series, equal series in row order: a radix sort, a pass per
/// 11 bits of the ids (skipped where every id has the same digit: a chunk's ids are usually close), so
/// a chunk is ordered in linear time.
fn by_series(series: &[SeriesId]) -> Vec<u16> {
    let mut rows: Vec<u16> = (0..series.len()).map(|r| r as u16).collect();
    let mut spare = vec![0u16; series.len()];
    let mut shift = 0;
    while shift < SeriesId::BITS {
        let digit = |r: u16| ((series[usize::from(r)] >> shift) & ((1 << DIGIT_BITS) - 1)) as usize;
        let mut counts = vec![0u32; 1 << DIGIT_BITS];
        for &r in &rows {
            counts[digit(r)] += 1;
        }
        if counts.iter().filter(|&&n| n > 0).count() > 1 {
            let mut at = 0u32;
            for n in counts.iter_mut() {
                (*n, at) = (at, at + *n);
            }
            for &r in &rows {
                let d = digit(r);
                spare[counts[d] as usize] = r;
                counts[d] += 1;
            }
            std::mem::swap(&mut rows, &mut spare);
        }
        shift += DIGIT_BITS;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_by_series_then_ordered_by_time_then_arrival() {
        // Two series interleaved, out of time order, with a repeated timestamp; the values name the rows.
        let mut series = vec![7, 3, 7, 3, 7, 3, 7, 3, 3];
        let mut timestamps = vec![30, 20, 10, 10, 20, 30, 10, 40, 20];
        let mut values: Vec<f64> = (0..9).map(f64::from).collect();
        let runs = Runs::order(&mut series, &mut timestamps, &mut values)
            .expect("4 rows per series are worth an order");
        assert_eq!(runs.series, [3, 7]);
        assert_eq!(runs.starts, [0, 5, 9]);
        assert_eq!(series, [3, 3, 3, 3, 3, 7, 7, 7, 7]);
        // Series 3: t=10 (row 3), t=20 (rows 1 and 8, in arrival order), 30 (5), 40 (7).
        assert_eq!(timestamps, [10, 20, 20, 30, 40, 10, 10, 20, 30]);
        assert_eq!(values, [3.0, 1.0, 8.0, 5.0, 7.0, 2.0, 6.0, 4.0, 0.0]);
    }

    #[test]
    fn a_chunk_is_ordered_as_a_stable_sort_by_series_and_time_would() {
        // Ids spread over every digit of the radix sort, timestamps repeated and out of order.
        let mut next = crate::seeded::below(11);
        let ids: Vec<SeriesId> = (0..500)
            .map(|_| next(u64::from(u32::MAX)) as SeriesId)
            .collect();
        let n = super::super::CHUNK_ROWS;
        let mut series: Vec<SeriesId> = (0..n).map(|_| ids[next(500) as usize]).collect();
        let mut timestamps: Vec<TimestampMs> = (0..n).map(|_| next(1000) as i64).collect();
        let mut values: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let mut want: Vec<(SeriesId, TimestampMs, f64)> = (0..n)
            .map(|i| (series[i], timestamps[i], values[i]))
            .collect();
        want.sort_by_key(|r| (r.0, r.1));
        let runs = Runs::order(&mut series, &mut timestamps, &mut values).expect("ordered");
        let got: Vec<(SeriesId, TimestampMs, f64)> = (0..n)
            .map(|i| (series[i], timestamps[i], values[i]))
            .collect();
        assert_eq!(got, want);
        assert_eq!(runs, Runs::of_grouped(&series));
        assert_eq!(runs.series.len(), 500);
    }

    #[test]
    fn a_chunk_of_few_rows_per_series_is_left_as_it_is() {
        let mut series: Vec<SeriesId> = (0..100).map(|i| (99 - i) / 3).collect();
        let mut timestamps: Vec<TimestampMs> = (0..100).collect();
        let mut values: Vec<f64> = (0..100).map(f64::from).collect();
        let before = (series.clone(), timestamps.clone(), values.clone());
        assert!(Runs::order(&mut series, &mut timestamps, &mut values).is_none());
        assert_eq!((series, timestamps, values), before);
    }
}
