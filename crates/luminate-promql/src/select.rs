//! Reading a selector's raw series from a [`SeriesSource`]: the metric names its `__name__` matchers
//! select (regexes enumerate the tenant's metrics), and its label matchers pushed down as Luminate
//! filters — an equality as itself, any other matcher resolved against the label's stored values into an
//! any-of list (`""` among them when the matcher accepts a missing label) — so the index, not this
//! crate, narrows the series. Every matcher is then checked again on the series read, so a listing too
//! long to push down only costs speed, never correctness.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use luminate_model::result::RangePoint;

use luminate_model::window::{
    GroupedValue, GroupedWindows, SeriesWindow, SeriesWindows, WindowSteps,
};
use luminate_model::{Aggregation, Dimensions, Filter};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::VectorSelector;

use crate::error::EvalError;
use crate::labels::{Labels, METRIC_NAME};

/// Most values of a label resolved into one any-of filter; with more, the matcher is checked on the
/// series read only.
pub const MAX_PUSHED_VALUES: usize = 1_000;

/// Where selectors read: one tenant's metrics.
#[async_trait]
pub trait SeriesSource: Send + Sync {
    /// The metric names with stored points.
    async fn metric_names(&self) -> Result<Vec<String>, EvalError>;

    /// The stored values of `key` for `metric`, at most `limit` (`None` when the metric is unknown).
    async fn label_values(
        &self,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Option<Vec<String>>, EvalError>;

    /// One aggregation per group of `group_by` values (a missing dimension is `""`) over the points of
    /// `metric` passing `filters` with `start <= timestamp <= end`, as the engine's group-by computes
    /// it; `None` when there are more than `limit` groups.
    async fn aggregate(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        group_by: Vec<String>,
        aggregation: Aggregation,
        range: (i64, i64),
        limit: usize,
    ) -> Result<Option<Vec<(Vec<(String, String)>, f64)>>, EvalError>;

    /// The points of `metric` passing `filters` with `start <= timestamp <= end`, at most `limit`, and
    /// whether more matched.
    async fn points(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<(Vec<RangePoint>, bool), EvalError>;

    /// Each series of `metric` passing `filters` with a point in a window of `steps`, its points in
    /// each step's window folded (`luminate_model::window`; `None` for a step without any), at most
    /// `limit` series (more is [`EvalError::TooManySamples`]); `None` when the source cannot fold
    /// them (or not within its memory), and the caller reads points. Default: `None`.
    async fn windows(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        steps: WindowSteps,
        limit: usize,
    ) -> Result<SeriesWindows, EvalError> {
        let _ = (metric, filters, steps, limit);
        Ok(None)
    }

    /// Per group of `group_by` values (a missing dimension is `""`) and per window of `steps`, the
    /// count and the `value.moment` of `value.value` over the windows [`SeriesSource::windows`] would
    /// give, at most `limit` groups (more is an error); `None` when the source cannot fold them (or
    /// not within its memory). Default: `None`.
    async fn grouped_windows(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        steps: WindowSteps,
        group_by: Vec<String>,
        value: GroupedValue,
        limit: usize,
    ) -> Result<GroupedWindows, EvalError> {
        let _ = (metric, filters, steps, group_by, value, limit);
        Ok(None)
    }

    /// The reads so far are over and their answers taken: a source that holds something per read
    /// (the server's memory reservations) may release it. Called between the steps of a range query
    /// evaluated step by step. Default: nothing.
    fn reads_done(&self) {}
}

/// One series' samples in the window of each step, folded.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSeries {
    /// Its labels, `__name__` included.
    pub labels: Labels,
    /// Its samples in each step's window (`None`: none there).
    pub windows: Vec<Option<SeriesWindow>>,
}

/// One series' raw samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    /// Its labels, `__name__` included.
    pub labels: Labels,
    /// `(timestamp ms, value)`, ascending, one per timestamp.
    pub samples: Vec<(i64, f64)>,
}

/// The selector's matchers, its name included as a `__name__` equality.
pub fn matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let mut all = vs.matchers.matchers.clone();
    if let Some(name) = &vs.name {
        all.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
    }
    all
}

/// The series of `vs` with samples in `[start, end]`, reading at most `budget` samples (what is read is
/// taken from it).
pub async fn select(
    source: &dyn SeriesSource,
    vs: &VectorSelector,
    start: i64,
    end: i64,
    budget: &mut usize,
) -> Result<Vec<RawSeries>, EvalError> {
    let matchers = matchers(vs);
    let (names, labels): (Vec<&Matcher>, Vec<&Matcher>) =
        matchers.iter().partition(|m| m.name == METRIC_NAME);
    let metrics = metric_names(source, &names).await?;
    let mut out = Vec::new();
    for metric in metrics {
        let Some((filters, _)) = filters(source, &metric, &labels).await? else {
            continue;
        };
        let (points, truncated) = source.points(&metric, filters, start, end, *budget).await?;
        if truncated {
            return Err(EvalError::TooManySamples);
        }
        *budget -= points.len();
        let mut by_series: HashMap<Dimensions, Vec<(i64, f64)>> = HashMap::new();
        for p in points {
            by_series
                .entry(p.dimensions)
                .or_default()
                .push((p.timestamp, p.value));
        }
        for (dims, mut samples) in by_series {
            let labels = series_labels(&dims, &metric);
            if !matchers.iter().all(|m| m.is_match(labels.get(&m.name))) {
                continue;
            }
            samples.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            // One sample per timestamp, the greatest (Prometheus never stores two; a Luminate
            // series may hold two from its JSON API): the rule of the window fold,
            // `luminate_model::window`, so both reads answer alike.
            samples.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = later.1;
                }
                same
            });
            out.push(RawSeries { labels, samples });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// The series of `vs` with samples in a window of `steps`, each folded into a window per step, when
/// the source can fold every one of them (`None`: read points with [`select`]). A window counts as
/// one sample of `budget`.
pub async fn select_windows(
    source: &dyn SeriesSource,
    vs: &VectorSelector,
    steps: WindowSteps,
    budget: &mut usize,
) -> Result<Option<Vec<WindowSeries>>, EvalError> {
    let matchers = matchers(vs);
    let (names, labels): (Vec<&Matcher>, Vec<&Matcher>) =
        matchers.iter().partition(|m| m.name == METRIC_NAME);
    let mut out = Vec::new();
    let before = *budget;
    for metric in metric_names(source, &names).await? {
        let Some((filters, _)) = filters(source, &metric, &labels).await? else {
            continue;
        };
        let limit = *budget / steps.count.max(1);
        let Some(found) = source.windows(&metric, filters, steps, limit).await? else {
            *budget = before;
            return Ok(None);
        };
        let held = found.len().saturating_mul(steps.count.max(1));
        if held > *budget && steps.count > 1 {
            // A window per series and step is more than the points may be: read those.
            *budget = before;
            return Ok(None);
        }
        if held > *budget {
            return Err(EvalError::TooManySamples);
        }
        *budget -= held;
        for (dims, windows) in found {
            let labels = series_labels(&dims, &metric);
            if matchers.iter().all(|m| m.is_match(labels.get(&m.name))) {
                out.push(WindowSeries { labels, windows });
            }
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Some(out))
}

/// A stored series' labels: its dimensions and its metric as `__name__`.
fn series_labels(dims: &Dimensions, metric: &str) -> Labels {
    Labels::from_pairs(
        dims.pairs()
            .iter()
            .cloned()
            .chain([(METRIC_NAME.to_owned(), metric.to_owned())]),
    )
}

/// The metrics the `__name__` matchers accept: the one an equality names, else the tenant's metrics
/// that pass them all.
pub(crate) async fn metric_names(
    source: &dyn SeriesSource,
    matchers: &[&Matcher],
) -> Result<Vec<String>, EvalError> {
    if let Some(eq) = matchers.iter().find(|m| matches!(m.op, MatchOp::Equal)) {
        let name = eq.value.clone();
        return Ok(
            if matchers.iter().all(|m| m.is_match(&name)) && !name.is_empty() {
                vec![name]
            } else {
                Vec::new()
            },
        );
    }
    Ok(source
        .metric_names()
        .await?
        .into_iter()
        .filter(|name| matchers.iter().all(|m| m.is_match(name)))
        .collect())
}

/// The filters the label matchers push down for `metric`, and whether they are exactly the matchers
/// (false when a label had too many values to list); `None` when no series can match.
pub(crate) async fn filters(
    source: &dyn SeriesSource,
    metric: &str,
    matchers: &[&Matcher],
) -> Result<Option<(Vec<Filter>, bool)>, EvalError> {
    let mut exact = true;
    let mut by_key: BTreeMap<&str, Vec<&Matcher>> = BTreeMap::new();
    for m in matchers {
        by_key.entry(m.name.as_str()).or_default().push(m);
    }
    let mut filters = Vec::new();
    for (key, ms) in by_key {
        if let [m] = ms.as_slice()
            && matches!(m.op, MatchOp::Equal)
        {
            filters.push(Filter::equals(key, m.value.clone()));
            continue;
        }
        let Some(stored) = source
            .label_values(metric, key, MAX_PUSHED_VALUES + 1)
            .await?
        else {
            return Ok(None);
        };
        if stored.len() > MAX_PUSHED_VALUES {
            exact = false;
            continue;
        }
        let accepted: Vec<String> = stored
            .into_iter()
            .chain([String::new()])
            .filter(|v| ms.iter().all(|m| m.is_match(v)))
            .collect();
        if accepted.is_empty() {
            return Ok(None);
        }
        filters.push(Filter::any_of(key, accepted));
    }
    filters.sort_by(|a, b| a.key().cmp(b.key()));
    Ok(Some((filters, exact)))
}
