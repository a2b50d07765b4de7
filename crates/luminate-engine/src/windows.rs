//! [`Engine::series_windows`]: each selected series' points in a window, folded as they are read
//! (`exec::windows`), for PromQL over dense metrics. Kept beside the facade rather than in it: the
//! phases and locks are those of [`Engine::query`].

use luminate_model::query::QueryKind;
use luminate_model::window::{SeriesWindows, WINDOW_BYTES_PER_SERIES, WindowRequest};
use luminate_model::{Dimensions, QueryContext, QueryPlan, StoreError, Tenant};

use crate::{Engine, EngineError, exec, snapshot_sources};

/// The query plan whose selection a window request reads: per-series positions, no groups.
fn plan_of(request: &WindowRequest) -> QueryPlan {
    QueryPlan {
        kind: QueryKind::Rate,
        metric: request.metric.clone(),
        start: request.start,
        end: request.end.saturating_add(1),
        filters: request.filters.clone(),
        group_by: Vec::new(),
        interval_ms: Some(1),
        limit: request.limit,
        timeout: request.timeout,
    }
}

impl Engine {
    /// Each series of `request.metric` passing its filters with a point in `[start, end]`, with its
    /// points there folded into a window (`luminate_model::window`), sorted by dimensions.
    /// `QueryTooLarge` past `request.limit` series. `None` when a series' points overlap in time
    /// across the head and parts, or a part is damaged: the caller reads points (through
    /// [`Engine::query`], which sets damaged parts aside).
    pub fn series_windows(
        &self,
        tenant: &Tenant,
        request: &WindowRequest,
        ctx: &QueryContext,
    ) -> Result<SeriesWindows, EngineError> {
        let plan = plan_of(request);
        let span = (request.start, request.end);
        let index = self.shared.read_index();
        let prepared = exec::prepare(index.tenant(tenant), &plan, ctx, &self.query_pool)?;
        let Some(m) = prepared.metric() else {
            return Ok(Some(Vec::new()));
        };
        let mut rows = Vec::new();
        let stored = {
            let head = self.shared.read_head();
            let stored = self.shared.read_stored();
            drop(index);
            for chunk in head.rows(tenant, m) {
                exec::windows::copy_rows(&prepared, &chunk, None, span, ctx, &mut rows)?;
            }
            stored
        };
        let sources = snapshot_sources(&stored, tenant, m, &request.metric);
        for source in &sources {
            if let exec::Source::Rows { rows: chunk, floor } = source {
                exec::windows::copy_rows(&prepared, chunk, *floor, span, ctx, &mut rows)?;
            }
        }
        let windows =
            match exec::windows::fold(&prepared, rows, &sources, span, ctx, &self.query_pool) {
                Ok(w) => w,
                Err(StoreError::Internal { message }) if message.contains("corruption in ") => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
        if windows.unordered {
            return Ok(None);
        }
        let found = windows.slots.iter().flatten().count();
        if found > request.limit {
            return Err(EngineError::Query(StoreError::QueryTooLarge {
                message: format!(
                    "the selector matches {found} series with points in its window, more than \
                     {} (narrow it with label matchers)",
                    request.limit
                ),
            }));
        }
        ctx.check()?;
        let index = self.shared.read_index();
        let ti = index.tenant(tenant);
        let series = exec::windows::selected(&prepared);
        let mut out: Vec<(Dimensions, _)> = windows
            .slots
            .into_iter()
            .zip(series)
            .filter_map(|(w, &id)| {
                Some((
                    ti.map(|ti| ti.series(id).dimensions()).unwrap_or_default(),
                    w?,
                ))
            })
            .collect();
        drop(index);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(out))
    }

    /// An estimate, in bytes, of what [`Engine::series_windows`] holds for `request`: a window and
    /// its dimensions per selected series (from the index, no row read), at most `request.limit`.
    pub fn series_windows_memory(&self, tenant: &Tenant, request: &WindowRequest) -> u64 {
        let plan = plan_of(request);
        let selected = exec::estimate::Selected::of(self.shared.read_index().tenant(tenant), &plan);
        luminate_model::memory::QUERY_OVERHEAD_BYTES.saturating_add(
            WINDOW_BYTES_PER_SERIES.saturating_mul(selected.series().min(request.limit as u64)),
        )
    }
}
