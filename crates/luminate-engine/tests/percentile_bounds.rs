//! A percentile's top groups found through bounds (`exec::bounds`: each series' count and maximum
//! first, then only the groups that may be in the answer) equal the reference's, bit for bit: groups
//! small enough to be exact and large ones, zeros of both signs, negative values, ties at the limit,
//! the data in parts and in the head, filters, ranges that cut blocks, and limits from 1 to past the
//! number of groups.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::time::Duration;

use luminate_engine::{Engine, EngineConfig};
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::reference::ReferenceStore;
use luminate_model::testkit::{self, Rng};
use luminate_model::{Dimensions, Filter, Point, QueryContext, QueryPlan, QueryResult, Tenant};

const BASE: i64 = 1_800_000_000_000;
const HOUR: i64 = 3_600_000;

/// Values drawn from a few that tie, zeros of both signs and negatives, or spread out.
fn value(rng: &mut Rng) -> f64 {
    match rng.below(10) {
        0 => 0.0,
        1 => -0.0,
        2 => -(rng.below(50) as f64),
        3..=5 => [10.0, 20.0, 50.0][rng.below(3) as usize],
        _ => rng.below(100_000) as f64 / 10.0,
    }
}

/// `customers` customers over three regions; customer `c` has `1 + rng.below(c % 60 + 1)` points
/// (many groups of fewer than 20 points, some of up to 60), over two hours.
fn points(rng: &mut Rng, customers: usize) -> Vec<Point> {
    let mut out = Vec::new();
    for c in 0..customers {
        let n = 1 + rng.below(c as u64 % 60 + 1);
        for _ in 0..n {
            let region = ["eu", "us", "ap"][rng.below(3) as usize];
            out.push(Point {
                name: "lat".into(),
                timestamp: BASE + rng.below(2 * HOUR as u64) as i64,
                value: value(rng),
                dimensions: Dimensions::from_pairs([
                    ("customer".to_owned(), format!("c{c:04}")),
                    ("region".to_owned(), region.to_owned()),
                ]),
            });
        }
    }
    out
}

fn plans() -> Vec<QueryPlan> {
    plans_of(&[Aggregation::P50, Aggregation::P95, Aggregation::P99])
}

fn plans_of(aggregations: &[Aggregation]) -> Vec<QueryPlan> {
    let mut plans = Vec::new();
    for &agg in aggregations {
        for limit in [1, 3, 10, 40, 5000] {
            for (group_by, filters) in [
                (vec!["customer"], vec![]),
                (vec!["customer", "region"], vec![]),
                (vec!["customer"], vec![Filter::equals("region", "eu")]),
            ] {
                for (start, end) in [
                    (BASE, BASE + 2 * HOUR),
                    (BASE + 1_234_567, BASE + HOUR + 77),
                ] {
                    plans.push(QueryPlan {
                        kind: QueryKind::Aggregate(agg),
                        metric: "lat".into(),
                        start,
                        end,
                        filters: filters.clone(),
                        group_by: group_by.iter().map(|k| (*k).to_owned()).collect(),
                        interval_ms: None,
                        limit,
                        timeout: Duration::from_secs(30),
                    });
                }
            }
        }
    }
    plans
}

fn check(engine: &Engine, reference: &ReferenceStore, tenant: &Tenant, stage: &str) {
    check_plans(engine, reference, tenant, stage, plans());
}

fn check_plans(
    engine: &Engine,
    reference: &ReferenceStore,
    tenant: &Tenant,
    stage: &str,
    plans: Vec<QueryPlan>,
) {
    for plan in plans {
        let expected = reference.query(tenant, &plan);
        let actual = engine
            .query(tenant, &plan, &QueryContext::new(Duration::from_secs(30)))
            .unwrap();
        if let Some(diff) = testkit::diff_results(&expected, &actual) {
            panic!("{stage}, {plan:?}:\n{diff}");
        }
        // Percentiles and maxima select a stored value: the same bits, the sign of a zero included.
        let (QueryResult::Aggregate { results: e, .. }, QueryResult::Aggregate { results: a, .. }) =
            (&expected, &actual)
        else {
            panic!("{stage}: not an aggregate answer");
        };
        let bits = |r: &[luminate_model::result::AggregateGroup]| {
            r.iter().map(|g| g.value.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(a), bits(e), "{stage}, {plan:?}");
    }
}

#[test]
fn top_percentile_groups_through_bounds_equal_the_reference_in_parts_and_head() {
    for seed in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let mut reference = ReferenceStore::new();
        let tenant = Tenant::new("t");
        let mut rng = Rng::new(seed);
        let all = points(&mut rng, 600);
        let (first, second) = all.split_at(all.len() / 2);
        for (i, chunk) in first.chunks(500).enumerate() {
            engine.write(&tenant, chunk.to_vec()).unwrap();
            if i % 3 == 2 {
                // Several parts, the head holding the rest.
                engine.flush().unwrap();
            }
        }
        for p in first {
            reference.insert(&tenant, p.clone());
        }
        check(
            &engine,
            &reference,
            &tenant,
            &format!("seed {seed}, parts and head"),
        );
        engine.flush().unwrap();
        engine.compact().unwrap();
        engine.write(&tenant, second.to_vec()).unwrap();
        for p in second {
            reference.insert(&tenant, p.clone());
        }
        check(
            &engine,
            &reference,
            &tenant,
            &format!("seed {seed}, compacted and head"),
        );
    }
}

/// Writes `all` in parts and head, checks `plans`, then compacts and checks them again.
fn check_over_parts_and_head(all: &[Point], plans: impl Fn() -> Vec<QueryPlan>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let mut reference = ReferenceStore::new();
    let tenant = Tenant::new("t");
    let (first, second) = all.split_at(all.len() * 2 / 3);
    for (i, chunk) in first.chunks(4_000).enumerate() {
        engine.write(&tenant, chunk.to_vec()).unwrap();
        if i % 2 == 1 {
            engine.flush().unwrap();
        }
    }
    engine.write(&tenant, second.to_vec()).unwrap();
    for p in all {
        reference.insert(&tenant, p.clone());
    }
    let series = engine.cardinality(&tenant, Some("lat"))[0].series;
    assert!(series > 4_096, "{series} series");
    check_plans(&engine, &reference, &tenant, "parts and head", plans());
    engine.flush().unwrap();
    engine.compact().unwrap();
    check_plans(&engine, &reference, &tenant, "compacted", plans());
}

/// More series than a scan keeps moments for group by group (4 096): phase A keeps each series'
/// rows and maximum in pairs apart from the moments (`CountMaxes`), merged across scan tasks and
/// parts. About 5 500 series of customer × region; every answer equal to the reference, bit for bit.
#[test]
fn phase_a_over_more_than_four_thousand_series_equals_the_reference() {
    let all = points(&mut Rng::new(7), 2_000);
    check_over_parts_and_head(&all, || plans_of(&[Aggregation::P95, Aggregation::P99]));
}

/// A `max` (and, for contrast, a `min`) over more than 4 096 groups keeps them as phase A does. Zeros
/// are all positive here: a group holding both `0.0` and `-0.0` has either as its `f64::max`,
/// depending on the order partials merge in (the reference and the engine may differ, and their
/// answers' order by value with them).
#[test]
fn maxima_over_more_than_four_thousand_groups_equal_the_reference() {
    let mut all = points(&mut Rng::new(11), 2_000);
    for p in &mut all {
        p.value = p.value.abs();
    }
    check_over_parts_and_head(&all, || plans_of(&[Aggregation::Max, Aggregation::Min]));
}
