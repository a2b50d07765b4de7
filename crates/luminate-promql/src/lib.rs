//! A PromQL subset over any Luminate store, with Prometheus 2.42's semantics, so that Grafana's
//! Prometheus datasource, promtool and other clients of Prometheus' query API can read Luminate.
//!
//! Owns: parsing (the `promql-parser` crate), the check that an expression stays within the subset
//! ([`plan`]), reading selectors through a [`SeriesSource`] with label matching pushed down as filters
//! ([`select`]), the evaluation ([`eval`], [`aggregate`], [`binary`], [`math`]) and the answer's JSON
//! ([`encode`]). Owns no HTTP, tenants or limits other than the samples a query may read: the server
//! gives the source (a tenant's store under the query's deadline) and maps [`EvalError`] to statuses.
//!
//! Evaluation reads every selector's window once for all steps, then evaluates synchronously, one value
//! per step — except the aggregations the store computes ([`pushdown`]). An instant
//! query reads each selector's window folded per series (`luminate_model::window`) when its
//! evaluation needs no more than the fold ([`plan::FOLDED_FUNCTIONS`]) and the store can fold it. Range selectors are only evaluated as arguments of functions (no subqueries).

pub mod aggregate;
pub mod binary;
pub mod encode;
pub mod error;
pub mod eval;
pub mod labels;
pub mod math;
pub mod plan;
pub mod pushdown;
pub mod select;
pub mod value;

use std::collections::HashSet;

pub use error::{EvalError, MAX_SAMPLES};
pub use labels::Labels;
pub use promql_parser::parser::Expr;
pub use select::{RawSeries, SeriesSource, WindowSeries};
pub use value::{Series, Steps, Value};

/// Most steps of a range query, as Prometheus bounds the points of one series.
pub const MAX_STEPS: i64 = 11_000;

/// Parses an expression (`bad_data` with the parser's message when it does not parse).
pub fn parse(text: &str) -> Result<Expr, EvalError> {
    // promql-parser panics on some expressions (an offset or range whose seconds overflow
    // `Duration`, found by the `promql` fuzz target): such an expression is bad data like any other
    // the parser refuses, not a panic in the request's task.
    match std::panic::catch_unwind(|| promql_parser::parser::parse(text)) {
        Ok(parsed) => {
            parsed.map_err(|e| EvalError::BadData(format!("invalid parameter \"query\": {e}")))
        }
        Err(_) => Err(EvalError::BadData(
            "invalid parameter \"query\": the expression could not be parsed (a number or \
             duration out of range)"
                .into(),
        )),
    }
}

/// The steps of a range query from `start` to `end` every `step` ms, refused as Prometheus refuses
/// them: a positive step, an end not before the start, at most [`MAX_STEPS`] steps.
pub fn range_steps(start: i64, end: i64, step: i64) -> Result<Steps, EvalError> {
    if end < start {
        return Err(EvalError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    if step <= 0 {
        return Err(EvalError::BadData(
            "invalid parameter \"step\": zero or negative query resolution step widths are not \
             accepted. Try a positive integer"
                .into(),
        ));
    }
    if (end - start) / step > MAX_STEPS {
        return Err(EvalError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query \
             resolution (?step=XX)"
                .into(),
        ));
    }
    Ok(Steps { start, end, step })
}

/// Evaluates `expr` at every step, reading its selectors from `source`. A range query
/// (`range_query`) must give a scalar or an instant vector.
pub async fn evaluate(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
    range_query: bool,
) -> Result<Value, EvalError> {
    use promql_parser::parser::value::ValueType;
    let kind = expr.value_type();
    if range_query && !matches!(kind, ValueType::Vector | ValueType::Scalar) {
        return Err(EvalError::BadData(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            if kind == ValueType::Matrix {
                "range vector".to_owned()
            } else {
                kind.to_string()
            }
        )));
    }
    plan::plan(expr, steps, &HashSet::new())?;
    match evaluate_all(source, expr, steps).await {
        Err(EvalError::TooManySamples) if steps.len() > 1 && !has_at_modifier(expr) => {
            step_by_step(source, expr, steps).await
        }
        other => other,
    }
}

/// Evaluates a checked `expr` over all the steps at once: each selector's samples over all the steps
/// read once.
async fn evaluate_all(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
) -> Result<Value, EvalError> {
    let mut data = eval::Fetched {
        known: pushdown::precompute(source, expr, steps).await?,
        ..Default::default()
    };
    let known: HashSet<usize> = data.known.keys().copied().collect();
    let mut budget = MAX_SAMPLES;
    for read in plan::plan(expr, steps, &known)? {
        // A selector whose evaluation needs only each step's window folded reads those, when the
        // source can fold them: a dense metric's points are never held.
        if read.folded
            && let Some(window_steps) = eval::window_steps(read.selector, steps, read.range)
            && let Some(windows) =
                select::select_windows(source, read.selector, window_steps, &mut budget).await?
        {
            data.windows.insert(read.key, windows);
            continue;
        }
        let series =
            select::select(source, read.selector, read.start, read.end, &mut budget).await?;
        data.raw.insert(read.key, series);
    }
    eval::Evaluator { steps, data: &data }.eval(expr)
}

/// A range query whose samples are too many to hold at once, evaluated as one instant query per step
/// (each within [`MAX_SAMPLES`], with folded reads and pushed-down aggregations, as instant queries
/// are): slower than one read when the windows of the steps overlap, but bounded in memory, as
/// Prometheus' step-wise evaluation is. The query's deadline bounds the steps' work.
async fn step_by_step(
    source: &dyn SeriesSource,
    expr: &Expr,
    steps: &Steps,
) -> Result<Value, EvalError> {
    let mut scalars = Vec::new();
    let mut vector = value::VectorBuilder::new(steps.len());
    for (i, t) in steps.times().enumerate() {
        let value = evaluate_all(source, expr, &Steps::instant(t)).await?;
        source.reads_done();
        match value {
            Value::Scalar(v) => scalars.push(v[0]),
            Value::Vector(series) => {
                for s in series {
                    if let Some(v) = s.values[0] {
                        vector.push(&s.labels, i, v)?;
                    }
                }
            }
            other => {
                return Err(EvalError::BadData(format!(
                    "a range query must give a scalar or an instant vector, not {other:?}"
                )));
            }
        }
    }
    Ok(if scalars.len() == steps.len() {
        Value::Scalar(scalars)
    } else {
        Value::Vector(vector.finish())
    })
}

/// Whether a selector of `expr` has an `@` modifier, whose `start()` and `end()` are the whole
/// range's: such an expression is not evaluated step by step.
fn has_at_modifier(expr: &Expr) -> bool {
    match expr {
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Paren(p) => has_at_modifier(&p.expr),
        Expr::Unary(u) => has_at_modifier(&u.expr),
        Expr::Aggregate(a) => {
            has_at_modifier(&a.expr) || a.param.as_deref().is_some_and(has_at_modifier)
        }
        Expr::Binary(b) => has_at_modifier(&b.lhs) || has_at_modifier(&b.rhs),
        Expr::Call(c) => c.args.args.iter().any(|a| has_at_modifier(a)),
        Expr::Subquery(q) => q.at.is_some() || has_at_modifier(&q.expr),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
