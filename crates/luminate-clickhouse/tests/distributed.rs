//! A two-shard cluster (two `clickhouse-server` processes on loopback ports, `Distributed` tables over
//! local `MergeTree` tables) answers every query, discovery, cardinality, delete and retention call
//! exactly like a single node holding the same points, and like the reference evaluator.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::Duration;

use luminate_clickhouse::testing::{ClickhouseServer, two_shard_cluster};
use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore};
use luminate_model::reference::ReferenceStore;
use luminate_model::testkit::{self, DIMENSIONS, METRICS, Rng};
use luminate_model::{MetricsStore, QueryContext, Tenant};

const BASE: i64 = 1_800_000_000_000;
/// A day and a half: points in two partitions on each shard.
const SPAN: i64 = 36 * 60 * 60_000;
const CLUSTER: &str = "luminate_two_shards";

/// Rows of the local points table of one shard.
fn local_rows(shard: &ClickhouseServer) -> u64 {
    shard
        .sql("SELECT count() FROM dist.points_local")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn same_answers(
    cluster: &ClickhouseStore,
    single: &ClickhouseStore,
    reference: &ReferenceStore,
    tenant: &Tenant,
    rng: &mut Rng,
    stage: &str,
) {
    for i in 0..150 {
        let plan = testkit::random_plan(rng, BASE, SPAN);
        let ctx = QueryContext::new(Duration::from_secs(30));
        let expected = reference.query(tenant, &plan);
        let from_cluster = cluster.query(tenant, &plan, &ctx).await.unwrap();
        let from_single = single.query(tenant, &plan, &ctx).await.unwrap();
        assert_eq!(
            testkit::diff_results(&expected, &from_cluster),
            None,
            "{stage} plan {i} {plan:?}"
        );
        assert_eq!(from_cluster, from_single, "{stage} plan {i} {plan:?}");
    }
    for metric in METRICS {
        assert_eq!(
            cluster.dimension_keys(tenant, metric).await.unwrap(),
            single.dimension_keys(tenant, metric).await.unwrap()
        );
        for (key, _) in DIMENSIONS {
            for prefix in ["", "c1", "e"] {
                let expected = reference.dimension_values(tenant, metric, key, prefix, 3);
                assert_eq!(
                    cluster
                        .dimension_values(tenant, metric, key, prefix, 3)
                        .await
                        .unwrap(),
                    expected
                );
            }
        }
    }
    assert_eq!(
        cluster.metric_names(tenant).await.unwrap(),
        reference.metric_names(tenant)
    );
    assert_eq!(
        cluster.cardinality(tenant, None).await.unwrap(),
        single.cardinality(tenant, None).await.unwrap()
    );
}

#[tokio::test]
async fn two_shards_behind_distributed_tables_answer_like_one_node() {
    if luminate_clickhouse::testing::skip_on_adapter(
        "a cluster: the adapter has no native protocol and no remote_servers, so no Distributed tables between servers",
    ) {
        return;
    }
    let (shard_a, shard_b) = two_shard_cluster(CLUSTER);
    let cluster = ClickhouseStore::open(ClickhouseSettings {
        addresses: vec![shard_a.address(), shard_b.address()],
        cluster: Some(CLUSTER.into()),
        // Through the Distributed table too: inserts leave the column to the shards, reads use it.
        dimension_columns: vec!["customer".into()],
        sort_dimensions: vec!["region".into()],
        ..shard_a.settings("dist")
    })
    .await
    .unwrap();
    let single_node = ClickhouseServer::start();
    let single = ClickhouseStore::open(single_node.settings("single"))
        .await
        .unwrap();

    let mut rng = Rng::new(7);
    let tenant = Tenant::new("main");
    let points = testkit::random_points(&mut rng, 3_000, BASE, SPAN);
    let mut reference = ReferenceStore::new();
    for chunk in points.chunks(250) {
        common::write(&cluster, &tenant, chunk).await;
        common::write(&single, &tenant, chunk).await;
        for p in chunk {
            reference.insert(&tenant, p.clone());
        }
    }
    // Acknowledged means stored on the shards (synchronous distributed inserts), spread over both.
    let (on_a, on_b) = (local_rows(&shard_a), local_rows(&shard_b));
    assert_eq!(on_a + on_b, points.len() as u64);
    assert!(on_a > 0 && on_b > 0, "{on_a} + {on_b}");

    same_answers(
        &cluster,
        &single,
        &reference,
        &tenant,
        &mut rng,
        "after writes",
    )
    .await;

    // Deletes mutate each shard's local table; the count is the cluster's.
    let before = BASE + SPAN / 2;
    let expected = reference.delete_before(&tenant, METRICS[0], before);
    assert_eq!(
        cluster
            .delete_before(&tenant, METRICS[0], before)
            .await
            .unwrap(),
        expected
    );
    assert_eq!(
        single
            .delete_before(&tenant, METRICS[0], before)
            .await
            .unwrap(),
        expected
    );
    same_answers(
        &cluster,
        &single,
        &reference,
        &tenant,
        &mut rng,
        "after a delete",
    )
    .await;

    // Overrides live in a distributed table too: any node reads every one.
    let day = Duration::from_secs(86_400);
    for (i, metric) in ["a", "b", "c", "d"].into_iter().enumerate() {
        cluster
            .set_retention(&Tenant::new(format!("t{i}")), metric, day)
            .await
            .unwrap();
    }
    let tenants: Vec<String> = cluster
        .tenants()
        .await
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(tenants, ["main", "t0", "t1", "t2", "t3"]);
    for _ in 0..2 {
        // Round-robin: consecutive calls start on different nodes.
        assert_eq!(
            cluster
                .retention_overrides(&Tenant::new("t2"))
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

/// The newest-sample rule through `Distributed` tables: the lookup of a large batch's series (a
/// statement past the default `max_query_size`) runs on both shards, and a resend stores nothing.
#[tokio::test]
async fn a_large_protocol_batch_resent_through_two_shards_stores_nothing_twice() {
    if luminate_clickhouse::testing::skip_on_adapter(
        "a cluster: the adapter has no native protocol and no remote_servers, so no Distributed tables between servers",
    ) {
        return;
    }
    let (shard_a, shard_b) = two_shard_cluster("luminate_newest");
    let cluster = ClickhouseStore::open(ClickhouseSettings {
        addresses: vec![shard_a.address(), shard_b.address()],
        cluster: Some("luminate_newest".into()),
        ..shard_a.settings("dist_newest")
    })
    .await
    .unwrap();
    let tenant = Tenant::new("main");
    let t = luminate_model::time::now_ms() - 60_000;
    let batch = std::sync::Arc::new(luminate_model::PointBatch::from_points((0..5_000).map(
        |i| {
            common::point(
                "req",
                t,
                1.0,
                &[("customer_id", &format!("customer-{i:05}"))],
            )
        },
    )));
    let first = cluster.write_samples(&tenant, batch.clone()).await.unwrap();
    assert_eq!((first.accepted, first.duplicates), (5_000, 0));
    let resent = cluster.write_samples(&tenant, batch).await.unwrap();
    assert_eq!((resent.accepted, resent.duplicates), (0, 5_000));
    assert_eq!(common::count(&cluster, &tenant, "req").await, 5_000);
}
