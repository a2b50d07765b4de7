//! Exports (`MetricsStore::export`): one `SELECT … FORMAT RowBinary` over the points table, its
//! answer read off the HTTP body frame by frame as ClickHouse sends it and decoded into
//! [`ExportBatch`]es on a task of its own, which waits while the consumer is behind (a queue of
//! [`EXPORT_QUEUE`] batches) — so this process holds a few batches whatever the export's size, and
//! ClickHouse, whose writes to the connection then block, reads on only as fast as the client takes.
//!
//! # Order
//! No `ORDER BY`: sorting would make 18.16 read and sort the whole selection before sending the first
//! row. Rows come in storage order — within a part sorted by (tenant, metric, series, timestamp),
//! parts read in parallel — so a series' points come in runs, each ordered by timestamp (a new run
//! starts where the series or the time order changes), and a series may come in several runs.
//!
//! # Failures
//! Without `wait_end_of_query` an exception during execution arrives as text after the rows already
//! sent: the decoder then finds bytes that are not a row and ends the stream with an error carrying
//! that text. A consumer that goes away drops the stream: the task stops and the query is killed.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use luminate_model::export::EXPORT_BATCH_POINTS;
use luminate_model::{ExportBatch, ExportPlan, ExportStream, StoreError, Tenant, TimestampMs};
use tokio::sync::mpsc;

use crate::schema::Tables;
use crate::service::Service;
use crate::sql::quote;

/// Batches decoded ahead of the consumer.
const EXPORT_QUEUE: usize = 2;
/// How long ClickHouse may take to begin its answer (it begins once the first block of rows is read,
/// which a selective filter over a large table can take a while to find).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Starts the export; fails when ClickHouse does not begin to answer (unreachable, circuit open,
/// an exception before the first row).
pub async fn export(
    service: &Service,
    tenant: &Tenant,
    plan: &ExportPlan,
) -> Result<ExportStream, StoreError> {
    let sql = statement(&service.tables, tenant, plan, service.features.skip_indexes);
    tracing::trace!(sql, "export");
    let query = service.stream(&sql, START_TIMEOUT).await?;
    let (queue, batches) = mpsc::channel(EXPORT_QUEUE);
    tokio::spawn(async move {
        let mut query = query;
        let mut decoder = Decoder::default();
        let outcome = loop {
            let frame = match query.answer.body.frame().await {
                None => break decoder.finish(),
                Some(Err(e)) => {
                    break Err(StoreError::Unavailable {
                        reason: format!(
                            "ClickHouse at {} broke off the export: {e}",
                            query.answer.address
                        ),
                    });
                }
                Some(Ok(frame)) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            match decoder.feed(&data) {
                Ok(full) => {
                    for batch in full {
                        if queue.send(Ok(batch)).await.is_err() {
                            // The consumer went away: dropping the query kills it.
                            return;
                        }
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok(last) => {
                query.finished();
                if !last.is_empty() {
                    let _ = queue.send(Ok(last)).await;
                }
            }
            Err(e) => {
                let _ = queue.send(Err(e)).await;
            }
        }
    });
    Ok(Box::pin(QueuedBatches(batches)))
}

/// The `SELECT` of an export: every column a point needs, no order.
fn statement(tables: &Tables, tenant: &Tenant, plan: &ExportPlan, skip_indexes: bool) -> String {
    let mut sql = format!(
        "SELECT metric, dim_keys, dim_values, timestamp, value FROM {} WHERE tenant = {}",
        tables.points,
        quote(tenant.as_str())
    );
    if let Some(metric) = &plan.metric {
        sql.push_str(&format!(" AND metric = {}", quote(metric)));
    }
    sql.push_str(&format!(
        " AND timestamp >= {} AND timestamp < {}",
        plan.start, plan.end
    ));
    for filter in &plan.filters {
        sql.push_str(&crate::filters::condition(
            &tables.dimension(filter.key()),
            filter,
            skip_indexes,
        ));
    }
    sql.push_str(" FORMAT RowBinary");
    sql
}

/// The receiving end of the export's queue, as the store's stream.
struct QueuedBatches(mpsc::Receiver<Result<ExportBatch, StoreError>>);

impl futures_core::Stream for QueuedBatches {
    type Item = Result<ExportBatch, StoreError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Reads `RowBinary` rows `(metric String, dim_keys Array(String), dim_values Array(String),
/// timestamp Int64, value Float64)` from bytes arriving in arbitrary pieces.
#[derive(Default)]
struct Decoder {
    /// Bytes received and not yet decoded: at most one incomplete row after each feed.
    pending: BytesMut,
    batch: ExportBatch,
    /// The current run's series, as its raw bytes (metric and both arrays), and its last timestamp.
    series: Vec<u8>,
    last: Option<TimestampMs>,
    /// Bytes decoded so far, for the error message.
    offset: u64,
}

/// One decoded row, borrowing the bytes.
struct Row<'a> {
    /// The raw bytes of metric, keys and values: equal bytes, same series.
    series: &'a [u8],
    timestamp: TimestampMs,
    value: f64,
    /// Bytes the row takes.
    len: usize,
}

impl Decoder {
    /// Decodes every complete row of `data` after what is pending; returns the batches filled.
    fn feed(&mut self, data: &[u8]) -> Result<Vec<ExportBatch>, StoreError> {
        self.pending.extend_from_slice(data);
        let mut full = Vec::new();
        let mut at = 0;
        loop {
            let row = match row(&self.pending[at..]) {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(()) => return Err(self.garbled(at)),
            };
            let same = row.series == self.series.as_slice()
                && self.last.is_some_and(|t| t <= row.timestamp);
            if !same || self.batch.len() >= EXPORT_BATCH_POINTS {
                if self.batch.len() >= EXPORT_BATCH_POINTS {
                    full.push(std::mem::replace(
                        &mut self.batch,
                        ExportBatch::with_capacity(EXPORT_BATCH_POINTS),
                    ));
                }
                let Some((metric, pairs)) = series_strings(row.series) else {
                    return Err(self.garbled(at));
                };
                self.batch.start_series(metric, pairs.into_iter());
                self.series.clear();
                self.series.extend_from_slice(row.series);
            }
            self.batch.push(row.timestamp, row.value);
            self.last = Some(row.timestamp);
            at += row.len;
        }
        self.offset += at as u64;
        self.pending.advance(at);
        Ok(full)
    }

    /// The last batch, once the answer has ended; bytes left over are an error.
    fn finish(mut self) -> Result<ExportBatch, StoreError> {
        if self.pending.is_empty() {
            Ok(std::mem::take(&mut self.batch))
        } else {
            Err(self.garbled(0))
        }
    }

    /// The error for bytes at `at` of `pending` that are not a row: most likely ClickHouse's
    /// exception text, which is quoted.
    fn garbled(&self, at: usize) -> StoreError {
        let tail = &self.pending[at..];
        let text = String::from_utf8_lossy(&tail[..tail.len().min(1024)]);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        StoreError::Internal {
            message: format!(
                "ClickHouse's export answer is not rows at byte {}: {text}",
                self.offset + at as u64
            ),
        }
    }
}

/// A LEB128 length at `buf[*at..]`, moving `at` past it: `Ok(None)` when incomplete.
fn varint(buf: &[u8], at: &mut usize) -> Result<Option<usize>, ()> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*at) else {
            return Ok(None);
        };
        *at += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return usize::try_from(n).map(Some).map_err(|_| ());
        }
    }
    Err(())
}

/// Moves `at` past a `String`: `Ok(false)` when incomplete.
fn skip_string(buf: &[u8], at: &mut usize) -> Result<bool, ()> {
    let Some(len) = varint(buf, at)? else {
        return Ok(false);
    };
    // A string longer than what a point may carry is not a row (it is an exception's text).
    if len > 1 << 20 {
        return Err(());
    }
    *at += len;
    Ok(*at <= buf.len())
}

/// Moves `at` past an `Array(String)`, returning its length: `Ok(None)` when incomplete.
fn skip_strings(buf: &[u8], at: &mut usize) -> Result<Option<usize>, ()> {
    let Some(n) = varint(buf, at)? else {
        return Ok(None);
    };
    if n > 1024 {
        return Err(());
    }
    for _ in 0..n {
        if !skip_string(buf, at)? {
            return Ok(None);
        }
    }
    Ok(Some(n))
}

/// The row at the start of `buf`: `Ok(None)` when it is incomplete, `Err` when it cannot be one.
fn row(buf: &[u8]) -> Result<Option<Row<'_>>, ()> {
    let mut at = 0;
    if buf.is_empty() || !skip_string(buf, &mut at)? {
        return Ok(None);
    }
    let Some(keys) = skip_strings(buf, &mut at)? else {
        return Ok(None);
    };
    let Some(values) = skip_strings(buf, &mut at)? else {
        return Ok(None);
    };
    if keys != values {
        return Err(());
    }
    let series_end = at;
    let Some(fixed) = buf.get(at..at + 16) else {
        return Ok(None);
    };
    let timestamp = i64::from_le_bytes(fixed[..8].try_into().map_err(|_| ())?);
    let value = f64::from_le_bytes(fixed[8..].try_into().map_err(|_| ())?);
    Ok(Some(Row {
        series: &buf[..series_end],
        timestamp,
        value,
        len: at + 16,
    }))
}

/// The metric and (key, value) pairs of a row's series bytes (complete, as [`row`] checked).
fn series_strings(raw: &[u8]) -> Option<(&str, Vec<(&str, &str)>)> {
    let mut at = 0;
    let string = |at: &mut usize| -> Option<&str> {
        let len = varint(raw, at).ok()??;
        let s = std::str::from_utf8(raw.get(*at..*at + len)?).ok()?;
        *at += len;
        Some(s)
    };
    let metric = string(&mut at)?;
    let n = varint(raw, &mut at).ok()??;
    let keys: Vec<&str> = (0..n).map(|_| string(&mut at)).collect::<Option<_>>()?;
    let m = varint(raw, &mut at).ok()??;
    let values: Vec<&str> = (0..m).map(|_| string(&mut at)).collect::<Option<_>>()?;
    Some((metric, keys.into_iter().zip(values).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rowbinary::RowWriter;

    /// A point as the test writes it: metric, dimensions, timestamp, value.
    type TestRow<'a> = (&'a str, &'a [(&'a str, &'a str)], i64, f64);
    /// A run as the test reads it: metric, dimensions, timestamps.
    type TestRun = (String, Vec<(String, String)>, Vec<i64>);

    fn rows(points: &[TestRow<'_>]) -> Vec<u8> {
        let mut w = RowWriter::default();
        for (metric, dims, t, v) in points {
            w.string(metric);
            w.strings(dims.iter().map(|d| d.0));
            w.strings(dims.iter().map(|d| d.1));
            w.i64(*t);
            w.f64(*v);
        }
        w.finish()
    }

    fn runs(batches: &[ExportBatch]) -> Vec<TestRun> {
        batches
            .iter()
            .flat_map(|b| b.runs())
            .map(|r| {
                (
                    r.name.to_owned(),
                    r.pairs().map(|(k, v)| (k.into(), v.into())).collect(),
                    r.timestamps.to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn rows_in_any_pieces_decode_into_runs_by_series_and_time_order() {
        let body = rows(&[
            ("m", &[("k", "a")], 1, 1.0),
            ("m", &[("k", "a")], 2, 2.0),
            ("m", &[("k", "b")], 1, 3.0),
            // The same series again, earlier: a new run.
            ("m", &[("k", "b")], 0, 4.0),
            ("n", &[], 5, 5.5),
        ]);
        for piece in [1, 3, 7, body.len()] {
            let mut d = Decoder::default();
            let mut batches = Vec::new();
            for chunk in body.chunks(piece) {
                batches.extend(d.feed(chunk).unwrap());
            }
            batches.push(d.finish().unwrap());
            let a = vec![("k".to_owned(), "a".to_owned())];
            let b = vec![("k".to_owned(), "b".to_owned())];
            assert_eq!(
                runs(&batches),
                vec![
                    ("m".into(), a, vec![1, 2]),
                    ("m".into(), b.clone(), vec![1]),
                    ("m".into(), b, vec![0]),
                    ("n".into(), vec![], vec![5]),
                ],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn an_exception_after_rows_ends_the_export_with_its_text() {
        let mut body = rows(&[("m", &[], 1, 1.0)]);
        body.extend_from_slice(
            b"Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded",
        );
        let mut d = Decoder::default();
        let e = match d.feed(&body) {
            Err(e) => e,
            Ok(_) => d.finish().unwrap_err(),
        };
        assert!(e.to_string().contains("Memory limit"), "{e}");
    }

    #[test]
    fn statements_select_the_tenant_range_and_filters() {
        let plan = ExportPlan {
            metric: Some("m".into()),
            start: 5,
            end: 10,
            filters: vec![luminate_model::Filter::any_of("k", ["a", "it's"])],
        };
        assert_eq!(
            statement(
                &Tables::new("db", None, &[]),
                &Tenant::new("t"),
                &plan,
                false
            ),
            "SELECT metric, dim_keys, dim_values, timestamp, value FROM `db`.points WHERE tenant = 't' \
             AND metric = 'm' AND timestamp >= 5 AND timestamp < 10 \
             AND dim_values[indexOf(dim_keys, 'k')] IN ('a', 'it\\'s') FORMAT RowBinary"
        );
        assert!(
            statement(
                &Tables::new("db", None, &["k".into()]),
                &Tenant::new("t"),
                &plan,
                false
            )
            .contains(" AND `dim__k` IN ('a', 'it\\'s') "),
            "a dimension column is read instead of the arrays"
        );
    }
}
