//! The buckets of a query's range as a grid of slots: `slots` epoch-aligned buckets `interval` apart,
//! from the bucket holding the range's start. A row's slot is one multiplication by the interval's
//! inverse and a correction, where `bucket_start` divides: a bucketed aggregate over 10 M rows placed
//! each row with a 64-bit division, and the dense accumulators then divided again for the cell.

use luminate_model::TimestampMs;

/// Spans of at least this many milliseconds (about 142 000 years) get no grid: below it an offset
/// and its quotient are exact in an `f64`, so [`BucketGrid::slot`] is off by at most one before its
/// correction.
const MAX_SPAN: u64 = 1 << 52;

/// `slots` buckets of `interval` ms from `first` (epoch-aligned).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BucketGrid {
    first: TimestampMs,
    interval: u64,
    slots: usize,
    /// `slots × interval`: offsets at or past it are outside the grid.
    span: u64,
    inverse: f64,
}

impl BucketGrid {
    /// The buckets of `[start, end)` with `interval`; `None` when the range is empty, the interval
    /// not positive, or the span too wide for exact slots.
    pub(crate) fn for_range(start: TimestampMs, end: TimestampMs, interval: i64) -> Option<Self> {
        if interval <= 0 || end <= start {
            return None;
        }
        // `bucket_start` without its overflow near the ends of time.
        let first = start.div_euclid(interval).checked_mul(interval)?;
        let last = (end - 1).div_euclid(interval).checked_mul(interval)?;
        let interval_u = interval.unsigned_abs();
        let slots = last.abs_diff(first) / interval_u + 1;
        let span = slots.checked_mul(interval_u).filter(|&s| s < MAX_SPAN)?;
        Some(Self {
            first,
            interval: interval_u,
            slots: usize::try_from(slots).ok()?,
            span,
            inverse: 1.0 / interval_u as f64,
        })
    }

    /// Buckets in the grid.
    pub(crate) fn slots(&self) -> usize {
        self.slots
    }

    /// The bucket holding `t`, by position; `None` outside the grid.
    #[inline]
    pub(crate) fn slot(&self, t: TimestampMs) -> Option<usize> {
        let d = t
            .checked_sub(self.first)
            .filter(|&d| d >= 0)?
            .unsigned_abs();
        if d >= self.span {
            return None;
        }
        // `d` and the quotient are below 2^52: the product's error is under one.
        let mut q = (d as f64 * self.inverse) as u64;
        if q * self.interval > d {
            q -= 1;
        } else if (q + 1) * self.interval <= d {
            q += 1;
        }
        Some(q as usize)
    }

    /// Milliseconds between two buckets.
    pub(crate) fn interval(&self) -> i64 {
        self.interval as i64
    }

    /// The start of the bucket at `slot`.
    pub(crate) fn bucket(&self, slot: usize) -> TimestampMs {
        self.first + (slot as u64 * self.interval) as i64
    }
}

/// The tags of (group, bucket) cells over a grid: `group × slots + slot`, so a group's cells are
/// consecutive tags, slot by slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cells {
    pub grid: BucketGrid,
}

impl Cells {
    /// Tags of `groups` groups' cells; `None` when that overflows.
    pub(crate) fn tags(&self, groups: usize) -> Option<usize> {
        groups.checked_mul(self.grid.slots())
    }

    /// The tag of group `group`'s cell holding `t` (which must lie in the grid).
    #[inline]
    pub(crate) fn tag(&self, group: u32, t: TimestampMs) -> u32 {
        let slot = self.grid.slot(t);
        debug_assert!(slot.is_some(), "{t} outside the range's grid");
        (group as usize * self.grid.slots() + slot.unwrap_or_default()) as u32
    }

    /// The tags of group `group`'s cells, slot by slot.
    pub(crate) fn of_group(&self, group: usize) -> std::ops::Range<usize> {
        let first = group * self.grid.slots();
        first..first + self.grid.slots()
    }
}

#[cfg(test)]
mod tests {
    use luminate_model::semantics::bucket_start;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn slots_cover_the_range_from_its_start_bucket() {
        let grid = BucketGrid::for_range(-25_000, 31_000, 10_000).unwrap();
        assert_eq!(grid.slots(), 7);
        assert_eq!(grid.bucket(0), -30_000);
        assert_eq!(grid.bucket(6), 30_000);
        assert_eq!(grid.slot(-30_001), None);
        assert_eq!(grid.slot(-30_000), Some(0));
        assert_eq!(grid.slot(-20_001), Some(0));
        assert_eq!(grid.slot(-20_000), Some(1));
        assert_eq!(grid.slot(39_999), Some(6));
        assert_eq!(grid.slot(40_000), None);
        assert_eq!(grid.slot(TimestampMs::MIN), None);
        assert_eq!(grid.slot(TimestampMs::MAX), None);
        assert_eq!(BucketGrid::for_range(5, 5, 10), None);
        assert_eq!(BucketGrid::for_range(0, 5, 0), None);
        assert_eq!(
            BucketGrid::for_range(TimestampMs::MIN, TimestampMs::MAX, 1_000),
            None
        );
    }

    #[test]
    fn a_groups_cells_are_consecutive_tags() {
        let cells = Cells {
            grid: BucketGrid::for_range(0, 240 * 15_000, 15_000).unwrap(),
        };
        assert_eq!(cells.tags(6), Some(6 * 240));
        assert_eq!(cells.tag(0, 0), 0);
        assert_eq!(cells.tag(2, 15_000 * 239 + 14_999), 2 * 240 + 239);
        assert_eq!(cells.of_group(2), 480..720);
        assert_eq!(cells.tags(usize::MAX), None);
    }

    proptest! {
        #[test]
        fn a_slot_is_the_bucket_start_divided(
            start in -(1i64 << 51)..(1i64 << 51),
            len in 1i64..(1 << 40),
            interval in 1i64..(1 << 40),
            at in 0.0f64..1.0,
        ) {
            let end = start + len;
            let grid = BucketGrid::for_range(start, end, interval).unwrap();
            let t = start + ((len - 1) as f64 * at) as i64;
            let want = (bucket_start(t, interval) - bucket_start(start, interval)) / interval;
            prop_assert_eq!(grid.slot(t), Some(want as usize));
            prop_assert_eq!(grid.bucket(want as usize), bucket_start(t, interval));
            // The edges of t's bucket.
            let b = bucket_start(t, interval);
            prop_assert_eq!(grid.slot(b.max(start)), Some(want as usize));
            prop_assert_eq!(grid.slot(b + interval - 1), Some(want as usize));
        }
    }
}
