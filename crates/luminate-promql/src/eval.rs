//! The evaluation of a checked expression over fetched series (see [`crate::plan`]): synchronous and
//! pure, one value per step, with Prometheus 2.42's semantics — an instant selector takes each series'
//! latest sample no older than the lookback, a range selector the samples in `[t − range, t]` (both
//! ends inclusive), both at `t = (@ time or step time) − offset`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use luminate_model::window::WindowSteps;
use promql_parser::label::MatchOp;
use promql_parser::parser::{AtModifier, Call, Expr, MatrixSelector, Offset, VectorSelector};

use crate::error::{EvalError, unsupported};
use crate::labels::{Labels, METRIC_NAME};
use crate::math;
use crate::select::{RawSeries, WindowSeries};
use crate::value::{Series, Steps, Value, VectorBuilder, format_float};

/// Prometheus' default lookback of an instant selector.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The key of a selector in the fetched data: its address in the expression, which lives as long as
/// the evaluation.
pub(crate) fn selector_key(vs: &VectorSelector) -> usize {
    std::ptr::from_ref(vs) as usize
}

/// A duration in ms, saturating.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The `@` time of a selector, if any, in ms.
pub(crate) fn at_time(vs: &VectorSelector, steps: &Steps) -> Option<i64> {
    vs.at.as_ref().map(|at| match at {
        AtModifier::Start => steps.start,
        AtModifier::End => steps.end,
        AtModifier::At(time) => system_time_ms(*time),
    })
}

/// The windows of `range` ms that `vs` reads over `steps`, one per step ending at its read time;
/// `None` for a range query with `@`, whose steps all read one window (evaluated from the series).
pub(crate) fn window_steps(vs: &VectorSelector, steps: &Steps, range: i64) -> Option<WindowSteps> {
    let (first_end, step, count) = match at_time(vs, steps) {
        Some(_) if steps.len() > 1 => return None,
        Some(at) => (at, 1, 1),
        None => (steps.start, steps.step.max(1), steps.len()),
    };
    Some(WindowSteps {
        first_end: first_end.saturating_sub(offset_ms(vs)),
        step,
        count,
        range,
    })
}

fn system_time_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => millis(d),
        Err(e) => -millis(e.duration()),
    }
}

/// The selector's offset in ms (negative offsets look ahead).
pub(crate) fn offset_ms(vs: &VectorSelector) -> i64 {
    match &vs.offset {
        None => 0,
        Some(Offset::Pos(d)) => millis(*d),
        Some(Offset::Neg(d)) => -millis(*d),
    }
}

/// What was read for the selectors of an expression, by [`selector_key`], and the values of the
/// aggregations the store computed (`crate::pushdown`), by [`crate::plan::expr_key`].
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Raw samples.
    pub raw: HashMap<usize, Vec<RawSeries>>,
    /// Folded windows, one per series and step.
    pub windows: HashMap<usize, Vec<WindowSeries>>,
    /// Aggregations already computed.
    pub known: HashMap<usize, Value>,
}

/// Evaluates expressions over the fetched series of their selectors.
pub(crate) struct Evaluator<'a> {
    pub steps: &'a Steps,
    pub data: &'a Fetched,
}

impl Evaluator<'_> {
    fn series_of(&self, vs: &VectorSelector) -> &[RawSeries] {
        self.data
            .raw
            .get(&selector_key(vs))
            .map_or(&[], Vec::as_slice)
    }

    /// The selector's folded windows, when it was read folded.
    fn windows_of(&self, vs: &VectorSelector) -> Option<&[WindowSeries]> {
        self.data.windows.get(&selector_key(vs)).map(Vec::as_slice)
    }

    /// The time the selector reads at for step time `t`. Saturating, as the plan's windows are: an
    /// `@` or `offset` of thousands of years is valid PromQL and must not overflow.
    fn read_time(&self, vs: &VectorSelector, t: i64) -> i64 {
        at_time(vs, self.steps)
            .unwrap_or(t)
            .saturating_sub(offset_ms(vs))
    }

    /// A number per step.
    fn scalar(&self, n: f64) -> Vec<f64> {
        vec![n; self.steps.len()]
    }

    pub(crate) fn eval(&self, expr: &Expr) -> Result<Value, EvalError> {
        if let Some(value) = self.data.known.get(&crate::plan::expr_key(expr)) {
            return Ok(value.clone());
        }
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(self.scalar(n.val))),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::Unary(u) => Ok(match self.eval(&u.expr)? {
                Value::Scalar(v) => Value::Scalar(v.into_iter().map(|x| -x).collect()),
                Value::Vector(series) => Value::Vector(
                    series
                        .into_iter()
                        .map(|s| Series {
                            labels: s.labels.without_name(),
                            values: s.values.into_iter().map(|v| v.map(|x| -x)).collect(),
                        })
                        .collect(),
                ),
                other => other,
            }),
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, false))),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.matrix(ms))),
            Expr::Call(call) => self.call(call),
            Expr::Aggregate(agg) => crate::aggregate::evaluate(self, agg),
            Expr::Binary(b) => crate::binary::evaluate(self, b),
            Expr::Subquery(_) => Err(unsupported("subqueries")),
            Expr::Extension(_) => Err(unsupported("extension expressions")),
        }
    }

    /// Evaluates `expr`, which the parser has typed as an instant vector.
    pub(crate) fn vector(&self, expr: &Expr) -> Result<Vec<Series>, EvalError> {
        match self.eval(expr)? {
            Value::Vector(series) => Ok(series),
            _ => Err(EvalError::BadData(format!(
                "expected an instant vector: {expr}"
            ))),
        }
    }

    /// Evaluates `expr`, which the parser has typed as a scalar.
    pub(crate) fn scalar_of(&self, expr: &Expr) -> Result<Vec<f64>, EvalError> {
        match self.eval(expr)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(EvalError::BadData(format!("expected a scalar: {expr}"))),
        }
    }

    fn string_of(expr: &Expr) -> Result<String, EvalError> {
        match expr {
            Expr::StringLiteral(s) => Ok(s.val.clone()),
            Expr::Paren(p) => Self::string_of(&p.expr),
            _ => Err(EvalError::BadData(format!("expected a string: {expr}"))),
        }
    }

    /// Each series' latest sample within the lookback, per step; `timestamps` gives the sample's time
    /// in seconds instead of its value (what `timestamp()` of a selector answers).
    fn instant_selector(&self, vs: &VectorSelector, timestamps: bool) -> Vec<Series> {
        if let Some(windows) = self.windows_of(vs) {
            // Read over the lookback of each step: a window's latest sample is the answer there.
            return windows
                .iter()
                .map(|s| Series {
                    labels: s.labels.clone(),
                    values: s
                        .windows
                        .iter()
                        .map(|w| {
                            let (ts, v) = w.as_ref()?.last;
                            Some(if timestamps { ts as f64 / 1000.0 } else { v })
                        })
                        .collect(),
                })
                .collect();
        }
        self.series_of(vs)
            .iter()
            .filter_map(|raw| {
                let values: Vec<Option<f64>> = self
                    .steps
                    .times()
                    .map(|t| {
                        let at = self.read_time(vs, t);
                        let end = raw.samples.partition_point(|s| s.0 <= at);
                        let &(ts, v) = raw.samples[..end].last()?;
                        (ts >= at.saturating_sub(LOOKBACK_MS)).then_some(if timestamps {
                            ts as f64 / 1000.0
                        } else {
                            v
                        })
                    })
                    .collect();
                values.iter().any(Option::is_some).then(|| Series {
                    labels: raw.labels.clone(),
                    values,
                })
            })
            .collect()
    }

    /// The samples of each series in the window of the query's only step (instant queries).
    fn matrix(&self, ms: &MatrixSelector) -> Vec<RawSeries> {
        let at = self.read_time(&ms.vs, self.steps.start);
        let range = millis(ms.range);
        self.series_of(&ms.vs)
            .iter()
            .filter_map(|raw| {
                let samples = window(&raw.samples, at.saturating_sub(range), at).to_vec();
                (!samples.is_empty()).then(|| RawSeries {
                    labels: raw.labels.clone(),
                    samples,
                })
            })
            .collect()
    }

    fn call(&self, call: &Call) -> Result<Value, EvalError> {
        let name = call.func.name;
        let args = &call.args.args;
        let arg = |i: usize| -> Result<&Expr, EvalError> {
            args.get(i)
                .map(|a| a.as_ref())
                .ok_or_else(|| EvalError::BadData(format!("{name}(): missing argument {}", i + 1)))
        };
        let steps = self.steps.len();
        match name {
            "rate" | "irate" | "increase" | "delta" | "idelta" | "avg_over_time"
            | "sum_over_time" | "min_over_time" | "max_over_time" | "count_over_time"
            | "last_over_time" => self.range_function(name, matrix_arg(arg(0)?)?, None),
            "quantile_over_time" => {
                let q = self.scalar_of(arg(0)?)?;
                self.range_function(name, matrix_arg(arg(1)?)?, Some(q))
            }
            "abs" | "ceil" | "floor" => {
                let f: fn(f64) -> f64 = match name {
                    "abs" => f64::abs,
                    "ceil" => f64::ceil,
                    _ => f64::floor,
                };
                self.map_vector(arg(0)?, |v, _| f(v))
            }
            "round" => {
                let to = match args.get(1) {
                    Some(a) => self.scalar_of(a)?,
                    None => self.scalar(1.0),
                };
                self.map_vector(arg(0)?, |v, i| math::round_to(v, to[i]))
            }
            "clamp_min" | "clamp_max" => {
                let bound = self.scalar_of(arg(1)?)?;
                let min = name == "clamp_min";
                self.map_vector(arg(0)?, |v, i| {
                    if min {
                        math::go_max(v, bound[i])
                    } else {
                        math::go_min(v, bound[i])
                    }
                })
            }
            "label_replace" => self.label_replace(
                arg(0)?,
                &Self::string_of(arg(1)?)?,
                &Self::string_of(arg(2)?)?,
                &Self::string_of(arg(3)?)?,
                &Self::string_of(arg(4)?)?,
            ),
            "vector" => Ok(Value::Vector(vec![Series {
                labels: Labels::default(),
                values: self.scalar_of(arg(0)?)?.into_iter().map(Some).collect(),
            }])),
            "scalar" => {
                let series = self.vector(arg(0)?)?;
                Ok(Value::Scalar(
                    (0..steps)
                        .map(|i| {
                            let mut present = series.iter().filter_map(|s| s.values[i]);
                            match (present.next(), present.next()) {
                                (Some(v), None) => v,
                                _ => f64::NAN,
                            }
                        })
                        .collect(),
                ))
            }
            "time" => Ok(Value::Scalar(
                self.steps.times().map(|t| t as f64 / 1000.0).collect(),
            )),
            "timestamp" => {
                let series = match strip_parens(arg(0)?) {
                    Expr::VectorSelector(vs) => self.instant_selector(vs, true),
                    other => self
                        .vector(other)?
                        .into_iter()
                        .map(|s| Series {
                            values: s
                                .values
                                .iter()
                                .enumerate()
                                .map(|(i, v)| v.map(|_| self.steps.at(i) as f64 / 1000.0))
                                .collect(),
                            labels: s.labels,
                        })
                        .collect(),
                };
                let mut out = VectorBuilder::new(steps);
                for s in series {
                    out.merge(s.labels.without_name(), s.values)?;
                }
                Ok(Value::Vector(out.finish()))
            }
            "absent" => {
                let series = self.vector(arg(0)?)?;
                let values: Vec<Option<f64>> = (0..steps)
                    .map(|i| series.iter().all(|s| s.values[i].is_none()).then_some(1.0))
                    .collect();
                let labels = match strip_parens(arg(0)?) {
                    Expr::VectorSelector(vs) => absent_labels(vs),
                    _ => Labels::default(),
                };
                let mut out = VectorBuilder::new(steps);
                out.merge(labels, values)?;
                Ok(Value::Vector(out.finish()))
            }
            "histogram_quantile" => {
                let q = self.scalar_of(arg(0)?)?;
                self.histogram_quantile(&q, self.vector(arg(1)?)?)
            }
            other => Err(unsupported(format!("function {other}()"))),
        }
    }

    /// A function of each series' values (and the step), which drops the metric name.
    fn map_vector(&self, expr: &Expr, f: impl Fn(f64, usize) -> f64) -> Result<Value, EvalError> {
        let mut out = VectorBuilder::new(self.steps.len());
        for s in self.vector(expr)? {
            let values = s
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| v.map(|x| f(x, i)))
                .collect();
            out.merge(s.labels.without_name(), values)?;
        }
        Ok(Value::Vector(out.finish()))
    }

    /// A function over each series' samples in the window of every step.
    fn range_function(
        &self,
        name: &str,
        ms: &MatrixSelector,
        q: Option<Vec<f64>>,
    ) -> Result<Value, EvalError> {
        let range = millis(ms.range);
        let range_secs = ms.range.as_secs_f64();
        let mut out = VectorBuilder::new(self.steps.len());
        let keep_name = name == "last_over_time";
        if let Some(windows) = self.windows_of(&ms.vs) {
            // Read over the window of each step.
            for s in windows {
                let values = self
                    .steps
                    .times()
                    .zip(&s.windows)
                    .map(|(t, w)| {
                        let Some(w) = w else { return Ok(None) };
                        let end = self.read_time(&ms.vs, t);
                        let start = end.saturating_sub(range);
                        math::folded_value(name, w, start, end, range_secs).ok_or_else(|| {
                            EvalError::Execution(format!(
                                "{name}() cannot be computed from folded samples"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let labels = if keep_name {
                    s.labels.clone()
                } else {
                    s.labels.without_name()
                };
                out.merge(labels, values)?;
            }
            return Ok(Value::Vector(out.finish()));
        }
        for raw in self.series_of(&ms.vs) {
            let values: Vec<Option<f64>> = self
                .steps
                .times()
                .enumerate()
                .map(|(i, t)| {
                    let end = self.read_time(&ms.vs, t);
                    let start = end.saturating_sub(range);
                    let w = window(&raw.samples, start, end);
                    let values = || w.iter().map(|s| s.1);
                    match name {
                        "rate" => math::extrapolated_rate(w, start, end, range_secs, true, true),
                        "increase" => {
                            math::extrapolated_rate(w, start, end, range_secs, true, false)
                        }
                        "delta" => math::extrapolated_rate(w, start, end, range_secs, false, false),
                        "irate" => math::instant_value(w, true),
                        "idelta" => math::instant_value(w, false),
                        _ if w.is_empty() => None,
                        "avg_over_time" => Some(math::incremental_mean(values())),
                        "sum_over_time" => Some(math::kahan_sum(values())),
                        "count_over_time" => Some(w.len() as f64),
                        "last_over_time" => w.last().map(|s| s.1),
                        "min_over_time" => {
                            values().reduce(|m, v| if v < m || m.is_nan() { v } else { m })
                        }
                        "max_over_time" => {
                            values().reduce(|m, v| if v > m || m.is_nan() { v } else { m })
                        }
                        _ => {
                            let q = q.as_ref().map_or(f64::NAN, |q| q[i]);
                            Some(math::quantile(q, &mut values().collect::<Vec<_>>()))
                        }
                    }
                })
                .collect();
            let labels = if keep_name {
                raw.labels.clone()
            } else {
                raw.labels.without_name()
            };
            out.merge(labels, values)?;
        }
        Ok(Value::Vector(out.finish()))
    }

    fn label_replace(
        &self,
        expr: &Expr,
        dst: &str,
        replacement: &str,
        src: &str,
        pattern: &str,
    ) -> Result<Value, EvalError> {
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            EvalError::BadData(format!(
                "invalid regular expression in label_replace(): {pattern}: {e}"
            ))
        })?;
        if !is_label_name(dst) {
            return Err(EvalError::BadData(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut out = VectorBuilder::new(self.steps.len());
        for s in self.vector(expr)? {
            let mut labels = s.labels;
            if let Some(captures) = regex.captures(labels.get(src)) {
                let mut value = String::new();
                captures.expand(replacement, &mut value);
                labels.set(dst, &value);
            }
            out.merge(labels, s.values)?;
        }
        Ok(Value::Vector(out.finish()))
    }

    fn histogram_quantile(&self, q: &[f64], series: Vec<Series>) -> Result<Value, EvalError> {
        // Buckets by their series' labels without `le` and the name; series without a readable `le`
        // are not buckets and are skipped, as Prometheus skips them.
        let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for (i, s) in series.iter().enumerate() {
            let Some(bound) = parse_go_float(s.labels.get("le")) else {
                continue;
            };
            let key = s.labels.without(&["le".to_owned()]);
            let g = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push((bound, i));
        }
        let mut out = VectorBuilder::new(self.steps.len());
        for (labels, buckets) in groups {
            for (step, &q) in q.iter().enumerate() {
                let mut present: Vec<(f64, f64)> = buckets
                    .iter()
                    .filter_map(|&(bound, i)| series[i].values[step].map(|count| (bound, count)))
                    .collect();
                if present.is_empty() {
                    continue;
                }
                out.push(&labels, step, math::bucket_quantile(q, &mut present))?;
            }
        }
        Ok(Value::Vector(out.finish()))
    }
}

/// The samples of `samples` (ascending) with `start <= t <= end`.
pub(crate) fn window(samples: &[(i64, f64)], start: i64, end: i64) -> &[(i64, f64)] {
    let from = samples.partition_point(|s| s.0 < start);
    let to = samples.partition_point(|s| s.0 <= end);
    &samples[from..to.max(from)]
}

fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

fn matrix_arg(expr: &Expr) -> Result<&MatrixSelector, EvalError> {
    match strip_parens(expr) {
        Expr::MatrixSelector(ms) => Ok(ms),
        Expr::Subquery(_) => Err(unsupported("subqueries")),
        other => Err(EvalError::BadData(format!(
            "expected a range vector selector: {other}"
        ))),
    }
}

/// The labels `absent()` of a selector gives: its equality matchers but the name, a label matched
/// twice left out.
fn absent_labels(vs: &VectorSelector) -> Labels {
    let eq: Vec<(String, String)> = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| matches!(m.op, MatchOp::Equal) && m.name != METRIC_NAME)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    Labels::from_pairs(
        eq.iter()
            .filter(|(k, _)| eq.iter().filter(|(other, _)| other == k).count() == 1)
            .cloned(),
    )
}

/// A float as Go's `strconv.ParseFloat` reads it (`+Inf`, `-Inf`, `NaN` included).
pub(crate) fn parse_go_float(text: &str) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    text.parse::<f64>().ok()
}

/// A valid Prometheus label name.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The value `count_values` writes into its label.
pub(crate) fn value_label(v: f64) -> String {
    format_float(v)
}
