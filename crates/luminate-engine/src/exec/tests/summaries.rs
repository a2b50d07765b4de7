//! Moments over parts with block summaries (format 2) equal the rows' answer: at every block edge,
//! with buckets, under tombstones, and without reading a page where summaries answer.

use super::*;

/// The aggregations block summaries answer.
const MOMENTS: [Aggregation; 5] = [
    Aggregation::Count,
    Aggregation::Sum,
    Aggregation::Avg,
    Aggregation::Min,
    Aggregation::Max,
];

/// Points of 40 series over 5 hours and a bit, on 250 ms slots (so some lie on the hour edges of the
/// summary blocks), values in quarters.
fn hours_of_points() -> Vec<Point> {
    (0..6_000)
        .map(|i: i64| Point {
            name: "m".into(),
            timestamp: (i * 7_919 * 250) % (5 * 3_600_000 + 1_000),
            value: ((i * 31) % 1000) as f64 * 0.25 - 50.0,
            dimensions: Dimensions::from_pairs([
                ("c".to_owned(), format!("c{}", i % 7)),
                ("s".to_owned(), format!("s{}", i % 40)),
            ]),
        })
        .collect()
}

/// Moments over a part from its block summaries equal the head's answer over the same rows, for
/// ranges starting and ending on block edges, one millisecond either side, and inside blocks, with
/// buckets holding whole blocks, straddling them, or narrower.
#[test]
fn moments_from_block_summaries_equal_the_head_at_every_block_edge() {
    let points = hours_of_points();
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let chunks = head.rows(&tenant(), 0);
    let dir = tempfile::tempdir().unwrap();
    let part = part_of(&chunks, i64::MIN..i64::MAX, &dir.path().join("p.part"));
    assert_eq!(part.block_ms(), Some(3_600_000));
    let pool = pool(1);
    let answer = |sources: &[Source<'_>], p: &QueryPlan| {
        let ctx = QueryContext::new(Duration::from_secs(30));
        let prepared = prepare(ti, p, &ctx, &pool).unwrap();
        let partial = scan_sources(&prepared, sources, &ctx, MAX_QUERY_VALUES, &pool).unwrap();
        finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool).unwrap()
    };
    let in_head: Vec<Source<'_>> = chunks
        .iter()
        .map(|&rows| Source::Rows { rows, floor: None })
        .collect();
    let hour = 3_600_000;
    let around =
        |edges: &[i64]| -> Vec<i64> { edges.iter().flat_map(|&t| [t - 1, t, t + 1]).collect() };
    let starts = around(&[0, hour, 7 * hour / 2]);
    let ends = around(&[2 * hour, 7 * hour / 2, 5 * hour, 5 * hour + 1_000]);
    let intervals = [
        None,
        Some(hour),
        Some(2 * hour),
        Some(hour * 3 / 2),
        Some(60_000),
    ];
    let mut checked = 0;
    for (a, agg) in MOMENTS.into_iter().enumerate() {
        for (i, &start) in starts.iter().enumerate() {
            for (j, &end) in ends.iter().enumerate().filter(|(_, e)| **e > start) {
                // A tombstone is a raised start: also one cutting the second block.
                for floor in [None, Some(hour + 250)] {
                    let interval_ms = intervals[(a + i + j) % intervals.len()];
                    let p = QueryPlan {
                        group_by: vec!["c".into()],
                        interval_ms,
                        start,
                        end,
                        limit: 100,
                        ..plan(QueryKind::Aggregate(agg))
                    };
                    let in_part = [Source::Part { part: &part, floor }];
                    let with_floor = QueryPlan {
                        start: start.max(floor.unwrap_or(i64::MIN)),
                        ..p.clone()
                    };
                    assert_eq!(
                        testkit::diff_results(
                            &answer(&in_head, &with_floor),
                            &answer(&in_part, &p)
                        ),
                        None,
                        "{agg:?} every {interval_ms:?} over {start}..{end} above {floor:?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * 2 * 93);
}

/// Over a part inside the range, moments never read a page (a damaged page goes unnoticed) when the
/// part has summaries, and read them all when it has none (format 1) or when buckets are narrower
/// than its blocks; a range cutting a block reads the pages holding that block's rows.
#[test]
fn moments_over_a_part_with_summaries_read_no_page() {
    let points = hours_of_points();
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let chunks = head.rows(&tenant(), 0);
    let dir = tempfile::tempdir().unwrap();
    let summarised = dir.path().join("v2.part");
    part_of(&chunks, i64::MIN..i64::MAX, &summarised);
    // The same rows in format 1.
    let old = dir.path().join("v1.part");
    let part = Part::open(&summarised).unwrap();
    let mut writer = crate::part::PartWriter::create(&old, tenant(), "m", 0)
        .unwrap()
        .format_v1()
        .unwrap();
    let mut scan = part.scan(crate::part::Selection::All, ..);
    while let Some(run) = scan.next_run().unwrap() {
        writer
            .push_series(run.series, run.timestamps, run.values)
            .unwrap();
    }
    writer.finish().unwrap();
    // Damage the first page's values in both.
    for path in [&summarised, &old] {
        let at = Part::open(path).unwrap().pages()[0].values.offset as usize;
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at + 2] ^= 0x20;
        std::fs::write(path, &bytes).unwrap();
    }
    let (summarised, old) = (Part::open(&summarised).unwrap(), Part::open(&old).unwrap());
    let ctx = QueryContext::new(Duration::from_secs(30));
    let answer = |part: &Part, p: &QueryPlan| {
        let prepared = prepare(ti, p, &ctx, &pool(1))?;
        let sources = [Source::Part { part, floor: None }];
        let partial = scan_sources(&prepared, &sources, &ctx, MAX_QUERY_VALUES, &pool(1))?;
        finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool(1))
    };
    let in_head: Vec<Rows<'_>> = chunks.to_vec();
    let hour = 3_600_000;
    for agg in [
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
    ] {
        for interval_ms in [None, Some(hour)] {
            let p = QueryPlan {
                group_by: vec!["c".into()],
                interval_ms,
                limit: 100,
                ..plan(QueryKind::Aggregate(agg))
            };
            let want = run(ti, &in_head, &p, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
            let got = answer(&summarised, &p).unwrap();
            assert_eq!(testkit::diff_results(&want, &got), None, "{agg:?}");
            assert!(
                matches!(answer(&old, &p), Err(StoreError::Internal { .. })),
                "{agg:?} over format 1"
            );
            let narrow = QueryPlan {
                interval_ms: Some(60_000),
                ..p.clone()
            };
            assert!(matches!(
                answer(&summarised, &narrow),
                Err(StoreError::Internal { .. })
            ));
            let cut = QueryPlan {
                start: hour / 2,
                ..p.clone()
            };
            assert!(matches!(
                answer(&summarised, &cut),
                Err(StoreError::Internal { .. })
            ));
        }
    }
}

/// A part with one summary per series (day-wide blocks, in chunks of 7 entries): over a range that
/// holds the part, moments are taken from the summaries chunk by chunk without reading a page (a
/// damaged page goes unnoticed), with every series of the span selected, most of them (the rest
/// skipped through the map) or a few (looked up one by one), on one thread or two (each task its
/// own span of the series); a range that cuts the part scans its rows. Every answer equals the
/// head's.
#[test]
fn moments_over_a_part_of_day_blocks_equal_the_head_and_read_no_page_when_it_is_inside() {
    let points = hours_of_points();
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let chunks = head.rows(&tenant(), 0);
    let dir = tempfile::tempdir().unwrap();
    let day_blocks = |path: &std::path::Path, tenant, metric: &str, day| {
        crate::part::PartWriter::create(path, tenant, metric, day)
            .map(|w| w.with_summary_blocks(86_400_000, 7))
    };
    let path = dir.path().join("day.part");
    let part = part_in_format(&chunks, i64::MIN..i64::MAX, &path, day_blocks);
    assert_eq!(part.block_ms(), Some(86_400_000));
    let damaged = dir.path().join("damaged.part");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = part.pages()[0].values.offset as usize;
    bytes[at + 2] ^= 0x20;
    std::fs::write(&damaged, &bytes).unwrap();
    let damaged = Part::open(&damaged).unwrap();
    let ctx = QueryContext::new(Duration::from_secs(30));
    let answer = |part: &Part, p: &QueryPlan, threads: usize| {
        let pool = pool(threads);
        let prepared = prepare(ti, p, &ctx, &pool)?;
        let sources = [Source::Part { part, floor: None }];
        let partial = scan_sources(&prepared, &sources, &ctx, MAX_QUERY_VALUES, &pool)?;
        finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool)
    };
    let in_head: Vec<Rows<'_>> = chunks.to_vec();
    let selections = [
        vec![],
        vec![Filter::any_of("c", ["c0", "c1", "c2", "c3", "c4"])],
        vec![Filter::equals("s", "s3")],
    ];
    let mut checked = 0;
    for agg in MOMENTS {
        for filters in &selections {
            for group_by in [vec![], vec!["c".to_owned()], vec!["s".to_owned()]] {
                for threads in [1, 2] {
                    let p = QueryPlan {
                        group_by: group_by.clone(),
                        filters: filters.clone(),
                        interval_ms: None,
                        limit: 100,
                        ..plan(QueryKind::Aggregate(agg))
                    };
                    let want = run(ti, &in_head, &p, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
                    assert!(
                        matches!(&want, QueryResult::Aggregate { results, .. } if !results.is_empty())
                    );
                    let got = answer(&damaged, &p, threads).unwrap();
                    assert_eq!(testkit::diff_results(&want, &got), None, "{agg:?} {p:?}");
                    // A range cutting the part (and its blocks) reads the rows of the cut blocks.
                    let cut = QueryPlan {
                        start: 3_600_000 / 2,
                        ..p.clone()
                    };
                    let want = run(ti, &in_head, &cut, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
                    let got = answer(&part, &cut, threads).unwrap();
                    assert_eq!(testkit::diff_results(&want, &got), None, "{agg:?} {cut:?}");
                    if agg != Aggregation::Count {
                        assert!(matches!(
                            answer(&damaged, &cut, threads),
                            Err(StoreError::Internal { .. })
                        ));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * 3 * 3 * 2);
}

/// Series of one, two and three rows in a day-wide and an hourly part, in format 4 (no counts in a
/// chunk of one entry per series, two-row sums rebuilt from min and max) and format 3 (both stored):
/// every moment by series, whole or in hourly buckets, equals the head's answer to the bit, signed
/// zeros and values whose sum rounds included.
#[test]
fn moments_of_one_two_and_three_row_series_equal_the_head_in_formats_3_and_4() {
    let values = [
        [-0.0, -0.0, 1.0],
        [0.1, 0.2, 0.3],
        [1e16, 1.0, -1e16],
        [-0.0, 0.0, -2.5],
        [f64::MAX, f64::MAX, -f64::MAX],
    ];
    let mut points = Vec::new();
    for (k, vs) in values.iter().enumerate() {
        for rows in 1..=3 {
            for (i, &value) in vs[..rows].iter().enumerate() {
                points.push(Point {
                    name: "m".into(),
                    // Rows 20 minutes apart: one hourly block or two (the third row of a series).
                    timestamp: 2 * 3_600_000 + 1_200_000 * (i as i64 + 1) + k as i64,
                    value,
                    dimensions: Dimensions::from_pairs([("s".to_owned(), format!("v{k}r{rows}"))]),
                });
            }
        }
    }
    let (index, head) = load(&points);
    let ti = index.tenant(&tenant());
    let chunks = head.rows(&tenant(), 0);
    let in_head: Vec<Rows<'_>> = chunks.to_vec();
    let dir = tempfile::tempdir().unwrap();
    let ctx = QueryContext::new(Duration::from_secs(30));
    let mut checked = 0;
    for (block_ms, v3) in [(86_400_000, false), (86_400_000, true), (3_600_000, false)] {
        let path = dir.path().join(format!("{block_ms}-{v3}.part"));
        let part = part_in_format(&chunks, i64::MIN..i64::MAX, &path, |p, t, m, d| {
            let writer =
                crate::part::PartWriter::create(p, t, m, d)?.with_summary_blocks(block_ms, 4);
            if v3 { writer.format_v3() } else { Ok(writer) }
        });
        assert_eq!(part.block_ms(), Some(block_ms));
        for agg in MOMENTS {
            for interval_ms in [None, Some(3_600_000)] {
                let p = QueryPlan {
                    group_by: vec!["s".into()],
                    interval_ms,
                    limit: 100,
                    ..plan(QueryKind::Aggregate(agg))
                };
                let want = run(ti, &in_head, &p, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
                let prepared = prepare(ti, &p, &ctx, &pool(1)).unwrap();
                let sources = [Source::Part {
                    part: &part,
                    floor: None,
                }];
                let partial =
                    scan_sources(&prepared, &sources, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
                let got = finish(&prepared, partial, ti, &ctx, MAX_QUERY_VALUES, &pool(1)).unwrap();
                assert_eq!(
                    format!("{want:?}"),
                    format!("{got:?}"),
                    "{agg:?} {interval_ms:?} blocks of {block_ms} ms, format 3: {v3}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 5 * 2);
}
