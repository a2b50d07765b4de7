//! PromQL as the Prometheus API (`/api/v1/query`, `/api/v1/query_range`) reads it: `parse`, then
//! `evaluate` (the subset check and planning, the selects, the evaluation) over a small in-memory
//! store, then the answer's JSON. Any input must end in an answer that is valid JSON or in a
//! `bad_data`/`execution` error, never a panic, a hang or a read past the sample budget.

#![no_main]

use async_trait::async_trait;
use libfuzzer_sys::fuzz_target;
use luminate_fuzz::block_on;
use luminate_model::result::RangePoint;
use luminate_model::{Aggregation, Dimensions, Filter};
use luminate_promql::{EvalError, SeriesSource, Steps, encode, evaluate, parse, range_steps};

/// A counter on two jobs (one resets), a gauge and histogram buckets, every 10 s over 10 minutes.
struct Store(Vec<(&'static str, Dimensions, Vec<(i64, f64)>)>);

fn store() -> Store {
    let dims = |pairs: &[(&str, &str)]| {
        Dimensions::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    };
    let every = |f: &dyn Fn(i64) -> f64| (0..=60).map(|i| (i * 10_000, f(i))).collect::<Vec<_>>();
    let mut series = vec![
        (
            "requests",
            dims(&[("job", "api")]),
            every(&|i| i as f64 * 10.0),
        ),
        (
            "requests",
            dims(&[("job", "web")]),
            every(&|i| ((i % 30) * 20) as f64),
        ),
        (
            "temp",
            dims(&[("room", "a")]),
            every(&|i| 20.0 + (i % 7) as f64 / 2.0),
        ),
        (
            "temp",
            dims(&[("room", "b")]),
            every(&|i| if i == 30 { f64::NAN } else { -3.5 }),
        ),
    ];
    for (le, share) in [("0.1", 1.0), ("1", 3.0), ("+Inf", 4.0)] {
        series.push((
            "lat_bucket",
            dims(&[("le", le)]),
            every(&move |i| i as f64 * share),
        ));
    }
    Store(series)
}

#[async_trait]
impl SeriesSource for Store {
    async fn metric_names(&self) -> Result<Vec<String>, EvalError> {
        let mut names: Vec<String> = self.0.iter().map(|s| s.0.to_owned()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn label_values(
        &self,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Option<Vec<String>>, EvalError> {
        let mut values: Vec<String> = self
            .0
            .iter()
            .filter(|s| s.0 == metric)
            .filter_map(|s| s.1.get(key).map(str::to_owned))
            .collect();
        values.sort();
        values.dedup();
        values.truncate(limit);
        Ok(self.0.iter().any(|s| s.0 == metric).then_some(values))
    }

    async fn aggregate(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        group_by: Vec<String>,
        aggregation: Aggregation,
        (start, end): (i64, i64),
        limit: usize,
    ) -> Result<Option<Vec<(Vec<(String, String)>, f64)>>, EvalError> {
        let (points, _) = self.points(metric, filters, start, end, usize::MAX).await?;
        let mut groups: std::collections::BTreeMap<Vec<(String, String)>, Vec<f64>> =
            Default::default();
        for p in points {
            let key = group_by
                .iter()
                .map(|k| (k.clone(), p.dimensions.get_or_empty(k).to_owned()))
                .collect();
            groups.entry(key).or_default().push(p.value);
        }
        if groups.len() > limit {
            return Ok(None);
        }
        let fold = |vs: &[f64]| match aggregation {
            Aggregation::Min => vs.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Max => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Count => vs.len() as f64,
            Aggregation::Avg => vs.iter().sum::<f64>() / vs.len() as f64,
            _ => vs.iter().sum(),
        };
        Ok(Some(
            groups.into_iter().map(|(k, vs)| (k, fold(&vs))).collect(),
        ))
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
        for (name, dims, samples) in &self.0 {
            let selected = *name == metric
                && filters
                    .iter()
                    .all(|f| f.values().iter().any(|v| v == dims.get_or_empty(f.key())));
            if !selected {
                continue;
            }
            for &(t, v) in samples.iter().filter(|s| (start..=end).contains(&s.0)) {
                out.push(RangePoint {
                    timestamp: t,
                    value: v,
                    dimensions: dims.clone(),
                });
            }
        }
        let truncated = out.len() > limit;
        out.truncate(limit);
        Ok((out, truncated))
    }
}

/// libFuzzer's panic hook aborts at the panic itself, before any `catch_unwind` can act; but
/// `luminate_promql::parse` catches the panics of the third-party parser (a duration past `Duration`'s
/// range) and answers `bad_data`, as the server does. So the default hook (print, then unwind): a panic
/// that escapes `parse` or comes from anywhere else still reaches libFuzzer's wrapper, which aborts.
fn unwinding_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    });
}

fuzz_target!(|data: &[u8]| {
    unwinding_panics();
    // The first byte: an instant query, or a range query and its step.
    let Some((&mode, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(expr) = parse(text) else {
        return;
    };
    let source = store();
    let answer = if mode < 128 {
        let t = i64::from(mode) * 5_000;
        let steps = Steps::instant(t);
        block_on(evaluate(&source, &expr, &steps, false)).map(|v| encode::instant(&v, t))
    } else {
        let steps = range_steps(-60_000, 660_000, i64::from(mode - 127) * 1_000).expect("steps");
        block_on(evaluate(&source, &expr, &steps, true)).map(|v| encode::range(&v, &steps))
    };
    match answer {
        Ok(json) => {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&json) {
                panic!("{text:?} answers invalid JSON ({e}): {json}");
            }
        }
        Err(EvalError::Store(e)) => panic!("{text:?}: the store failed: {e}"),
        Err(_) => {}
    }
});
