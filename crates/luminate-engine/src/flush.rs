//! flush: the flusher thread, which turns a frozen head into parts. The commit thread freezes the head
//! (see `commit`) and hands it over with the WAL segment `S` its records end before; the flusher then
//! 1. appends to the series log every series defined since the previous flush, and fsyncs it;
//! 2. writes one part per (tenant, metric, UTC day) of the frozen head, rows sorted by (series,
//!    timestamp, value), split when a partition passes `part::MAX_ROWS`;
//! 3. under the catalog lock, writes the manifest (old parts + new parts with the frozen head's
//!    tombstones, `wal_start = S`) and swaps the snapshot (frozen head out, parts in: one `Arc` swap);
//! 4. deletes the WAL segments below `S`, answers the commit thread and nudges the compactor.
//!
//! A crash before 3 leaves the old manifest (the frozen rows are replayed from the WAL; the new part
//! files are unlisted and removed at start-up); after 3, the new manifest's parts hold them and replay
//! starts at `S`. A failure poisons the engine: writes stop, reads go on serving the frozen head —
//! except a failure for want of space (`NoSpace`), after which the flush removes the parts it wrote
//! (and the series log and the manifest have rolled back their own writes) and tries again with a
//! backoff, the frozen head still served and its records still in the WAL (`crate::space`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use luminate_model::TimestampMs;

use crate::error::EngineError;
use crate::head::{Head, Rows};
use crate::index::MetricId;
use crate::part::{Part, PartSink};
use crate::record::SeriesId;
use crate::series_log::SeriesLog;
use crate::shared::Shared;
use crate::space::{Backoff, Job};
use crate::stored::{LivePart, Stored};
use crate::wal;

/// Milliseconds per UTC day: parts partition by day.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Rows a flush sorts at once (about 6 MB of 24-byte rows): a partition is sorted slice by slice of
/// its series ids.
const SORT_SLICE_ROWS: usize = 1 << 18;

/// A frozen head to flush.
pub(crate) struct FlushJob {
    /// The rows.
    pub frozen: Arc<Head>,
    /// First WAL segment holding records the frozen head lacks.
    pub wal_start: u64,
}

/// The flusher thread's state.
pub(crate) struct Flusher {
    pub shared: Arc<Shared>,
    /// The series log (`<data_dir>/series`).
    pub series_log: SeriesLog,
    /// The WAL's directory, whose old segments a flush deletes.
    pub wal_dir: PathBuf,
    /// Wakes the compactor after a flush.
    pub compact: SyncSender<()>,
}

impl Flusher {
    /// Starts the thread: it flushes each job, answers on `done`, and stops when `jobs` closes.
    pub(crate) fn spawn(
        mut self,
        jobs: Receiver<FlushJob>,
        done: SyncSender<()>,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("luminate-flush".to_owned())
            .spawn(move || {
                for job in jobs {
                    self.flush_until_done(&job);
                    let _ = done.send(());
                    let _ = self.compact.try_send(());
                }
            })
    }

    /// Flushes one frozen head, retrying with a backoff while it fails for want of space (each attempt
    /// cleaned up after itself: see [`Flusher::flush`]); any other failure poisons. Gives up when the
    /// engine stops or is poisoned meanwhile: the head's records are still in the WAL, replayed at the
    /// next start.
    fn flush_until_done(&mut self, job: &FlushJob) {
        let mut backoff = Backoff::default();
        loop {
            let started = std::time::Instant::now();
            let result = self.flush(job);
            self.shared
                .observer
                .flushed(started.elapsed(), result.is_ok());
            match result {
                Ok(parts) => {
                    self.shared.space.clear(Job::Flush);
                    tracing::debug!(
                        points = job.frozen.points(),
                        parts,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "flushed the head"
                    );
                    return;
                }
                Err(e @ EngineError::NoSpace { .. }) => {
                    self.shared.observer.no_space(Job::Flush.as_str());
                    self.shared.space.set(Job::Flush, &e, 0);
                    let shared = &self.shared;
                    if !backoff.sleep(|| shared.stopping() || shared.poisoned().is_some()) {
                        tracing::warn!(
                            points = job.frozen.points(),
                            "giving up a flush stalled for want of space: its points stay in the WAL \
                             and are replayed at the next start"
                        );
                        return;
                    }
                }
                Err(e) => {
                    self.shared.poison(format!("flushing the head failed: {e}"));
                    return;
                }
            }
        }
    }

    /// Flushes one frozen head; returns the parts written. A failure before the manifest names the new
    /// parts removes them again (`NoSpace` then leaves everything as it was, to be retried).
    fn flush(&mut self, job: &FlushJob) -> Result<usize, EngineError> {
        // Parts refer to series by id: their definitions must be durable first.
        self.series_log.persist(|| self.shared.read_index())?;
        self.shared.set_series_log_end(self.series_log.end());
        let mut written = Vec::new();
        if let Err(e) = self.write_parts(&job.frozen, &mut written) {
            self.remove_parts(&written);
            return Err(e);
        }
        let count = written.len();
        let mut catalog = self.shared.catalog();
        let current = self.shared.read_stored();
        let mut parts = current.parts.clone();
        for (metric, file, part) in written {
            // Deletes since the freeze hid rows of the frozen head: its parts inherit the tombstone.
            let floor = current
                .frozen
                .as_ref()
                .and_then(|f| f.tombstones.get(&(part.meta().tenant.clone(), metric)))
                .copied()
                .filter(|&before| before > part.meta().min_t);
            parts.push(LivePart {
                part: Arc::new(part),
                file,
                deleted_before: floor,
            });
        }
        let next = Stored {
            frozen: None,
            parts,
        };
        if let Err(e) = self
            .shared
            .write_manifest(job.wal_start, catalog.next_part, &next)
        {
            drop(catalog);
            let files: Vec<&str> = next.parts[current.parts.len()..]
                .iter()
                .map(|lp| lp.file.as_str())
                .collect();
            self.shared.remove_unlisted_parts(&files);
            return Err(e);
        }
        catalog.wal_start = job.wal_start;
        self.shared.set_stored(&catalog, next);
        drop(catalog);
        wal::remove_segments_below(&self.wal_dir, job.wal_start)?;
        Ok(count)
    }

    /// The width of the block summaries the parts of one frozen partition carry, if any: from its
    /// rows, its distinct series (one bit per series id) and its time span.
    fn summary_block_ms(
        &self,
        chunks: &[Rows<'_>],
        max_series: SeriesId,
        rows: usize,
    ) -> Option<i64> {
        let min_rows = self.shared.summary_min_rows;
        if min_rows == 0 {
            return crate::part::summary_block_ms(0, 0, 0, 0, 0);
        }
        let series = crate::part::distinct_series(
            chunks.iter().flat_map(|c| c.series.iter().copied()),
            max_series,
        );
        let min_t = chunks.iter().map(|c| c.min_t).min().unwrap_or_default();
        let max_t = chunks.iter().map(|c| c.max_t).max().unwrap_or_default();
        crate::part::summary_block_ms(rows as u64, series, min_t, max_t, min_rows)
    }

    /// Removes the part files of a flush that failed before its manifest listed them.
    fn remove_parts(&self, written: &[(MetricId, String, Part)]) {
        let files: Vec<&str> = written.iter().map(|(_, file, _)| file.as_str()).collect();
        self.shared.remove_unlisted_parts(&files);
    }

    /// Writes the frozen head's partitions into `out`: (metric id, file name, opened part) of each part.
    /// On failure `out` holds the parts finished before it (the unfinished one is removed already).
    fn write_parts(
        &self,
        frozen: &Head,
        out: &mut Vec<(MetricId, String, Part)>,
    ) -> Result<(), EngineError> {
        for (tenant, metric) in frozen.partitions() {
            let name = match self.shared.read_index().tenant(&tenant) {
                Some(ti) => ti.metric_name(metric).to_owned(),
                None => continue,
            };
            let chunks = frozen.rows(&tenant, metric);
            // Rows per (day, slice of the series ids): each slice is gathered and sorted on its own,
            // so the flush holds one slice's copy (at most about `SORT_SLICE_ROWS` rows of 24 bytes)
            // instead of a 32-byte copy of the whole partition (64 MB for a full head).
            let mut counts: BTreeMap<(i64, SeriesId), usize> = BTreeMap::new();
            let max_series = chunks
                .iter()
                .flat_map(|c| c.series.iter().copied())
                .max()
                .unwrap_or(0);
            let rows: usize = chunks.iter().map(|c| c.series.len()).sum();
            let summary_block_ms = self.summary_block_ms(&chunks, max_series, rows);
            // Slices of `1 << shift` consecutive ids (a shift, not a division, per row and pass).
            let slices = rows.div_ceil(SORT_SLICE_ROWS).max(1) as u64;
            let shift = (u64::from(max_series) + 1)
                .div_ceil(slices)
                .next_power_of_two()
                .trailing_zeros();
            let slice_of = |series: SeriesId| series >> shift;
            for chunk in &chunks {
                for (&series, &t) in chunk.series.iter().zip(chunk.timestamps) {
                    *counts
                        .entry((t.div_euclid(DAY_MS), slice_of(series)))
                        .or_default() += 1;
                }
            }
            let mut slice_rows: Vec<(SeriesId, TimestampMs, f64)> = Vec::new();
            let mut timestamps = Vec::new();
            let mut values = Vec::new();
            let mut sink: Option<PartSink<'_>> = None;
            for (&(day, slice), &n) in &counts {
                if sink.as_ref().is_none_or(|s| s.day() != day) {
                    if let Some(done) = sink.take() {
                        out.extend(done.finish()?.into_iter().map(|(f, p)| (metric, f, p)));
                    }
                    sink = Some(PartSink::new(
                        &*self.shared,
                        tenant.clone(),
                        &name,
                        day,
                        summary_block_ms,
                    ));
                }
                slice_rows.clear();
                slice_rows.reserve(n);
                // The day's first ms (`day` came from a timestamp, so this does not overflow); a row is
                // in the day when it is at most a day past it (no division per row).
                let day_start = day * DAY_MS;
                for chunk in &chunks {
                    for i in 0..chunk.series.len() {
                        let (series, t) = (chunk.series[i], chunk.timestamps[i]);
                        if slice_of(series) == slice && t >= day_start && t - day_start < DAY_MS {
                            slice_rows.push((series, t, chunk.values[i]));
                        }
                    }
                }
                slice_rows
                    .sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
                if let Some(sink) = sink.as_mut() {
                    for series in slice_rows.chunk_by(|a, b| a.0 == b.0) {
                        timestamps.clear();
                        values.clear();
                        timestamps.extend(series.iter().map(|r| r.1));
                        values.extend(series.iter().map(|r| r.2));
                        sink.push(series[0].0, &timestamps, &values)?;
                    }
                }
            }
            if let Some(done) = sink {
                out.extend(done.finish()?.into_iter().map(|(f, p)| (metric, f, p)));
            }
        }
        Ok(())
    }
}
