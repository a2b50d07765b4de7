//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `topk`, `bottomk`, `quantile`,
//! `count_values`) with `by`/`without`, per step, as Prometheus 2.42's `aggregation` computes them:
//! values are folded in the order of the input series, `avg` is a running mean, `min`/`max` let a
//! later number replace a NaN.

use std::collections::BTreeMap;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use crate::error::{EvalError, unsupported};
use crate::eval::{Evaluator, is_label_name, value_label};
use crate::labels::Labels;
use crate::math;
use crate::value::{Series, Value, VectorBuilder};

/// The aggregations evaluated.
pub const SUPPORTED: [&str; 9] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

fn group_labels(labels: &Labels, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(by)) => labels.keep(&by.labels),
        Some(LabelModifier::Exclude(without)) => labels.without(&without.labels),
    }
}

pub(crate) fn evaluate(ev: &Evaluator<'_>, agg: &AggregateExpr) -> Result<Value, EvalError> {
    let op = agg.op.to_string();
    if !SUPPORTED.contains(&op.as_str()) {
        return Err(unsupported(format!("aggregation {op}")));
    }
    let input = ev.vector(&agg.expr)?;
    let steps = ev.steps.len();
    let modifier = agg.modifier.as_ref();
    if op == "count_values" {
        let label = match agg.param.as_deref() {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => return Err(EvalError::BadData("count_values needs a label name".into())),
        };
        if !is_label_name(&label) {
            return Err(EvalError::BadData(format!("invalid label name {label:?}")));
        }
        return count_values(&input, &label, modifier, steps).map(Value::Vector);
    }
    let param = match agg.param.as_deref() {
        Some(p) => Some(ev.scalar_of(p)?),
        None => None,
    };
    // Group of each input series, and the groups in order of first appearance.
    let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
    let mut index: BTreeMap<Labels, usize> = BTreeMap::new();
    for (i, s) in input.iter().enumerate() {
        let key = group_labels(&s.labels, modifier);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let mut out = VectorBuilder::new(steps);
    for (labels, members) in &groups {
        for step in 0..steps {
            let present: Vec<(usize, f64)> = members
                .iter()
                .filter_map(|&i| input[i].values[step].map(|v| (i, v)))
                .collect();
            if present.is_empty() {
                continue;
            }
            let values = || present.iter().map(|p| p.1);
            let value = match op.as_str() {
                "sum" => values().fold(0.0, |a, v| a + v),
                "avg" => math::incremental_mean(values()),
                "count" => present.len() as f64,
                "min" => fold_first(values(), |m, v| m > v || m.is_nan()),
                "max" => fold_first(values(), |m, v| m < v || m.is_nan()),
                "quantile" => {
                    let q = param.as_ref().map_or(f64::NAN, |p| p[step]);
                    math::quantile(q, &mut values().collect::<Vec<_>>())
                }
                _ => {
                    let k = param.as_ref().map_or(0.0, |p| p[step]);
                    for (i, v) in top(&present, k, op == "topk") {
                        out.push(&input[i].labels, step, v)?;
                    }
                    continue;
                }
            };
            out.push(labels, step, value)?;
        }
    }
    Ok(Value::Vector(out.finish()))
}

/// The first value, replaced by each later one for which `replace(current, later)` holds.
fn fold_first(mut values: impl Iterator<Item = f64>, replace: impl Fn(f64, f64) -> bool) -> f64 {
    let first = values.next().unwrap_or(f64::NAN);
    values.fold(first, |m, v| if replace(m, v) { v } else { m })
}

/// The `k` largest (`topk`) or smallest samples; NaN ranks last either way. `k` is truncated to an
/// integer; below 1 selects nothing.
fn top(present: &[(usize, f64)], k: f64, largest: bool) -> Vec<(usize, f64)> {
    if k.is_nan() || k < 1.0 {
        return Vec::new();
    }
    let k = (k as usize).min(present.len());
    let mut sorted = present.to_vec();
    sorted.sort_by(|a, b| match (a.1.is_nan(), b.1.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ if largest => b.1.total_cmp(&a.1),
        _ => a.1.total_cmp(&b.1),
    });
    sorted.truncate(k);
    sorted
}

/// `count_values`: per step, how many series of a group have each value; the value is written into
/// `label`, which `by` keeps and `without` does not drop.
fn count_values(
    input: &[Series],
    label: &str,
    modifier: Option<&LabelModifier>,
    steps: usize,
) -> Result<Vec<Series>, EvalError> {
    let modifier = match modifier {
        Some(LabelModifier::Include(by)) => {
            let mut by = by.clone();
            by.labels.push(label.to_owned());
            Some(LabelModifier::Include(by))
        }
        None => Some(LabelModifier::Include(promql_parser::label::Labels::new(
            vec![label],
        ))),
        other => other.cloned(),
    };
    let mut counts: BTreeMap<(usize, Labels), f64> = BTreeMap::new();
    for s in input {
        for (step, v) in s.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let mut labels = s.labels.clone();
            labels.set(label, &value_label(*v));
            *counts
                .entry((step, group_labels(&labels, modifier.as_ref())))
                .or_default() += 1.0;
        }
    }
    let mut out = VectorBuilder::new(steps);
    for ((step, labels), count) in counts {
        out.push(&labels, step, count)?;
    }
    Ok(out.finish())
}
