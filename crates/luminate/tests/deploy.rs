//! The files of `deploy/`, checked without running them: the Prometheus rules pass `promtool check rules`
//! and their unit tests (every alert has one test where it fires and one where it stays silent), every
//! alert carries a severity, a summary, a description and a runbook that exists; the Prometheus and
//! Alertmanager configurations pass `promtool` and `amtool`; the PrometheusRule carries exactly the rule
//! file's groups; every dashboard panel has PromQL that Prometheus parses; the compose file mounts only
//! paths that exist and Grafana's provisioning points at them. (monitoring_stack.rs runs the stack.)

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod deploy_files;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use deploy_files::{
    RULES, RUNBOOK_BASE, dashboard, dashboard_queries, items, path, read, repo, run_ok, substitute,
    text, yaml,
};
use yaml_rust2::Yaml;

/// Every alerting rule of the rule file: `(alert name, rule)`.
fn alert_rules() -> Vec<(String, Yaml)> {
    let rules = yaml(RULES);
    items(&rules["groups"])
        .iter()
        .flat_map(|g| items(&g["rules"]).to_vec())
        .filter_map(|r| Some((r["alert"].as_str()?.to_owned(), r)))
        .collect()
}

#[test]
fn rules_pass_promtool_check() {
    let out = run_ok("promtool", "prometheus", &["check", "rules", RULES]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn rule_unit_tests_pass() {
    let dir = path("deploy/prometheus/tests");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "unit tests expected in {dir:?}");
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    run_ok("promtool", "prometheus", &args);
}

/// For each alert, whether a unit test expects it firing and whether one expects it silent.
#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test() {
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for entry in std::fs::read_dir(path("deploy/prometheus/tests")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_none_or(|e| e != "yml") {
            continue;
        }
        let relative = file
            .strip_prefix(repo())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let doc = yaml(&relative);
        for test in items(&doc["tests"]) {
            for case in items(&test["alert_rule_test"]) {
                let name = text(&case["alertname"], "alertname").to_owned();
                let fires = !items(&case["exp_alerts"]).is_empty();
                let (fired, silent) = seen.entry(name).or_default();
                *fired |= fires;
                *silent |= !fires;
            }
        }
    }
    let names: BTreeSet<String> = alert_rules().into_iter().map(|(n, _)| n).collect();
    for name in &names {
        assert_eq!(
            seen.get(name),
            Some(&(true, true)),
            "{name}: (a test where it fires, a test where it does not)"
        );
    }
    let unknown: Vec<_> = seen.keys().filter(|n| !names.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "tests of alerts that do not exist: {unknown:?}"
    );
}

#[test]
fn every_alert_has_severity_summary_description_and_an_existing_runbook() {
    let alerts = alert_rules();
    assert!(alerts.len() >= 9, "{} alert rules", alerts.len());
    let mut runbooks = BTreeSet::new();
    for (name, rule) in &alerts {
        let severity = text(&rule["labels"]["severity"], &format!("{name} severity"));
        assert!(
            ["page", "ticket"].contains(&severity),
            "{name}: severity {severity}"
        );
        for key in ["summary", "description"] {
            let value = text(&rule["annotations"][key], &format!("{name} {key}"));
            assert!(!value.trim().is_empty(), "{name}: empty {key}");
        }
        let url = text(
            &rule["annotations"]["runbook_url"],
            &format!("{name} runbook_url"),
        );
        let file = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} is not under {RUNBOOK_BASE}"));
        assert_eq!(
            file,
            format!("{name}.md"),
            "{name}: runbook named after the alert"
        );
        let runbook = path("docs/runbooks").join(file);
        assert!(
            runbook.is_file(),
            "{name}: {} does not exist",
            runbook.display()
        );
        let body = std::fs::read_to_string(&runbook).unwrap();
        assert!(body.starts_with(&format!("# {name}\n")), "{file}: title");
        runbooks.insert(file.to_owned());
    }
    // No runbook outlives its alert.
    for entry in std::fs::read_dir(path("docs/runbooks")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "README.md" || runbooks.contains(&name),
            "docs/runbooks/{name} belongs to no alert"
        );
    }
}

#[test]
fn alertmanager_config_passes_amtool() {
    let out = run_ok(
        "amtool",
        "prometheus-alertmanager",
        &["check-config", "deploy/monitoring/alertmanager.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Routes on severity: each severity of the rules has a route of its own.
#[test]
fn alertmanager_routes_every_severity() {
    let config = yaml("deploy/monitoring/alertmanager.yml");
    let routed: BTreeSet<String> = items(&config["route"]["routes"])
        .iter()
        .flat_map(|r| items(&r["matchers"]).to_vec())
        .filter_map(|m| {
            m.as_str()?
                .strip_prefix("severity=")
                .map(|v| v.trim_matches('"').to_owned())
        })
        .collect();
    let severities: BTreeSet<String> = alert_rules()
        .iter()
        .map(|(_, r)| r["labels"]["severity"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(routed, severities);
    assert!(
        config["route"]["receiver"].as_str().is_some(),
        "a default receiver"
    );
}

#[test]
fn prometheus_config_passes_promtool_with_its_rules() {
    let out = run_ok(
        "promtool",
        "prometheus",
        &["check", "config", "deploy/monitoring/prometheus.yml"],
    );
    // The rule path is relative to the configuration, and promtool checks the rules it finds there.
    assert!(out.contains("1 rule files found"), "{out}");
    let config = yaml("deploy/monitoring/prometheus.yml");
    let jobs: Vec<&str> = items(&config["scrape_configs"])
        .iter()
        .map(|s| text(&s["job_name"], "job_name"))
        .collect();
    assert!(
        jobs.contains(&"luminate") && jobs.contains(&"node"),
        "{jobs:?}"
    );
    assert!(!items(&config["alerting"]["alertmanagers"]).is_empty());
}

#[test]
fn prometheus_rule_carries_exactly_the_rule_file_groups() {
    let resource = yaml("deploy/monitoring/prometheus-rule.yaml");
    assert_eq!(resource["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(resource["spec"]["groups"], yaml(RULES)["groups"]);
    // And it is what the generator writes today.
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("bash")
        .arg(path("deploy/monitoring/generate-prometheus-rule.sh"))
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(out.path()).unwrap(),
        read("deploy/monitoring/prometheus-rule.yaml"),
        "run deploy/monitoring/generate-prometheus-rule.sh"
    );
}

#[test]
fn service_monitor_scrapes_luminate_as_job_luminate() {
    let monitor = yaml("deploy/monitoring/service-monitor.yaml");
    assert_eq!(monitor["kind"].as_str(), Some("ServiceMonitor"));
    let job_label = text(&monitor["spec"]["jobLabel"], "jobLabel");
    // The Service label that names the job is the one selected, with the value the rules expect.
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"][job_label].as_str(),
        Some("luminate")
    );
    let endpoint = &items(&monitor["spec"]["endpoints"])[0];
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
}

#[test]
fn dashboard_has_variables_and_a_query_in_every_panel() {
    let dashboard = dashboard();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "instance"]);
    assert_eq!(dashboard["templating"]["list"][0]["type"], "datasource");
    assert_eq!(dashboard["templating"]["list"][0]["query"], "prometheus");
    assert!(dashboard["uid"].is_string() && dashboard["schemaVersion"].is_u64());
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert!(
                !target["expr"].as_str().unwrap().trim().is_empty(),
                "{title}: empty expr"
            );
        }
    }
}

/// promtool has no command that only parses PromQL; a rule file with each expression as a recording
/// rule makes `promtool check rules` parse them all.
#[test]
fn dashboard_expressions_parse_as_promql() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "{} queries", queries.len());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        let expr = substitute(expr, "1m");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rules).unwrap();
    let out = run_ok(
        "promtool",
        "prometheus",
        &["check", "rules", file.path().to_str().unwrap()],
    );
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{out}"
    );
}

/// A compose volume entry `source:target[:mode]`: `(source, target)`.
fn volume(entry: &str) -> (&str, &str) {
    let mut parts = entry.splitn(3, ':');
    (parts.next().unwrap(), parts.next().unwrap_or(""))
}

#[test]
fn compose_mounts_paths_that_exist_and_provisions_grafana_from_them() {
    let compose_dir = path("deploy/monitoring");
    let compose = yaml("deploy/monitoring/docker-compose.yml");
    let services = compose["services"].as_hash().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    for wanted in [
        "luminate",
        "prometheus",
        "alertmanager",
        "grafana",
        "node-exporter",
    ] {
        assert!(names.contains(wanted), "no service {wanted}");
    }
    let declared: BTreeSet<&str> = compose["volumes"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    // Container path → repository path of every bind mount from the repository.
    let mut mounted: BTreeMap<(String, String), std::path::PathBuf> = BTreeMap::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        for entry in items(&service["volumes"]) {
            let (source, target) = volume(text(entry, "volume"));
            assert!(target.starts_with('/'), "{name}: {entry:?}");
            if source.starts_with('.') {
                let resolved = compose_dir.join(source);
                assert!(
                    resolved.exists(),
                    "{name} mounts {source}, which does not exist"
                );
                mounted.insert((name.to_owned(), target.to_owned()), resolved);
            } else if !source.starts_with('/') {
                assert!(
                    declared.contains(source),
                    "{name}: volume {source} not declared"
                );
            }
        }
        for depends in items(&service["depends_on"]) {
            assert!(
                names.contains(text(depends, "depends_on")),
                "{name}: {depends:?}"
            );
        }
    }
    let build = &services[&Yaml::String("luminate".into())]["build"];
    let context = compose_dir.join(text(&build["context"], "build context"));
    assert!(
        context
            .join(text(&build["dockerfile"], "dockerfile"))
            .is_file()
    );
    assert_eq!(context.canonicalize().unwrap(), repo());

    // Prometheus reads the configuration and, next to it, the rule file it names.
    let prometheus = &services[&Yaml::String("prometheus".into())];
    let config_flag = items(&prometheus["command"])
        .iter()
        .find_map(|c| c.as_str()?.strip_prefix("--config.file="))
        .unwrap();
    let config = &mounted[&("prometheus".to_owned(), config_flag.to_owned())];
    assert_eq!(config, &compose_dir.join("./prometheus.yml"));
    let rules_dir = Path::new(config_flag)
        .parent()
        .unwrap()
        .join("../prometheus");
    let rules_dir = normalize(&rules_dir);
    assert_eq!(
        mounted[&("prometheus".to_owned(), rules_dir)]
            .canonicalize()
            .unwrap(),
        path("deploy/prometheus")
    );

    // Grafana: the provisioning folder is mounted, its dashboard provider reads the mounted
    // deploy/grafana, and its data source is the compose Prometheus.
    let provisioning = &mounted[&("grafana".to_owned(), "/etc/grafana/provisioning".to_owned())];
    let providers = yaml_at(&provisioning.join("dashboards/luminate.yml"));
    let dashboards_path = text(
        &items(&providers["providers"])[0]["options"]["path"],
        "path",
    );
    let dashboards = &mounted[&("grafana".to_owned(), dashboards_path.to_owned())];
    assert_eq!(dashboards.canonicalize().unwrap(), path("deploy/grafana"));
    assert!(dashboards.join("luminate.json").is_file());
    let datasources = yaml_at(&provisioning.join("datasources/prometheus.yml"));
    let source = &items(&datasources["datasources"])[0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(source["url"].as_str(), Some("http://prometheus:9090"));
}

/// `a/b/../c` → `a/c`, for container paths that exist nowhere here.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.to_str().unwrap().split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn yaml_at(file: &Path) -> Yaml {
    let relative = file
        .strip_prefix(repo())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    yaml(&relative)
}
