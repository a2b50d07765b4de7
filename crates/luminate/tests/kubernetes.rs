//! The manifests of `deploy/kubernetes/`, without a cluster: every one validates against the Kubernetes
//! schemas (`kubernetes-validate`, offline, with the schemas it ships), and each workload's pod is run as
//! processes of the real binary with exactly its configuration — the image's environment (the
//! Dockerfile's ENV) under the container's, its arguments, its ConfigMap written where the pod mounts it
//! — plus the service links Kubernetes injects into a namespace with a Service `luminate`. Only what a
//! cluster would provide is stood in for: mount paths become temporary directories (everywhere they
//! appear: arguments, environment, mounted files), Secrets are filled with test values, and the port is
//! a free one (through `LUMINATE_SERVER_PORT`; 8080 may be taken here). Each pod must become ready and
//! live by its own probes. The ClickHouse-backed Deployment runs its replicas against a real
//! `clickhouse-server` with a password.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod deploy_files;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Launch, Luminate, eventually, get_text};
use deploy_files::dockerfile::image;
use deploy_files::{items, path, repo, text, yaml};
use yaml_rust2::{Yaml, YamlLoader};

const JWT_SECRET: &str = "a-kubernetes-secret-of-thirty-two-bytes";
/// The Secret's scrape token (`metrics-token`), which the ServiceMonitor sends.
const METRICS_TOKEN: &str = "a-kubernetes-scrape-token";

/// The two shapes: `(directory, workload file)`.
const SHAPES: &[(&str, &str)] = &[
    ("deploy/kubernetes/embedded", "statefulset.yaml"),
    ("deploy/kubernetes/clickhouse", "deployment.yaml"),
];

/// Every manifest under `deploy/kubernetes`, symbolic links to `deploy/monitoring` included, sorted.
fn manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap().path();
            if entry.is_dir() {
                walk(&entry, out);
            } else if entry.extension().is_some_and(|e| e == "yaml") {
                out.push(entry);
            }
        }
    }
    let mut out = Vec::new();
    walk(&path("deploy/kubernetes"), &mut out);
    out.sort();
    out
}

/// `kubernetes-validate` from PyPI, or a panic saying how to get it: the test never skips.
fn kubernetes_validate() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("kubernetes-validate"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`kubernetes-validate` is required: install the PyPI package kubernetes-validate \
                 (scripts/test.sh does, into ~/.cache/luminate/python)"
            )
        })
}

#[test]
fn every_manifest_validates_against_the_kubernetes_schemas() {
    let files = manifests();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(repo()).unwrap().to_str().unwrap().to_owned())
        .collect();
    for wanted in [
        "deploy/kubernetes/embedded/statefulset.yaml",
        "deploy/kubernetes/clickhouse/deployment.yaml",
        "deploy/kubernetes/service-monitor.yaml",
        "deploy/kubernetes/prometheus-rule.yaml",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
    let output = Command::new(kubernetes_validate())
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    for (file, name) in files.iter().zip(&names) {
        let kind = text(&yaml(name)["kind"], "kind").to_owned();
        let line = report
            .lines()
            .find(|l| l.contains(file.to_str().unwrap()))
            .unwrap_or_else(|| panic!("{name} not reported:\n{report}"));
        // The Prometheus Operator's kinds are custom resources, whose schemas Kubernetes does not
        // ship: tests/deploy.rs checks those two by structure.
        if ["ServiceMonitor", "PrometheusRule"].contains(&kind.as_str()) {
            assert!(line.contains("Couldn't find schema"), "{line}");
        } else {
            assert!(
                line.starts_with("INFO") && line.contains("passed"),
                "{line}"
            );
        }
    }
}

/// The Secrets the manifests name, filled for a test: `(secret, key)` → value.
type Secrets = BTreeMap<(&'static str, &'static str), String>;

/// A workload of one shape, read from its directory.
struct Workload {
    manifest: Yaml,
    service: Yaml,
    /// ConfigMap name → its data (file name → text).
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Workload {
    fn read(dir: &str, file: &str) -> Self {
        let config_map = yaml(&format!("{dir}/configmap.yaml"));
        assert_eq!(config_map["kind"].as_str(), Some("ConfigMap"));
        let data = config_map["data"]
            .as_hash()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), text(v, "data").to_owned()))
            .collect();
        Self {
            manifest: yaml(&format!("{dir}/{file}")),
            service: yaml(&format!("{dir}/service.yaml")),
            config_maps: BTreeMap::from([(
                text(&config_map["metadata"]["name"], "name").to_owned(),
                data,
            )]),
        }
    }

    fn pod(&self) -> &Yaml {
        &self.manifest["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Yaml {
        let containers = items(&self.pod()["containers"]);
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    /// The container port named `name`.
    fn port(&self, name: &str) -> i64 {
        items(&self.container()["ports"])
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("no container port named {name}"))
    }

    /// The configuration file the container is started with, parsed (`--config` in its arguments).
    fn config(&self) -> Yaml {
        let args = self.args();
        let at = args.iter().position(|a| a == "--config").unwrap();
        let file = Path::new(&args[at + 1]);
        let mount = items(&self.container()["volumeMounts"])
            .iter()
            .find(|m| Some(file.parent().unwrap().to_str().unwrap()) == m["mountPath"].as_str())
            .expect("the configuration file is in a mounted directory");
        let volume = self.volume(text(&mount["name"], "name"));
        let config_map = text(&volume["configMap"]["name"], "configMap");
        let content = &self.config_maps[config_map][file.file_name().unwrap().to_str().unwrap()];
        YamlLoader::load_from_str(content).unwrap().remove(0)
    }

    fn args(&self) -> Vec<String> {
        items(&self.container()["args"])
            .iter()
            .map(|a| text(a, "args").to_owned())
            .collect()
    }

    fn volume(&self, name: &str) -> &Yaml {
        items(&self.pod()["volumes"])
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no volume {name}"))
    }

    /// Whether `name` is one of the StatefulSet's claim templates.
    fn is_claim(&self, name: &str) -> bool {
        items(&self.manifest["spec"]["volumeClaimTemplates"])
            .iter()
            .any(|c| c["metadata"]["name"].as_str() == Some(name))
    }

    /// One pod as a process: its volumes under `scratch`, `secrets` for its Secrets, on `port`.
    fn launch(&self, scratch: &Path, secrets: &Secrets, port: u16) -> Launch {
        let image = image();
        let container = self.container();
        assert!(
            container["command"].is_badvalue(),
            "the image's ENTRYPOINT runs"
        );
        assert_eq!(image.entrypoint, ["luminate"]);
        // Mount path → the directory standing in for it.
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for mount in items(&container["volumeMounts"]) {
            let name = text(&mount["name"], "name");
            let dir = scratch.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            mounts.push((text(&mount["mountPath"], "mountPath").to_owned(), dir));
        }
        let map = |value: &str| {
            mounts.iter().fold(value.to_owned(), |v, (from, to)| {
                v.replace(from.as_str(), to.to_str().unwrap())
            })
        };
        for mount in items(&container["volumeMounts"]) {
            let name = text(&mount["name"], "name");
            if self.is_claim(name) {
                continue;
            }
            let config_map = text(&self.volume(name)["configMap"]["name"], "configMap");
            for (file, content) in &self.config_maps[config_map] {
                std::fs::write(scratch.join(name).join(file), map(content)).unwrap();
            }
        }
        let workdir = map(&image.workdir);
        let workdir = if workdir == image.workdir {
            scratch.join("workdir")
        } else {
            PathBuf::from(workdir)
        };
        std::fs::create_dir_all(&workdir).unwrap();
        let mut launch = Launch {
            args: Some(self.args().iter().map(|a| map(a)).collect()),
            current_dir: Some(workdir),
            ..Launch::default()
        }
        .with_service_links();
        // The image's ENV first: the container's own variables of the same name win, as in a pod.
        for (key, value) in &image.env {
            launch = launch.env(key, &map(value));
        }
        for variable in items(&container["env"]) {
            let name = text(&variable["name"], "env name");
            let value = match variable["value"].as_str() {
                Some(value) => value.to_owned(),
                None => {
                    let reference = &variable["valueFrom"]["secretKeyRef"];
                    let (secret, key) = (
                        text(&reference["name"], "secret"),
                        text(&reference["key"], "key"),
                    );
                    secrets
                        .iter()
                        .find(|((s, k), _)| *s == secret && *k == key)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| panic!("{name}: Secret {secret} key {key} not filled"))
                }
            };
            launch = launch.env(name, &map(&value));
        }
        launch.env("LUMINATE_SERVER_PORT", &port.to_string())
    }

    /// Starts the pod and waits until its probes pass: each `httpGet` probe answers 200 on its path,
    /// each `tcpSocket` probe connects.
    fn start_ready(&self, scratch: &Path, secrets: &Secrets) -> (Luminate, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = self.launch(scratch, secrets, port).start();
        let base = format!("http://127.0.0.1:{port}");
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let probe = &self.container()[probe];
            if probe.is_badvalue() {
                continue;
            }
            let ok = if let Some(path) = probe["httpGet"]["path"].as_str() {
                assert_eq!(self.port(text(&probe["httpGet"]["port"], "port")), 8080);
                eventually(Duration::from_secs(20), || {
                    get_text(&format!("{base}{path}"), &[]).0 == 200
                })
            } else {
                assert_eq!(self.port(text(&probe["tcpSocket"]["port"], "port")), 8080);
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            };
            assert!(ok, "{probe:?} did not pass:\n{}", server.output());
        }
        (server, base)
    }

    /// What every workload promises: service links off, the JWT secret from a Secret, a Service
    /// whose selector is the pod's labels and whose port `http` the ServiceMonitor scrapes, a
    /// configuration file with every section, and the seed's resources.
    fn check_common(&self, requests: (&str, &str), limits: (&str, &str)) {
        assert_eq!(self.pod()["enableServiceLinks"].as_bool(), Some(false));
        let jwt = items(&self.container()["env"])
            .iter()
            .find(|v| v["name"].as_str() == Some("LUMINATE_AUTH_JWT_SECRET"))
            .expect("the JWT secret in the environment");
        assert!(
            jwt["valueFrom"]["secretKeyRef"]["name"].as_str().is_some(),
            "from a Secret"
        );
        let labels = &self.manifest["spec"]["template"]["metadata"]["labels"];
        let selector = self.service["spec"]["selector"].as_hash().unwrap();
        for (k, v) in selector {
            assert_eq!(&labels[k.as_str().unwrap()], v, "Service selector {k:?}");
        }
        assert_eq!(
            &self.manifest["spec"]["selector"]["matchLabels"],
            &self.service["spec"]["selector"]
        );
        assert_eq!(
            self.service["metadata"]["labels"]["app.kubernetes.io/name"].as_str(),
            Some("luminate"),
            "the label the ServiceMonitor selects and names the job after"
        );
        let ports = items(&self.service["spec"]["ports"]);
        assert_eq!(ports[0]["name"].as_str(), Some("http"));
        assert_eq!(self.port(text(&ports[0]["targetPort"], "targetPort")), 8080);
        let config = self.config();
        // OTLP/gRPC on its default port (the ConfigMap's file does not move it).
        assert!(config["otlp"]["grpc"]["port"].is_badvalue());
        assert_eq!(ports[1]["name"].as_str(), Some("otlp-grpc"));
        assert_eq!(ports[1]["port"].as_i64(), Some(4317));
        assert_eq!(self.port(text(&ports[1]["targetPort"], "targetPort")), 4317);
        let example = yaml("examples/luminate.yaml");
        for section in example.as_hash().unwrap().keys() {
            assert!(
                !config[section.as_str().unwrap()].is_badvalue(),
                "the ConfigMap's file has no {section:?} section"
            );
        }
        assert_eq!(config["server"]["host"].as_str(), Some("0.0.0.0"));
        assert_eq!(
            config["server"]["port"].as_i64(),
            Some(self.port("http")),
            "the container port is the configured one"
        );
        assert_eq!(config["auth"]["enabled"].as_bool(), Some(true));
        let resources = &self.container()["resources"];
        assert_eq!(
            (
                resources["requests"]["memory"].as_str(),
                resources["requests"]["cpu"].as_str()
            ),
            (Some(requests.0), Some(requests.1))
        );
        assert_eq!(
            (
                resources["limits"]["memory"].as_str(),
                resources["limits"]["cpu"].as_str()
            ),
            (Some(limits.0), Some(limits.1))
        );
    }
}

/// `luminate token` as `kubectl exec` would run it in the pod: with the pod's arguments' configuration
/// file and environment.
fn token(launch: &Launch, tenant: &str) -> String {
    let args = launch.args.as_ref().unwrap();
    let at = args.iter().position(|a| a == "--config").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luminate"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["token", "--config", &args[at + 1], "--tenant", tenant]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_statefulset_pod_becomes_ready_with_its_configuration_among_service_links() {
    let (dir, file) = SHAPES[0];
    let workload = Workload::read(dir, file);
    let spec = &workload.manifest["spec"];
    assert_eq!(workload.manifest["kind"].as_str(), Some("StatefulSet"));
    assert_eq!(
        spec["replicas"].as_i64(),
        Some(1),
        "the engine is one process"
    );
    assert_eq!(
        spec["serviceName"].as_str(),
        workload.service["metadata"]["name"].as_str()
    );
    workload.check_common(("2Gi", "1000m"), ("4Gi", "2000m"));
    let claim = &items(&spec["volumeClaimTemplates"])[0];
    assert_eq!(
        claim["spec"]["resources"]["requests"]["storage"].as_str(),
        Some("100Gi")
    );
    let claim_name = text(&claim["metadata"]["name"], "claim");
    let data_dir = workload.config()["storage"]["embedded"]["data_dir"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        items(&workload.container()["volumeMounts"])
            .iter()
            .any(|m| m["name"].as_str() == Some(claim_name)
                && m["mountPath"].as_str() == Some(data_dir.as_str())),
        "the claim is mounted at the data directory"
    );
    // Readiness follows health; startup and liveness fail only when a restart helps.
    for (probe, path) in [
        ("readinessProbe", "/api/v1/health"),
        ("startupProbe", "/api/v1/health/live"),
        ("livenessProbe", "/api/v1/health/live"),
    ] {
        assert_eq!(
            workload.container()[probe]["httpGet"]["path"].as_str(),
            Some(path),
            "{probe}"
        );
    }

    let scratch = tempfile::tempdir().unwrap();
    let secrets = Secrets::from([
        (("luminate-secrets", "jwt-secret"), JWT_SECRET.to_owned()),
        (
            ("luminate-secrets", "metrics-token"),
            METRICS_TOKEN.to_owned(),
        ),
    ]);
    let (server, base) = workload.start_ready(scratch.path(), &secrets);
    let (_, _, health) = get_text(&format!("{base}/api/v1/health"), &[]);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["storage"]["backend"], "embedded");
    assert!(
        scratch.path().join(claim_name).join("wal").is_dir(),
        "the engine writes to the claim's volume"
    );
    assert_eq!(
        get_text(&format!("{base}/api/v1/metrics"), &[]).0,
        401,
        "auth on"
    );
    let bearer = format!("Bearer {}", token(server.launch(), "acme"));
    assert_eq!(
        get_text(
            &format!("{base}/api/v1/metrics"),
            &[("authorization", &bearer)]
        )
        .0,
        200
    );
    // The exposition names every tenant: the ServiceMonitor's token opens it, nothing else does.
    let metrics = format!("{base}/metrics");
    assert_eq!(get_text(&metrics, &[("authorization", &bearer)]).0, 401);
    let scrape = format!("Bearer {METRICS_TOKEN}");
    assert_eq!(get_text(&metrics, &[("authorization", &scrape)]).0, 200);
    let output = server.output();
    assert!(!output.contains("LUMINATE_SERVICE"), "{output}");
}

#[cfg(feature = "clickhouse")]
#[test]
fn the_deployments_replicas_become_ready_on_clickhouse_and_serve_the_same_data() {
    use luminate_clickhouse::testing::{PASSWORD_USER, shared};
    use serde_json::json;

    let (dir, file) = SHAPES[1];
    let workload = Workload::read(dir, file);
    let spec = &workload.manifest["spec"];
    assert_eq!(workload.manifest["kind"].as_str(), Some("Deployment"));
    workload.check_common(("1Gi", "500m"), ("2Gi", "1000m"));
    let config = workload.config();
    assert_eq!(config["storage"]["backend"].as_str(), Some("clickhouse"));
    assert_eq!(
        config["storage"]["clickhouse"]["username"].as_str(),
        Some(PASSWORD_USER.0),
        "the test server's user with a password"
    );
    let secret_variables: Vec<&str> = items(&workload.container()["env"])
        .iter()
        .filter(|v| !v["valueFrom"]["secretKeyRef"].is_badvalue())
        .map(|v| text(&v["name"], "name"))
        .collect();
    for from_secret in [
        "LUMINATE_CLICKHOUSE_ADDRESSES",
        "LUMINATE_CLICKHOUSE_PASSWORD",
    ] {
        assert!(
            secret_variables.contains(&from_secret),
            "{from_secret} from a Secret"
        );
    }
    assert!(
        items(&workload.container()["volumeMounts"])
            .iter()
            .all(|m| !workload.volume(text(&m["name"], "name"))["configMap"].is_badvalue()),
        "stateless: only configuration is mounted"
    );

    let clickhouse = shared();
    let secrets = Secrets::from([
        (("luminate-secrets", "jwt-secret"), JWT_SECRET.to_owned()),
        (
            ("luminate-secrets", "metrics-token"),
            METRICS_TOKEN.to_owned(),
        ),
        (("clickhouse-secrets", "addresses"), clickhouse.address()),
        (
            ("clickhouse-secrets", "password"),
            PASSWORD_USER.1.to_owned(),
        ),
    ]);
    let replicas = spec["replicas"].as_i64().unwrap();
    assert_eq!(replicas, 3);
    let pods: Vec<(tempfile::TempDir, Luminate, String)> = (0..replicas)
        .map(|_| {
            let scratch = tempfile::tempdir().unwrap();
            let (server, base) = workload.start_ready(scratch.path(), &secrets);
            (scratch, server, base)
        })
        .collect();
    let bearer = format!("Bearer {}", token(pods[0].1.launch(), "acme"));
    let now = common::now_ms();
    let body = json!({"metrics": [common::point("k8s_requests", now, 1.0, &[("pod", "0")])]});
    let (status, answer) = pods[0].1.post_raw(
        "/api/v1/write",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer),
        ],
        body.to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    // Stateless: every replica answers from ClickHouse.
    for (_, _, base) in &pods {
        let (status, _, body) = get_text(
            &format!("{base}/api/v1/metrics"),
            &[("authorization", &bearer)],
        );
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"metrics":["k8s_requests"]}"#)
        );
    }
}
