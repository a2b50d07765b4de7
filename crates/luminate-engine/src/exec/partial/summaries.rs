//! The block-summary half of a part scan: which blocks of a part a moments query takes from their
//! summaries (part format 2) and which it scans, and the scan that does both.

use super::*;

impl Partial {
    /// [`Partial::scan_part`] for moments from the part's block summaries: a block that lies inside
    /// `[start, end)` (and inside one bucket) is added from its summary, the selected series' rows in
    /// the blocks the range or a bucket edge cuts are scanned, reading only the pages that hold them
    /// (rows of summarised blocks in those pages are skipped). `false` (nothing done) when the part
    /// has no summaries (format 1) or none of its blocks can be used: the caller scans rows.
    pub(super) fn scan_part_summaries(
        &mut self,
        part: &Part,
        candidates: &[SeriesId],
        spec: &ScanSpec<'_>,
        ctx: &QueryContext,
    ) -> Result<bool, StoreError> {
        let Self::Moments {
            totals,
            buckets,
            compact,
        } = self
        else {
            return Ok(false);
        };
        let Some(block_ms) = part.block_ms() else {
            return Ok(false);
        };
        let meta = part.meta();
        let blocks = Blocks {
            block_ms,
            start: spec.start,
            end: spec.end,
            interval: spec.interval,
            min_t: meta.min_t,
            max_t: meta.max_t,
        };
        if !blocks.any_summarised() {
            return Ok(false);
        }
        let Some(mut summaries) = part.summaries(spec.summary) else {
            return Ok(false);
        };
        if spec.interval.is_none() && meta.min_t >= spec.start && meta.max_t < spec.end {
            // Every block is inside the range: where most of the part's series in the candidates'
            // span are selected, the span's summaries are taken chunk by chunk (the unselected
            // skipped through the map), into the compact accumulators when there are.
            let (Some(&lo), Some(&hi)) = (candidates.first(), candidates.last()) else {
                return Ok(true);
            };
            let ids = part.series_ids();
            let span = ids.partition_point(|&id| id < lo)..ids.partition_point(|&id| id <= hi);
            if candidates.len() * 2 >= span.len() {
                let mut seen = 0usize;
                summaries.for_each_series(span, |id, entries| {
                    seen += 1;
                    if seen.is_multiple_of(CHECK_EVERY) {
                        ctx.check()?;
                    }
                    if let Some(tag) = spec.map.get(id) {
                        add_summaries(tag as usize, entries, totals, compact);
                    }
                    Ok::<_, StoreError>(())
                })?;
                return Ok(true);
            }
        }
        let mut pages = part.page_mask();
        let mut cut = Vec::new();
        for (i, &id) in candidates.iter().enumerate() {
            if i % CHECK_EVERY == 0 {
                ctx.check()?;
            }
            let Some(tag) = spec.map.get(id) else {
                continue;
            };
            let Some((mut row, entries)) = summaries.series(id).map_err(StoreError::from)? else {
                continue;
            };
            let mut needs_rows = false;
            for e in entries {
                match blocks.use_of(e.block) {
                    BlockUse::Summary(bucket) => {
                        let m = Moments {
                            count: u64::from(e.count),
                            sum: e.sum,
                            min: e.min,
                            max: e.max,
                        };
                        match (bucket, &mut *buckets) {
                            (Some(bucket), Some(buckets)) => buckets.cell(tag, bucket).merge(&m),
                            _ => compact.merge_or_total(totals, tag as usize, &m),
                        }
                    }
                    BlockUse::Rows => {
                        pages.mark_rows(row..row + e.count);
                        needs_rows = true;
                    }
                    BlockUse::Outside => {}
                }
                row += e.count;
            }
            if needs_rows {
                cut.push(id);
            }
        }
        if cut.is_empty() {
            return Ok(true);
        }
        let mut scan = part
            .scan(Selection::Only(&cut), spec.start..spec.end)
            .only_pages(&pages);
        if spec.count_only {
            scan = scan.timestamps_only();
        }
        super::super::each_run(scan, ctx, |run| {
            let Some(tag) = spec.map.get(run.series) else {
                return Ok(());
            };
            for (i, &t) in run.timestamps.iter().enumerate() {
                if let BlockUse::Summary(_) = blocks.use_of(t.div_euclid(block_ms)) {
                    // Added from its block's summary.
                    continue;
                }
                // Timestamps-only runs (`count`) carry no values.
                let v = run.values.get(i).copied().unwrap_or(0.0);
                match buckets.as_mut() {
                    Some(buckets) => buckets.cell(tag, t).add(v),
                    None => compact.add_or_total(totals, tag as usize, v),
                }
            }
            Ok(())
        })?;
        Ok(true)
    }
}

/// Adds a series' block summaries to its group's moments: its rows and sum only, into the compact
/// accumulators, where the aggregation needs no more.
fn add_summaries(
    tag: usize,
    entries: &[crate::part::BlockSummary],
    totals: &mut [Moments],
    compact: &mut Compact,
) {
    match compact {
        Compact::Counts(counts) => {
            counts[tag] += entries.iter().map(|e| u64::from(e.count)).sum::<u64>();
        }
        Compact::CountSums(sums) => {
            let (count, sum) = &mut sums[tag];
            for e in entries {
                *count += u64::from(e.count);
                *sum += e.sum;
            }
        }
        Compact::CountMaxes(maxes) => {
            for e in entries {
                merge_max(&mut maxes[tag], u64::from(e.count), e.max);
            }
        }
        Compact::Unused => {
            for e in entries {
                totals[tag].merge(&Moments {
                    count: u64::from(e.count),
                    sum: e.sum,
                    min: e.min,
                    max: e.max,
                });
            }
        }
    }
}

/// Which blocks of a part a moments scan takes from their summaries.
struct Blocks {
    block_ms: i64,
    start: TimestampMs,
    end: TimestampMs,
    interval: Option<i64>,
    /// The part's time range: a block's rows lie in it, so a block is used when its part in the
    /// part's range lies inside the query's.
    min_t: TimestampMs,
    max_t: TimestampMs,
}

/// What a scan does with one block of a series.
enum BlockUse {
    /// Its summary answers: the block's rows in the part lie inside `[start, end)` and, with an
    /// interval, inside the bucket starting here.
    Summary(Option<TimestampMs>),
    /// The range or a bucket edge cuts it: its rows are scanned.
    Rows,
    /// None of its rows is in the range.
    Outside,
}

impl Blocks {
    /// Blocks looked at by [`Blocks::any_summarised`] before giving up.
    const LOOK_AHEAD: i64 = 64;

    fn use_of(&self, block: i64) -> BlockUse {
        let (first, last) = block_span(block, self.block_ms);
        let (first, last) = (first.max(self.min_t), last.min(self.max_t));
        if last < self.start || first >= self.end {
            return BlockUse::Outside;
        }
        if first < self.start || last >= self.end {
            return BlockUse::Rows;
        }
        match self.interval {
            None => BlockUse::Summary(None),
            Some(interval) => {
                let bucket = bucket_start(first, interval);
                if bucket == bucket_start(last, interval) {
                    BlockUse::Summary(Some(bucket))
                } else {
                    BlockUse::Rows
                }
            }
        }
    }

    /// True when some block among the first few the range holds is answered by its summary: when
    /// none is (a range inside one block, buckets narrower than a block), summaries are not read.
    fn any_summarised(&self) -> bool {
        let (from, to) = (self.start.max(self.min_t), self.end.min(self.max_t));
        if from > to {
            return false;
        }
        let first = from.div_euclid(self.block_ms);
        let last = to
            .div_euclid(self.block_ms)
            .min(first.saturating_add(Self::LOOK_AHEAD));
        (first..=last).any(|b| matches!(self.use_of(b), BlockUse::Summary(_)))
    }
}
