//! The timed ingest: write bodies are encoded before the clock starts (so generation cannot be the
//! bottleneck), then `connections` threads, each with its own keep-alive agent, take the next body from
//! a shared counter and POST it. Every answer must be `200` with every point accepted; anything else
//! stops the run with the server's body. The client's own CPU time is measured so the report can show
//! that the client was not the limit.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::BenchError;
use super::dataset::Dataset;
use super::formats::{Row, finish_write_body, push_json_point, start_write_body};
use super::http;
use super::procstat;

/// One encoded write request.
#[derive(Debug)]
pub struct Body {
    /// The JSON (gzip-compressed with `--gzip`).
    pub bytes: Vec<u8>,
    /// Points in it.
    pub points: u64,
}

/// What the encoding phase produced.
#[derive(Debug)]
pub struct Encoded {
    /// Bodies in dataset order: all `api_latency` batches, then the `requests_total` batches.
    pub bodies: Vec<Body>,
    /// Uncompressed JSON bytes.
    pub json_bytes: u64,
    /// Wall time of the encoding.
    pub elapsed: Duration,
}

/// Counting bar style shared by the phases.
pub fn bar(multi: &MultiProgress, total: u64, what: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(total));
    let template = format!(
        "{what:>9} [{{bar:40}}] {{human_pos}}/{{human_len}} points ({{per_sec}}, {{elapsed}}, eta {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Encodes the whole dataset into write bodies of at most `batch` points.
pub fn encode(dataset: &Dataset, batch: usize, gzip: bool, multi: &MultiProgress) -> Encoded {
    let started = Instant::now();
    let total = dataset.spec.points + dataset.spec.counter_points;
    let progress = bar(multi, total, "encode");
    let mut encoder = BodyEncoder::new(batch.max(1), gzip);
    for p in dataset.latency_points() {
        encoder.push(&Row::Latency(p));
        progress.inc(1);
    }
    // A body holds one metric only, as an agent that reports per metric would send it.
    encoder.flush();
    for p in dataset.counter_points() {
        encoder.push(&Row::Counter(p));
        progress.inc(1);
    }
    encoder.flush();
    progress.finish();
    Encoded {
        bodies: encoder.bodies,
        json_bytes: encoder.json_bytes,
        elapsed: started.elapsed(),
    }
}

/// Accumulates points into bodies of `batch`.
struct BodyEncoder {
    batch: usize,
    gzip: bool,
    current: Vec<u8>,
    points: usize,
    bodies: Vec<Body>,
    json_bytes: u64,
}

impl BodyEncoder {
    fn new(batch: usize, gzip: bool) -> Self {
        Self {
            batch,
            gzip,
            current: Vec::new(),
            points: 0,
            bodies: Vec::new(),
            json_bytes: 0,
        }
    }

    fn push(&mut self, row: &Row) {
        if self.points == 0 {
            // About 160 bytes per point: one allocation per body.
            self.current = Vec::with_capacity(self.batch * 170 + 16);
            start_write_body(&mut self.current);
        }
        push_json_point(&mut self.current, row, self.points == 0);
        self.points += 1;
        if self.points == self.batch {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.points == 0 {
            return;
        }
        let mut json = std::mem::take(&mut self.current);
        finish_write_body(&mut json);
        self.json_bytes += json.len() as u64;
        let bytes = if self.gzip { gzip(&json) } else { json };
        self.bodies.push(Body {
            bytes,
            points: self.points as u64,
        });
        self.points = 0;
    }
}

fn gzip(json: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(json.len() / 8), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(json);
    encoder.finish().unwrap_or_default()
}

/// What the timed ingest measured.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// Points the server accepted.
    pub accepted: u64,
    /// Write requests sent.
    pub requests: u64,
    /// Bytes sent (compressed with `--gzip`).
    pub wire_bytes: u64,
    /// Wall time from the first request to the last answer.
    pub wall: Duration,
    /// This process's CPU seconds during the ingest (`None` without `/proc`).
    pub client_cpu: Option<f64>,
}

/// POSTs every body over `connections` keep-alive connections.
pub fn ingest(
    base_url: &str,
    bodies: &[Body],
    connections: usize,
    gzip: bool,
    multi: &MultiProgress,
) -> Result<Ingest, BenchError> {
    let url = format!("{base_url}/api/v1/write");
    let total: u64 = bodies.iter().map(|b| b.points).sum();
    let progress = bar(multi, total, "ingest");
    let next = AtomicUsize::new(0);
    let accepted = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let mut headers = vec![("content-type", "application/json")];
    if gzip {
        headers.push(("content-encoding", "gzip"));
    }
    let cpu_before = procstat::cpu_seconds("self");
    let started = Instant::now();
    let results: Vec<Result<(), BenchError>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..connections.max(1))
            .map(|_| {
                let (url, headers, next, accepted, failed, progress) =
                    (&url, &headers, &next, &accepted, &failed, &progress);
                scope.spawn(move || -> Result<(), BenchError> {
                    let agent = http::agent();
                    while !failed.load(Ordering::Relaxed) {
                        let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return Ok(());
                        };
                        let sent = http::post(&agent, url, headers, &body.bytes)
                            .and_then(|(status, text)| check_write(status, &text, body.points));
                        match sent {
                            Ok(()) => {
                                accepted.fetch_add(body.points, Ordering::Relaxed);
                                progress.inc(body.points);
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(BenchError::Server("a writer thread panicked".into())))
            })
            .collect()
    });
    let wall = started.elapsed();
    progress.finish();
    let client_cpu = cpu_before
        .zip(procstat::cpu_seconds("self"))
        .map(|(before, after)| after - before);
    for result in results {
        result?;
    }
    Ok(Ingest {
        accepted: accepted.load(Ordering::Relaxed),
        requests: bodies.len() as u64,
        wire_bytes: bodies.iter().map(|b| b.bytes.len() as u64).sum(),
        wall,
        client_cpu,
    })
}

/// A write counts only as `200 {"accepted": n, "rejected": 0}` with every point accepted.
fn check_write(status: u16, text: &str, points: u64) -> Result<(), BenchError> {
    let answer: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let accepted = answer
        .as_ref()
        .and_then(|a| a.get("accepted"))
        .and_then(|a| a.as_u64());
    if status == 200 && accepted == Some(points) {
        Ok(())
    } else {
        Err(BenchError::Status {
            request: format!("POST /api/v1/write ({points} points)"),
            status,
            body: text.chars().take(2_000).collect(),
        })
    }
}
