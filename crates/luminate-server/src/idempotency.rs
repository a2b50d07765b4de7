//! The `Idempotency-Key` cache of the write route (CONTRACT §3): a retry with the same key, from the
//! same tenant, within the TTL (`batch_write.idempotency_key_ttl`, [`TTL`] by default) gets the first
//! response back and stores nothing twice.
//!
//! This cache is the process's memory of keys: it answers retries without reaching the store, makes
//! concurrent requests with one key run the write once, and remembers answers that stored nothing
//! (a `400`). Surviving a crash is the store's part ([`luminate_model::MetricsStore::write_keyed`]):
//! the embedded engine logs a keyed write's key and answer (status and body, as built before anything
//! is sent) in the WAL record of its batch, rebuilds its window of keys when it replays the WAL, and
//! answers a key it remembers with that first answer without storing anything. So after a `kill -9`
//! the retry misses this (empty) cache, reaches the engine and gets the first status and body back,
//! byte for byte, with `Idempotent-Replayed: true`; this cache then remembers it. Answers that stored
//! no point are not logged: after a restart their retry is decoded and answered again (it stores
//! nothing either). The headers of the first answer (`X-RateLimit-*`) are not logged: a replay carries
//! the current ones. On ClickHouse nothing is logged: a restart forgets every key (docs/clickhouse.md).
//!
//! Bounded: at most `capacity` keys, the oldest evicted first (keys expire in insertion order, so one
//! queue serves both expiry and eviction). Concurrent requests with one key share a slot whose
//! `OnceCell` runs the write once; the others wait for its answer. Server errors (5xx) and rate-limit
//! refusals (429) are not remembered: the write did not happen (or may not have), and the retry must be
//! allowed to try again.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use luminate_model::{ErrorCode, Tenant};

use crate::error::ApiError;

/// How long a key is remembered by default (`batch_write.idempotency_key_ttl`).
pub const TTL: Duration = Duration::from_secs(600);
/// Keys remembered at most by default (`batch_write.idempotency_max_keys`): about 100 bytes each plus
/// the response body of a write, which is small unless the batch had many invalid points. The embedded
/// engine's window holds the same bodies (shared, not copied).
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 256;

/// A response as first sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// Its status.
    pub status: StatusCode,
    /// Its JSON body, byte for byte.
    pub body: Bytes,
    /// Headers of its own (`Retry-After` and `X-RateLimit-*` of a refused batch); usually empty.
    pub headers: HeaderMap,
}

type Key = (Tenant, String);

struct Slot {
    created: Instant,
    response: tokio::sync::OnceCell<StoredResponse>,
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<Key, Arc<Slot>>,
    /// Insertion order, oldest first.
    order: VecDeque<(Key, Arc<Slot>)>,
}

impl Slots {
    fn evict_oldest(&mut self) {
        if let Some((key, slot)) = self.order.pop_front()
            && self.by_key.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot))
        {
            self.by_key.remove(&key);
        }
    }
}

/// The cache. A std `Mutex` because it is never held across an `.await`: waiting happens on the slot.
pub struct IdempotencyCache {
    slots: Mutex<Slots>,
    ttl: Duration,
    capacity: usize,
}

impl IdempotencyCache {
    /// A cache of `capacity` keys remembered for `ttl`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            slots: Mutex::new(Slots::default()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Checks a header value: 1–256 visible ASCII characters.
    pub fn check_key(key: &[u8]) -> Result<String, ApiError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.iter().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        Ok(String::from_utf8_lossy(key).into_owned())
    }

    fn slot(&self, tenant: &Tenant, key: &str) -> Arc<Slot> {
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update; the maps stay consistent
        // because every update is a single insert or remove.
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        while slots
            .order
            .front()
            .is_some_and(|(_, s)| now.duration_since(s.created) >= self.ttl)
        {
            slots.evict_oldest();
        }
        let key = (tenant.clone(), key.to_owned());
        if let Some(slot) = slots.by_key.get(&key) {
            return slot.clone();
        }
        while slots.by_key.len() >= self.capacity {
            slots.evict_oldest();
        }
        let slot = Arc::new(Slot {
            created: now,
            response: tokio::sync::OnceCell::new(),
        });
        slots.by_key.insert(key.clone(), slot.clone());
        slots.order.push_back((key, slot.clone()));
        slot
    }

    /// Runs `work` unless a response for `(tenant, key)` is remembered, and remembers its response
    /// unless it is a server error. Returns the response and whether it is a replay.
    pub async fn run<F>(&self, tenant: &Tenant, key: &str, work: F) -> (StoredResponse, bool)
    where
        F: Future<Output = StoredResponse>,
    {
        let slot = self.slot(tenant, key);
        if let Some(stored) = slot.response.get() {
            return (stored.clone(), true);
        }
        let mut ran = false;
        let outcome = slot
            .response
            .get_or_try_init(|| async {
                ran = true;
                let response = work.await;
                if response.status.is_server_error()
                    || response.status == StatusCode::TOO_MANY_REQUESTS
                {
                    Err(response)
                } else {
                    Ok(response)
                }
            })
            .await;
        match outcome {
            Ok(stored) => (stored.clone(), !ran),
            Err(failed) => (failed, false),
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn response(status: u16, body: &'static str) -> StoredResponse {
        StoredResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from_static(body.as_bytes()),
            headers: HeaderMap::new(),
        }
    }

    #[tokio::test]
    async fn retry_replays_the_first_response() {
        let cache = IdempotencyCache::new(TTL, 10);
        let t = Tenant::default_tenant();
        let (first, replay) = cache.run(&t, "k", async { response(200, "first") }).await;
        assert!(!replay);
        let (second, replay) = cache.run(&t, "k", async { response(200, "second") }).await;
        assert!(replay);
        assert_eq!(first, second);
        let (other_tenant, replay) = cache
            .run(&Tenant::new("t2"), "k", async { response(207, "other") })
            .await;
        assert!(!replay, "keys are per tenant");
        assert_eq!(other_tenant.body, "other");
    }

    #[tokio::test]
    async fn concurrent_duplicates_run_once() {
        let cache = Arc::new(IdempotencyCache::new(TTL, 10));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, runs) = (cache.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .run(&Tenant::default_tenant(), "same", async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        response(200, "once")
                    })
                    .await
                    .0
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().body, "once");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn server_errors_are_not_remembered() {
        let cache = IdempotencyCache::new(TTL, 10);
        let t = Tenant::default_tenant();
        let (r, _) = cache.run(&t, "k", async { response(503, "down") }).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        let (r, replay) = cache.run(&t, "k", async { response(200, "ok") }).await;
        assert_eq!((r.status, replay), (StatusCode::OK, false));
    }

    #[tokio::test]
    async fn oldest_keys_are_evicted_and_expired_keys_forgotten() {
        let cache = IdempotencyCache::new(TTL, 2);
        let t = Tenant::default_tenant();
        for k in ["a", "b", "c"] {
            cache.run(&t, k, async { response(200, "x") }).await;
        }
        assert_eq!(cache.len(), 2);
        let (_, replay) = cache.run(&t, "a", async { response(200, "again") }).await;
        assert!(!replay, "a was evicted");

        let short = IdempotencyCache::new(Duration::from_millis(20), 10);
        short.run(&t, "k", async { response(200, "x") }).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (r, replay) = short.run(&t, "k", async { response(200, "fresh") }).await;
        assert_eq!((r.body.as_ref(), replay), (b"fresh".as_ref(), false));
    }

    #[test]
    fn key_format() {
        assert!(IdempotencyCache::check_key(b"req-123").is_ok());
        assert!(IdempotencyCache::check_key(&[b'k'; 256]).is_ok());
        assert!(IdempotencyCache::check_key(&[b'k'; 257]).is_err());
        assert!(IdempotencyCache::check_key(b"").is_err());
        assert!(IdempotencyCache::check_key(b"has space").is_err());
    }
}
