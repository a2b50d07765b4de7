//! `luminate export`: the points of a metric (or of all the tenant's metrics) in a time range and
//! matching filters, read from `POST /api/v1/export` as it streams and written as JSON lines (what
//! the server sends, passed through), CSV or OpenMetrics text — each a format `luminate import`
//! reads back into the same points — to a file (`-o`, gzipped when its name ends in `.gz`) or stdout.
//!
//! Flags follow `luminate query`'s (`--metric`, `--filter`, `--range` or `--start`/`--end`). Memory
//! stays bounded: one line at a time. CSV needs its columns before the first row, so its header is
//! built from the discovery routes (every dimension key of the exported metrics); a point with a key
//! written after that is reported and fails the export (exit 1).
//!
//! A progress line (points, points/s, bytes) is drawn on stderr when it is a terminal. An export the
//! server cuts short (its body ends without its terminating chunk) is an error, never a short file
//! that looks whole.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::Client;
use super::query::{filters, timestamp_value};
use super::{EXIT_INCOMPLETE, EXIT_OK, ServerArgs, usage_error};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Luminate's JSON point objects, one per line (what `POST /api/v1/write` takes in `metrics`).
    Jsonl,
    /// A header `name,timestamp,value,<dimension keys>`, then one point per row (timestamps in ms).
    Csv,
    /// OpenMetrics text: `name{k="v"} value seconds`, then `# EOF`.
    Openmetrics,
}

impl Format {
    /// The format a file name implies (`.gz` looked through), if any.
    fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        Some(match name.rsplit_once('.')?.1 {
            "jsonl" | "ndjson" | "json" => Self::Jsonl,
            "csv" => Self::Csv,
            "om" | "openmetrics" => Self::Openmetrics,
            _ => return None,
        })
    }
}

/// `luminate export` arguments.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The metric; every metric of the tenant when left out.
    #[arg(long)]
    metric: Option<String>,
    /// A filter `key=value`; `key=v1|v2` (or the key repeated) matches any of the values.
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// The range ending now (`15m`, `1h`, `7d`).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    range: Option<String>,
    /// Start of the range, inclusive (Unix ms or RFC 3339).
    #[arg(long, requires = "end")]
    start: Option<String>,
    /// End of the range, exclusive (Unix ms or RFC 3339).
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// The output format; by default from the `-o` file's extension, else jsonl.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write to this file (gzipped when it ends in `.gz`) instead of stdout (`-`).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// No progress line, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// Runs `luminate export`.
pub fn run(args: ExportArgs) -> ExitCode {
    let request = match request(&args) {
        Ok(request) => request,
        Err(e) => return usage_error("export", &e),
    };
    let to_file = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    let format = args
        .format
        .or_else(|| to_file.and_then(|p| Format::from_path(p)))
        .unwrap_or(Format::Jsonl);
    let out: Box<dyn Write> = match to_file {
        None => Box::new(std::io::stdout().lock()),
        Some(path) => match File::create(path) {
            Err(e) => return usage_error("export", &format!("{}: {e}", path.display())),
            Ok(file) if path.extension().is_some_and(|e| e == "gz") => Box::new(
                flate2::write::GzEncoder::new(file, flate2::Compression::fast()),
            ),
            Ok(file) => Box::new(file),
        },
    };
    let failed = |message: String| {
        eprintln!("luminate export: {message}");
        ExitCode::from(EXIT_INCOMPLETE)
    };
    let client = Client::streaming(&args.server);
    let mut writer = match format {
        Format::Jsonl => Writer::Jsonl,
        Format::Csv => match csv_columns(&client, args.metric.as_deref()) {
            Ok(keys) => Writer::Csv { keys },
            Err(e) => return failed(e),
        },
        Format::Openmetrics => Writer::OpenMetrics,
    };
    let reply = client.post_streamed(
        "/api/v1/export",
        &[("Content-Type", "application/json")],
        request.to_string().as_bytes(),
        |reason| eprintln!("luminate export: retrying: {reason}"),
    );
    let body = match reply {
        Ok(Ok(body)) => body,
        Ok(Err(reply)) => return failed(reply.error_message()),
        Err(e) => return failed(e),
    };
    let progress = Progress::new(!args.no_progress && std::io::stderr().is_terminal());
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let copied = copy(body, &mut writer, &mut out, &progress);
    let finished = copied.and_then(|()| {
        writer.end(&mut out).map_err(|e| format!("writing: {e}"))?;
        out.into_inner()
            .map_err(|e| format!("writing: {}", e.error()))?
            .flush()
            .map_err(|e| format!("writing: {e}"))
    });
    progress.finish();
    match finished {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => failed(format!(
            "{e} (after {} points; the output is incomplete)",
            progress.points()
        )),
    }
}

/// The export request: `metricName`, `timeRange` and `filters` from the flags.
fn request(args: &ExportArgs) -> Result<Value, String> {
    let mut request = Map::new();
    if let Some(metric) = &args.metric {
        request.insert("metricName".into(), metric.clone().into());
    }
    let range = match (&args.range, &args.start, &args.end) {
        (Some(relative), _, _) => json!({ "relative": relative }),
        (None, Some(start), Some(end)) => {
            json!({"start": timestamp_value(start), "end": timestamp_value(end)})
        }
        _ => return Err("give --range (e.g. 1h) or --start and --end".into()),
    };
    request.insert("timeRange".into(), range);
    if !args.filters.is_empty() {
        request.insert("filters".into(), Value::Object(filters(&args.filters)?));
    }
    Ok(Value::Object(request))
}

/// The CSV header's dimension keys: every key of the exported metrics, sorted.
fn csv_columns(client: &Client, metric: Option<&str>) -> Result<Vec<String>, String> {
    let get = |path: &str| -> Result<Option<Value>, String> {
        let reply = client.get(path)?;
        match reply.status {
            200 => serde_json::from_str(&reply.body)
                .map(Some)
                .map_err(|e| format!("GET {path}: the answer is not JSON: {e}")),
            404 => Ok(None),
            _ => Err(reply.error_message()),
        }
    };
    let strings = |v: &Value, field: &str| -> Vec<String> {
        v[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let metrics = match metric {
        Some(m) => vec![m.to_owned()],
        None => get("/api/v1/metrics")?
            .map(|v| strings(&v, "metrics"))
            .unwrap_or_default(),
    };
    let mut keys = BTreeSet::new();
    for m in metrics {
        if let Some(v) = get(&format!("/api/v1/metrics/{m}/dimensions"))? {
            keys.extend(strings(&v, "dimensions"));
        }
    }
    Ok(keys.into_iter().collect())
}

/// One line of the export, as the server writes it.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    timestamp: i64,
    /// Kept as the server spelled it (the shortest decimal of the value), not reformatted.
    value: serde_json::Number,
    #[serde(borrow)]
    dimensions: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

/// Turns the server's lines into the output format.
enum Writer {
    Jsonl,
    Csv { keys: Vec<String> },
    OpenMetrics,
}

impl Writer {
    /// Whatever comes before the first point.
    fn start(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Self::Csv { keys } => {
                let mut header = vec!["name".to_owned(), "timestamp".into(), "value".into()];
                header.extend(keys.iter().map(|k| csv_field(k).into_owned()));
                writeln!(out, "{}", header.join(","))
            }
            _ => Ok(()),
        }
    }

    /// Whatever comes after the last point.
    fn end(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Self::OpenMetrics => writeln!(out, "# EOF"),
            _ => Ok(()),
        }
    }

    /// Writes one line of the server's (without its newline) in the output format.
    fn point(&self, line: &str, out: &mut impl Write) -> Result<(), String> {
        let parse = || {
            serde_json::from_str::<Line<'_>>(line)
                .map_err(|e| format!("the server sent a line that is not a point ({e}): {line}"))
        };
        let written = match self {
            Self::Jsonl => writeln!(out, "{line}"),
            Self::Csv { keys } => {
                let p = parse()?;
                if let Some((k, _)) = p
                    .dimensions
                    .iter()
                    .find(|(k, _)| keys.binary_search_by(|c| c.as_str().cmp(k)).is_err())
                {
                    return Err(format!(
                        "a point of {} has the dimension {k:?}, written after the CSV header was made; \
                         export again (or to JSON lines, which need no header)",
                        p.name
                    ));
                }
                let mut row = format!("{},{},{}", csv_field(&p.name), p.timestamp, p.value);
                for key in keys {
                    row.push(',');
                    if let Some(v) = p.dimensions.get(key.as_str()) {
                        row.push_str(&csv_field(v));
                    }
                }
                writeln!(out, "{row}")
            }
            Self::OpenMetrics => {
                let p = parse()?;
                let mut sample = p.name.to_string();
                if !p.dimensions.is_empty() {
                    let labels: Vec<String> = p
                        .dimensions
                        .iter()
                        .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
                        .collect();
                    sample.push('{');
                    sample.push_str(&labels.join(","));
                    sample.push('}');
                }
                writeln!(out, "{sample} {} {}", p.value, seconds(p.timestamp))
            }
        };
        written.map_err(|e| format!("writing: {e}"))
    }
}

/// A CSV field, quoted when it needs it (RFC 4180).
fn csv_field(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// A label value with the exposition format's escapes (`\\`, `\"`, `\n`).
fn label_value(v: &str) -> Cow<'_, str> {
    if v.contains(['\\', '"', '\n']) {
        Cow::Owned(
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n"),
        )
    } else {
        Cow::Borrowed(v)
    }
}

/// Unix ms as OpenMetrics' seconds, exactly: `1764928800.123`, `-0.500`.
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Copies the server's lines into `out` in the writer's format.
fn copy(
    body: ureq::BodyReader<'static>,
    writer: &mut Writer,
    out: &mut impl Write,
    progress: &Progress,
) -> Result<(), String> {
    writer.start(out).map_err(|e| format!("writing: {e}"))?;
    let mut reader = BufReader::with_capacity(1 << 20, body);
    let cut = |e: std::io::Error| format!("the export was cut short: {e}");
    if matches!(writer, Writer::Jsonl) {
        // Passed through as it comes, a buffer at a time: the lines are already what is wanted.
        loop {
            let chunk = reader.fill_buf().map_err(cut)?;
            if chunk.is_empty() {
                return Ok(());
            }
            out.write_all(chunk).map_err(|e| format!("writing: {e}"))?;
            let lines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            let n = chunk.len();
            reader.consume(n);
            progress.add(lines, n as u64);
        }
    }
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(cut)?;
        if n == 0 {
            return Ok(());
        }
        writer.point(line.trim_end_matches('\n'), out)?;
        progress.add(1, n as u64);
    }
}

/// The progress line: points, points/s and bytes, on a terminal only.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// Interior mutability without locking: the copy loop is the only writer.
    counts: std::cell::Cell<(u64, u64)>,
}

impl Progress {
    fn new(shown: bool) -> Self {
        let bar = shown.then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {human_pos} points ({per_sec}, {elapsed}) {msg}",
            ) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            counts: std::cell::Cell::new((0, 0)),
        }
    }

    fn add(&self, points: u64, bytes: u64) {
        let (p, b) = self.counts.get();
        let (p, b) = (p + points, b + bytes);
        self.counts.set((p, b));
        if let Some(bar) = &self.bar {
            bar.set_position(p);
            bar.set_message(format!("{} received", HumanBytes(b)));
        }
    }

    fn points(&self) -> u64 {
        self.counts.get().0
    }

    fn finish(&self) {
        let (points, bytes) = self.counts.get();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            let seconds = self.started.elapsed().as_secs_f64();
            eprintln!(
                "exported {points} points ({}) in {seconds:.2} s, {:.0} points/s",
                HumanBytes(bytes),
                points as f64 / seconds.max(1e-9)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_csv_rows_and_openmetrics_samples() {
        let line = r#"{"name":"m","timestamp":1764928800123,"value":1.5e300,"dimensions":{"a":"x,\"y\"","b":"q\\"}}"#;
        let csv = Writer::Csv {
            keys: vec!["a".into(), "b".into(), "c".into()],
        };
        let mut out = Vec::new();
        csv.point(line, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "m,1764928800123,1.5e+300,\"x,\"\"y\"\"\",q\\,\n"
        );
        let mut out = Vec::new();
        Writer::OpenMetrics.point(line, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "m{a=\"x,\\\"y\\\"\",b=\"q\\\\\"} 1.5e+300 1764928800.123\n"
        );
        let narrow = Writer::Csv {
            keys: vec!["a".into()],
        };
        assert!(
            narrow
                .point(line, &mut Vec::new())
                .unwrap_err()
                .contains("\"b\"")
        );
    }

    #[test]
    fn timestamps_become_exact_seconds() {
        assert_eq!(seconds(1764928800123), "1764928800.123");
        assert_eq!(seconds(5), "0.005");
        assert_eq!(seconds(-500), "-0.500");
        assert_eq!(seconds(-1500), "-1.500");
    }
}
