//! What the tests of `deploy/` share: the repository's paths, YAML and JSON readers, the external tools
//! (`promtool`, `amtool`, the Prometheus servers), which fail the test with the package to install when
//! missing instead of skipping, and the Grafana dashboard's expressions with its variables substituted.

#![allow(dead_code)] // each test binary uses a different part

pub mod dockerfile;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// The dashboard of `deploy/grafana`.
pub const DASHBOARD: &str = "deploy/grafana/luminate.json";
/// The rule file of `deploy/prometheus`.
pub const RULES: &str = "deploy/prometheus/luminate-rules.yml";
/// Where every `runbook_url` points: docs/runbooks/ of the repository's main branch.
pub const RUNBOOK_BASE: &str =
    "https://github.com/luminate-metrics/luminate/blob/main/docs/runbooks/";

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A file of the repository, by its path from the root.
pub fn path(relative: &str) -> PathBuf {
    repo().join(relative)
}

/// The text of a repository file.
pub fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// The single YAML document of a repository file.
pub fn yaml(relative: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{relative} must hold one YAML document");
    docs.remove(0)
}

/// The items of a YAML sequence (none when the node is missing).
pub fn items(node: &Yaml) -> &[Yaml] {
    node.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

/// A YAML string, or a panic naming `what`.
pub fn text<'a>(node: &'a Yaml, what: &str) -> &'a str {
    node.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {node:?}"))
}

/// A program of a Debian package, or a panic that names the package: the tests never skip.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is required: install the Debian package `{package}` (scripts/test.sh does)"
        )
    })
}

/// Runs `program args` from the repository's root and panics with its output unless it succeeds.
pub fn run_ok(program: &str, package: &str, args: &[&str]) -> String {
    let binary = require(program, package);
    let output = Command::new(&binary)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\n{all}",
        args.join(" "),
        output.status
    );
    all
}

/// The dashboard as JSON.
pub fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// Every query of the dashboard, `(panel title, expression)` as written (with Grafana's variables).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let title = p["title"].as_str().expect("panel title").to_owned();
            p["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("panel {title:?} has no targets"))
                .iter()
                .map(move |t| {
                    let expr = t["expr"]
                        .as_str()
                        .unwrap_or_else(|| panic!("a target of {title:?} has no expr"));
                    (title.clone(), expr.to_owned())
                })
        })
        .collect()
}

/// `expr` as Grafana would send it with every instance selected and `$__rate_interval` set to
/// `rate_interval`. Panics on a variable it does not know, so a new one is not silently sent as is.
pub fn substitute(expr: &str, rate_interval: &str) -> String {
    let out = expr
        .replace("$__rate_interval", rate_interval)
        .replace("${instance}", ".+")
        .replace("$instance", ".+");
    assert!(
        !out.contains('$'),
        "unknown Grafana variable in a dashboard expression: {expr}"
    );
    out
}
