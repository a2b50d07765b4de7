//! Exports over parts of several days, the frozen and active head and a tombstone, against the points
//! written: every visible point exactly once, each run in (timestamp, value) order, one run per series
//! and day, filters as queries apply them, and a sink that stops the export.

use std::collections::HashMap;

use luminate_model::export::EXPORT_BATCH_POINTS;
use luminate_model::{Dimensions, ExportPlan, Filter, Point, Tenant};

use crate::{Engine, EngineConfig};

const DAY: i64 = super::DAY_MS;

/// (name, dimensions, timestamp, value bits): a point as compared.
type Flat = (String, Vec<(String, String)>, i64, u64);

fn point(name: &str, dims: &[(&str, &str)], t: i64, v: f64) -> Point {
    Point {
        name: name.into(),
        timestamp: t,
        value: v,
        dimensions: Dimensions::from_pairs(dims.iter().map(|(k, v)| ((*k).into(), (*v).into()))),
    }
}

fn flat(p: &Point) -> Flat {
    (
        p.name.clone(),
        p.dimensions.pairs().to_vec(),
        p.timestamp,
        p.value.to_bits(),
    )
}

/// Three writes (two flushed to parts, one left in the head) over two days and two metrics.
fn written() -> Vec<Vec<Point>> {
    let hosts = [("a", Some("eu")), ("b", Some("us")), ("c", None)];
    let mut writes = vec![Vec::new(), Vec::new(), Vec::new()];
    for (w, write) in writes.iter_mut().enumerate() {
        for (h, (host, region)) in hosts.iter().enumerate() {
            let mut dims = vec![("host", *host)];
            if let Some(r) = region {
                dims.push(("region", *r));
            }
            for day in 0..2 {
                for i in 0..5i64 {
                    // Interleaved across writes, with equal timestamps ordered by value.
                    let t = day * DAY + i * 1000 + (w as i64 % 2) * 500;
                    write.push(point("cpu", &dims, t, (w * 10 + h) as f64 + i as f64 / 8.0));
                }
            }
            write.push(point("cpu", &dims, 3000, -(w as f64)));
        }
        write.push(point("mem", &[], w as i64 * 10, w as f64));
    }
    writes
}

fn engine(dir: &std::path::Path) -> Engine {
    let engine = Engine::open(EngineConfig::new(dir)).unwrap();
    let tenant = Tenant::new("t");
    let writes = written();
    for (i, points) in writes.into_iter().enumerate() {
        engine.write(&tenant, points).unwrap();
        if i < 2 {
            engine.flush().unwrap();
        }
    }
    // Hides mem's points before 10: the part's tombstone.
    engine.delete_before(&tenant, "mem", 10).unwrap();
    engine
}

/// Exports `plan`, checking the order of every run; the points, and the runs per (series, day).
fn export(engine: &Engine, plan: &ExportPlan) -> (Vec<Flat>, HashMap<(Flat, i64), usize>) {
    let mut points = Vec::new();
    let mut runs: HashMap<(Flat, i64), usize> = HashMap::new();
    engine
        .export(&Tenant::new("t"), plan, |batch| {
            for run in batch.runs() {
                let dims: Vec<(String, String)> = run
                    .pairs()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let pairs: Vec<(i64, f64)> = run
                    .timestamps
                    .iter()
                    .copied()
                    .zip(run.values.iter().copied())
                    .collect();
                assert!(
                    pairs.is_sorted_by(|a, b| (a.0, a.1) <= (b.0, b.1)),
                    "{pairs:?}"
                );
                if let Some(first) = pairs.first() {
                    let key = (
                        (run.name.to_owned(), dims.clone(), 0, 0),
                        first.0.div_euclid(DAY),
                    );
                    *runs.entry(key).or_default() += 1;
                }
                for (t, v) in pairs {
                    points.push((run.name.to_owned(), dims.clone(), t, v.to_bits()));
                }
            }
            true
        })
        .unwrap();
    (points, runs)
}

fn plan(metric: Option<&str>, filters: Vec<Filter>) -> ExportPlan {
    ExportPlan {
        metric: metric.map(str::to_owned),
        start: 0,
        end: 3 * DAY,
        filters,
    }
}

fn sorted(mut v: Vec<Flat>) -> Vec<Flat> {
    v.sort();
    v
}

#[test]
fn export_holds_every_visible_point_once_in_runs_by_series_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let expected: Vec<Flat> = written()
        .iter()
        .flatten()
        .filter(|p| p.name != "mem" || p.timestamp >= 10)
        .map(flat)
        .collect();
    let (points, runs) = export(&engine, &plan(None, vec![]));
    assert_eq!(points.len(), 3 * (3 * (2 * 5 + 1)) + 2);
    assert_eq!(sorted(points.clone()), sorted(expected.clone()));
    // Parts of two writes and the head merged: one run per series and day.
    assert!(runs.values().all(|&n| n == 1), "{runs:?}");
    assert_eq!(runs.len(), 3 * 2 + 1);
    // Metrics come by name: cpu, then mem.
    assert_eq!(points.last().unwrap().0, "mem");

    let (one, _) = export(&engine, &plan(Some("mem"), vec![]));
    assert_eq!(
        one,
        vec![
            ("mem".into(), vec![], 10, 1f64.to_bits()),
            ("mem".into(), vec![], 20, 2f64.to_bits())
        ]
    );
    let (none, _) = export(&engine, &plan(Some("absent"), vec![]));
    assert!(none.is_empty());
}

#[test]
fn export_applies_filters_and_the_range_as_queries_do() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let filters = vec![
        Filter::any_of("host", ["a", "c"]),
        Filter::any_of("region", ["eu", ""]),
    ];
    let mut p = plan(Some("cpu"), filters);
    p.start = 1000;
    p.end = DAY + 2000;
    let expected: Vec<Flat> = written()
        .iter()
        .flatten()
        .filter(|x| {
            x.name == "cpu"
                && p.matches(
                    x.dimensions
                        .pairs()
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                )
        })
        .filter(|x| x.timestamp >= 1000 && x.timestamp < DAY + 2000)
        .map(flat)
        .collect();
    let (points, _) = export(&engine, &p);
    assert!(!expected.is_empty());
    assert!(expected.iter().all(|x| x.1[0].1 != "b"));
    assert_eq!(sorted(points), sorted(expected));
}

#[test]
fn long_series_are_cut_into_full_batches_and_a_sink_can_stop_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let tenant = Tenant::new("t");
    let n = EXPORT_BATCH_POINTS as i64 * 2 + 100;
    let points: Vec<Point> = (0..n)
        .map(|i| point("long", &[("k", "v")], i, i as f64))
        .collect();
    for chunk in points.chunks(10_000) {
        engine.write(&tenant, chunk.to_vec()).unwrap();
    }
    let mut sizes = Vec::new();
    let mut next = 0i64;
    engine
        .export(&tenant, &plan(None, vec![]), |batch| {
            sizes.push(batch.len());
            for run in batch.runs() {
                assert_eq!(run.name, "long");
                for &t in run.timestamps {
                    assert_eq!(t, next);
                    next += 1;
                }
            }
            true
        })
        .unwrap();
    assert_eq!(sizes, [EXPORT_BATCH_POINTS, EXPORT_BATCH_POINTS, 100]);
    assert_eq!(next, n);
    let mut batches = 0;
    engine
        .export(&tenant, &plan(None, vec![]), |_| {
            batches += 1;
            false
        })
        .unwrap();
    assert_eq!(batches, 1);
}
