//! `--dataset-out DIR`: the benchmark's dataset as files that `bench/peers.sh` loads into other
//! databases, point for point the same as what `luminate bench` sends with the same arguments.
//!
//! ```text
//! DIR/vm/NNNN.prom   Prometheus text with ms timestamps (VictoriaMetrics /api/v1/import/prometheus)
//! DIR/ch/NNNN.tsv    TabSeparated rows (ClickHouse INSERT ... FORMAT TabSeparated)
//! DIR/meta.json      the hour, the query parameters, point and series counts, the exact answers
//! ```
//!
//! Files hold at most [`CHUNK_POINTS`] points, so a loader can send them over several connections and
//! no single request is huge.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::MultiProgress;
use serde_json::{Value, json};

use super::BenchError;
use super::answers::{FILTER_REGION, Reference};
use super::dataset::{COMBINATIONS, Dataset};
use super::formats::{Row, push_prometheus_line, push_tsv_row};
use super::load::bar;
use super::queries::{Request, query_set};

/// Points per file.
pub const CHUNK_POINTS: u64 = 500_000;

/// Writes the dataset files and `meta.json` under `dir`; returns the meta document.
pub fn write_dataset(
    dir: &Path,
    dataset: &Dataset,
    reference: &Reference,
    multi: &MultiProgress,
) -> Result<Value, BenchError> {
    let mut vm = ChunkedFile::new(dir.join("vm"), "prom")?;
    let mut ch = ChunkedFile::new(dir.join("ch"), "tsv")?;
    let total = dataset.spec.points + dataset.spec.counter_points;
    let progress = bar(multi, total, "export");
    let rows = dataset
        .latency_points()
        .map(Row::Latency)
        .chain(dataset.counter_points().map(Row::Counter));
    let mut line = Vec::with_capacity(256);
    for row in rows {
        line.clear();
        push_prometheus_line(&mut line, &row);
        vm.write(&line)?;
        line.clear();
        push_tsv_row(&mut line, &row);
        ch.write(&line)?;
        progress.inc(1);
    }
    vm.finish()?;
    ch.finish()?;
    progress.finish();

    let queries: Vec<Value> = query_set(reference)
        .iter()
        .map(|q| match &q.request {
            Request::Query(body) => {
                json!({"name": q.name, "description": q.description, "query": body})
            }
            Request::Get(path) => {
                json!({"name": q.name, "description": q.description, "get": path})
            }
        })
        .collect();
    let meta = json!({
        "seed": dataset.spec.seed,
        "hour_start": reference.start,
        "start": reference.start,
        "end": reference.end,
        "latency_points": reference.latency_points,
        "counter_points": reference.counter_points,
        "customers": dataset.spec.customers,
        "combinations": COMBINATIONS,
        "combos_per_customer": dataset.combos_per_customer,
        "latency_series": reference.latency_series,
        "top_customer": reference.top_customer,
        "typical_customer": reference.typical_customer,
        "filter_region": FILTER_REGION,
        "vm_files": vm.names,
        "ch_files": ch.names,
        "queries": queries,
        "expected": reference
            .answers
            .iter()
            .map(|(name, a)| ((*name).to_owned(), a.to_json()))
            .collect::<serde_json::Map<_, _>>(),
    });
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default();
    let path = dir.join("meta.json");
    fs::write(&path, text).map_err(|e| BenchError::io(format!("write {}", path.display()), e))?;
    Ok(meta)
}

/// A sequence of files `NNNN.ext` of at most [`CHUNK_POINTS`] lines each.
struct ChunkedFile {
    dir: PathBuf,
    ext: &'static str,
    current: Option<BufWriter<fs::File>>,
    lines: u64,
    names: Vec<String>,
}

impl ChunkedFile {
    fn new(dir: PathBuf, ext: &'static str) -> Result<Self, BenchError> {
        fs::create_dir_all(&dir)
            .map_err(|e| BenchError::io(format!("create {}", dir.display()), e))?;
        Ok(Self {
            dir,
            ext,
            current: None,
            lines: 0,
            names: Vec::new(),
        })
    }

    fn write(&mut self, line: &[u8]) -> Result<(), BenchError> {
        if self.current.is_none() || self.lines == CHUNK_POINTS {
            self.finish()?;
            let name = format!("{:04}.{}", self.names.len(), self.ext);
            let path = self.dir.join(&name);
            let file = fs::File::create(&path)
                .map_err(|e| BenchError::io(format!("create {}", path.display()), e))?;
            self.current = Some(BufWriter::with_capacity(1 << 20, file));
            self.names.push(name);
            self.lines = 0;
        }
        if let Some(out) = &mut self.current {
            out.write_all(line)
                .map_err(|e| BenchError::io(format!("write under {}", self.dir.display()), e))?;
        }
        self.lines += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), BenchError> {
        if let Some(mut out) = self.current.take() {
            out.flush()
                .map_err(|e| BenchError::io(format!("write under {}", self.dir.display()), e))?;
        }
        Ok(())
    }
}
