//! The built-in web UI through the real binary: `GET /` leads to it, its files carry ETags and cache
//! headers, app routes fall back to `index.html` only under `/ui/`, and Explore, driven in real Chromium
//! (ui/tests/e2e/explore.mjs with playwright-core), plots exactly what `POST /api/v1/query` answers; with
//! auth on, the UI asks for a token, sends it, and says 403 plainly (ui/tests/e2e/auth.mjs); the shipped
//! "Customer Performance Overview" over the demo data draws every panel as `POST /api/v1/query` answers
//! its resolved query and follows its variables (ui/tests/e2e/dashboards.mjs); a dashboard edited with
//! the panel form, its JSON and mouse drags, and Explore's "Save as panel", store exactly what was done
//! (ui/tests/e2e/editing.mjs); a 429 and a 504 read plainly (ui/tests/e2e/errors.mjs).
//!
//! These tests need the UI built before the binary (`npm --prefix ui ci && npm --prefix ui run build`),
//! node, and Debian's chromium: `./scripts/test.sh` provides all three. Without them they fail, saying
//! what is missing — they never skip.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Launch, Luminate, gunzip, now_ms, point};
use tenant_client::{Client, token, with_secret};

/// How long the browser scenario may take (Chromium's start included).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui")
}

/// A GET without following redirects: status, headers, body.
fn fetch(url: &str, headers: &[(&str, &str)]) -> (u16, ureq::http::HeaderMap, String) {
    let (status, headers, body) = fetch_bytes(url, headers);
    (status, headers, String::from_utf8(body).unwrap_or_default())
}

/// [`fetch`], the body as bytes.
fn fetch_bytes(url: &str, headers: &[(&str, &str)]) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.call().expect("HTTP exchange");
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    (response.status().as_u16(), headers, body)
}

fn header<'a>(headers: &'a ureq::http::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

/// The `/ui/assets/…` script `index.html` loads, or a failure saying how to build the UI.
fn script_of(index: &str) -> &str {
    const SCRIPT: &str = "src=\"/ui/assets/app-";
    let start = 5 + index.find(SCRIPT).unwrap_or_else(|| {
        panic!(
            "the binary was built without its UI (it serves the how-to page): run `npm --prefix ui ci && \
             npm --prefix ui run build`, then build again. Page: {index}"
        )
    });
    let end = start + index[start..].find('"').unwrap();
    &index[start..end]
}

#[test]
fn the_ui_is_served_with_cache_headers_and_its_own_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());

    let (status, headers, _) = fetch(&server.url("/"), &[]);
    assert_eq!((status, header(&headers, "location")), (307, "/ui/"));

    // An app route is index.html, revalidated every time through its ETag.
    let (status, headers, index) = fetch(&server.url("/ui/explore"), &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    let etag = header(&headers, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2, "etag {etag:?}");
    let (status, _, body) = fetch(&server.url("/ui/"), &[("If-None-Match", &etag)]);
    assert_eq!((status, body.as_str()), (304, ""));

    // Hashed files are immutable.
    let script = script_of(&index);
    let (status, headers, body) = fetch(&server.url(script), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert!(!body.is_empty());
    assert_eq!(header(&headers, "content-encoding"), "");
    assert_eq!(header(&headers, "vary"), "accept-encoding");

    // To a browser that takes gzip, the same script gzipped (a third of the bytes), with its own ETag.
    let (status, headers, gzipped) = fetch_bytes(
        &server.url(script),
        &[("Accept-Encoding", "gzip, deflate, br")],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(header(&headers, "vary"), "accept-encoding");
    assert!(
        gzipped.len() * 2 < body.len(),
        "{} of {}",
        gzipped.len(),
        body.len()
    );
    let unzipped = String::from_utf8(gunzip(&gzipped)).unwrap();
    assert_eq!(unzipped, body);
    let etag = header(&headers, "etag").to_owned();
    let (status, _, _) = fetch(
        &server.url(script),
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &etag)],
    );
    assert_eq!(status, 304);
    let (status, _, _) = fetch(&server.url(script), &[("If-None-Match", &etag)]);
    assert_eq!(status, 200, "the gzip's tag is not the plain body's");
    let (_, headers, plain) = fetch(&server.url(script), &[("Accept-Encoding", "gzip;q=0, *")]);
    assert_eq!(
        (header(&headers, "content-encoding"), plain.as_str()),
        ("", body.as_str())
    );

    // No fallback for a missing hashed file, nor anywhere outside the prefix.
    let (status, _, _) = fetch(&server.url("/ui/assets/app-GONE.js"), &[]);
    assert_eq!(status, 404);
    let (status, headers, body) = fetch(&server.url("/api/v1/no-such-route"), &[]);
    assert_eq!(status, 404);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert!(body.contains("NOT_FOUND"), "{body}");
}

#[test]
fn the_ui_needs_no_token_but_its_api_calls_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path())).start();
    let (status, _, _) = fetch(&server.url("/ui/status"), &[]);
    assert_eq!(status, 200);
    let (status, _, _) = fetch(&server.url("/api/v1/metrics"), &[]);
    assert_eq!(status, 401);
}

/// Three customers, a point a minute for the last 40 minutes (inside Explore's default hour).
fn latency_points() -> Vec<serde_json::Value> {
    let now = now_ms() / 60_000 * 60_000;
    (1..=3)
        .flat_map(|c| {
            (1..=40).map(move |m| {
                let customer = format!("cust_{c}");
                point(
                    "api_latency",
                    now - m * 60_000,
                    f64::from(c as u32 * 40) + (m * 7 % 50) as f64 + 0.25,
                    &[("customer_id", &customer), ("region", "eu-west-1")],
                )
            })
        })
        .collect()
}

#[test]
fn explore_in_chromium_plots_what_the_query_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).without_rate_limits().start();
    assert_eq!(server.write(&latency_points()).0, 200);

    let out = run_browser_script("explore.mjs", &[&server.url(""), "api_latency"], dir.path());
    assert!(out.contains("ok: 2 lines and 2 bars"), "{out}");
}

#[test]
fn with_auth_on_the_ui_asks_for_a_token_and_shows_refusals_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path()))
        .without_rate_limits()
        .start();
    let points: Vec<_> = (1..=20)
        .map(|m| {
            point(
                "api_latency",
                now_ms() - m * 60_000,
                m as f64,
                &[("customer_id", "cust_1")],
            )
        })
        .collect();
    let written = Client::of(&server).write(&token("acme", &["write"]), &points);
    assert_eq!(written.status, 200, "{:?}", written.body);
    let reader = token("acme", &["read"]);
    let out = run_browser_script("auth.mjs", &[&server.url(""), &reader], dir.path());
    assert!(out.contains("ok: asked for a token"), "{out}");
}

#[test]
fn a_dashboard_in_chromium_draws_every_panel_and_follows_its_variables() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).without_rate_limits().start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let loaded = Command::new("bash")
        .arg(root.join("examples/demo.sh"))
        .arg("load")
        .env("LUMINATE_URL", &server.base)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let file =
        std::fs::read_to_string(root.join("deploy/dashboards/customer_overview.json")).unwrap();
    let (status, body) =
        server.post_json("/api/v1/dashboards", &serde_json::from_str(&file).unwrap());
    assert_eq!(status, 201, "{body}");

    let import = root.join("deploy/dashboards/demo_api.json");
    let out = run_browser_script(
        "dashboards.mjs",
        &[
            &server.url(""),
            "customer_overview",
            import.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        out.contains("ok: 3 panels drew their answers; the customer variable refetched them; demo_api imported, exported, edited, and a stale save refused with 409"),
        "{out}"
    );
}

#[test]
fn dashboard_editing_in_chromium_saves_forms_drags_and_explore_panels() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path()).without_rate_limits().start();
    assert_eq!(server.write(&latency_points()).0, 200);
    let out = run_browser_script("editing.mjs", &[&server.url("")], dir.path());
    assert!(
        out.contains("ok: edited by form and JSON, added, moved and resized by drags, saved as panels from Explore"),
        "{out}"
    );
}

#[test]
fn a_429_and_a_504_read_plainly_in_chromium() {
    let (limited_dir, slow_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // One query a second: Explore's second query in a row is refused.
    let limited = Launch::new(limited_dir.path())
        .env("LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND", "1")
        .start();
    let few: Vec<_> = (1..=5)
        .map(|m| point("m", now_ms() - m * 60_000, m as f64, &[("series", "s1")]))
        .collect();
    assert_eq!(limited.write(&few).0, 200);
    // A 1 ms default timeout over 200 000 points in 1 000 series: a p99 per series never makes it.
    let slow = Launch::new(slow_dir.path())
        .env("LUMINATE_QUERY_LIMITS_DEFAULT_QUERY_TIMEOUT", "1ms")
        .start();
    let t0 = now_ms() - 3_600_000;
    for batch in 0..20 {
        let points: Vec<_> = (0..10_000)
            .map(|i| {
                let n = batch * 10_000 + i;
                let series = format!("s{}", n % 1_000);
                point("m", t0 + n, (n % 997) as f64, &[("series", &series)])
            })
            .collect();
        assert_eq!(slow.write(&points).0, 200);
    }
    let out = run_browser_script(
        "errors.mjs",
        &[&limited.url(""), &slow.url("")],
        slow_dir.path(),
    );
    assert!(out.contains("ok: 429 and 504 shown plainly"), "{out}");
}

/// Runs `ui/tests/e2e/<script>` with node (playwright-core driving `/usr/bin/chromium`), bounded by
/// [`BROWSER_TIMEOUT`]; its standard output, or a failure with everything it printed.
fn run_browser_script(script: &str, args: &[&str], scratch: &Path) -> String {
    assert!(
        ui_dir().join("node_modules/playwright-core").is_dir(),
        "ui/node_modules lacks playwright-core: run `npm --prefix ui ci` (./scripts/test.sh does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "no /usr/bin/chromium: install Debian's chromium (./scripts/test.sh does)"
    );
    // Into files, not pipes: a chatty failure must not block the child while it is polled.
    let (out_path, err_path) = (
        scratch.join(format!("{script}.out")),
        scratch.join(format!("{script}.err")),
    );
    let mut child = Command::new("node")
        .arg(ui_dir().join("tests/e2e").join(script))
        .args(args)
        .current_dir(ui_dir())
        .stdout(Stdio::from(File::create(&out_path).unwrap()))
        .stderr(Stdio::from(File::create(&err_path).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (install Node.js 20+): {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{script} took longer than {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        status.success(),
        "{script} failed ({status}):\n{out}\n{err}"
    );
    out
}
