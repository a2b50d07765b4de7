//! The protocol ingest rule on ClickHouse (`MetricsStore::write_samples`, docs/ingest.md "Retries and
//! resends"): per series, a sample is stored only when its timestamp is after the newest sample the
//! series holds. Replicas of Luminate keep no state, so the truth is read from ClickHouse, one query
//! per batch: the newest stored (timestamp, value) of each of the batch's series among its rows at or
//! after the batch's earliest timestamp (older rows cannot decide anything). The sort key
//! `(tenant, metric, series, timestamp)` makes it a lookup of one key range per series.
//!
//! Within one process, a batch waits while another batch that shares one of its series is between
//! that query and its insert ([`InFlight`]), so two concurrent retries of one batch store it once.
//! Between processes (several replicas behind a load balancer) nothing orders them: two replicas that
//! receive the same retry at the same instant may both store it (docs/clickhouse.md says so).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Mutex;

use luminate_model::{Point, PointBatch, StoreError, Tenant, TimestampMs, WriteOutcome};
use tokio::sync::Notify;

use crate::rowbinary::RowReader;
use crate::service::Service;
use crate::sql::quote;
use crate::transport::Statement;

/// A series within a tenant: metric and (key, value) pairs in key order.
type SeriesKey = (String, Vec<(String, String)>);

/// Series of batches between their newest-sample query and the end of their insert, by hash.
#[derive(Debug, Default)]
pub struct InFlight {
    series: Mutex<HashSet<u64>>,
    released: Notify,
    hasher: std::hash::RandomState,
}

/// Holds a batch's series in [`InFlight`] until dropped.
struct Held<'a> {
    in_flight: &'a InFlight,
    hashes: Vec<u64>,
}

impl InFlight {
    /// Waits until no batch holds any of `hashes`, then holds them.
    async fn hold(&self, hashes: Vec<u64>) -> Held<'_> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the check and the wait is not missed.
            released.as_mut().enable();
            {
                let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
                if hashes.iter().all(|h| !series.contains(h)) {
                    series.extend(hashes.iter().copied());
                    return Held {
                        in_flight: self,
                        hashes,
                    };
                }
            }
            released.await;
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut series = self
            .in_flight
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for h in &self.hashes {
            series.remove(h);
        }
        drop(series);
        self.in_flight.released.notify_waiters();
    }
}

/// Stores the samples of `batch` that are newer than their series' newest; counts the others.
pub async fn write_samples(
    service: &Service,
    in_flight: &InFlight,
    tenant: &Tenant,
    batch: &PointBatch,
) -> Result<WriteOutcome, StoreError> {
    if batch.is_empty() {
        return Ok(WriteOutcome::default());
    }
    let keys: Vec<SeriesKey> = batch
        .iter()
        .map(|p| {
            let pairs = p
                .pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (p.name.to_owned(), pairs)
        })
        .collect();
    let mut hashes: Vec<u64> = keys
        .iter()
        .map(|k| in_flight.hasher.hash_one((tenant.as_str(), k)))
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    let _held = in_flight.hold(hashes).await;
    let mut newest = stored_newest(service, tenant, batch, &keys).await?;
    let mut outcome = WriteOutcome::default();
    let mut kept: Vec<Point> = Vec::with_capacity(batch.len());
    for (p, key) in batch.iter().zip(keys) {
        let sample = (p.timestamp, p.value);
        match newest.get(&key) {
            Some(&(t, v)) if t == p.timestamp && v.total_cmp(&p.value).is_eq() => {
                outcome.duplicates += 1;
            }
            Some(&(t, _)) if p.timestamp <= t => outcome.out_of_order += 1,
            _ => {
                newest.insert(key, sample);
                kept.push(p.to_point());
            }
        }
    }
    let stored = crate::write::write(service, tenant, &PointBatch::from_points(kept)).await?;
    Ok(WriteOutcome {
        duplicates: outcome.duplicates,
        out_of_order: outcome.out_of_order,
        ..stored
    })
}

/// The newest stored (timestamp, value) — the largest value if several share the timestamp — of each
/// series of `keys` among its rows at or after the batch's earliest timestamp.
async fn stored_newest(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
    keys: &[SeriesKey],
) -> Result<HashMap<SeriesKey, (TimestampMs, f64)>, StoreError> {
    let min = batch.iter().map(|p| p.timestamp).min().unwrap_or(i64::MIN);
    let mut metrics: Vec<&str> = keys.iter().map(|(m, _)| m.as_str()).collect();
    metrics.sort_unstable();
    metrics.dedup();
    let mut series: Vec<String> = keys
        .iter()
        .map(|(_, pairs)| {
            let ks: Vec<String> = pairs.iter().map(|(k, _)| quote(k)).collect();
            let vs: Vec<String> = pairs.iter().map(|(_, v)| quote(v)).collect();
            // `cityHash64(dim_keys, dim_values)` of the row, as the column's DEFAULT computes it; an
            // empty array needs its type spelled out (a CAST each costs twice as much to plan).
            if pairs.is_empty() {
                "cityHash64(CAST([] AS Array(String)), CAST([] AS Array(String)))".to_owned()
            } else {
                format!("cityHash64([{}], [{}])", ks.join(","), vs.join(","))
            }
        })
        .collect();
    series.sort_unstable();
    series.dedup();
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|m| quote(m))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sql = format!(
        "SELECT metric, dim_keys, dim_values, max(timestamp), argMax(value, (timestamp, value)) \
         FROM {} WHERE tenant = {} AND metric IN ({}) AND series IN ({}) AND timestamp >= {min} \
         GROUP BY metric, dim_keys, dim_values FORMAT RowBinary",
        service.tables.points,
        quote(tenant.as_str()),
        quoted(&metrics),
        series.join(", "),
    );
    // One series is ~100 bytes of SQL and a batch may hold thousands: the default `max_query_size`
    // (256 KiB) would refuse the statement.
    let settings = [("max_query_size", (sql.len() + 4096).to_string())];
    let st = Statement {
        settings: &settings,
        ..Statement::new(&sql, service.request_timeout)
    };
    let body = service
        .run_statement(&st)
        .await
        .map_err(|e| service.to_store_error(e))?;
    let mut r = RowReader::new(&body);
    let mut out = HashMap::new();
    let decode = |e: crate::rowbinary::DecodeError| StoreError::Internal {
        message: format!("reading the newest samples of a batch's series: {e}"),
    };
    while !r.is_empty() {
        let metric = r.string().map_err(decode)?;
        let keys = r.strings().map_err(decode)?;
        let values = r.strings().map_err(decode)?;
        let t = r.i64().map_err(decode)?;
        let v = r.f64().map_err(decode)?;
        out.insert((metric, keys.into_iter().zip(values).collect()), (t, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_waits_for_one_sharing_a_series_and_not_for_others() {
        let in_flight = InFlight::default();
        let first = in_flight.hold(vec![1, 2]).await;
        let other = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            in_flight.hold(vec![3]),
        )
        .await;
        assert!(other.is_ok(), "disjoint series do not wait");
        drop(other);
        let sharing = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            in_flight.hold(vec![2, 4]),
        )
        .await;
        assert!(sharing.is_err(), "a shared series waits");
        drop(first);
        let after = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            in_flight.hold(vec![2, 4]),
        )
        .await;
        assert!(after.is_ok(), "released series are free again");
    }
}
