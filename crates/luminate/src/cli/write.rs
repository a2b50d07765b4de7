//! `luminate write`: points from the arguments, or from stdin one per line, each a JSON point object
//! or the text form `name{k="v",...} value [timestamp_ms]`, sent in batches through [`send`].

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use super::points::{Origin, parse_write_line};
use super::send::{Batcher, Compress, Reporter, Sender, summary};
use super::{EXIT_INCOMPLETE, EXIT_OK, ServerArgs, StableHash, usage_error};

/// `luminate write` arguments.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Points: `name{k="v",...} value [timestamp_ms]` or a JSON point object each. Without any, one
    /// per line from stdin.
    points: Vec<String>,
    /// Points per request (the server's `batch_write.max_batch_size` is the most it takes).
    #[arg(long, default_value_t = 10_000)]
    batch_size: usize,
    /// Admin only: accept points older than the server's `validation.max_past`, back to each metric's
    /// retention (docs/cli.md, "Backfill").
    #[arg(long)]
    backfill: bool,
}

/// Runs `luminate write`.
pub fn run(args: WriteArgs) -> ExitCode {
    let now = luminate_model::time::now_ms();
    let reporter = Reporter::new(false);
    let sender = Sender::start(&args.server, 1, args.backfill, Compress::Auto, &reporter);
    // Keys unique to this run: a retry of a request is deduplicated, a second `luminate write` of the
    // same points stores them again (as the API does).
    let mut run_id = StableHash::default();
    run_id.update(format!("{now}-{}", std::process::id()).as_bytes());
    let stream = format!("write-{}", run_id.hex());
    let from_args = !args.points.is_empty();
    let source = if from_args { "argument" } else { "<stdin>" };
    if !from_args && std::io::stdin().is_terminal() {
        return usage_error(
            "write",
            "give points as arguments or on stdin (see luminate write --help)",
        );
    }
    let mut batcher = Batcher::new(&sender, source, args.batch_size);
    let mut offset = 0u64;
    let mut handle = |number: u64, line: &str| -> bool {
        let origin = Origin {
            line: number,
            offset,
            sub: 0,
        };
        offset += line.len() as u64 + 1;
        match parse_write_line(line, now) {
            Ok(Some(json)) => {
                batcher.push(&json, origin);
                !batcher.is_full() || batcher.flush(stream.clone())
            }
            Ok(None) => true,
            Err(e) => {
                reporter.bad_line(source, number, &e);
                true
            }
        }
    };
    let mut read_error = None;
    if from_args {
        for (i, point) in args.points.iter().enumerate() {
            if !handle(i as u64 + 1, point) {
                break;
            }
        }
    } else {
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            match line {
                Ok(line) => {
                    if !handle(i as u64 + 1, &line) {
                        break;
                    }
                }
                Err(e) => {
                    read_error = Some(format!("reading stdin: {e}"));
                    break;
                }
            }
        }
    }
    batcher.flush(stream);
    let fatal = sender.finish();
    let (tally, seconds) = reporter.finish();
    if let Some(reason) = fatal.iter().chain(read_error.iter()).next() {
        eprintln!("luminate write: {reason}");
    }
    println!("{}", summary(&tally, seconds));
    if tally.complete() && fatal.is_none() && read_error.is_none() {
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    }
}
