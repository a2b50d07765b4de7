#!/usr/bin/env bash
# Builds and runs the Luminate server on its embedded engine (data in ./data, http://127.0.0.1:8080),
# loads a small demo dataset and the dashboards of deploy/dashboards/ once it is healthy, and stays in the foreground until Ctrl-C.
# Extra arguments go to `luminate serve` (e.g. --listen 127.0.0.1:9000, --config luminate.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_toolchain
ensure_apt_packages curl

build_ui
log "building luminate (release)"
cargo build --release --quiet -p luminate
bin="$CARGO_TARGET_DIR/release/luminate"

listen="127.0.0.1:8080"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--listen" ] && listen="${args[$((i + 1))]}"
done

"$bin" serve --data-dir "${LUMINATE_DATA_DIR:-./data}" "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM

for _ in $(seq 1 100); do
  curl -fsS "http://$listen/api/v1/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { wait $server; exit $?; }
  sleep 0.1
done

# Demo data goes into an empty store only: points are never deduplicated, so loading twice would double them.
if curl -fsS "http://$listen/api/v1/metrics" | grep -q '"metrics":\[\]'; then
  log "loading demo data (examples/demo.sh load)"
  LUMINATE_URL="http://$listen" bash examples/demo.sh load
fi
# The shipped dashboards (deploy/dashboards/), created unless they exist: an edited one is never overwritten.
for file in deploy/dashboards/*.json; do
  status=$(curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    --data-binary @"$file" "http://$listen/api/v1/dashboards")
  case "$status" in
    201) log "loaded dashboard $file" ;;
    409) ;;
    *) log "dashboard $file was not loaded: HTTP $status" ;;
  esac
done
log "Luminate is running: open http://$listen/ui/ in a browser — or try: LUMINATE_URL=http://$listen bash examples/demo.sh tour"
wait $server
