//! What a query holds in the server's memory, in the units every backend's estimate shares (see
//! [`crate::MetricsStore::query_memory`]): a fixed overhead, and the answer, which every backend builds as
//! a [`crate::QueryResult`] and the server encodes as JSON. A backend that buffers the points it reads adds
//! its buffers to these.
//!
//! The figures are estimates, rounded up: what a query is charged against the server's query memory
//! budget, not an accounting of its allocations.

use crate::query::{QueryKind, QueryPlan};

/// Bytes every query holds besides its data: the request, the plan, the task, the response's head.
pub const QUERY_OVERHEAD_BYTES: u64 = 64 << 10;

/// Bytes of one point of an answer while it is built and encoded: its timestamp and value in the
/// result, and its JSON (`{"timestamp":1764000000000,"value":12.5,"count":3}`).
pub const ANSWER_POINT_BYTES: u64 = 64;

/// Bytes of a group key or a series' dimensions in an answer, with their JSON. A range answer carries its
/// series' dimensions in every point.
pub const ANSWER_DIMENSIONS_BYTES: u64 = 256;

/// Buckets per group of `plan`: the buckets its interval cuts `[start, end)` into (one more, since they
/// are epoch-aligned), or 1 without an interval.
pub fn buckets(plan: &QueryPlan) -> u64 {
    match plan.interval_ms {
        None => 1,
        Some(interval) => {
            let span = u64::try_from(plan.end.saturating_sub(plan.start)).unwrap_or(0);
            span.div_ceil(u64::try_from(interval.max(1)).unwrap_or(1))
                .saturating_add(1)
        }
    }
}

/// The most points an answer to `plan` can hold, whatever the data: `limit` points of a range query;
/// `limit` groups of one value per bucket otherwise.
pub fn answer_points_bound(plan: &QueryPlan) -> u64 {
    let limit = plan.limit as u64;
    match plan.kind {
        QueryKind::Range => limit,
        QueryKind::Aggregate(_) | QueryKind::Rate => limit.saturating_mul(buckets(plan)),
    }
}

/// Memory of an answer to `plan` of `points` points in `groups` groups (ignored for a range, whose
/// points each carry their dimensions).
pub fn answer_bytes(plan: &QueryPlan, points: u64, groups: u64) -> u64 {
    match plan.kind {
        QueryKind::Range => points.saturating_mul(ANSWER_POINT_BYTES + ANSWER_DIMENSIONS_BYTES),
        QueryKind::Aggregate(_) | QueryKind::Rate => points
            .saturating_mul(ANSWER_POINT_BYTES)
            .saturating_add(groups.saturating_mul(ANSWER_DIMENSIONS_BYTES)),
    }
}

/// The estimate of a backend that holds nothing of a query but its answer (the data is scanned
/// elsewhere), when that answer cannot exceed `max_answer_bytes`: the overhead, and the largest answer
/// the plan allows, at most `max_answer_bytes`.
pub fn answer_only(plan: &QueryPlan, max_answer_bytes: u64) -> u64 {
    let points = answer_points_bound(plan);
    let groups = (plan.limit as u64).min(points);
    QUERY_OVERHEAD_BYTES.saturating_add(answer_bytes(plan, points, groups).min(max_answer_bytes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::query::Aggregation;

    fn plan(kind: QueryKind, interval_ms: Option<i64>, limit: usize) -> QueryPlan {
        QueryPlan {
            kind,
            metric: "m".into(),
            start: 0,
            end: 3_600_000,
            filters: Vec::new(),
            group_by: vec!["customer_id".into()],
            interval_ms,
            limit,
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn answers_are_bounded_by_the_limit_and_the_buckets() {
        let p99 = plan(QueryKind::Aggregate(Aggregation::P99), None, 100);
        assert_eq!((buckets(&p99), answer_points_bound(&p99)), (1, 100));
        // One hour in minutes: 60 buckets, 61 with the aligned edge.
        let per_minute = plan(QueryKind::Rate, Some(60_000), 100);
        assert_eq!(answer_points_bound(&per_minute), 6_100);
        let range = plan(QueryKind::Range, None, 10_000);
        assert_eq!(answer_points_bound(&range), 10_000);
        assert_eq!(answer_bytes(&range, 10, 1), 10 * 320);
        assert_eq!(answer_bytes(&p99, 100, 100), 100 * 64 + 100 * 256);
    }

    #[test]
    fn an_answer_only_estimate_is_capped_by_the_largest_answer() {
        let p99 = plan(QueryKind::Aggregate(Aggregation::P99), None, 100);
        assert_eq!(
            answer_only(&p99, u64::MAX),
            QUERY_OVERHEAD_BYTES + 100 * 64 + 100 * 256
        );
        // A second-by-second rate over 90 days: far more than the answer may be.
        let mut dense = plan(QueryKind::Rate, Some(1_000), 1_000);
        dense.end = 90 * 86_400_000;
        assert_eq!(
            answer_only(&dense, 256 << 20),
            QUERY_OVERHEAD_BYTES + (256 << 20)
        );
    }
}
