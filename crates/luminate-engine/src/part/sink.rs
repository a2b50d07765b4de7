//! sink: writes a stream of series (ids ascending, each series' rows sorted) as the parts of one
//! partition — a new part whenever the next series would pass [`MAX_ROWS`] — each under a fresh file
//! name. What flush and compaction both end in; the file names come from the caller ([`PartFiles`]), so
//! this module knows nothing of the catalog that hands them out, nor of manifests.

use std::path::PathBuf;

use luminate_model::{Tenant, TimestampMs};

use super::{MAX_ROWS, Part, PartWriter};
use crate::EngineError;
use crate::record::SeriesId;

/// Where a sink's parts go: their directory and fresh file names in it (the engine's catalog hands out
/// the numbers: `crate::shared::Shared`).
pub(crate) trait PartFiles {
    /// The directory part files are written to.
    fn parts_dir(&self) -> PathBuf;
    /// Reserves a file name no part had before.
    fn next_part_file(&self) -> String;
}

/// Writes the series of one partition as one or more parts (a new part past `MAX_ROWS`), each under a
/// fresh file number.
pub(crate) struct PartSink<'a> {
    files: &'a dyn PartFiles,
    /// `files.parts_dir()`, asked once.
    dir: PathBuf,
    /// The width of the parts' block summaries, if they carry any ([`super::summary_block_ms`]).
    summary_block_ms: Option<i64>,
    tenant: Tenant,
    metric: String,
    day: i64,
    current: Option<(PartWriter, String, u64)>,
    done: Vec<(String, PathBuf)>,
}

impl<'a> PartSink<'a> {
    /// A sink for (`tenant`, `metric`, `day`), whose parts carry block summaries `summary_block_ms`
    /// wide, if any.
    pub(crate) fn new(
        files: &'a dyn PartFiles,
        tenant: Tenant,
        metric: &str,
        day: i64,
        summary_block_ms: Option<i64>,
    ) -> Self {
        Self {
            files,
            dir: files.parts_dir(),
            summary_block_ms,
            tenant,
            metric: metric.to_owned(),
            day,
            current: None,
            done: Vec::new(),
        }
    }

    /// The UTC day of the partition.
    pub(crate) fn day(&self) -> i64 {
        self.day
    }

    /// Appends one series (ids ascending, timestamps sorted).
    pub(crate) fn push(
        &mut self,
        id: SeriesId,
        timestamps: &[TimestampMs],
        values: &[f64],
    ) -> Result<(), EngineError> {
        let len = timestamps.len() as u64;
        if self
            .current
            .as_ref()
            .is_some_and(|(_, _, rows)| rows + len > MAX_ROWS)
        {
            self.finish_current()?;
        }
        if self.current.is_none() {
            let file = self.files.next_part_file();
            let path = self.dir.join(&file);
            let writer = PartWriter::create(&path, self.tenant.clone(), &self.metric, self.day)?
                .with_summaries(self.summary_block_ms);
            self.current = Some((writer, file, 0));
        }
        if let Some((writer, _, rows)) = &mut self.current {
            writer.push_series(id, timestamps, values)?;
            *rows += len;
        }
        Ok(())
    }

    fn finish_current(&mut self) -> Result<(), EngineError> {
        if let Some((writer, file, _)) = self.current.take() {
            writer.finish()?;
            let path = self.dir.join(&file);
            self.done.push((file, path));
        }
        Ok(())
    }

    /// Finishes the last part; returns every part written, opened (nothing when no series came). On
    /// failure, no part of the sink is left on disk.
    pub(crate) fn finish(mut self) -> Result<Vec<(String, Part)>, EngineError> {
        self.finish_current()?;
        let mut opened = Vec::with_capacity(self.done.len());
        for (file, path) in &self.done {
            opened.push((file.clone(), Part::open(path)?));
        }
        // The caller owns the files now.
        self.done.clear();
        Ok(opened)
    }
}

/// A sink dropped before [`PartSink::finish`] succeeded (a write failed, for want of space say) removes
/// the parts it finished: no manifest will list them (the unfinished one's writer removes its own temp
/// file). Best effort: a file left behind is garbage that start-up removes.
impl Drop for PartSink<'_> {
    fn drop(&mut self) {
        for (_, path) in self.done.drain(..) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an unlisted part file");
            }
        }
    }
}
