//! Before anything is read: check that an expression stays within the evaluated subset (naming the
//! first construct that does not), and find the time window every selector reads over all the steps.

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

/// One selector to read: its key in the fetched data, and `[start, end]` in ms.
pub(crate) struct Read<'e> {
    pub key: usize,
    pub selector: &'e VectorSelector,
    pub start: i64,
    pub end: i64,
}

/// Checks `expr` and lists what its selectors read over `steps`.
pub(crate) fn plan<'e>(expr: &'e Expr, steps: &Steps) -> Result<Vec<Read<'e>>, EvalError> {
    let mut reads = Vec::new();
    walk(expr, steps, &mut reads)?;
    Ok(reads)
}

fn read<'e>(
    vs: &'e VectorSelector,
    range: i64,
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
    });
    Ok(())
}

fn walk<'e>(expr: &'e Expr, steps: &Steps, reads: &mut Vec<Read<'e>>) -> Result<(), EvalError> {
    match expr {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Paren(p) => walk(&p.expr, steps, reads),
        Expr::Unary(u) => walk(&u.expr, steps, reads),
        Expr::VectorSelector(vs) => read(vs, LOOKBACK_MS, steps, reads),
        Expr::MatrixSelector(ms) => read(&ms.vs, millis(ms.range), steps, reads),
        Expr::Aggregate(agg) => {
            let op = agg.op.to_string();
            if !crate::aggregate::SUPPORTED.contains(&op.as_str()) {
                return Err(unsupported(format!("aggregation {op}")));
            }
            if let Some(p) = &agg.param {
                walk(p, steps, reads)?;
            }
            walk(&agg.expr, steps, reads)
        }
        Expr::Binary(b) => {
            let op = b.op.to_string();
            if !crate::binary::SUPPORTED.contains(&op.as_str()) {
                return Err(unsupported(format!("binary operator {op}")));
            }
            walk(&b.lhs, steps, reads)?;
            walk(&b.rhs, steps, reads)
        }
        Expr::Call(call) => {
            let name = call.func.name;
            if !FUNCTIONS.contains(&name) && name != "absent" {
                return Err(unsupported(format!("function {name}()")));
            }
            for arg in &call.args.args {
                walk(arg, steps, reads)?;
            }
            Ok(())
        }
        Expr::Subquery(_) => Err(unsupported("subqueries")),
        Expr::Extension(_) => Err(unsupported("extension expressions")),
    }
}
