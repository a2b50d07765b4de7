#!/usr/bin/env bash
# Runs every Luminate test on a fresh machine: set-up, format and lint gates, then the whole workspace
# suite (unit, conformance, crash and end-to-end tests through the real binary). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_toolchain
ensure_apt_packages curl

log "format check"
cargo fmt --all -- --check

log "clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

log "tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --all-features --no-fail-fast --failure-output final
else
  cargo test --workspace --all-features --no-fail-fast
fi
