//! Binary operators between scalars and instant vectors: arithmetic (`+ - * / % ^`) and comparisons
//! (`== != > < >= <=`, filtering or with `bool`), with `on`/`ignoring` and `group_left`/`group_right`
//! vector matching, as Prometheus 2.42's `VectorBinop` and `VectorscalarBinop` do: arithmetic and
//! `bool` drop the metric name; a comparison keeps the left-hand (vector) sample when it holds.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use crate::error::{EvalError, unsupported};
use crate::eval::Evaluator;
use crate::labels::Labels;
use crate::math;
use crate::value::{Series, Value, VectorBuilder};

/// The operators evaluated.
pub const SUPPORTED: [&str; 12] = [
    "+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=",
];

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// `lhs op rhs`, and whether a comparison holds (always true for arithmetic).
fn apply(op: &str, lhs: f64, rhs: f64) -> (f64, bool) {
    match op {
        "+" => (lhs + rhs, true),
        "-" => (lhs - rhs, true),
        "*" => (lhs * rhs, true),
        "/" => (lhs / rhs, true),
        "%" => (math::go_mod(lhs, rhs), true),
        "^" => (lhs.powf(rhs), true),
        "==" => (lhs, lhs == rhs),
        "!=" => (lhs, lhs != rhs),
        ">" => (lhs, lhs > rhs),
        "<" => (lhs, lhs < rhs),
        ">=" => (lhs, lhs >= rhs),
        _ => (lhs, lhs <= rhs),
    }
}

pub(crate) fn evaluate(ev: &Evaluator<'_>, b: &BinaryExpr) -> Result<Value, EvalError> {
    let op = b.op.to_string();
    if !SUPPORTED.contains(&op.as_str()) {
        return Err(unsupported(format!("binary operator {op}")));
    }
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    let steps = ev.steps.len();
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => Ok(Value::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&l, &r)| {
                    let (v, keep) = apply(&op, l, r);
                    if is_comparison(&op) {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Value::Vector(v), Value::Scalar(s)) => {
            vector_scalar(&op, v, &s, false, return_bool, steps).map(Value::Vector)
        }
        (Value::Scalar(s), Value::Vector(v)) => {
            vector_scalar(&op, v, &s, true, return_bool, steps).map(Value::Vector)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            vector_vector(&op, b, l, r, return_bool, steps).map(Value::Vector)
        }
        _ => Err(EvalError::BadData(format!(
            "binary operator {op} between these operand types is not supported"
        ))),
    }
}

fn vector_scalar(
    op: &str,
    vector: Vec<Series>,
    scalar: &[f64],
    scalar_on_left: bool,
    return_bool: bool,
    steps: usize,
) -> Result<Vec<Series>, EvalError> {
    let drop_name = !is_comparison(op) || return_bool;
    let mut out = VectorBuilder::new(steps);
    for s in vector {
        let values = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = (*v)?;
                let (l, r) = if scalar_on_left {
                    (scalar[i], v)
                } else {
                    (v, scalar[i])
                };
                let (mut value, keep) = apply(op, l, r);
                if is_comparison(op) && scalar_on_left {
                    // The vector's sample is the answer even when it is on the right.
                    value = v;
                }
                if return_bool {
                    return Some(if keep { 1.0 } else { 0.0 });
                }
                keep.then_some(value)
            })
            .collect();
        let labels = if drop_name {
            s.labels.without_name()
        } else {
            s.labels
        };
        out.merge(labels, values)?;
    }
    Ok(out.finish())
}

/// The labels two series are matched on.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => labels.keep(&on.labels),
        Some(LabelModifier::Exclude(ignoring)) => labels.without(&ignoring.labels),
        None => labels.without(&[]),
    }
}

fn vector_vector(
    op: &str,
    b: &BinaryExpr,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    return_bool: bool,
    steps: usize,
) -> Result<Vec<Series>, EvalError> {
    let modifier = b.modifier.as_ref();
    let card = modifier.map_or(&VectorMatchCardinality::OneToOne, |m| &m.card);
    let matching = modifier.and_then(|m| m.matching.as_ref());
    if modifier.is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some()) {
        return Err(unsupported("fill modifiers of vector matching"));
    }
    let (include, one_to_many) = match card {
        VectorMatchCardinality::OneToOne => (None, false),
        VectorMatchCardinality::ManyToOne(l) => (Some(&l.labels), false),
        VectorMatchCardinality::OneToMany(l) => (Some(&l.labels), true),
        VectorMatchCardinality::ManyToMany => {
            return Err(unsupported("many-to-many set operators"));
        }
    };
    // The "many" side is `many`; the "one" side `one` (for one-to-one either).
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let many_sigs: Vec<Labels> = many
        .iter()
        .map(|s| signature(&s.labels, matching))
        .collect();
    let one_sigs: Vec<Labels> = one.iter().map(|s| signature(&s.labels, matching)).collect();
    let mut result_labels: HashMap<(usize, usize), Labels> = HashMap::new();
    let mut out = VectorBuilder::new(steps);
    for step in 0..steps {
        let mut by_sig: HashMap<&Labels, usize> = HashMap::new();
        for (j, s) in one.iter().enumerate() {
            if s.values[step].is_none() {
                continue;
            }
            if let Some(&other) = by_sig.get(&one_sigs[j]) {
                let side = if one_to_many { "left" } else { "right" };
                return Err(EvalError::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the \
                     operation: [{}, {}];many-to-many matching not allowed: matching labels must be \
                     unique on one side",
                    one_sigs[j], one[other].labels, s.labels
                )));
            }
            by_sig.insert(&one_sigs[j], j);
        }
        let mut matched: HashMap<&Labels, HashSet<Labels>> = HashMap::new();
        for (i, s) in many.iter().enumerate() {
            let Some(mv) = s.values[step] else { continue };
            let Some(&j) = by_sig.get(&many_sigs[i]) else {
                continue;
            };
            let Some(ov) = one[j].values[step] else {
                continue;
            };
            let (l, r) = if one_to_many { (ov, mv) } else { (mv, ov) };
            let (value, keep) = apply(op, l, r);
            let value = if return_bool {
                if keep { 1.0 } else { 0.0 }
            } else if keep {
                value
            } else {
                continue;
            };
            let labels = result_labels
                .entry((i, j))
                .or_insert_with(|| {
                    result_metric(
                        &s.labels,
                        &one[j].labels,
                        op,
                        matching,
                        include,
                        return_bool,
                    )
                })
                .clone();
            let seen = matched.entry(&many_sigs[i]).or_default();
            if include.is_none() {
                if !seen.is_empty() {
                    return Err(EvalError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit \
                         (group_left/group_right)"
                            .to_owned(),
                    ));
                }
            } else if seen.contains(&labels) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .to_owned(),
                ));
            }
            seen.insert(labels.clone());
            out.push(&labels, step, value)?;
        }
    }
    Ok(out.finish())
}

/// The labels of a matched pair (Prometheus' `resultMetric`): the "many" side's, without the name for
/// arithmetic and `bool`, narrowed to the `on` labels (or without the `ignoring` ones) for one-to-one
/// matching, with the `group_x` labels copied from the "one" side.
fn result_metric(
    many: &Labels,
    one: &Labels,
    op: &str,
    matching: Option<&LabelModifier>,
    include: Option<&Vec<String>>,
    return_bool: bool,
) -> Labels {
    let mut labels = if !is_comparison(op) || return_bool {
        many.without_name()
    } else {
        many.clone()
    };
    if include.is_none() {
        labels = match matching {
            Some(LabelModifier::Include(on)) => labels.keep(&on.labels),
            Some(LabelModifier::Exclude(ignoring)) => {
                let mut kept = labels.clone();
                for name in &ignoring.labels {
                    kept.set(name, "");
                }
                kept
            }
            None => labels,
        };
    }
    for name in include.into_iter().flatten() {
        labels.set(name, one.get(name));
    }
    labels
}
