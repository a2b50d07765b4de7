//! head: the buffer of recent points — per tenant and metric, rows held in three columns (series id,
//! timestamp, value), in arrival order but for full chunks put in series order. Knows nothing of series identity (the index owns it), files or
//! threads: the commit pipeline and WAL replay append to it in log order (see `apply`), `exec` scans it.
//!
//! Columns are cut into chunks of at most [`CHUNK_ROWS`] rows, so that growing a big metric never copies
//! it and never leaves more than one chunk of spare capacity, and so that a scan can split the rows
//! among threads and skip a chunk whose time range misses the query. A chunk records its min and max
//! timestamp. A full chunk of a metric of few series is rearranged in series order once it fills
//! (`order`): rows are in arrival order only until then.
//!
//! The head is a *flushable* buffer: [`Head::take`] swaps it for an empty one in O(1), so the rows it
//! held can be written out as parts while new writes go to the new head.
//!
//! Invariants: `points` is the number of rows of every tenant; no chunk is empty; every chunk but the
//! last of a metric is full, unless a delete compacted it; a chunk in series order is never appended to.

mod order;

use std::collections::HashMap;

use luminate_model::{Tenant, TimestampMs};

pub(crate) use order::{MAX_ORDERED_SERIES, Runs};

use crate::index::MetricId;
use crate::record::SeriesId;

/// Most rows of one chunk: 1.25 MiB of columns, few enough to split a big metric among threads.
pub(crate) const CHUNK_ROWS: usize = 1 << 16;

/// Every tenant's recent points.
#[derive(Debug, Default)]
pub(crate) struct Head {
    tenants: HashMap<Tenant, TenantHead>,
    /// Rows held, over every tenant (a flush threshold reads it).
    points: u64,
}

/// One tenant's metrics' rows.
#[derive(Debug, Default)]
pub(crate) struct TenantHead {
    /// By [`MetricId`] (the index's); a metric without rows has an empty entry.
    metrics: Vec<Columns>,
}

/// One metric's rows, chunk by chunk in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    chunks: Vec<Chunk>,
}

/// How a chunk's rows are laid out.
#[derive(Debug, Default)]
enum Layout {
    /// In arrival order, being appended to (or full, not looked at yet).
    #[default]
    Filling,
    /// In arrival order, full (or compacted by a delete): too many series to be worth ordering.
    Arrival,
    /// Grouped by series, each series' rows by time: never appended to again.
    BySeries(Runs),
}

/// Up to [`CHUNK_ROWS`] rows, in three parallel columns.
#[derive(Debug, Default)]
struct Chunk {
    series: Vec<SeriesId>,
    timestamps: Vec<TimestampMs>,
    values: Vec<f64>,
    min_t: TimestampMs,
    max_t: TimestampMs,
    layout: Layout,
}

/// A borrowed run of rows of one metric: the unit a query scans.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows<'a> {
    /// Series of each row.
    pub series: &'a [SeriesId],
    /// Timestamps, parallel to `series`.
    pub timestamps: &'a [TimestampMs],
    /// Values, parallel to `series`.
    pub values: &'a [f64],
    /// No row is older.
    pub min_t: TimestampMs,
    /// No row is newer.
    pub max_t: TimestampMs,
    /// Where each series' rows are when the rows are in series order (`order`); `None` when they
    /// are in arrival order.
    pub runs: Option<&'a Runs>,
}

impl Head {
    /// The tenant's buffer, created empty when new (for appending a batch).
    pub(crate) fn tenant_mut(&mut self, tenant: &Tenant) -> TenantAppender<'_> {
        TenantAppender {
            tenant: self.tenants.entry(tenant.clone()).or_default(),
            points: &mut self.points,
        }
    }

    /// The metric's rows, chunk by chunk, in arrival order (empty when it has none).
    pub(crate) fn rows(&self, tenant: &Tenant, metric: MetricId) -> Vec<Rows<'_>> {
        self.tenants
            .get(tenant)
            .and_then(|t| t.metrics.get(metric as usize))
            .map(|c| c.chunks.iter().map(Chunk::rows).collect())
            .unwrap_or_default()
    }

    /// Every (tenant, metric) holding rows (what a flush writes out).
    pub(crate) fn partitions(&self) -> Vec<(Tenant, MetricId)> {
        let mut out = Vec::new();
        for (tenant, t) in &self.tenants {
            for (m, columns) in t.metrics.iter().enumerate() {
                if !columns.chunks.is_empty() {
                    out.push((tenant.clone(), m as MetricId));
                }
            }
        }
        out
    }

    /// Deletes the metric's rows with timestamp `< before`, compacting its columns; calls `deleted`
    /// with the series of each deleted row and returns how many were deleted.
    pub(crate) fn delete_before(
        &mut self,
        tenant: &Tenant,
        metric: MetricId,
        before: TimestampMs,
        mut deleted: impl FnMut(SeriesId),
    ) -> u64 {
        let Some(columns) = self
            .tenants
            .get_mut(tenant)
            .and_then(|t| t.metrics.get_mut(metric as usize))
        else {
            return 0;
        };
        let mut removed = 0u64;
        for chunk in &mut columns.chunks {
            if chunk.min_t >= before {
                continue;
            }
            removed += chunk.retain_from(before, &mut deleted);
        }
        columns.chunks.retain(|c| !c.series.is_empty());
        self.points -= removed;
        removed
    }

    /// Rows held, over every tenant (the flush of the parts work reads it as its size threshold).
    pub(crate) fn points(&self) -> u64 {
        self.points
    }

    /// Heap bytes held by the columns (capacities), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        let row = size_of::<SeriesId>() + size_of::<TimestampMs>() + size_of::<f64>();
        self.tenants
            .values()
            .flat_map(|t| &t.metrics)
            .map(|c| {
                c.chunks.capacity() * size_of::<Chunk>()
                    + c.chunks
                        .iter()
                        .map(|k| {
                            k.series.capacity() * row
                                + match &k.layout {
                                    Layout::BySeries(runs) => runs.heap_bytes(),
                                    Layout::Filling | Layout::Arrival => 0,
                                }
                        })
                        .sum::<usize>()
            })
            .sum()
    }

    /// Takes every row out (frozen, to be flushed), leaving an empty head. O(1).
    pub(crate) fn take(&mut self) -> Head {
        std::mem::take(self)
    }
}

/// Appends to one tenant's buffer; counts the rows in the head's total.
pub(crate) struct TenantAppender<'a> {
    tenant: &'a mut TenantHead,
    points: &'a mut u64,
}

impl TenantAppender<'_> {
    /// Appends one row to the metric's columns; `true` when the row filled its chunk (then
    /// [`TenantAppender::order_filled`] is to be called for the metric).
    pub(crate) fn append(
        &mut self,
        metric: MetricId,
        series: SeriesId,
        timestamp: TimestampMs,
        value: f64,
    ) -> bool {
        let t = &mut *self.tenant;
        let m = metric as usize;
        if t.metrics.len() <= m {
            t.metrics.resize_with(m + 1, Columns::default);
        }
        *self.points += 1;
        t.metrics[m].append(series, timestamp, value)
    }

    /// Settles the layout of the metric's chunks that filled since the last call: each is put in
    /// series order when `by_series` (the metric has few enough series: [`MAX_ORDERED_SERIES`]) and
    /// its rows hold several rows per series, and is left in arrival order otherwise.
    pub(crate) fn order_filled(&mut self, metric: MetricId, by_series: bool) {
        if let Some(columns) = self.tenant.metrics.get_mut(metric as usize) {
            // Filled chunks not looked at yet are the last full ones (the open chunk after them).
            for chunk in columns.chunks.iter_mut().rev() {
                if chunk.series.len() < CHUNK_ROWS {
                    continue;
                }
                if !matches!(chunk.layout, Layout::Filling) {
                    break;
                }
                chunk.layout = by_series
                    .then(|| {
                        Runs::order(&mut chunk.series, &mut chunk.timestamps, &mut chunk.values)
                    })
                    .flatten()
                    .map_or(Layout::Arrival, Layout::BySeries);
            }
        }
    }
}

impl Columns {
    /// Appends a row; `true` when it filled its chunk.
    fn append(&mut self, series: SeriesId, timestamp: TimestampMs, value: f64) -> bool {
        let full = self.chunks.last().is_none_or(|c| {
            c.series.len() >= CHUNK_ROWS || matches!(c.layout, Layout::BySeries(_))
        });
        if full {
            // The first chunk grows from small (most metrics are small); later ones are born full-size.
            let capacity = if self.chunks.is_empty() {
                0
            } else {
                CHUNK_ROWS
            };
            self.chunks.push(Chunk::with_capacity(capacity, timestamp));
        }
        match self.chunks.last_mut() {
            Some(c) => {
                c.push(series, timestamp, value);
                c.series.len() == CHUNK_ROWS
            }
            None => false,
        }
    }
}

impl Chunk {
    fn with_capacity(rows: usize, first: TimestampMs) -> Self {
        Self {
            series: Vec::with_capacity(rows),
            timestamps: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows),
            min_t: first,
            max_t: first,
            layout: Layout::Filling,
        }
    }

    fn push(&mut self, series: SeriesId, timestamp: TimestampMs, value: f64) {
        self.series.push(series);
        self.timestamps.push(timestamp);
        self.values.push(value);
        self.min_t = self.min_t.min(timestamp);
        self.max_t = self.max_t.max(timestamp);
    }

    fn rows(&self) -> Rows<'_> {
        Rows {
            series: &self.series,
            timestamps: &self.timestamps,
            values: &self.values,
            min_t: self.min_t,
            max_t: self.max_t,
            runs: match &self.layout {
                Layout::BySeries(runs) => Some(runs),
                Layout::Filling | Layout::Arrival => None,
            },
        }
    }

    /// Keeps the rows with timestamp `>= before`, in order; returns how many were removed.
    fn retain_from(&mut self, before: TimestampMs, deleted: &mut impl FnMut(SeriesId)) -> u64 {
        let len = self.series.len();
        let mut kept = 0;
        let (mut min_t, mut max_t) = (TimestampMs::MAX, TimestampMs::MIN);
        for i in 0..len {
            let t = self.timestamps[i];
            if t >= before {
                self.series[kept] = self.series[i];
                self.timestamps[kept] = t;
                self.values[kept] = self.values[i];
                kept += 1;
                min_t = min_t.min(t);
                max_t = max_t.max(t);
            } else {
                deleted(self.series[i]);
            }
        }
        self.series.truncate(kept);
        self.timestamps.truncate(kept);
        self.values.truncate(kept);
        (self.min_t, self.max_t) = (min_t, max_t);
        // What is kept of rows in series order is still in series order; their runs moved.
        if let Layout::BySeries(runs) = &mut self.layout {
            *runs = Runs::of_grouped(&self.series);
        }
        if kept < len / 2 {
            // A mostly deleted chunk gives its memory back (retention deletes whole old chunks anyway).
            self.series.shrink_to_fit();
            self.timestamps.shrink_to_fit();
            self.values.shrink_to_fit();
        }
        (len - kept) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(head: &Head, metric: MetricId) -> Vec<(SeriesId, TimestampMs, f64)> {
        head.rows(&Tenant::new("t"), metric)
            .iter()
            .flat_map(|r| (0..r.series.len()).map(|i| (r.series[i], r.timestamps[i], r.values[i])))
            .collect()
    }

    #[test]
    fn rows_keep_arrival_order_across_chunks() {
        let mut head = Head::default();
        let n = CHUNK_ROWS + 10;
        let mut t = head.tenant_mut(&Tenant::new("t"));
        for i in 0..n {
            t.append(1, (i % 7) as SeriesId, (n - i) as i64, i as f64);
        }
        t.append(0, 9, 5, 0.5);
        assert_eq!(head.points(), n as u64 + 1);
        let chunks = head.rows(&Tenant::new("t"), 1);
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[1].min_t, chunks[1].max_t), (1, 10));
        let rows = rows_of(&head, 1);
        assert_eq!(rows.len(), n);
        assert!(
            rows.iter()
                .enumerate()
                .all(|(i, r)| *r == ((i % 7) as SeriesId, (n - i) as i64, i as f64))
        );
        assert_eq!(rows_of(&head, 0), vec![(9, 5, 0.5)]);
        assert!(head.rows(&Tenant::new("t"), 7).is_empty());
        assert!(head.rows(&Tenant::new("u"), 1).is_empty());
    }

    #[test]
    fn a_filled_chunk_is_put_in_series_order_when_asked_and_then_takes_no_more_rows() {
        let t = Tenant::new("t");
        let mut head = Head::default();
        let mut rows = head.tenant_mut(&t);
        // Metric 0: 8 series interleaved, newest first; metric 1 the same, left in arrival order.
        let row = |i: usize| ((i % 8) as SeriesId, (CHUNK_ROWS + 10 - i) as i64, i as f64);
        let mut filled = Vec::new();
        for i in 0..CHUNK_ROWS + 3 {
            let (s, ts, v) = row(i);
            for m in [0, 1] {
                if rows.append(m, s, ts, v) {
                    filled.push((m, i));
                }
            }
        }
        assert_eq!(filled, [(0, CHUNK_ROWS - 1), (1, CHUNK_ROWS - 1)]);
        rows.order_filled(0, true);
        rows.order_filled(1, false);
        let chunks = head.rows(&t, 0);
        let runs = chunks[0].runs.expect("in series order");
        assert_eq!(runs.series, (0..8).collect::<Vec<SeriesId>>());
        assert_eq!(runs.starts, (0..=8).map(|k| k * 8192).collect::<Vec<u32>>());
        // Series 0's rows of the chunk, by time.
        let mut want: Vec<(i64, f64)> = (0..CHUNK_ROWS)
            .step_by(8)
            .map(|i| (row(i).1, row(i).2))
            .collect();
        want.reverse();
        let got: Vec<(i64, f64)> = (0..8192)
            .map(|r| (chunks[0].timestamps[r], chunks[0].values[r]))
            .collect();
        assert_eq!(got, want);
        assert!(head.rows(&t, 1)[0].runs.is_none());
        // Every row is still there, once.
        let mut got = rows_of(&head, 0);
        got.sort_by_key(|r| r.2 as usize);
        assert_eq!(got, (0..CHUNK_ROWS + 3).map(row).collect::<Vec<_>>());
        assert_eq!(rows_of(&head, 1), got);
        // A delete keeps the rest in series order, with its runs moved; new rows go to a new chunk.
        let before = 30_000;
        head.delete_before(&t, 0, before, |_| {});
        let chunks = head.rows(&t, 0);
        assert!(chunks[0].timestamps.iter().all(|&ts| ts >= before));
        assert_eq!(chunks[0].runs, Some(&Runs::of_grouped(chunks[0].series)));
        assert_eq!(chunks[0].runs.map(|r| r.series.len()), Some(8));
        let compacted = chunks[0].series.len();
        head.tenant_mut(&t).append(0, 3, 1, 1.0);
        let chunks = head.rows(&t, 0);
        // (The delete took the second chunk's 3 rows, the oldest, whole.)
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            (chunks[0].series.len(), chunks[1].series.len()),
            (compacted, 1)
        );
    }

    #[test]
    fn delete_before_compacts_and_reports_each_deleted_row() {
        let mut head = Head::default();
        let mut t = head.tenant_mut(&Tenant::new("t"));
        for (s, ts) in [(0, 30), (1, 10), (0, 20), (1, 40), (2, 5)] {
            t.append(0, s, ts, ts as f64);
        }
        t.append(1, 0, 1, 1.0);
        let mut gone = Vec::new();
        assert_eq!(
            head.delete_before(&Tenant::new("t"), 0, 25, |s| gone.push(s)),
            3
        );
        assert_eq!(gone, vec![1, 0, 2]);
        assert_eq!(rows_of(&head, 0), vec![(0, 30, 30.0), (1, 40, 40.0)]);
        assert_eq!(
            (head.rows(&Tenant::new("t"), 0)[0].min_t, head.points()),
            (30, 3)
        );
        // Deleting everything drops the chunk; the other metric is untouched.
        assert_eq!(head.delete_before(&Tenant::new("t"), 0, 100, |_| {}), 2);
        assert!(head.rows(&Tenant::new("t"), 0).is_empty());
        assert_eq!(rows_of(&head, 1), vec![(0, 1, 1.0)]);
        assert_eq!(head.delete_before(&Tenant::new("u"), 0, 100, |_| {}), 0);
    }

    #[test]
    fn take_freezes_the_rows_and_leaves_an_empty_head() {
        let mut head = Head::default();
        head.tenant_mut(&Tenant::new("t")).append(0, 0, 1, 1.0);
        let frozen = head.take();
        assert_eq!((frozen.points(), head.points()), (1, 0));
        assert_eq!(rows_of(&frozen, 0), vec![(0, 1, 1.0)]);
        assert!(head.rows(&Tenant::new("t"), 0).is_empty());
        // The new head takes writes as the old one did.
        head.tenant_mut(&Tenant::new("t")).append(0, 0, 2, 2.0);
        assert_eq!(rows_of(&head, 0), vec![(0, 2, 2.0)]);
    }
}
