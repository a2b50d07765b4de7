//! Hand-computed answers for every aggregation, rate and range rule of CONTRACT §4, checked against the
//! reference evaluator. These pin the oracle itself: the differential suites trust it only because of
//! these tests.

use std::time::Duration;

use luminate_model::Filter;
use luminate_model::point::{Dimensions, Point, Tenant};
use luminate_model::query::{Aggregation, QueryKind, QueryPlan};
use luminate_model::reference::ReferenceStore;
use luminate_model::result::{AggregateGroup, BucketValue, GroupKey, QueryResult, RatePoint};

const T0: i64 = 1_800_000_000_000; // a multiple of 60 000: minute buckets start here

fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    Dimensions::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

fn point(name: &str, t: i64, value: f64, d: &[(&str, &str)]) -> Point {
    Point {
        name: name.to_owned(),
        timestamp: t,
        value,
        dimensions: dims(d),
    }
}

fn store(points: Vec<Point>) -> ReferenceStore {
    let mut s = ReferenceStore::new();
    for p in points {
        s.insert(&Tenant::default_tenant(), p);
    }
    s
}

fn plan(kind: QueryKind, start: i64, end: i64) -> QueryPlan {
    QueryPlan {
        kind,
        metric: "m".into(),
        start,
        end,
        filters: vec![],
        group_by: vec![],
        interval_ms: None,
        limit: 100,
        timeout: Duration::from_secs(10),
    }
}

fn key(pairs: &[(&str, &str)]) -> GroupKey {
    GroupKey(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn single_value(s: &ReferenceStore, agg: Aggregation) -> (f64, u64) {
    match s.query(
        &Tenant::default_tenant(),
        &plan(QueryKind::Aggregate(agg), T0, T0 + 3_600_000),
    ) {
        QueryResult::Aggregate { results, .. } => {
            assert_eq!(results.len(), 1, "one group without groupBy");
            (results[0].value, results[0].count)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn basic_aggregations_hand_computed() {
    // Values 4, 1, 7, 2 (arrival order), one series.
    let s = store(
        [4.0, 1.0, 7.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, v)| point("m", T0 + i as i64 * 1_000, *v, &[]))
            .collect(),
    );
    assert_eq!(single_value(&s, Aggregation::Sum), (14.0, 4));
    assert_eq!(single_value(&s, Aggregation::Avg), (3.5, 4));
    assert_eq!(single_value(&s, Aggregation::Count), (4.0, 4));
    assert_eq!(single_value(&s, Aggregation::Min), (1.0, 4));
    assert_eq!(single_value(&s, Aggregation::Max), (7.0, 4));
    // Sorted 1, 2, 4, 7: p50 index floor(0.5*4)=2 → 4; p95 floor(3.8)=3 → 7; p99 → 7.
    assert_eq!(single_value(&s, Aggregation::P50), (4.0, 4));
    assert_eq!(single_value(&s, Aggregation::P95), (7.0, 4));
    assert_eq!(single_value(&s, Aggregation::P99), (7.0, 4));
    // Integral: 1*(1s) + 7*(1s) + 2*(1s) = 10.
    assert_eq!(single_value(&s, Aggregation::Integral), (10.0, 4));
}

#[test]
fn percentiles_at_n_1_2_100() {
    let one = store(vec![point("m", T0, 42.0, &[])]);
    for agg in [Aggregation::P50, Aggregation::P95, Aggregation::P99] {
        assert_eq!(single_value(&one, agg).0, 42.0);
    }
    // N = 2: every percentile index is min(floor(q*2), 1) = 1 → the larger value.
    let two = store(vec![point("m", T0, 9.0, &[]), point("m", T0 + 1, 3.0, &[])]);
    for agg in [Aggregation::P50, Aggregation::P95, Aggregation::P99] {
        assert_eq!(single_value(&two, agg).0, 9.0);
    }
    // N = 100, values 1..=100 in reverse arrival: p50 → 51st smallest, p95 → 96th, p99 → 100th.
    let hundred = store(
        (1..=100)
            .rev()
            .map(|v| point("m", T0 + (100 - v) as i64, f64::from(v), &[]))
            .collect(),
    );
    assert_eq!(single_value(&hundred, Aggregation::P50).0, 51.0);
    assert_eq!(single_value(&hundred, Aggregation::P95).0, 96.0);
    assert_eq!(single_value(&hundred, Aggregation::P99).0, 100.0);
}

#[test]
fn integral_with_duplicates_out_of_order_and_series() {
    // Series a arrives out of order with a duplicate timestamp: sorted (0,5) (2,3) (2,4) (5,1)
    // → 3*2 + 4*0 + 1*3 = 9. Series b: (0,10) (1,10) → 10. Group integral = 19.
    let s = store(vec![
        point("m", T0 + 5_000, 1.0, &[("s", "a")]),
        point("m", T0 + 2_000, 4.0, &[("s", "a")]),
        point("m", T0, 5.0, &[("s", "a")]),
        point("m", T0 + 2_000, 3.0, &[("s", "a")]),
        point("m", T0 + 1_000, 10.0, &[("s", "b")]),
        point("m", T0, 10.0, &[("s", "b")]),
    ]);
    assert_eq!(single_value(&s, Aggregation::Integral), (19.0, 6));
}

#[test]
fn rate_with_reset_duplicates_and_out_of_order() {
    // Counter: 0@0s, 10@10s, 30@20s, 5@30s (reset → 0), 25@40s, arriving shuffled, plus a duplicate
    // timestamp 25@40s and 27@40s: sorted (40,25) (40,25) (40,27) adds 0 + 0 + 2.
    // Buckets of 20s: [0,20): pairs ending at 10s → +10; [20,40): 20s +20, 30s +0; [40,60): +20 +0 +2.
    let pts = [
        (30_000, 5.0),
        (0, 0.0),
        (40_000, 25.0),
        (10_000, 10.0),
        (20_000, 30.0),
        (40_000, 27.0),
        (40_000, 25.0),
    ];
    let s = store(
        pts.iter()
            .map(|(t, v)| point("m", T0 + t, *v, &[]))
            .collect(),
    );
    let mut p = plan(QueryKind::Rate, T0, T0 + 60_000);
    p.interval_ms = Some(20_000);
    let QueryResult::Rate { results, truncated } = s.query(&Tenant::default_tenant(), &p) else {
        panic!()
    };
    assert!(!truncated);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].group_key, GroupKey::default());
    assert_eq!(
        results[0].points,
        vec![
            RatePoint {
                timestamp: T0,
                rate: 10.0 / 20.0
            },
            RatePoint {
                timestamp: T0 + 20_000,
                rate: 20.0 / 20.0
            },
            RatePoint {
                timestamp: T0 + 40_000,
                rate: 22.0 / 20.0
            },
        ]
    );
}

#[test]
fn rate_uses_only_points_inside_the_range_and_sums_series() {
    // Two series of a group; the range starts at 10s so the 0s points are not used.
    let s = store(vec![
        point("m", T0, 100.0, &[("r", "eu"), ("h", "1")]),
        point("m", T0 + 10_000, 1.0, &[("r", "eu"), ("h", "1")]),
        point("m", T0 + 20_000, 4.0, &[("r", "eu"), ("h", "1")]),
        point("m", T0 + 10_000, 10.0, &[("r", "eu"), ("h", "2")]),
        point("m", T0 + 15_000, 16.0, &[("r", "eu"), ("h", "2")]),
        point("m", T0 + 10_000, 7.0, &[("r", "us")]),
    ]);
    let mut p = plan(QueryKind::Rate, T0 + 10_000, T0 + 60_000);
    p.interval_ms = Some(60_000);
    p.group_by = vec!["r".into()];
    let QueryResult::Rate { results, .. } = s.query(&Tenant::default_tenant(), &p) else {
        panic!()
    };
    // eu: (4-1) + (16-10) = 9 over 60s in bucket T0; us has a single point: no increase, no buckets.
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].group_key, key(&[("r", "eu")]));
    assert_eq!(
        results[0].points,
        vec![RatePoint {
            timestamp: T0,
            rate: 9.0 / 60.0
        }]
    );
    assert_eq!(results[1].group_key, key(&[("r", "us")]));
    assert!(results[1].points.is_empty());
}

#[test]
fn rate_without_group_by_and_without_data_is_one_empty_group() {
    let s = store(vec![]);
    let mut p = plan(QueryKind::Rate, T0, T0 + 60_000);
    p.interval_ms = Some(1_000);
    let QueryResult::Rate { results, .. } = s.query(&Tenant::default_tenant(), &p) else {
        panic!()
    };
    assert_eq!(results.len(), 1);
    assert!(results[0].points.is_empty());
}

#[test]
fn buckets_at_boundaries_and_half_open_range() {
    // Points at the start (included), 59.999s, 60s (next bucket) and the end (excluded).
    let s = store(vec![
        point("m", T0, 1.0, &[]),
        point("m", T0 + 59_999, 2.0, &[]),
        point("m", T0 + 60_000, 4.0, &[]),
        point("m", T0 + 120_000, 8.0, &[]),
        point("m", T0 - 1, 16.0, &[]),
    ]);
    let mut p = plan(QueryKind::Aggregate(Aggregation::Sum), T0, T0 + 120_000);
    p.interval_ms = Some(60_000);
    let QueryResult::Aggregate { results, .. } = s.query(&Tenant::default_tenant(), &p) else {
        panic!()
    };
    assert_eq!(
        results,
        vec![AggregateGroup {
            group_key: GroupKey::default(),
            value: 7.0,
            count: 3,
            points: Some(vec![
                BucketValue {
                    timestamp: T0,
                    value: 3.0,
                    count: 2
                },
                BucketValue {
                    timestamp: T0 + 60_000,
                    value: 4.0,
                    count: 1
                },
            ]),
        }]
    );
    // Buckets align to the epoch, not to the range start: a range starting mid-minute still buckets at T0.
    let mut p = plan(
        QueryKind::Aggregate(Aggregation::Count),
        T0 + 30_000,
        T0 + 90_000,
    );
    p.interval_ms = Some(60_000);
    let QueryResult::Aggregate { results, .. } = s.query(&Tenant::default_tenant(), &p) else {
        panic!()
    };
    let buckets = results[0].points.clone().unwrap();
    assert_eq!(
        buckets
            .iter()
            .map(|b| (b.timestamp, b.count))
            .collect::<Vec<_>>(),
        vec![(T0, 1), (T0 + 60_000, 1)]
    );
}

#[test]
fn groups_order_by_value_then_key_and_truncate() {
    // Missing dimension groups as "". Counts: c1 → 2, "" → 2, c2 → 1, c3 → 3.
    let s = store(vec![
        point("m", T0, 1.0, &[("c", "c1")]),
        point("m", T0 + 1, 1.0, &[("c", "c1")]),
        point("m", T0 + 2, 1.0, &[]),
        point("m", T0 + 3, 1.0, &[("other", "x")]),
        point("m", T0 + 4, 1.0, &[("c", "c2")]),
        point("m", T0 + 5, 1.0, &[("c", "c3")]),
        point("m", T0 + 6, 1.0, &[("c", "c3")]),
        point("m", T0 + 7, 1.0, &[("c", "c3")]),
    ]);
    let mut p = plan(QueryKind::Aggregate(Aggregation::Count), T0, T0 + 10);
    p.group_by = vec!["c".into()];
    p.limit = 3;
    let QueryResult::Aggregate { results, truncated } = s.query(&Tenant::default_tenant(), &p)
    else {
        panic!()
    };
    assert!(truncated);
    let got: Vec<(GroupKey, f64)> = results
        .into_iter()
        .map(|g| (g.group_key, g.value))
        .collect();
    assert_eq!(
        got,
        vec![
            (key(&[("c", "c3")]), 3.0),
            (key(&[("c", "")]), 2.0),
            (key(&[("c", "c1")]), 2.0)
        ]
    );
}

#[test]
fn filters_are_and_and_match_missing_as_empty() {
    let s = store(vec![
        point("m", T0, 1.0, &[("a", "1"), ("b", "2")]),
        point("m", T0 + 1, 2.0, &[("a", "1")]),
        point("m", T0 + 2, 4.0, &[("a", "2")]),
    ]);
    let sum = |filters: Vec<Filter>| {
        let mut p = plan(QueryKind::Aggregate(Aggregation::Sum), T0, T0 + 10);
        p.filters = filters;
        let QueryResult::Aggregate { results, .. } = s.query(&Tenant::default_tenant(), &p) else {
            panic!()
        };
        results.first().map(|g| g.value)
    };
    assert_eq!(sum(vec![Filter::equals("a", "1")]), Some(3.0));
    assert_eq!(
        sum(vec![Filter::equals("a", "1"), Filter::equals("b", "")]),
        Some(2.0)
    );
    // Any of a list: the union of the single-value answers; `""` among them adds the points without
    // the key, a value nobody carries adds nothing.
    assert_eq!(sum(vec![Filter::any_of("a", ["1", "2"])]), Some(7.0));
    assert_eq!(sum(vec![Filter::any_of("b", ["", "2"])]), Some(7.0));
    assert_eq!(sum(vec![Filter::any_of("b", ["", "nobody"])]), Some(6.0));
    assert_eq!(
        sum(vec![
            Filter::any_of("a", ["2", "nobody"]),
            Filter::any_of("b", ["", "2"])
        ]),
        Some(4.0)
    );
    assert_eq!(sum(vec![Filter::any_of("a", ["3", "nobody"])]), None);
    // An empty list (which a request cannot give) selects nothing.
    assert_eq!(sum(vec![Filter::any_of("a", Vec::<String>::new())]), None);
}

#[test]
fn range_orders_by_time_then_series_and_truncates() {
    let s = store(vec![
        point("m", T0 + 1, 5.0, &[("k", "b")]),
        point("m", T0 + 1, 6.0, &[("k", "a")]),
        point("m", T0, 7.0, &[("k", "z")]),
        point("m", T0 + 1, 1.0, &[("k", "a")]),
    ]);
    let mut p = plan(QueryKind::Range, T0, T0 + 10);
    p.limit = 3;
    let QueryResult::Range { results, truncated } = s.query(&Tenant::default_tenant(), &p) else {
        panic!()
    };
    assert!(truncated);
    let got: Vec<(i64, f64)> = results
        .iter()
        .map(|r| (r.timestamp - T0, r.value))
        .collect();
    assert_eq!(got, vec![(0, 7.0), (1, 1.0), (1, 6.0)]);
}

#[test]
fn tenants_never_mix() {
    let mut s = ReferenceStore::new();
    s.insert(&Tenant::new("a"), point("m", T0, 1.0, &[]));
    s.insert(&Tenant::new("b"), point("m", T0, 2.0, &[]));
    let p = plan(QueryKind::Aggregate(Aggregation::Sum), T0, T0 + 1);
    let QueryResult::Aggregate { results, .. } = s.query(&Tenant::new("b"), &p) else {
        panic!()
    };
    assert_eq!(results[0].value, 2.0);
    assert_eq!(s.metric_names(&Tenant::new("c")), Vec::<String>::new());
}

#[test]
fn discovery_orders_and_forgets_deleted_metrics() {
    let mut s = store(vec![
        point("m", T0, 1.0, &[("c", "cust_1"), ("r", "eu")]),
        point("m", T0 + 1, 1.0, &[("c", "cust_2")]),
        point("m", T0 + 2, 1.0, &[("c", "cust_2")]),
        point("m", T0 + 3, 1.0, &[("c", "cust_10")]),
        point("n", T0, 1.0, &[]),
    ]);
    let t = Tenant::default_tenant();
    assert_eq!(s.metric_names(&t), vec!["m", "n"]);
    assert_eq!(
        s.dimension_keys(&t, "m"),
        Some(vec!["c".to_owned(), "r".to_owned()])
    );
    assert_eq!(s.dimension_keys(&t, "zzz"), None);
    let values = s.dimension_values(&t, "m", "c", "cust_1", 10).unwrap();
    assert_eq!(
        values
            .iter()
            .map(|v| (v.value.as_str(), v.points))
            .collect::<Vec<_>>(),
        vec![("cust_1", 1), ("cust_10", 1)]
    );
    let values = s.dimension_values(&t, "m", "c", "", 1).unwrap();
    assert_eq!(values[0].value, "cust_2");
    let card = s.cardinality(&t, None);
    assert_eq!(card[0].metric, "m");
    assert_eq!(card[0].series, 3);
    assert_eq!(
        (
            card[0].dimensions[0].key.as_str(),
            card[0].dimensions[0].distinct_values
        ),
        ("c", 3)
    );
    assert_eq!(s.delete_before(&t, "n", T0 + 1), 1);
    assert_eq!(s.metric_names(&t), vec!["m"]);
    assert_eq!(s.dimension_keys(&t, "n"), None);
}
