//! Bounds, selection, and the merging of partials from several sources; answers on one source are
//! checked against the reference in `tests/differential_conformance.rs`.

use std::collections::HashMap;
use std::time::Duration;

use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::reference::ReferenceStore;
use luminate_model::testkit::{self, Rng};
use luminate_model::{Dimensions, Filter, Point, QueryContext, QueryPlan, StoreError, Tenant};

use super::*;
use crate::apply::apply_batch;
use crate::head::Head;
use crate::index::Index;
use crate::record::{SeriesDef, SeriesId, SeriesPoint, WriteBatch};

pub(super) fn tenant() -> Tenant {
    Tenant::new("t")
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Turns points into write batches of `per_batch` points, defining each series in the batch of its
/// first point, as the commit thread does.
pub(super) fn batches(points: &[Point], per_batch: usize) -> Vec<WriteBatch> {
    let mut ids: HashMap<(String, Dimensions), SeriesId> = HashMap::new();
    points
        .chunks(per_batch)
        .map(|chunk| {
            let mut batch = WriteBatch {
                tenant: tenant(),
                new_series: Vec::new(),
                points: Vec::new(),
            };
            for p in chunk {
                let next = ids.len() as SeriesId;
                let id = *ids
                    .entry((p.name.clone(), p.dimensions.clone()))
                    .or_insert_with(|| {
                        batch.new_series.push(SeriesDef {
                            id: next,
                            metric: p.name.clone(),
                            dims: p.dimensions.clone(),
                        });
                        next
                    });
                batch.points.push(SeriesPoint {
                    series: id,
                    timestamp: p.timestamp,
                    value: p.value,
                });
            }
            batch
        })
        .collect()
}

/// An index and one head holding `points`.
fn load(points: &[Point]) -> (Index, Head) {
    let (mut index, mut head) = (Index::default(), Head::default());
    for b in batches(points, 50) {
        apply_batch(&mut index, &mut head, &b).unwrap();
    }
    (index, head)
}

fn one_series(points: usize) -> Vec<Point> {
    (0..points)
        .map(|i| Point {
            name: "m".into(),
            timestamp: i as i64,
            value: i as f64,
            dimensions: Dimensions::default(),
        })
        .collect()
}

fn plan(kind: QueryKind) -> QueryPlan {
    QueryPlan {
        kind,
        metric: "m".into(),
        start: 0,
        end: i64::MAX,
        filters: vec![],
        group_by: vec![],
        interval_ms: Some(1_000),
        limit: 10,
        timeout: Duration::from_secs(10),
    }
}

fn run_on(
    index: &Index,
    head: &Head,
    plan: &QueryPlan,
    max_values: usize,
) -> Result<QueryResult, StoreError> {
    let ti = index.tenant(&tenant());
    let sources = ti
        .and_then(|t| t.metric_id(&plan.metric))
        .map(|m| head.rows(&tenant(), m))
        .unwrap_or_default();
    let ctx = QueryContext::new(Duration::from_secs(30));
    run(ti, &sources, plan, &ctx, max_values, &pool(2))
}

#[test]
fn buffers_past_the_bound_are_query_too_large() {
    let (index, head) = load(&one_series(101));
    let range = QueryPlan {
        interval_ms: None,
        ..plan(QueryKind::Range)
    };
    for p in [
        range,
        plan(QueryKind::Aggregate(Aggregation::P99)),
        plan(QueryKind::Aggregate(Aggregation::Integral)),
        plan(QueryKind::Rate),
    ] {
        match run_on(&index, &head, &p, 100) {
            Err(StoreError::QueryTooLarge { message }) => {
                assert!(message.contains("100 values"), "{message}")
            }
            other => panic!("{:?}: expected QueryTooLarge, got {other:?}", p.kind),
        }
        assert!(run_on(&index, &head, &p, 101).is_ok());
    }
    // Running moments buffer nothing, so they are not bounded.
    assert!(
        run_on(
            &index,
            &head,
            &plan(QueryKind::Aggregate(Aggregation::Sum)),
            1
        )
        .is_ok()
    );
}

#[test]
fn an_expired_context_stops_prepare_scan_and_finish() {
    let (index, head) = load(&one_series(10));
    let ti = index.tenant(&tenant());
    let p = plan(QueryKind::Aggregate(Aggregation::Sum));
    let live = QueryContext::new(Duration::from_secs(10));
    let prepared = prepare(ti, &p, &live, &pool(1)).unwrap();
    let sources = head.rows(&tenant(), prepared.metric().unwrap());
    let partial = scan(&prepared, &sources, &live, 100, &pool(1)).unwrap();
    let cancelled = QueryContext::new(Duration::from_secs(10));
    cancelled.cancel();
    let timeout = Err(StoreError::Timeout {
        timeout: Duration::from_secs(10),
    });
    assert_eq!(prepare(ti, &p, &cancelled, &pool(1)).map(|_| ()), timeout);
    assert_eq!(
        scan(&prepared, &sources, &cancelled, 100, &pool(1)).map(|_| ()),
        timeout
    );
    assert_eq!(
        finish(&prepared, partial, ti, &cancelled, 100, &pool(1)).map(|_| ()),
        timeout
    );
}

#[test]
fn empty_string_filter_selects_series_without_the_key() {
    let point = |pairs: &[(&str, &str)]| Point {
        name: "m".into(),
        timestamp: 0,
        value: 1.0,
        dimensions: Dimensions::from_pairs(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into()))),
    };
    let points = [
        point(&[("a", "1")]),
        point(&[("a", "1"), ("b", "2")]),
        point(&[("b", "2")]),
    ];
    let (index, _) = load(&points);
    let ti = index.tenant(&tenant());
    let ids = |filters: &[(&str, &str)]| -> Vec<SeriesId> {
        let f: Vec<Filter> = filters
            .iter()
            .map(|(k, v)| Filter::equals(*k, *v))
            .collect();
        select::select(ti, "m", &f, &[], &pool(1)).series
    };
    assert_eq!(ids(&[("a", "1"), ("b", "")]), vec![0]);
    assert_eq!(ids(&[("a", "")]), vec![2]);
    assert_eq!(ids(&[("a", "1"), ("b", "2")]), vec![1]);
    assert_eq!(ids(&[("a", "9")]), Vec::<SeriesId>::new());
    assert_eq!(ids(&[("zzz", "")]), vec![0, 1, 2]);
    assert_eq!(ids(&[("zzz", "1")]), Vec::<SeriesId>::new());
}

#[test]
fn any_of_filter_selects_the_union_of_its_values() {
    let point = |pairs: &[(&str, &str)]| Point {
        name: "m".into(),
        timestamp: 0,
        value: 1.0,
        dimensions: Dimensions::from_pairs(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into()))),
    };
    let points = [
        point(&[("a", "1")]),
        point(&[("a", "2"), ("b", "x")]),
        point(&[("b", "x")]),
        point(&[("a", "3"), ("b", "y")]),
    ];
    let (index, _) = load(&points);
    let ti = index.tenant(&tenant());
    let ids = |filters: &[(&str, &[&str])]| -> Vec<SeriesId> {
        let f: Vec<Filter> = filters
            .iter()
            .map(|(k, values)| Filter::any_of(*k, values.iter().copied()))
            .collect();
        select::select(ti, "m", &f, &[], &pool(1)).series
    };
    assert_eq!(ids(&[("a", &["3", "1"])]), vec![0, 3]);
    assert_eq!(ids(&[("a", &["1", "nobody"])]), vec![0]);
    assert_eq!(ids(&[("a", &["nobody", "none"])]), Vec::<SeriesId>::new());
    // `""` adds the series without the key.
    assert_eq!(ids(&[("a", &["", "2"])]), vec![1, 2]);
    assert_eq!(ids(&[("a", &["", "nobody"])]), vec![2]);
    assert_eq!(ids(&[("zzz", &["", "1"])]), vec![0, 1, 2, 3]);
    assert_eq!(ids(&[("zzz", &["1", "2"])]), Vec::<SeriesId>::new());
    // Intersected with the other filters.
    assert_eq!(ids(&[("a", &["2", "3"]), ("b", &["x"])]), vec![1]);
    assert_eq!(
        ids(&[("a", &["", "1", "3"]), ("b", &["", "y"])]),
        vec![0, 3]
    );
    // An empty list (no request gives one) selects nothing, as in the reference.
    assert_eq!(ids(&[("a", &[])]), Vec::<SeriesId>::new());
}

#[test]
fn series_map_finds_exactly_the_selected_series() {
    let dense: Vec<SeriesId> = vec![3, 4, 9, 10];
    let sparse: Vec<SeriesId> = vec![5, 70_000, 1_000_000, 4_000_000];
    let every_id: Vec<SeriesId> = vec![8, 9, 10, 11];
    // Sparse, several ids in one word of the bitset and at both edges of words: each one's rank.
    let clustered: Vec<SeriesId> = vec![0, 1, 63, 64, 65, 127, 128, 200, 70_000, 70_001, 4_000_000];
    for ids in [dense, sparse, every_id, clustered] {
        let tags: Vec<u32> = (0..ids.len() as u32).map(|i| i * 10).collect();
        let (map, owned) = (
            SeriesMap::new(&ids, &tags),
            SeriesMap::from_owned(&ids, tags.clone()),
        );
        for probe in [
            0,
            2,
            3,
            4,
            5,
            8,
            9,
            10,
            11,
            69_999,
            70_000,
            1_000_000,
            4_000_000,
            4_000_001,
            u32::MAX,
        ]
        .into_iter()
        .chain(ids.iter().flat_map(|&s| [s.saturating_sub(1), s, s + 1]))
        {
            let expected = ids.iter().position(|&s| s == probe).map(|i| i as u32 * 10);
            assert_eq!(map.get(probe), expected, "{ids:?} {probe}");
            assert_eq!(owned.get(probe), expected, "{ids:?} {probe}, owned tags");
        }
    }
    assert_eq!(SeriesMap::new(&[], &[]).get(0), None);
    assert_eq!(SeriesMap::from_owned(&[], Vec::new()).get(0), None);
}

/// Random points split between two heads (by batch) over one index: each plan's partials, scanned per
/// head and merged, give the reference's answer — for every kind of query and aggregation.
#[test]
fn partials_of_two_sources_merge_to_the_reference_answer() {
    const BASE: i64 = 1_800_000_000_000;
    const SPAN: i64 = 4 * 60_000;
    let mut rng = Rng::new(7);
    let points = testkit::random_points(&mut rng, 3_000, BASE, SPAN);
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&tenant(), p.clone());
    }
    let mut index = Index::default();
    let (mut first, mut second) = (Head::default(), Head::default());
    for (i, b) in batches(&points, 37).iter().enumerate() {
        let head = if i % 3 == 0 { &mut first } else { &mut second };
        apply_batch(&mut index, head, b).unwrap();
    }
    let ti = index.tenant(&tenant());
    let ctx = QueryContext::new(Duration::from_secs(30));
    let pool = pool(1);
    let mut kinds: Vec<QueryKind> = Aggregation::ALL
        .iter()
        .map(|&a| QueryKind::Aggregate(a))
        .collect();
    kinds.extend([QueryKind::Range, QueryKind::Rate]);
    let mut checked = 0;
    while checked < 400 {
        let mut plan = testkit::random_plan(&mut rng, BASE, SPAN);
        // Every kind, in turn; the interval rule of the kind is kept.
        plan.kind = kinds[checked % kinds.len()];
        if plan.kind == QueryKind::Range {
            plan.interval_ms = None;
            plan.group_by.clear();
        } else if plan.kind == QueryKind::Rate && plan.interval_ms.is_none() {
            plan.interval_ms = Some(7_000);
        }
        let prepared = prepare(ti, &plan, &ctx, &pool).unwrap();
        let Some(m) = prepared.metric() else {
            checked += 1;
            continue;
        };
        let a = scan(
            &prepared,
            &first.rows(&tenant(), m),
            &ctx,
            MAX_QUERY_VALUES,
            &pool,
        )
        .unwrap();
        let b = scan(
            &prepared,
            &second.rows(&tenant(), m),
            &ctx,
            MAX_QUERY_VALUES,
            &pool,
        )
        .unwrap();
        let merged = if checked % 2 == 0 {
            a.merge(b)
        } else {
            b.merge(a)
        };
        let actual = finish(&prepared, merged, ti, &ctx, MAX_QUERY_VALUES, &pool).unwrap();
        let expected = reference.query(&tenant(), &plan);
        if let Some(diff) = testkit::diff_results(&expected, &actual) {
            panic!("plan {checked} {plan:?}:\n{diff}");
        }
        checked += 1;
    }
}

/// A metric big enough to be split among threads gives the same answer as one thread.
#[test]
fn parallel_scan_equals_a_single_task() {
    let n = 3 * PARALLEL_ROWS + 123;
    let points: Vec<Point> = (0..n)
        .map(|i| Point {
            name: "m".into(),
            timestamp: (i as i64 * 7919) % 100_000,
            value: (i % 1000) as f64 * 0.25,
            dimensions: Dimensions::from_pairs([("c".to_owned(), format!("c{}", i % 13))]),
        })
        .collect();
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let sources = head.rows(&tenant(), 0);
    assert!(sources.len() > 3);
    let ctx = QueryContext::new(Duration::from_secs(30));
    for kind in [
        QueryKind::Aggregate(Aggregation::Avg),
        QueryKind::Aggregate(Aggregation::P95),
        QueryKind::Aggregate(Aggregation::Integral),
        QueryKind::Rate,
        QueryKind::Range,
    ] {
        let p = QueryPlan {
            group_by: if kind == QueryKind::Range {
                vec![]
            } else {
                vec!["c".into()]
            },
            interval_ms: (kind != QueryKind::Range).then_some(10_000),
            start: 5_000,
            end: 95_000,
            limit: 100,
            ..plan(kind)
        };
        let one = run(ti, &sources, &p, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
        let three = run(ti, &sources, &p, &ctx, MAX_QUERY_VALUES, &pool(3)).unwrap();
        assert_eq!(testkit::diff_results(&one, &three), None, "{kind:?}");
    }
}

/// The rows of `chunks` with a timestamp in `window` written as one part at `path`: per series, sorted
/// by (timestamp, value), as a flush writes them.
fn part_of(chunks: &[Rows<'_>], window: std::ops::Range<i64>, path: &std::path::Path) -> Part {
    part_in_format(chunks, window, path, crate::part::PartWriter::create)
}

/// [`part_of`], the writer made by `create` (a test writer of an earlier format, with its options).
fn part_in_format(
    chunks: &[Rows<'_>],
    window: std::ops::Range<i64>,
    path: &std::path::Path,
    create: impl FnOnce(
        &std::path::Path,
        Tenant,
        &str,
        i64,
    ) -> Result<crate::part::PartWriter, crate::EngineError>,
) -> Part {
    let mut by_series: std::collections::BTreeMap<SeriesId, Vec<(i64, f64)>> = Default::default();
    for rows in chunks {
        for i in (0..rows.series.len()).filter(|&i| window.contains(&rows.timestamps[i])) {
            by_series
                .entry(rows.series[i])
                .or_default()
                .push((rows.timestamps[i], rows.values[i]));
        }
    }
    let columns: Vec<(SeriesId, Vec<i64>, Vec<f64>)> = by_series
        .into_iter()
        .map(|(id, mut pts)| {
            luminate_model::semantics::sort_series_points(&mut pts);
            (
                id,
                pts.iter().map(|p| p.0).collect(),
                pts.iter().map(|p| p.1).collect(),
            )
        })
        .collect();
    let mut writer = create(path, tenant(), "m", 0).unwrap();
    for (id, t, v) in &columns {
        writer.push_series(*id, t, v).unwrap();
    }
    writer.finish().unwrap();
    Part::open(path).unwrap()
}

/// The same rows in parts of format 4 and 3 with small sub-pages, in a format 2 part (as earlier builds
/// wrote them) and in the head give the same answer to every kind of query, selective or not, cut by
/// time or not: sub-pages change what a scan decodes, and format 4's summaries what a chunk stores,
/// never what a query returns.
#[test]
fn parts_of_formats_2_to_4_answer_as_the_head() {
    let points: Vec<Point> = (0..40_000)
        .map(|i: i64| Point {
            name: "m".into(),
            timestamp: (i * 7_919) % 100_000,
            value: (i % 1000) as f64 * 0.5,
            dimensions: Dimensions::from_pairs([
                ("s".to_owned(), format!("s{}", i % 301)),
                ("c".to_owned(), format!("c{}", i % 7)),
            ]),
        })
        .collect();
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let chunks = head.rows(&tenant(), 0);
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&tenant(), p.clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let in_format = |version: u32| {
        let path = dir.path().join(format!("{version}.part"));
        part_in_format(&chunks, i64::MIN..i64::MAX, &path, |p, t, m, d| {
            let writer = crate::part::PartWriter::create(p, t, m, d)?.with_page_rows(4_096);
            match version {
                2 => writer.format_v2(),
                3 => writer.with_subpage_rows(100).format_v3(),
                _ => Ok(writer.with_subpage_rows(100)),
            }
        })
    };
    let (v4, v3, v2) = (in_format(4), in_format(3), in_format(2));
    let ctx = QueryContext::new(Duration::from_secs(30));
    let answer = |part: &Part, p: &QueryPlan| {
        let prepared = prepare(ti, p, &ctx, &pool(2)).unwrap();
        let sources = [Source::Part { part, floor: None }];
        let partial = scan_sources(&prepared, &sources, &ctx, MAX_QUERY_VALUES, &pool(2)).unwrap();
        finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool(2)).unwrap()
    };
    let one = |k: &str, v: &str| vec![Filter::equals(k, v)];
    let mut checked = 0;
    for (start, end) in [(0, i64::MAX), (12_345, 67_890)] {
        for (kind, filters, group_by, interval_ms) in [
            (QueryKind::Range, one("s", "s17"), vec![], None),
            (QueryKind::Range, one("c", "c3"), vec![], None),
            (
                QueryKind::Aggregate(Aggregation::Sum),
                vec![],
                vec!["c".into()],
                None,
            ),
            (
                QueryKind::Aggregate(Aggregation::Avg),
                one("s", "s200"),
                vec![],
                Some(10_000),
            ),
            (
                QueryKind::Aggregate(Aggregation::P95),
                vec![],
                vec!["s".into()],
                None,
            ),
            (
                QueryKind::Aggregate(Aggregation::Max),
                one("c", "c1"),
                vec!["s".into()],
                Some(7_000),
            ),
            (QueryKind::Rate, one("s", "s5"), vec![], Some(5_000)),
            // Percentiles with buckets: by (group, bucket) cell over the cut range, by group and
            // bucket start over the whole one (too wide a span for a grid of cells).
            (
                QueryKind::Aggregate(Aggregation::P95),
                vec![],
                vec!["s".into()],
                Some(10_000),
            ),
            (
                QueryKind::Aggregate(Aggregation::P50),
                one("c", "c2"),
                vec!["c".into()],
                Some(3_000),
            ),
            // Every page read whole, timestamps only.
            (
                QueryKind::Aggregate(Aggregation::Count),
                vec![],
                vec!["c".into()],
                Some(10_000),
            ),
        ] {
            let p = QueryPlan {
                start,
                end,
                filters,
                group_by,
                interval_ms,
                limit: 10_000,
                ..plan(kind)
            };
            let want = run(ti, &chunks, &p, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
            // The head's answer is the reference's.
            let expected = reference.query(&tenant(), &p);
            assert_eq!(testkit::diff_results(&expected, &want), None, "head: {p:?}");
            for (format, part) in [("4", &v4), ("3", &v3), ("2", &v2)] {
                let got = answer(part, &p);
                assert_eq!(
                    testkit::diff_results(&want, &got),
                    None,
                    "format {format}: {p:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

/// A metric held in one big part is split by series among threads: every aggregation over the part,
/// alone or with a head chunk, equals one thread's answer and the answer over the same rows in the head.
#[test]
fn a_big_part_split_among_threads_equals_a_single_task_and_the_head() {
    let n = 3 * PARALLEL_ROWS + 321;
    let points: Vec<Point> = (0..n)
        .map(|i| Point {
            name: "m".into(),
            timestamp: (i as i64 * 7919) % 100_000,
            value: ((i * 31) % 1000) as f64 * 0.25,
            dimensions: Dimensions::from_pairs([
                ("c".to_owned(), format!("c{}", i % 13)),
                ("s".to_owned(), format!("s{}", i % 997)),
            ]),
        })
        .collect();
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let chunks = head.rows(&tenant(), 0);
    let dir = tempfile::tempdir().unwrap();
    let part = part_of(&chunks, i64::MIN..i64::MAX, &dir.path().join("p.part"));
    let ctx = QueryContext::new(Duration::from_secs(30));
    let run_sources = |sources: &[Source<'_>], p: &QueryPlan, threads: usize| {
        let prepared = prepare(ti, p, &ctx, &pool(2)).unwrap();
        let partial =
            scan_sources(&prepared, sources, &ctx, MAX_QUERY_VALUES, &pool(threads)).unwrap();
        finish(
            &prepared,
            partial,
            ti,
            &ctx,
            MAX_QUERY_VALUES,
            &pool(threads),
        )
        .unwrap()
    };
    let in_head: Vec<Source<'_>> = chunks
        .iter()
        .map(|&rows| Source::Rows { rows, floor: None })
        .collect();
    let in_part = [Source::Part {
        part: &part,
        floor: None,
    }];
    for kind in [
        QueryKind::Aggregate(Aggregation::Count),
        QueryKind::Aggregate(Aggregation::Sum),
        QueryKind::Aggregate(Aggregation::P95),
        QueryKind::Aggregate(Aggregation::Integral),
        QueryKind::Rate,
        QueryKind::Range,
    ] {
        let p = QueryPlan {
            group_by: if kind == QueryKind::Range {
                vec![]
            } else {
                vec!["c".into()]
            },
            interval_ms: (kind != QueryKind::Range).then_some(10_000),
            start: 5_000,
            end: 95_000,
            limit: 100,
            ..plan(kind)
        };
        // Also over the whole part without buckets: moments and percentiles then read values only.
        let whole = QueryPlan {
            interval_ms: (kind == QueryKind::Rate).then_some(10_000),
            start: 0,
            end: i64::MAX,
            ..p.clone()
        };
        for p in [p, whole] {
            let want = run_sources(&in_head, &p, 1);
            assert_eq!(
                testkit::diff_results(&want, &run_sources(&in_part, &p, 1)),
                None,
                "{kind:?}, one thread, {}..{}",
                p.start,
                p.end
            );
            assert_eq!(
                testkit::diff_results(&want, &run_sources(&in_part, &p, 3)),
                None,
                "{kind:?}, three threads, {}..{}",
                p.start,
                p.end
            );
        }
    }
}

/// A values-only scan of a part inside its range reads the same values as a full scan and no
/// timestamps; over a range that cuts the part it reads timestamps as usual.
#[test]
fn values_only_part_scan_reads_every_value_and_no_timestamp() {
    let points: Vec<Point> = (0..50_000)
        .map(|i| Point {
            name: "m".into(),
            timestamp: (i as i64 * 7919) % 100_000,
            value: (i % 1000) as f64 * 0.5,
            dimensions: Dimensions::from_pairs([("s".to_owned(), format!("s{}", i % 301))]),
        })
        .collect();
    let (_index, head) = load(&points);
    let chunks = head.rows(&tenant(), 0);
    let dir = tempfile::tempdir().unwrap();
    let part = part_of(&chunks, i64::MIN..i64::MAX, &dir.path().join("p.part"));
    let runs = |scan: &mut crate::part::SeriesScan<'_>| {
        let mut out: Vec<(SeriesId, usize, Vec<f64>)> = Vec::new();
        while let Some(run) = scan.next_run().unwrap() {
            out.push((run.series, run.timestamps.len(), run.values.to_vec()));
        }
        out
    };
    let ids = part.series_ids().to_vec();
    let all = runs(&mut part.scan(crate::part::Selection::Only(&ids), ..));
    let values_only = runs(
        &mut part
            .scan(crate::part::Selection::Only(&ids), ..)
            .values_only(),
    );
    assert_eq!(all.len(), 301);
    for (a, v) in all.iter().zip(&values_only) {
        assert_eq!((a.0, 0, &a.2), (v.0, v.1, &v.2));
        assert_eq!(a.1, a.2.len());
    }
    // A range that cuts the part: timestamps are read, and only the rows in range are returned.
    let cut = runs(
        &mut part
            .scan(crate::part::Selection::Only(&ids), 10_000..20_000)
            .values_only(),
    );
    let rows: usize = cut.iter().map(|r| r.1).sum();
    assert_eq!(
        rows,
        points
            .iter()
            .filter(|p| (10_000..20_000).contains(&p.timestamp))
            .count()
    );
}

/// A range query with a limit drops candidates during the scan and skips sources that start after the
/// limit's worth of earlier points: on random data spread over many head chunks and parts, with ties in
/// time and limits around the pruning threshold, its answer equals the reference's full sort.
#[test]
fn early_stopping_range_equals_the_full_sort() {
    const BASE: i64 = 1_800_000_000_000;
    const SPAN: i64 = 60_000;
    let mut rng = Rng::new(11);
    let mut points = testkit::random_points(&mut rng, 30_000, BASE, SPAN);
    // Coarse timestamps: many points share one, so ties are ordered by dimensions, then value.
    for p in &mut points {
        p.timestamp -= p.timestamp % 50;
    }
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&tenant(), p.clone());
    }
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let ctx = QueryContext::new(Duration::from_secs(30));
    let chunks = head.rows(&tenant(), 0);
    // The same rows as parts, one per quarter of the span, listed newest first: the scan must order
    // them by time to skip the later ones.
    let dir = tempfile::tempdir().unwrap();
    let parts: Vec<Part> = (0..4i64)
        .rev()
        .map(|q| {
            let window = BASE + q * SPAN / 4..BASE + (q + 1) * SPAN / 4;
            part_of(&chunks, window, &dir.path().join(format!("{q}.part")))
        })
        .collect();
    let in_head: Vec<Source<'_>> = chunks
        .iter()
        .map(|&rows| Source::Rows { rows, floor: None })
        .collect();
    let in_parts: Vec<Source<'_>> = parts
        .iter()
        .map(|part| Source::Part { part, floor: None })
        .collect();
    let metric = points[0].name.clone();
    for (i, limit) in [0, 1, 7, 100, 2_000, 5_000, 29_999, 30_000, 40_000]
        .into_iter()
        .enumerate()
    {
        let plan = QueryPlan {
            kind: QueryKind::Range,
            metric: metric.clone(),
            start: BASE + (i as i64 * 997) % 5_000,
            end: BASE + SPAN - (i as i64 * 1_231) % 5_000,
            filters: vec![],
            group_by: vec![],
            interval_ms: None,
            limit,
            timeout: Duration::from_secs(10),
        };
        let expected = reference.query(&tenant(), &plan);
        for (name, sources) in [("head", &in_head[..]), ("parts", &in_parts[..])] {
            let prepared = prepare(ti, &plan, &ctx, &pool(2)).unwrap();
            let partial =
                scan_sources(&prepared, sources, &ctx, MAX_QUERY_VALUES, &pool(2)).unwrap();
            let actual = finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool(2)).unwrap();
            assert_eq!(
                testkit::diff_results(&expected, &actual),
                None,
                "limit {limit} over the {name}"
            );
        }
    }
}

/// Groups by customer (and region) where most groups tie — counts of 1 to 3, values of 1 or 2 — some
/// series lacking a key: the top-N selection keeps exactly the reference's groups at every limit around
/// the tie boundary, in its order, with the same `truncated`; over the head, over parts inside the
/// range (counts from the series directories), over a range that cuts them, through a filter that
/// selects a sparse share of the series, and through one that selects none.
#[test]
fn group_by_top_n_at_the_limit_equals_the_reference() {
    const SPAN: i64 = 40_000;
    let mut rng = Rng::new(23);
    let mut points = Vec::new();
    for customer in 0..300u32 {
        // Ids inserted out of key order, so that group numbers and key order differ.
        let customer = (customer * 7) % 300;
        for series in 0..1 + customer % 2 {
            let mut pairs = vec![("customer".to_owned(), format!("c{customer:03}"))];
            if customer % 11 != 3 {
                pairs.push(("region".to_owned(), format!("r{}", (customer + series) % 3)));
            }
            if customer % 37 == 5 {
                pairs.clear();
            }
            for _ in 0..1 + rng.below(3) {
                points.push(Point {
                    name: "m".into(),
                    timestamp: rng.below(SPAN as u64) as i64,
                    value: (1 + rng.below(2)) as f64,
                    dimensions: Dimensions::from_pairs(pairs.clone()),
                });
            }
        }
    }
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&tenant(), p.clone());
    }
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let ctx = QueryContext::new(Duration::from_secs(30));
    let chunks = head.rows(&tenant(), 0);
    let dir = tempfile::tempdir().unwrap();
    let parts: Vec<Part> = (0..2i64)
        .map(|q| {
            let window = q * SPAN / 2..(q + 1) * SPAN / 2;
            part_of(&chunks, window, &dir.path().join(format!("{q}.part")))
        })
        .collect();
    let in_head: Vec<Source<'_>> = chunks
        .iter()
        .map(|&rows| Source::Rows { rows, floor: None })
        .collect();
    let in_parts: Vec<Source<'_>> = parts
        .iter()
        .map(|part| Source::Part { part, floor: None })
        .collect();
    let aggregations = [
        Aggregation::Count,
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Max,
        Aggregation::P50,
    ];
    let filters = [
        vec![],
        vec![Filter::equals("region", "r1")],
        vec![Filter::equals("customer", "none")],
    ];
    let mut compared = 0;
    for agg in aggregations {
        for group_by in [vec!["customer"], vec!["region", "customer"], vec!["region"]] {
            for filters in &filters {
                for (start, end) in [(0, SPAN), (SPAN / 3, SPAN)] {
                    for limit in [1, 2, 3, 10, 99, 100, 101, 299, 300, 301, 1_000] {
                        let plan = QueryPlan {
                            kind: QueryKind::Aggregate(agg),
                            metric: "m".into(),
                            start,
                            end,
                            filters: filters.clone(),
                            group_by: group_by.iter().map(|k| (*k).to_owned()).collect(),
                            interval_ms: None,
                            limit,
                            timeout: Duration::from_secs(10),
                        };
                        let expected = reference.query(&tenant(), &plan);
                        for (name, sources) in [("head", &in_head[..]), ("parts", &in_parts[..])] {
                            let prepared = prepare(ti, &plan, &ctx, &pool(2)).unwrap();
                            let partial =
                                scan_sources(&prepared, sources, &ctx, MAX_QUERY_VALUES, &pool(2))
                                    .unwrap();
                            let actual =
                                finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool(2))
                                    .unwrap();
                            assert_eq!(
                                testkit::diff_results(&expected, &actual),
                                None,
                                "{agg:?} by {group_by:?} where {filters:?}, [{start}, {end}), \
                                 limit {limit}, over the {name}"
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(compared, 5 * 3 * 3 * 2 * 11 * 2);
}

mod bounds;
mod summaries;
