//! A full chunk's rows in series order: built once, by the first series-window fold that reads the
//! chunk (`exec::head_runs`), and kept with it.
//!
//! A fold wants each selected series' rows in time order; the head keeps them in arrival order, every
//! series interleaved. Without an order, every query looks each row's series up and sorts each
//! series' run again (a JSON load from two connections leaves runs out of order by a batch): 1.4 M
//! counter rows cost a range rate 60 % of its time that way. A full chunk no longer changes (rows are
//! appended to the last chunk only; a delete that compacts one drops its order), so its order by
//! (series, timestamp, arrival) is computed once; a fold then looks each series of the chunk up once
//! and reads its rows in time order.
//!
//! An order is worth its 2 bytes per row only when series have several rows in a chunk: a chunk of a
//! metric with a series per row or two (2 M series, 5 points each in an hour) gains nothing, so it keeps
//! [`SeriesOrder::None`] and is read row by row as before.

use luminate_model::TimestampMs;

use crate::record::SeriesId;

/// Rows per series a chunk must hold on average for an order to be kept.
const MIN_ROWS_PER_SERIES: usize = 4;

/// Live series a metric may have for its chunks to be ordered: with more, a full chunk may hold
/// fewer than [`MIN_ROWS_PER_SERIES`] rows per series, and sorting it only to find that (about 2 ms
/// a chunk, under the head lock) is not worth the try.
pub(crate) const MAX_ORDERED_SERIES: u64 = (super::CHUNK_ROWS / MIN_ROWS_PER_SERIES) as u64;

/// A full chunk's rows grouped by series, each series' rows by time.
#[derive(Debug)]
pub(crate) enum SeriesOrder {
    /// The chunk has too many series for an order to pay: read it row by row.
    None,
    Some(Runs),
}

/// The chunk's series, ascending, with their rows.
#[derive(Debug)]
pub(crate) struct Runs {
    /// Each series of the chunk once, ascending.
    pub series: Vec<SeriesId>,
    /// Series `k`'s rows are `rows[starts[k]..starts[k + 1]]`.
    pub starts: Vec<u32>,
    /// Row indexes within the chunk, ordered by (series, timestamp, arrival).
    pub rows: Vec<u16>,
}

impl SeriesOrder {
    /// The order of a chunk's rows (at most 65 536 of them).
    pub(crate) fn of(series: &[SeriesId], timestamps: &[TimestampMs]) -> Self {
        debug_assert!(series.len() <= usize::from(u16::MAX) + 1);
        let mut keys: Vec<(SeriesId, TimestampMs, u16)> = series
            .iter()
            .zip(timestamps)
            .enumerate()
            .map(|(i, (&s, &t))| (s, t, i as u16))
            .collect();
        keys.sort_unstable();
        let distinct = keys.chunk_by(|a, b| a.0 == b.0).count();
        if distinct.saturating_mul(MIN_ROWS_PER_SERIES) > keys.len() {
            return Self::None;
        }
        let mut runs = Runs {
            series: Vec::with_capacity(distinct),
            starts: Vec::with_capacity(distinct + 1),
            rows: keys.iter().map(|k| k.2).collect(),
        };
        let mut at = 0u32;
        for run in keys.chunk_by(|a, b| a.0 == b.0) {
            runs.series.push(run[0].0);
            runs.starts.push(at);
            at += run.len() as u32;
        }
        runs.starts.push(at);
        Self::Some(runs)
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Some(r) => {
                r.series.capacity() * size_of::<SeriesId>()
                    + r.starts.capacity() * size_of::<u32>()
                    + r.rows.capacity() * size_of::<u16>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_by_series_then_ordered_by_time_then_arrival() {
        // Two series interleaved, out of time order, with a repeated timestamp.
        let series = [7, 3, 7, 3, 7, 3, 7, 3, 3];
        let timestamps = [30, 20, 10, 10, 20, 30, 10, 40, 20];
        let SeriesOrder::Some(runs) = SeriesOrder::of(&series, &timestamps) else {
            panic!("4 rows per series are worth an order");
        };
        assert_eq!(runs.series, [3, 7]);
        assert_eq!(runs.starts, [0, 5, 9]);
        // Series 3: t=10 (row 3), t=20 (rows 1 and 8, in arrival order), 30 (5), 40 (7).
        assert_eq!(runs.rows, [3, 1, 8, 5, 7, 2, 6, 4, 0]);
    }

    #[test]
    fn a_chunk_of_few_rows_per_series_keeps_no_order() {
        let series: Vec<SeriesId> = (0..100).map(|i| i / 3).collect();
        let timestamps: Vec<TimestampMs> = (0..100).collect();
        assert!(matches!(
            SeriesOrder::of(&series, &timestamps),
            SeriesOrder::None
        ));
    }
}
