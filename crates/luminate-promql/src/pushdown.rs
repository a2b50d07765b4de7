//! Aggregations the store's group-by computes exactly as PromQL would, so that they never materialise
//! series one by one: at one evaluation time, `sum by (…) (count_over_time(s[r]))`, `min by (…) (min_over_time(s[r]))` and
//! `max by (…) (max_over_time(s[r]))` are one `count`, `min` or `max` per group over the points of the
//! window `[t − r, t]` — each series' window holds exactly its points there, and counting, the minimum
//! and the maximum do not depend on how points are split into series or in which order they are met.
//!
//! Only when that is provable: an instant evaluation, `by` labels other than `__name__` (or none), every
//! label matcher exactly a filter (no listing too long to push), at most [`GROUP_LIMIT`] groups. Sums of
//! values (`sum(sum_over_time)`) are left to the evaluator: adding in another order could change the
//! last bits. Anything else returns `None` and is evaluated on series read from the store. Any
//! aggregation in an expression qualifies, not only the outermost ([`precompute`]): `topk(10, sum by
//! (customer) (count_over_time(…)))` ranks the pushed-down counts. (The raw path keeps one
//! sample per series and timestamp; the store counts every stored point, so two points written with the
//! same series and timestamp count twice here — Prometheus never writes such pairs.)

use std::collections::{BTreeMap, HashMap};

use luminate_model::Aggregation;
use promql_parser::parser::{Expr, LabelModifier};

use crate::error::EvalError;
use crate::eval::{at_time, millis, offset_ms};
use crate::labels::{Labels, METRIC_NAME};
use crate::select::{SeriesSource, filters, matchers, metric_names};
use crate::value::{Series, Steps, Value};

/// Most groups a pushed-down aggregation may have: each is a series of the answer, as many as the
/// samples a query may read.
pub const GROUP_LIMIT: usize = crate::MAX_SAMPLES;

/// The value of every aggregation in `expr` the store's group-by computes exactly (outermost first:
/// one pushed down answers everything under it), by [`crate::plan::expr_key`]. Nothing for a range
/// query.
pub async fn precompute(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
) -> Result<HashMap<usize, Value>, EvalError> {
    let mut known = HashMap::new();
    if steps.len() != 1 {
        return Ok(known);
    }
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

/// The answer of `expr` computed by the store's group-by, when that gives exactly PromQL's answer.
pub async fn evaluate(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
) -> Result<Option<Value>, EvalError> {
    let Expr::Aggregate(agg) = strip(expr) else {
        return Ok(None);
    };
    if steps.len() != 1 || agg.param.is_some() {
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
    if !vs.matchers.or_matchers.is_empty() {
        return Ok(None);
    }
    let end = at_time(vs, steps).unwrap_or(steps.start) - offset_ms(vs);
    let start = end - millis(ms.range);
    let all = matchers(vs);
    let (names, labels): (Vec<_>, Vec<_>) = all.iter().partition(|m| m.name == METRIC_NAME);
    let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
    for metric in metric_names(source, &names).await? {
        let Some((filters, exact)) = filters(source, &metric, &labels).await? else {
            continue;
        };
        if !exact {
            return Ok(None);
        }
        let Some(answer) = source
            .aggregate(
                &metric,
                filters,
                group_by.clone(),
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
    Ok(Some(Value::Vector(
        groups
            .into_iter()
            .map(|(labels, v)| Series {
                labels,
                values: vec![Some(v)],
            })
            .collect(),
    )))
}
