//! `luminate import`: files (or stdin, `-`) in one of the [`Format`]s, gzipped or not (told by the
//! magic bytes), read line by line into points and sent in batches through [`send`] over
//! `--connections` keep-alive connections, with a progress bar on a terminal and a summary at the end.
//!
//! Each format is a [`Decoder`] of one line at a time, so memory stays bounded by the batches in
//! flight whatever the input's size. A line that is not a point is reported with its file and line
//! number and counted; it never stops the import nor passes silently (the exit code says so).
//!
//! Idempotency: the batches of a file are keyed by the file's identity (its canonical path, its size
//! and a hash of its first 64 KiB), the byte offset of the batch's first line and the batch's number of
//! points; those of stdin by a hash of everything read up to the end of the batch instead. The same
//! input with the same `--batch-size` thus gives the same keys on a rerun (docs/cli.md).

mod csv;
mod prometheus;
mod victoria_metrics;

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flate2::read::MultiGzDecoder;

use super::points::{Origin, Unsendable};
use super::send::{Batcher, Compress, Reporter, Sender, summary};
use super::{EXIT_INCOMPLETE, EXIT_OK, ServerArgs, StableHash, usage_error};

/// Bytes of a file's start hashed into its identity.
const IDENTITY_PREFIX: u64 = 64 << 10;
/// Longest input line read (a VictoriaMetrics line holds a whole series).
const MAX_LINE_BYTES: u64 = 64 << 20;

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Luminate's JSON point objects, one per line (`.jsonl`, `.ndjson`, `.json`).
    Jsonl,
    /// A header row `name,timestamp,value,<dimension>...`, then one point per row (`.csv`).
    Csv,
    /// Prometheus text exposition, timestamps in Unix milliseconds (`.prom`, `.txt`).
    Prometheus,
    /// OpenMetrics text, timestamps in Unix seconds (`.om`, `.openmetrics`).
    Openmetrics,
    /// VictoriaMetrics' JSON-lines export, `{"metric":{...},"values":[...],"timestamps":[...]}`
    /// (`/api/v1/export`); in a `.jsonl` file it is told from Luminate's points by its first line.
    Vm,
}

impl Format {
    /// The format a file name implies (`.gz` looked through), if any.
    fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit_once('.')?.1;
        Some(match ext {
            "jsonl" | "ndjson" | "json" => Self::Jsonl,
            "csv" => Self::Csv,
            "prom" | "txt" => Self::Prometheus,
            "om" | "openmetrics" => Self::Openmetrics,
            _ => return None,
        })
    }
}

/// `luminate import` arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Files to import, in order; `-` is stdin. Gzipped files are recognised by their first bytes.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The input format; by default from each file's extension (required for stdin).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Timestamp (Unix ms or RFC 3339) for Prometheus / OpenMetrics samples written without one.
    #[arg(long)]
    timestamp: Option<String>,
    /// Points per request (the server's `batch_write.max_batch_size`, 10 000 by default, is the most it
    /// takes; a rerun must use the same size for its idempotency keys to match).
    #[arg(long, default_value_t = 10_000)]
    batch_size: usize,
    /// Concurrent connections (requests in flight).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Batches gzipped (`gzip`), not (`none`), or gzipped unless the server is on this machine
    /// (`auto`: to a loopback address compressing only costs both sides CPU).
    #[arg(long, value_enum, default_value_t = Compress::Auto)]
    compress: Compress,
    /// Count NaN and ±Inf samples as skipped instead of as bad input lines (Prometheus summaries
    /// without observations have NaN quantiles; Luminate stores finite values only).
    #[arg(long)]
    skip_non_finite: bool,
    /// Admin only: accept points older than the server's `validation.max_past` (7 days), back to each
    /// metric's retention (docs/cli.md, "Backfill"; the token needs the `admin` scope).
    #[arg(long)]
    backfill: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// What a decoder makes of one line.
pub enum Decoded {
    /// Points (possibly none: a comment, a header).
    Points,
    /// The line is not what the format expects.
    Bad(String),
    /// OpenMetrics' `# EOF`: nothing after it is read.
    End,
}

/// A format's reader of one line at a time.
pub trait Decoder {
    /// Decodes `line` (without its terminator), pushing its points' JSON objects onto `out`.
    fn line(&mut self, line: &str, out: &mut Vec<Result<String, Unsendable>>) -> Decoded;
}

/// Settings every decoder may need.
pub struct DecodeSettings {
    /// `--timestamp`, in Unix ms.
    pub default_timestamp: Option<i64>,
}

/// Runs `luminate import`.
pub fn run(args: ImportArgs) -> ExitCode {
    let default_timestamp = match &args.timestamp {
        None => None,
        Some(text) => match luminate_model::time::parse_timestamp_str(text) {
            Ok(ms) => Some(ms),
            Err(e) => return usage_error("import", &format!("--timestamp {text:?}: {e}")),
        },
    };
    let settings = DecodeSettings { default_timestamp };
    let mut inputs = Vec::new();
    for path in &args.files {
        let stdin = path.as_os_str() == "-";
        let format = match args.format.or_else(|| Format::from_path(path)) {
            Some(format) => format,
            None if stdin => return usage_error("import", "reading stdin needs --format"),
            None => {
                return usage_error(
                    "import",
                    &format!(
                        "{}: cannot tell the format from the extension; give --format",
                        path.display()
                    ),
                );
            }
        };
        match Input::open(path, stdin) {
            Ok(input) => inputs.push((input, format)),
            Err(e) => return usage_error("import", &e),
        }
    }
    let progress = !args.no_progress && std::io::stderr().is_terminal();
    let reporter = Reporter::new(progress);
    let sender = Sender::start(
        &args.server,
        args.connections.max(1),
        args.backfill,
        args.compress,
        &reporter,
    );
    let mut read_error = None;
    for (input, format) in inputs {
        let name = input.name.clone();
        if let Err(e) = import_one(
            input,
            format,
            &settings,
            &sender,
            &reporter,
            args.batch_size,
            args.skip_non_finite,
        ) {
            read_error = Some(format!("{name}: {e}"));
            break;
        }
        if sender.stopped() {
            break;
        }
    }
    let fatal = sender.finish();
    let (tally, seconds) = reporter.finish();
    for reason in fatal.iter().chain(read_error.iter()) {
        eprintln!("luminate import: {reason}");
    }
    println!("{}", summary(&tally, seconds));
    if tally.complete() && fatal.is_none() && read_error.is_none() {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    }
}

/// An opened input.
struct Input {
    name: String,
    reader: Box<dyn BufRead + Send>,
    /// The file's identity; `None` for stdin, whose batches are keyed by a running content hash.
    identity: Option<String>,
}

impl Input {
    fn open(path: &Path, stdin: bool) -> Result<Self, String> {
        let (name, raw, identity): (String, Box<dyn Read + Send>, _) = if stdin {
            ("<stdin>".to_owned(), Box::new(std::io::stdin()), None)
        } else {
            let failed = |e: std::io::Error| format!("{}: {e}", path.display());
            let file = File::open(path).map_err(failed)?;
            let size = file.metadata().map_err(failed)?.len();
            let mut identity = StableHash::default();
            let canonical = path.canonicalize().map_err(failed)?;
            identity.update(canonical.as_os_str().as_encoded_bytes());
            identity.update(&size.to_le_bytes());
            let mut head = Vec::new();
            (&file)
                .take(IDENTITY_PREFIX)
                .read_to_end(&mut head)
                .map_err(failed)?;
            identity.update(&head);
            let file = File::open(path).map_err(failed)?;
            (
                path.display().to_string(),
                Box::new(file),
                Some(format!("{}-{size}", identity.hex())),
            )
        };
        let mut buffered = BufReader::with_capacity(1 << 20, raw);
        let gzipped = buffered
            .fill_buf()
            .map_err(|e| format!("{name}: {e}"))?
            .starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead + Send> = if gzipped {
            Box::new(BufReader::with_capacity(
                1 << 20,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        Ok(Self {
            name,
            reader,
            identity,
        })
    }
}

/// How the lines of an input become points.
enum Reading {
    /// Luminate's JSON lines: each line is a point object, sent as it is in a JSON-lines body
    /// (`send::Batch::json_lines`); the server reads and validates each line on its own.
    AsIs,
    /// Decoded into points by the format's decoder.
    Decoded(Box<dyn Decoder>),
}

fn reading_for(format: Format, settings: &DecodeSettings, first_line: &str) -> Reading {
    Reading::Decoded(match format {
        Format::Jsonl if victoria_metrics::looks_like(first_line) => {
            Box::new(victoria_metrics::Decoder)
        }
        Format::Jsonl => return Reading::AsIs,
        Format::Csv => Box::new(csv::Decoder::default()),
        Format::Prometheus => Box::new(prometheus::Decoder::new(settings, false)),
        Format::Openmetrics => Box::new(prometheus::Decoder::new(settings, true)),
        Format::Vm => Box::new(victoria_metrics::Decoder),
    })
}

/// Reads one input to its end (or `# EOF`), sending its points; an `Err` is a read error of the input.
///
/// A line that lies whole in the reader's buffer (1 MiB) is handled where it lies; only one that
/// crosses the buffer's end is copied out first. The lines of a file are most of its bytes, so the
/// copy per line was a tenth of the import's CPU.
fn import_one(
    mut input: Input,
    format: Format,
    settings: &DecodeSettings,
    sender: &Sender,
    reporter: &Reporter,
    batch_size: usize,
    skip_non_finite: bool,
) -> Result<(), String> {
    let mut lines = Lines {
        name: &input.name,
        identity: input.identity.as_deref(),
        settings,
        format,
        reporter,
        skip_non_finite,
        batcher: Batcher::new(sender, &input.name, batch_size),
        content: StableHash::default(),
        reading: None,
        points: Vec::new(),
        number: 0,
        offset: 0,
    };
    let mut long = Vec::new();
    loop {
        let buffered = input.reader.fill_buf().map_err(|e| e.to_string())?;
        if buffered.is_empty() {
            break;
        }
        let step = match memchr::memchr(b'\n', buffered) {
            Some(end) => {
                let step = lines.line(&buffered[..=end]);
                input.reader.consume(end + 1);
                step
            }
            None => {
                long.clear();
                let read = (&mut input.reader)
                    .take(MAX_LINE_BYTES)
                    .read_until(b'\n', &mut long)
                    .map_err(|e| e.to_string())?;
                if long.last() != Some(&b'\n') && read as u64 == MAX_LINE_BYTES {
                    return Err(format!(
                        "line {} is longer than {MAX_LINE_BYTES} bytes",
                        lines.number + 1
                    ));
                }
                lines.line(&long)
            }
        };
        if step == Step::Stop {
            return Ok(());
        }
        if step == Step::End {
            break;
        }
    }
    let stream = lines.stream();
    lines.batcher.flush(stream);
    Ok(())
}

/// What to do after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Read the next one.
    Next,
    /// The input ends here (`# EOF`); send what is batched.
    End,
    /// Sending has stopped for good: read no further.
    Stop,
}

/// The lines of one input on their way to batches.
struct Lines<'a> {
    name: &'a str,
    /// The file's identity; `None` for stdin (see [`Input::identity`]).
    identity: Option<&'a str>,
    settings: &'a DecodeSettings,
    format: Format,
    reporter: &'a Reporter,
    skip_non_finite: bool,
    batcher: Batcher<'a>,
    /// A hash of everything read so far (stdin's batches are keyed by it).
    content: StableHash,
    /// Chosen on the first line that is not blank: a `.jsonl` file may hold VictoriaMetrics series.
    reading: Option<Reading>,
    points: Vec<Result<String, Unsendable>>,
    /// The number of the last line read (1-based) and the offset after it.
    number: u64,
    offset: u64,
}

impl Lines<'_> {
    /// What the batches of this input are keyed by, as of what has been read.
    fn stream(&self) -> String {
        match self.identity {
            Some(identity) => identity.to_owned(),
            None => format!("stdin-{}", self.content.hex()),
        }
    }

    /// Handles one line, its terminator included.
    fn line(&mut self, raw: &[u8]) -> Step {
        self.number += 1;
        let (number, origin_offset) = (self.number, self.offset);
        self.offset += raw.len() as u64;
        if self.identity.is_none() {
            self.content.update(raw);
        }
        let Ok(line) = std::str::from_utf8(raw) else {
            self.reporter.bad_line(self.name, number, "not UTF-8");
            return Step::Next;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            return Step::Next;
        }
        let (format, settings) = (self.format, self.settings);
        let batcher = &mut self.batcher;
        let reading = self.reading.get_or_insert_with(|| {
            let reading = reading_for(format, settings, line);
            // Lines read as they are go out in JSON-lines batches, chosen once with the reading.
            batcher.json_lines = matches!(reading, Reading::AsIs);
            reading
        });
        let decoder = match reading {
            Reading::Decoded(decoder) => decoder,
            Reading::AsIs => {
                let origin = Origin {
                    line: number,
                    offset: origin_offset,
                    sub: 0,
                };
                self.batcher.push(line.trim(), origin);
                return self.flush_if_full();
            }
        };
        self.points.clear();
        match decoder.line(line, &mut self.points) {
            Decoded::Points => {}
            Decoded::Bad(e) => {
                self.reporter.bad_line(self.name, number, &e);
                return Step::Next;
            }
            Decoded::End => return Step::End,
        }
        let mut points = std::mem::take(&mut self.points);
        for (sub, point) in points.drain(..).enumerate() {
            let json = match point {
                Ok(json) => json,
                Err(Unsendable::NonFinite(_)) if self.skip_non_finite => {
                    self.reporter.tally(|t| t.skipped += 1);
                    continue;
                }
                Err(e) => {
                    self.reporter.bad_line(self.name, number, &e.to_string());
                    continue;
                }
            };
            let origin = Origin {
                line: number,
                offset: origin_offset,
                sub: u32::try_from(sub).unwrap_or(u32::MAX),
            };
            self.batcher.push(&json, origin);
            if self.flush_if_full() == Step::Stop {
                return Step::Stop;
            }
        }
        self.points = points;
        Step::Next
    }

    /// Sends the batch when it is full.
    fn flush_if_full(&mut self) -> Step {
        if self.batcher.is_full() {
            let stream = self.stream();
            if !self.batcher.flush(stream) {
                return Step::Stop;
            }
        }
        Step::Next
    }
}
