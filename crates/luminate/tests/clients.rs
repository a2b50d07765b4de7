//! The client libraries' own test suites — `clients/python` (`python3 -m unittest`) and
//! `clients/typescript` (compiled by `tsc`, run by `node --test`) — against the binary of this build:
//! each starts it from `LUMINATE_BIN` on loopback ports. A suite that fails, runs no test or skips one
//! fails here with its whole output. The TypeScript suite needs its devDependencies installed
//! (`npm --prefix clients/typescript ci`, which `scripts/test.sh` runs); it compiles itself.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn client_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../clients")
        .join(name)
}

/// Runs `program args` in `dir` with `LUMINATE_BIN` set; returns the output, stdout then stderr.
fn run(dir: &Path, program: &str, args: &[&str]) -> (Output, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("LUMINATE_BIN", env!("CARGO_BIN_EXE_luminate"))
        // The suites' servers take only the settings their tests give.
        .env_remove("RUST_LOG")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} in {}: {e}", dir.display()));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

/// The number after `prefix` on the first line starting with it.
fn count_after(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

#[test]
fn python_client_suite_passes_against_the_real_server() {
    let dir = client_dir("python");
    let (output, text) = run(
        &dir,
        "python3",
        &["-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."],
    );
    assert!(
        output.status.success(),
        "the Python client's tests failed:\n{text}"
    );
    let ran = count_after(&text, "Ran ").unwrap_or(0);
    assert!(
        ran >= 30,
        "expected the whole suite to run, ran {ran}:\n{text}"
    );
    assert!(!text.contains("skipped"), "a test was skipped:\n{text}");
}

#[test]
fn typescript_client_suite_passes_against_the_real_server() {
    let dir = client_dir("typescript");
    assert!(
        dir.join("node_modules/typescript").is_dir(),
        "clients/typescript has no node_modules: run `npm --prefix clients/typescript ci` \
         (./scripts/test.sh does)"
    );
    let (output, text) = run(&dir, "npm", &["test", "--silent"]);
    assert!(
        output.status.success(),
        "the TypeScript client's tests failed:\n{text}"
    );
    let passed = count_after(&text, "# pass ").unwrap_or(0);
    assert!(
        passed >= 30,
        "expected the whole suite to pass, {passed} passed:\n{text}"
    );
    for none in ["# fail 0", "# cancelled 0", "# skipped 0", "# todo 0"] {
        assert!(text.contains(none), "expected {none:?}:\n{text}");
    }
}
