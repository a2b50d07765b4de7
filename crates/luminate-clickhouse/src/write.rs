//! Writes: one `INSERT … FORMAT RowBinary` per `write` call, and the retry rule that keeps a retried
//! insert from storing a point twice.
//!
//! What 18.16 offers for idempotent inserts is not enough here: `insert_deduplicate` only works on
//! `Replicated*MergeTree` tables (plain `MergeTree` got a deduplication window in 20.x), so a blind
//! resend of a batch whose first attempt did land would duplicate it. Instead every batch carries a
//! random `write_id`, and an insert whose outcome is unknown (the connection broke or the deadline
//! passed after the body was sent) is *reconciled* before anything is resent: the points of that
//! `write_id` are counted per *unit* — (day, metric, series) — (cheap: tenant, metric and time range
//! lead the sort key), and only the units with no stored point are inserted again. ClickHouse writes
//! one part per partition (day) and shard, and a part appears atomically; a shard is chosen by series,
//! so a unit lies in exactly one part and is either all there or absent. A partially present unit
//! cannot happen and is reported as an internal error. The insert names `max_insert_block_size` at
//! least the batch size, so the batch is one block, not several, and through a `Distributed` table it
//! asks for `insert_distributed_sync=1`, so that the acknowledgement means every shard has its part
//! (the default queues the rows on the receiving node and sends them later).
//!
//! An insert that could not connect anywhere was not sent and fails with `Unavailable`; one that
//! ClickHouse refused fails with its error. `write` returns `Ok` only once ClickHouse has acknowledged
//! every point (`wait_end_of_query=1`: after the parts are committed).

use std::collections::BTreeMap;

use bytes::Bytes;
use luminate_model::{PointBatch, StoreError, Tenant, WriteOutcome};

use crate::rowbinary::{RowReader, RowWriter};
use crate::schema::{DAY_MS, INSERT_COLUMNS};
use crate::service::{Failure, Service, random_u64};
use crate::sql::quote;
use crate::transport::{Statement, TransportError};

/// Reconciliation rounds before giving up on an insert whose outcome stays unknown.
const MAX_RECONCILE_ROUNDS: usize = 3;
/// ClickHouse's default `max_insert_block_size`; larger batches raise it.
const DEFAULT_INSERT_BLOCK: usize = 1_048_576;

/// Stores the batch; `Ok` means ClickHouse acknowledged all of it.
pub async fn write(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
) -> Result<WriteOutcome, StoreError> {
    if batch.is_empty() {
        return Ok(WriteOutcome::default());
    }
    write_with_id(service, tenant, batch, random_u64()).await?;
    Ok(WriteOutcome {
        accepted: batch.len(),
        ..WriteOutcome::default()
    })
}

/// Inserts the batch under `write_id`, reconciling when the outcome is unknown.
async fn write_with_id(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
    write_id: u64,
) -> Result<(), StoreError> {
    let all: Vec<usize> = (0..batch.len()).collect();
    match insert(service, tenant, batch, &all, write_id).await {
        Ok(()) => Ok(()),
        Err(Failure::Transport(
            e @ (TransportError::Broken { .. } | TransportError::Timeout { .. }),
        )) => {
            tracing::warn!(%tenant, write_id, error = %e, "insert outcome unknown; reconciling");
            reconcile(service, tenant, batch, write_id).await.map(drop)
        }
        Err(failure) => Err(service.to_store_error(failure)),
    }
}

/// Inserts the points `rows` of the batch.
async fn insert(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
    rows: &[usize],
    write_id: u64,
) -> Result<(), Failure> {
    let body = Bytes::from(encode(tenant, batch, rows, write_id));
    let sql = format!(
        "INSERT INTO {} {INSERT_COLUMNS} FORMAT RowBinary",
        service.tables.points
    );
    let mut settings = vec![(
        "max_insert_block_size",
        rows.len().max(DEFAULT_INSERT_BLOCK).to_string(),
    )];
    if service.tables.cluster.is_some() {
        settings.push(("insert_distributed_sync", "1".into()));
    }
    let st = Statement {
        sql: &sql,
        data: Some(&body),
        query_id: None,
        settings: &settings,
        timeout: service.request_timeout,
    };
    service.run_statement(&st).await.map(drop)
}

/// The RowBinary body of the points `rows`, in the order of [`INSERT_COLUMNS`].
fn encode(tenant: &Tenant, batch: &PointBatch, rows: &[usize], write_id: u64) -> Vec<u8> {
    let mut w = RowWriter::with_capacity(rows.len() * 96);
    for &i in rows {
        let p = batch.get(i);
        w.string(tenant.as_str());
        w.string(p.name);
        w.i64(p.timestamp);
        w.f64(p.value);
        w.strings(p.pairs().map(|(k, _)| k));
        w.strings(p.pairs().map(|(_, v)| v));
        w.u64(write_id);
    }
    w.finish()
}

/// The partition (day) of a timestamp, as `intDiv(timestamp, 86400000)` computes it (truncating).
fn day_of(timestamp: i64) -> i64 {
    timestamp / DAY_MS
}

/// What is stored all or nothing: the points of one series (of one metric) on one day.
type Unit = (i64, String, Vec<(String, String)>);

/// Makes sure every point of an insert with an unknown outcome (or of a keyed write that may have been
/// stored before: `crate::keyed`) is stored exactly once. Returns whether anything was sent: `false`
/// when every point of `write_id` was there already.
pub(crate) async fn reconcile(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
    write_id: u64,
) -> Result<bool, StoreError> {
    let mut units: BTreeMap<Unit, Vec<usize>> = BTreeMap::new();
    for (i, p) in batch.iter().enumerate() {
        let pairs = p
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        units
            .entry((day_of(p.timestamp), p.name.to_owned(), pairs))
            .or_default()
            .push(i);
    }
    let mut last = String::new();
    for round in 0..MAX_RECONCILE_ROUNDS {
        let stored = stored_per_unit(service, tenant, batch, write_id).await?;
        let mut missing = Vec::new();
        for (unit, rows) in &units {
            match stored.get(unit).copied().unwrap_or(0) {
                0 => missing.extend_from_slice(rows),
                n if n == rows.len() as u64 => {}
                n => {
                    return Err(StoreError::Internal {
                        message: format!(
                            "write {write_id:016x}: day {} of a series of {:?} holds {n} of its {} \
                             points after an interrupted insert",
                            unit.0,
                            unit.1,
                            rows.len()
                        ),
                    });
                }
            }
        }
        if missing.is_empty() {
            return Ok(round > 0);
        }
        missing.sort_unstable();
        match insert(service, tenant, batch, &missing, write_id).await {
            Ok(()) => return Ok(true),
            Err(Failure::Transport(
                e @ (TransportError::Broken { .. } | TransportError::Timeout { .. }),
            )) => last = e.to_string(),
            Err(failure) => return Err(service.to_store_error(failure)),
        }
    }
    Err(StoreError::Unavailable {
        reason: format!("insert outcome still unknown after {MAX_RECONCILE_ROUNDS} rounds: {last}"),
    })
}

/// Points of `write_id` stored per unit.
async fn stored_per_unit(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
    write_id: u64,
) -> Result<BTreeMap<Unit, u64>, StoreError> {
    let mut metrics: Vec<&str> = batch.iter().map(|p| p.name).collect();
    metrics.sort_unstable();
    metrics.dedup();
    let (min, max) = batch.iter().fold((i64::MAX, i64::MIN), |(lo, hi), p| {
        (lo.min(p.timestamp), hi.max(p.timestamp))
    });
    let sql = format!(
        "SELECT intDiv(timestamp, {DAY_MS}) AS day, metric, dim_keys, dim_values, count() FROM {} \
         WHERE tenant = {} AND metric IN ({}) AND timestamp >= {min} AND timestamp <= {max} \
         AND write_id = {write_id} GROUP BY day, metric, dim_keys, dim_values FORMAT RowBinary",
        service.tables.points,
        quote(tenant.as_str()),
        metrics
            .iter()
            .map(|m| quote(m))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let body = service.run(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut out = BTreeMap::new();
    while !r.is_empty() {
        let day = r.i64().map_err(decode_error)?;
        let metric = r.string().map_err(decode_error)?;
        let keys = r.strings().map_err(decode_error)?;
        let values = r.strings().map_err(decode_error)?;
        let n = r.u64().map_err(decode_error)?;
        out.insert((day, metric, keys.into_iter().zip(values).collect()), n);
    }
    Ok(out)
}

fn decode_error(e: crate::rowbinary::DecodeError) -> StoreError {
    StoreError::Internal {
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use luminate_model::{Dimensions, Point};

    use super::*;
    use crate::testing::{ClickhouseServer, shared};

    use crate::testing::service;

    /// Stored points of `write_id` per day, as text rows `day\tcount`.
    fn days_of(server: &ClickhouseServer, database: &str, write_id: u64) -> String {
        server
            .sql(&format!(
                "SELECT intDiv(timestamp, {DAY_MS}) AS day, count() FROM {database}.points \
                 WHERE write_id = {write_id} GROUP BY day ORDER BY day"
            ))
            .unwrap()
    }

    #[tokio::test]
    async fn reconciling_resends_only_the_days_that_are_missing() {
        let (db, server) = ("reconcile", shared());
        let service = service(db).await;
        let tenant = Tenant::new("t");
        let points = (0..9).map(|i| Point {
            name: if i % 2 == 0 { "a" } else { "b" }.into(),
            timestamp: 1_800_000_000_000 + (i / 3) * DAY_MS,
            value: i as f64,
            dimensions: Dimensions::default(),
        });
        let batch = PointBatch::from_points(points);
        let write_id = random_u64();
        write_with_id(&service, &tenant, &batch, write_id)
            .await
            .unwrap();
        let day = 1_800_000_000_000 / DAY_MS;
        let all_days = format!("{day}\t3\n{}\t3\n{}\t3\n", day + 1, day + 2);
        assert_eq!(days_of(server, db, write_id), all_days);

        // The first attempt landed entirely: nothing is resent.
        let sent = reconcile(&service, &tenant, &batch, write_id)
            .await
            .unwrap();
        assert!(!sent);
        assert_eq!(days_of(server, db, write_id), all_days);

        // One day's part is missing (as if that part had not been committed): only it is resent.
        server
            .sql(&format!(
                "ALTER TABLE {db}.points DELETE WHERE intDiv(timestamp, {DAY_MS}) = {}",
                day + 1
            ))
            .unwrap();
        let pending =
            format!("SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0");
        while server.sql(&pending).unwrap().trim() != "0" {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            days_of(server, db, write_id),
            format!("{day}\t3\n{}\t3\n", day + 2)
        );
        let sent = reconcile(&service, &tenant, &batch, write_id)
            .await
            .unwrap();
        assert!(sent);
        assert_eq!(days_of(server, db, write_id), all_days);

        // A day holding part of its points cannot come from ClickHouse; it is reported, not patched.
        server
            .sql(&format!(
                "INSERT INTO {db}.points (tenant, metric, timestamp, value, dim_keys, dim_values, \
                 write_id) VALUES ('t', 'a', 1800000000000, 0, [], [], {write_id})"
            ))
            .unwrap();
        let err = reconcile(&service, &tenant, &batch, write_id)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("holds 3 of its 2 points"), "{err}");
    }

    #[test]
    fn rows_are_encoded_in_insert_column_order() {
        let batch = PointBatch::from_points([Point {
            name: "m".into(),
            timestamp: 5,
            value: 1.5,
            dimensions: Dimensions::from_pairs([("k".into(), "v".into())]),
        }]);
        let body = encode(&Tenant::new("t"), &batch, &[0], 9);
        let mut r = RowReader::new(&body);
        assert_eq!(r.string().unwrap(), "t");
        assert_eq!(r.string().unwrap(), "m");
        assert_eq!(r.i64().unwrap(), 5);
        assert_eq!(r.f64().unwrap(), 1.5);
        assert_eq!(r.strings().unwrap(), ["k"]);
        assert_eq!(r.strings().unwrap(), ["v"]);
        assert_eq!(r.u64().unwrap(), 9);
        assert!(r.is_empty());
    }

    #[test]
    fn days_truncate_like_int_div() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        assert_eq!(day_of(-1), 0, "intDiv truncates toward zero");
        assert_eq!(day_of(-DAY_MS), -1);
    }
}
