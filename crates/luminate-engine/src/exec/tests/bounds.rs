//! Phase A of a percentile's top groups (`exec::bounds`) rules out the groups that cannot be in the
//! answer, and the query over the groups left answers as the query over all of them.

use super::*;

/// 400 customers: `c0`..`c9` have 1–5 points each, all `1000 + c` (exact: a p95 of at most 19 points
/// is the maximum); `c10`..`c398` have 30 points of at most 100; `c399` has 30 points, 29 of them 2000.
fn customers() -> Vec<Point> {
    let point = |c: usize, i: usize, value: f64| Point {
        name: "m".into(),
        timestamp: (c * 100 + i) as i64,
        value,
        dimensions: Dimensions::from_pairs([("customer".to_owned(), format!("c{c:03}"))]),
    };
    let mut points = Vec::new();
    for c in 0..400 {
        match c {
            0..=9 => points.extend((0..=c % 5).map(|i| point(c, i, 1000.0 + c as f64))),
            399 => points.extend((0..30).map(|i| point(c, i, if i == 0 { 1.0 } else { 2000.0 }))),
            _ => points.extend((0..30).map(|i| point(c, i, ((c * 7 + i * 13) % 101) as f64))),
        }
    }
    points
}

/// The head's chunks of metric `m` as sources.
fn head_sources<'a>(index: &Index, head: &'a Head) -> Vec<Source<'a>> {
    let m = index.tenant(&tenant()).unwrap().metric_id("m").unwrap();
    head.rows(&tenant(), m)
        .into_iter()
        .map(|rows| Source::Rows { rows, floor: None })
        .collect()
}

#[test]
fn phase_a_keeps_only_the_groups_that_may_reach_the_top_and_answers_as_all() {
    let (index, head) = load(&customers());
    let ti = index.tenant(&tenant());
    let query = QueryPlan {
        group_by: vec!["customer".into()],
        interval_ms: None,
        limit: 3,
        ..plan(QueryKind::Aggregate(Aggregation::P95))
    };
    let ctx = QueryContext::new(Duration::from_secs(30));
    let pool = pool(2);
    let sources = head_sources(&index, &head);
    let prepared = prepare(ti, &query, &ctx, &pool).unwrap();
    let phase_a = crate::exec::bounds::phase_a_plan(&query).unwrap();
    let per_series = prepared.per_series(&phase_a, ti).unwrap();
    let moments = scan_sources(&per_series, &sources, &ctx, 1 << 20, &pool).unwrap();
    let narrowed = prepared.narrowed(moments).unwrap();
    // The bound is c7's 1007 (the 3rd largest exact value): c7, c8, c9 reach it, and c399, whose 29
    // points of 2000 are more than the 2 its p95 needs; no group of points of at most 100 does.
    let kept: Vec<GroupKey> = (0..narrowed.keep.len() as u32)
        .filter(|&g| narrowed.keep[g as usize])
        .map(|g| {
            let out = Finish {
                plan: &query,
                selection: &prepared.selection,
                cells: None,
                ti,
                pool: &pool,
            };
            out.key(g)
        })
        .collect();
    let names: Vec<&str> = kept.iter().map(|k| k.0[0].1.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for c in ["c007", "c008", "c009", "c399"] {
        assert!(names.contains(&c), "{c} kept: {names:?}");
    }
    assert!(narrowed.truncated);
    assert_eq!(narrowed.prepared.selection.series.len(), 4);
    // The narrowed query over the head's rows of the groups kept answers as the whole query.
    let mut active = scan_sources(&prepared, &sources, &ctx, 1 << 20, &pool).unwrap();
    active.retain_groups(&narrowed.keep);
    let mut bounded = finish(&narrowed.prepared, active, ti, &ctx, 1 << 20, &pool).unwrap();
    if let QueryResult::Aggregate { truncated, .. } = &mut bounded {
        *truncated = narrowed.truncated;
    }
    let whole = run_on(&index, &head, &query, 1 << 20).unwrap();
    assert_eq!(bounded, whole);
    let QueryResult::Aggregate { results, .. } = whole else {
        panic!("an aggregate answer");
    };
    let top: Vec<(String, f64)> = results
        .iter()
        .map(|g| (g.group_key.0[0].1.clone(), g.value))
        .collect();
    assert_eq!(
        top,
        [
            ("c399".into(), 2000.0),
            ("c009".into(), 1009.0),
            ("c008".into(), 1008.0)
        ]
    );
}

#[test]
fn too_few_exact_groups_or_groups_read_every_group() {
    let (index, head) = load(&customers());
    let ti = index.tenant(&tenant());
    let ctx = QueryContext::new(Duration::from_secs(30));
    let pool = pool(2);
    let sources = head_sources(&index, &head);
    // Eleven places, ten groups small enough to be exact in all: no phase A.
    let eleven = QueryPlan {
        group_by: vec!["customer".into()],
        interval_ms: None,
        limit: 11,
        ..plan(QueryKind::Aggregate(Aggregation::P95))
    };
    let prepared = prepare(ti, &eleven, &ctx, &pool).unwrap();
    let phase_a = crate::exec::bounds::phase_a_plan(&eleven).unwrap();
    assert!(prepared.per_series(&phase_a, ti).is_none());
    // Three places, but a range without the small groups' points (before 1 000): phase A finds no
    // exact group in it and the query reads every group.
    let later = QueryPlan {
        start: 1_000,
        limit: 3,
        ..eleven.clone()
    };
    let prepared = prepare(ti, &later, &ctx, &pool).unwrap();
    let phase_a = crate::exec::bounds::phase_a_plan(&later).unwrap();
    let per_series = prepared.per_series(&phase_a, ti).unwrap();
    let moments = scan_sources(&per_series, &sources, &ctx, 1 << 20, &pool).unwrap();
    assert!(prepared.narrowed(moments).is_none());
    // 400 groups for 60 places: read them all. With an interval, or not a percentile: no phase A.
    let sixty = QueryPlan {
        limit: 60,
        ..eleven.clone()
    };
    let prepared = prepare(ti, &sixty, &ctx, &pool).unwrap();
    assert!(
        prepared
            .per_series(&crate::exec::bounds::phase_a_plan(&sixty).unwrap(), ti)
            .is_none()
    );
    let bucketed = QueryPlan {
        interval_ms: Some(1_000),
        ..eleven.clone()
    };
    assert!(crate::exec::bounds::phase_a_plan(&bucketed).is_none());
    let max = QueryPlan {
        kind: QueryKind::Aggregate(Aggregation::Max),
        ..eleven
    };
    assert!(crate::exec::bounds::phase_a_plan(&max).is_none());
}

#[test]
fn a_percentile_is_its_groups_maximum_up_to_the_exact_size() {
    use crate::exec::bounds::exact_size;
    assert_eq!(
        (exact_size(50), exact_size(95), exact_size(99)),
        (2, 20, 100)
    );
}
