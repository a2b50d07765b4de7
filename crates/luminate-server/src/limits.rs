//! Per-tenant rate limits (CONTRACT §8): token buckets (GCRA, `governor`) for write requests, query
//! requests and ingested points per second, and a semaphore per tenant for concurrent queries. Owns
//! no authentication: it is keyed by the tenant that [`crate::auth`] resolved.
//!
//! - **Which quotas**: those of [`crate::config::RateLimitsConfig::active`]: with auth enabled the seed's
//!   per-tenant defaults unless set otherwise; with auth disabled (one implicit tenant) only what the
//!   configuration sets. A quota that is not in force has no bucket: its routes answer without
//!   `X-RateLimit-*` headers and count no decision.
//! - **Buckets**: each quota is `N` per second with a burst of `N` (a tenant idle for a second may send
//!   `N` at once). Tenants listed in `rate_limits.tenants` get buckets of their own quotas.
//! - **Points**: a batch costs one token per point, taken after decoding. Its burst is
//!   `max(metrics_per_second, batch_write.max_batch_size)`, so that every batch the write route accepts
//!   fits a full bucket: a batch bigger than the per-second rate is admitted when the bucket is full and
//!   then blocks the tenant's ingestion for as long as it is over the rate, instead of never fitting.
//! - **Memory**: buckets of tenants not seen for a while are dropped by [`RateLimiter::retain_recent`]
//!   (a full bucket holds no information), which the server calls on a timer; idle semaphores likewise.
//! - **Headers**: every answer of a route limited by a quota in force carries `X-RateLimit-Limit` (the bucket's burst),
//!   `X-RateLimit-Remaining` (tokens left) and `X-RateLimit-Reset` (Unix seconds when the bucket is full
//!   again); a `429` adds `Retry-After` (whole seconds, at least 1).
//! - **Self-metrics**: every decision made here counts in `luminate_rate_limit_checks_total{tenant,
//!   limit}`, a refusal also in `luminate_rate_limit_exceeded_total{tenant, limit}`, and leaves the
//!   bucket's tokens in `luminate_rate_limit_tokens_available{tenant, limit}`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Gcra};
use luminate_model::{ErrorCode, Tenant};
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, Quotas, RateLimitOverride};
use crate::error::ApiError;
use crate::telemetry::Telemetry;

type Keyed = Gcra<Tenant, DefaultKeyedStateStore<Tenant>, DefaultClock, StateInformationMiddleware>;

/// `X-RateLimit-Limit`.
pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`.
pub const RESET_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// What a bucket limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Write and admin requests.
    WriteRequests,
    /// Query, discovery and cardinality requests.
    QueryRequests,
    /// Ingested points.
    Points,
}

impl Bucket {
    fn key(self) -> &'static str {
        match self {
            Self::WriteRequests => "write_requests_per_second",
            Self::QueryRequests => "query_requests_per_second",
            Self::Points => "metrics_per_second",
        }
    }
}

/// One quota: a default bucket per tenant (none when the quota is not in force), and buckets of their
/// own for tenants with overrides.
struct Buckets {
    which: Bucket,
    default: Option<Lane>,
    overrides: HashMap<Tenant, Lane>,
}

/// Buckets of one quota.
struct Lane {
    limiter: Keyed,
    burst: u32,
    /// Time for one token to come back: 1 s / rate.
    per_token: Duration,
}

/// The state of a bucket after a check, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Burst size.
    pub limit: u32,
    /// Tokens left.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub full_in: Duration,
}

impl Snapshot {
    /// Adds the three `X-RateLimit-*` headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        let reset = SystemTime::now()
            .checked_add(self.full_in)
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        headers.insert(LIMIT_HEADER, HeaderValue::from(self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
        headers.insert(RESET_HEADER, HeaderValue::from(reset));
    }
}

/// A refusal: the `429` and the headers to send with it.
#[derive(Debug, Clone)]
pub struct Limited {
    /// The error body (boxed: a refusal is the rare path, the `Ok` side stays small).
    pub error: Box<ApiError>,
    /// State of the bucket.
    pub snapshot: Snapshot,
    /// `Retry-After` in whole seconds.
    pub retry_after: u64,
}

impl Limited {
    /// Adds `Retry-After` and the `X-RateLimit-*` headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        self.snapshot.apply(headers);
        headers.insert(RETRY_AFTER, HeaderValue::from(self.retry_after));
    }

    /// The `429` response.
    pub fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        self.apply(&mut headers);
        let mut response = (*self.error).into_response();
        response.headers_mut().extend(headers);
        response
    }
}

impl Buckets {
    fn new(
        which: Bucket,
        default: Option<u32>,
        burst_floor: u32,
        overrides: &[(Tenant, u32)],
    ) -> Self {
        let make = |rate: u32| {
            let burst = rate.max(burst_floor).max(1);
            let quota = Quota::per_second(nonzero(rate)).allow_burst(nonzero(burst));
            Lane {
                limiter: Gcra::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                burst,
                per_token: Duration::from_secs(1) / rate.max(1),
            }
        };
        Self {
            which,
            default: default.map(make),
            overrides: overrides
                .iter()
                .map(|(t, rate)| (t.clone(), make(*rate)))
                .collect(),
        }
    }

    /// Takes `cost` tokens from the tenant's bucket; `Ok(None)` when no quota is in force for it.
    fn check(
        &self,
        tenant: &Tenant,
        cost: u32,
        telemetry: &Telemetry,
    ) -> Result<Option<Snapshot>, Limited> {
        let Some(lane) = self.overrides.get(tenant).or(self.default.as_ref()) else {
            return Ok(None);
        };
        let (limiter, burst, rate) = (&lane.limiter, lane.burst, lane.per_token);
        let clock = DefaultClock::default();
        let cost = cost.min(burst).max(1);
        match limiter.check_key_n(tenant, nonzero(cost)) {
            Ok(Ok(state)) => {
                let remaining = state.remaining_burst_capacity();
                telemetry.rate_limit_checked(tenant, self.which.key(), true, remaining);
                Ok(Some(Snapshot {
                    limit: burst,
                    remaining,
                    full_in: rate.mul_f64(f64::from(burst - remaining)),
                }))
            }
            Ok(Err(not_until)) => {
                telemetry.rate_limit_checked(tenant, self.which.key(), false, 0);
                let wait = not_until.wait_time_from(clock.now());
                let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let snapshot = Snapshot {
                    limit: burst,
                    remaining: 0,
                    full_in: rate.mul_f64(f64::from(burst)),
                };
                Err(Limited {
                    error: Box::new(
                        ApiError::new(
                            ErrorCode::RateLimitExceeded,
                            format!(
                                "tenant {tenant} exceeded rate_limits.{} of {burst}; retry in {}s",
                                self.which.key(),
                                retry_after.max(1)
                            ),
                        )
                        .with_details(json!({
                            "limit": self.which.key(),
                            "value": burst,
                            "retry_after_seconds": retry_after.max(1),
                        })),
                    ),
                    snapshot,
                    retry_after: retry_after.max(1),
                })
            }
            // `cost` is capped at the burst above, so the batch always fits a full bucket.
            Err(_) => Ok(Some(Snapshot {
                limit: burst,
                remaining: 0,
                full_in: rate.mul_f64(f64::from(burst)),
            })),
        }
    }

    fn retain_recent(&self) {
        for lane in self.default.iter().chain(self.overrides.values()) {
            lane.limiter.retain_recent();
            lane.limiter.shrink_to_fit();
        }
    }

    /// Tenants with state in the default bucket.
    fn len(&self) -> usize {
        self.default.as_ref().map_or(0, |lane| lane.limiter.len())
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

/// Every per-tenant limit.
pub struct RateLimiter {
    write_requests: Buckets,
    query_requests: Buckets,
    points: Buckets,
    /// `None`: no cap on concurrent queries for tenants without an override.
    concurrent_default: Option<u32>,
    concurrent_overrides: HashMap<Tenant, u32>,
    /// Tenants' query semaphores; idle ones are dropped by [`RateLimiter::retain_recent`].
    running: Mutex<HashMap<Tenant, Arc<Semaphore>>>,
    /// Counts the refusals.
    telemetry: Telemetry,
}

impl RateLimiter {
    /// From the quotas in force under `rate_limits` and `auth.enabled` (and `batch_write.max_batch_size`,
    /// the points bucket's smallest burst); decisions are counted on `telemetry`.
    pub fn from_config(config: &Config, telemetry: Telemetry) -> Self {
        let rl = &config.rate_limits;
        let active: Quotas = rl.active(config.auth.enabled);
        let pick = |f: fn(&RateLimitOverride) -> Option<u32>| -> Vec<(Tenant, u32)> {
            rl.tenants
                .iter()
                .filter_map(|(t, o)| Some((Tenant::new(t), f(o)?)))
                .collect()
        };
        let max_batch = u32::try_from(config.batch_write.max_batch_size).unwrap_or(u32::MAX);
        Self {
            write_requests: Buckets::new(
                Bucket::WriteRequests,
                active.write_requests_per_second,
                0,
                &pick(|o| o.write_requests_per_second),
            ),
            query_requests: Buckets::new(
                Bucket::QueryRequests,
                active.query_requests_per_second,
                0,
                &pick(|o| o.query_requests_per_second),
            ),
            points: Buckets::new(
                Bucket::Points,
                active.metrics_per_second,
                max_batch,
                &pick(|o| o.metrics_per_second),
            ),
            concurrent_default: active.concurrent_queries,
            concurrent_overrides: pick(|o| o.concurrent_queries).into_iter().collect(),
            running: Mutex::new(HashMap::new()),
            telemetry,
        }
    }

    /// Takes one request token from `bucket` (write or query requests); `Ok(None)` when the tenant has no
    /// such quota.
    pub fn check_request(
        &self,
        bucket: Bucket,
        tenant: &Tenant,
    ) -> Result<Option<Snapshot>, Limited> {
        match bucket {
            Bucket::WriteRequests => self.write_requests.check(tenant, 1, &self.telemetry),
            Bucket::QueryRequests => self.query_requests.check(tenant, 1, &self.telemetry),
            Bucket::Points => self.points.check(tenant, 1, &self.telemetry),
        }
    }

    /// Takes `points` tokens for an ingested batch; `Ok(None)` when the tenant has no points quota.
    pub fn check_points(
        &self,
        tenant: &Tenant,
        points: usize,
    ) -> Result<Option<Snapshot>, Limited> {
        let cost = u32::try_from(points).unwrap_or(u32::MAX);
        self.points.check(tenant, cost, &self.telemetry)
    }

    /// A slot among the tenant's concurrent queries, held until the permit drops; `429` when all are
    /// taken; `Ok(None)` when the tenant's concurrent queries are not capped.
    pub fn start_query(&self, tenant: &Tenant) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let Some(cap) = self
            .concurrent_overrides
            .get(tenant)
            .copied()
            .or(self.concurrent_default)
        else {
            return Ok(None);
        };
        let semaphore = {
            // A std mutex: nothing is awaited while it is held.
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            running
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(cap as usize)))
                .clone()
        };
        let permit = semaphore.clone().try_acquire_owned();
        let free = semaphore.available_permits() as u32;
        self.telemetry
            .rate_limit_checked(tenant, "concurrent_queries", permit.is_ok(), free);
        permit.map(Some).map_err(|_| {
            ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!("tenant {tenant} already runs rate_limits.concurrent_queries of {cap} queries; retry when one finishes"),
            )
            .with_details(json!({"limit": "concurrent_queries", "value": cap, "retry_after_seconds": 1}))
        })
    }

    /// Drops the state of tenants that are idle: full buckets and unused semaphores.
    pub fn retain_recent(&self) {
        self.write_requests.retain_recent();
        self.query_requests.retain_recent();
        self.points.retain_recent();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, s| Arc::strong_count(s) > 1);
        running.shrink_to_fit();
    }

    /// Tenants with state in the request buckets (for tests and self-metrics).
    pub fn tracked_tenants(&self) -> usize {
        self.write_requests.len().max(self.query_requests.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitOverride;

    /// A limiter of an authenticated server (the seed's quotas by default), edited by `edit`.
    fn limiter(edit: impl FnOnce(&mut Config)) -> RateLimiter {
        let mut config = Config::default();
        config.auth.enabled = true;
        edit(&mut config);
        let mut registry = prometheus_client::registry::Registry::default();
        RateLimiter::from_config(&config, Telemetry::register(&mut registry, 100))
    }

    #[test]
    fn buckets_count_down_then_refuse_with_the_key_and_value() {
        let l = limiter(|c| c.rate_limits.write_requests_per_second = Some(2));
        let t = Tenant::new("t");
        let first = l.check_request(Bucket::WriteRequests, &t).unwrap().unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(
            l.check_request(Bucket::WriteRequests, &t)
                .unwrap()
                .unwrap()
                .remaining,
            0
        );
        let refused = l.check_request(Bucket::WriteRequests, &t).unwrap_err();
        assert_eq!(refused.error.code, ErrorCode::RateLimitExceeded);
        assert_eq!(refused.error.details["limit"], "write_requests_per_second");
        assert_eq!(refused.retry_after, 1);
        let mut headers = HeaderMap::new();
        refused.apply(&mut headers);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        // Query requests and other tenants are untouched.
        assert!(l.check_request(Bucket::QueryRequests, &t).is_ok());
        assert!(
            l.check_request(Bucket::WriteRequests, &Tenant::new("u"))
                .is_ok()
        );
    }

    #[test]
    fn points_cost_one_each_and_a_full_batch_fits_the_bucket() {
        let l = limiter(|c| {
            c.rate_limits.metrics_per_second = Some(100);
            c.batch_write.max_batch_size = 1_000;
        });
        let t = Tenant::new("t");
        let s = l.check_points(&t, 1_000).unwrap().unwrap();
        assert_eq!((s.limit, s.remaining), (1_000, 0));
        assert_eq!(s.full_in, Duration::from_secs(10));
        let refused = l.check_points(&t, 500).unwrap_err();
        assert_eq!(refused.retry_after, 5);
    }

    #[test]
    fn overrides_and_idle_state() {
        let l = limiter(|c| {
            c.rate_limits.concurrent_queries = Some(1);
            c.rate_limits.tenants.insert(
                "big".into(),
                RateLimitOverride {
                    query_requests_per_second: Some(500),
                    concurrent_queries: Some(2),
                    ..RateLimitOverride::default()
                },
            );
        });
        let big = Tenant::new("big");
        assert_eq!(
            l.check_request(Bucket::QueryRequests, &big)
                .unwrap()
                .unwrap()
                .limit,
            500
        );
        let small = Tenant::new("small");
        assert_eq!(
            l.check_request(Bucket::QueryRequests, &small)
                .unwrap()
                .unwrap()
                .limit,
            50
        );
        let held = l.start_query(&small).unwrap().unwrap();
        assert_eq!(
            l.start_query(&small).unwrap_err().code,
            ErrorCode::RateLimitExceeded
        );
        let _two = (l.start_query(&big).unwrap(), l.start_query(&big).unwrap());
        drop(held);
        assert!(l.start_query(&small).unwrap().is_some());
        assert_eq!(l.tracked_tenants(), 1);
        l.retain_recent();
        // `small` took one token of 50 a moment ago: not yet full, so kept; semaphores in use are kept.
        assert_eq!(l.tracked_tenants(), 1);
        assert_eq!(l.running.lock().unwrap().len(), 1);
    }

    #[test]
    fn without_auth_only_the_quotas_set_apply() {
        let mut config = Config::default();
        config.rate_limits.query_requests_per_second = Some(1);
        let mut registry = prometheus_client::registry::Registry::default();
        let l = RateLimiter::from_config(&config, Telemetry::register(&mut registry, 100));
        let t = Tenant::default_tenant();
        // Writes, points and query slots have no quota: no bucket, no headers, never a refusal.
        for _ in 0..1_000 {
            assert_eq!(l.check_request(Bucket::WriteRequests, &t).unwrap(), None);
        }
        for _ in 0..5 {
            assert_eq!(l.check_points(&t, 10_000).unwrap(), None);
        }
        let slots: Vec<_> = (0..100).map(|_| l.start_query(&t).unwrap()).collect();
        assert!(slots.iter().all(Option::is_none));
        // The query requests quota was set, so it applies.
        assert_eq!(
            l.check_request(Bucket::QueryRequests, &t)
                .unwrap()
                .unwrap()
                .limit,
            1
        );
        assert!(l.check_request(Bucket::QueryRequests, &t).is_err());
    }
}
