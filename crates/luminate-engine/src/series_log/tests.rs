use std::path::{Path, PathBuf};

use super::*;
use crate::record::{SeriesDef, SeriesDefs};
use crate::wal::{self, Wal};

const SEGMENT_BYTES: u64 = 64 << 20;

fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    Dimensions::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

/// Defines the next series of `tenant` in `index`.
fn define(index: &mut Index, tenant: &str, metric: &str, pairs: &[(&str, &str)]) {
    let ti = index.tenant_mut(&Tenant::new(tenant));
    let id = ti.series_count() as u32;
    ti.insert_with_id(id, metric, &dims(pairs)).unwrap();
}

/// Every series of every tenant as (tenant, id, metric, dimensions), sorted.
fn all_series(index: &Index) -> Vec<(String, u32, String, Dimensions)> {
    let mut out: Vec<_> = index
        .tenants()
        .flat_map(|(t, ti)| {
            (0..ti.series_count() as u32).map(move |id| {
                let s = ti.series(id);
                (
                    t.as_str().to_owned(),
                    id,
                    s.metric().to_owned(),
                    s.dimensions(),
                )
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

/// The decoded records of the log in `dir`.
fn records(dir: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    Wal::open(dir, wal::Start::First, SEGMENT_BYTES, |_, _, payload| {
        out.push(Record::decode(payload).unwrap());
        Ok(())
    })
    .unwrap();
    out
}

fn reopen(dir: &Path) -> (SeriesLog, Index) {
    let mut index = Index::default();
    let log = SeriesLog::open(dir, SEGMENT_BYTES, &mut index).unwrap();
    (log, index)
}

fn log_dir(root: &Path) -> PathBuf {
    root.join(wal::SERIES_DIR)
}

#[test]
fn series_log_round_trip_keeps_ids_and_writes_each_string_once() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let (mut log, mut index) = reopen(&dir);
    define(&mut index, "a", "lat", &[("cust", "c1"), ("region", "eu")]);
    define(&mut index, "a", "lat", &[("cust", "c2"), ("region", "eu")]);
    define(&mut index, "a", "up", &[]);
    define(&mut index, "b", "lat", &[("cust", "c1")]);
    log.persist(|| &index).unwrap();
    // A second flush: one series of new strings, one of strings already logged.
    define(
        &mut index,
        "a",
        "lat",
        &[("cust", "c3"), ("region", "us"), ("zone", "z")],
    );
    define(&mut index, "a", "up", &[("cust", "c2")]);
    log.persist(|| &index).unwrap();
    log.persist(|| &index).unwrap();
    drop(log);

    let (mut log, mut back) = reopen(&dir);
    assert_eq!(all_series(&back), all_series(&index));
    // After a restart, new series reuse the logged strings: the record carries only the new one.
    define(
        &mut back,
        "a",
        "lat",
        &[("cust", "c1"), ("region", "us"), ("zone", "z9")],
    );
    log.persist(|| &back).unwrap();
    drop(log);

    let recs = records(&dir);
    let strings: Vec<Vec<String>> = recs
        .iter()
        .map(|r| match r {
            Record::SeriesBatch(b) => b.strings.clone(),
            other => panic!("unexpected record {other:?}"),
        })
        .collect();
    let mut per_tenant_a: Vec<&Vec<String>> = Vec::new();
    for (r, s) in recs.iter().zip(&strings) {
        if let Record::SeriesBatch(b) = r
            && b.tenant.as_str() == "a"
        {
            per_tenant_a.push(s);
        }
    }
    assert_eq!(
        per_tenant_a,
        vec![
            &vec!["lat", "cust", "c1", "region", "eu", "c2", "up"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            &vec![
                "c3".to_owned(),
                "us".to_owned(),
                "zone".to_owned(),
                "z".to_owned()
            ],
            &vec!["z9".to_owned()],
        ]
    );
    let (_, again) = reopen(&dir);
    assert_eq!(all_series(&again), all_series(&back));
}

#[test]
fn many_series_span_several_batches() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let (mut log, mut index) = reopen(&dir);
    let n = MAX_BATCH_SERIES + 10;
    for i in 0..n {
        let c = format!("c{}", i % 1000);
        let e = format!("e{}", i / 1000);
        define(&mut index, "t", "lat", &[("cust", &c), ("endpoint", &e)]);
    }
    log.persist(|| &index).unwrap();
    drop(log);
    assert_eq!(records(&dir).len(), 2);
    let bytes = std::fs::metadata(dir.join("00000001.wal")).unwrap().len();
    assert!(bytes < 4 * n as u64, "{bytes} bytes for {n} series");
    let (_, back) = reopen(&dir);
    assert_eq!(all_series(&back), all_series(&index));
}

#[test]
fn series_logs_of_earlier_builds_are_read_and_extended() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let (mut old, _) = Wal::open(&dir, wal::Start::First, SEGMENT_BYTES, |_, _, _| Ok(())).unwrap();
    let defs = SeriesDefs {
        tenant: Tenant::new("t"),
        series: vec![
            SeriesDef {
                id: 0,
                metric: "lat".into(),
                dims: dims(&[("cust", "c1")]),
            },
            SeriesDef {
                id: 1,
                metric: "lat".into(),
                dims: dims(&[("cust", "c2")]),
            },
        ],
    };
    old.append(&defs.encode()).unwrap();
    old.sync().unwrap();
    drop(old);

    let (mut log, mut index) = reopen(&dir);
    assert_eq!(index.tenant(&Tenant::new("t")).unwrap().series_count(), 2);
    define(&mut index, "t", "lat", &[("cust", "c3")]);
    log.persist(|| &index).unwrap();
    drop(log);
    // The strings of the old records are not in the log's string table: logged with the new series.
    let Some(Record::SeriesBatch(batch)) = records(&dir).pop() else {
        panic!("no series batch")
    };
    assert_eq!(batch.first_series, 2);
    assert_eq!(batch.strings, vec!["lat", "cust", "c3"]);
    let (_, back) = reopen(&dir);
    assert_eq!(all_series(&back), all_series(&index));
}

#[test]
fn series_log_torn_tail_drops_only_the_last_batch() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let (mut log, mut index) = reopen(&dir);
    define(&mut index, "t", "lat", &[("cust", "c1")]);
    log.persist(|| &index).unwrap();
    let first = all_series(&index);
    define(&mut index, "t", "lat", &[("cust", "c2")]);
    log.persist(|| &index).unwrap();
    drop(log);
    let path = dir.join("00000001.wal");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);

    // The flush whose batch was torn never wrote its parts: its series are still in the WAL.
    let (mut log, mut back) = reopen(&dir);
    assert_eq!(all_series(&back), first);
    define(&mut back, "t", "lat", &[("cust", "c2")]);
    log.persist(|| &back).unwrap();
    drop(log);
    let (_, again) = reopen(&dir);
    assert_eq!(all_series(&again), all_series(&index));
}

#[test]
fn a_batch_naming_an_unlogged_string_is_corruption() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let (mut wal, _) = Wal::open(&dir, wal::Start::First, SEGMENT_BYTES, |_, _, _| Ok(())).unwrap();
    let batch = SeriesBatch {
        tenant: Tenant::new("t"),
        first_string: 0,
        strings: vec!["lat".into()],
        first_series: 0,
        metrics: vec![0],
        pair_counts: vec![1],
        pairs: vec![(0, 5)],
    };
    wal.append(&batch.encode().unwrap()).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let mut index = Index::default();
    match SeriesLog::open(&dir, SEGMENT_BYTES, &mut index) {
        Err(EngineError::Corruption { offset, reason, .. }) => {
            assert_eq!(offset, wal::HEADER_LEN as u64);
            assert!(reason.contains("string 5"), "{reason}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn series_log_damage_before_a_complete_batch_is_corruption_not_a_torn_tail() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let (mut log, mut index) = reopen(&dir);
    define(&mut index, "t", "lat", &[("cust", "c1")]);
    log.persist(|| &index).unwrap();
    define(&mut index, "t", "lat", &[("cust", "c2")]);
    log.persist(|| &index).unwrap();
    drop(log);
    let path = dir.join("00000001.wal");
    let mut bytes = std::fs::read(&path).unwrap();
    // Inside the first batch's payload (it starts after the segment header and its record header).
    bytes[wal::HEADER_LEN + 12] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let mut index = Index::default();
    match SeriesLog::recover(&dir, &mut index) {
        Err(EngineError::Corruption {
            path: p,
            offset,
            reason,
        }) => {
            assert_eq!((p, offset), (path.clone(), wal::HEADER_LEN as u64));
            assert!(reason.ends_with("not a torn tail"), "{reason}");
        }
        other => panic!("expected corruption, got {:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
