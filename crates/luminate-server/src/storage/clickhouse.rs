//! Opening the ClickHouse backend for the server, and serving while ClickHouse is not there yet.
//!
//! Luminate in front of ClickHouse is stateless, so an unreachable ClickHouse at start-up (down,
//! restarting, not answering in time) does not stop it: the server starts **degraded** — every call
//! answers `503 STORAGE_UNAVAILABLE` with the reason, `/api/v1/health` reports the storage unhealthy and
//! its `clickhouse_reachable` check failing with the same reason — and a background task tries to open
//! the store again every `breaker_cool_down`. The first success serves every later request; nothing
//! restarts. This is what an orchestrator expects of a stateless tier: replicas started before their
//! database do not crash-loop, and their readiness probe (health) turns green by itself. The
//! alternative, exiting until ClickHouse answers, was rejected because it turns a database restart into
//! a fleet of restarting replicas.
//!
//! What waiting cannot fix stops start-up with a message naming the address or key: bad settings,
//! refused credentials, a port that is not ClickHouse's HTTP interface (the native 9000), a foreign
//! `points` table. Owns only this start-up policy; once open, calls go straight to
//! [`ClickhouseStore`], whose circuit breaker handles later outages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use luminate_clickhouse::observe::ClickhouseObserver;
use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore, REACHABLE_CHECK};
use luminate_model::backup::{SnapshotError, StoreSnapshot};
use luminate_model::dashboard::{Dashboard, DashboardStore, DashboardStoreError, Expected};
use luminate_model::store::{CheckOutcome, HealthCheck};
use luminate_model::{MetricsStore, StoreError, Tenant};

use super::OpenError;
use super::forward::{Decorate, Forward};
use crate::config::ClickhouseConfig;

/// Opens the ClickHouse store of `config`, and the dashboards kept in its database (at most
/// `max_dashboards` per tenant); when ClickHouse cannot be reached yet, a [`DeferredClickhouse`] that
/// opens it as soon as it can serves both.
pub async fn open(
    config: &ClickhouseConfig,
    max_dashboards: usize,
    observer: Arc<dyn ClickhouseObserver>,
) -> Result<(Arc<dyn MetricsStore>, Arc<dyn DashboardStore>), OpenError> {
    let settings = config.settings();
    let addresses = config.addresses.join(", ");
    match ClickhouseStore::open_observed(settings.clone(), observer.clone()).await {
        Ok(store) => {
            let dashboards = Arc::new(store.dashboards(max_dashboards));
            Ok((Arc::new(store), dashboards))
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(
                addresses,
                error = %e,
                retry_every = %luminate_model::time::format_duration(settings.breaker_cool_down),
                "ClickHouse cannot be reached: serving 503 STORAGE_UNAVAILABLE until it can"
            );
            let deferred =
                DeferredClickhouse::start(settings, observer, e.to_string(), max_dashboards);
            Ok((Forward::store(deferred.clone()), Arc::new(deferred)))
        }
        Err(source) => Err(OpenError::Clickhouse {
            addresses,
            database: config.database.clone(),
            source,
        }),
    }
}

/// The ClickHouse backend while ClickHouse has not been reached since start-up: unavailable with the
/// reason until a background task opens the store, then that store.
#[derive(Clone)]
pub struct DeferredClickhouse {
    shared: Arc<Shared>,
    /// `dashboards.max_per_tenant`, for the store's dashboards once open.
    max_dashboards: usize,
}

/// What the server's calls and the opening task share.
struct Shared {
    /// Set once, by the task, when the store opens.
    store: OnceLock<ClickhouseStore>,
    /// Why it is not open yet (the last attempt's error).
    pending: Mutex<String>,
    /// Set by `close`: the task stops trying.
    closed: AtomicBool,
    addresses: String,
    retry_every: Duration,
}

impl DeferredClickhouse {
    /// Starts the task that opens the store; `first_error` is why the first attempt failed.
    fn start(
        settings: ClickhouseSettings,
        observer: Arc<dyn ClickhouseObserver>,
        first_error: String,
        max_dashboards: usize,
    ) -> Self {
        let shared = Arc::new(Shared {
            store: OnceLock::new(),
            pending: Mutex::new(first_error),
            closed: AtomicBool::new(false),
            addresses: settings.addresses.join(", "),
            // The breaker's cool-down is already the user's answer to "how often to probe a ClickHouse
            // that is down"; at least 100 ms so that a zero cannot spin.
            retry_every: settings.breaker_cool_down.max(Duration::from_millis(100)),
        });
        tokio::spawn(keep_opening(
            Arc::downgrade(&shared),
            settings,
            observer,
            shared.retry_every,
        ));
        Self {
            shared,
            max_dashboards,
        }
    }

    /// The open store, or `Unavailable` saying why there is none.
    fn store(&self) -> Result<&ClickhouseStore, StoreError> {
        self.shared
            .store
            .get()
            .ok_or_else(|| StoreError::Unavailable {
                reason: self.shared.reason(),
            })
    }
}

impl Shared {
    fn reason(&self) -> String {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        format!(
            "ClickHouse at {} has not been reached since Luminate started (next attempt within {}): {pending}",
            self.addresses,
            luminate_model::time::format_duration(self.retry_every)
        )
    }
}

/// Tries to open the store every `retry_every` until it opens, the backend is closed, or it is dropped
/// (the task holds only a weak reference between attempts). An error that waiting cannot fix is logged
/// as an error and retried all the same: an operator may fix ClickHouse without restarting Luminate.
async fn keep_opening(
    shared: Weak<Shared>,
    settings: ClickhouseSettings,
    observer: Arc<dyn ClickhouseObserver>,
    every: Duration,
) {
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.closed.load(Ordering::Relaxed) {
            return;
        }
        match ClickhouseStore::open_observed(settings.clone(), observer.clone()).await {
            Ok(store) => {
                tracing::info!(
                    addresses = %shared.addresses,
                    "ClickHouse reached: the storage is available"
                );
                if shared.closed.load(Ordering::Relaxed) {
                    let _ = store.close().await;
                } else {
                    let _ = shared.store.set(store);
                }
                return;
            }
            Err(e) => {
                if e.is_transient() {
                    tracing::debug!(addresses = %shared.addresses, error = %e, "ClickHouse still unreachable");
                } else {
                    tracing::error!(addresses = %shared.addresses, error = %e, "ClickHouse answered but refused to open the store");
                }
                *shared
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = e.to_string();
            }
        }
    }
}

#[async_trait]
impl DashboardStore for DeferredClickhouse {
    async fn list(&self, tenant: &Tenant) -> Result<Vec<Dashboard>, StoreError> {
        self.store()?
            .dashboards(self.max_dashboards)
            .list(tenant)
            .await
    }

    async fn get(&self, tenant: &Tenant, id: &str) -> Result<Option<Dashboard>, StoreError> {
        self.store()?
            .dashboards(self.max_dashboards)
            .get(tenant, id)
            .await
    }

    async fn put(
        &self,
        tenant: &Tenant,
        dashboard: Dashboard,
        expected: Expected,
    ) -> Result<Dashboard, DashboardStoreError> {
        self.store()?
            .dashboards(self.max_dashboards)
            .put(tenant, dashboard, expected)
            .await
    }

    async fn delete(&self, tenant: &Tenant, id: &str) -> Result<bool, StoreError> {
        self.store()?
            .dashboards(self.max_dashboards)
            .delete(tenant, id)
            .await
    }
}

#[async_trait]
impl Decorate for DeferredClickhouse {
    fn backend_name(&self) -> &'static str {
        "clickhouse"
    }

    fn inner(&self) -> Result<&dyn MetricsStore, StoreError> {
        Ok(self.store()?)
    }

    /// The open store's checks; before it opens, `clickhouse_reachable` failing with the reason.
    fn checks(&self) -> Vec<HealthCheck> {
        match self.shared.store.get() {
            Some(store) => store.checks(),
            None => vec![HealthCheck::new(
                REACHABLE_CHECK,
                std::future::ready(CheckOutcome::fail(self.shared.reason())),
            )],
        }
    }

    /// Unsupported, whether ClickHouse has been reached or not.
    async fn snapshot(&self) -> Result<Arc<dyn StoreSnapshot>, SnapshotError> {
        Err(luminate_clickhouse::snapshot_unsupported())
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.shared.closed.store(true, Ordering::Relaxed);
        match self.shared.store.get() {
            Some(store) => store.close().await,
            None => Ok(()),
        }
    }
}
