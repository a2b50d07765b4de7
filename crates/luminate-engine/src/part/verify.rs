//! verify: reading every byte of a part against its checksums — each page's two blobs and each chunk of
//! block summaries — for `luminate check` and for the query that met a damaged page (`crate::quarantine`).
//! [`Part::open`] already verified the header, footer and section; a scan verifies only the blobs it
//! reads, so this is what says a whole part is intact.

use super::reader::{Part, Selection};
use super::summary::SummaryColumns;
use crate::error::EngineError;

impl Part {
    /// Decodes every page (timestamps and values) and every summary chunk (all columns); the first
    /// blob whose bytes do not match their checksum or do not decode is `Corruption` naming the file
    /// and offset.
    pub(crate) fn verify(&self) -> Result<(), EngineError> {
        let mut scan = self.scan(Selection::All, ..);
        while scan.next_run()?.is_some() {}
        let columns = SummaryColumns {
            sum: true,
            min: true,
            max: true,
        };
        if let Some(mut summaries) = self.summaries(columns) {
            for &id in self.series_ids() {
                summaries.series(id)?;
            }
        }
        Ok(())
    }
}
