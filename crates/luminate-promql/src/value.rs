//! What an expression evaluates to over the steps of a query: a scalar per step, a vector of series
//! with one optional value per step, or a string. An instant query is a range query of one step.

use std::fmt::Write as _;

use crate::labels::Labels;

/// Times at which an expression is evaluated, Unix ms, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    /// First evaluation time.
    pub start: i64,
    /// Last evaluation time (`start` for an instant query).
    pub end: i64,
    /// Distance between steps (ignored when `start == end`).
    pub step: i64,
}

impl Steps {
    /// One evaluation at `t`.
    pub fn instant(t: i64) -> Self {
        Self {
            start: t,
            end: t,
            step: 1,
        }
    }

    /// Number of evaluation times.
    pub fn len(&self) -> usize {
        usize::try_from((self.end - self.start) / self.step.max(1)).unwrap_or(0) + 1
    }

    /// Always false: a query has at least one step.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The evaluation time of step `i`.
    pub fn at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Every evaluation time.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(|i| self.at(i))
    }
}

/// One series of an instant vector over the steps: `values[i]` is its value at step `i`, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its labels.
    pub labels: Labels,
    /// One slot per step.
    pub values: Vec<Option<f64>>,
}

/// The value of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number per step.
    Scalar(Vec<f64>),
    /// Series with a value at some steps.
    Vector(Vec<Series>),
    /// A string literal.
    String(String),
    /// A range selector's raw samples at the one step of an instant query.
    Matrix(Vec<crate::select::RawSeries>),
}

/// Gathers output series by labels; two values for the same labels at the same step are the error
/// Prometheus gives (`vector cannot contain metrics with the same labelset`).
#[derive(Debug)]
pub(crate) struct VectorBuilder {
    steps: usize,
    series: std::collections::BTreeMap<Labels, Vec<Option<f64>>>,
}

impl VectorBuilder {
    pub(crate) fn new(steps: usize) -> Self {
        Self {
            steps,
            series: std::collections::BTreeMap::new(),
        }
    }

    /// Adds `value` at `step` to the series `labels`.
    pub(crate) fn push(
        &mut self,
        labels: &Labels,
        step: usize,
        value: f64,
    ) -> Result<(), crate::error::EvalError> {
        let slot = match self.series.get_mut(labels) {
            Some(values) => &mut values[step],
            None => &mut self
                .series
                .entry(labels.clone())
                .or_insert_with(|| vec![None; self.steps])[step],
        };
        if slot.is_some() {
            return Err(duplicate_labelset());
        }
        *slot = Some(value);
        Ok(())
    }

    /// Adds a whole series (nothing when it has no value).
    pub(crate) fn merge(
        &mut self,
        labels: Labels,
        values: Vec<Option<f64>>,
    ) -> Result<(), crate::error::EvalError> {
        if values.iter().all(Option::is_none) {
            return Ok(());
        }
        match self.series.entry(labels) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(values);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                for (slot, v) in e.get_mut().iter_mut().zip(values) {
                    if v.is_some() {
                        if slot.is_some() {
                            return Err(duplicate_labelset());
                        }
                        *slot = v;
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<Series> {
        self.series
            .into_iter()
            .map(|(labels, values)| Series { labels, values })
            .collect()
    }
}

fn duplicate_labelset() -> crate::error::EvalError {
    crate::error::EvalError::Execution(
        "vector cannot contain metrics with the same labelset".to_owned(),
    )
}

/// A float as Prometheus writes it: the shortest representation that reads back the same, without an
/// exponent (Go's `strconv.FormatFloat(v, 'f', -1, 64)`), and `+Inf`, `-Inf`, `NaN`.
pub fn format_float(v: f64) -> String {
    let mut out = String::new();
    push_float(&mut out, v);
    out
}

/// Appends `v` as [`format_float`] writes it, without a string of its own: an answer writes a
/// million of them.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v != 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        // A whole number (counts, counters) below 2^53 is its integer's digits (every shorter string
        // of digits reads back as another number), and an integer is written without the float's
        // shortest-digits search. Zero takes the float's way: `-0` keeps its sign.
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A timestamp in ms as Prometheus' API writes it: seconds with up to three decimals, no trailing zeros.
pub fn format_timestamp(ms: i64) -> String {
    let mut out = String::new();
    push_timestamp(&mut out, ms);
    out
}

/// Appends `ms` as [`format_timestamp`] writes it.
pub fn push_timestamp(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let (secs, millis) = (ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
    let _ = write!(out, "{secs}");
    if millis != 0 {
        let mut frac = millis;
        let mut digits = 3;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_timestamps_are_written_as_prometheus_writes_them() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(-2.5e-7), "-0.00000025");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
        assert_eq!(format_float(f64::NAN), "NaN");
        assert_eq!(format_timestamp(1_700_000_000_000), "1700000000");
        assert_eq!(format_timestamp(1_700_000_000_500), "1700000000.5");
        assert_eq!(format_timestamp(4_010), "4.01");
        assert_eq!(format_timestamp(-1), "-0.001");
        assert_eq!(format_timestamp(-1_500), "-1.5");
        assert_eq!(format_timestamp(0), "0");
    }

    #[test]
    fn a_float_appended_is_written_as_rusts_shortest_display_writes_it() {
        // Whole numbers take the integer's way; each must equal the float's own display.
        let mut edge = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            67_603.0,
            0.5,
            -7.25,
            1e17,
            -1e17,
            999_999_999_999_999_900.0,
            1e18,
            -1e18,
            1e21,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            4_503_599_627_370_497.0,
        ];
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            edge.push(f64::from_bits(x));
            edge.push((x % 1_000_000_007) as f64 * if x & 1 == 1 { -1.0 } else { 1.0 });
        }
        for v in edge.into_iter().filter(|v| v.is_finite()) {
            assert_eq!(format_float(v), format!("{v}"), "{v:e}");
        }
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float(-0.0), "-0");
    }

    #[test]
    fn steps_include_the_end_when_it_falls_on_a_step() {
        let s = Steps {
            start: 0,
            end: 60_000,
            step: 15_000,
        };
        assert_eq!(
            s.times().collect::<Vec<_>>(),
            [0, 15_000, 30_000, 45_000, 60_000]
        );
        assert_eq!(Steps::instant(7).len(), 1);
        let s = Steps {
            start: 0,
            end: 59_000,
            step: 15_000,
        };
        assert_eq!(s.len(), 4);
    }
}
