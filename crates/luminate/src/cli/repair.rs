//! `luminate repair DATA_DIR`: makes a damaged data directory of the embedded engine startable again
//! (`luminate_engine::repair`): damaged parts set aside in `quarantine/`, logs cut at their damage, a
//! manifest rewritten or a lost WAL replaced — and prints each change and exactly what was lost.
//!
//! Exit codes (docs/cli.md): 0 when the directory passes a check afterwards (also when there was
//! nothing to repair), 1 when problems remain (printed), 2 when it could not run (not a directory,
//! held by a running server, unwritable).

use std::path::PathBuf;
use std::process::ExitCode;

use super::check::{cannot, print_report};
use super::{EXIT_INCOMPLETE, EXIT_OK};

/// `luminate repair` arguments.
#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// The data directory (`storage.embedded.data_dir`). The server must be stopped: a directory it
    /// holds is refused.
    pub data_dir: PathBuf,
}

/// Runs `luminate repair`.
pub fn run(args: RepairArgs) -> ExitCode {
    let report = match luminate_engine::repair::repair(&args.data_dir) {
        Ok(report) => report,
        Err(e) => return cannot("repair", &e),
    };
    for action in &report.actions {
        println!("repaired: {action}");
    }
    for lost in &report.lost {
        println!("lost: {lost}");
    }
    if report.actions.is_empty() && report.after.is_clean() {
        println!("nothing to repair: the data directory passes luminate check");
        return ExitCode::from(EXIT_OK);
    }
    if report.after.is_clean() {
        let points: u64 = report.quarantined.iter().map(|r| r.rows).sum();
        let set_aside = match report.quarantined.len() {
            0 => String::new(),
            1 => format!("1 part set aside in quarantine ({points} points); "),
            n => format!("{n} parts set aside in quarantine ({points} points); "),
        };
        println!("done: {set_aside}the data directory passes luminate check");
        return ExitCode::from(EXIT_OK);
    }
    println!("not repaired:");
    print_report(&report.after);
    ExitCode::from(EXIT_INCOMPLETE)
}
