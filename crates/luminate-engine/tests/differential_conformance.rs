//! The engine answers every query, discovery and cardinality call exactly as the reference evaluator
//! does — on the live head, after deletes, and after a restart that rebuilds the head from the WAL; and
//! with the data spread over the head, a frozen head and many parts, after compaction, after deletes
//! (tombstones, whole-part drops, rewrites) and after restarts from parts.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::time::Duration;

use luminate_engine::{Engine, EngineConfig, SyncPolicy};
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::reference::ReferenceStore;
use luminate_model::testkit::{self, DIMENSIONS, METRICS, Rng};
use luminate_model::{Point, QueryContext, Tenant};

const BASE: i64 = 1_800_000_000_000;
const SPAN: i64 = 4 * 60_000;
const SEEDS: u64 = 24;
const PLANS_PER_CHECK: usize = 100;

struct Harness {
    // `None` only while reopening.
    engine: Option<Engine>,
    reference: ReferenceStore,
    main: Tenant,
    noise: Tenant,
    rng: Rng,
    seed: u64,
    /// Write and delete calls that stored something: one WAL record each.
    records: u64,
    /// Every record is replayed on reopen (no flush deletes WAL segments).
    exact_replay: bool,
    /// Spread of the timestamps.
    span: i64,
}

impl Harness {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().unwrap()
    }

    fn write(&mut self, tenant: &Tenant, points: &[Point]) {
        let outcome = self.engine().write(tenant, points.to_vec()).unwrap();
        assert_eq!(
            (outcome.accepted, outcome.rejected.len()),
            (points.len(), 0),
            "seed {}",
            self.seed
        );
        for p in points {
            self.reference.insert(tenant, p.clone());
        }
        self.records += 1;
    }

    /// Writes `points` in random batch sizes, with noise batches of another tenant in between.
    fn write_in_batches(&mut self, points: &[Point], noise: &[Point]) {
        let (mut i, mut j) = (0, 0);
        while i < points.len() {
            let n = (1 + self.rng.below(200) as usize).min(points.len() - i);
            let main = self.main.clone();
            self.write(&main, &points[i..i + n]);
            i += n;
            if j < noise.len() && self.rng.chance(40) {
                let m = (1 + self.rng.below(30) as usize).min(noise.len() - j);
                let noise_tenant = self.noise.clone();
                self.write(&noise_tenant, &noise[j..j + m]);
                j += m;
            }
        }
    }

    fn delete_before(&mut self, metric: &str, before: i64) {
        let expected = self.reference.delete_before(&self.main, metric, before);
        let deleted = self
            .engine()
            .delete_before(&self.main, metric, before)
            .unwrap();
        assert_eq!(
            deleted, expected,
            "seed {} delete {metric} before {before}",
            self.seed
        );
        self.records += 1;
    }

    fn check(&mut self, stage: &str) {
        let (engine, reference, t) = (self.engine.as_ref().unwrap(), &self.reference, &self.main);
        for i in 0..PLANS_PER_CHECK {
            let plan = testkit::random_plan(&mut self.rng, BASE, self.span);
            let expected = reference.query(t, &plan);
            let actual = engine
                .query(t, &plan, &QueryContext::new(Duration::from_secs(30)))
                .unwrap();
            if let Some(diff) = testkit::diff_results(&expected, &actual) {
                panic!("seed {} {stage}, plan {i} {plan:?}:\n{diff}", self.seed);
            }
        }
        let ctx = format!("seed {} {stage}", self.seed);
        for tenant in [t, &self.noise, &Tenant::new("nobody")] {
            assert_eq!(
                engine.metric_names(tenant),
                reference.metric_names(tenant),
                "{ctx}"
            );
            assert_eq!(
                engine.cardinality(tenant, None),
                reference.cardinality(tenant, None),
                "{ctx}"
            );
        }
        for metric in METRICS {
            assert_eq!(
                engine.dimension_keys(t, metric),
                reference.dimension_keys(t, metric),
                "{ctx} {metric}"
            );
            assert_eq!(
                engine.cardinality(t, Some(metric)),
                reference.cardinality(t, Some(metric)),
                "{ctx} {metric}"
            );
            for key in DIMENSIONS.iter().map(|(k, _)| *k).chain(["absent"]) {
                for prefix in ["", "c", "c1", "c2", "e", "5", "zz"] {
                    for limit in [1, 2, 100] {
                        assert_eq!(
                            engine.dimension_values(t, metric, key, prefix, limit),
                            reference.dimension_values(t, metric, key, prefix, limit),
                            "{ctx} {metric} {key} {prefix:?} {limit}"
                        );
                    }
                }
            }
        }
    }

    /// Moments (count, sum, avg, min, max) over ranges starting and ending on block and day edges (the
    /// parts' summary blocks are hours), a millisecond either side, or anywhere; without buckets or
    /// with buckets holding whole blocks, straddling them, or narrower.
    fn check_moments_at_block_edges(&mut self, stage: &str) {
        const HOUR: i64 = 3_600_000;
        let (engine, reference, t) = (self.engine.as_ref().unwrap(), &self.reference, &self.main);
        let hours = self.span / HOUR + 2;
        let intervals = [
            None,
            Some(HOUR),
            Some(2 * HOUR),
            Some(HOUR * 3 / 2),
            Some(86_400_000),
            Some(60_000),
        ];
        for i in 0..PLANS_PER_CHECK {
            let mut plan = testkit::random_plan(&mut self.rng, BASE, self.span);
            let bound = |rng: &mut Rng| {
                if rng.chance(20) {
                    BASE - HOUR + rng.below((hours * HOUR) as u64) as i64
                } else {
                    BASE + (rng.below(hours as u64) as i64 - 1) * HOUR + rng.below(3) as i64 - 1
                }
            };
            let (a, b) = (bound(&mut self.rng), bound(&mut self.rng));
            (plan.start, plan.end) = (a.min(b), a.max(b) + i64::from(a == b));
            plan.kind = QueryKind::Aggregate(*self.rng.pick(&[
                Aggregation::Count,
                Aggregation::Sum,
                Aggregation::Avg,
                Aggregation::Min,
                Aggregation::Max,
            ]));
            plan.interval_ms = *self.rng.pick(&intervals);
            let expected = reference.query(t, &plan);
            let actual = engine
                .query(t, &plan, &QueryContext::new(Duration::from_secs(30)))
                .unwrap();
            if let Some(diff) = testkit::diff_results(&expected, &actual) {
                panic!(
                    "seed {} {stage}, edge plan {i} {plan:?}:\n{diff}",
                    self.seed
                );
            }
        }
    }

    fn reopen(&mut self, config: &EngineConfig) {
        // Dropping the engine closes it (the writer commits and syncs); the new one replays the WAL.
        self.engine = None;
        self.engine = Some(Engine::open(config.clone()).unwrap());
        let report = self.engine().recovery_report();
        if self.exact_replay {
            assert_eq!(report.records_replayed, self.records, "seed {}", self.seed);
        } else {
            assert!(
                report.records_replayed <= self.records,
                "seed {}",
                self.seed
            );
        }
        assert!(
            report.dropped.is_empty(),
            "seed {}: {:?}",
            self.seed,
            report.dropped
        );
    }
}

#[test]
fn engine_matches_reference_before_and_after_replay_and_deletes() {
    for seed in 0..SEEDS {
        let dir = tempfile::tempdir().unwrap();
        let sync = match seed % 3 {
            0 => SyncPolicy::Always,
            1 => SyncPolicy::Interval(Duration::from_millis(5)),
            _ => SyncPolicy::None,
        };
        // Small segments on some seeds, so replay crosses segment boundaries.
        let wal_segment_bytes = if seed % 2 == 0 { 16 << 10 } else { 64 << 20 };
        let config = EngineConfig {
            sync,
            wal_segment_bytes,
            ..EngineConfig::new(dir.path())
        };
        let mut rng = Rng::new(seed);
        let n = 300 + rng.below(1_700) as usize;
        let points = testkit::random_points(&mut rng, n, BASE, SPAN);
        let noise = testkit::random_points(&mut rng, 200, BASE, SPAN);
        let mut h = Harness {
            engine: Some(Engine::open(config.clone()).unwrap()),
            reference: ReferenceStore::new(),
            main: Tenant::new("main"),
            noise: Tenant::new("noise"),
            rng,
            seed,
            records: 0,
            exact_replay: true,
            span: SPAN,
        };
        h.write_in_batches(&points, &noise);
        h.check("after writes");

        // A partial delete of one metric, and on some seeds every point of another (which must then be
        // unknown to discovery).
        let partial = *h.rng.pick(&METRICS);
        let before = BASE + h.rng.below(SPAN as u64) as i64;
        h.delete_before(partial, before);
        if seed % 2 == 1 {
            h.delete_before(METRICS[1], BASE + SPAN);
            assert_eq!(h.engine().dimension_keys(&h.main, METRICS[1]), None);
        }
        h.check("after deletes");

        h.reopen(&config);
        h.check("after replay");

        // Writes after replay continue the series ids and revive deleted series.
        let more = testkit::random_points(&mut h.rng, 300, BASE, SPAN);
        h.write_in_batches(&more, &[]);
        h.check("after writes following replay");
        h.reopen(&config);
        h.check("after second replay");
    }
}

/// Two days and a half: parts of several UTC days per metric.
const PARTS_SPAN: i64 = 60 * 60 * 60_000;

#[test]
fn engine_matches_reference_with_data_in_many_parts_after_compaction_deletes_and_restarts() {
    for seed in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let sync = match seed % 3 {
            0 => SyncPolicy::Always,
            1 => SyncPolicy::Interval(Duration::from_millis(5)),
            _ => SyncPolicy::None,
        };
        let mut rng = Rng::new(1_000 + seed);
        // A tiny head: every seed flushes many times, so data lies in the head, maybe a frozen head,
        // and many parts; merges need 2 to 4 parts.
        let config = EngineConfig {
            sync,
            wal_segment_bytes: if seed % 2 == 0 { 8 << 10 } else { 64 << 20 },
            head_max_points: 50 + rng.below(250),
            compaction_min_parts: 2 + (seed % 3) as usize,
            ..EngineConfig::new(dir.path())
        };
        let n = 1_000 + rng.below(2_000) as usize;
        let points = testkit::random_points(&mut rng, n, BASE, PARTS_SPAN);
        let noise = testkit::random_points(&mut rng, 300, BASE, PARTS_SPAN);
        let mut h = Harness {
            engine: Some(Engine::open(config.clone()).unwrap()),
            reference: ReferenceStore::new(),
            main: Tenant::new("main"),
            noise: Tenant::new("noise"),
            rng,
            seed,
            records: 0,
            exact_replay: false,
            span: PARTS_SPAN,
        };
        h.write_in_batches(&points, &noise);
        assert!(
            h.engine().part_count() > 2,
            "seed {seed}: {}",
            h.engine().part_count()
        );
        h.check("with data in parts");

        // Tombstones cutting into parts (a partial delete), and on some seeds a delete of every point
        // of a metric (whole parts dropped by compaction).
        let partial = *h.rng.pick(&METRICS);
        let before = BASE + h.rng.below(PARTS_SPAN as u64) as i64;
        h.delete_before(partial, before);
        if seed % 2 == 1 {
            h.delete_before(METRICS[1], BASE + PARTS_SPAN);
        }
        h.check("after deletes over parts");
        h.engine().compact().unwrap();
        h.check("after compaction");

        let more = testkit::random_points(&mut h.rng, 500, BASE, PARTS_SPAN);
        h.write_in_batches(&more, &[]);
        let before = BASE + h.rng.below(PARTS_SPAN as u64) as i64;
        h.delete_before(METRICS[0], before);
        h.check("after writes and a delete following compaction");
        h.reopen(&config);
        h.check("after restart from parts");

        h.engine().flush().unwrap();
        h.engine().compact().unwrap();
        h.check("after a flush and compaction");
        h.reopen(&config);
        h.check("after a second restart");
    }
}

/// Moments answered from the parts' block summaries never differ from the reference: data over two
/// days and a half in many parts and the head, ranges and tombstones on block edges and a millisecond
/// off them, after compaction (parts merged and rewritten under tombstones) and restarts. Even seeds
/// summarise every part in hourly blocks; odd ones let each part choose its width by its rows per
/// series, which puts these sparse series in one block per part (a day).
#[test]
fn moments_from_block_summaries_match_reference_at_block_edges_after_compaction_deletes_and_restarts()
 {
    const HOUR: i64 = 3_600_000;
    for seed in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng::new(2_000 + seed);
        let config = EngineConfig {
            sync: SyncPolicy::None,
            head_max_points: 200 + rng.below(800),
            compaction_min_parts: 2 + (seed % 3) as usize,
            // Even seeds: every part summarised hourly, however few rows its blocks hold.
            summary_min_rows: if seed % 2 == 0 { 0 } else { 3 },
            ..EngineConfig::new(dir.path())
        };
        let n = 3_000 + rng.below(3_000) as usize;
        let points = testkit::random_points(&mut rng, n, BASE, PARTS_SPAN);
        let mut h = Harness {
            engine: Some(Engine::open(config.clone()).unwrap()),
            reference: ReferenceStore::new(),
            main: Tenant::new("main"),
            noise: Tenant::new("noise"),
            rng,
            seed,
            records: 0,
            exact_replay: false,
            span: PARTS_SPAN,
        };
        h.write_in_batches(&points, &[]);
        assert!(h.engine().part_count() > 2, "seed {seed}");
        let widths = h.engine().part_summary_blocks();
        let want = if seed % 2 == 0 { HOUR } else { 24 * HOUR };
        assert!(
            widths.iter().any(|(_, w)| *w == Some(want)),
            "seed {seed}: {widths:?}"
        );
        h.check_moments_at_block_edges("with data in parts");

        // Tombstones one millisecond into a block, and exactly on a block edge.
        let hours = PARTS_SPAN / HOUR;
        let cut = BASE + (1 + h.rng.below(hours as u64 / 2) as i64) * HOUR + 1;
        h.delete_before(METRICS[0], cut);
        let edge = BASE + (1 + h.rng.below(hours as u64 / 2) as i64) * HOUR;
        h.delete_before(METRICS[1], edge);
        h.check_moments_at_block_edges("after deletes cutting blocks");
        h.engine().compact().unwrap();
        h.check_moments_at_block_edges("after compaction");

        let more = testkit::random_points(&mut h.rng, 1_000, BASE, PARTS_SPAN);
        h.write_in_batches(&more, &[]);
        h.reopen(&config);
        h.check_moments_at_block_edges("after restart from parts");
        h.engine().flush().unwrap();
        h.engine().compact().unwrap();
        h.check_moments_at_block_edges("after a flush and compaction");
    }
}
