//! The timed ingest: write bodies are encoded before the clock starts (so generation cannot be the
//! bottleneck, as a real sender's WAL or buffer already holds its batches), then `connections` threads,
//! each with its own keep-alive agent, POST them. How bodies are spread over the connections depends on
//! the protocol:
//!
//! - remote write and OTLP are **sharded by series**, as Prometheus' remote-write queue manager shards:
//!   each point goes to the queue of `hash(series) mod connections`, each queue is encoded into its own
//!   bodies and sent, in order, by one connection. A series' points therefore arrive in time order, which
//!   the newest-sample rule of these protocols requires (docs/ingest.md: a sample not after its series'
//!   newest is dropped), while two connections still share the load;
//! - JSON writes are not subject to that rule (every point is stored whatever the arrival order), so all
//!   connections take the next body from one shared queue: no connection idles while another has work,
//!   and the figures stay comparable with earlier JSON runs.
//!
//! The
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
    /// The send queues, each in dataset order (its `api_latency` batches, then its `requests_total`
    /// batches): one shared by every connection for JSON, one per connection for remote write and OTLP.
    pub queues: Vec<Vec<Body>>,
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

impl Encoded {
    /// Every body, queue by queue.
    pub fn bodies(&self) -> impl Iterator<Item = &Body> {
        self.queues.iter().flatten()
    }
}

/// Encodes the whole dataset into write bodies of at most `batch` points in `protocol`, into one queue
/// (JSON) or one queue per connection, each series in one queue (remote write, OTLP: module doc).
pub fn encode(
    dataset: &Dataset,
    batch: usize,
    protocol: Protocol,
    gzip: bool,
    connections: usize,
    multi: &MultiProgress,
) -> Encoded {
    let started = Instant::now();
    let total = dataset.spec.points + dataset.spec.counter_points;
    let progress = bar(multi, total, "encode");
    let shards = match protocol {
        Protocol::Json => 1,
        Protocol::RemoteWrite | Protocol::Otlp => connections.max(1),
    };
    let mut encoders: Vec<BodyEncoder> = (0..shards)
        .map(|_| BodyEncoder::new(batch.max(1), protocol, gzip))
        .collect();
    let metrics: [Box<dyn Iterator<Item = Row>>; 2] = [
        Box::new(dataset.latency_points().map(Row::Latency)),
        Box::new(dataset.counter_points().map(Row::Counter)),
    ];
    for rows in metrics {
        for row in rows {
            encoders[shard(&row, shards)].push(row);
            progress.inc(1);
        }
        // A body holds one metric only, as an agent that reports per metric would send it.
        encoders.iter_mut().for_each(BodyEncoder::flush);
    }
    progress.finish();
    Encoded {
        body_bytes: encoders.iter().map(|e| e.body_bytes).sum(),
        queues: encoders.into_iter().map(|e| e.bodies).collect(),
        elapsed: started.elapsed(),
    }
}

/// The queue of a point's series among `shards`: a hash of the series' identity (metric, and the
/// customer and combination or the counter series), mixed with SplitMix64's finalizer so that
/// neighbouring series spread evenly.
fn shard(row: &Row, shards: usize) -> usize {
    if shards == 1 {
        return 0;
    }
    let identity = match row {
        Row::Latency(p) => (1 << 63) | (u64::from(p.customer) << 16) | u64::from(p.combination),
        Row::Counter(p) => u64::from(p.series),
    };
    let mut z = identity.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % shards as u64) as usize
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

/// POSTs every body over `connections` keep-alive connections: connection `c` sends queue
/// `c mod queues` in order, so one queue is shared by all connections and a queue per connection is
/// sent by its connection alone.
pub fn ingest(
    base_url: &str,
    queues: &[Vec<Body>],
    connections: usize,
    protocol: Protocol,
    gzip: bool,
    multi: &MultiProgress,
) -> Result<Ingest, BenchError> {
    let url = format!("{base_url}{}", protocol.path());
    let total: u64 = queues.iter().flatten().map(|b| b.points).sum();
    let progress = bar(multi, total, "ingest");
    let next: Vec<AtomicUsize> = queues.iter().map(|_| AtomicUsize::new(0)).collect();
    let accepted = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let headers = protocol.headers(gzip);
    let cpu_before = procstat::cpu_seconds("self");
    let started = Instant::now();
    let results: Vec<Result<(), BenchError>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..connections.max(1))
            .map(|connection| {
                let queue = connection % queues.len().max(1);
                let (bodies, next) = (
                    queues.get(queue).map_or(&[][..], Vec::as_slice),
                    next.get(queue),
                );
                let (url, headers, accepted, failed, progress) =
                    (&url, &headers, &accepted, &failed, &progress);
                scope.spawn(move || -> Result<(), BenchError> {
                    let Some(next) = next else {
                        return Ok(());
                    };
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
        requests: queues.iter().map(|q| q.len() as u64).sum(),
        wire_bytes: queues.iter().flatten().map(|b| b.bytes.len() as u64).sum(),
        wall,
        client_cpu,
    })
}

/// Checks on a Luminate server's `/metrics`, after the load, that no sample was dropped by the
/// newest-sample rule of remote write and OTLP (`luminate_write_errors_total` with code
/// `DUPLICATE_SAMPLE` or `OUT_OF_ORDER_SAMPLE`, summed over tenants). Those drops are answered as
/// successes (docs/ingest.md), so without this check only the answer checks would notice them, and
/// `--load-only` would report points/s of points that were never stored.
pub fn check_no_newest_sample_drops(base_url: &str) -> Result<(), BenchError> {
    let url = format!("{base_url}/metrics");
    let (status, text) = http::get(&http::agent(), &url)?;
    if status != 200 {
        return Err(BenchError::Status {
            request: format!("GET {url}"),
            status,
            body: text.chars().take(2_000).collect(),
        });
    }
    let dropped = |code: &str| -> u64 {
        let label = format!("code=\"{code}\"");
        text.lines()
            .filter(|l| l.starts_with("luminate_write_errors_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    let (duplicates, out_of_order) = (dropped("DUPLICATE_SAMPLE"), dropped("OUT_OF_ORDER_SAMPLE"));
    if duplicates + out_of_order == 0 {
        return Ok(());
    }
    Err(BenchError::Server(format!(
        "the server dropped {duplicates} DUPLICATE_SAMPLE and {out_of_order} OUT_OF_ORDER_SAMPLE samples \
         (luminate_write_errors_total): some series' points did not arrive in time order"
    )))
}

/// Whether an answer says that all `points` of a body were stored:
///
/// - JSON: `200 {"accepted": n, "rejected": 0}` with `n = points`;
/// - remote write: `200` or `204` (1.0 has no count in its answer: a sample dropped inside a 2xx shows
///   up in [`check_no_newest_sample_drops`] and in the answer checks afterwards, which count every point);
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
