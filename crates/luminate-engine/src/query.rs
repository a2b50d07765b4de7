//! query: [`Engine::query`] and its memory estimate — which locks a query takes and in what order,
//! the snapshot it reads, the retry without a damaged part, and a percentile's top groups found through
//! bounds ([`crate::exec::bounds`]). What a query computes is `exec`'s.

use luminate_model::{QueryContext, QueryPlan, QueryResult, StoreError, Tenant};

use crate::error::EngineError;
use crate::quarantine::QuarantinedPart;
use crate::{Engine, contain, exec, index, stored};

impl Engine {
    /// Runs a query over the index, the head and the parts.
    ///
    /// The index lock is held while the plan's series and groups are resolved; the head lock only while
    /// its rows are scanned (taken before the index lock is released, so the query sees whole batches),
    /// and the snapshot of frozen head and parts is taken under it, so the query sees every point once.
    /// The snapshot is scanned after the head lock is released; the index lock is taken again to build
    /// the strings of the answer.
    ///
    /// A part found damaged on the way (a checksum mismatch or an undecodable blob) is set aside
    /// (`quarantine`) and the query runs again without it; the answer then carries, in `ctx`'s
    /// warnings, one line per quarantined part whose points it lacks — now and after restarts, until
    /// an operator removes the part's record from `quarantine/`.
    pub fn query(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, EngineError> {
        // Each retry sets at least one part aside; a bound keeps a damage that is not in a part
        // (which verification would not find again) from looping.
        const MAX_SET_ASIDE_RETRIES: usize = 8;
        let mut retries = 0;
        let result = loop {
            match self.query_once(tenant, plan, ctx) {
                Err(EngineError::Query(StoreError::Internal { message }))
                    if retries < MAX_SET_ASIDE_RETRIES && message.contains("corruption in ") =>
                {
                    retries += 1;
                    let set = contain::damaged_parts(&self.shared, tenant, &plan.metric)?;
                    if set.is_empty() && !self.has_quarantined(tenant, &plan.metric) {
                        return Err(EngineError::Query(StoreError::Internal { message }));
                    }
                }
                other => break other?,
            }
        };
        for r in self.shared.quarantined() {
            if r.overlaps(tenant, &plan.metric, plan.start, plan.end) {
                ctx.warn(r.warning());
            }
        }
        Ok(result)
    }

    /// Whether a part of (`tenant`, `metric`) is in quarantine (another query may have set aside the
    /// part this one met, between its scan and its verification).
    fn has_quarantined(&self, tenant: &Tenant, metric: &str) -> bool {
        self.shared
            .quarantined()
            .iter()
            .any(|r| r.tenant == tenant.as_str() && r.metric == metric)
    }

    /// The parts set aside in `quarantine/`, by file name.
    pub fn quarantined(&self) -> Vec<QuarantinedPart> {
        let mut all = self.shared.quarantined();
        all.sort_by(|a, b| a.file.cmp(&b.file));
        all
    }

    fn query_once(
        &self,
        tenant: &Tenant,
        plan: &QueryPlan,
        ctx: &QueryContext,
    ) -> Result<QueryResult, EngineError> {
        let max = exec::MAX_QUERY_VALUES;
        let index = self.shared.read_index();
        let prepared = exec::prepare(index.tenant(tenant), plan, ctx, &self.query_pool)?;
        // A percentile's top groups: each series' count and maximum first (`exec::bounds`).
        let phase_a = exec::bounds::phase_a_plan(plan);
        let per_series = phase_a
            .as_ref()
            .and_then(|p| prepared.per_series(p, index.tenant(tenant)));
        let (active, stored, head_bounds) = {
            let head = self.shared.read_head();
            let stored = self.shared.read_stored();
            drop(index);
            let sources: Vec<exec::Source<'_>> = prepared
                .metric()
                .map(|m| head.rows(tenant, m))
                .unwrap_or_default()
                .into_iter()
                .map(|rows| exec::Source::Rows { rows, floor: None })
                .collect();
            let partial = exec::scan_sources(&prepared, &sources, ctx, max, &self.query_pool)?;
            // Phase A's per-series moments of the head (none when it holds no row of the metric).
            let head_bounds = match &per_series {
                Some(a) if !sources.is_empty() => {
                    Some(exec::scan_sources(a, &sources, ctx, max, &self.query_pool)?)
                }
                _ => None,
            };
            (partial, stored, head_bounds)
        };
        let sources = match prepared.metric() {
            Some(m) => snapshot_sources(&stored, tenant, m, &plan.metric),
            None => Vec::new(),
        };
        if let Some(a) = &per_series {
            let part_bounds = exec::scan_sources(a, &sources, ctx, max, &self.query_pool)?;
            let bounds = match head_bounds {
                Some(head_bounds) => exec::merge(head_bounds, part_bounds, max)?,
                None => part_bounds,
            };
            if let Some(narrowed) = prepared.narrowed(bounds) {
                let mut active = active;
                active.retain_groups(&narrowed.keep);
                let partial =
                    exec::scan_sources(&narrowed.prepared, &sources, ctx, max, &self.query_pool)?;
                let partial = exec::merge(active, partial, max)?;
                let index = self.shared.read_index();
                let mut result = exec::finish(
                    &narrowed.prepared,
                    partial,
                    index.tenant(tenant),
                    ctx,
                    max,
                    &self.query_pool,
                )?;
                if let QueryResult::Aggregate { truncated, .. } = &mut result {
                    *truncated = narrowed.truncated;
                }
                return Ok(result);
            }
        }
        let partial = exec::scan_sources(&prepared, &sources, ctx, max, &self.query_pool)?;
        let partial = exec::merge(active, partial, max)?;
        let index = self.shared.read_index();
        Ok(exec::finish(
            &prepared,
            partial,
            index.tenant(tenant),
            ctx,
            max,
            &self.query_pool,
        )?)
    }

    /// An estimate, in bytes, of the memory [`Engine::query`] will hold for `plan`: from the index's
    /// per-series point counts and the row counts and time spans of the head's chunks and the parts, so
    /// no row is read (`exec::estimate`). The server reserves it from its query memory budget first.
    pub fn query_memory(&self, tenant: &Tenant, plan: &QueryPlan) -> u64 {
        let selected = exec::estimate::Selected::of(self.shared.read_index().tenant(tenant), plan);
        let share = match selected.metric() {
            None => 0.0,
            Some(m) => {
                let head = self.shared.read_head();
                let stored = self.shared.read_stored();
                let mut sources: Vec<exec::Source<'_>> = head
                    .rows(tenant, m)
                    .into_iter()
                    .map(|rows| exec::Source::Rows { rows, floor: None })
                    .collect();
                sources.extend(snapshot_sources(&stored, tenant, m, &plan.metric));
                exec::estimate::share_in_range(&sources, plan.start, plan.end)
            }
        };
        exec::estimate::bytes(
            plan,
            &selected,
            share,
            self.query_pool.current_num_threads(),
        )
    }
}

/// The sources of metric `m` (named `metric`) in a snapshot: the frozen head's chunks and the parts,
/// each with its tombstone.
pub(crate) fn snapshot_sources<'a>(
    stored: &'a stored::Stored,
    tenant: &Tenant,
    m: index::MetricId,
    metric: &str,
) -> Vec<exec::Source<'a>> {
    let mut sources = Vec::new();
    if let Some(frozen) = &stored.frozen {
        let floor = frozen.tombstones.get(&(tenant.clone(), m)).copied();
        sources.extend(
            frozen
                .head
                .rows(tenant, m)
                .into_iter()
                .map(|rows| exec::Source::Rows { rows, floor }),
        );
    }
    sources.extend(
        stored
            .parts
            .iter()
            .filter(|lp| lp.is_of(tenant, metric))
            .map(|lp| exec::Source::Part {
                part: &lp.part,
                floor: lp.deleted_before,
            }),
    );
    sources
}
