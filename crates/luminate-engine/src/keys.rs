//! keys: the window of idempotency keys the engine remembers — every key logged with its write
//! (`KEYED_WRITE`, `crate::record`) in the last [`KeyWindow::ttl`], at most [`KeyWindow::capacity`] of
//! them, the oldest forgotten first. Owned by the writer thread (`crate::commit`), which looks a key up
//! before it stages a keyed write and adds it once its record is appended; rebuilt by replay
//! (`crate::recovery`). Knows nothing of files: the writer thread logs what [`Window::carried_over`]
//! returns at a flush.
//!
//! The TTL counts from the wall-clock time in the record, so a key logged before a restart expires when
//! it would have without one; a key whose time is in the future (the clock was set back) is kept until
//! its time plus the TTL. Keys leave in the order they were logged; one that expired behind a younger
//! one at the front (the clock went back) is not returned by [`Window::get`], only dropped later.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use luminate_model::{Tenant, TimestampMs};

use crate::config::KeyWindow;
use crate::record::{KEY_WINDOW_RECORD_BYTES, KeyEntry};

/// The remembered keys.
#[derive(Debug)]
pub(crate) struct Window {
    ttl_ms: i64,
    capacity: usize,
    by_key: HashMap<(Tenant, String), Arc<KeyEntry>>,
    /// Logging order, oldest first: expiry and eviction both take from the front.
    order: VecDeque<Arc<KeyEntry>>,
}

impl Window {
    /// An empty window of `config`'s TTL and capacity (at least one key).
    pub(crate) fn new(config: KeyWindow) -> Self {
        Self {
            ttl_ms: i64::try_from(config.ttl.as_millis()).unwrap_or(i64::MAX),
            capacity: config.capacity.max(1),
            by_key: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Keys remembered (expired ones not dropped yet included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether `entry` is still within the TTL at `now`.
    fn live(&self, entry: &KeyEntry, now: TimestampMs) -> bool {
        now.saturating_sub(entry.at) < self.ttl_ms
    }

    /// The remembered entry of `(tenant, key)`, unless it expired.
    pub(crate) fn get(&self, tenant: &Tenant, key: &str, now: TimestampMs) -> Option<&KeyEntry> {
        // One lookup allocates the key: the writer thread does it once per keyed write.
        let entry = self.by_key.get(&(tenant.clone(), key.to_owned()))?;
        self.live(entry, now).then_some(&**entry)
    }

    /// Remembers `entry` unless it expired by `now` or its key is remembered already (replay meets a
    /// key twice when a crash came between a flush's carry-over and its manifest: the first is the
    /// same write's). Drops expired keys at the front, then the oldest past the capacity.
    pub(crate) fn insert(&mut self, entry: KeyEntry, now: TimestampMs) {
        self.expire(now);
        if !self.live(&entry, now) {
            return;
        }
        let id = (entry.tenant.clone(), entry.key.clone());
        if self.by_key.contains_key(&id) {
            return;
        }
        while self.by_key.len() >= self.capacity {
            self.pop_oldest();
        }
        let entry = Arc::new(entry);
        self.by_key.insert(id, Arc::clone(&entry));
        self.order.push_back(entry);
    }

    /// Drops the expired keys at the front.
    pub(crate) fn expire(&mut self, now: TimestampMs) {
        while self.order.front().is_some_and(|e| !self.live(e, now)) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(oldest) = self.order.pop_front() {
            let id = (oldest.tenant.clone(), oldest.key.clone());
            if self
                .by_key
                .get(&id)
                .is_some_and(|e| Arc::ptr_eq(e, &oldest))
            {
                self.by_key.remove(&id);
            }
        }
    }

    /// The live keys at `now`, oldest first, grouped into the `KEY_WINDOW` records a flush logs into the
    /// segment replay will start from (each closed past [`KEY_WINDOW_RECORD_BYTES`]).
    pub(crate) fn carried_over(&mut self, now: TimestampMs) -> Vec<Vec<u8>> {
        self.expire(now);
        let mut records = Vec::new();
        let mut group: Vec<&KeyEntry> = Vec::new();
        let mut bytes = 0;
        for entry in self.order.iter().filter(|e| self.live(e, now)) {
            group.push(entry);
            bytes += entry.encoded_len();
            if bytes >= KEY_WINDOW_RECORD_BYTES {
                records.push(crate::record::encode_key_window(&group));
                group.clear();
                bytes = 0;
            }
        }
        if !group.is_empty() {
            records.push(crate::record::encode_key_window(&group));
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use luminate_model::keyed::KeyedResponse;

    use super::*;
    use crate::record::Record;

    fn entry(tenant: &str, key: &str, at: TimestampMs, body: &str) -> KeyEntry {
        KeyEntry {
            tenant: Tenant::new(tenant),
            key: key.to_owned(),
            at,
            response: KeyedResponse {
                status: 200,
                body: body.as_bytes().into(),
            },
        }
    }

    fn window(ttl_ms: u64, capacity: usize) -> Window {
        Window::new(KeyWindow {
            ttl: Duration::from_millis(ttl_ms),
            capacity,
        })
    }

    #[test]
    fn keys_expire_by_their_logged_time_and_are_per_tenant() {
        let mut w = window(1_000, 10);
        w.insert(entry("a", "k", 10_000, "first"), 10_000);
        w.insert(entry("b", "k", 10_500, "other"), 10_500);
        let got = w.get(&Tenant::new("a"), "k", 10_999).unwrap();
        assert_eq!(&*got.response.body, b"first");
        assert_eq!(
            &*w.get(&Tenant::new("b"), "k", 10_999).unwrap().response.body,
            b"other"
        );
        assert!(
            w.get(&Tenant::new("a"), "k", 11_000).is_none(),
            "expired at at + ttl"
        );
        // An entry already expired when replayed is not remembered.
        w.insert(entry("a", "old", 1_000, "x"), 11_000);
        assert!(w.get(&Tenant::new("a"), "old", 11_000).is_none());
        w.expire(11_000);
        assert_eq!(w.len(), 1, "only b's key is left");
    }

    #[test]
    fn the_oldest_keys_leave_past_the_capacity_and_the_first_answer_stays() {
        let mut w = window(60_000, 2);
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            w.insert(entry("t", k, i as i64, k), 10);
        }
        assert_eq!(w.len(), 2);
        let t = Tenant::new("t");
        assert!(w.get(&t, "a", 10).is_none(), "a was evicted");
        w.insert(entry("t", "c", 5, "second"), 10);
        assert_eq!(&*w.get(&t, "c", 10).unwrap().response.body, b"c");
    }

    #[test]
    fn the_carried_over_records_hold_every_live_key_in_order() {
        let mut w = window(60_000, 1_000);
        let big = "x".repeat(KEY_WINDOW_RECORD_BYTES / 3);
        w.insert(entry("t", "expired", 0, "gone"), 0);
        for i in 0..5 {
            w.insert(entry("t", &format!("k{i}"), 50_000 + i, &big), 50_000);
        }
        let records = w.carried_over(70_000);
        assert_eq!(records.len(), 2, "three big keys fill a record");
        let keys: Vec<String> = records
            .iter()
            .flat_map(|r| match Record::decode(r) {
                Ok(Record::KeyWindow(keys)) => keys,
                other => panic!("{other:?}"),
            })
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4"]);
        assert!(window(1, 1).carried_over(0).is_empty());
    }
}
