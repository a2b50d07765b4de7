//! Aggregations the store computes, so that they never materialise series one by one. Two ways:
//!
//! - **The store's group-by**, exactly as PromQL would: at one evaluation time, `sum by (…)
//!   (count_over_time(s[r]))`, `min by (…) (min_over_time(s[r]))` and `max by (…) (max_over_time(s[r]))`
//!   are one `count`, `min` or `max` per group over the points of the window `[t − r, t]` — each
//!   series' window holds exactly its points there, and counting, the minimum and the maximum do not
//!   depend on how points are split into series or in which order they are met.
//! - **Grouped folds** (`luminate_model::window`): `sum|count|min|max|avg by (…)` of an instant
//!   selector or of a range function a window's fold answers (`crate::plan::FOLDED_FUNCTIONS`), at one
//!   evaluation time or at every step of a range query in one read: the store folds each series'
//!   window, takes its value (the closure built here: a rate, a count, the latest value) and adds it
//!   into its group. Sums add in the store's order of series, not PromQL's order of labels: equal up
//!   to rounding in the last bits.
//!
//! Only with `by` labels other than `__name__` (or none), no parameter, every label matcher exactly a
//! filter (no listing too long to push), at most [`GROUP_LIMIT`] groups, and no `@` in a range query.
//! Anything else returns `None` and is evaluated on series read from the store. Any aggregation in an
//! expression qualifies, not only the outermost ([`precompute`]): `topk(10, sum by (customer)
//! (count_over_time(…)))` ranks the pushed-down counts. (The raw path keeps one sample per series and
//! timestamp; the store's group-by counts every stored point, so two points written with the same
//! series and timestamp count twice there — Prometheus never writes such pairs.)

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use luminate_model::window::{GroupValue, GroupedValue, Moment, WindowSteps, WindowValue};
use luminate_model::{Aggregation, Filter};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier, VectorSelector};

use crate::error::EvalError;
use crate::eval::{LOOKBACK_MS, at_time, millis, offset_ms, window_steps};
use crate::labels::{Labels, METRIC_NAME};
use crate::math;
use crate::select::{SeriesSource, filters, matchers, metric_names};
use crate::value::{Series, Steps, Value};

/// Most groups a pushed-down aggregation may have: each is a series of the answer, as many as the
/// samples a query may read.
pub const GROUP_LIMIT: usize = crate::MAX_SAMPLES;

/// The value of every aggregation in `expr` the store computes (outermost first: one pushed down
/// answers everything under it), by [`crate::plan::expr_key`].
pub async fn precompute(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
) -> Result<HashMap<usize, Value>, EvalError> {
    let mut known = HashMap::new();
    let mut pending = vec![expr];
    while let Some(e) = pending.pop() {
        if matches!(e, Expr::Aggregate(_))
            && let Some(value) = evaluate(source, e, steps).await?
        {
            known.insert(crate::plan::expr_key(e), value);
            continue;
        }
        match e {
            Expr::Paren(p) => pending.push(&p.expr),
            Expr::Unary(u) => pending.push(&u.expr),
            Expr::Aggregate(agg) => {
                pending.push(&agg.expr);
                pending.extend(agg.param.as_deref());
            }
            Expr::Binary(b) => pending.extend([&*b.lhs, &*b.rhs]),
            Expr::Call(call) => pending.extend(call.args.args.iter().map(|a| &**a)),
            _ => {}
        }
    }
    Ok(known)
}

fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip(&p.expr),
        other => other,
    }
}

/// The answer of `expr` computed by the store's group-by, when that gives exactly PromQL's answer, or
/// by its grouped fold of windows, when that gives it up to the order of addition.
pub async fn evaluate(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
) -> Result<Option<Value>, EvalError> {
    let Expr::Aggregate(agg) = strip(expr) else {
        return Ok(None);
    };
    if agg.param.is_some() {
        return Ok(None);
    }
    let group_by = match &agg.modifier {
        None => Vec::new(),
        Some(LabelModifier::Include(by)) if !by.labels.iter().any(|l| l == METRIC_NAME) => {
            let mut by = by.labels.clone();
            by.sort();
            by.dedup();
            by
        }
        Some(_) => return Ok(None),
    };
    if steps.len() == 1
        && let Some(value) = by_group_by(source, agg, &group_by, steps).await?
    {
        return Ok(Some(value));
    }
    by_grouped_windows(source, agg, group_by, steps).await
}

/// The selector's metrics with their filters, when every label matcher is exactly a filter (`None`
/// otherwise: the store would select more series than the matchers do).
async fn exact_filters(
    source: &dyn SeriesSource,
    vs: &VectorSelector,
) -> Result<Option<Vec<(String, Vec<Filter>)>>, EvalError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Ok(None);
    }
    let all = matchers(vs);
    let (names, labels): (Vec<_>, Vec<_>) = all.iter().partition(|m| m.name == METRIC_NAME);
    let mut out = Vec::new();
    for metric in metric_names(source, &names).await? {
        let Some((filters, exact)) = filters(source, &metric, &labels).await? else {
            continue;
        };
        if !exact {
            return Ok(None);
        }
        out.push((metric, filters));
    }
    Ok(Some(out))
}

/// `sum(count_over_time)`, `min(min_over_time)`, `max(max_over_time)`: the store's group-by.
async fn by_group_by(
    source: &dyn SeriesSource,
    agg: &AggregateExpr,
    group_by: &[String],
    steps: &Steps,
) -> Result<Option<Value>, EvalError> {
    let Expr::Call(call) = strip(&agg.expr) else {
        return Ok(None);
    };
    let aggregation = match (agg.op.to_string().as_str(), call.func.name) {
        ("sum", "count_over_time") => Aggregation::Count,
        ("min", "min_over_time") => Aggregation::Min,
        ("max", "max_over_time") => Aggregation::Max,
        _ => return Ok(None),
    };
    let [arg] = call.args.args.as_slice() else {
        return Ok(None);
    };
    let Expr::MatrixSelector(ms) = strip(arg) else {
        return Ok(None);
    };
    let vs = &ms.vs;
    let end = at_time(vs, steps).unwrap_or(steps.start) - offset_ms(vs);
    let start = end - millis(ms.range);
    let Some(metrics) = exact_filters(source, vs).await? else {
        return Ok(None);
    };
    let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
    for (metric, filters) in metrics {
        let Some(answer) = source
            .aggregate(
                &metric,
                filters,
                group_by.to_vec(),
                aggregation,
                (start, end),
                GROUP_LIMIT,
            )
            .await?
        else {
            return Ok(None);
        };
        for (key, value) in answer {
            let labels = Labels::from_pairs(key);
            groups
                .entry(labels)
                .and_modify(|v| {
                    *v = match aggregation {
                        Aggregation::Min => v.min(value),
                        Aggregation::Max => v.max(value),
                        _ => *v + value,
                    }
                })
                .or_insert(value);
        }
    }
    Ok(Some(vector(groups)))
}

/// `sum|count|min|max|avg by (…)` of an instant selector or of one of the range functions a
/// window's fold answers (`crate::plan::FOLDED_FUNCTIONS`): each series' value from its window, added
/// up per group in the store — so no series' labels leave it. Sums add in the store's order of
/// series, not PromQL's order of labels: equal up to rounding in the last bits.
async fn by_grouped_windows(
    source: &dyn SeriesSource,
    agg: &AggregateExpr,
    group_by: Vec<String>,
    steps: &Steps,
) -> Result<Option<Value>, EvalError> {
    let op = agg.op.to_string();
    // What the store keeps per group and step besides the count: `avg` is the sum over the count.
    let moment = match op.as_str() {
        "sum" | "avg" => Moment::Sum,
        "count" => Moment::Count,
        "min" => Moment::Min,
        "max" => Moment::Max,
        _ => return Ok(None),
    };
    // The selector's windows, and the value of a series' window at step `i`.
    let (vs, windows, value): (_, WindowSteps, Arc<WindowValue>) = match strip(&agg.expr) {
        Expr::VectorSelector(vs) => {
            let Some(windows) = window_steps(vs, steps, LOOKBACK_MS) else {
                return Ok(None);
            };
            (vs, windows, Arc::new(|_, w| Some(w.last.1)))
        }
        Expr::Call(call) if crate::plan::FOLDED_FUNCTIONS.contains(&call.func.name) => {
            let [arg] = call.args.args.as_slice() else {
                return Ok(None);
            };
            let Expr::MatrixSelector(ms) = strip(arg) else {
                return Ok(None);
            };
            // With `@` in a range query every step reads the same window: evaluated from the
            // series.
            let Some(windows) = window_steps(&ms.vs, steps, millis(ms.range)) else {
                return Ok(None);
            };
            let secs = ms.range.as_secs_f64();
            let name = call.func.name;
            let value: Arc<WindowValue> = Arc::new(move |i, w| {
                let (start, end) = windows.window(i);
                math::folded_value(name, w, start, end, secs).flatten()
            });
            (&ms.vs, windows, value)
        }
        _ => return Ok(None),
    };
    let Some(metrics) = exact_filters(source, vs).await? else {
        return Ok(None);
    };
    let mut groups: BTreeMap<Labels, Vec<Option<GroupValue>>> = BTreeMap::new();
    for (metric, filters) in metrics {
        let Some(answer) = source
            .grouped_windows(
                &metric,
                filters,
                windows,
                group_by.clone(),
                GroupedValue {
                    value: value.clone(),
                    moment,
                },
                GROUP_LIMIT,
            )
            .await?
        else {
            return Ok(None);
        };
        for (key, per_step) in answer {
            let held = groups
                .entry(Labels::from_pairs(key))
                .or_insert_with(|| vec![None; per_step.len()]);
            for (h, m) in held.iter_mut().zip(per_step) {
                match (h.as_mut(), m) {
                    (Some(h), Some(m)) => moment.merge(h, &m),
                    (None, m) => *h = m,
                    (_, None) => {}
                }
            }
        }
    }
    Ok(Some(Value::Vector(
        groups
            .into_iter()
            .map(|(labels, per_step)| Series {
                labels,
                values: per_step
                    .into_iter()
                    .map(|m| {
                        m.map(|m| match op.as_str() {
                            "count" => m.count as f64,
                            "avg" => m.value / m.count as f64,
                            _ => m.value,
                        })
                    })
                    .collect(),
            })
            .collect(),
    )))
}

/// One series per group, with its value at the only step.
fn vector(groups: impl IntoIterator<Item = (Labels, f64)>) -> Value {
    Value::Vector(
        groups
            .into_iter()
            .map(|(labels, v)| Series {
                labels,
                values: vec![Some(v)],
            })
            .collect(),
    )
}
