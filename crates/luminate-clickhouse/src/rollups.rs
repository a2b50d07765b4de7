//! Per-series hourly rollups (`storage.clickhouse.rollups`, ClickHouse 23.8 and later): an aggregate
//! projection of the points table,
//!
//! ```sql
//! PROJECTION luminate_hourly (
//!     SELECT tenant, metric, series, dim_keys, dim_values, intDiv(timestamp, 3600000),
//!            count(), sum(value), min(value), max(value)
//!     GROUP BY tenant, metric, series, dim_keys, dim_values, intDiv(timestamp, 3600000))
//! ```
//!
//! which ClickHouse keeps inside every part it writes, merges and mutates: it is never out of step with
//! the points, whatever happens to an insert (a part and its projection are written, merged and
//! deleted together), so an answer read from it is exact. Count, sum, avg, min and max over a range of
//! whole hours (with no interval, or one of whole hours) are asked in a form the projection can answer
//! — the hour as `intDiv(timestamp, 3600000)`, dimensions read from the arrays, avg as sum / count —
//! and ClickHouse reads the projection where a part has it and the points where it does not (parts
//! written before the projection existed, until `MATERIALIZE PROJECTION` has rewritten them). The same
//! statement selects the same points either way, so the answer does not depend on which it reads.
//!
//! What it costs: ClickHouse aggregates every insert once more. Measured through chDB 26.9 (docs/
//! clickhouse.md, "Rollups"): inserts of 400 series at one point a second took 1.26× as long, inserts of
//! high-cardinality points (each series a few points an hour) 2.6× as long; a sum by region over six
//! hours of the former answered in 5.6 ms instead of 136 ms. So it is off by default: it pays where
//! series hold many points an hour.
//!
//! 18.16 has no projections; a server older than 23.8 is refused with the setting, as for the TTL.

use luminate_model::QueryPlan;
use luminate_model::query::{Aggregation, QueryKind};

use crate::schema::SchemaError;
use crate::service::Service;

/// Milliseconds of one rollup block (an hour).
pub const BLOCK_MS: i64 = 3_600_000;

/// The projection's name.
pub const NAME: &str = "luminate_hourly";

/// A point's block, as the projection groups it and a rollup query must spell it.
pub const BLOCK: &str = "intDiv(timestamp, 3600000)";

/// The projection as `CREATE TABLE` lists it.
pub fn definition() -> String {
    format!("PROJECTION {}", named_query())
}

/// `luminate_hourly (SELECT …)`, as `ADD PROJECTION` takes it.
fn named_query() -> String {
    format!(
        "{NAME} (SELECT tenant, metric, series, dim_keys, dim_values, {BLOCK}, count(), sum(value), \
         min(value), max(value) GROUP BY tenant, metric, series, dim_keys, dim_values, {BLOCK})"
    )
}

/// Whether the rollups can answer `plan`: count, sum, avg, min or max over whole hours, with no
/// interval or one of whole hours. The range starts after the epoch's first hour: for negative
/// timestamps `intDiv` rounds toward zero, so the first hour's block would also hold the last hour
/// before the epoch.
pub fn answer(plan: &QueryPlan) -> bool {
    let aggregation = matches!(
        plan.kind,
        QueryKind::Aggregate(
            Aggregation::Count
                | Aggregation::Sum
                | Aggregation::Avg
                | Aggregation::Min
                | Aggregation::Max
        )
    );
    aggregation
        && plan.start >= BLOCK_MS
        && plan.start % BLOCK_MS == 0
        && plan.end % BLOCK_MS == 0
        && plan.interval_ms.is_none_or(|i| i % BLOCK_MS == 0)
}

/// The bucket of `interval_ms` (whole hours) of a point, from its block: `floor(t / i) * i` for the
/// positive timestamps a rollup query selects.
pub fn bucket(interval_ms: i64) -> String {
    format!(
        "(intDiv({BLOCK}, {}) * toInt64({interval_ms}))",
        interval_ms / BLOCK_MS
    )
}

/// Refuses rollups on a server without projections, before any table is created.
pub fn check_supported(service: &Service) -> Result<(), SchemaError> {
    if service.tables.rollups && !service.features.projections {
        return Err(SchemaError::Unsupported(format!(
            "storage.clickhouse.rollups needs ClickHouse 23.8 or later (aggregate projections); this \
             server is {}. Leave it off: every query then reads the points",
            service.version
        )));
    }
    Ok(())
}

/// Puts the projection on (or takes it off) the points table of every node, as configured. A table
/// that gets it has its existing parts rewritten with it in the background (`MATERIALIZE
/// PROJECTION`, a mutation); answers are exact meanwhile, read from the points of those parts.
pub async fn ensure(service: &Service) -> Result<(), SchemaError> {
    let tables = &service.tables;
    if !service.features.projections {
        return Ok(());
    }
    let table = tables.points_storage_table();
    for node in service.storage_nodes() {
        let create = crate::schema::points_table_text(service, node, "create_table_query").await?;
        let has = create.contains(&format!("PROJECTION {NAME} "));
        let statements = match (tables.rollups, has) {
            (true, false) => vec![
                format!(
                    "ALTER TABLE {table} ADD PROJECTION IF NOT EXISTS {}",
                    named_query()
                ),
                format!("ALTER TABLE {table} MATERIALIZE PROJECTION {NAME}"),
            ],
            (false, true) => vec![format!(
                "ALTER TABLE {table} DROP PROJECTION IF EXISTS {NAME}"
            )],
            _ => Vec::new(),
        };
        crate::schema::alter_points_table(service, node, &statements, "storage.clickhouse.rollups")
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn plan(kind: QueryKind, start: i64, end: i64, interval_ms: Option<i64>) -> QueryPlan {
        QueryPlan {
            kind,
            metric: "m".into(),
            start,
            end,
            filters: vec![],
            group_by: vec![],
            interval_ms,
            limit: 10,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn only_whole_hours_of_the_five_additive_aggregations_are_answered() {
        let h = BLOCK_MS;
        let sum = QueryKind::Aggregate(Aggregation::Sum);
        assert!(answer(&plan(sum, 10 * h, 13 * h, None)));
        assert!(answer(&plan(sum, 10 * h, 13 * h, Some(2 * h))));
        for kind in [
            Aggregation::Count,
            Aggregation::Avg,
            Aggregation::Min,
            Aggregation::Max,
        ] {
            assert!(answer(&plan(QueryKind::Aggregate(kind), h, 2 * h, None)));
        }
        assert!(!answer(&plan(sum, 10 * h + 1, 13 * h, None)));
        assert!(!answer(&plan(sum, 10 * h, 13 * h - 1, None)));
        assert!(!answer(&plan(sum, 10 * h, 13 * h, Some(60_000))));
        assert!(
            !answer(&plan(sum, 0, 13 * h, None)),
            "the epoch's first hour"
        );
        assert!(!answer(&plan(sum, -h, h, None)));
        for kind in [
            QueryKind::Aggregate(Aggregation::P95),
            QueryKind::Aggregate(Aggregation::Integral),
            QueryKind::Range,
            QueryKind::Rate,
        ] {
            assert!(!answer(&plan(kind, h, 2 * h, Some(h))));
        }
    }

    #[test]
    fn the_projection_and_its_buckets_are_spelled_from_the_block() {
        assert!(definition().starts_with("PROJECTION luminate_hourly (SELECT tenant,"));
        assert_eq!(
            bucket(2 * BLOCK_MS),
            "(intDiv(intDiv(timestamp, 3600000), 2) * toInt64(7200000))"
        );
    }
}
