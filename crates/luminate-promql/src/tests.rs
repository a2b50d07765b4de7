//! Expressions evaluated over a small in-memory source, each answer computed by hand.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use async_trait::async_trait;
use luminate_model::result::RangePoint;
use luminate_model::window::SeriesWindow;
use luminate_model::{Aggregation, Dimensions, Filter};

use super::*;

/// Series of (metric, labels, samples) whose filters are applied as a backend applies them.
struct Memory {
    series: Vec<StoredSeries>,
    /// Calls of `aggregate`.
    aggregations: std::sync::atomic::AtomicUsize,
    /// Whether windows are folded (every instant test then reads its selectors folded where it
    /// may), or not (the raw path).
    fold: bool,
    /// Windows read folded, one by one or grouped.
    folds: std::sync::atomic::AtomicUsize,
    /// Grouped folds.
    grouped: std::sync::atomic::AtomicUsize,
    /// A read of points over a longer span is "too many samples" (a dense metric, in small).
    dense_span: i64,
}

/// Metric name, labels, samples.
type StoredSeries = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<(i64, f64)>,
);

impl Memory {
    fn new(series: Vec<StoredSeries>) -> Self {
        Self {
            series,
            aggregations: Default::default(),
            fold: true,
            folds: Default::default(),
            grouped: Default::default(),
            dense_span: i64::MAX,
        }
    }

    /// The same series, never folded.
    fn unfolded(self) -> Self {
        Self {
            fold: false,
            ..self
        }
    }

    /// Calls of `aggregate` so far.
    fn aggregations(&self) -> usize {
        self.aggregations.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl SeriesSource for Memory {
    async fn aggregate(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        group_by: Vec<String>,
        aggregation: Aggregation,
        (start, end): (i64, i64),
        limit: usize,
    ) -> Result<Option<Vec<(Vec<(String, String)>, f64)>>, EvalError> {
        self.aggregations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (points, _) = self.points(metric, filters, start, end, usize::MAX).await?;
        let mut groups: std::collections::BTreeMap<Vec<(String, String)>, f64> = Default::default();
        for p in points {
            let key = group_by
                .iter()
                .map(|k| (k.clone(), p.dimensions.get_or_empty(k).to_owned()))
                .collect();
            groups
                .entry(key)
                .and_modify(|v| {
                    *v = match aggregation {
                        Aggregation::Min => v.min(p.value),
                        Aggregation::Max => v.max(p.value),
                        _ => *v + 1.0,
                    }
                })
                .or_insert(if aggregation == Aggregation::Count {
                    1.0
                } else {
                    p.value
                });
        }
        Ok((groups.len() <= limit).then(|| groups.into_iter().collect()))
    }

    async fn metric_names(&self) -> Result<Vec<String>, EvalError> {
        let mut names: Vec<String> = self.series.iter().map(|s| s.0.to_owned()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn label_values(
        &self,
        metric: &str,
        key: &str,
        _limit: usize,
    ) -> Result<Option<Vec<String>>, EvalError> {
        let mut values: Vec<String> = self
            .series
            .iter()
            .filter(|s| s.0 == metric)
            .flat_map(|s| s.1.iter().filter(|l| l.0 == key).map(|l| l.1.to_owned()))
            .collect();
        values.sort();
        values.dedup();
        Ok(self.series.iter().any(|s| s.0 == metric).then_some(values))
    }

    async fn points(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<(Vec<RangePoint>, bool), EvalError> {
        let mut out = Vec::new();
        for (name, labels, samples) in &self.series {
            let dims = Dimensions::from_pairs(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            if *name != metric
                || !filters
                    .iter()
                    .all(|f| f.values().iter().any(|v| v == dims.get_or_empty(f.key())))
            {
                continue;
            }
            for &(t, v) in samples.iter().filter(|s| s.0 >= start && s.0 <= end) {
                out.push(RangePoint {
                    timestamp: t,
                    value: v,
                    dimensions: dims.clone(),
                });
            }
        }
        let truncated = out.len() > limit || end - start > self.dense_span;
        out.truncate(limit);
        Ok((out, truncated))
    }

    async fn windows(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        steps: luminate_model::window::WindowSteps,
        limit: usize,
    ) -> Result<luminate_model::window::SeriesWindows, EvalError> {
        if !self.fold {
            return Ok(None);
        }
        self.folds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (start, end) = steps.span();
        let (points, _) = self.points(metric, filters, start, end, usize::MAX).await?;
        let mut by_series: std::collections::BTreeMap<Dimensions, Vec<(i64, f64)>> =
            Default::default();
        for p in points {
            by_series
                .entry(p.dimensions)
                .or_default()
                .push((p.timestamp, p.value));
        }
        if by_series.len() > limit {
            return Err(EvalError::TooManySamples);
        }
        Ok(Some(
            by_series
                .into_iter()
                .map(|(dims, mut samples)| {
                    samples.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                    let windows = (0..steps.count)
                        .map(|i| {
                            let (start, end) = steps.window(i);
                            let from = samples.partition_point(|s| s.0 < start);
                            let to = samples.partition_point(|s| s.0 <= end);
                            SeriesWindow::of_sorted(&samples[from..to])
                        })
                        .collect();
                    (dims, windows)
                })
                .filter(|(_, windows): &(_, Vec<Option<SeriesWindow>>)| {
                    windows.iter().any(Option::is_some)
                })
                .collect(),
        ))
    }

    async fn grouped_windows(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        steps: luminate_model::window::WindowSteps,
        group_by: Vec<String>,
        value: luminate_model::window::GroupedValue,
        limit: usize,
    ) -> Result<luminate_model::window::GroupedWindows, EvalError> {
        use luminate_model::window::GroupValue;
        if !self.fold {
            return Ok(None);
        }
        self.grouped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut groups: std::collections::BTreeMap<Vec<(String, String)>, Vec<Option<GroupValue>>> =
            Default::default();
        let windows = self
            .windows(metric, filters, steps, usize::MAX)
            .await?
            .unwrap();
        for (dims, ws) in windows {
            for (i, w) in ws.iter().enumerate() {
                let Some(v) = w.as_ref().and_then(|w| (value.value)(i, w)) else {
                    continue;
                };
                let key = group_by
                    .iter()
                    .map(|k| (k.clone(), dims.get_or_empty(k).to_owned()))
                    .collect();
                let slot = &mut groups.entry(key).or_insert_with(|| vec![None; steps.count])[i];
                value.moment.push(slot, v);
            }
        }
        assert!(groups.len() <= limit);
        Ok(Some(groups.into_iter().collect()))
    }
}

/// A counter `requests` on two jobs scraped every 10 s from 0 to 600 s (api: +1/s; web: +2/s, reset
/// to 0 at 300 s), a gauge `temp` and histogram buckets `lat_bucket`.
fn source() -> Memory {
    let every = |f: fn(i64) -> f64| {
        (0..=60)
            .map(|i| (i * 10_000, f(i * 10)))
            .collect::<Vec<_>>()
    };
    Memory::new(vec![
        (
            "requests",
            vec![("job", "api"), ("env", "prod")],
            every(|s| s as f64),
        ),
        (
            "requests",
            vec![("job", "web")],
            every(|s| {
                if s < 300 {
                    2.0 * s as f64
                } else {
                    2.0 * (s - 300) as f64
                }
            }),
        ),
        (
            "temp",
            vec![("room", "a")],
            every(|s| 20.0 + (s % 30) as f64),
        ),
        ("temp", vec![("room", "b")], every(|_| -3.5)),
        ("lat_bucket", vec![("le", "0.1")], every(|_| 10.0)),
        ("lat_bucket", vec![("le", "0.5")], every(|_| 20.0)),
        ("lat_bucket", vec![("le", "+Inf")], every(|_| 30.0)),
    ])
}

/// The instant answer of `q` at `t` seconds as `labels => value` lines.
fn at(q: &str, t: i64) -> Vec<String> {
    answer(&source(), q, t)
}

/// [`at`] over `source`.
fn answer(source: &Memory, q: &str, t: i64) -> Vec<String> {
    let expr = parse(q).unwrap();
    let steps = Steps::instant(t * 1000);
    let value = futures_lite(evaluate(source, &expr, &steps, false)).unwrap();
    match value {
        Value::Scalar(v) => vec![format!("scalar {}", value::format_float(v[0]))],
        Value::Vector(series) => series
            .iter()
            .filter_map(|s| s.values[0].map(|v| format!("{} {}", s.labels, value::format_float(v))))
            .collect(),
        other => vec![format!("{other:?}")],
    }
}

/// The instant answer of `q` at `t` seconds and whether the store's group-by computed it.
fn pushed(q: &str, t: i64) -> (Vec<String>, bool) {
    let source = source();
    let expr = parse(q).unwrap();
    let value = futures_lite(evaluate(&source, &expr, &Steps::instant(t * 1000), false)).unwrap();
    let Value::Vector(series) = value else {
        panic!("a vector")
    };
    let lines = series
        .iter()
        .filter_map(|s| s.values[0].map(|v| format!("{} {}", s.labels, value::format_float(v))))
        .collect();
    (lines, source.aggregations() > 0)
}

#[test]
fn group_by_aggregations_of_windows_are_pushed_down_with_the_same_answer() {
    for (q, raw) in [
        (
            "sum by (job) (count_over_time(requests[1m]))",
            "sum by (job) (count_over_time(requests[1m]) * 1)",
        ),
        (
            r#"max(max_over_time({__name__=~"temp|requests", job!="web"}[30s]))"#,
            r#"max(max_over_time({__name__=~"temp|requests", job!="web"}[30s]) * 1)"#,
        ),
        (
            "min by (room) (min_over_time(temp[1m] offset 1m))",
            "min by (room) (min_over_time(temp[1m] offset 1m) * 1)",
        ),
    ] {
        let (answer, was_pushed) = pushed(q, 300);
        assert!(was_pushed, "{q}");
        let (expected, raw_pushed) = pushed(raw, 300);
        assert!(!raw_pushed, "{raw}");
        assert_eq!(answer, expected, "{q}");
        assert!(!answer.is_empty());
    }
    assert_eq!(
        pushed("sum by (job) (count_over_time(requests[1m]))", 300).0,
        [r#"{job="api"} 7"#, r#"{job="web"} 7"#]
    );
    // Not provably the same: evaluated on raw series.
    for q in [
        "sum(sum_over_time(temp[1m]))",
        "sum without (job) (count_over_time(requests[1m]))",
        "sum by (__name__) (count_over_time(requests[1m]))",
    ] {
        assert!(!pushed(q, 300).1, "{q}");
    }
    let range = parse("sum(count_over_time(requests[1m]))").unwrap();
    let source = source();
    futures_lite(evaluate(
        &source,
        &range,
        &range_steps(0, 60_000, 30_000).unwrap(),
        true,
    ))
    .unwrap();
    assert_eq!(
        source.aggregations(),
        0,
        "range queries are evaluated on raw series"
    );
}

#[test]
fn instant_queries_read_folded_windows_with_the_raw_answers() {
    // Every construct over a folded read (and some that must not fold, beside them), at times
    // where windows hold resets, one sample, or none.
    let queries = [
        "requests",
        r#"requests{job=~"w.*"} offset 1m"#,
        "timestamp(temp)",
        "absent(nothing)",
        "rate(requests[1m])",
        "increase(requests[95s])",
        "delta(temp[2m])",
        "irate(requests[1m])",
        "idelta(temp[30s])",
        "count_over_time(temp[10s])",
        "last_over_time(requests[5m])",
        "min_over_time(temp[1m]) + max_over_time(temp[1m])",
        "sum_over_time(temp[1m]) / count_over_time(temp[1m])",
        "avg_over_time(temp[1m]) - quantile_over_time(0.5, temp[1m])",
        "sum by (job) (rate(requests[2m]))",
        "topk(1, requests) * on (job) group_left rate(requests[1m])",
        "histogram_quantile(0.9, lat_bucket)",
        "sum(temp) by (room) > bool 20",
        "rate(requests[1m] @ 100)",
    ];
    let raw = source().unfolded();
    for t in [0, 5, 100, 300, 305, 600, 1000] {
        for q in queries {
            assert_eq!(at(q, t), answer(&raw, q, t), "{q} at {t}");
        }
    }
    assert_eq!(
        at("sum by (job) (rate(requests[1m]))", 250),
        [r#"{job="api"} 1"#, r#"{job="web"} 2"#]
    );
    // Folded where the evaluation allows it, and only there.
    let folded = |q: &str| {
        let source = source();
        answer(&source, q, 300);
        source.folds.load(std::sync::atomic::Ordering::SeqCst)
    };
    assert_eq!(folded("sum by (job) (rate(requests[2m]))"), 1);
    assert_eq!(folded("requests / on (job) irate(requests[1m])"), 2);
    assert_eq!(folded("sum_over_time(temp[1m])"), 0);
    assert_eq!(folded("temp[1m]"), 0);
}

#[test]
fn a_range_query_too_large_to_read_at_once_is_evaluated_step_by_step() {
    let dense = Memory {
        dense_span: 120_000,
        ..source()
    };
    let raw = source().unfolded();
    for q in [
        "sum by (job) (rate(requests[1m]))",
        "requests * 2",
        "count_over_time(temp[30s]) + scalar(vector(1))",
        "sum by (job) (count_over_time(requests[1m]))",
        "scalar(sum(temp))",
    ] {
        let expr = parse(q).unwrap();
        let steps = range_steps(0, 600_000, 60_000).unwrap();
        let want = futures_lite(evaluate(&raw, &expr, &steps, true)).unwrap();
        let got = futures_lite(evaluate(&dense, &expr, &steps, true)).unwrap();
        assert_eq!(got, want, "{q}");
        assert!(
            matches!(&got, Value::Scalar(_)) || matches!(&got, Value::Vector(v) if !v.is_empty())
        );
    }
    // With an `@ start()`, the steps' windows are the range's: not evaluated step by step.
    let expr = parse("requests @ start()").unwrap();
    let steps = range_steps(0, 600_000, 60_000).unwrap();
    assert_eq!(
        futures_lite(evaluate(&dense, &expr, &steps, true)),
        Err(EvalError::TooManySamples)
    );
}

#[test]
fn aggregations_of_folded_values_are_grouped_in_the_store_with_the_raw_answers() {
    let raw = source().unfolded();
    for q in [
        "sum by (job) (rate(requests[1m]))",
        "count(temp)",
        "avg by (room) (temp)",
        "max(irate(requests[1m]))",
        "min by (env) (increase(requests[2m] offset 30s))",
        "sum(delta(temp[1m])) + count(last_over_time(requests[5m]))",
        "count by (job) (count_over_time(requests[10s]))",
    ] {
        for t in [0, 10, 300, 305, 600] {
            let folding = source();
            assert_eq!(answer(&folding, q, t), answer(&raw, q, t), "{q} at {t}");
            assert!(
                folding.grouped.load(std::sync::atomic::Ordering::SeqCst) > 0,
                "{q} at {t}: grouped in the store"
            );
        }
    }
    assert_eq!(
        at("sum by (job) (rate(requests[1m]))", 250),
        [r#"{job="api"} 1"#, r#"{job="web"} 2"#]
    );
    // Range queries too, in one grouped read for all their steps.
    for q in [
        "sum by (job) (rate(requests[1m]))",
        "avg(temp)",
        "max by (job) (irate(requests[30s] offset 20s))",
    ] {
        let expr = parse(q).unwrap();
        let steps = range_steps(0, 600_000, 45_000).unwrap();
        let folding = source();
        let got = futures_lite(evaluate(&folding, &expr, &steps, true)).unwrap();
        let want = futures_lite(evaluate(&raw, &expr, &steps, true)).unwrap();
        assert_eq!(got, want, "{q}");
        assert_eq!(
            folding.grouped.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{q}"
        );
    }
    // Not foldable or not an aggregation of one: evaluated from the series.
    for q in [
        "sum(sum_over_time(temp[1m]))",
        "topk(1, temp)",
        "sum without (room) (temp)",
    ] {
        let folding = source();
        answer(&folding, q, 300);
        assert_eq!(
            folding.grouped.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{q}"
        );
    }
}

#[test]
fn aggregations_inside_an_expression_are_pushed_down_too() {
    let (answer, was_pushed) = pushed(
        "topk(1, sum by (job) (count_over_time(requests[1m]))) + 0",
        300,
    );
    assert!(was_pushed);
    assert_eq!(answer, [r#"{job="api"} 7"#]);
}

fn error(q: &str) -> EvalError {
    let expr = match parse(q) {
        Ok(e) => e,
        Err(e) => return e,
    };
    futures_lite(evaluate(&source(), &expr, &Steps::instant(300_000), false)).unwrap_err()
}

fn futures_lite<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn selectors_match_equality_regex_and_negations_with_lookback() {
    assert_eq!(
        at(r#"requests{job="api"}"#, 305),
        [r#"{__name__="requests", env="prod", job="api"} 300"#]
    );
    assert_eq!(at(r#"requests{job=~"a.*"}"#, 300).len(), 1);
    // Anchored: "pi" matches no job.
    assert!(at(r#"requests{job=~"pi"}"#, 300).is_empty());
    // A missing label is "": != keeps web, which has no env.
    assert_eq!(
        at(r#"requests{env!="prod"}"#, 300),
        [r#"{__name__="requests", job="web"} 0"#]
    );
    assert_eq!(at(r#"requests{env!~"p.*"}"#, 300).len(), 1);
    assert_eq!(
        at(r#"{__name__=~"req.*", job="web"}"#, 290),
        [r#"{__name__="requests", job="web"} 580"#]
    );
    // The last sample is at 600 s: visible for 5 minutes, gone after.
    assert_eq!(at(r#"temp{room="b"}"#, 900).len(), 1);
    assert!(at(r#"temp{room="b"}"#, 901).is_empty());
    assert_eq!(
        at(r#"requests{job="api"} offset 1m"#, 300),
        [r#"{__name__="requests", env="prod", job="api"} 240"#]
    );
    assert_eq!(
        at(r#"requests{job="api"} @ 100"#, 300),
        [r#"{__name__="requests", env="prod", job="api"} 100"#]
    );
}

#[test]
fn rates_extrapolate_and_count_resets() {
    // 60 s window ending at 300 s holds 240..=300: +60 over 60 s, fully extrapolated (ends on samples).
    assert_eq!(
        at(r#"rate(requests{job="api"}[1m])"#, 300),
        [r#"{env="prod", job="api"} 1"#]
    );
    assert_eq!(
        at(r#"increase(requests{job="api"}[1m])"#, 300),
        [r#"{env="prod", job="api"} 60"#]
    );
    // web resets at 300 s: 480, 500, ..., 580, 0 — the increase counts 580 + 0 − 480 = 100; the
    // samples span the whole window, so nothing is extrapolated.
    assert_eq!(
        at(r#"increase(requests{job="web"}[1m])"#, 300),
        [r#"{job="web"} 100"#]
    );
    assert_eq!(
        at(r#"irate(requests{job="web"}[1m])"#, 300),
        [r#"{job="web"} 0"#]
    );
    assert_eq!(
        at(r#"idelta(requests{job="web"}[1m])"#, 300),
        [r#"{job="web"} -580"#]
    );
    assert_eq!(at(r#"delta(temp{room="b"}[5m])"#, 300), [r#"{room="b"} 0"#]);
}

#[test]
fn over_time_functions() {
    // temp{room="a"} in [240, 300]: 20, 21, 22 (…s%30 by 10: 240→20, 250→30, 260→40? no: 20 + s%30)
    // s%30 for 240..=300 by 10: 0, 10, 20, 0, 10, 20, 0 → 20, 30, 40, 20, 30, 40, 20.
    let a = |f: &str| at(&format!(r#"{f}(temp{{room="a"}}[1m])"#), 300);
    assert_eq!(a("sum_over_time"), [r#"{room="a"} 200"#]);
    assert_eq!(a("count_over_time"), [r#"{room="a"} 7"#]);
    assert_eq!(a("min_over_time"), [r#"{room="a"} 20"#]);
    assert_eq!(a("max_over_time"), [r#"{room="a"} 40"#]);
    assert_eq!(a("last_over_time"), [r#"{__name__="temp", room="a"} 20"#]);
    assert_eq!(
        at(r#"quantile_over_time(0.5, temp{room="a"}[1m])"#, 300),
        [r#"{room="a"} 30"#]
    );
    let avg = at(r#"avg_over_time(temp{room="a"}[1m])"#, 300);
    assert_eq!(avg, [r#"{room="a"} 28.571428571428573"#]);
}

#[test]
fn aggregations_group_by_and_without() {
    assert_eq!(at("sum(requests)", 290), ["{} 870"]);
    assert_eq!(
        at("sum by (job) (requests)", 290),
        [r#"{job="api"} 290"#, r#"{job="web"} 580"#]
    );
    assert_eq!(
        at("max without (env) (requests)", 290),
        [r#"{job="api"} 290"#, r#"{job="web"} 580"#]
    );
    assert_eq!(at("avg(temp)", 300), ["{} 8.25"]);
    assert_eq!(at("count(temp)", 300), ["{} 2"]);
    assert_eq!(at("min(temp)", 300), ["{} -3.5"]);
    assert_eq!(
        at("topk(1, requests)", 290),
        [r#"{__name__="requests", job="web"} 580"#]
    );
    assert_eq!(
        at("bottomk(1, requests)", 290),
        [r#"{__name__="requests", env="prod", job="api"} 290"#]
    );
    assert_eq!(at("quantile(0.5, temp)", 300), ["{} 8.25"]);
    assert_eq!(
        at(r#"count_values("v", lat_bucket)"#, 300),
        [r#"{v="10"} 1"#, r#"{v="20"} 1"#, r#"{v="30"} 1"#]
    );
}

#[test]
fn histogram_quantile_over_le() {
    // 0.1 + (0.5 − 0.1) × 5/10, in floating point.
    assert_eq!(
        at("histogram_quantile(0.5, lat_bucket)", 300),
        ["{} 0.30000000000000004"]
    );
    assert_eq!(
        at("histogram_quantile(0.99, sum by (le) (lat_bucket))", 300),
        ["{} 0.5"]
    );
}

#[test]
fn binary_operators_match_vectors_and_scalars() {
    assert_eq!(at("1 + 2 * 3", 0), ["scalar 7"]);
    assert_eq!(at("2 > bool 1", 0), ["scalar 1"]);
    assert_eq!(
        at(r#"requests{job="api"} * 2"#, 290),
        [r#"{env="prod", job="api"} 580"#]
    );
    // A comparison filters and keeps the name; bool gives 0/1 without it.
    assert_eq!(
        at("requests > 300", 290),
        [r#"{__name__="requests", job="web"} 580"#]
    );
    assert_eq!(
        at("300 < requests", 290),
        [r#"{__name__="requests", job="web"} 580"#]
    );
    assert_eq!(
        at(r#"requests{job="web"} > bool 1000"#, 290),
        [r#"{job="web"} 0"#]
    );
    assert_eq!(
        at(r#"requests / on (job) requests"#, 290),
        [r#"{job="api"} 1"#, r#"{job="web"} 1"#]
    );
    // Many-to-one: each temp room divided by the one api counter, room kept.
    assert_eq!(
        at(
            r#"temp / ignoring (room) group_left sum(requests{job="api"})"#,
            290
        ),
        [
            r#"{room="a"} 0.13793103448275862"#,
            r#"{room="b"} -0.01206896551724138"#
        ]
    );
    assert!(matches!(
        error(r#"temp / ignoring (room) sum(requests)"#),
        EvalError::Execution(m) if m.contains("many-to-one matching must be explicit")
    ));
}

#[test]
fn instant_functions() {
    assert_eq!(at(r#"abs(temp{room="b"})"#, 300), [r#"{room="b"} 3.5"#]);
    assert_eq!(at(r#"ceil(temp{room="b"})"#, 300), [r#"{room="b"} -3"#]);
    assert_eq!(at(r#"floor(temp{room="b"})"#, 300), [r#"{room="b"} -4"#]);
    assert_eq!(at(r#"round(temp{room="b"})"#, 300), [r#"{room="b"} -3"#]);
    assert_eq!(
        at(r#"clamp_min(temp, 0)"#, 300),
        [r#"{room="a"} 20"#, r#"{room="b"} 0"#]
    );
    assert_eq!(
        at(r#"clamp_max(temp, 0)"#, 300),
        [r#"{room="a"} 0"#, r#"{room="b"} -3.5"#]
    );
    assert_eq!(
        at(
            r#"label_replace(temp{room="a"}, "floor", "f-$1", "room", "(.*)")"#,
            300
        ),
        [r#"{__name__="temp", floor="f-a", room="a"} 20"#]
    );
    assert_eq!(at("vector(4)", 0), ["{} 4"]);
    assert_eq!(at(r#"scalar(temp{room="b"})"#, 300), ["scalar -3.5"]);
    assert_eq!(at("scalar(temp)", 300), ["scalar NaN"]);
    assert_eq!(at("time()", 300), ["scalar 300"]);
    assert_eq!(
        at(r#"timestamp(temp{room="b"})"#, 305),
        [r#"{room="b"} 300"#]
    );
    assert_eq!(at(r#"absent(nothing{job="x"})"#, 300), [r#"{job="x"} 1"#]);
    assert!(at("absent(temp)", 300).is_empty());
}

#[test]
fn range_queries_evaluate_every_step() {
    let expr = parse(r#"requests{job="api"}"#).unwrap();
    let steps = range_steps(0, 60_000, 30_000).unwrap();
    let Value::Vector(series) = futures_lite(evaluate(&source(), &expr, &steps, true)).unwrap()
    else {
        panic!("a vector");
    };
    assert_eq!(series[0].values, [Some(0.0), Some(30.0), Some(60.0)]);
    let data = encode::range(&Value::Vector(series), &steps);
    assert_eq!(
        data,
        r#"{"resultType":"matrix","result":[{"metric":{"__name__":"requests","env":"prod","job":"api"},"values":[[0,"0"],[30,"30"],[60,"60"]]}]}"#
    );
    assert!(range_steps(0, 11_001, 1).is_err());
    assert!(range_steps(0, 11_000, 1).is_ok());
}

#[test]
fn unsupported_constructs_are_bad_data_naming_them() {
    for (q, named) in [
        ("stddev(temp)", "aggregation stddev"),
        ("temp and temp", "binary operator and"),
        ("rate(requests[5m:1m])", "subqueries"),
        ("predict_linear(temp[5m], 60)", "function predict_linear()"),
    ] {
        assert_eq!(
            error(q),
            EvalError::BadData(format!("unsupported PromQL: {named}")),
            "{q}"
        );
    }
    assert!(
        matches!(error("sum("), EvalError::BadData(m) if m.starts_with("invalid parameter \"query\""))
    );
}

#[test]
fn offsets_and_ranges_of_millions_of_years_select_nothing_rather_than_overflow() {
    // Valid PromQL whose read times pass i64 milliseconds: the times saturate, as the plan's windows
    // do, and nothing is selected (they overflowed in the evaluator before: a panic in builds with
    // overflow checks, wrapped windows without).
    for q in [
        "requests offset 300000000y",
        "requests offset -300000000y",
        "rate(requests[300000000y])",
        "count_over_time(requests[300000000y] offset 300000000y)",
        "timestamp(requests offset 300000000y)",
    ] {
        assert_eq!(at(q, 0), Vec::<String>::new(), "{q}");
    }
}

#[test]
fn a_duration_past_what_the_parser_can_hold_is_bad_data_and_parsing_goes_on() {
    // promql-parser panics converting this offset's seconds to a `Duration` (found by the `promql`
    // fuzz target); the expression is refused like any unparsable one.
    let q = r#"avg_over_time(temp{room=~"abb*****"}[2m] offset 444444444444444444444444-441m)"#;
    match parse(q) {
        Err(EvalError::BadData(message)) => assert_eq!(
            message,
            "invalid parameter \"query\": the expression could not be parsed (a number or duration out of range)"
        ),
        other => panic!("{other:?}"),
    }
    // The same thread parses on afterwards (the parser keeps no state a panic could leave behind).
    assert!(parse(r#"avg_over_time(temp{room="a"}[2m] offset 1h)"#).is_ok());
    assert!(parse(q).is_err());
}
