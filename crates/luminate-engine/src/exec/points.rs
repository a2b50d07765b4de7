//! The points a query buffers — range candidates, percentile inputs, integral and rate points — in
//! columns, and their grouping by tag in place. Knows nothing of what a tag means (a group, or a
//! series' position in the selection).
//!
//! Columns rather than rows of (tag, timestamp, value): such a row pads to 24 bytes; the columns take
//! 20, and 12 for percentiles without an interval, which need no timestamp (the benchmark's p95 by
//! customer buffers 10 M values: 120 MB instead of 240). Grouping permutes the columns in place (a
//! counting sort that moves each point straight to its group's range), so a query never holds a second
//! copy of its points.

use crate::buffer::filled;
use luminate_model::TimestampMs;
use rayon::prelude::*;

/// Buffered points, in columns of equal length (`times` empty when not kept).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Points {
    /// Each point's tag: its group, or its series' position in the selection.
    pub tags: Vec<u32>,
    /// Each point's timestamp (its bucket start for percentiles), when `timed`.
    pub times: Vec<TimestampMs>,
    /// Each point's value.
    pub values: Vec<f64>,
    /// Percentiles without an interval need no time: the column then stays empty.
    timed: bool,
    /// Range candidates only ([`Points::push_candidate`]): more than the range's limit of the kept
    /// points lie at or before this time, so no later point can be returned; `MAX` until known.
    pub bound: TimestampMs,
    /// Set by [`Points::distribute_among_blocks`] after a scan: the points are already distributed among blocks of
    /// consecutive tags, the first pass of [`Points::group_by_tag`]. Nothing is pushed afterwards.
    blocks: Option<Blocks>,
}

/// Points distributed among blocks of `1 << shift` consecutive tags: block `b` (tags `b << shift` up
/// to the next block) holds `bounds[b]..bounds[b + 1]`.
#[derive(Debug, Clone, PartialEq)]
struct Blocks {
    shift: u32,
    bounds: Vec<usize>,
}

/// The smallest shift that puts `tags` tags in at most [`FANOUT`] blocks of `1 << shift` tags.
fn block_shift(tags: usize) -> u32 {
    let mut shift = 0;
    while tags.div_ceil(1 << shift) > FANOUT {
        shift += 1;
    }
    shift
}

impl Points {
    /// No points; `timed` says whether timestamps are kept.
    pub(crate) fn new(timed: bool) -> Self {
        Self {
            tags: Vec::new(),
            times: Vec::new(),
            values: Vec::new(),
            timed,
            bound: TimestampMs::MAX,
            blocks: None,
        }
    }

    /// No points, with room for `capacity` of them. A query sizes its buffers from the stored points
    /// of its series: growing by doubling copied the columns and touched every page twice, and the
    /// merge of two tasks' buffers then needs no new allocation either. Untouched capacity costs
    /// address space, not memory.
    pub(crate) fn with_capacity(timed: bool, capacity: usize) -> Self {
        let mut points = Self::new(timed);
        points.tags.reserve_exact(capacity);
        if timed {
            points.times.reserve_exact(capacity);
        }
        points.values.reserve_exact(capacity);
        points
    }

    /// Appends a range candidate unless more than `limit` kept points precede it; once twice the limit
    /// is buffered, drops the points after the (limit + 1)-th smallest timestamp. A range query with a
    /// limit so buffers O(limit) points however many it scans, and its scan can skip whatever starts
    /// after [`Points::bound`]. More than `limit` points stay, so the answer still knows it is truncated.
    #[inline]
    pub(crate) fn push_candidate(&mut self, tag: u32, t: TimestampMs, v: f64, limit: usize) {
        if t > self.bound {
            return;
        }
        self.push(tag, t, v);
        if self.len() >= limit.saturating_mul(2).saturating_add(PRUNE_SLACK) {
            self.keep_first(limit);
        }
    }

    /// Lowers [`Points::bound`] to the (limit + 1)-th smallest timestamp and drops the points after it.
    fn keep_first(&mut self, limit: usize) {
        if self.len() <= limit || !self.timed {
            return;
        }
        let mut times = self.times.clone();
        self.bound = self.bound.min(*times.select_nth_unstable(limit).1);
        let bound = self.bound;
        self.retain(|_, t| t <= bound);
    }

    /// Keeps the points `keep(tag, timestamp)` accepts, in order (the timestamp is 0 when not kept).
    fn retain(&mut self, keep: impl Fn(u32, TimestampMs) -> bool) {
        let mut kept = 0;
        for i in 0..self.len() {
            let t = if self.timed { self.times[i] } else { 0 };
            if keep(self.tags[i], t) {
                self.tags[kept] = self.tags[i];
                if self.timed {
                    self.times[kept] = t;
                }
                self.values[kept] = self.values[i];
                kept += 1;
            }
        }
        self.tags.truncate(kept);
        self.times.truncate(kept);
        self.values.truncate(kept);
    }

    /// Appends one point (`t` is dropped when timestamps are not kept).
    #[inline]
    pub(crate) fn push(&mut self, tag: u32, t: TimestampMs, v: f64) {
        self.tags.push(tag);
        if self.timed {
            self.times.push(t);
        }
        self.values.push(v);
    }

    /// Number of points.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Both sets of points, appending the smaller to the larger (the larger buffer is reused, never
    /// copied).
    ///
    /// When both were distributed among the same blocks ([`Points::distribute_among_blocks`]), so is the result:
    /// the larger buffer's blocks move up to their final places, last block first, and the smaller's
    /// are copied in beside them — sequential copies, where distributing afresh would move every
    /// point to a random place.
    pub(crate) fn merge(mut self, mut other: Self) -> Self {
        if self.len() < other.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.bound = self.bound.min(other.bound);
        let blocks = match (self.blocks.take(), other.blocks.take()) {
            (Some(a), Some(b)) if a.shift == b.shift && a.bounds.len() == b.bounds.len() => {
                Some((a, b))
            }
            _ => None,
        };
        // Column by column, each of `other`'s columns freed as soon as it is copied: the merge then
        // holds at most one extra column, not a whole second buffer (the p95 by customer's peak).
        let Some((a, b)) = blocks else {
            self.tags
                .extend_from_slice(&std::mem::take(&mut other.tags));
            self.times
                .extend_from_slice(&std::mem::take(&mut other.times));
            self.values
                .extend_from_slice(&std::mem::take(&mut other.values));
            return self;
        };
        let bounds: Vec<usize> = a.bounds.iter().zip(&b.bounds).map(|(x, y)| x + y).collect();
        merge_blocked(
            &mut self.tags,
            &std::mem::take(&mut other.tags),
            &a.bounds,
            &b.bounds,
        );
        if self.timed {
            merge_blocked(
                &mut self.times,
                &std::mem::take(&mut other.times),
                &a.bounds,
                &b.bounds,
            );
        }
        merge_blocked(
            &mut self.values,
            &std::mem::take(&mut other.values),
            &a.bounds,
            &b.bounds,
        );
        self.blocks = Some(Blocks {
            shift: a.shift,
            bounds,
        });
        self
    }

    /// Keeps the points whose tag `keep` accepts, in order. Points distributed among blocks
    /// ([`Points::distribute_among_blocks`], for `tags` tags) are distributed again.
    pub(crate) fn retain_tags(&mut self, tags: usize, keep: impl Fn(u32) -> bool) {
        let distributed = self.blocks.take().is_some();
        self.retain(|tag, _| keep(tag));
        if distributed {
            self.distribute_among_blocks(tags);
        }
    }

    /// Distributes the points among blocks of consecutive tags (the first pass of
    /// [`Points::group_by_tag`] for `tags` tags), so that each scan task does it for its own points,
    /// in parallel, and the merge keeps it. Nothing to do for at most [`FANOUT`] tags (one pass
    /// groups them).
    pub(crate) fn distribute_among_blocks(&mut self, tags: usize) {
        if tags <= FANOUT {
            return;
        }
        let shift = block_shift(tags);
        let blocks = tags.div_ceil(1 << shift);
        let mut bounds = filled(blocks + 1, 0usize);
        for &t in &self.tags {
            bounds[(t >> shift) as usize + 1] += 1;
        }
        for b in 0..blocks {
            bounds[b + 1] += bounds[b];
        }
        distribute(self.columns(), &bounds, |t| (t >> shift) as usize);
        self.blocks = Some(Blocks { shift, bounds });
    }

    /// The points as (timestamp, value) pairs grouped by tag, each tag's points in the order they were
    /// pushed (a stable counting sort), and each tag's start (`starts[tags]` is the end). Every tag must
    /// be below `tags`. Integral and rate use it: a part delivers each series' points sorted, so a
    /// series' points are a few sorted runs — one per source — that an adaptive sort merges in linear
    /// time, where the in-place grouping would scramble them. Costs 16 bytes a point while the columns
    /// are read (they are freed before the pairs are used).
    pub(crate) fn into_pairs_by_tag(
        self,
        tags: usize,
        pool: &rayon::ThreadPool,
    ) -> (Vec<usize>, Vec<(TimestampMs, f64)>) {
        let Self {
            tags: tag_of,
            times,
            values,
            timed,
            ..
        } = self;
        scatter_by_tag(&tag_of, tags, pool, |i| {
            (if timed { times[i] } else { 0 }, values[i])
        })
    }

    /// The values grouped by tag, like [`Points::into_pairs_by_tag`] without the times: 8 bytes a
    /// point. Percentiles over (group, bucket) cells use it: one pass that reads the points in order
    /// and writes each to its cell's range, where the in-place grouping ([`Points::group_by_tag`])
    /// swapped each point along a chain of cache misses (a quarter of a p95 by region with buckets).
    pub(crate) fn into_values_by_tag(
        self,
        tags: usize,
        pool: &rayon::ThreadPool,
    ) -> (Vec<usize>, Vec<f64>) {
        let Self {
            tags: tag_of,
            values,
            ..
        } = self;
        scatter_by_tag(&tag_of, tags, pool, |i| values[i])
    }

    /// Reorders the points so that each tag's points are contiguous, tags ascending (the order within a
    /// tag is unspecified); returns each tag's start (`starts[tags]` is the end). Every tag must be below
    /// `tags`. In place: O(points + tags) time, and memory for the starts only.
    ///
    /// Each swap's target depends on the tag the previous swap brought in, so one pass over many tags
    /// is a chain of cache misses (the p95 by customer's 10 M points over 100 000 groups spent most of
    /// its time there). With more than [`FANOUT`] tags the points are first distributed among blocks of
    /// consecutive tags (at most `FANOUT` write positions, all of them cached), then each block — small
    /// enough for the cache — among its tags.
    pub(crate) fn group_by_tag(&mut self, tags: usize, pool: &rayon::ThreadPool) -> Vec<usize> {
        let mut starts = filled(tags + 1, 0usize);
        for &t in &self.tags {
            starts[t as usize + 1] += 1;
        }
        for i in 0..tags {
            starts[i + 1] += starts[i];
        }
        let timed = self.timed;
        if tags <= FANOUT {
            distribute(self.columns(), &starts, |t| t as usize);
            return starts;
        }
        // Blocks of `1 << shift` consecutive tags, at most `FANOUT` of them.
        let shift = block_shift(tags);
        let block_starts: Vec<usize> = (0..tags.div_ceil(1 << shift))
            .map(|b| starts[b << shift])
            .chain([starts[tags]])
            .collect();
        // The first pass, unless each scan task did it already (`distribute_among_blocks`).
        let blocked = self
            .blocks
            .take()
            .is_some_and(|b| b.shift == shift && b.bounds == block_starts);
        if !blocked {
            distribute(self.columns(), &block_starts, |t| (t >> shift) as usize);
        }
        // The blocks now own disjoint ranges of the columns: each is grouped on its own, in parallel.
        let blocks: Vec<(Columns<'_>, usize)> = split_columns(
            &mut self.tags,
            &mut self.times,
            &mut self.values,
            timed,
            &block_starts,
        )
        .into_iter()
        .enumerate()
        .map(|(b, cols)| (cols, b))
        .collect();
        pool.install(|| {
            blocks.into_par_iter().for_each(|(cols, b)| {
                let first = b << shift;
                let last = ((b + 1) << shift).min(tags);
                let base = first as u32;
                let offset = starts[first];
                let bounds: Vec<usize> = starts[first..=last].iter().map(|s| s - offset).collect();
                distribute(cols, &bounds, |t| (t - base) as usize);
            });
        });
        starts
    }

    /// Calls `visit(tag, values, times)` once for every tag below `tags`, with that tag's values
    /// (mutable, in no particular order) and their timestamps (empty when not kept); tags run in
    /// parallel on `pool` and the results come back in tag order. The points are grouped in place
    /// first ([`Points::group_by_tag`]).
    ///
    /// Measured against distributing chunks in parallel and gathering each block into buffers of its
    /// own: that was 8 % slower on the benchmark's p95 by customer (the copies and their page faults
    /// cost more than the parallel first pass saved).
    pub(crate) fn map_groups<R: Send>(
        &mut self,
        tags: usize,
        pool: &rayon::ThreadPool,
        visit: impl Fn(usize, &mut [f64], &[TimestampMs]) -> R + Sync,
    ) -> Vec<R> {
        let starts = self.group_by_tag(tags, pool);
        let per_tag = self.split_by_tag(&starts);
        pool.install(|| {
            per_tag
                .into_par_iter()
                .enumerate()
                .map(|(t, cols)| visit(t, cols.values, cols.times))
                .collect()
        })
    }

    /// After [`Points::group_by_tag`], each tag's points as their own mutable view.
    pub(crate) fn split_by_tag(&mut self, starts: &[usize]) -> Vec<Columns<'_>> {
        let timed = self.timed;
        split_columns(
            &mut self.tags,
            &mut self.times,
            &mut self.values,
            timed,
            starts,
        )
    }

    /// The three columns as one mutable view.
    fn columns(&mut self) -> Columns<'_> {
        let times: &mut [TimestampMs] = if self.timed { &mut self.times } else { &mut [] };
        Columns {
            tags: &mut self.tags,
            times,
            values: &mut self.values,
        }
    }
}

/// Mutable views of equal ranges of the three columns (`times` empty when not kept).
pub(crate) struct Columns<'a> {
    pub tags: &'a mut [u32],
    pub times: &'a mut [TimestampMs],
    pub values: &'a mut [f64],
}

/// One column of [`Points::merge`] for blocked points: `a` (blocks at `a_bounds`) grows by `b`'s
/// length and ends up holding, block by block, `a`'s points then `b`'s. `a`'s blocks move up, last
/// first: each lands at or after where it was and past every earlier block, so nothing unmoved is
/// overwritten; `b`'s block lands past `a`'s moved block.
fn merge_blocked<T: Copy + Default>(
    a: &mut Vec<T>,
    b: &[T],
    a_bounds: &[usize],
    b_bounds: &[usize],
) {
    let a_len = a.len();
    a.resize(a_len + b.len(), T::default());
    for k in (0..a_bounds.len() - 1).rev() {
        let (a_start, a_end) = (a_bounds[k], a_bounds[k + 1]);
        let to = a_start + b_bounds[k];
        a.copy_within(a_start..a_end, to);
        let b_block = &b[b_bounds[k]..b_bounds[k + 1]];
        let b_to = to + (a_end - a_start);
        a[b_to..b_to + b_block.len()].copy_from_slice(b_block);
    }
}

/// Items `item(i)` of the points grouped by their tags `tag_of[i]` (all below `tags`), each tag's in
/// push order (a stable counting sort), and each tag's start (`starts[tags]` is the end).
///
/// The scatter runs on `pool`: each thread owns a contiguous range of tags (about an equal share of
/// the points) and so a disjoint slice of the output; it reads every point and writes its own.
fn scatter_by_tag<T: Copy + Default + Send>(
    tag_of: &[u32],
    tags: usize,
    pool: &rayon::ThreadPool,
    item: impl Fn(usize) -> T + Sync,
) -> (Vec<usize>, Vec<T>) {
    let mut starts = filled(tags + 1, 0usize);
    for &t in tag_of {
        starts[t as usize + 1] += 1;
    }
    for i in 0..tags {
        starts[i + 1] += starts[i];
    }
    let n = tag_of.len();
    let mut out = filled(n, T::default());
    // Tag ranges [lo, hi) of about `n / threads` points each.
    let threads = if n < PARALLEL_SCATTER {
        1
    } else {
        pool.current_num_threads().max(1)
    };
    let mut bounds = vec![0usize];
    for k in 1..threads {
        let target = n * k / threads;
        let tag = starts.partition_point(|&s| s < target).min(tags);
        if tag > *bounds.last().unwrap_or(&0) {
            bounds.push(tag);
        }
    }
    bounds.push(tags);
    let mut slices = Vec::with_capacity(bounds.len() - 1);
    let mut rest = out.as_mut_slice();
    for w in bounds.windows(2) {
        let (slice, tail) = std::mem::take(&mut rest).split_at_mut(starts[w[1]] - starts[w[0]]);
        slices.push((w[0], w[1], slice));
        rest = tail;
    }
    let scatter = |(lo, hi, out): (usize, usize, &mut [T])| {
        let base = starts[lo];
        let mut next: Vec<usize> = starts[lo..hi].iter().map(|s| s - base).collect();
        for (i, &t) in tag_of.iter().enumerate() {
            let t = t as usize;
            if (lo..hi).contains(&t) {
                let at = &mut next[t - lo];
                out[*at] = item(i);
                *at += 1;
            }
        }
    };
    if slices.len() == 1 {
        slices.into_iter().for_each(scatter);
    } else {
        pool.install(|| slices.into_par_iter().for_each(scatter));
    }
    (starts, out)
}

/// The columns cut at `bounds` (ascending, `bounds[0] == 0`, the last the length) into disjoint views.
fn split_columns<'a>(
    mut tags: &'a mut [u32],
    mut times: &'a mut [TimestampMs],
    mut values: &'a mut [f64],
    timed: bool,
    bounds: &[usize],
) -> Vec<Columns<'a>> {
    let mut out = Vec::with_capacity(bounds.len().saturating_sub(1));
    for w in bounds.windows(2) {
        let n = w[1] - w[0];
        let (t, rest) = std::mem::take(&mut tags).split_at_mut(n);
        tags = rest;
        let (v, rest) = std::mem::take(&mut values).split_at_mut(n);
        values = rest;
        let ts = if timed {
            let (ts, rest) = std::mem::take(&mut times).split_at_mut(n);
            times = rest;
            ts
        } else {
            &mut []
        };
        out.push(Columns {
            tags: t,
            times: ts,
            values: v,
        });
    }
    out
}

/// Permutes the points of `bounds[0]..bounds[n]` (offsets into `cols`) so that those with
/// `key(tag) == k` fill `bounds[k]..bounds[k + 1]` (the bounds must be the exact counts). Each swap
/// moves one point to its final range, so at most one swap per point.
fn distribute(cols: Columns<'_>, bounds: &[usize], key: impl Fn(u32) -> usize) {
    let timed = !cols.times.is_empty();
    let mut next = bounds[..bounds.len() - 1].to_vec();
    for k in 0..next.len() {
        let end = bounds[k + 1];
        while next[k] < end {
            let i = next[k];
            let t = key(cols.tags[i]);
            if t == k {
                next[k] += 1;
            } else {
                let j = next[t];
                next[t] += 1;
                cols.tags.swap(i, j);
                if timed {
                    cols.times.swap(i, j);
                }
                cols.values.swap(i, j);
            }
        }
    }
}

/// Sorts each series' points (`pairs[starts[s]..starts[s + 1]]`, as [`Points::into_pairs_by_tag`]
/// returns them) with [`sort_runs`], series in parallel on `pool`.
pub(crate) fn sort_each_series(
    starts: &[usize],
    pairs: &mut [(TimestampMs, f64)],
    pool: &rayon::ThreadPool,
) {
    map_sorted_series(starts, pairs, pool, |_, _, _: &mut Vec<()>| {});
}

/// Sorts each series' points like [`sort_each_series`], then calls `visit(series, points, out)` for
/// every series with a point; series run in parallel on `pool`, in contiguous chunks, and what the
/// visits push comes back in series order (so the caller's sums add up in the same order every time).
pub(crate) fn map_sorted_series<R: Send>(
    starts: &[usize],
    pairs: &mut [(TimestampMs, f64)],
    pool: &rayon::ThreadPool,
    visit: impl Fn(usize, &[(TimestampMs, f64)], &mut Vec<R>) + Sync,
) -> Vec<R> {
    let mut slices: Vec<&mut [(TimestampMs, f64)]> = Vec::with_capacity(starts.len());
    let mut rest = pairs;
    for w in starts.windows(2) {
        let (series, tail) = std::mem::take(&mut rest).split_at_mut(w[1] - w[0]);
        slices.push(series);
        rest = tail;
    }
    // A few chunks per thread, so one heavy series does not leave the other threads idle for long.
    let chunk = slices.len().div_ceil(pool.current_num_threads() * 8).max(1);
    let outputs: Vec<Vec<R>> = pool.install(|| {
        slices
            .par_chunks_mut(chunk)
            .enumerate()
            .map(|(c, series)| {
                let mut out = Vec::new();
                for (k, points) in series.iter_mut().enumerate() {
                    if !points.is_empty() {
                        sort_runs(points);
                        visit(c * chunk + k, points, &mut out);
                    }
                }
                out
            })
            .collect()
    });
    outputs.into_iter().flatten().collect()
}

/// Sorts one series' points by (timestamp, value), as `semantics::sort_series_points` does. They
/// usually arrive as a few sorted runs (one per part, head rows in arrival order): already sorted, they
/// are left alone; otherwise the standard library's stable sort merges the runs it finds. Points equal
/// under the order are bit-identical, so stability changes nothing.
pub(crate) fn sort_runs(points: &mut [(TimestampMs, f64)]) {
    let order = |a: &(TimestampMs, f64), b: &(TimestampMs, f64)| {
        a.0.cmp(&b.0).then_with(|| a.1.total_cmp(&b.1))
    };
    if !points.is_sorted_by(|a, b| order(a, b).is_le()) {
        points.sort_by(order);
    }
}

/// Candidates a range query buffers beyond twice its limit before dropping the later ones.
pub(super) const PRUNE_SLACK: usize = 4096;

/// Points below which [`Points::into_pairs_by_tag`] scatters on the calling thread alone.
const PARALLEL_SCATTER: usize = 1 << 16;

/// Most ranges one distribution pass fills: their write positions stay in the cache.
const FANOUT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// Two threads, so the blocks of a large grouping really run in parallel.
    fn pool() -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
    }

    fn points(timed: bool, rows: &[(u32, i64, f64)]) -> Points {
        let mut p = Points::new(timed);
        for &(tag, t, v) in rows {
            p.push(tag, t, v);
        }
        p
    }

    #[test]
    fn grouping_in_place_keeps_every_point_with_its_tag() {
        let rows: Vec<(u32, i64, f64)> = (0..1000u32)
            .map(|i| ((i * 7919) % 13, i64::from(i), f64::from(i) / 2.0))
            .collect();
        let mut p = points(true, &rows);
        let starts = p.group_by_tag(15, &pool());
        assert_eq!(starts.len(), 16);
        assert_eq!(starts[15], 1000);
        assert_eq!(starts[13], starts[15], "tags 13 and 14 have no points");
        for g in 0..15 {
            let mut got: Vec<(u32, i64, f64)> = (starts[g]..starts[g + 1])
                .map(|i| (p.tags[i], p.times[i], p.values[i]))
                .collect();
            got.sort_by_key(|r| r.1);
            let want: Vec<(u32, i64, f64)> =
                rows.iter().copied().filter(|r| r.0 as usize == g).collect();
            assert_eq!(got, want, "tag {g}");
        }
    }

    #[test]
    fn untimed_points_keep_no_timestamps_and_merge_into_the_larger_buffer() {
        let a = points(false, &[(1, 5, 1.0), (0, 6, 2.0), (1, 7, 3.0)]);
        let b = points(false, &[(0, 8, 4.0)]);
        let mut merged = b.merge(a);
        assert!(merged.times.is_empty());
        assert_eq!(merged.len(), 4);
        assert_eq!(merged.values, vec![1.0, 2.0, 3.0, 4.0]);
        let starts = merged.group_by_tag(2, &pool());
        assert_eq!(starts, vec![0, 2, 4]);
        let mut zero: Vec<f64> = merged.values[0..2].to_vec();
        zero.sort_by(f64::total_cmp);
        assert_eq!(zero, vec![2.0, 4.0]);
    }

    #[test]
    fn grouping_many_tags_in_two_passes_keeps_every_point_with_its_tag() {
        // More tags than one pass fills, with empty tags and a partial last block.
        let tags = 3 * FANOUT * FANOUT + 17;
        let rows: Vec<(u32, i64, f64)> = (0..200_000u64)
            .map(|i| {
                let tag = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % (tags - 5);
                (tag as u32, i as i64, i as f64)
            })
            .collect();
        let mut p = points(true, &rows);
        let starts = p.group_by_tag(tags, &pool());
        assert_eq!(starts.len(), tags + 1);
        assert_eq!(starts[tags], rows.len());
        for g in 0..tags {
            for i in starts[g]..starts[g + 1] {
                assert_eq!(p.tags[i] as usize, g);
                assert_eq!(p.times[i] as f64, p.values[i], "point {i} kept its value");
            }
        }
        let mut seen: Vec<i64> = p.times.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..200_000).collect::<Vec<i64>>());
    }

    #[test]
    fn pairs_by_tag_keep_each_tags_points_in_push_order() {
        // Below and above the size at which the scatter is split among threads.
        for n in [5000u32, PARALLEL_SCATTER as u32 * 3] {
            pairs_by_tag_in_push_order(n);
        }
    }

    fn pairs_by_tag_in_push_order(n: u32) {
        let rows: Vec<(u32, i64, f64)> = (0..n)
            .map(|i| ((i * 7919) % 301, i64::from(i), f64::from(i) / 2.0))
            .collect();
        let (starts, pairs) = points(true, &rows).into_pairs_by_tag(305, &pool());
        assert_eq!(starts.len(), 306);
        assert_eq!(starts[305], rows.len());
        for g in 0..305 {
            let want: Vec<(i64, f64)> = rows
                .iter()
                .filter(|r| r.0 as usize == g)
                .map(|r| (r.1, r.2))
                .collect();
            assert_eq!(pairs[starts[g]..starts[g + 1]], want[..], "tag {g}");
        }
    }

    #[test]
    fn mapping_groups_visits_each_tag_with_exactly_its_points() {
        // Few tags (grouped in place) and many (chunks distributed among blocks, then gathered), both
        // with more points than the parallel threshold, timed and not.
        for (n, tags) in [(200_000u32, 100usize), (300_000, 70_000)] {
            for timed in [true, false] {
                let rows: Vec<(u32, i64, f64)> = (0..n)
                    .map(|i| {
                        let tag = (i.wrapping_mul(2_654_435_761) >> 7) % tags as u32;
                        (tag, i64::from(i), f64::from(i))
                    })
                    .collect();
                let mut p = points(timed, &rows);
                let got = p.map_groups(tags, &pool(), |t, values, times| {
                    let mut v: Vec<(i64, f64)> = if timed {
                        times.iter().copied().zip(values.iter().copied()).collect()
                    } else {
                        values.iter().map(|&v| (v as i64, v)).collect()
                    };
                    v.sort_by_key(|r| r.0);
                    (t, v)
                });
                assert_eq!(got.len(), tags);
                let mut want: Vec<Vec<(i64, f64)>> = vec![Vec::new(); tags];
                for &(tag, t, v) in &rows {
                    want[tag as usize].push((t, v));
                }
                for (t, (tag, v)) in got.into_iter().enumerate() {
                    assert_eq!(tag, t);
                    assert_eq!(v, want[t], "tag {t} of {tags}, timed {timed}");
                }
            }
        }
    }

    #[test]
    fn merging_points_distributed_among_blocks_keeps_them_grouped() {
        // Two scan tasks' buffers of different sizes, each distributed among blocks on its own, then
        // merged: grouping the result gives every tag exactly its points, as grouping a plain merge.
        let tags = 5_000usize;
        let rows = |n: u32, salt: u32| -> Vec<(u32, i64, f64)> {
            (0..n)
                .map(|i| {
                    let tag = (i.wrapping_mul(2_654_435_761) ^ salt) % tags as u32;
                    (tag, i64::from(i + salt), f64::from(i) + f64::from(salt))
                })
                .collect()
        };
        let (a, b) = (rows(30_000, 7), rows(11_000, 1 << 20));
        let mut blocked_a = points(true, &a);
        blocked_a.distribute_among_blocks(tags);
        let mut blocked_b = points(true, &b);
        blocked_b.distribute_among_blocks(tags);
        let mut merged = blocked_b.merge(blocked_a);
        assert!(merged.blocks.is_some(), "the merge keeps the blocks");
        let mut plain = points(true, &a).merge(points(true, &b));
        let (starts, plain_starts) = (
            merged.group_by_tag(tags, &pool()),
            plain.group_by_tag(tags, &pool()),
        );
        assert_eq!(starts, plain_starts);
        for t in 0..tags {
            let sorted = |p: &Points| {
                let mut v: Vec<(u32, i64, u64)> = (starts[t]..starts[t + 1])
                    .map(|i| (p.tags[i], p.times[i], p.values[i].to_bits()))
                    .collect();
                v.sort_unstable();
                v
            };
            let got = sorted(&merged);
            assert!(got.iter().all(|r| r.0 as usize == t), "tag {t}");
            assert_eq!(got, sorted(&plain), "tag {t}");
        }
    }

    #[test]
    fn grouping_nothing_gives_empty_ranges() {
        let mut p = Points::new(true);
        assert_eq!(p.group_by_tag(3, &pool()), vec![0, 0, 0, 0]);
    }
}
