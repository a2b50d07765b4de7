//! `Engine::series_windows` against the fold of each series' points read back by a range query: over
//! the head alone, over parts and the head together (windows cutting parts at both edges), with
//! filters, two points at one timestamp, the series limit, a series whose points overlap in time
//! across a part and the head (folded again from its sorted points), and grouped folds over steps.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{open, point, tenant};
use luminate_engine::{Engine, EngineError};
use luminate_model::query::QueryKind;
use luminate_model::window::{
    GroupMoments, GroupValue, GroupedValue, Moment, SeriesWindow, WindowRequest, WindowSteps,
    WindowValue,
};
use luminate_model::{Dimensions, Filter, Point, QueryContext, QueryPlan, QueryResult, StoreError};

const BASE: i64 = 1_700_000_000_000;

fn request(start: i64, end: i64, filters: Vec<Filter>) -> WindowRequest {
    WindowRequest {
        metric: "requests".into(),
        filters,
        start,
        end,
        limit: 1_000,
        timeout: Duration::from_secs(10),
    }
}

/// Each series' one window over `[request.start, request.end]`.
fn windows(engine: &Engine, request: &WindowRequest) -> Option<Vec<(Dimensions, SeriesWindow)>> {
    let steps = WindowSteps::single(request.start, request.end);
    let found = engine
        .series_windows(
            &tenant(),
            request,
            &steps,
            &QueryContext::new(request.timeout),
        )
        .unwrap()?;
    Some(
        found
            .into_iter()
            .map(|(dims, mut w)| {
                assert_eq!(w.len(), 1);
                (dims, w.pop().unwrap().unwrap())
            })
            .collect(),
    )
}

/// The expected windows: every stored point of the request's series in its window, read back by a
/// range query, sorted by (timestamp, value) per series and folded.
fn expected(engine: &Engine, request: &WindowRequest) -> Vec<(Dimensions, SeriesWindow)> {
    let plan = QueryPlan {
        kind: QueryKind::Range,
        metric: request.metric.clone(),
        start: request.start,
        end: request.end + 1,
        filters: request.filters.clone(),
        group_by: vec![],
        interval_ms: None,
        limit: 10_000_000,
        timeout: request.timeout,
    };
    let QueryResult::Range { results, truncated } = engine
        .query(&tenant(), &plan, &QueryContext::new(plan.timeout))
        .unwrap()
    else {
        panic!("not a range answer");
    };
    assert!(!truncated);
    let mut by_series: BTreeMap<Dimensions, Vec<(i64, f64)>> = BTreeMap::new();
    for p in results {
        by_series
            .entry(p.dimensions)
            .or_default()
            .push((p.timestamp, p.value));
    }
    by_series
        .into_iter()
        .map(|(dims, mut samples)| {
            samples.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            (dims, SeriesWindow::of_sorted(&samples).unwrap())
        })
        .collect()
}

/// `Engine::grouped_windows` by `key` over every step of `steps`, without filters, keeping the sum
/// of each group's values; kept as counts, minimums and maximums instead, they are checked here
/// against [`grouped_from_each_step`].
fn grouped(
    engine: &Engine,
    steps: &WindowSteps,
    key: &str,
    value: &Arc<WindowValue>,
) -> Vec<GroupMoments> {
    for moment in [Moment::Count, Moment::Min, Moment::Max] {
        assert_eq!(
            grouped_keeping(engine, steps, key, value, moment),
            grouped_from_each_step(engine, steps, key, value, moment),
            "{moment:?}"
        );
    }
    grouped_keeping(engine, steps, key, value, Moment::Sum)
}

/// `Engine::grouped_windows` by `key` over every step of `steps`, without filters, keeping `moment`.
fn grouped_keeping(
    engine: &Engine,
    steps: &WindowSteps,
    key: &str,
    value: &Arc<WindowValue>,
    moment: Moment,
) -> Vec<GroupMoments> {
    let (start, end) = steps.span();
    let r = request(start, end, vec![]);
    let value = GroupedValue {
        value: value.clone(),
        moment,
    };
    engine
        .grouped_windows(
            &tenant(),
            &r,
            steps,
            &[key.to_owned()],
            &value,
            &QueryContext::new(r.timeout),
        )
        .unwrap()
        .unwrap()
}

/// What `Engine::grouped_windows` by `key` keeping `moment` should give: each step's own series
/// windows (one `series_windows` call per step), their `value`s added per group here.
fn grouped_from_each_step(
    engine: &Engine,
    steps: &WindowSteps,
    key: &str,
    value: &Arc<WindowValue>,
    moment: Moment,
) -> Vec<GroupMoments> {
    let mut want: BTreeMap<Vec<(String, String)>, Vec<Option<GroupValue>>> = BTreeMap::new();
    for i in 0..steps.count {
        let (start, end) = steps.window(i);
        for (dims, w) in windows(engine, &request(start, end, vec![])).unwrap() {
            let Some(v) = value(i, &w) else { continue };
            let group = vec![(key.to_owned(), dims.get_or_empty(key).to_owned())];
            let slot = &mut want.entry(group).or_insert_with(|| vec![None; steps.count])[i];
            moment.push(slot, v);
        }
    }
    want.into_iter().collect()
}

/// A window's points and counter resets in one value (thousands: points), for grouped folds.
fn count_and_resets(_: usize, w: &SeriesWindow) -> Option<f64> {
    Some(w.count as f64 * 1_000.0 + w.resets)
}

/// 40 counters, one point every 10 s from `from` for `n` steps, each reset to 0 every 37 points.
fn counters(from: i64, steps: std::ops::Range<i64>) -> Vec<Point> {
    let mut out = Vec::new();
    for step in steps {
        for s in 0..40 {
            let host = format!("h{s:02}");
            let region = if s % 2 == 0 { "eu" } else { "us" };
            let value = ((step + s) % 37) as f64 * (s + 1) as f64;
            out.push(point(
                "requests",
                from + step * 10_000,
                value,
                &[("host", &host), ("region", region)],
            ));
        }
    }
    out
}

#[test]
fn windows_equal_the_fold_of_the_points_over_parts_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // Three flushed stretches (three parts per series) and one in the head.
    for stretch in 0..4 {
        engine
            .write(
                &tenant(),
                counters(BASE, stretch * 100..(stretch + 1) * 100),
            )
            .unwrap();
        if stretch < 3 {
            engine.flush().unwrap();
        }
    }
    let span = (0i64, 400 * 10_000);
    for (start, end) in [
        span,
        (55 * 10_000, 56 * 10_000),
        (95 * 10_000 + 1, 305 * 10_000),
        (250 * 10_000, 399 * 10_000 - 1),
        (399 * 10_000, 399 * 10_000),
        (400 * 10_000, 500 * 10_000),
    ] {
        let r = request(BASE + start, BASE + end, vec![]);
        let got = windows(&engine, &r).unwrap();
        let want = expected(&engine, &r);
        assert_eq!(got, want, "window [{start}, {end}]");
        if end < 400 * 10_000 {
            assert_eq!(got.len(), 40, "window [{start}, {end}]");
        }
    }
    let r = request(
        BASE,
        BASE + 400 * 10_000,
        vec![Filter::equals("region", "eu")],
    );
    let got = windows(&engine, &r).unwrap();
    assert_eq!(got.len(), 20);
    assert_eq!(got, expected(&engine, &r));
    // A whole-span window of h00: 400 samples, values (step % 37), so 10 resets, each from 36.
    let h00 = &got[0];
    assert_eq!(h00.0.pairs()[0], ("host".to_owned(), "h00".to_owned()));
    assert_eq!(h00.1.count, 400);
    assert_eq!(h00.1.resets, 10.0 * 36.0);
    assert_eq!(h00.1.last, (BASE + 399 * 10_000, (399 % 37) as f64));
    assert_eq!(
        h00.1.previous,
        Some((BASE + 398 * 10_000, (398 % 37) as f64))
    );
}

#[test]
fn two_points_at_one_timestamp_count_once_with_the_greater_value() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let dims = [("host", "a")];
    engine
        .write(
            &tenant(),
            vec![
                point("requests", BASE, 1.0, &dims),
                point("requests", BASE + 1_000, 5.0, &dims),
                point("requests", BASE + 1_000, 3.0, &dims),
                point("requests", BASE + 2_000, 4.0, &dims),
            ],
        )
        .unwrap();
    let r = request(BASE, BASE + 2_000, vec![]);
    let got = windows(&engine, &r).unwrap();
    assert_eq!(got, expected(&engine, &r));
    let w = got[0].1;
    assert_eq!(
        (w.count, w.previous, w.resets),
        (3, Some((BASE + 1_000, 5.0)), 5.0)
    );
}

#[test]
fn a_series_overlapping_itself_across_a_part_and_the_head_is_folded_from_its_sorted_points() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.write(&tenant(), counters(BASE, 0..10)).unwrap();
    engine.flush().unwrap();
    // A late point inside the flushed span.
    engine
        .write(
            &tenant(),
            vec![point(
                "requests",
                BASE + 45_000,
                1.0,
                &[("host", "h03"), ("region", "us")],
            )],
        )
        .unwrap();
    let r = request(BASE, BASE + 100_000, vec![]);
    let got = windows(&engine, &r).unwrap();
    assert_eq!(got, expected(&engine, &r));
    let h03 = got
        .iter()
        .find(|(d, _)| d.get_or_empty("host") == "h03")
        .unwrap();
    assert_eq!(h03.1.count, 11, "ten points and the late one");
    // A late point flushed into a part of its own overlaps the first part too.
    engine.flush().unwrap();
    assert_eq!(windows(&engine, &r).unwrap(), got);
    // Windows that leave the late point out, or other series only, fold as ever.
    let r = request(BASE, BASE + 40_000, vec![]);
    assert_eq!(windows(&engine, &r).unwrap(), expected(&engine, &r));
    let r = request(BASE, BASE + 100_000, vec![Filter::equals("host", "h04")]);
    assert_eq!(windows(&engine, &r).unwrap(), expected(&engine, &r));
}

#[test]
fn more_series_than_the_limit_is_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.write(&tenant(), counters(BASE, 0..3)).unwrap();
    let mut r = request(BASE, BASE + 100_000, vec![]);
    r.limit = 39;
    let err = engine
        .series_windows(
            &tenant(),
            &r,
            &WindowSteps::single(r.start, r.end),
            &QueryContext::new(r.timeout),
        )
        .unwrap_err();
    match err {
        EngineError::Query(StoreError::QueryTooLarge { message }) => {
            assert!(message.contains("40 series"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    r.limit = 40;
    assert_eq!(windows(&engine, &r).unwrap().len(), 40);
    assert_eq!(
        windows(
            &engine,
            &request(BASE, BASE + 1, vec![Filter::equals("host", "zz")])
        ),
        Some(vec![])
    );
}

#[test]
fn grouped_windows_add_up_each_groups_series_values_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    engine.write(&tenant(), counters(BASE, 0..50)).unwrap();
    engine.flush().unwrap();
    engine.write(&tenant(), counters(BASE, 50..90)).unwrap();
    // Eleven overlapping windows of 200 s every 95 s, across the part and the head (points at
    // 0–890 s), the last after them.
    let steps = WindowSteps {
        first_end: BASE + 150_000,
        step: 95_000,
        count: 11,
        range: 200_000,
    };
    let value: Arc<WindowValue> =
        Arc::new(|i, w: &SeriesWindow| (w.count > 5).then_some(w.max - w.resets + i as f64));
    let got = grouped(&engine, &steps, "region", &value);
    // The same from each step's series windows, grouped here.
    let want = grouped_from_each_step(&engine, &steps, "region", &value, Moment::Sum);
    assert_eq!(got, want);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1[1].unwrap().count, 20);
    assert!(got[0].1[9].is_some());
    assert!(got[0].1[10].is_none(), "the last window holds no point");
    // More groups than the limit is too large.
    let (start, end) = steps.span();
    let mut r = request(start, end, vec![]);
    r.limit = 1;
    assert!(matches!(
        engine.grouped_windows(
            &tenant(),
            &r,
            &steps,
            &["region".to_owned()],
            &GroupedValue {
                value,
                moment: Moment::Sum
            },
            &QueryContext::new(r.timeout)
        ),
        Err(EngineError::Query(StoreError::QueryTooLarge { .. }))
    ));
}

#[test]
fn head_rows_written_out_of_time_order_fold_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // Newest first, in three batches, interleaved with another series.
    let mut all: Vec<Point> = counters(BASE, 0..30);
    all.reverse();
    for batch in all.chunks(400) {
        engine.write(&tenant(), batch.to_vec()).unwrap();
    }
    for (start, end) in [(0, 300_000), (95_000, 205_000)] {
        let r = request(BASE + start, BASE + end, vec![]);
        let got = windows(&engine, &r).unwrap();
        assert_eq!(got, expected(&engine, &r));
        assert_eq!(got.len(), 40);
    }
}

#[test]
fn grouped_windows_over_many_slices_and_waves_equal_each_steps_windows() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // 400 series in 7 regions, one point every 10 s for 300 steps: a part, then the head; every
    // 50th series also gets late points inside the part's time (folded again in its slice). 300
    // steps × 400 series are 120 000 windows: several slices of `SLICE_WINDOWS`, in more than one
    // wave.
    let series = |steps: std::ops::Range<i64>, every: usize| {
        let mut out = Vec::new();
        for step in steps {
            for s in (0..400).step_by(every) {
                let host = format!("h{s:03}");
                let region = format!("r{}", s % 7);
                let value = ((step * 7 + s as i64) % 23) as f64;
                out.push(point(
                    "requests",
                    BASE + step * 10_000 + (every as i64 - 1),
                    value,
                    &[("host", &host), ("region", &region)],
                ));
            }
        }
        out
    };
    engine.write(&tenant(), series(0..200, 1)).unwrap();
    engine.flush().unwrap();
    engine.write(&tenant(), series(200..300, 1)).unwrap();
    engine.write(&tenant(), series(100..120, 50)).unwrap();
    let steps = WindowSteps {
        first_end: BASE,
        step: 10_000,
        count: 300,
        range: 30_000,
    };
    let value: Arc<WindowValue> =
        Arc::new(|_, w: &SeriesWindow| Some(w.count as f64 * 1_000.0 + w.max));
    for key in ["region", "host"] {
        let got = grouped(&engine, &steps, key, &value);
        let want = grouped_from_each_step(&engine, &steps, key, &value, Moment::Sum);
        assert_eq!(got.len(), if key == "region" { 7 } else { 400 });
        if key == "host" {
            // Step 110's window, [1 070 s, 1 100 s], holds four points of each series and, for
            // h050, three late ones.
            let at_110 = |host: &str| {
                let group = got.iter().find(|g| g.0[0].1 == host).unwrap();
                group.1[110].unwrap().value
            };
            assert!(at_110("h050") >= 7_000.0 && at_110("h050") < 8_000.0);
            assert!(at_110("h051") >= 4_000.0 && at_110("h051") < 5_000.0);
        }
        assert_eq!(
            got,
            want.into_iter().collect::<Vec<_>>(),
            "grouped by {key}"
        );
    }
}

#[test]
fn windows_of_every_step_equal_each_steps_own_window() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // A part, the head, and late points of the head inside the part's time.
    engine.write(&tenant(), counters(BASE, 0..50)).unwrap();
    engine.flush().unwrap();
    engine.write(&tenant(), counters(BASE, 50..90)).unwrap();
    engine
        .write(&tenant(), counters(BASE + 5_000, 20..25))
        .unwrap();
    // Windows of 60 s every 45 s, the first before any point, the last after them.
    let steps = WindowSteps {
        first_end: BASE - 10_000,
        step: 45_000,
        count: 23,
        range: 60_000,
    };
    let (start, end) = steps.span();
    let r = request(start, end, vec![]);
    let got = engine
        .series_windows(&tenant(), &r, &steps, &QueryContext::new(r.timeout))
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 40);
    for (dims, ws) in &got {
        assert_eq!(ws.len(), steps.count);
        assert!(ws[0].is_none(), "the first window ends before the points");
        assert!(ws[22].is_none(), "the last starts after them");
        for (i, w) in ws.iter().enumerate() {
            let (start, end) = steps.window(i);
            let own = windows(&engine, &request(start, end, vec![])).unwrap();
            let want = own.iter().find(|(d, _)| d == dims).map(|(_, w)| *w);
            assert_eq!(*w, want, "step {i} of {dims:?}");
        }
    }
    // Step 5's window, [155 s, 215 s], holds six points every 10 s and the late ones at 205 s and
    // 215 s (its end is included).
    assert_eq!(got[0].1[5].unwrap().count, 8);
}

#[test]
fn a_head_of_many_chunks_from_two_interleaved_writers_folds_as_its_sorted_points() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // 200 series × 400 points (more than one chunk of the head: its rows are gathered on several
    // threads), written in batches of 2 points per series whose pairs commit in swapped order, as
    // two writers leave them; then h000 again, newest first, at odd milliseconds (far out of
    // order: sorted by a merge sort, not by insertion).
    let points = |steps: std::ops::Range<i64>, hosts: std::ops::Range<usize>, shift: i64| {
        let mut out = Vec::new();
        for step in steps {
            for s in hosts.clone() {
                let host = format!("h{s:03}");
                let region = format!("r{}", s % 3);
                let value = ((step + s as i64) % 29) as f64;
                out.push(point(
                    "requests",
                    BASE + step * 1_000 + shift,
                    value,
                    &[("host", &host), ("region", &region)],
                ));
            }
        }
        out
    };
    let batches: Vec<Vec<Point>> = (0..200)
        .map(|b| points(b * 2..b * 2 + 2, 0..200, 0))
        .collect();
    for pair in batches.chunks(2) {
        for batch in pair.iter().rev() {
            engine.write(&tenant(), batch.clone()).unwrap();
        }
    }
    let mut backfill = points(0..400, 0..1, 1);
    backfill.reverse();
    engine.write(&tenant(), backfill).unwrap();
    for (start, end) in [(0, 400_000), (99_500, 250_000)] {
        let r = request(BASE + start, BASE + end, vec![]);
        let got = windows(&engine, &r).unwrap();
        assert_eq!(got.len(), 200);
        assert_eq!(got, expected(&engine, &r));
        assert_eq!(
            got[0].1.count,
            2 * (end - start).min(400_000) as u64 / 1_000
        );
    }
    let steps = WindowSteps {
        first_end: BASE + 30_000,
        step: 30_000,
        count: 13,
        range: 30_000,
    };
    let value: Arc<WindowValue> = Arc::new(count_and_resets);
    let got = grouped(&engine, &steps, "region", &value);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got,
        grouped_from_each_step(&engine, &steps, "region", &value, Moment::Sum)
    );
}

#[test]
fn full_head_chunks_read_in_series_order_fold_as_their_sorted_points() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // 300 series × 700 timestamps and every 7th timestamp written twice (the greater value counts):
    // about 240 000 rows, three full chunks of the head (each put in series order as it filled) and
    // a partial one (read row by row). Batches of 5 timestamps, each pair committed in swapped order: out of
    // order inside a chunk and across a chunk's end.
    let points = |steps: std::ops::Range<i64>| {
        let mut out = Vec::new();
        for step in steps {
            for s in 0..300i64 {
                let host = format!("h{s:03}");
                let region = format!("r{}", s % 4);
                let dims = [("host", host.as_str()), ("region", region.as_str())];
                let t = BASE + step * 1_000;
                let value = ((step * (s + 1)) % 41) as f64;
                out.push(point("requests", t, value, &dims));
                if step % 7 == 0 {
                    out.push(point("requests", t, value + 0.5 - (s % 2) as f64, &dims));
                }
            }
        }
        out
    };
    let batches: Vec<Vec<Point>> = (0..140).map(|b| points(b * 5..b * 5 + 5)).collect();
    for pair in batches.chunks(2) {
        for batch in pair.iter().rev() {
            engine.write(&tenant(), batch.clone()).unwrap();
        }
    }
    let steps = WindowSteps {
        first_end: BASE + 45_000,
        step: 45_000,
        count: 16,
        range: 60_000,
    };
    let value: Arc<WindowValue> = Arc::new(count_and_resets);
    let check = |spans: &[(i64, i64)]| {
        for &(start, end) in spans {
            let r = request(BASE + start, BASE + end, vec![]);
            let got = windows(&engine, &r).unwrap();
            assert_eq!(got.len(), 300);
            assert_eq!(got, expected(&engine, &r), "[{start}, {end}]");
        }
        let got = grouped(&engine, &steps, "region", &value);
        assert_eq!(got.len(), 4);
        assert_eq!(
            got,
            grouped_from_each_step(&engine, &steps, "region", &value, Moment::Sum)
        );
    };
    // Whole, and cutting chunks at both ends.
    check(&[(0, 700_000), (123_500, 456_700)]);
    let r = request(BASE, BASE + 700_000, vec![]);
    // 700 timestamps, 100 of them twice, count once each.
    assert!(
        windows(&engine, &r)
            .unwrap()
            .iter()
            .all(|(_, w)| w.count == 700)
    );
    // A delete through the first chunk compacts it (what is left stays in series order, and takes no
    // rows); later rows go on.
    engine
        .delete_before(&tenant(), "requests", BASE + 100_000)
        .unwrap();
    engine.write(&tenant(), points(700..760)).unwrap();
    check(&[(0, 760_000), (99_000, 300_500)]);
    // Timestamps 100 s to 700 s, the last written after the delete.
    assert!(
        windows(&engine, &r)
            .unwrap()
            .iter()
            .all(|(_, w)| w.count == 601)
    );
    // A metric of one row per series (more series than a chunk's order pays for): read row by row.
    let many: Vec<Point> = (0..70_000i64)
        .map(|s| point("latency", BASE + s, s as f64, &[("host", &format!("l{s}"))]))
        .collect();
    engine.write(&tenant(), many).unwrap();
    let r = WindowRequest {
        metric: "latency".into(),
        limit: 100_000,
        ..request(BASE + 1_000, BASE + 1_999, vec![])
    };
    let got = windows(&engine, &r).unwrap();
    assert_eq!(got.len(), 1_000);
    assert_eq!(got, expected(&engine, &r));
    // Reopened, the WAL's rows fill the head's chunks again, in the same order, and fold the same.
    let before = windows(&engine, &request(BASE, BASE + 760_000, vec![])).unwrap();
    drop(engine);
    let engine = open(dir.path());
    let r = request(BASE, BASE + 760_000, vec![]);
    assert_eq!(windows(&engine, &r).unwrap(), before);
    assert_eq!(before, expected(&engine, &r));
}
