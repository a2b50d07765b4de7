//! The ClickHouse backend answers every query, discovery and cardinality call exactly as the reference
//! evaluator does — the embedded engine's differential suite (`luminate-engine/tests/
//! differential_conformance.rs`) run against a real `clickhouse-server`: random points of two tenants
//! written in random batches, random plans of every query type, then deletes (partial, and of every
//! point of a metric), reopening the store (schema creation on an existing database, adding dimension
//! columns), and writes that revive deleted series; odd seeds on a points table sorted by a dimension
//! first; once within one day partition and once over several days.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::Duration;

use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore};
use luminate_model::reference::ReferenceStore;
use luminate_model::testkit::{self, DIMENSIONS, METRICS, Rng};
use luminate_model::{MetricsStore, Point, QueryContext, Tenant};

const BASE: i64 = 1_800_000_000_000;
/// Four minutes: one day partition.
const SPAN: i64 = 4 * 60_000;
/// Two days and a half: several partitions per metric.
const DAYS_SPAN: i64 = 60 * 60 * 60_000;
const PLANS_PER_CHECK: usize = 100;

struct Harness {
    store: ClickhouseStore,
    /// The store's settings (its database, and for some seeds a sort dimension).
    settings: ClickhouseSettings,
    reference: ReferenceStore,
    main: Tenant,
    noise: Tenant,
    rng: Rng,
    seed: u64,
    span: i64,
}

impl Harness {
    async fn write(&mut self, tenant: &Tenant, points: &[Point]) {
        common::write(&self.store, tenant, points).await;
        for p in points {
            self.reference.insert(tenant, p.clone());
        }
    }

    /// Writes `points` in random batch sizes, with noise batches of another tenant in between.
    async fn write_in_batches(&mut self, points: &[Point], noise: &[Point]) {
        let (mut i, mut j) = (0, 0);
        while i < points.len() {
            let n = (1 + self.rng.below(200) as usize).min(points.len() - i);
            let main = self.main.clone();
            self.write(&main, &points[i..i + n]).await;
            i += n;
            if j < noise.len() && self.rng.chance(40) {
                let m = (1 + self.rng.below(30) as usize).min(noise.len() - j);
                let noise_tenant = self.noise.clone();
                self.write(&noise_tenant, &noise[j..j + m]).await;
                j += m;
            }
        }
    }

    async fn delete_before(&mut self, metric: &str, before: i64) {
        let expected = self.reference.delete_before(&self.main, metric, before);
        let deleted = self
            .store
            .delete_before(&self.main, metric, before)
            .await
            .unwrap();
        assert_eq!(
            deleted, expected,
            "seed {} delete {metric} before {before}",
            self.seed
        );
    }

    async fn check(&mut self, stage: &str) {
        let (store, reference, t) = (&self.store, &self.reference, &self.main);
        for i in 0..PLANS_PER_CHECK {
            let plan = testkit::random_plan(&mut self.rng, BASE, self.span);
            let expected = reference.query(t, &plan);
            let actual = store
                .query(t, &plan, &QueryContext::new(Duration::from_secs(30)))
                .await
                .unwrap_or_else(|e| panic!("seed {} {stage}, plan {i} {plan:?}: {e}", self.seed));
            if let Some(diff) = testkit::diff_results(&expected, &actual) {
                panic!("seed {} {stage}, plan {i} {plan:?}:\n{diff}", self.seed);
            }
        }
        let ctx = format!("seed {} {stage}", self.seed);
        for tenant in [t, &self.noise, &Tenant::new("nobody")] {
            assert_eq!(
                store.metric_names(tenant).await.unwrap(),
                reference.metric_names(tenant),
                "{ctx}"
            );
            assert_eq!(
                store.cardinality(tenant, None).await.unwrap(),
                reference.cardinality(tenant, None),
                "{ctx}"
            );
        }
        for metric in METRICS {
            assert_eq!(
                store.dimension_keys(t, metric).await.unwrap(),
                reference.dimension_keys(t, metric),
                "{ctx} {metric}"
            );
            assert_eq!(
                store.cardinality(t, Some(metric)).await.unwrap(),
                reference.cardinality(t, Some(metric)),
                "{ctx} {metric}"
            );
            for key in DIMENSIONS.iter().map(|(k, _)| *k).chain(["absent"]) {
                for prefix in ["", "c", "c1", "c2", "e", "5", "zz"] {
                    for limit in [1, 2, 100] {
                        assert_eq!(
                            store
                                .dimension_values(t, metric, key, prefix, limit)
                                .await
                                .unwrap(),
                            reference.dimension_values(t, metric, key, prefix, limit),
                            "{ctx} {metric} {key} {prefix:?} {limit}"
                        );
                    }
                }
            }
        }
    }

    /// A new store on the same database: schema creation finds everything in place, data persists.
    /// It reads `customer` and `region` from dimension columns, added now to a table holding points:
    /// the parts written before compute them when read, and every answer must stay the same.
    async fn reopen(&mut self) {
        self.store.close().await.unwrap();
        self.store = ClickhouseStore::open(ClickhouseSettings {
            dimension_columns: vec!["customer".into(), "region".into()],
            ..self.settings.clone()
        })
        .await
        .unwrap();
    }
}

const DATABASE: &str = "conformance";

/// Odd seeds' database: its points table is created with `customer` in the sort key.
const SORTED_DATABASE: &str = "conformance_sorted";

async fn run_seed(seed: u64, span: i64) {
    let mut rng = Rng::new(seed);
    let n = 300 + rng.below(1_700) as usize;
    let points = testkit::random_points(&mut rng, n, BASE, span);
    let noise = testkit::random_points(&mut rng, 200, BASE, span);
    let settings = if seed % 2 == 1 {
        ClickhouseSettings {
            sort_dimensions: vec!["customer".into()],
            ..common::settings(SORTED_DATABASE)
        }
    } else {
        common::settings(DATABASE)
    };
    let mut h = Harness {
        store: ClickhouseStore::open(settings.clone()).await.unwrap(),
        settings,
        reference: ReferenceStore::new(),
        // Tenants of their own per seed: seeds share the database (and run concurrently).
        main: Tenant::new(format!("main-{seed}")),
        noise: Tenant::new(format!("noise-{seed}")),
        rng,
        seed,
        span,
    };
    h.write_in_batches(&points, &noise).await;
    h.check("after writes").await;

    // A partial delete of one metric, and on some seeds every point of another (which must then be
    // unknown to discovery).
    let partial = *h.rng.pick(&METRICS);
    let before = BASE + h.rng.below(span as u64) as i64;
    h.delete_before(partial, before).await;
    if seed % 2 == 1 {
        h.delete_before(METRICS[1], BASE + span).await;
        assert_eq!(
            h.store.dimension_keys(&h.main, METRICS[1]).await.unwrap(),
            None
        );
    }
    h.check("after deletes").await;

    h.reopen().await;
    // Writes after deletes revive deleted series.
    let more = testkit::random_points(&mut h.rng, 300, BASE, span);
    h.write_in_batches(&more, &[]).await;
    h.check("after reopening and more writes").await;
}

#[tokio::test]
async fn clickhouse_matches_reference_within_one_day() {
    for seed in 0..12 {
        run_seed(seed, SPAN).await;
    }
}

#[tokio::test]
async fn clickhouse_matches_reference_over_several_day_partitions() {
    for seed in 100..106 {
        run_seed(seed, DAYS_SPAN).await;
    }
}
