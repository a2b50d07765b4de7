//! The head's rows of a selection, as one run of samples per selected series in time order: what a
//! series-window fold (`super::windows`) reads besides the parts.
//!
//! The head keeps rows in arrival order, every series interleaved. [`HeadRuns::gather`] orders them
//! by position in two passes under the head lock — look each row's series up and count each
//! position's rows, then place each row in its position's run (a counting sort: linear, and stable,
//! so a series' run keeps arrival order) — writing samples only once, 16 bytes each, into blocks of a
//! few MB. A chunk in series order (`crate::head::order`) is read by series instead: each of its
//! series looked up once, and its rows, in time order (equal timestamps in arrival order, so a run
//! stays as a stable sort would leave it), copied as two contiguous slices. Placing notes each sample
//! that lands after a later one (a join); [`HeadRuns::sort`] then sorts, on the query pool and after
//! the lock is released, only the runs with joins, and only around them: a series written in order
//! needs nothing; two interleaved writers leave it out of order by a batch at most, which a merge at
//! each join puts right in linear time.

use luminate_model::{QueryContext, StoreError, TimestampMs};
use rayon::prelude::*;

use super::search::gallop;
use super::{CHECK_EVERY, Prepared};
use crate::buffer::filled;
use crate::head::{CHUNK_ROWS, Rows};

/// A sample: (timestamp, value).
pub(crate) type Sample = (TimestampMs, f64);

/// Each selected position's head samples in `[start, end]`, by position, in blocks of positions.
#[derive(Debug, Default)]
pub(crate) struct HeadRuns {
    /// Positions per block (the last may hold fewer).
    per: usize,
    blocks: Vec<Block>,
}

/// The samples of the positions `first..first + starts.len() - 1`, position `first + k`'s being
/// `samples[starts[k]..starts[k + 1]]`.
#[derive(Debug, Default)]
struct Block {
    first: usize,
    starts: Vec<u32>,
    samples: Vec<Sample>,
    /// Indexes into `samples` of the samples earlier than the one before them in their run (seen as
    /// they are placed): where a run is out of time order, and the only places it is.
    joins: Vec<u32>,
}

/// Bytes of samples a block aims at. An allocation this size is reused by the allocator from one
/// query to the next; one of tens of MB is mapped afresh each time and its pages faulted in, which
/// took 15 % of a range rate over a head of 1.4 M rows.
const BLOCK_BYTES: usize = 2 << 20;

/// Sorts `run` by time, stably, knowing `joins`: the indexes (ascending, each at least 1) of every
/// sample earlier than the one before it. Between two joins the samples ascend, so each join is put
/// right by merging, from the left, the samples before it that are later than its first with those
/// from it that are earlier than the last before it: two writers interleaving batches leave a series'
/// rows out of order by a batch at most, so each merge moves about two batches' rows of the series
/// (an insertion sort moved each row past the whole other batch: a tenth of a range rate's time).
/// Past 8 moves per row on average the disorder is not local (a backfill), and the rest is left to a
/// merge sort.
fn sort_at_joins(run: &mut [Sample], joins: &[usize]) {
    let budget = run.len().saturating_mul(8);
    let mut moves = 0usize;
    let mut left: Vec<Sample> = Vec::new();
    for (n, &join) in joins.iter().enumerate() {
        // `run[..join]` is in order (the joins before it are put right), `run[join..next]` ascends.
        let next = joins.get(n + 1).copied().unwrap_or(run.len());
        let (first, last) = (run[join].0, run[join - 1].0);
        if first >= last {
            continue;
        }
        // Equal timestamps stay in arrival order: the left's before the right's. Both bounds are
        // near the join: searched from it (a binary search over the whole run missed the cache at
        // every probe, half of the sort's time).
        let lo = join - gallop(0, join, |k| run[join - 1 - k].0 > first);
        let hi = gallop(join, next, |k| run[k].0 < last);
        left.clear();
        left.extend_from_slice(&run[lo..join]);
        let (mut i, mut j) = (0, join);
        for k in lo..hi {
            // Slot `k` is `j` minus the left's samples not placed yet: once those are placed, the
            // right's rest is where it belongs.
            if i == left.len() {
                break;
            }
            if j < hi && run[j].0 < left[i].0 {
                run[k] = run[j];
                j += 1;
            } else {
                run[k] = left[i];
                i += 1;
            }
        }
        moves += hi - lo;
        if moves > budget {
            run.sort_by_key(|s| s.0);
            return;
        }
    }
}

/// The joins of `run` (see [`sort_at_joins`]), found by reading it.
#[cfg(test)]
fn joins_of(run: &[Sample]) -> Vec<usize> {
    (1..run.len())
        .filter(|&i| run[i - 1].0 > run[i].0)
        .collect()
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

/// What pass 1 of [`HeadRuns::gather`] found in a chunk.
enum Found {
    /// Each row's position ([`SKIP`]: not gathered), for a chunk read row by row.
    Rows(Vec<u32>),
    /// For a chunk in series order: each selected series' rows in the span, as (position, first,
    /// end) row indexes.
    Runs(Vec<(u32, u32, u32)>),
}

impl HeadRuns {
    /// The rows of `chunks` (each with its tombstone: rows below it are deleted) of the selected
    /// series in `[start, end]` (inclusive), by position, each position's rows in arrival order (a
    /// chunk's in series order in time order). On `pool`, past a chunk's worth of rows: each thread
    /// looks up the rows of its share of the chunks and counts them per position, then places the
    /// rows of its share of the blocks (every thread reads every row's position; each writes only
    /// its own blocks).
    pub(crate) fn gather<'c>(
        prepared: &Prepared<'_>,
        chunks: &'c [(Rows<'c>, Option<TimestampMs>)],
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
        // Pass 1: each row's position, looked up once (once per series in an ordered chunk), and
        // counted.
        let lookup = |group: &'c [(Rows<'c>, Option<TimestampMs>)]| {
            let mut counts = filled(positions, 0u32);
            let mut found = Vec::with_capacity(group.len());
            for (rows, floor) in group {
                let from = start.max(floor.unwrap_or(TimestampMs::MIN));
                if rows.series.is_empty() || rows.max_t < from || rows.min_t > end {
                    found.push(Found::Rows(Vec::new()));
                    continue;
                }
                if let Some(runs) = rows.runs {
                    let whole = rows.min_t >= from && rows.max_t <= end;
                    let mut of_chunk = Vec::new();
                    for (k, &id) in runs.series.iter().enumerate() {
                        if k % CHECK_EVERY == 0 {
                            ctx.check()?;
                        }
                        let Some(slot) = prepared.map.get(id) else {
                            continue;
                        };
                        let (mut lo, mut hi) = (runs.starts[k], runs.starts[k + 1]);
                        if !whole {
                            // The series' rows ascend in time.
                            let of_series = &rows.timestamps[lo as usize..hi as usize];
                            let first = of_series.partition_point(|&t| t < from);
                            let past = of_series.partition_point(|&t| t <= end);
                            (lo, hi) = (lo + first as u32, lo + past as u32);
                        }
                        if lo < hi {
                            counts[slot as usize] += hi - lo;
                            of_chunk.push((slot, lo, hi));
                        }
                    }
                    found.push(Found::Runs(of_chunk));
                    continue;
                }
                let mut of_chunk = Vec::with_capacity(rows.series.len());
                for (i, (&id, &t)) in rows.series.iter().zip(rows.timestamps).enumerate() {
                    if i % CHECK_EVERY == 0 {
                        ctx.check()?;
                    }
                    of_chunk.push(match prepared.map.get(id) {
                        Some(slot) if t >= from && t <= end => {
                            counts[slot as usize] += 1;
                            slot
                        }
                        _ => SKIP,
                    });
                }
                found.push(Found::Rows(of_chunk));
            }
            Ok::<_, StoreError>((found, counts))
        };
        let groups: Vec<_> = chunks
            .chunks(chunks.len().div_ceil(threads).max(1))
            .collect();
        let looked: Vec<(Vec<Found>, Vec<u32>)> = if threads > 1 {
            pool.install(|| groups.into_par_iter().map(lookup).collect::<Result<_, _>>())?
        } else {
            groups.into_iter().map(lookup).collect::<Result<_, _>>()?
        };
        let mut found: Vec<Found> = Vec::with_capacity(chunks.len());
        let mut counts: Vec<u32> = Vec::new();
        for (group_found, group_counts) in looked {
            found.extend(group_found);
            if counts.is_empty() {
                counts = group_counts;
            } else {
                for (total, n) in counts.iter_mut().zip(group_counts) {
                    *total = total.saturating_add(n);
                }
            }
        }
        // No chunk at all: nothing was counted.
        counts.resize(positions, 0);
        // The blocks, sized for the rows spread evenly over the positions.
        let blocks = (rows.saturating_mul(size_of::<Sample>()))
            .div_ceil(BLOCK_BYTES)
            .max(threads)
            .min(positions.max(1));
        let per = positions.div_ceil(blocks).max(1);
        let mut out = Vec::with_capacity(blocks);
        for first in (0..positions).step_by(per) {
            let mut starts = Vec::with_capacity(per + 1);
            let mut total = 0u64;
            starts.push(0u32);
            for &n in &counts[first..(first + per).min(positions)] {
                total += u64::from(n);
                if total >= u64::from(SKIP) {
                    return Err(super::too_large(SKIP as usize - 1));
                }
                starts.push(total as u32);
            }
            // Filled by the thread that places its rows (pass 2): 23 MB of samples for 1.4 M rows
            // take a few ms to write even once.
            out.push(Block {
                first,
                starts,
                samples: Vec::new(),
                joins: Vec::new(),
            });
        }
        drop(counts);
        // Pass 2: each thread places the rows of its blocks.
        let place = |blocks: &mut [Block]| {
            let Some(first) = blocks.first().map(|b| b.first) else {
                return;
            };
            for block in blocks.iter_mut() {
                let total = block.starts.last().copied().unwrap_or(0);
                block.samples = filled(total as usize, (0, 0.0));
            }
            let mut next: Vec<Vec<u32>> = blocks
                .iter()
                .map(|b| b.starts[..b.starts.len() - 1].to_vec())
                .collect();
            let span = next.iter().map(Vec::len).sum::<usize>();
            for ((rows, _), found) in chunks.iter().zip(&found) {
                match found {
                    Found::Rows(slots) => {
                        for (i, &slot) in slots.iter().enumerate() {
                            let k = (slot as usize).wrapping_sub(first);
                            if k < span {
                                let (b, k) = (k / per, k % per);
                                let at = &mut next[b][k];
                                let block = &mut blocks[b];
                                let t = rows.timestamps[i];
                                if *at > block.starts[k] && block.samples[*at as usize - 1].0 > t {
                                    block.joins.push(*at);
                                }
                                block.samples[*at as usize] = (t, rows.values[i]);
                                *at += 1;
                            }
                        }
                    }
                    Found::Runs(of_chunk) => {
                        for &(slot, lo, hi) in of_chunk {
                            let k = (slot as usize).wrapping_sub(first);
                            if k < span {
                                let (b, k) = (k / per, k % per);
                                let at = &mut next[b][k];
                                let block = &mut blocks[b];
                                let (lo, hi) = (lo as usize, hi as usize);
                                // The run's rows from this chunk ascend: only its first can be a join.
                                let t = rows.timestamps[lo];
                                if *at > block.starts[k] && block.samples[*at as usize - 1].0 > t {
                                    block.joins.push(*at);
                                }
                                let to = &mut block.samples[*at as usize..*at as usize + hi - lo];
                                for (sample, (&t, &v)) in to
                                    .iter_mut()
                                    .zip(rows.timestamps[lo..hi].iter().zip(&rows.values[lo..hi]))
                                {
                                    *sample = (t, v);
                                }
                                *at += (hi - lo) as u32;
                            }
                        }
                    }
                }
            }
        };
        let shares: Vec<&mut [Block]> = out.chunks_mut(blocks.div_ceil(threads).max(1)).collect();
        each(shares, threads, pool, place);
        Ok(Self { per, blocks: out })
    }

    /// Sorts by time each position's run that is not in time order yet (stably), on `pool`.
    pub(crate) fn sort(mut self, pool: &rayon::ThreadPool) -> Self {
        // Each run with joins, with its joins (relative to the run).
        let mut runs: Vec<(&mut [Sample], Vec<usize>)> = Vec::new();
        for block in &mut self.blocks {
            if block.joins.is_empty() {
                continue;
            }
            // Placed chunk by chunk: ascending within a run, not across runs.
            block.joins.sort_unstable();
            let mut joins = block.joins.iter().map(|&j| j as usize).peekable();
            let mut rest = block.samples.as_mut_slice();
            for w in block.starts.windows(2) {
                let (run, after) = rest.split_at_mut((w[1] - w[0]) as usize);
                rest = after;
                let (start, end) = (w[0] as usize, w[1] as usize);
                let mut of_run = Vec::new();
                while let Some(j) = joins.next_if(|&j| j < end) {
                    of_run.push(j - start);
                }
                if !of_run.is_empty() {
                    runs.push((run, of_run));
                }
            }
        }
        let sort = |(run, joins): &mut (&mut [Sample], Vec<usize>)| sort_at_joins(run, joins);
        if runs.len() > 1 {
            pool.install(|| runs.par_iter_mut().for_each(sort));
        } else {
            runs.iter_mut().for_each(sort);
        }
        self
    }

    /// Position `p`'s samples (empty when it has none, or when `p` is past the selection).
    pub(crate) fn run(&self, p: usize) -> &[Sample] {
        let Some(block) = self.blocks.get(p / self.per.max(1)) else {
            return &[];
        };
        let k = p - block.first;
        match (block.starts.get(k), block.starts.get(k + 1)) {
            (Some(&lo), Some(&hi)) => &block.samples[lo as usize..hi as usize],
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
    fn a_nearly_sorted_run_sorts_stably_by_merging_at_its_joins() {
        let run = interleaved(40, 6);
        let mut got = run.clone();
        sort_at_joins(&mut got, &joins_of(&run));
        assert_eq!(got, sorted_stably(&run));
        assert_ne!(got, run, "the run was out of order");
    }

    #[test]
    fn sorting_from_the_joins_alone_equals_a_stable_sort() {
        // Runs cut into ascending slices (a chunk's rows in series order each), the slices shuffled
        // by a fixed pseudo-random sequence, timestamps repeated (values tell the copies apart).
        let mut next = crate::seeded::below(7);
        for _ in 0..200 {
            let len = next(300) as usize;
            let mut run: Vec<Sample> = (0..len).map(|i| (next(50) as i64, i as f64)).collect();
            let mut at = 0;
            while at < len {
                let end = (at + 1 + next(40) as usize).min(len);
                run[at..end].sort_by_key(|s| s.0);
                at = end;
            }
            let mut got = run.clone();
            sort_at_joins(&mut got, &joins_of(&run));
            assert_eq!(got, sorted_stably(&run));
        }
        // One join's insertion running past the next join.
        let run: Vec<Sample> = [5, 6, 7, 1, 2, 3, 0, 8, 9].map(|t| (t, t as f64)).to_vec();
        let mut got = run.clone();
        sort_at_joins(&mut got, &[3, 6]);
        assert_eq!(got, sorted_stably(&run));
    }

    #[test]
    fn a_run_far_out_of_order_falls_back_to_a_merge_sort_and_stays_stable() {
        // Newest first with each timestamp twice: n²/2 moves by insertion, far past the budget.
        let run: Vec<Sample> = (0..500).rev().flat_map(|t| [(t, 1.0), (t, 2.0)]).collect();
        let mut got = run.clone();
        sort_at_joins(&mut got, &joins_of(&run));
        assert_eq!(got, sorted_stably(&run));
        assert_eq!(got[..4], [(0, 1.0), (0, 2.0), (1, 1.0), (1, 2.0)]);
        let mut empty: Vec<Sample> = Vec::new();
        sort_at_joins(&mut empty, &[]);
        assert!(empty.is_empty());
    }
}
