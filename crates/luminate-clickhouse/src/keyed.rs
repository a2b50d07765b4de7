//! keyed: writes sent with an `Idempotency-Key`, made as safe across a Luminate crash as ClickHouse
//! 18.16 allows.
//!
//! 18.16 has no `insert_deduplication_token` (it came in 22.2; 18.16 refuses it as an unknown setting),
//! and its block-level deduplication of identical inserts works only on `Replicated*MergeTree` tables,
//! which the points table is not (a plain `MergeTree`, or a `Distributed` over plain ones). Luminate keeps
//! no log of its own on this backend (ClickHouse holds the data; replicas hold no state). What it does
//! instead uses the `write_id` column the retry rule already has (`crate::write`): a keyed write's
//! `write_id` is not random but derived from the tenant, the key and the batch's points
//! ([`keyed_write_id`]), and the write is *reconciled* before it is inserted — the points of that id are
//! counted per (day, metric, series) and only the units with none are inserted. So a keyed batch
//! resent after the Luminate process that stored it died (or by another replica) finds its points and
//! stores nothing; its answer is rebuilt from the same outcome, which gives the same bytes as the
//! first unless the cardinality guard (per process, approximate) judges the batch differently.
//!
//! What it costs: one `SELECT` over the batch's tenant, metrics and time range before each keyed
//! insert. What it does not do: a different batch under the same key is a new write (its id differs),
//! where the embedded engine would answer the first batch's response within the TTL; and the same batch
//! under the same key is never stored twice, TTL or not (the embedded engine stores it again once the
//! key expired). Two identical keyed retries racing each other in two processes can both find nothing
//! and both insert.

use luminate_model::{PointBatch, StoreError, Tenant, WriteOutcome};

use crate::service::Service;
use crate::write::reconcile;

/// FNV-1a, 64 bits: stable across builds and platforms (the id must be the same in the process that
/// retries as in the one that stored), which `std`'s hasher does not promise.
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// A string, with its length first so that no two sequences of strings hash alike by construction.
    fn str(&mut self, s: &str) {
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
    }
}

/// The `write_id` of a keyed write: a hash of the tenant, the key and every point (metric, timestamp,
/// value bits, dimensions) in order.
pub(crate) fn keyed_write_id(tenant: &Tenant, key: &str, batch: &PointBatch) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.str("luminate keyed write v1");
    h.str(tenant.as_str());
    h.str(key);
    for p in batch.iter() {
        h.str(p.name);
        h.bytes(&p.timestamp.to_le_bytes());
        h.bytes(&p.value.to_bits().to_le_bytes());
        h.bytes(&(p.pairs().count() as u64).to_le_bytes());
        for (k, v) in p.pairs() {
            h.str(k);
            h.str(v);
        }
    }
    h.0
}

/// Stores the points of a keyed write that are not stored under its id yet. Returns the outcome and
/// whether every point was there already (a resend of a stored batch: nothing was inserted).
pub(crate) async fn write_keyed(
    service: &Service,
    tenant: &Tenant,
    batch: &PointBatch,
    key: &str,
) -> Result<(WriteOutcome, bool), StoreError> {
    if batch.is_empty() {
        return Ok((WriteOutcome::default(), false));
    }
    let write_id = keyed_write_id(tenant, key, batch);
    let sent = reconcile(service, tenant, batch, write_id).await?;
    let outcome = WriteOutcome {
        accepted: batch.len(),
        ..WriteOutcome::default()
    };
    Ok((outcome, !sent))
}

#[cfg(test)]
mod tests {
    use luminate_model::{Dimensions, Point};

    use super::*;
    use crate::testing::shared;

    fn batch(values: &[f64]) -> PointBatch {
        PointBatch::from_points(values.iter().enumerate().map(|(i, &value)| Point {
            name: "m".into(),
            timestamp: 1_800_000_000_000 + i as i64,
            value,
            dimensions: Dimensions::from_pairs([("k".into(), format!("v{i}"))]),
        }))
    }

    #[test]
    fn the_id_is_pinned_and_changes_with_the_tenant_the_key_and_every_point() {
        let t = Tenant::new("t");
        let id = keyed_write_id(&t, "k", &batch(&[1.0, 2.0]));
        // Pinned: a build that hashed differently would store a retry of an older build's batch again.
        assert_eq!(id, keyed_write_id(&t, "k", &batch(&[1.0, 2.0])));
        assert_eq!(format!("{id:016x}"), "5bd6ff3af2bf90d1");
        assert_ne!(
            id,
            keyed_write_id(&Tenant::new("u"), "k", &batch(&[1.0, 2.0]))
        );
        assert_ne!(id, keyed_write_id(&t, "k2", &batch(&[1.0, 2.0])));
        assert_ne!(id, keyed_write_id(&t, "k", &batch(&[1.0, 2.5])));
        assert_ne!(id, keyed_write_id(&t, "k", &batch(&[1.0])));
    }

    use crate::testing::service;

    fn stored(database: &str) -> String {
        shared()
            .sql(&format!("SELECT count() FROM {database}.points"))
            .unwrap()
    }

    #[tokio::test]
    async fn a_keyed_batch_resent_by_another_process_is_stored_once() {
        let db = "keyed_resend";
        let tenant = Tenant::new("t");
        let points = batch(&[1.0, 2.0, 3.0]);
        let first = service(db).await;
        let (outcome, resent) = write_keyed(&first, &tenant, &points, "k1").await.unwrap();
        assert_eq!((outcome.accepted, resent), (3, false));
        drop(first);
        // A new service, as after a restart: nothing in memory, the stored points answer.
        let second = service(db).await;
        let (outcome, resent) = write_keyed(&second, &tenant, &points, "k1").await.unwrap();
        assert_eq!((outcome.accepted, resent), (3, true));
        assert_eq!(stored(db), "3\n");
        // Another key, or another batch under the key, is a new write.
        let (_, resent) = write_keyed(&second, &tenant, &points, "k2").await.unwrap();
        assert!(!resent);
        let (_, resent) = write_keyed(&second, &tenant, &batch(&[9.0]), "k1")
            .await
            .unwrap();
        assert!(!resent);
        assert_eq!(stored(db), "7\n");
    }

    /// What 18.16 itself offers, pinned so the docs stay true: no `insert_deduplication_token`, and an
    /// identical insert into a plain `MergeTree` is stored twice (block deduplication needs a
    /// `Replicated*MergeTree`, hence ZooKeeper, which the test server does not run). On the chDB
    /// adapter (26.x) the insert is stored twice too, and the setting is known.
    #[tokio::test]
    async fn clickhouse_18_16_has_no_deduplication_for_plain_merge_trees() {
        let server = shared();
        let db = "keyed_server_dedup";
        server
            .sql(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .unwrap();
        server
            .sql(&format!(
                "CREATE TABLE {db}.plain (x UInt64) ENGINE = MergeTree() ORDER BY x"
            ))
            .unwrap();
        let insert = format!("INSERT INTO {db}.plain VALUES (1), (2)");
        server.sql(&insert).unwrap();
        server.sql(&insert).unwrap();
        assert_eq!(
            server
                .sql(&format!("SELECT count() FROM {db}.plain"))
                .unwrap(),
            "4\n"
        );
        // 18.16's INSERT takes no SETTINGS clause; as a URL parameter, the setting is unknown to it.
        let service = service(db).await;
        let body = bytes::Bytes::from_static(b"3\n");
        let sql = format!("INSERT INTO {db}.plain FORMAT TabSeparated");
        let settings = [("insert_deduplication_token", "k".to_owned())];
        let st = crate::transport::Statement {
            sql: &sql,
            data: Some(&body),
            query_id: None,
            settings: &settings,
            timeout: std::time::Duration::from_secs(10),
        };
        let outcome = service.run_statement(&st).await;
        if crate::testing::ServerKind::selected() == crate::testing::ServerKind::ChdbAdapter {
            // ClickHouse 26.x (chDB) knows the setting; the backend's keyed writes do not rely on it
            // either way (their write_id is reconciled before the insert).
            assert!(outcome.is_ok(), "{:?}", outcome.err());
            return;
        }
        let err = outcome.unwrap_err();
        let err = service.to_store_error(err).to_string();
        assert!(
            err.contains("Unknown setting insert_deduplication_token"),
            "{err}"
        );
    }
}
