//! The points a query buffers — range candidates, percentile inputs, integral and rate points — in
//! columns, and their grouping by tag in place. Knows nothing of what a tag means (a group, or a
//! series' position in the selection).
//!
//! Columns rather than rows of (tag, timestamp, value): such a row pads to 24 bytes; the columns take
//! 20, and 12 for percentiles without an interval, which need no timestamp (the benchmark's p95 by
//! customer buffers 10 M values: 120 MB instead of 240). Grouping permutes the columns in place (a
//! counting sort that moves each point straight to its group's range), so a query never holds a second
//! copy of its points.

use luminate_model::TimestampMs;

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
        }
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
        let mut kept = 0;
        for i in 0..self.len() {
            if self.times[i] <= self.bound {
                self.tags[kept] = self.tags[i];
                self.times[kept] = self.times[i];
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

    /// The timestamp of point `i` (0 when timestamps are not kept).
    #[inline]
    pub(crate) fn time(&self, i: usize) -> TimestampMs {
        if self.timed { self.times[i] } else { 0 }
    }

    /// Both sets of points, appending the smaller to the larger (the larger buffer is reused, never
    /// copied).
    pub(crate) fn merge(mut self, mut other: Self) -> Self {
        if self.len() < other.len() {
            std::mem::swap(&mut self, &mut other);
        }
        self.tags.extend_from_slice(&other.tags);
        self.times.extend_from_slice(&other.times);
        self.values.extend_from_slice(&other.values);
        self.bound = self.bound.min(other.bound);
        self
    }

    /// The points as (timestamp, value) pairs grouped by tag, each tag's points in the order they were
    /// pushed (a stable counting sort), and each tag's start (`starts[tags]` is the end). Every tag must
    /// be below `tags`. Integral and rate use it: a part delivers each series' points sorted, so a
    /// series' points are a few sorted runs — one per source — that an adaptive sort merges in linear
    /// time, where the in-place grouping would scramble them. Costs 16 bytes a point while the columns
    /// are read (they are freed before the pairs are used).
    pub(crate) fn into_pairs_by_tag(self, tags: usize) -> (Vec<usize>, Vec<(TimestampMs, f64)>) {
        let Self {
            tags: mut dest,
            times,
            values,
            timed,
            ..
        } = self;
        let mut starts = vec![0usize; tags + 1];
        for &t in &dest {
            starts[t as usize + 1] += 1;
        }
        for i in 0..tags {
            starts[i + 1] += starts[i];
        }
        // Each point's destination, in place of its tag (points are fewer than 2^32: see the value bound).
        let mut next = starts[..tags].to_vec();
        for d in &mut dest {
            let at = &mut next[*d as usize];
            *d = *at as u32;
            *at += 1;
        }
        let mut pairs = vec![(0, 0.0); dest.len()];
        for (i, &d) in dest.iter().enumerate() {
            let t = if timed { times[i] } else { 0 };
            pairs[d as usize] = (t, values[i]);
        }
        (starts, pairs)
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
    pub(crate) fn group_by_tag(&mut self, tags: usize) -> Vec<usize> {
        let mut starts = vec![0usize; tags + 1];
        for &t in &self.tags {
            starts[t as usize + 1] += 1;
        }
        for i in 0..tags {
            starts[i + 1] += starts[i];
        }
        if tags <= FANOUT {
            self.distribute(&starts, |t| t as usize);
            return starts;
        }
        // Blocks of `1 << shift` consecutive tags, at most `FANOUT` of them.
        let mut shift = 0;
        while tags.div_ceil(1 << shift) > FANOUT {
            shift += 1;
        }
        let block_starts: Vec<usize> = (0..tags.div_ceil(1 << shift))
            .map(|b| starts[b << shift])
            .chain([starts[tags]])
            .collect();
        self.distribute(&block_starts, |t| (t >> shift) as usize);
        for b in 0..block_starts.len() - 1 {
            let first = b << shift;
            let last = ((b + 1) << shift).min(tags);
            let base = first as u32;
            self.distribute(&starts[first..=last], |t| (t - base) as usize);
        }
        starts
    }

    /// Permutes the points of `bounds[0]..bounds[n]` so that those with `key(tag) == k` fill
    /// `bounds[k]..bounds[k + 1]` (the bounds must be the exact counts). Each swap moves one point to
    /// its final range, so at most one swap per point.
    fn distribute(&mut self, bounds: &[usize], key: impl Fn(u32) -> usize) {
        let mut next = bounds[..bounds.len() - 1].to_vec();
        for k in 0..next.len() {
            let end = bounds[k + 1];
            while next[k] < end {
                let i = next[k];
                let t = key(self.tags[i]);
                if t == k {
                    next[k] += 1;
                } else {
                    let j = next[t];
                    next[t] += 1;
                    self.tags.swap(i, j);
                    if self.timed {
                        self.times.swap(i, j);
                    }
                    self.values.swap(i, j);
                }
            }
        }
    }
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
const PRUNE_SLACK: usize = 4096;

/// Most ranges one distribution pass fills: their write positions stay in the cache.
const FANOUT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

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
        let starts = p.group_by_tag(15);
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
        assert_eq!(merged.time(2), 0);
        let starts = merged.group_by_tag(2);
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
        let starts = p.group_by_tag(tags);
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
        let rows: Vec<(u32, i64, f64)> = (0..5000u32)
            .map(|i| ((i * 7919) % 301, i64::from(i), f64::from(i) / 2.0))
            .collect();
        let (starts, pairs) = points(true, &rows).into_pairs_by_tag(305);
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
    fn grouping_nothing_gives_empty_ranges() {
        let mut p = Points::new(true);
        assert_eq!(p.group_by_tag(3), vec![0, 0, 0, 0]);
    }
}
