//! Before anything is read: check that an expression stays within the evaluated subset (naming the
//! first construct that does not), and find the time window every selector reads over all the steps,
//! and whether its samples may be read folded (`luminate_model::window`).

use std::collections::HashSet;

use promql_parser::parser::{Expr, VectorSelector};

use crate::error::{EvalError, unsupported};
use crate::eval::{LOOKBACK_MS, at_time, millis, offset_ms, selector_key};
use crate::value::Steps;

/// The functions evaluated.
pub const FUNCTIONS: [&str; 24] = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "quantile_over_time",
    "histogram_quantile",
    "abs",
    "ceil",
    "floor",
    "round",
    "clamp_min",
    "clamp_max",
    "label_replace",
    "vector",
    "scalar",
    "time",
    "timestamp",
];

/// The range functions whose answer a window's fold gives exactly (`sum_`, `avg_` and
/// `quantile_over_time` need every sample).
pub const FOLDED_FUNCTIONS: [&str; 9] = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
];

/// One selector to read: its key in the fetched data, `[start, end]` in ms, and whether what
/// evaluates it needs only its samples' fold (an instant selector, or the argument of one of
/// [`FOLDED_FUNCTIONS`]) — which an instant query then reads folded.
pub(crate) struct Read<'e> {
    pub key: usize,
    pub selector: &'e VectorSelector,
    pub start: i64,
    pub end: i64,
    /// The length of each step's window, ms (the lookback for an instant selector).
    pub range: i64,
    pub folded: bool,
}

/// Checks `expr` and lists what its selectors read over `steps`, but for those under the expressions
/// of `skip` (by [`expr_key`]: their values are known already).
pub(crate) fn plan<'e>(
    expr: &'e Expr,
    steps: &Steps,
    skip: &HashSet<usize>,
) -> Result<Vec<Read<'e>>, EvalError> {
    let mut reads = Vec::new();
    walk(expr, steps, skip, &mut reads)?;
    Ok(reads)
}

/// The key of an expression node: its address, which lives as long as the evaluation.
pub(crate) fn expr_key(expr: &Expr) -> usize {
    std::ptr::from_ref(expr) as usize
}

fn read<'e>(
    vs: &'e VectorSelector,
    range: i64,
    folded: bool,
    steps: &Steps,
    reads: &mut Vec<Read<'e>>,
) -> Result<(), EvalError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported("`or` between matchers of a selector"));
    }
    let offset = offset_ms(vs);
    let (first, last) = match at_time(vs, steps) {
        Some(at) => (at, at),
        None => (steps.start, steps.end),
    };
    reads.push(Read {
        key: selector_key(vs),
        selector: vs,
        start: first.saturating_sub(offset).saturating_sub(range),
        end: last.saturating_sub(offset),
        range,
        folded,
    });
    Ok(())
}

fn walk<'e>(
    expr: &'e Expr,
    steps: &Steps,
    skip: &HashSet<usize>,
    reads: &mut Vec<Read<'e>>,
) -> Result<(), EvalError> {
    if skip.contains(&expr_key(expr)) {
        return Ok(());
    }
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Paren(p) => walk(&p.expr, steps, skip, reads),
        Expr::Unary(u) => walk(&u.expr, steps, skip, reads),
        Expr::VectorSelector(vs) => read(vs, LOOKBACK_MS, true, steps, reads),
        Expr::MatrixSelector(ms) => read(&ms.vs, millis(ms.range), false, steps, reads),
        Expr::Aggregate(agg) => {
            let op = agg.op.to_string();
            if !crate::aggregate::SUPPORTED.contains(&op.as_str()) {
                return Err(unsupported(format!("aggregation {op}")));
            }
            if let Some(p) = &agg.param {
                walk(p, steps, skip, reads)?;
            }
            walk(&agg.expr, steps, skip, reads)
        }
        Expr::Binary(b) => {
            let op = b.op.to_string();
            if !crate::binary::SUPPORTED.contains(&op.as_str()) {
                return Err(unsupported(format!("binary operator {op}")));
            }
            walk(&b.lhs, steps, skip, reads)?;
            walk(&b.rhs, steps, skip, reads)
        }
        Expr::Call(call) => {
            let name = call.func.name;
            if !FUNCTIONS.contains(&name) && name != "absent" {
                return Err(unsupported(format!("function {name}()")));
            }
            for arg in &call.args.args {
                match strip_parens(arg) {
                    Expr::MatrixSelector(ms) => read(
                        &ms.vs,
                        millis(ms.range),
                        FOLDED_FUNCTIONS.contains(&name),
                        steps,
                        reads,
                    )?,
                    _ => walk(arg, steps, skip, reads)?,
                }
            }
            Ok(())
        }
        Expr::Subquery(_) => Err(unsupported("subqueries")),
        Expr::Extension(_) => Err(unsupported("extension expressions")),
    }
}

fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}
