//! Retention by TTL (`storage.clickhouse.ttl`, ClickHouse 20.1 and later).
//!
//! Without it, retention deletes with mutations (`retention::delete_before`): each metric whose points
//! expired queues an `ALTER TABLE … DELETE`, which rewrites every part holding expired points of that
//! metric — a day partition holds every tenant's and metric's points, so the oldest day is rewritten
//! once per metric, every `retention.cleanup_interval`. With a TTL, the points table carries
//!
//! ```sql
//! TTL toDateTime(intDiv(timestamp, 1000)) + toIntervalSecond(<ttl>)
//! SETTINGS …, merge_with_ttl_timeout = 3600
//! ```
//!
//! and ClickHouse drops expired points in its own merges, checking at least hourly. The TTL applies to
//! every metric alike, so it must be at least every retention (the server refuses a configuration or an
//! override that would have it delete points a retention keeps); the retention task then queues no
//! mutation for a metric whose retention is the TTL ([`covers`]), and deletes only the metrics with a
//! shorter retention as before. Expired points stay visible until ClickHouse's merge drops them (up
//! to an hour, as between two sweeps of the retention task).
//!
//! On open, [`ensure`] brings each node's points table to the configured TTL: `MODIFY TTL` when it
//! differs (ClickHouse recomputes the parts' expiry, so raising the TTL never drops points under the
//! old one), `REMOVE TTL` when the TTL was unset. A server older than 20.1 is refused with the setting.

use std::time::Duration;

use crate::schema::SchemaError;
use crate::service::Service;

/// How often, at least, ClickHouse merges parts holding expired points (its default is 4 hours).
const TTL_MERGE_SECONDS: u64 = 3_600;

/// The table settings a points table with a TTL gets, after its others.
pub const TABLE_SETTINGS: &str = ", merge_with_ttl_timeout = 3600";

/// The points table's `TTL` clause for `ttl` (whole seconds).
pub fn clause(ttl: Duration) -> String {
    format!(
        "TTL toDateTime(intDiv(timestamp, 1000)) + toIntervalSecond({})",
        ttl.as_secs()
    )
}

/// Whether a TTL of `ttl` already removes every point older than `cutoff` (Unix ms) as of `now`: the
/// retention task's cut for a metric whose retention is at least the TTL.
pub fn covers(ttl: Option<Duration>, cutoff: i64, now: i64) -> bool {
    ttl.is_some_and(|ttl| {
        let ttl_ms = i64::try_from(ttl.as_secs().saturating_mul(1_000)).unwrap_or(i64::MAX);
        cutoff <= now.saturating_sub(ttl_ms)
    })
}

/// The TTL in seconds that a table's `engine_full` declares, if any (`None` for none, `Some(None)` for
/// one this module did not write).
fn declared(engine_full: &str) -> Option<Option<u64>> {
    let at = engine_full.find(" TTL ")?;
    let rest = &engine_full[at..];
    let seconds = rest
        .strip_prefix(" TTL toDateTime(intDiv(timestamp, 1000)) + toIntervalSecond(")
        .and_then(|r| r.split_once(')'))
        .and_then(|(n, _)| n.parse().ok());
    Some(seconds)
}

/// Refuses a TTL the server cannot keep, before any table is created with it.
pub fn check_supported(service: &Service) -> Result<(), SchemaError> {
    if service.tables.ttl.is_some() && !service.features.ttl {
        return Err(SchemaError::Unsupported(format!(
            "storage.clickhouse.ttl needs ClickHouse 20.1 or later (table TTLs); this server is {}. \
             Leave it unset: retention then deletes expired points by mutation",
            service.version
        )));
    }
    Ok(())
}

/// Puts the configured TTL (or none) on the points table of every node (see the module's text).
/// `schema::ensure` has refused a TTL the server cannot keep ([`check_supported`]) before creating
/// the tables, so a server without TTLs has none to put or remove here.
pub async fn ensure(service: &Service) -> Result<(), SchemaError> {
    let tables = &service.tables;
    if !service.features.ttl {
        return Ok(());
    }
    let table = tables.points_storage_table();
    for node in service.storage_nodes() {
        let engine_full = crate::schema::points_table_text(service, node, "engine_full").await?;
        let mut statements = Vec::new();
        match (tables.ttl, declared(&engine_full)) {
            (Some(ttl), Some(Some(seconds))) if seconds == ttl.as_secs() => {}
            (Some(ttl), _) => {
                statements.push(format!("ALTER TABLE {table} MODIFY {}", clause(ttl)))
            }
            (None, Some(_)) => statements.push(format!("ALTER TABLE {table} REMOVE TTL")),
            (None, None) => {}
        }
        if tables.ttl.is_some()
            && !engine_full.contains(&format!("merge_with_ttl_timeout = {TTL_MERGE_SECONDS}"))
        {
            statements.push(format!(
                "ALTER TABLE {table} MODIFY SETTING merge_with_ttl_timeout = {TTL_MERGE_SECONDS}"
            ));
        }
        crate::schema::alter_points_table(service, node, &statements, "storage.clickhouse.ttl")
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_covers_the_cuts_of_retentions_at_least_as_long() {
        let day = Duration::from_secs(86_400);
        let now = 100 * 86_400_000;
        let cut = |retention_days: i64| now - retention_days * 86_400_000;
        assert!(covers(Some(30 * day), cut(30), now));
        assert!(covers(Some(30 * day), cut(31), now));
        assert!(!covers(Some(30 * day), cut(7), now), "a shorter retention");
        assert!(!covers(None, cut(30), now));
        assert!(
            !covers(Some(30 * day), i64::MAX, now),
            "an admin's delete of all"
        );
    }

    #[test]
    fn the_declared_ttl_is_read_back_from_engine_full() {
        let ours = format!(
            "MergeTree PARTITION BY intDiv(timestamp, 86400000) ORDER BY (tenant, metric, series, \
             timestamp) {} SETTINGS index_granularity = 1024{TABLE_SETTINGS}",
            clause(Duration::from_secs(2_592_000))
        );
        assert_eq!(declared(&ours), Some(Some(2_592_000)));
        assert_eq!(
            declared("MergeTree ORDER BY x TTL toDate(t) + toIntervalDay(3) SETTINGS a = 1"),
            Some(None)
        );
        assert_eq!(
            declared("MergeTree ORDER BY x SETTINGS index_granularity = 1024"),
            None
        );
    }
}
