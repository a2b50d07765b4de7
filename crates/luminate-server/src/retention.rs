//! The retention task (CONTRACT §6): every `retention.cleanup_interval`, and whenever an admin sets an
//! override, deletes each metric's points older than its retention. A metric's retention is its admin
//! override (persisted by the store), else the first configured policy whose glob matches, else
//! `retention.default_retention`. Owns the schedule only; deleting is the store's job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use luminate_model::{MetricsStore, StoreError, TimestampMs};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::Config;

/// What one sweep deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Metrics visited, over all tenants.
    pub metrics: usize,
    /// Points deleted.
    pub deleted: u64,
}

/// One pass over every tenant and metric at time `now`.
pub async fn sweep(
    store: &dyn MetricsStore,
    config: &Config,
    now: TimestampMs,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    for tenant in store.tenants().await? {
        let overrides: HashMap<String, Duration> = store
            .retention_overrides(&tenant)
            .await?
            .into_iter()
            .map(|o| (o.metric, o.retention))
            .collect();
        for metric in store.metric_names(&tenant).await? {
            let retention = overrides
                .get(&metric)
                .copied()
                .unwrap_or_else(|| config.policy_retention(&metric));
            let cutoff =
                now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
            let deleted = store.expire_before(&tenant, &metric, cutoff).await?;
            report.metrics += 1;
            report.deleted += deleted;
            if deleted > 0 {
                tracing::info!(tenant = %tenant, metric = %metric, deleted, cutoff, "retention deleted expired points");
            }
        }
    }
    Ok(report)
}

/// Starts the task: a sweep at once, then every interval or on `wakeup`, until `stop` turns true.
pub fn spawn(
    store: Arc<dyn MetricsStore>,
    config: Arc<Config>,
    wakeup: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.retention.cleanup_interval);
        // After a slow sweep, wait a full interval rather than running back-to-back sweeps.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = wakeup.notified() => {}
                _ = stop.wait_for(|stopped| *stopped) => break,
            }
            match sweep(store.as_ref(), &config, luminate_model::time::now_ms()).await {
                Ok(report) => tracing::debug!(
                    metrics = report.metrics,
                    deleted = report.deleted,
                    "retention sweep done"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep failed; retrying at the next interval")
                }
            }
        }
    })
}
