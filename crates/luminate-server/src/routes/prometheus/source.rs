//! The [`SeriesSource`] of one request: the tenant's store under the query's context. Each read of
//! points, and each pushed-down aggregation, first reserves what the store expects it to hold from the server's query memory budget, as
//! the JSON API's queries do; the reservations travel in the context and are released when the query's
//! work has stopped.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use luminate_model::result::RangePoint;
use luminate_model::window::{
    GroupedValue, GroupedWindows, SeriesWindows, WindowRequest, WindowSteps,
};
use luminate_model::{
    Aggregation, Filter, QueryContext, QueryKind, QueryPlan, QueryResult, StoreError, Tenant,
};
use luminate_promql::{EvalError, SeriesSource};

use crate::app::AppState;
use crate::error::ApiError;
use crate::query_memory::Reservation;

/// A tenant's store as PromQL reads it.
pub(super) struct StoreSource<'a> {
    pub state: &'a AppState,
    pub tenant: &'a Tenant,
    pub ctx: QueryContext,
    /// The memory reserved by this request's reads so far.
    pub reservations: Arc<Mutex<Vec<Reservation>>>,
}

fn refused(e: ApiError) -> EvalError {
    if e.status().is_client_error() {
        EvalError::Store(StoreError::QueryTooLarge { message: e.message })
    } else {
        EvalError::Store(StoreError::Unavailable { reason: e.message })
    }
}

#[async_trait]
impl SeriesSource for StoreSource<'_> {
    async fn metric_names(&self) -> Result<Vec<String>, EvalError> {
        self.ctx.check()?;
        Ok(self.state.store.metric_names(self.tenant).await?)
    }

    async fn label_values(
        &self,
        metric: &str,
        key: &str,
        limit: usize,
    ) -> Result<Option<Vec<String>>, EvalError> {
        self.ctx.check()?;
        let listed = self
            .state
            .store
            .dimension_values(self.tenant, metric, key, "", limit)
            .await?;
        Ok(listed.map(|values| values.into_iter().map(|v| v.value).collect()))
    }

    async fn aggregate(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        group_by: Vec<String>,
        aggregation: Aggregation,
        (start, end): (i64, i64),
        limit: usize,
    ) -> Result<Option<Vec<(Vec<(String, String)>, f64)>>, EvalError> {
        let plan = QueryPlan {
            kind: QueryKind::Aggregate(aggregation),
            metric: metric.to_owned(),
            start: start.max(luminate_model::time::MIN_TIMESTAMP),
            end: end.saturating_add(1),
            filters,
            group_by,
            interval_ms: None,
            limit,
            timeout: self.ctx.remaining(),
        };
        if plan.start >= plan.end {
            return Ok(Some(Vec::new()));
        }
        match self.run(&plan).await? {
            QueryResult::Aggregate {
                truncated: true, ..
            } => Ok(None),
            QueryResult::Aggregate { results, .. } => Ok(Some(
                results
                    .into_iter()
                    .map(|g| (g.group_key.0, g.value))
                    .collect(),
            )),
            other => Err(unexpected(&other)),
        }
    }

    async fn points(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<(Vec<RangePoint>, bool), EvalError> {
        let plan = QueryPlan {
            kind: QueryKind::Range,
            metric: metric.to_owned(),
            start: start.max(luminate_model::time::MIN_TIMESTAMP),
            // The plan's end is exclusive; a selector's is inclusive.
            end: end.saturating_add(1),
            filters,
            group_by: Vec::new(),
            interval_ms: None,
            limit: limit.max(1),
            timeout: self.ctx.remaining(),
        };
        if plan.start >= plan.end {
            return Ok((Vec::new(), false));
        }
        match self.run(&plan).await? {
            QueryResult::Range { results, truncated } => Ok((results, truncated)),
            other => Err(unexpected(&other)),
        }
    }

    async fn windows(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        steps: WindowSteps,
        limit: usize,
    ) -> Result<SeriesWindows, EvalError> {
        let Some(request) = self.window_request(metric, filters, steps.span(), limit)? else {
            return Ok(Some(Vec::new()));
        };
        let estimate = self
            .state
            .store
            .series_windows_memory(self.tenant, &request, steps.count, None)
            .await?;
        // Windows per series and step: past a quarter of the budget, a range query reads points
        // (or its steps one by one) instead.
        if steps.count > 1 && estimate > self.state.config.query_limits.memory_budget_bytes / 4 {
            return Ok(None);
        }
        self.reserve(estimate).await?;
        match self
            .state
            .store
            .series_windows(self.tenant, &request, &steps, &self.ctx)
            .await
        {
            // More series than the steps' windows may hold: a range query reads points instead,
            // which may be fewer.
            Err(StoreError::QueryTooLarge { .. }) if steps.count > 1 => Ok(None),
            other => Ok(other?),
        }
    }

    async fn grouped_windows(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        steps: WindowSteps,
        group_by: Vec<String>,
        value: GroupedValue,
        limit: usize,
    ) -> Result<GroupedWindows, EvalError> {
        let Some(request) = self.window_request(metric, filters, steps.span(), limit)? else {
            return Ok(Some(Vec::new()));
        };
        let estimate = self
            .state
            .store
            .series_windows_memory(self.tenant, &request, steps.count, Some(&group_by))
            .await?;
        // A window per series and step: past a quarter of the budget, the steps are read one by
        // one instead (the evaluator's step-by-step range query), each far smaller.
        if steps.count > 1 && estimate > self.state.config.query_limits.memory_budget_bytes / 4 {
            return Ok(None);
        }
        self.reserve(estimate).await?;
        Ok(self
            .state
            .store
            .grouped_windows(self.tenant, &request, &steps, &group_by, value, &self.ctx)
            .await?)
    }

    fn reads_done(&self) {
        self.reservations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn unexpected(result: &QueryResult) -> EvalError {
    EvalError::Store(StoreError::Internal {
        message: format!("the store answered a {} result", result.query_type()),
    })
}

impl StoreSource<'_> {
    /// The store's request for a fold of `metric`'s points in `[start, end]` under this query's
    /// deadline; `None` when the window is empty.
    fn window_request(
        &self,
        metric: &str,
        filters: Vec<Filter>,
        (start, end): (i64, i64),
        limit: usize,
    ) -> Result<Option<WindowRequest>, EvalError> {
        self.ctx.check()?;
        Ok((start <= end).then(|| WindowRequest {
            metric: metric.to_owned(),
            filters,
            start: start.max(luminate_model::time::MIN_TIMESTAMP),
            end,
            limit,
            timeout: self.ctx.remaining(),
        }))
    }

    /// Reserves `estimate` bytes of the server's query memory budget until the query's work ends.
    async fn reserve(&self, estimate: u64) -> Result<(), EvalError> {
        let wait = self
            .state
            .config
            .query_limits
            .memory_wait
            .min(self.ctx.remaining());
        let reservation = self
            .state
            .query_memory
            .reserve(estimate, wait)
            .await
            .map_err(|r| refused(r.into()))?;
        self.reservations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reservation);
        Ok(())
    }

    /// Reserves the plan's memory (kept until the query's work ends), then runs it.
    async fn run(&self, plan: &QueryPlan) -> Result<QueryResult, EvalError> {
        self.ctx.check()?;
        let estimate = self.state.store.query_memory(self.tenant, plan).await?;
        self.reserve(estimate).await?;
        Ok(self.state.store.query(self.tenant, plan, &self.ctx).await?)
    }
}
