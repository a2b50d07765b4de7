//! `luminate check DATA_DIR`: verifies a data directory of the embedded engine offline
//! (`luminate_engine::check`) and prints each problem with its file and offset.
//!
//! Exit codes (docs/cli.md): 0 when the directory is clean, 1 when a problem was found, 2 when it could
//! not be checked (not a directory, held by a running server, unreadable).

use std::path::PathBuf;
use std::process::ExitCode;

use luminate_engine::check::CheckReport;

use super::{EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE};

/// `luminate check` arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The data directory (`storage.embedded.data_dir`). The server must be stopped: a directory it
    /// holds is refused.
    pub data_dir: PathBuf,
}

/// Runs `luminate check`.
pub fn run(args: CheckArgs) -> ExitCode {
    match luminate_engine::check::check(&args.data_dir) {
        Ok(report) => {
            print_report(&report);
            ExitCode::from(if report.is_clean() {
                EXIT_OK
            } else {
                EXIT_INCOMPLETE
            })
        }
        Err(e) => cannot("check", &e),
    }
}

/// Prints problems, notes and the summary line of a check.
pub(super) fn print_report(report: &CheckReport) {
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    let n = report.problems.len();
    println!(
        "checked: {} verified, {} series in the series log, {} WAL records; {}",
        plural(report.parts, "part"),
        report.series,
        report.wal_records,
        match n {
            0 => "no problem".to_owned(),
            1 => "1 problem".to_owned(),
            n => format!("{n} problems"),
        }
    );
}

/// `1 part`, `2 parts`.
pub(super) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The answer when the tool could not run at all (exit 2), saying what to do about a live server.
pub(super) fn cannot(command: &str, error: &luminate_engine::EngineError) -> ExitCode {
    match error {
        luminate_engine::EngineError::Locked { path } => eprintln!(
            "luminate {command}: refused: {} is held by a running server (stop it first: {command} \
             works on a directory no engine has open)",
            path.display()
        ),
        other => eprintln!("luminate {command}: {other}"),
    }
    ExitCode::from(EXIT_USAGE)
}
