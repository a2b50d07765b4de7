//! The series table of one tenant: per dense [`SeriesId`], its metric, its dimension pairs and its stored
//! point count, in two vectors (no allocation per series). Knows ids only; `TenantIndex` resolves them.
//!
//! A series' metric, pair end and point count share one 16-byte row: finding a series (compare it, then
//! check it is live) and counting its points touch one cache line of the table instead of one per
//! column; separate columns took three cache misses per lookup.
//!
//! A series' pairs are stored as [`PostingId`]s of its metric (the posting names the key and value),
//! sorted by key as `Dimensions` are: 4 bytes per pair instead of 8 for (key, value) ids, and counting a
//! point reaches each posting's counters without a hash lookup.

use super::metric::{MetricId, PostingId};
use crate::record::SeriesId;

/// Rows indexed by series id, and their pairs.
#[derive(Debug, Default)]
pub(crate) struct SeriesTable {
    rows: Vec<Row>,
    pairs: Vec<PostingId>,
}

/// One series.
#[derive(Debug, Clone, Copy)]
struct Row {
    metric: MetricId,
    /// End offset of the series' pairs in `pairs` (its start is the end of the previous row).
    pair_end: u32,
    /// Stored points: the series is live while non-zero.
    points: u64,
}

impl SeriesTable {
    /// Number of series (the next id).
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The series' metric.
    pub(crate) fn metric(&self, id: SeriesId) -> MetricId {
        self.rows[id as usize].metric
    }

    /// The series' pairs as postings of its metric, in key order.
    pub(crate) fn pairs(&self, id: SeriesId) -> &[PostingId] {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.rows[id - 1].pair_end as usize
        };
        &self.pairs[start..self.rows[id].pair_end as usize]
    }

    /// The series' stored points.
    pub(crate) fn points(&self, id: SeriesId) -> u64 {
        self.rows[id as usize].points
    }

    /// Checks that a series with `pairs` pairs can be appended; returns its id.
    pub(crate) fn next_id(&self, pairs: usize) -> Result<SeriesId, String> {
        let id = SeriesId::try_from(self.len())
            .map_err(|_| format!("the tenant has used all {} series ids", SeriesId::MAX))?;
        u32::try_from(self.pairs.len() + pairs)
            .map_err(|_| "the tenant's series table holds 4 Gi dimension pairs".to_owned())?;
        Ok(id)
    }

    /// Appends a series (after `next_id` said it fits).
    pub(crate) fn push(&mut self, metric: MetricId, pairs: impl IntoIterator<Item = PostingId>) {
        self.pairs.extend(pairs);
        self.rows.push(Row {
            metric,
            pair_end: self.pairs.len() as u32,
            points: 0,
        });
    }

    /// Adds `delta` stored points; returns whether the series was live before and is live after.
    pub(crate) fn add_points(&mut self, id: SeriesId, delta: i64) -> (bool, bool) {
        let n = &mut self.rows[id as usize].points;
        let was = *n > 0;
        *n = n.saturating_add_signed(delta);
        (was, *n > 0)
    }

    /// Heap bytes held (capacities), for memory accounting.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.rows.capacity() * size_of::<Row>() + self.pairs.capacity() * size_of::<PostingId>()
    }
}
