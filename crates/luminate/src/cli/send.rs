//! The sending pipeline of `luminate write` and `luminate import`: the reader hands in batches of
//! [`Record`]s, `connections` threads each POST them (gzipped unless the server is on this machine:
//! [`Compress`]) over a keep-alive connection of their own,
//! with retries ([`Client::post`]), halving a batch the server finds too large (`413`, or `400
//! BATCH_TOO_LARGE`), and the tally of what happened — accepted, rejected by reason with the input
//! line of each rejected point, retried, replayed — for the final report.
//!
//! Every batch carries an `Idempotency-Key` built from the input's identity, the byte offset of its
//! first point and its number of points, so the same input cut the same way gives the same keys, and a
//! rerun within the server's key lifetime stores nothing twice (docs/cli.md, "Running again").

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use indicatif::{ProgressBar, ProgressStyle};

use super::ServerArgs;
use super::client::{Client, Reply, Retry};
use super::points::{Origin, json_object};

/// Per-point errors and bad input lines printed at most; the rest are counted.
const MAX_PRINTED: u64 = 100;

/// How batches go over the wire (`--compress`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compress {
    /// gzip, unless the server is on this machine (a loopback address or `localhost`): there
    /// compressing saves no network and costs CPU on both sides — the client's gzip and the server's
    /// gunzip — which the client and the server then share.
    #[default]
    Auto,
    /// Always gzip (`Content-Encoding: gzip`).
    Gzip,
    /// Never compress.
    None,
}

impl Compress {
    /// Whether batches to the server at `url` are gzipped.
    pub fn gzips(self, url: &str) -> bool {
        match self {
            Self::Gzip => true,
            Self::None => false,
            Self::Auto => !is_loopback(url),
        }
    }
}

/// Whether `url`'s host is this machine: `localhost`, or a loopback IP address. A URL that does not
/// parse is not (it fails at the first request anyway).
fn is_loopback(url: &str) -> bool {
    let Some(host) = url
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_owned))
    else {
        return false;
    };
    // An IPv6 host keeps its brackets in a URI.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Points on their way to the write route: each point's JSON object, one after another in one buffer
/// (copied there once, from its input line), and where in the input it came from, so that a per-point
/// error of the server names the input line.
#[derive(Debug, Default)]
pub struct Points {
    text: String,
    /// End of each point's object in `text`.
    ends: Vec<usize>,
    origins: Vec<Origin>,
}

impl Points {
    /// Adds a point's JSON object.
    pub fn push(&mut self, json: &str, origin: Origin) {
        self.text.push_str(json);
        self.ends.push(self.text.len());
        self.origins.push(origin);
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Point `i`'s JSON object.
    fn json(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// The points from `at` on, taken out.
    fn split_off(&mut self, at: usize) -> Points {
        let mut rest = Points::default();
        for i in at..self.len() {
            rest.push(self.json(i), self.origins[i]);
        }
        let end = if at == 0 { 0 } else { self.ends[at - 1] };
        self.text.truncate(end);
        self.ends.truncate(at);
        self.origins.truncate(at);
        rest
    }
}

/// A batch ready to send.
#[derive(Debug)]
pub struct Batch {
    /// The input's name, for messages (`metrics.txt`, `<stdin>`, `argument`).
    pub source: Arc<str>,
    /// The input's identity in idempotency keys.
    pub stream: String,
    /// Sent as JSON lines (`application/x-ndjson`): the points are lines of the input taken as they
    /// are, which the server reads one line at a time — so a line that does not close cannot join the
    /// next into a point, and the line needs no check here. Otherwise `{"metrics": [...]}`, of objects
    /// this program encoded.
    pub json_lines: bool,
    /// Its points.
    pub points: Points,
}

impl Batch {
    /// The batch's key: its stream, place and size, and whether it is a backfill — a rerun with
    /// `--backfill` of an import whose old points were refused must be stored, not answered with the
    /// refusal the server remembers under the plain run's key.
    fn idempotency_key(&self, backfill: bool) -> String {
        let (first, n) = (self.points.origins[0], self.points.len());
        let kind = if backfill { "-backfill" } else { "" };
        format!(
            "luminate-import-{}-{}.{}-{n}{kind}",
            self.stream, first.offset, first.sub
        )
    }

    /// The write body's media type.
    fn content_type(&self) -> &'static str {
        if self.json_lines {
            "application/x-ndjson"
        } else {
            "application/json"
        }
    }

    /// The write body, gzipped when `gzip`.
    fn body(&self, gzip: bool) -> Vec<u8> {
        let points = &self.points;
        let mut body = Vec::with_capacity(points.text.len() + points.len() + 16);
        if !self.json_lines {
            body.extend_from_slice(b"{\"metrics\":[");
        }
        for i in 0..points.len() {
            if i > 0 && !self.json_lines {
                body.push(b',');
            }
            body.extend_from_slice(points.json(i).as_bytes());
            if self.json_lines {
                body.push(b'\n');
            }
        }
        if !self.json_lines {
            body.extend_from_slice(b"]}");
        }
        if !gzip {
            return body;
        }
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(&body);
        gz.finish().unwrap_or_default()
    }

    /// The points from `at` on, as a batch of their own.
    fn split_off(&mut self, at: usize) -> Batch {
        Batch {
            source: self.source.clone(),
            stream: self.stream.clone(),
            json_lines: self.json_lines,
            points: self.points.split_off(at),
        }
    }

    fn halves(mut self) -> (Batch, Batch) {
        let other = self.split_off(self.points.len() / 2);
        (self, other)
    }

    /// For a JSON-lines batch of several points refused as a whole at line `line` of its body (a line
    /// that is not one point object), the index of that point: to be sent alone and reported by its
    /// input line, the points around it sent on.
    fn line_to_isolate(&self, line: u64) -> Option<usize> {
        let bad = usize::try_from(line).ok()?.checked_sub(1)?;
        (self.json_lines && self.points.len() > 1 && bad < self.points.len()).then_some(bad)
    }

    fn place(&self, origin: Origin) -> String {
        if origin.sub > 0 {
            format!("{}:{} (point {})", self.source, origin.line, origin.sub + 1)
        } else {
            format!("{}:{}", self.source, origin.line)
        }
    }
}

/// What happened, for the report.
#[derive(Debug, Default)]
pub struct Tally {
    /// Points read from the input (bad lines not included).
    pub read: u64,
    /// Input lines that could not be read as points.
    pub bad_lines: u64,
    /// Points skipped on purpose (`--skip-non-finite`).
    pub skipped: u64,
    /// Points sent in requests the server answered.
    pub sent: u64,
    /// Points stored.
    pub accepted: u64,
    /// Points refused by the server, by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Points in requests that failed for good (connection, 4xx other than a point error, 5xx after
    /// every attempt).
    pub failed: u64,
    /// Requests retried.
    pub retried: u64,
    /// Requests the server answered from its idempotency cache (stored by an earlier run).
    pub replayed: u64,
    /// Batches halved after `413` (or a `400` for the whole batch).
    pub splits: u64,
    printed: u64,
}

impl Tally {
    /// Points refused in all.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Whether everything read was stored.
    pub fn complete(&self) -> bool {
        self.bad_lines == 0 && self.rejected_total() == 0 && self.failed == 0
    }
}

/// Progress and messages: a bar on stderr when it is a terminal, plain lines otherwise.
#[derive(Clone)]
pub struct Reporter {
    bar: Option<ProgressBar>,
    tally: Arc<Mutex<Tally>>,
    started: Instant,
}

impl Reporter {
    /// A reporter; `progress` shows a bar with points/s.
    pub fn new(progress: bool) -> Self {
        let bar = progress.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {human_pos} points sent ({per_sec}, {elapsed}) {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            tally: Arc::default(),
            started: Instant::now(),
        }
    }

    /// Updates the tally.
    pub fn tally<T>(&self, f: impl FnOnce(&mut Tally) -> T) -> T {
        f(&mut self.tally.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Prints a message (above the bar, if any).
    pub fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Prints a message about one point or line, up to [`MAX_PRINTED`] of them.
    pub fn problem(&self, text: &str) {
        let printed = self.tally(|t| {
            t.printed += 1;
            t.printed
        });
        if printed <= MAX_PRINTED {
            self.message(text);
        } else if printed == MAX_PRINTED + 1 {
            self.message("… more problems: only counted from here on");
        }
    }

    /// A line of input that is not a point.
    pub fn bad_line(&self, source: &str, line: u64, error: &str) {
        self.tally(|t| t.bad_lines += 1);
        self.problem(&format!("{source}:{line}: {error}"));
    }

    fn sent(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// Stops the bar and returns the tally and the seconds elapsed.
    pub fn finish(self) -> (Tally, f64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(PoisonError::into_inner));
        (tally, seconds)
    }
}

/// The sending side: feed it batches, then [`Sender::finish`].
pub struct Sender {
    queue: Option<SyncSender<Batch>>,
    workers: Vec<thread::JoinHandle<()>>,
    fatal: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    reporter: Reporter,
}

impl Sender {
    /// Starts `connections` sending threads.
    /// With `backfill`, the writes ask for it (`?backfill=true`: points past the server's
    /// `validation.max_past`, back to each metric's retention; the token needs the `admin` scope).
    pub fn start(
        server: &ServerArgs,
        connections: usize,
        backfill: bool,
        compress: Compress,
        reporter: &Reporter,
    ) -> Self {
        let gzip = compress.gzips(&server.url);
        let (queue, batches) = sync_channel::<Batch>(connections * 2);
        let batches = Arc::new(Mutex::new(batches));
        let fatal = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..connections.max(1))
            .map(|_| {
                let worker = Worker {
                    client: Client::new(server),
                    backfill,
                    gzip,
                    path: if backfill {
                        "/api/v1/write?backfill=true"
                    } else {
                        "/api/v1/write"
                    },
                    reporter: reporter.clone(),
                    fatal: fatal.clone(),
                    stop: stop.clone(),
                };
                let batches = batches.clone();
                thread::spawn(move || worker.run(&batches))
            })
            .collect();
        Self {
            queue: Some(queue),
            workers,
            fatal,
            stop,
            reporter: reporter.clone(),
        }
    }

    /// Queues a batch (waits while every connection is busy). False once sending has stopped for good
    /// (a refused token, say): the reader should stop reading.
    pub fn send(&self, batch: Batch) -> bool {
        let n = batch.points.len() as u64;
        let queued = !self.stopped() && self.queue.as_ref().is_some_and(|q| q.send(batch).is_ok());
        if !queued {
            self.reporter.tally(|t| t.failed += n);
        }
        queued
    }

    /// Whether sending has stopped for good.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Waits for every batch to be answered; returns the reason sending stopped early, if it did.
    pub fn finish(mut self) -> Option<String> {
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

struct Worker {
    client: Client,
    /// Whether the writes ask for a backfill.
    backfill: bool,
    /// Whether batches are gzipped.
    gzip: bool,
    /// The write route, with its `backfill` parameter when asked.
    path: &'static str,
    reporter: Reporter,
    fatal: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(&self, batches: &Mutex<Receiver<Batch>>) {
        loop {
            let next = batches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv();
            let Ok(batch) = next else { return };
            if self.stop.load(Ordering::Relaxed) {
                self.reporter
                    .tally(|t| t.failed += batch.points.len() as u64);
                continue;
            }
            self.send(batch);
        }
    }

    /// Sends one batch, and its halves if the server finds it too large.
    fn send(&self, batch: Batch) {
        let mut pending = vec![batch];
        while let Some(batch) = pending.pop() {
            let key = batch.idempotency_key(self.backfill);
            let body = batch.body(self.gzip);
            let n = batch.points.len() as u64;
            let encoding = if self.gzip { "gzip" } else { "identity" };
            let reply = self.client.post(
                self.path,
                &[
                    ("Content-Type", batch.content_type()),
                    ("Content-Encoding", encoding),
                    ("Idempotency-Key", &key),
                ],
                &body,
                Retry::Write,
                |reason| {
                    self.reporter.tally(|t| t.retried += 1);
                    self.reporter.message(&format!(
                        "{}:{}: retrying a batch of {n} points: {reason}",
                        batch.source, batch.points.origins[0].line
                    ));
                },
            );
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    self.give_up(&batch, &e);
                    continue;
                }
            };
            // Refused as a whole for one line of a JSON-lines batch that is not a point object: that
            // line alone (to be reported by its number), and the lines around it, sent on.
            let code = reply.error_code();
            let bad_line = match reply.error_line() {
                Some(line) if reply.status == 400 && code.as_deref() == Some("INVALID_REQUEST") => {
                    batch.line_to_isolate(line)
                }
                _ => None,
            };
            if let Some(bad) = bad_line {
                self.reporter.tally(|t| t.splits += 1);
                let mut around = batch;
                let after = around.split_off(bad + 1);
                let alone = around.split_off(bad);
                for part in [after, alone, around] {
                    if !part.points.is_empty() {
                        pending.push(part);
                    }
                }
                continue;
            }
            // Too large (`413`, or more points than the server's batch cap), or refused as a whole for
            // one malformed point (`400 INVALID_REQUEST`: a field given twice): halves, until the
            // batches fit or the bad point is alone and can be reported by its line.
            let halve = reply.status == 413
                || (reply.status == 400
                    && matches!(code.as_deref(), Some("BATCH_TOO_LARGE" | "INVALID_REQUEST")));
            if halve && n > 1 {
                self.reporter.tally(|t| t.splits += 1);
                let (first, second) = batch.halves();
                pending.push(second);
                pending.push(first);
                continue;
            }
            match code {
                Some(code) if reply.status == 400 && n == 1 => {
                    self.refused_alone(&batch, code, &reply);
                }
                _ => self.answered(&batch, &reply),
            }
        }
    }

    /// A batch of one point that the server refused as a whole, reported by its line.
    fn refused_alone(&self, batch: &Batch, code: String, reply: &Reply) {
        let (json, origin) = (batch.points.json(0), batch.points.origins[0]);
        // A line that is not one JSON object is a bad input line, reported in the words of a full
        // check, not a point the server refused.
        if let Err(e) = json_object(json) {
            self.reporter.tally(|t| t.read -= 1);
            self.reporter.bad_line(&batch.source, origin.line, &e);
            return;
        }
        self.reporter.sent(1);
        self.reporter.tally(|t| {
            t.sent += 1;
            *t.rejected.entry(code).or_default() += 1;
        });
        self.reporter.problem(&format!(
            "{}: {}",
            batch.place(origin),
            reply.error_message()
        ));
    }

    /// Tallies a write answer: `200`/`207`/`400` with per-point errors, or an error for the batch.
    fn answered(&self, batch: &Batch, reply: &Reply) {
        let n = batch.points.len() as u64;
        let outcome: Option<WriteAnswer> = serde_json::from_str(&reply.body).ok();
        let outcome = match outcome {
            Some(o) if matches!(reply.status, 200 | 207 | 400) => o,
            _ => {
                if matches!(reply.status, 401 | 403) {
                    self.stop_all(&reply.error_message());
                }
                self.give_up(batch, &reply.error_message());
                return;
            }
        };
        self.reporter.sent(n);
        self.reporter.tally(|t| {
            t.sent += n;
            t.accepted += outcome.accepted;
            t.replayed += u64::from(reply.replayed);
        });
        for error in &outcome.errors {
            self.reporter
                .tally(|t| *t.rejected.entry(error.code.clone()).or_default() += 1);
            let place = batch
                .points
                .origins
                .get(error.index)
                .map_or_else(|| batch.source.to_string(), |&origin| batch.place(origin));
            self.reporter.problem(&format!(
                "{place}: {} {}: {}",
                error.metric, error.code, error.error
            ));
        }
    }

    fn give_up(&self, batch: &Batch, reason: &str) {
        let n = batch.points.len() as u64;
        self.reporter.tally(|t| t.failed += n);
        self.reporter.problem(&format!(
            "{}: a batch of {n} points was not stored: {reason}",
            batch.place(batch.points.origins[0])
        ));
    }

    fn stop_all(&self, reason: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let mut fatal = self.fatal.lock().unwrap_or_else(PoisonError::into_inner);
        fatal.get_or_insert_with(|| reason.to_owned());
    }
}

/// The write route's answer (200, 207, 400 with per-point errors).
#[derive(serde::Deserialize)]
struct WriteAnswer {
    accepted: u64,
    #[serde(default)]
    errors: Vec<PointError>,
}

#[derive(serde::Deserialize)]
struct PointError {
    index: usize,
    #[serde(default)]
    metric: String,
    code: String,
    error: String,
}

/// Collects points into batches of `size` and sends each as it fills.
pub struct Batcher<'a> {
    sender: &'a Sender,
    source: Arc<str>,
    size: usize,
    /// The points are input lines, sent as JSON lines (see [`Batch::json_lines`]).
    pub json_lines: bool,
    points: Points,
}

impl<'a> Batcher<'a> {
    /// A batcher for one input.
    pub fn new(sender: &'a Sender, source: &str, size: usize) -> Self {
        Self {
            sender,
            source: source.into(),
            size: size.max(1),
            json_lines: false,
            points: Points::default(),
        }
    }

    /// Whether another point fills the batch.
    pub fn is_full(&self) -> bool {
        self.points.len() >= self.size
    }

    /// Adds a point's JSON object, read from the input at `origin`; the caller sends with
    /// [`Batcher::flush`] when [`Batcher::is_full`].
    pub fn push(&mut self, json: &str, origin: Origin) {
        self.points.push(json, origin);
    }

    /// Sends what has been collected under `stream`; false once sending has stopped for good.
    pub fn flush(&mut self, stream: String) -> bool {
        if self.points.is_empty() {
            return true;
        }
        let capacity = self.points.text.capacity();
        let points = std::mem::replace(
            &mut self.points,
            Points {
                text: String::with_capacity(capacity),
                ..Points::default()
            },
        );
        // Counted here, a batch at a time: a count per point took a lock per line.
        let read = points.len() as u64;
        self.sender.reporter.tally(|t| t.read += read);
        self.sender.send(Batch {
            source: self.source.clone(),
            stream,
            json_lines: self.json_lines,
            points,
        })
    }
}

/// The final report's lines.
pub fn summary(tally: &Tally, seconds: f64) -> String {
    let rejected = tally.rejected_total();
    let mut out = format!(
        "points read {}, sent {}, accepted {}, rejected {rejected}",
        tally.read, tally.sent, tally.accepted
    );
    if rejected > 0 {
        let reasons: Vec<String> = tally
            .rejected
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        out.push_str(&format!(" ({})", reasons.join(", ")));
    }
    out.push_str(&format!(
        ", failed {}, bad input lines {}",
        tally.failed, tally.bad_lines
    ));
    if tally.skipped > 0 {
        out.push_str(&format!(", skipped non-finite {}", tally.skipped));
    }
    let rate = if seconds > 0.0 {
        tally.sent as f64 / seconds
    } else {
        0.0
    };
    out.push_str(&format!(
        "\nrequests retried {}, replayed by the server {}, batches halved {}\n{seconds:.2} s, {rate:.0} points/s",
        tally.retried, tally.replayed, tally.splits
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_gzips_unless_the_server_is_on_this_machine() {
        for local in [
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://localhost:8080/",
            "https://LOCALHOST",
            "http://[::1]:8080",
            "http://user:pw@127.0.0.1:8080/base?x=1",
            "127.0.0.1:8080",
        ] {
            assert!(!Compress::Auto.gzips(local), "{local}");
            assert!(Compress::Gzip.gzips(local), "{local}");
        }
        for remote in [
            "http://10.0.0.7:8080",
            "https://luminate.example.com",
            "http://[2001:db8::1]:8080",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io:8080",
        ] {
            assert!(Compress::Auto.gzips(remote), "{remote}");
            assert!(!Compress::None.gzips(remote), "{remote}");
        }
    }
}
