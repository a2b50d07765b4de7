//! The JSON body of `POST /api/v1/query` as the route reads it: serde into a `QueryRequest`, then
//! `PlannedQuery::from_request` against the contract's limits. Any input must end in a plan or a
//! typed query error (never a panic), and a plan must keep every promise the backends rely on.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use luminate_model::query::{MAX_VALUES_LIMIT, MIN_INTERVAL};
use luminate_model::time::MIN_TIMESTAMP;
use luminate_model::{ErrorCode, PlannedQuery, QueryKind, QueryLimits, QueryRequest};

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let limits = QueryLimits::default();
    // The route answers a body serde refuses with INVALID_QUERY and the parser's message.
    let Ok(request) = serde_json::from_slice::<QueryRequest>(data) else {
        return;
    };
    match PlannedQuery::from_request(request, NOW, &limits) {
        Ok(PlannedQuery::Points(plan)) => {
            assert!(
                MIN_TIMESTAMP <= plan.start && plan.start < plan.end,
                "{plan:?}"
            );
            let span = Duration::from_millis(plan.end.abs_diff(plan.start));
            assert!(span <= limits.max_time_range, "{plan:?}");
            let max = match plan.kind {
                QueryKind::Range => limits.max_result_points,
                _ => limits.max_group_by_cardinality,
            };
            assert!((1..=max).contains(&plan.limit), "{plan:?}");
            assert!(plan.timeout <= limits.max_timeout, "{plan:?}");
            // Filters sorted by key, one per key: the stores merge them by key.
            assert!(
                plan.filters.windows(2).all(|w| w[0].key() < w[1].key()),
                "{plan:?}"
            );
            assert!(
                plan.filters.iter().all(|f| !f.values().is_empty()),
                "{plan:?}"
            );
            for (i, key) in plan.group_by.iter().enumerate() {
                assert!(!plan.group_by[..i].contains(key), "{plan:?}");
            }
            if let Some(ms) = plan.interval_ms {
                assert!(ms >= MIN_INTERVAL.as_millis() as i64, "{plan:?}");
            }
            if plan.kind == QueryKind::Rate {
                assert!(plan.interval_ms.is_some(), "{plan:?}");
            }
        }
        Ok(PlannedQuery::DimensionValues(plan)) => {
            assert!((1..=MAX_VALUES_LIMIT).contains(&plan.limit), "{plan:?}");
            assert!(plan.timeout <= limits.max_timeout, "{plan:?}");
            assert!(!plan.dimension.is_empty(), "{plan:?}");
        }
        Err(e) => assert!(
            matches!(
                e.code,
                ErrorCode::InvalidQuery
                    | ErrorCode::QueryLimitExceeded
                    | ErrorCode::InvalidMetricName
            ),
            "{e:?}"
        ),
    }
});
