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

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Launch, Luminate, get_text};
use deploy_files::dockerfile::{DOCKERFILE, Image, env_of, image};
use deploy_files::yaml;

const SECRET: &str = "a-container-secret-of-thirty-two-bytes";

/// A launch of the image's entrypoint and command, with its environment plus `extra`, over `data`
/// (standing in for the volume) on `port`.
fn launch(image: &Image, data: &Path, port: u16, extra: &[(&str, &str)]) -> Launch {
    assert_eq!(image.entrypoint, ["luminate"]);
    let mut launch = Launch {
        args: Some(image.cmd.clone()),
        current_dir: Some(data.to_owned()),
        ..Launch::default()
    };
    for (key, value) in image.environment() {
        launch = launch.env(&key, &value);
    }
    launch = launch
        .env("LUMINATE_STORAGE_EMBEDDED_DATA_DIR", data.to_str().unwrap())
        .env("LUMINATE_SERVER_PORT", &port.to_string())
        // The image's OTLP/gRPC port (4317) may be taken here, as 8080 may.
        .env("LUMINATE_OTLP_GRPC_PORT", "0");
    for (key, value) in extra {
        launch = launch.env(key, value);
    }
    launch
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
        Some(i64::from(image.exposed_ports[0]))
    );
    // OTLP/gRPC listens on its default port unless the file sets another.
    assert!(config["otlp"]["grpc"]["port"].is_badvalue());
    assert_eq!(image.exposed_ports[1..], [4317], "OTLP/gRPC's default port");
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
    let server = launch(
        &image,
        data.path(),
        port,
        &[("LUMINATE_AUTH_JWT_SECRET", SECRET)],
    )
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
    let (status, output) = launch(&image, data.path(), free_port(), &[]).run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    for way_out in [
        "LUMINATE_AUTH_JWT_SECRET=",
        "LUMINATE_AUTH_ENABLED=false",
        "LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK=true",
    ] {
        assert!(output.contains(way_out), "{way_out} not named:\n{output}");
    }

    // Turning auth off alone is not enough on a network address: protected mode names the other half.
    let (status, output) = launch(
        &image,
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
    let server = launch(
        &image,
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
    let server = launch(&image, data.path(), port, &extra).start();
    let base = format!("http://127.0.0.2:{port}");
    wait_healthy(&server, &base);
    // Prometheus scrapes it over the compose network.
    assert_eq!(get_text(&format!("{base}/metrics"), &[]).0, 200);
}
