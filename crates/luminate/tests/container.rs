//! The container image of `deploy/docker/Dockerfile`, without a Docker engine: its final stage is read
//! (ENTRYPOINT, CMD, ENV, EXPOSE, USER, WORKDIR, VOLUME and the files it copies in), and the real
//! binary is run as a process with exactly that command and environment. Three things stand in for
//! what Docker would provide: the files the stage copies are read where they are in the repository,
//! a temporary directory stands in for the volume (through `LUMINATE_STORAGE_EMBEDDED_DATA_DIR`), and
//! the port is a free one (through `LUMINATE_SERVER_PORT`; the image's 8080 may be taken here).
//!
//! The monitoring stack's compose file runs the same image with an environment of its own: it starts too.
//!
//! The seed's `docker run -p 8080:8080 -v luminate-data:/var/lib/luminate -e LUMINATE_AUTH_JWT_SECRET=…`
//! must give a server on every interface with authentication on; without a secret the container must
//! refuse to start, naming both ways out.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod deploy_files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Launch, Luminate, get_text};
use deploy_files::{path, read, yaml};

const DOCKERFILE: &str = "deploy/docker/Dockerfile";
const SECRET: &str = "a-container-secret-of-thirty-two-bytes";

/// One stage of a Dockerfile: its instructions in order, `(INSTRUCTION, arguments)`, continuation
/// lines joined and comments left out.
fn stages(text: &str) -> Vec<Vec<(String, String)>> {
    let mut logical: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    for line in logical {
        let (instruction, arguments) = line.split_once(' ').unwrap_or((&line, ""));
        let instruction = instruction.to_ascii_uppercase();
        if instruction == "FROM" {
            out.push(Vec::new());
        }
        out.last_mut()
            .expect("a Dockerfile starts with FROM")
            .push((instruction, arguments.trim().to_owned()));
    }
    out
}

/// The arguments of the stage's last `instruction` (Docker keeps the last ENTRYPOINT, CMD, ...).
fn last<'a>(stage: &'a [(String, String)], instruction: &str) -> &'a str {
    stage
        .iter()
        .rev()
        .find(|(i, _)| i == instruction)
        .map(|(_, a)| a.as_str())
        .unwrap_or_else(|| panic!("the final stage has no {instruction}"))
}

/// An exec-form (JSON array) argument: the shell form would run under `/bin/sh -c`, which the
/// slim image has but which would also swallow signals.
fn exec_form(arguments: &str, instruction: &str) -> Vec<String> {
    serde_json::from_str(arguments)
        .unwrap_or_else(|e| panic!("{instruction} is not in exec form ({e}): {arguments}"))
}

/// `ENV A=1 B="2 3"` → the pairs, over every ENV of the stage (later wins).
fn env_of(stage: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, arguments) in stage.iter().filter(|(i, _)| i == "ENV") {
        let mut rest = arguments.as_str();
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {arguments}: only the KEY=VALUE form is read here"));
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let end = quoted.find('"').expect("closing quote");
                    (&quoted[..end], &quoted[end + 1..])
                }
                None => after.split_once(' ').unwrap_or((after, "")),
            };
            out.insert(key.trim().to_owned(), value.to_owned());
            rest = after.trim_start();
        }
    }
    out
}

/// What the image is, as read from its Dockerfile.
struct Image {
    build: Vec<(String, String)>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: BTreeMap<String, String>,
    exposed_port: u16,
    user: String,
    workdir: String,
    volume: String,
    /// Container path → repository file, for each `COPY` from the build context.
    copied: BTreeMap<String, PathBuf>,
}

fn image() -> Image {
    let stages = stages(&read(DOCKERFILE));
    assert_eq!(stages.len(), 2, "a build stage and the final stage");
    let stage = stages.last().unwrap();
    let volumes = exec_form(last(stage, "VOLUME"), "VOLUME");
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let copied = stage
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.starts_with("--from"))
        .map(|(_, a)| {
            let (source, target) = a.split_once(' ').expect("COPY SOURCE TARGET");
            let source = path(source);
            assert!(source.is_file(), "COPY {a}: no {}", source.display());
            (target.trim().to_owned(), source)
        })
        .collect();
    Image {
        build: stages[0].clone(),
        entrypoint: exec_form(last(stage, "ENTRYPOINT"), "ENTRYPOINT"),
        cmd: exec_form(last(stage, "CMD"), "CMD"),
        env: env_of(stage),
        exposed_port: last(stage, "EXPOSE").parse().unwrap(),
        user: last(stage, "USER").to_owned(),
        workdir: last(stage, "WORKDIR").to_owned(),
        volume: volumes[0].clone(),
        copied,
    }
}

impl Image {
    /// The image's environment, with each path of a copied file replaced by the file in the repository.
    fn environment(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(key, value)| {
                let value = match self.copied.get(value) {
                    Some(file) => file.to_str().unwrap().to_owned(),
                    None => value.clone(),
                };
                (key.clone(), value)
            })
            .collect()
    }

    /// A launch of the image's entrypoint and command, with its environment plus `extra`, over `data`
    /// (standing in for the volume) on `port`.
    fn launch(&self, data: &Path, port: u16, extra: &[(&str, &str)]) -> Launch {
        assert_eq!(self.entrypoint, ["luminate"]);
        let mut launch = Launch {
            args: Some(self.cmd.clone()),
            current_dir: Some(data.to_owned()),
            ..Launch::default()
        };
        for (key, value) in self.environment() {
            launch = launch.env(&key, &value);
        }
        launch = launch
            .env("LUMINATE_STORAGE_EMBEDDED_DATA_DIR", data.to_str().unwrap())
            .env("LUMINATE_SERVER_PORT", &port.to_string());
        for (key, value) in extra {
            launch = launch.env(key, value);
        }
        launch
    }

    /// The configuration file the image points `LUMINATE_CONFIG` at.
    fn config_file(&self) -> yaml_rust2::Yaml {
        let file = &self.copied[&self.env["LUMINATE_CONFIG"]];
        let relative = file.strip_prefix(deploy_files::repo()).unwrap();
        yaml(relative.to_str().unwrap())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a socket listens on `0.0.0.0:port`, from the kernel's table of IPv4 TCP sockets.
fn listens_on_every_ipv4_interface(port: u16) -> bool {
    let wanted = format!("00000000:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address and st (0A: LISTEN)
            fields.get(1) == Some(&wanted.as_str()) && fields.get(3) == Some(&"0A")
        })
}

/// `luminate token` as `docker exec` would run it in the container: the image's environment and the
/// secret.
fn token(image: &Image, tenant: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luminate"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(image.environment())
        .env("LUMINATE_AUTH_JWT_SECRET", SECRET)
        .args(["token", "--tenant", tenant, "--scopes", "read,write"]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Waits for a started server's health to answer `200` at `base`.
fn wait_healthy(server: &Luminate, base: &str) {
    let healthy = common::eventually(Duration::from_secs(10), || {
        get_text(&format!("{base}/api/v1/health"), &[]).0 == 200
    });
    assert!(healthy, "{}", server.output());
}

#[test]
fn the_final_stage_runs_unprivileged_over_its_volume_with_the_shipped_configuration() {
    let image = image();
    assert_eq!(image.cmd, ["serve"]);
    assert_eq!(image.user, "10001:10001", "numeric, for runAsNonRoot");
    assert_eq!(image.workdir, image.volume);
    let config = image.config_file();
    assert_eq!(
        config["storage"]["embedded"]["data_dir"].as_str(),
        Some(image.volume.as_str()),
        "the data directory is the volume"
    );
    assert_eq!(
        config["server"]["port"].as_i64(),
        Some(i64::from(image.exposed_port))
    );
    assert_eq!(config["server"]["host"].as_str(), Some("0.0.0.0"));
    assert_eq!(config["auth"]["enabled"].as_bool(), Some(true));
    assert!(
        config["auth"]["jwt_secret"].is_badvalue(),
        "no secret baked into the image"
    );
    // The shipped binary has neither debug line tables nor symbols.
    let build_env = env_of(&image.build);
    assert_eq!(
        build_env
            .get("CARGO_PROFILE_RELEASE_DEBUG")
            .map(String::as_str),
        Some("false")
    );
    assert_eq!(
        build_env
            .get("CARGO_PROFILE_RELEASE_STRIP")
            .map(String::as_str),
        Some("symbols")
    );
}

#[test]
fn with_a_secret_it_listens_on_every_interface_with_authentication_on() {
    let image = image();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = image
        .launch(data.path(), port, &[("LUMINATE_AUTH_JWT_SECRET", SECRET)])
        .start();
    assert_eq!(server.base, format!("http://0.0.0.0:{port}"));
    assert!(listens_on_every_ipv4_interface(port), "{}", server.output());
    // 127.0.0.2 is not the address a loopback-only server binds (127.0.0.1): only a socket on every
    // interface answers there.
    let base = format!("http://127.0.0.2:{port}");
    wait_healthy(&server, &base);
    let metrics = format!("{base}/api/v1/metrics");
    assert_eq!(get_text(&metrics, &[]).0, 401, "no token");
    let bearer = format!("Bearer {}", token(&image, "acme"));
    let (status, _, body) = get_text(&metrics, &[("authorization", &bearer)]);
    assert_eq!((status, body.as_str()), (200, r#"{"metrics":[]}"#));
    assert!(
        server
            .output()
            .contains("authenticated: every route but health needs a bearer JWT"),
        "{}",
        server.output()
    );
    assert!(
        std::fs::read_dir(data.path().join("wal")).is_ok(),
        "the engine keeps its data in the volume"
    );
}

#[test]
fn without_a_secret_it_refuses_to_start_naming_both_ways_out() {
    let image = image();
    let data = tempfile::tempdir().unwrap();
    let (status, output) = image.launch(data.path(), free_port(), &[]).run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    for way_out in [
        "LUMINATE_AUTH_JWT_SECRET=",
        "LUMINATE_AUTH_ENABLED=false",
        "LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK=true",
    ] {
        assert!(output.contains(way_out), "{way_out} not named:\n{output}");
    }

    // Turning auth off alone is not enough on a network address: protected mode names the other half.
    let (status, output) = image
        .launch(
            data.path(),
            free_port(),
            &[("LUMINATE_AUTH_ENABLED", "false")],
        )
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("protected mode")
            && output.contains("LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK=true"),
        "{output}"
    );

    // Both halves of the second way out: open access, as asked for.
    let port = free_port();
    let server = image
        .launch(
            data.path(),
            port,
            &[
                ("LUMINATE_AUTH_ENABLED", "false"),
                ("LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK", "true"),
            ],
        )
        .start();
    let base = format!("http://127.0.0.2:{port}");
    wait_healthy(&server, &base);
    assert_eq!(get_text(&format!("{base}/api/v1/metrics"), &[]).0, 200);
}

#[test]
fn the_compose_files_luminate_starts_on_the_image_with_its_environment() {
    let image = image();
    let compose = yaml("deploy/monitoring/docker-compose.yml");
    let service = &compose["services"]["luminate"];
    assert_eq!(
        service["build"]["dockerfile"].as_str(),
        Some(DOCKERFILE),
        "the compose file builds this image"
    );
    let environment: Vec<(String, String)> = service["environment"]
        .as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = match v {
                yaml_rust2::Yaml::String(s) => s.clone(),
                other => panic!("quote compose environment values: {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect();
    let extra: Vec<(&str, &str)> = environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = image.launch(data.path(), port, &extra).start();
    let base = format!("http://127.0.0.2:{port}");
    wait_healthy(&server, &base);
    // Prometheus scrapes it over the compose network.
    assert_eq!(get_text(&format!("{base}/metrics"), &[]).0, 200);
}
