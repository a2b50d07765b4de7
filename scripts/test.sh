#!/usr/bin/env bash
# Runs every Luminate test on a fresh machine: set-up, format and lint gates, then the whole workspace
# suite (unit, conformance, crash and end-to-end tests through the real binary, on the embedded engine
# and on a real ClickHouse), and the web UI's own tests (node --test) and browser tests (Chromium). CI runs
# exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_toolchain
# clickhouse-server: the ClickHouse backend's tests start real servers (Debian's package, 18.16) on
# loopback ports. They never skip: without the binary they fail, so the install must succeed here.
# prometheus: `promtool check metrics` validates the self-metrics exposition (tests/metrics.rs), `promtool tsdb`
# builds and dumps a TSDB that tests/cli/import.rs imports, and
# promtool checks and unit-tests deploy/prometheus (tests/deploy.rs). prometheus-alertmanager (amtool)
# and prometheus-node-exporter: tests/monitoring_stack.rs runs scripts/monitoring-stack.sh, Prometheus and
# Alertmanager included. Never skipped.
# chromium: tests/ui.rs drives the web UI in real Chromium (playwright-core, an npm devDependency of ui/,
# without a browser download of its own). Never skipped.
ensure_apt_packages curl clickhouse-server prometheus prometheus-alertmanager prometheus-node-exporter chromium
[ -x /usr/bin/chromium ] || { echo "chromium is not installed at /usr/bin/chromium" >&2; exit 1; }
[ -x /usr/sbin/clickhouse-server ] || { echo "clickhouse-server is not installed at /usr/sbin/clickhouse-server" >&2; exit 1; }
# kubernetes-validate (PyPI): tests/kubernetes.rs validates deploy/kubernetes against the Kubernetes
# schemas it ships (offline). Installed into a virtual environment whose bin/ goes first on PATH.
# opentelemetry-*: tests/otlp.rs exports through the real Python SDK, over OTLP/HTTP and OTLP/gRPC.
# openapi-spec-validator and schemathesis: tests/openapi.rs validates the served OpenAPI document and
# runs schemathesis against the real server from it.
ensure_pip_packages kubernetes-validate opentelemetry-sdk opentelemetry-exporter-otlp-proto-http \
  opentelemetry-exporter-otlp-proto-grpc openapi-spec-validator schemathesis
# chdb (PyPI; ClickHouse 26.x in-process: a 181 MB wheel, 534 MB installed, with pandas and pyarrow
# ~40 s to install): the ClickHouse backend's suite runs a second time against it, through
# crates/luminate-clickhouse/tests/chdb_server.py (see the chDB step below). Never skipped: the import is
# checked here, and the adapter fails the tests without it.
ensure_pip_packages chdb
python3 -c 'import chdb' || { echo "chdb is not importable by python3 (PyPI chdb)" >&2; exit 1; }
for tool in promtool amtool prometheus-alertmanager prometheus-node-exporter kubernetes-validate; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (Debian packages prometheus, prometheus-alertmanager, prometheus-node-exporter; PyPI kubernetes-validate)" >&2; exit 1; }
done

# The binary embeds ui/dist at compile time: build the UI before cargo builds anything.
build_ui
# tests/otlp.rs exports through the real OpenTelemetry JavaScript SDK too (its fixture's package-lock.json).
install_npm_fixture crates/luminate/tests/fixtures/otlp-js
# tests/clients.rs runs the client libraries' suites: clients/python on python3 alone, clients/typescript
# compiled by its pinned TypeScript (devDependencies only; it builds itself in the test).
install_npm_fixture clients/typescript
log "UI unit tests (node --test)"
npm --prefix ui test --silent

log "format check"
cargo fmt --all -- --check

log "clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

log "a build without the ClickHouse backend (the default build has it) compiles and refuses it"
cargo check -p luminate --no-default-features --quiet
cargo test -p luminate-server --no-default-features --lib --quiet storage::

log "tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --all-features --no-fail-fast --failure-output final
else
  cargo test --workspace --all-features --no-fail-fast
fi

# The same backend suite on a modern engine: every ClickHouse server the tests start is chDB 26.x behind
# tests/chdb_server.py, so the backend takes its modern-server path (LowCardinality, skip indexes). The
# tests the adapter cannot stand in for (KILL QUERY, Distributed clusters) print why and return early;
# they ran on 18.16 just above. The workspace's features, so the build above is reused.
log "ClickHouse backend suite on chDB 26.x (LUMINATE_CLICKHOUSE_SERVER=chdb)"
if command -v cargo-nextest >/dev/null; then
  # The backend's own suite, and the HTTP API scenarios through the binary on the ClickHouse backend
  # (`clickhouse::…` of tests/api.rs and tests/lifecycle.rs).
  LUMINATE_CLICKHOUSE_SERVER=chdb cargo nextest run --workspace --all-features --no-fail-fast \
    --failure-output final \
    -E 'package(luminate-clickhouse) | (binary(api) | binary(lifecycle)) & test(/^clickhouse::/)'
else
  LUMINATE_CLICKHOUSE_SERVER=chdb cargo test -p luminate-clickhouse --all-features --no-fail-fast
  LUMINATE_CLICKHOUSE_SERVER=chdb cargo test -p luminate --all-features --no-fail-fast \
    --test api --test lifecycle clickhouse::
fi

# The fuzz targets (fuzz/, docs/fuzzing.md): a short run of each from its seeds, so that none rots and
# every decoder meets thousands of inputs in CI, failing on any finding. A smoke build (opt-level 1, no
# debug info; docs/fuzzing.md, "CI", has its time); FUZZ_SECONDS=N runs each target N seconds, not 5.
log "fuzz targets: ${FUZZ_SECONDS:-5} s each (scripts/fuzz.sh --smoke)"
scripts/fuzz.sh --smoke --time "${FUZZ_SECONDS:-5}"
