//! The timed ingest: write bodies are encoded before the clock starts (so generation cannot be the
//! bottleneck, as a real sender's WAL or buffer already holds its batches), then `connections` threads,
//! each with its own keep-alive agent, take the next body from a shared counter and POST it. The
//! [`Protocol`] says how bodies are encoded and where they go: Luminate's JSON (`/api/v1/write`),
//! Prometheus remote write 1.0 (`/api/v1/write`, protobuf + snappy) or OTLP/HTTP protobuf
//! (`/v1/metrics`). Every answer must be the protocol's success with every point accepted; anything
//! else stops the run with the server's body. The client's own CPU time is measured so the report can
//! show that the client was not the limit.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;

use super::BenchError;
use super::dataset::Dataset;
use super::formats::{
    RemoteWriteScratch, Row, finish_write_body, otlp_request, push_json_point,
    push_remote_write_series, start_write_body,
};
use super::http;
use super::procstat;

/// How the points are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Luminate's JSON write body at `/api/v1/write`.
    Json,
    /// Prometheus remote write 1.0 at `/api/v1/write`: protobuf, snappy, one sample per series entry.
    RemoteWrite,
    /// OTLP/HTTP protobuf at `/v1/metrics`: gauge and sum data points.
    Otlp,
}

impl Protocol {
    /// The name the report and `--protocol` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::RemoteWrite => "remote-write",
            Self::Otlp => "otlp",
        }
    }

    /// The path bodies are POSTed to.
    pub fn path(self) -> &'static str {
        match self {
            Self::Json | Self::RemoteWrite => "/api/v1/write",
            Self::Otlp => "/v1/metrics",
        }
    }

    /// The request headers (gzip only for JSON and OTLP: remote write is always snappy).
    fn headers(self, gzip: bool) -> Vec<(&'static str, &'static str)> {
        let mut headers = match self {
            Self::Json => vec![("content-type", "application/json")],
            Self::RemoteWrite => vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
            Self::Otlp => vec![("content-type", "application/x-protobuf")],
        };
        if gzip && self != Self::RemoteWrite {
            headers.push(("content-encoding", "gzip"));
        }
        headers
    }
}

/// One encoded write request.
#[derive(Debug)]
pub struct Body {
    /// The bytes sent: JSON or OTLP protobuf (gzip-compressed with `--gzip`), or remote write's snappy
    /// block.
    pub bytes: Vec<u8>,
    /// Points in it.
    pub points: u64,
}

/// What the encoding phase produced.
#[derive(Debug)]
pub struct Encoded {
    /// Bodies in dataset order: all `api_latency` batches, then the `requests_total` batches.
    pub bodies: Vec<Body>,
    /// Bytes of the bodies before compression (JSON text, or protobuf before snappy or gzip).
    pub body_bytes: u64,
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

/// Encodes the whole dataset into write bodies of at most `batch` points in `protocol`.
pub fn encode(
    dataset: &Dataset,
    batch: usize,
    protocol: Protocol,
    gzip: bool,
    multi: &MultiProgress,
) -> Encoded {
    let started = Instant::now();
    let total = dataset.spec.points + dataset.spec.counter_points;
    let progress = bar(multi, total, "encode");
    let mut encoder = BodyEncoder::new(batch.max(1), protocol, gzip);
    for p in dataset.latency_points() {
        encoder.push(Row::Latency(p));
        progress.inc(1);
    }
    // A body holds one metric only, as an agent that reports per metric would send it.
    encoder.flush();
    for p in dataset.counter_points() {
        encoder.push(Row::Counter(p));
        progress.inc(1);
    }
    encoder.flush();
    progress.finish();
    Encoded {
        bodies: encoder.bodies,
        body_bytes: encoder.body_bytes,
        elapsed: started.elapsed(),
    }
}

/// Accumulates points into bodies of `batch`.
struct BodyEncoder {
    batch: usize,
    protocol: Protocol,
    gzip: bool,
    rows: Vec<Row>,
    scratch: RemoteWriteScratch,
    bodies: Vec<Body>,
    body_bytes: u64,
}

impl BodyEncoder {
    fn new(batch: usize, protocol: Protocol, gzip: bool) -> Self {
        Self {
            batch,
            protocol,
            gzip,
            rows: Vec::with_capacity(batch),
            scratch: RemoteWriteScratch::default(),
            bodies: Vec::new(),
            body_bytes: 0,
        }
    }

    fn push(&mut self, row: Row) {
        self.rows.push(row);
        if self.rows.len() == self.batch {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let raw = self.raw_body();
        self.body_bytes += raw.len() as u64;
        let bytes = match self.protocol {
            Protocol::RemoteWrite => snappy(&raw),
            Protocol::Json | Protocol::Otlp if self.gzip => gzip(&raw),
            Protocol::Json | Protocol::Otlp => raw,
        };
        self.bodies.push(Body {
            bytes,
            points: self.rows.len() as u64,
        });
        self.rows.clear();
    }

    /// The pending rows in the protocol's message, uncompressed.
    fn raw_body(&mut self) -> Vec<u8> {
        match self.protocol {
            Protocol::Json => {
                // About 160 bytes per point: one allocation per body.
                let mut json = Vec::with_capacity(self.rows.len() * 170 + 16);
                start_write_body(&mut json);
                for (i, row) in self.rows.iter().enumerate() {
                    push_json_point(&mut json, row, i == 0);
                }
                finish_write_body(&mut json);
                json
            }
            Protocol::RemoteWrite => {
                let mut proto = Vec::with_capacity(self.rows.len() * 140);
                for row in &self.rows {
                    push_remote_write_series(&mut proto, row, &mut self.scratch);
                }
                proto
            }
            Protocol::Otlp => prost::Message::encode_to_vec(&otlp_request(&self.rows)),
        }
    }
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(raw.len() / 8), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(raw);
    encoder.finish().unwrap_or_default()
}

/// Snappy's block format, as remote write senders compress.
fn snappy(raw: &[u8]) -> Vec<u8> {
    // Only an input over 4 GiB fails, and a body is a few MB.
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .unwrap_or_default()
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
    protocol: Protocol,
    gzip: bool,
    multi: &MultiProgress,
) -> Result<Ingest, BenchError> {
    let url = format!("{base_url}{}", protocol.path());
    let total: u64 = bodies.iter().map(|b| b.points).sum();
    let progress = bar(multi, total, "ingest");
    let next = AtomicUsize::new(0);
    let accepted = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let headers = protocol.headers(gzip);
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
                        let sent = http::post_for_bytes(&agent, url, headers, &body.bytes)
                            .and_then(|(status, answer)| {
                                check_write(protocol, status, &answer, body.points)
                            });
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

/// Whether an answer says that all `points` of a body were stored:
///
/// - JSON: `200 {"accepted": n, "rejected": 0}` with `n = points`;
/// - remote write: `200` or `204` (1.0 has no count in its answer: a sample dropped inside a 2xx shows
///   up in the answer checks afterwards, which count every point);
/// - OTLP: `200` whose `ExportMetricsServiceResponse` has no rejected data points.
fn check_write(
    protocol: Protocol,
    status: u16,
    answer: &[u8],
    points: u64,
) -> Result<(), BenchError> {
    let stored = match protocol {
        Protocol::Json => {
            let answer: Option<serde_json::Value> = serde_json::from_slice(answer).ok();
            let accepted = answer
                .as_ref()
                .and_then(|a| a.get("accepted"))
                .and_then(|a| a.as_u64());
            status == 200 && accepted == Some(points)
        }
        Protocol::RemoteWrite => status == 200 || status == 204,
        Protocol::Otlp => {
            status == 200
                && <ExportMetricsServiceResponse as prost::Message>::decode(answer).is_ok_and(|r| {
                    r.partial_success
                        .is_none_or(|p| p.rejected_data_points == 0)
                })
        }
    };
    if stored {
        Ok(())
    } else {
        Err(BenchError::Status {
            request: format!("POST {} ({points} points)", protocol.path()),
            status,
            body: String::from_utf8_lossy(answer)
                .chars()
                .take(2_000)
                .collect(),
        })
    }
}
