//! The real binary among `LUMINATE_*` variables that are not meant for it: the service links Kubernetes
//! injects for a Service named `luminate`, and a wrapper script's own settings, do not stop start-up; a
//! misspelt `LUMINATE__SECTION__KEY` does, naming it; a misspelt seed name is ignored with a warning
//! naming the variable it probably meant; and `LUMINATE_CONFIG` names the file like `--config`.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use common::Launch;

#[test]
fn starts_healthy_among_kubernetes_service_links_and_wrapper_variables() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .with_service_links()
        .env("LUMINATE_BIN", "/usr/local/bin/luminate")
        .env("LUMINATE_DATA", "/srv/luminate")
        .start();
    let (status, body) = server.get("/api/v1/health");
    assert_eq!((status, body["status"].as_str()), (200, Some("healthy")));
    let output = server.output();
    // The wrapper's variables are listed once; the service links are not mentioned at all.
    assert!(
        output.contains(
            "ignoring environment variables that are not configuration keys: LUMINATE_BIN, LUMINATE_DATA"
        ),
        "{output}"
    );
    assert!(!output.contains("LUMINATE_PORT"), "{output}");
    assert!(!output.contains("LUMINATE_SERVICE"), "{output}");
}

#[test]
fn an_unknown_general_form_variable_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (status, output) = Launch::new(dir.path())
        .with_service_links()
        .env("LUMINATE__SERVER__PROTT", "1")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains(
            "unknown configuration key in environment variable LUMINATE__SERVER__PROTT (did you mean LUMINATE__SERVER__PORT?)"
        ),
        "{output}"
    );
}

#[test]
fn a_misspelt_seed_name_starts_and_warns_naming_the_variable_it_meant() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_SERVER_PROT", "1")
        .start();
    assert_eq!(server.get("/api/v1/health").0, 200);
    let output = server.output();
    let warning = output
        .lines()
        .find(|line| line.contains("LUMINATE_SERVER_PROT"))
        .unwrap_or_else(|| panic!("no line names LUMINATE_SERVER_PROT:\n{output}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("did you mean LUMINATE_SERVER_PORT?"),
        "{warning}"
    );
}

#[test]
fn luminate_config_names_the_file_and_the_flag_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let authenticated = dir.path().join("authenticated.yaml");
    std::fs::write(
        &authenticated,
        "auth:\n  enabled: true\n  jwt_secret: from-the-file\n",
    )
    .unwrap();
    let open = dir.path().join("open.yaml");
    std::fs::write(&open, "auth:\n  enabled: false\n").unwrap();

    let server = Launch::new(&dir.path().join("data"))
        .env("LUMINATE_CONFIG", authenticated.to_str().unwrap())
        .start();
    assert_eq!(
        server.get("/api/v1/metrics").0,
        401,
        "the file enabled auth"
    );
    server.terminate();

    let server = Launch::new(&dir.path().join("data"))
        .env("LUMINATE_CONFIG", authenticated.to_str().unwrap())
        .config(&open)
        .start();
    assert_eq!(server.get("/api/v1/metrics").0, 200, "--config wins");
}
