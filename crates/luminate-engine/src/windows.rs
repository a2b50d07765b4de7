//! [`Engine::series_windows`]: each selected series' points in a window, folded as they are read
//! (`exec::windows`), for PromQL over dense metrics. Kept beside the facade rather than in it: the
//! phases and locks are those of [`Engine::query`].

use luminate_model::query::QueryKind;
use luminate_model::window::{
    GROUP_STEP_BYTES, GROUPED_WINDOW_BYTES_PER_SERIES, GroupedValue, GroupedWindows,
    SERIES_DIMENSIONS_BYTES, SeriesWindow, SeriesWindows, WINDOW_BYTES, WindowRequest, WindowSteps,
};
use luminate_model::{Dimensions, QueryContext, QueryPlan, StoreError, Tenant};

use crate::query::snapshot_sources;
use crate::{Engine, EngineError, exec};

/// The query plan whose selection a window request over `span` reads: per-series positions, grouped
/// by `group_by`.
fn plan_of(request: &WindowRequest, (start, end): (i64, i64), group_by: &[String]) -> QueryPlan {
    QueryPlan {
        kind: QueryKind::Rate,
        metric: request.metric.clone(),
        start,
        end: end.saturating_add(1),
        filters: request.filters.clone(),
        group_by: group_by.to_vec(),
        interval_ms: Some(1),
        limit: request.limit,
        timeout: request.timeout,
    }
}

impl Engine {
    /// Each series of `request.metric` passing its filters with a point in a window of `steps`, with
    /// its points in each step's window folded (`luminate_model::window`; `None` for a step without
    /// any), sorted by dimensions; the request's `start` and `end` are ignored. `QueryTooLarge` past
    /// `request.limit` series. `None` when a part is damaged: the caller reads points (through
    /// [`Engine::query`], which sets damaged parts aside).
    pub fn series_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        ctx: &QueryContext,
    ) -> Result<SeriesWindows, EngineError> {
        self.folded(
            tenant,
            request,
            steps,
            &[],
            ctx,
            |prepared, head, sources| {
                exec::windows::fold(prepared, head, sources, steps, ctx, &self.query_pool)
            },
            |prepared, windows, ti| {
                let series = exec::windows::selected(prepared);
                let found: Vec<(usize, Vec<Option<SeriesWindow>>)> = windows
                    .slots
                    .chunks(steps.count.max(1))
                    .enumerate()
                    .filter(|(_, w)| w.iter().any(Option::is_some))
                    .map(|(position, w)| (position, w.to_vec()))
                    .collect();
                if found.len() > request.limit {
                    return Err(too_many(found.len(), "series", request.limit));
                }
                let mut out: Vec<(Dimensions, _)> = found
                    .into_iter()
                    .map(|(position, w)| {
                        let id = series[position];
                        (
                            ti.map(|ti| ti.series(id).dimensions()).unwrap_or_default(),
                            w,
                        )
                    })
                    .collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(out)
            },
        )
    }

    /// [`Engine::series_windows`] grouped by `group_by`, with a window per step of `steps` (the
    /// request's `start` and `end` are ignored): per group (ordered by its values), the moments of
    /// `value` (its count and moment) over its series' windows at each step. `QueryTooLarge` past
    /// `request.limit` groups.
    pub fn grouped_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        group_by: &[String],
        value: &GroupedValue,
        ctx: &QueryContext,
    ) -> Result<GroupedWindows, EngineError> {
        let pool = &self.query_pool;
        self.folded(
            tenant,
            request,
            steps,
            group_by,
            ctx,
            |prepared, head, sources| {
                exec::windows::fold_grouped(prepared, head, sources, steps, ctx, pool, value)
            },
            |prepared, grouped, ti| {
                let groups = exec::windows::group(prepared, grouped, ti, pool);
                if groups.len() > request.limit {
                    return Err(too_many(groups.len(), "groups", request.limit));
                }
                Ok(groups)
            },
        )
    }

    /// Selects the request's series (grouped by `group_by`), gathers their head rows in the span of
    /// `steps`, has `fold` fold them with the parts, and hands what it folded to `finish` under the
    /// index lock; `None` when a part is damaged.
    #[allow(clippy::too_many_arguments)]
    fn folded<W: Default, R>(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: &WindowSteps,
        group_by: &[String],
        ctx: &QueryContext,
        fold: impl FnOnce(
            &exec::Prepared<'_>,
            exec::head_runs::HeadRuns,
            &[exec::Source<'_>],
        ) -> Result<W, StoreError>,
        finish: impl FnOnce(
            &exec::Prepared<'_>,
            W,
            Option<&crate::index::TenantIndex>,
        ) -> Result<R, EngineError>,
    ) -> Result<Option<R>, EngineError> {
        let span = steps.span();
        let plan = plan_of(request, span, group_by);
        let index = self.shared.read_index();
        let prepared = exec::prepare(index.tenant(tenant), &plan, ctx, &self.query_pool)?;
        let Some(m) = prepared.metric() else {
            drop(index);
            let index = self.shared.read_index();
            return finish(&prepared, Default::default(), index.tenant(tenant)).map(Some);
        };
        let head = self.shared.read_head();
        let stored = self.shared.read_stored();
        drop(index);
        let sources = snapshot_sources(&stored, tenant, m, &request.metric);
        let runs = {
            // The active head's chunks, then the frozen head's (in `sources`).
            let mut chunks: Vec<_> = head
                .rows(tenant, m)
                .into_iter()
                .map(|r| (r, None))
                .collect();
            chunks.extend(sources.iter().filter_map(|s| match *s {
                exec::Source::Rows { rows, floor } => Some((rows, floor)),
                exec::Source::Part { .. } => None,
            }));
            exec::head_runs::HeadRuns::gather(&prepared, &chunks, span, ctx, &self.query_pool)?
        };
        drop(head);
        let runs = runs.sort(&self.query_pool);
        let windows = match fold(&prepared, runs, &sources) {
            Ok(w) => w,
            Err(StoreError::Internal { message }) if message.contains("corruption in ") => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        ctx.check()?;
        let index = self.shared.read_index();
        finish(&prepared, windows, index.tenant(tenant)).map(Some)
    }

    /// An estimate, in bytes, of what [`Engine::series_windows`] over `steps` steps (or
    /// [`Engine::grouped_windows`], with `group_by`) holds for `request` (its `start` and `end`: the
    /// steps' span), from the index (no row read): per selected series its dimensions and a window per
    /// step; grouped, the groups' moments at each step and the windows of a wave of slices
    /// (`exec::windows::fold_grouped`).
    pub fn series_windows_memory(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        steps: usize,
        group_by: Option<&[String]>,
    ) -> u64 {
        let plan = plan_of(
            request,
            (request.start, request.end),
            group_by.unwrap_or(&[]),
        );
        let selected = exec::estimate::Selected::of(self.shared.read_index().tenant(tenant), &plan);
        let steps = steps.max(1) as u64;
        let held = match group_by {
            Some(_) => {
                let windows = (exec::windows::SLICE_WINDOWS as u64)
                    .saturating_mul(self.query_pool.current_num_threads().max(1) as u64)
                    .min(selected.series().saturating_mul(steps));
                GROUP_STEP_BYTES
                    .saturating_mul(steps)
                    .saturating_mul(selected.groups())
                    .saturating_add(GROUPED_WINDOW_BYTES_PER_SERIES.saturating_mul(windows))
            }
            None => WINDOW_BYTES
                .saturating_mul(steps)
                .saturating_add(SERIES_DIMENSIONS_BYTES)
                .saturating_mul(selected.series().min(request.limit as u64)),
        };
        luminate_model::memory::QUERY_OVERHEAD_BYTES.saturating_add(held)
    }
}

fn too_many(found: usize, what: &str, limit: usize) -> EngineError {
    EngineError::Query(StoreError::QueryTooLarge {
        message: format!(
            "the selector's window holds {found} {what}, more than {limit} (narrow it with label \
             matchers)"
        ),
    })
}
