//! The head's rows of a selection, as one run of samples per selected series in time order: what a
//! series-window fold (`super::windows`) reads besides the parts.
//!
//! The head keeps rows in arrival order, every series interleaved. [`HeadRuns::gather`] orders them
//! by position in two passes under the head lock — count each position's rows, then place each row in
//! its position's run (a counting sort: linear, and stable, so a series' run keeps arrival order) —
//! writing samples only once, 16 bytes each, into one allocation. [`HeadRuns::sort`] then sorts, on
//! the query pool and after the lock is released, only the runs that are not already in time order:
//! a series written in order needs none; two interleaved writers leave a few ascending stretches,
//! which the stable sort merges rather than sorting again.

use luminate_model::{QueryContext, StoreError, TimestampMs};
use rayon::prelude::*;

use super::{CHECK_EVERY, Prepared};
use crate::head::{CHUNK_ROWS, Rows};

/// A sample: (timestamp, value).
pub(crate) type Sample = (TimestampMs, f64);

/// Each selected position's head samples in `[start, end]`, contiguous and ordered by position.
#[derive(Debug, Default)]
pub(crate) struct HeadRuns {
    /// Position `p`'s samples are `samples[starts[p]..starts[p + 1]]`.
    starts: Vec<u32>,
    samples: Vec<Sample>,
}

/// Sorts `run` by time, stably. Two writers interleaving batches leave a series' rows out of order
/// by a batch at most, so an insertion sort moves each row a few places: linear. Past 8 moves per
/// row on average the disorder is not local (a backfill), and the rest is left to a merge sort.
fn sort_nearly_sorted(run: &mut [Sample]) {
    let budget = run.len().saturating_mul(8);
    let mut moves = 0usize;
    for i in 1..run.len() {
        let sample = run[i];
        let mut j = i;
        while j > 0 && run[j - 1].0 > sample.0 {
            run[j] = run[j - 1];
            j -= 1;
        }
        run[j] = sample;
        moves += i - j;
        if moves > budget {
            run.sort_by_key(|s| s.0);
            return;
        }
    }
}

/// Calls `work` with each item, on `pool` when more than one thread is to be used.
fn each<T: Send>(
    items: Vec<T>,
    threads: usize,
    pool: &rayon::ThreadPool,
    work: impl Fn(T) + Sync + Send,
) {
    if threads > 1 {
        pool.install(|| items.into_par_iter().for_each(work));
    } else {
        items.into_iter().for_each(work);
    }
}

/// Marks a row that is outside the span or of a series not selected.
const SKIP: u32 = u32::MAX;

impl HeadRuns {
    /// The rows of `chunks` (each with its tombstone: rows below it are deleted) of the selected
    /// series in `[start, end]` (inclusive), by position, each position's rows in arrival order. On
    /// `pool`: the chunks' rows are looked up in parallel, then each thread counts and places the rows
    /// of its own range of positions (a disjoint part of the samples).
    pub(crate) fn gather(
        prepared: &Prepared<'_>,
        chunks: &[(Rows<'_>, Option<TimestampMs>)],
        (start, end): (TimestampMs, TimestampMs),
        ctx: &QueryContext,
        pool: &rayon::ThreadPool,
    ) -> Result<Self, StoreError> {
        let positions = prepared.selection.series.len();
        let rows: usize = chunks.iter().map(|(r, _)| r.series.len()).sum();
        // Below a chunk's worth of rows, threads cost more than they save.
        let threads = if rows < CHUNK_ROWS {
            1
        } else {
            pool.current_num_threads().max(1)
        };
        // Pass 1: each row's position, looked up once.
        let lookup = |(rows, floor): &(Rows<'_>, Option<TimestampMs>)| {
            let from = start.max(floor.unwrap_or(TimestampMs::MIN));
            if rows.series.is_empty() || rows.max_t < from || rows.min_t > end {
                return Ok::<_, StoreError>(Vec::new());
            }
            let mut slots = Vec::with_capacity(rows.series.len());
            for (i, (&id, &t)) in rows.series.iter().zip(rows.timestamps).enumerate() {
                if i % CHECK_EVERY == 0 {
                    ctx.check()?;
                }
                slots.push(match prepared.map.get(id) {
                    Some(slot) if t >= from && t <= end => slot,
                    _ => SKIP,
                });
            }
            Ok(slots)
        };
        let slots: Vec<Vec<u32>> = if threads > 1 {
            pool.install(|| chunks.par_iter().map(lookup).collect::<Result<_, _>>())?
        } else {
            chunks.iter().map(lookup).collect::<Result<_, _>>()?
        };
        // Pass 2: each range of positions counts its rows.
        let per = positions.div_ceil(threads).max(1);
        let mut counts = vec![0u32; positions];
        {
            let ranges: Vec<(usize, &mut [u32])> = counts
                .chunks_mut(per)
                .enumerate()
                .map(|(k, c)| (k * per, c))
                .collect();
            let count = |(first, counts): (usize, &mut [u32])| {
                for &slot in slots.iter().flatten() {
                    if let Some(n) = counts.get_mut((slot as usize).wrapping_sub(first)) {
                        *n += 1;
                    }
                }
            };
            each(ranges, threads, pool, count);
        }
        let mut starts = Vec::with_capacity(positions + 1);
        let mut total = 0usize;
        starts.push(0u32);
        for &n in &counts {
            total += n as usize;
            if total >= SKIP as usize {
                return Err(super::too_large(SKIP as usize - 1));
            }
            starts.push(total as u32);
        }
        drop(counts);
        // Pass 3: each range of positions places its rows in its own part of the samples.
        let mut samples = vec![(0, 0.0); total];
        let mut parts: Vec<(usize, &mut [Sample])> = Vec::new();
        let mut rest = samples.as_mut_slice();
        for first in (0..positions).step_by(per) {
            let last = (first + per).min(positions);
            let (part, after) = rest.split_at_mut((starts[last] - starts[first]) as usize);
            rest = after;
            parts.push((first, part));
        }
        let place = |(first, part): (usize, &mut [Sample])| {
            let base = starts[first];
            let last = (first + per).min(positions);
            let mut next: Vec<u32> = starts[first..last].iter().map(|s| s - base).collect();
            for ((rows, _), slots) in chunks.iter().zip(&slots) {
                for (i, &slot) in slots.iter().enumerate() {
                    if let Some(at) = next.get_mut((slot as usize).wrapping_sub(first)) {
                        part[*at as usize] = (rows.timestamps[i], rows.values[i]);
                        *at += 1;
                    }
                }
            }
        };
        each(parts, threads, pool, place);
        Ok(Self { starts, samples })
    }

    /// Sorts by time each position's run that is not in time order yet (stably), on `pool` when
    /// given.
    pub(crate) fn sort(mut self, pool: Option<&rayon::ThreadPool>) -> Self {
        let mut runs: Vec<&mut [Sample]> = Vec::new();
        let mut rest = self.samples.as_mut_slice();
        for w in self.starts.windows(2) {
            let (run, after) = rest.split_at_mut((w[1] - w[0]) as usize);
            rest = after;
            if !run.is_sorted_by_key(|s| s.0) {
                runs.push(run);
            }
        }
        let sort = |run: &mut &mut [Sample]| sort_nearly_sorted(run);
        match pool {
            Some(pool) if runs.len() > 1 => pool.install(|| runs.par_iter_mut().for_each(sort)),
            _ => runs.iter_mut().for_each(sort),
        }
        self
    }

    /// Position `p`'s samples (empty when it has none, or when `p` is past the selection).
    pub(crate) fn run(&self, p: usize) -> &[Sample] {
        match (self.starts.get(p), self.starts.get(p + 1)) {
            (Some(&lo), Some(&hi)) => &self.samples[lo as usize..hi as usize],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series' run as two writers leave it: batches of `batch` samples, each pair of batches
    /// committed in swapped order; every timestamp twice, with values telling the copies apart.
    fn interleaved(batches: i64, batch: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        for pair in (0..batches).step_by(2) {
            for b in [pair + 1, pair] {
                for k in 0..batch {
                    let t = (b * batch + k) / 2;
                    out.push((t, (b * batch + k) as f64));
                }
            }
        }
        out
    }

    fn sorted_stably(run: &[Sample]) -> Vec<Sample> {
        let mut want = run.to_vec();
        want.sort_by_key(|s| s.0);
        want
    }

    #[test]
    fn a_nearly_sorted_run_sorts_stably_by_insertion() {
        let run = interleaved(40, 6);
        let mut got = run.clone();
        sort_nearly_sorted(&mut got);
        assert_eq!(got, sorted_stably(&run));
        assert_ne!(got, run, "the run was out of order");
    }

    #[test]
    fn a_run_far_out_of_order_falls_back_to_a_merge_sort_and_stays_stable() {
        // Newest first with each timestamp twice: n²/2 moves by insertion, far past the budget.
        let run: Vec<Sample> = (0..500).rev().flat_map(|t| [(t, 1.0), (t, 2.0)]).collect();
        let mut got = run.clone();
        sort_nearly_sorted(&mut got);
        assert_eq!(got, sorted_stably(&run));
        assert_eq!(got[..4], [(0, 1.0), (0, 2.0), (1, 1.0), (1, 2.0)]);
        let mut empty: Vec<Sample> = Vec::new();
        sort_nearly_sorted(&mut empty);
        assert!(empty.is_empty());
    }
}
