//! Deletes, retention overrides and the tenant list: the admin side of the backend (CONTRACT §6).
//!
//! A day partition holds every tenant's and every metric's points, so dropping one would delete other
//! tenants' data; `delete_before` is therefore an `ALTER TABLE … DELETE WHERE tenant = … AND metric =
//! … AND timestamp < …` mutation, waited for until ClickHouse reports it done (18.16 has no
//! `mutations_sync`). The count is taken just before the mutation is queued, with the same condition,
//! so it is exact unless points older than the cut are written for that metric in between (they are
//! then deleted but not counted). When nothing matches, no mutation is queued at all: 18.16 rewrites
//! every part of the table for a mutation, which the retention task would otherwise cause hourly.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use luminate_model::store::RetentionOverride;
use luminate_model::{StoreError, Tenant, TimestampMs};

use crate::rowbinary::{DecodeError, RowReader};
use crate::service::Service;
use crate::sql::quote;

/// How often a queued mutation is checked for completion.
const MUTATION_POLL: Duration = Duration::from_millis(25);

fn decode_error(e: DecodeError) -> StoreError {
    StoreError::Internal {
        message: e.to_string(),
    }
}

/// Deletes the metric's points with `timestamp < before`; returns how many there were.
pub async fn delete_before(
    service: &Service,
    tenant: &Tenant,
    metric: &str,
    before: TimestampMs,
) -> Result<u64, StoreError> {
    let condition = format!(
        "tenant = {} AND metric = {} AND timestamp < {before}",
        quote(tenant.as_str()),
        quote(metric)
    );
    let count_sql = format!(
        "SELECT count() FROM {} WHERE {condition} FORMAT RowBinary",
        service.tables.points
    );
    let body = service.run(&count_sql).await?;
    let doomed = RowReader::new(&body).u64().map_err(decode_error)?;
    if doomed == 0 {
        return Ok(0);
    }
    let mutation = format!(
        "ALTER TABLE {} DELETE WHERE {condition}",
        service.tables.points_storage_table()
    );
    if service.tables.cluster.is_some() {
        service.run_on_each(&mutation).await?;
    } else {
        service.run(&mutation).await?;
    }
    wait_for_mutations(service).await?;
    Ok(doomed)
}

/// Merges the points table's parts into one per partition (`OPTIMIZE TABLE ... FINAL`, on each node of
/// a cluster: a `Distributed` table cannot be optimized), as its background merges would in time.
///
/// ClickHouse answers an `OPTIMIZE` it cannot start now — while a background merge holds parts of the
/// table, as it does right after a load — with success, having done nothing (`optimize_throw_if_noop`
/// is off by default). So each node waits for its running merges to end, optimizes, and does so again
/// until every partition is one part, up to the request deadline; past it (writes arriving all along),
/// the data is left as far as it got, and a warning says so.
pub async fn settle(service: &Service) -> Result<(), StoreError> {
    let table = service.tables.points_storage_table();
    let optimize = format!("OPTIMIZE TABLE {table} FINAL");
    let scope = format!(
        "database = {} AND table = {}",
        quote(&service.tables.database),
        quote(service.tables.points_storage)
    );
    let merging = format!("SELECT count() FROM system.merges WHERE {scope} FORMAT RowBinary");
    let split = format!(
        "SELECT count() FROM (SELECT partition_id FROM system.parts WHERE {scope} AND active \
         GROUP BY partition_id HAVING count() > 1) FORMAT RowBinary"
    );
    let deadline = Instant::now() + service.request_timeout;
    let timeout = service.request_timeout;
    for node in service.storage_nodes() {
        let count = |sql| async move {
            let body = service.run_on_node(node, sql, timeout).await?;
            RowReader::new(&body).u64().map_err(decode_error)
        };
        loop {
            while count(&merging).await? > 0 && Instant::now() < deadline {
                tokio::time::sleep(MUTATION_POLL).await;
            }
            service.run_on_node(node, &optimize, timeout).await?;
            let left = count(&split).await?;
            if left == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    partitions = left,
                    "settling the points table: partitions still in several parts after {timeout:?} \
                     (writes arriving meanwhile); ClickHouse merges them in the background"
                );
                break;
            }
            tokio::time::sleep(MUTATION_POLL).await;
        }
    }
    Ok(())
}

/// Waits until no mutation of the points table is pending (on any node of a cluster).
async fn wait_for_mutations(service: &Service) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT count() FROM system.mutations WHERE database = {} AND table = {} \
         AND is_done = 0 FORMAT RowBinary",
        quote(&service.tables.database),
        quote(service.tables.points_storage)
    );
    let deadline = Instant::now() + service.request_timeout;
    loop {
        let answers = if service.tables.cluster.is_some() {
            service.run_on_each(&sql).await?
        } else {
            vec![service.run(&sql).await?]
        };
        let mut pending = 0;
        for body in &answers {
            pending += RowReader::new(body).u64().map_err(decode_error)?;
        }
        if pending == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StoreError::Internal {
                message: format!(
                    "the delete was queued but ClickHouse has not finished it after {:?}; it goes on \
                     in the background (see system.mutations)",
                    service.request_timeout
                ),
            });
        }
        tokio::time::sleep(MUTATION_POLL).await;
    }
}

/// Versions of overrides (and of dashboard rows): nanoseconds since the epoch, strictly increasing
/// within this process so that two rows written in the same nanosecond still replace one another in
/// order.
pub(crate) fn next_version() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Stores a per-metric retention override (the newest one wins).
pub async fn set_retention(
    service: &Service,
    tenant: &Tenant,
    metric: &str,
    retention: Duration,
) -> Result<(), StoreError> {
    let nanos = u64::try_from(retention.as_nanos()).unwrap_or(u64::MAX);
    let sql = format!(
        "INSERT INTO {} (tenant, metric, retention_ns, version) VALUES ({}, {}, {nanos}, {})",
        service.tables.retention,
        quote(tenant.as_str()),
        quote(metric),
        next_version()
    );
    service.run(&sql).await.map(drop)
}

/// The tenant's overrides, by metric.
pub async fn retention_overrides(
    service: &Service,
    tenant: &Tenant,
) -> Result<Vec<RetentionOverride>, StoreError> {
    let sql = format!(
        "SELECT metric, argMax(retention_ns, version) FROM {} WHERE tenant = {} GROUP BY metric \
         FORMAT RowBinary",
        service.tables.retention,
        quote(tenant.as_str())
    );
    let body = service.run(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut out = Vec::new();
    while !r.is_empty() {
        let metric = r.string().map_err(decode_error)?;
        let nanos = r.u64().map_err(decode_error)?;
        out.push(RetentionOverride {
            metric,
            retention: Duration::from_nanos(nanos),
        });
    }
    out.sort_by(|a, b| a.metric.cmp(&b.metric));
    Ok(out)
}

/// Every tenant with stored points or overrides, sorted.
pub async fn tenants(service: &Service) -> Result<Vec<Tenant>, StoreError> {
    let mut tenants = BTreeSet::new();
    for table in [&service.tables.points, &service.tables.retention] {
        let body = service
            .run(&format!(
                "SELECT DISTINCT tenant FROM {table} FORMAT RowBinary"
            ))
            .await?;
        let mut r = RowReader::new(&body);
        while !r.is_empty() {
            tenants.insert(r.string().map_err(decode_error)?);
        }
    }
    Ok(tenants.into_iter().map(Tenant::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase() {
        let a = next_version();
        let b = next_version();
        assert!(b > a);
    }
}
