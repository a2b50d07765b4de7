//! Series windows: one series' samples in a time window folded into the few numbers PromQL needs from
//! them for an instant selector (the latest sample) and for most range functions (`rate`, `increase`,
//! `delta` from the first and last samples, their count and the counter resets; `irate`, `idelta` from
//! the last two; `count_`, `min_`, `max_`, `last_over_time`). A store folds each series as it reads it
//! ([`crate::MetricsStore::series_windows`]), so that a query over millions of points holds one window
//! per series instead of the points — what Prometheus' iterators give its engine.
//!
//! The fold keeps Prometheus' view of a series: one sample per timestamp (of two points at one
//! timestamp, the greater value, as PromQL's raw read keeps the later of points ordered by value), in
//! time order. Windows of disjoint time spans of one series (two parts, a part and the head) merge
//! exactly; windows that overlap in time do not merge ([`SeriesWindow::merge`] says so), and the reader
//! then falls back to reading points.

use std::time::Duration;

use crate::Filter;
use crate::point::Dimensions;
use crate::time::TimestampMs;

/// What [`crate::MetricsStore::series_windows`] folds: the points of `metric` passing `filters` with
/// `start <= timestamp <= end` (both inclusive, as PromQL's windows are), per series.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRequest {
    /// The metric.
    pub metric: String,
    /// Filters sorted by key, one per key; all must hold.
    pub filters: Vec<Filter>,
    /// Inclusive start, Unix ms.
    pub start: TimestampMs,
    /// Inclusive end, Unix ms.
    pub end: TimestampMs,
    /// Most series with a point in the window: more is `QueryTooLarge`.
    pub limit: usize,
    /// How long the fold may run.
    pub timeout: Duration,
}

/// Bytes a store holds per series it folds into one window: the window, and the series' dimensions in
/// the answer.
pub const WINDOW_BYTES_PER_SERIES: u64 = WINDOW_BYTES + SERIES_DIMENSIONS_BYTES;

/// Bytes of one window in an answer of [`SeriesWindows`].
pub const WINDOW_BYTES: u64 = 96;

/// Bytes of a series' dimensions in an answer of [`SeriesWindows`].
pub const SERIES_DIMENSIONS_BYTES: u64 = 256;

/// Bytes a store holds per series and step it folds into groups while the window is held: the window
/// alone.
pub const GROUPED_WINDOW_BYTES_PER_SERIES: u64 = 104;

/// Bytes a store holds per group and step of a grouped fold, at most: the group's count and moment
/// at that step, and the answer's.
pub const GROUP_STEP_BYTES: u64 = 48;

/// The windows of a grouped fold, one per evaluation step of a query: window `i` is
/// `[end(i) − range, end(i)]`, `end(i) = first_end + i × step`, for `i < count` — PromQL's windows of
/// one selector over a range query's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSteps {
    /// The end of the first window (inclusive), Unix ms.
    pub first_end: TimestampMs,
    /// Between two ends, ms (positive).
    pub step: i64,
    /// Windows (at least one).
    pub count: usize,
    /// Each window's length, ms (its start is included).
    pub range: i64,
}

impl WindowSteps {
    /// One window, `[start, end]`.
    pub fn single(start: TimestampMs, end: TimestampMs) -> Self {
        Self {
            first_end: end,
            step: 1,
            count: 1,
            range: end.saturating_sub(start),
        }
    }

    /// Window `i`, `[start, end]`.
    pub fn window(&self, i: usize) -> (TimestampMs, TimestampMs) {
        let end = self
            .first_end
            .saturating_add((i as i64).saturating_mul(self.step));
        (end.saturating_sub(self.range), end)
    }

    /// From the first window's start to the last one's end.
    pub fn span(&self) -> (TimestampMs, TimestampMs) {
        (
            self.window(0).0,
            self.window(self.count.saturating_sub(1)).1,
        )
    }

    /// The windows that may hold a sample in `[lo, hi]`, as a range of indexes.
    pub fn touching(&self, lo: TimestampMs, hi: TimestampMs) -> std::ops::Range<usize> {
        // end(i) >= lo and end(i) - range <= hi.
        let first = (lo.saturating_sub(self.first_end)).div_euclid(self.step)
            + i64::from((lo.saturating_sub(self.first_end)).rem_euclid(self.step) != 0);
        let last =
            (hi.saturating_add(self.range).saturating_sub(self.first_end)).div_euclid(self.step);
        let clamp = |i: i64| i.clamp(0, self.count as i64) as usize;
        clamp(first)..clamp(last.saturating_add(1))
    }
}

/// Each series' windows, one per step (`None` where it has no sample in that step's window), with its
/// dimensions; `None` when the store cannot fold (it does not know how, or a part is damaged): the
/// caller reads points instead.
pub type SeriesWindows = Option<Vec<(Dimensions, Vec<Option<SeriesWindow>>)>>;

/// The value a series' window of step `i` gives (`None`: the series has none there, e.g. `rate` of one
/// sample).
pub type WindowValue = dyn Fn(usize, &SeriesWindow) -> Option<f64> + Send + Sync;

/// Which moment of a group's series' values a grouped fold keeps at each step, besides how many
/// series gave one: what the aggregation reads (`sum` and `avg` the sum, `min`, `max`; `count` none).
/// One number per group and step instead of all four: 100 000 groups × 13 steps of them fit the
/// cache, where a row of four moments per step was a cache miss per line for every series added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Only the count.
    Count,
    /// The sum, added in the store's order of series.
    Sum,
    /// The smallest (a NaN replaced by any number, as PromQL's `min` does).
    Min,
    /// The largest (likewise).
    Max,
}

/// What a grouped fold adds up per group and step: the [`Moment`] of each series' window `value`.
#[derive(Clone)]
pub struct GroupedValue {
    /// A series' value at a step, from its window there.
    pub value: std::sync::Arc<WindowValue>,
    /// Which moment of the values is kept.
    pub moment: Moment,
}

/// A group's series' values at one step, reduced: how many series gave one, and the [`Moment`] of
/// them (`0.0` for [`Moment::Count`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupValue {
    /// Series with a value.
    pub count: u64,
    /// Their moment.
    pub value: f64,
}

impl Moment {
    /// The moment of one value.
    pub fn of(self, v: f64) -> GroupValue {
        GroupValue {
            count: 1,
            value: match self {
                Moment::Count => 0.0,
                _ => v,
            },
        }
    }

    /// Adds value `v` to the moment `held` of others.
    #[inline]
    pub fn add(self, held: &mut f64, v: f64) {
        match self {
            Moment::Count => {}
            Moment::Sum => *held += v,
            Moment::Min => {
                if v < *held || held.is_nan() {
                    *held = v;
                }
            }
            Moment::Max => {
                if v > *held || held.is_nan() {
                    *held = v;
                }
            }
        }
    }

    /// Adds value `v` to a group's values at a step (`None`: none yet).
    pub fn push(self, held: &mut Option<GroupValue>, v: f64) {
        match held {
            Some(g) => {
                g.count += 1;
                self.add(&mut g.value, v);
            }
            None => *held = Some(self.of(v)),
        }
    }

    /// Adds another group's values (their moment is of the same kind).
    pub fn merge(self, held: &mut GroupValue, other: &GroupValue) {
        held.count += other.count;
        self.add(&mut held.value, other.value);
    }
}

/// Per group of a grouped fold's `group_by` values (a missing dimension is `""`), in the order of
/// the values, what its series' window values add up to at each step (`None` where none gave one);
/// `None` as for [`SeriesWindows`].
pub type GroupedWindows = Option<Vec<GroupMoments>>;

/// One group of a grouped fold: its key, and its moments at each step.
pub type GroupMoments = (Vec<(String, String)>, Vec<Option<GroupValue>>);

/// One sample: timestamp (ms) and value.
pub type Sample = (TimestampMs, f64);

/// One series' samples in a window, folded. Never empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesWindow {
    /// Samples (one per timestamp).
    pub count: u64,
    /// The earliest sample.
    pub first: Sample,
    /// The latest sample.
    pub last: Sample,
    /// The sample before the latest (`None` with one sample).
    pub previous: Option<Sample>,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// Counter resets: the sum of the value before each drop (`v[i] < v[i-1]`), which `rate` adds to
    /// the change between the first and last samples.
    pub resets: f64,
}

impl SeriesWindow {
    /// A window of one sample.
    pub fn new((t, v): Sample) -> Self {
        Self {
            count: 1,
            first: (t, v),
            last: (t, v),
            previous: None,
            min: v,
            max: v,
            resets: 0.0,
        }
    }

    /// Adds a sample later than every sample of the window (what [`Fold::push`] does for a strictly
    /// later sample, without its checks: for a caller that knows its samples are strictly ascending).
    #[inline]
    pub fn push_later(&mut self, (t, v): Sample) {
        debug_assert!(t > self.last.0);
        if v < self.last.1 {
            self.resets += self.last.1;
        }
        self.previous = Some(self.last);
        self.last = (t, v);
        self.count += 1;
        // As PromQL's `min_over_time`/`max_over_time` reduce: a NaN is replaced by the next value.
        if v < self.min || self.min.is_nan() {
            self.min = v;
        }
        if v > self.max || self.max.is_nan() {
            self.max = v;
        }
    }

    /// The window of samples sorted by timestamp (equal timestamps in any order); `None` when empty.
    pub fn of_sorted(samples: &[Sample]) -> Option<Self> {
        let mut fold = Fold::default();
        for &s in samples {
            fold.push(s).ok()?;
        }
        fold.finish()
    }

    /// The window of `a`'s and `b`'s samples when one's samples are all earlier than the other's;
    /// `None` when their time spans overlap (or touch: two points at one timestamp would need their
    /// values compared again).
    pub fn merge(a: &Self, b: &Self) -> Option<Self> {
        let (early, late) = if a.last.0 < b.first.0 {
            (a, b)
        } else if b.last.0 < a.first.0 {
            (b, a)
        } else {
            return None;
        };
        let mut resets = early.resets;
        if late.first.1 < early.last.1 {
            resets += early.last.1;
        }
        resets += late.resets;
        let min = if late.min < early.min || early.min.is_nan() {
            late.min
        } else {
            early.min
        };
        let max = if late.max > early.max || early.max.is_nan() {
            late.max
        } else {
            early.max
        };
        Some(Self {
            count: early.count + late.count,
            first: early.first,
            last: late.last,
            previous: late.previous.or(Some(early.last)),
            min,
            max,
            resets,
        })
    }
}

/// Folds samples arriving in time order into a [`SeriesWindow`]: a sample at the timestamp of the one
/// before it replaces it when greater, so the fold keeps one sample per timestamp, the greatest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fold {
    window: Option<SeriesWindow>,
    pending: Option<Sample>,
}

/// A sample came earlier than one folded before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder;

impl Fold {
    /// Adds the next sample; [`OutOfOrder`] when it is earlier than the previous one.
    #[inline]
    pub fn push(&mut self, (t, v): Sample) -> Result<(), OutOfOrder> {
        match &mut self.pending {
            None => self.pending = Some((t, v)),
            Some(p) if t == p.0 => {
                if v > p.1 || p.1.is_nan() {
                    p.1 = v;
                }
            }
            Some(p) if t > p.0 => {
                let done = std::mem::replace(p, (t, v));
                match &mut self.window {
                    None => self.window = Some(SeriesWindow::new(done)),
                    Some(w) => w.push_later(done),
                }
            }
            Some(_) => return Err(OutOfOrder),
        }
        Ok(())
    }

    /// The window of the samples pushed (`None` when none was).
    pub fn finish(self) -> Option<SeriesWindow> {
        let last = self.pending?;
        Some(match self.window {
            None => SeriesWindow::new(last),
            Some(mut w) => {
                w.push_later(last);
                w
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fold_counts_resets_and_keeps_the_last_two_samples() {
        let w = SeriesWindow::of_sorted(&[(10, 5.0), (20, 8.0), (30, 2.0), (40, 3.0), (50, 1.0)])
            .unwrap();
        assert_eq!(w.count, 5);
        assert_eq!(w.first, (10, 5.0));
        assert_eq!(w.last, (50, 1.0));
        assert_eq!(w.previous, Some((40, 3.0)));
        assert_eq!((w.min, w.max), (1.0, 8.0));
        // Drops 8 → 2 and 3 → 1.
        assert_eq!(w.resets, 11.0);
    }

    #[test]
    fn one_sample_per_timestamp_the_greatest() {
        let w = SeriesWindow::of_sorted(&[(10, 5.0), (10, 7.0), (10, 6.0), (20, 1.0)]).unwrap();
        assert_eq!(w.count, 2);
        assert_eq!(w.first, (10, 7.0));
        assert_eq!((w.min, w.max), (1.0, 7.0));
        assert_eq!(w.resets, 7.0);
        assert_eq!(SeriesWindow::of_sorted(&[(10, 1.0), (9, 1.0)]), None);
        assert_eq!(SeriesWindow::of_sorted(&[]), None);
    }

    #[test]
    fn steps_touch_the_windows_that_hold_a_time() {
        // Windows [−5, 0], [5, 10], [15, 20], [25, 30].
        let steps = WindowSteps {
            first_end: 0,
            step: 10,
            count: 4,
            range: 5,
        };
        assert_eq!(steps.span(), (-5, 30));
        assert_eq!(steps.window(2), (15, 20));
        assert_eq!(steps.touching(1, 4), 1..1);
        assert_eq!(steps.touching(0, 5), 0..2);
        assert_eq!(steps.touching(-100, -6), 0..0);
        assert_eq!(steps.touching(11, 14), 2..2);
        assert_eq!(steps.touching(10, 40), 1..4);
        assert_eq!(steps.touching(31, 90), 4..4);
        assert_eq!(WindowSteps::single(3, 9).touching(9, 20), 0..1);
        assert_eq!(WindowSteps::single(3, 9).window(0), (3, 9));
    }

    #[test]
    fn disjoint_windows_merge_in_either_order_as_one_fold() {
        let samples = [(1, 4.0), (2, 1.0), (3, 9.0), (4, 2.0), (5, 2.5), (6, 0.5)];
        let whole = SeriesWindow::of_sorted(&samples).unwrap();
        for cut in 1..samples.len() {
            let a = SeriesWindow::of_sorted(&samples[..cut]).unwrap();
            let b = SeriesWindow::of_sorted(&samples[cut..]).unwrap();
            assert_eq!(SeriesWindow::merge(&a, &b), Some(whole), "cut at {cut}");
            assert_eq!(SeriesWindow::merge(&b, &a), Some(whole), "cut at {cut}");
        }
        let a = SeriesWindow::of_sorted(&samples[..3]).unwrap();
        let b = SeriesWindow::of_sorted(&samples[2..]).unwrap();
        assert_eq!(SeriesWindow::merge(&a, &b), None);
    }
}
