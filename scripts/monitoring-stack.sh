#!/usr/bin/env bash
# Luminate's monitoring stack without Docker: Luminate (embedded backend), Prometheus with Luminate's
# rules, Alertmanager and node-exporter, from Debian's packages, each a process of this script's own on a
# loopback port, with its own configuration and data under a state directory. System services the
# packages may have started (on 9090, 9093, 9100) are neither used nor touched.
#
#   scripts/monitoring-stack.sh start    # installs what is missing, starts everything, prints the URLs
#   scripts/monitoring-stack.sh status   # each process: running or not (exit 3 when one is not)
#   scripts/monitoring-stack.sh stop     # stops the processes it started (their pids are in the state dir)
#
# Prometheus runs deploy/monitoring/prometheus.yml with the lines marked `stack:` rewritten for loopback
# (intervals, targets, ports, the rule file's absolute path); Alertmanager runs
# deploy/monitoring/alertmanager.yml as it is. Settings, all optional:
#
#   MONITORING_STACK_DIR                 state: pids, logs, generated config, data (~/.cache/luminate/monitoring-stack)
#   MONITORING_STACK_PROMETHEUS_PORT     19090
#   MONITORING_STACK_ALERTMANAGER_PORT   19093
#   MONITORING_STACK_NODE_EXPORTER_PORT  19100
#   MONITORING_STACK_LUMINATE_PORT       18080 (the Luminate this script starts)
#   MONITORING_STACK_SCRAPE_INTERVAL     15s
#   MONITORING_STACK_EVALUATION_INTERVAL 15s
#   MONITORING_STACK_LUMINATE_BIN        the luminate binary to start (default: cargo build --release)
#   MONITORING_STACK_LUMINATE            HOST:PORT of a Luminate already running: scrape it, start none
#   MONITORING_STACK_EXTRA_TARGETS       more Luminate HOST:PORTs to scrape as job "luminate", comma-separated
#   MONITORING_STACK_WATCH_PID           stop the stack when this process exits (for tests)
#   MONITORING_STACK_METRICS_TOKEN       the token Prometheus sends to scrape Luminate (see below)
#
# The Luminate it starts inherits the environment, so LUMINATE_* variables and LUMINATE_CONFIG configure
# it (docs/configuration.md); its data directory is the state dir's luminate-data. (The settings above are
# not LUMINATE_*, so that none can be mistaken for a configuration key.) Its OTLP/gRPC listener takes a
# port the system chooses unless LUMINATE_OTLP_GRPC_PORT is set: the stack is for watching Luminate, and
# a fixed 4317 would collide with a Collector or SDK already running on this machine.
#
# Prometheus scrapes with a bearer token, which Luminate requires with auth on (metrics.bearer_token): the
# first of MONITORING_STACK_METRICS_TOKEN, LUMINATE__METRICS__BEARER_TOKEN, LUMINATE_METRICS_BEARER_TOKEN,
# or else a random one kept in the state dir, which the Luminate it starts is given. (A token set only in
# LUMINATE_CONFIG's file is not seen here: give it as MONITORING_STACK_METRICS_TOKEN too.) A Luminate
# without a metrics token ignores the header.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

repo="$(pwd)"
state="${MONITORING_STACK_DIR:-$HOME/.cache/luminate/monitoring-stack}"
prometheus_port="${MONITORING_STACK_PROMETHEUS_PORT:-19090}"
alertmanager_port="${MONITORING_STACK_ALERTMANAGER_PORT:-19093}"
node_exporter_port="${MONITORING_STACK_NODE_EXPORTER_PORT:-19100}"
luminate_port="${MONITORING_STACK_LUMINATE_PORT:-18080}"
scrape_interval="${MONITORING_STACK_SCRAPE_INTERVAL:-15s}"
evaluation_interval="${MONITORING_STACK_EVALUATION_INTERVAL:-15s}"

# Components in start order; stop goes the other way.
components=(luminate node-exporter alertmanager prometheus)

die() {
  echo "monitoring-stack: $*" >&2
  exit 1
}

pid_file() { echo "$state/$1.pid"; }

# The start time of a process (clock ticks since boot; /proc/PID/stat field 22, counted after the command
# name, which may hold spaces), which tells a process from a later one that reuses its pid.
start_time() {
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# Whether a process runs: it exists and is not a zombie (an exited child of the start-up script waits as a
# zombie until init reaps it, and `kill -0` still succeeds on it).
alive() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The pid of a component this script started, if that very process still runs. The pid file holds the
# pid and its start time, so a pid file left by a crash is never taken for an unrelated process.
running_pid() {
  local file pid started
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 0
  read -r pid started <"$file" || true
  if [ -n "$pid" ] && [ -n "$started" ] && [ "$(start_time "$pid")" = "$started" ] && alive "$pid"; then
    echo "$pid"
  fi
}

url_of() {
  case "$1" in
    luminate) echo "http://${MONITORING_STACK_LUMINATE:-127.0.0.1:$luminate_port}" ;;
    node-exporter) echo "http://127.0.0.1:$node_exporter_port" ;;
    alertmanager) echo "http://127.0.0.1:$alertmanager_port" ;;
    prometheus) echo "http://127.0.0.1:$prometheus_port" ;;
  esac
}

# Runs a component in the background, detached from the caller's terminal, output to its log.
launch() {
  local name="$1"
  shift
  log "starting $name: $*"
  setsid "$@" >>"$state/$name.log" 2>&1 </dev/null &
  echo "$! $(start_time $!)" >"$(pid_file "$name")"
}

# Waits until `url` answers (any HTTP status) or the component exits; 60 s at most.
wait_ready() {
  local name="$1" url="$2" pid deadline=$((SECONDS + 60))
  read -r pid _ <"$(pid_file "$name")"
  while :; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" != 000 ]; then
      return 0
    fi
    if ! alive "$pid"; then
      tail -n 30 "$state/$name.log" >&2 || true
      die "$name exited during start-up (log: $state/$name.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$state/$name.log" >&2 || true
      die "$name did not answer at $url within 60 s (log: $state/$name.log)"
    fi
    sleep 0.2
  done
}

luminate_binary() {
  if [ -n "${MONITORING_STACK_LUMINATE_BIN:-}" ]; then
    [ -x "$MONITORING_STACK_LUMINATE_BIN" ] || die "MONITORING_STACK_LUMINATE_BIN=$MONITORING_STACK_LUMINATE_BIN is not an executable"
    echo "$MONITORING_STACK_LUMINATE_BIN"
    return
  fi
  ensure_toolchain
  log "building luminate (release)"
  cargo build --release --quiet -p luminate >&2
  echo "$CARGO_TARGET_DIR/release/luminate"
}

# The scrape token (see the top of this script) in the state dir's luminate-metrics-token, which the
# Prometheus configuration names; exported to the Luminate this script starts when no LUMINATE_ variable
# sets one.
write_metrics_token() {
  local file="$state/luminate-metrics-token"
  local token="${MONITORING_STACK_METRICS_TOKEN:-${LUMINATE__METRICS__BEARER_TOKEN:-${LUMINATE_METRICS_BEARER_TOKEN:-}}}"
  if [ -z "$token" ] && [ -s "$file" ]; then
    token="$(cat "$file")"
  fi
  if [ -z "$token" ]; then
    token="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  fi
  (umask 077 && printf '%s' "$token" >"$file")
  if [ -z "${LUMINATE__METRICS__BEARER_TOKEN:-}${LUMINATE_METRICS_BEARER_TOKEN:-}" ]; then
    export LUMINATE__METRICS__BEARER_TOKEN="$token"
  fi
}

# deploy/monitoring/prometheus.yml with the `stack:` lines rewritten for loopback.
write_prometheus_config() {
  local targets="" target out="$state/prometheus.yml"
  local luminate_target="${MONITORING_STACK_LUMINATE:-127.0.0.1:$luminate_port}"
  local extra="${MONITORING_STACK_EXTRA_TARGETS:-}"
  for target in "$luminate_target" ${extra//,/ }; do
    targets="${targets:+$targets, }\"$target\""
  done
  sed -E \
    -e "/# stack: scrape interval\$/ s|: [^ ]+ #|: $scrape_interval #|" \
    -e "/# stack: evaluation interval\$/ s|: [^ ]+ #|: $evaluation_interval #|" \
    -e "/# stack: rules\$/ s|- [^ ]+ #|- $repo/deploy/prometheus/luminate-rules.yml #|" \
    -e "/# stack: luminate targets\$/ s|\[.*\]|[$targets]|" \
    -e "/# stack: node-exporter\$/ s|\[.*\]|[\"127.0.0.1:$node_exporter_port\"]|" \
    -e "/# stack: alertmanager\$/ s|\[.*\]|[\"127.0.0.1:$alertmanager_port\"]|" \
    -e "/# stack: prometheus\$/ s|\[.*\]|[\"127.0.0.1:$prometheus_port\"]|" \
    -e "/# stack: metrics token\$/ s|# (authorization: \{ credentials_file: )[^ ]+ \}|\1$state/luminate-metrics-token }|" \
    deploy/monitoring/prometheus.yml >"$out"
  # Every marked line must have been rewritten: a reformatted prometheus.yml would otherwise send the
  # stack to the compose services' names.
  if grep -q -E '"(luminate:8080|node-exporter:9100|alertmanager:9093|localhost:9090)"|- \.\./prometheus/|/etc/prometheus/' "$out"; then
    die "could not adapt deploy/monitoring/prometheus.yml (its 'stack:' lines changed?); see $out"
  fi
  promtool check config "$out" >"$state/promtool-check-config.log" 2>&1 ||
    die "promtool rejects the generated $out: $(cat "$state/promtool-check-config.log")"
}

# Stops the stack when the watched process exits (a test killed before its clean-up).
watch_parent() {
  local watched="$1"
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    exec "$2" stop
  ' monitoring-stack-watch "$watched" "$repo/scripts/monitoring-stack.sh" >>"$state/watch.log" 2>&1 </dev/null &
  echo "$! $(start_time $!)" >"$(pid_file watch)"
}

start() {
  local name pid
  for name in "${components[@]}"; do
    pid="$(running_pid "$name")"
    [ -z "$pid" ] || die "$name is already running (pid $pid); run '$0 stop' first"
  done
  ensure_apt_packages curl prometheus prometheus-alertmanager prometheus-node-exporter
  mkdir -p "$state"
  # A start that fails from here on stops what it had started.
  trap 'rc=$?; [ $rc -eq 0 ] || stop >/dev/null 2>&1 || true' EXIT

  write_metrics_token
  write_prometheus_config

  if [ -z "${MONITORING_STACK_LUMINATE:-}" ]; then
    local binary
    binary="$(luminate_binary)"
    mkdir -p "$state/luminate-data"
    LUMINATE_OTLP_GRPC_PORT="${LUMINATE_OTLP_GRPC_PORT:-0}" \
      launch luminate "$binary" serve --data-dir "$state/luminate-data" --listen "127.0.0.1:$luminate_port"
    wait_ready luminate "http://127.0.0.1:$luminate_port/api/v1/health"
  fi

  launch node-exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$node_exporter_port"
  wait_ready node-exporter "http://127.0.0.1:$node_exporter_port/metrics"

  # An empty cluster address turns off Alertmanager's gossip, which would otherwise bind *:9094.
  launch alertmanager prometheus-alertmanager \
    --config.file="$repo/deploy/monitoring/alertmanager.yml" \
    --storage.path="$state/alertmanager-data" \
    --web.listen-address="127.0.0.1:$alertmanager_port" \
    --cluster.listen-address=
  wait_ready alertmanager "http://127.0.0.1:$alertmanager_port/-/ready"

  launch prometheus prometheus \
    --config.file="$state/prometheus.yml" \
    --storage.tsdb.path="$state/prometheus-data" \
    --web.listen-address="127.0.0.1:$prometheus_port" \
    --web.enable-lifecycle
  wait_ready prometheus "http://127.0.0.1:$prometheus_port/-/ready"

  trap - EXIT
  if [ -n "${MONITORING_STACK_WATCH_PID:-}" ]; then
    watch_parent "$MONITORING_STACK_WATCH_PID"
  fi
  for name in "${components[@]}"; do
    printf '%-14s %s\n' "$name" "$(url_of "$name")"
  done
  echo "state          $state"
}

stop() {
  local name pid i
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    name="${components[$i]}"
    pid="$(running_pid "$name")"
    if [ -n "$pid" ]; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$name")"
  done
  pid="$(running_pid watch)"
  # Not when the watcher itself is the one stopping the stack (it runs this script by exec).
  if [ -n "$pid" ] && [ "$pid" != "$$" ]; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$(pid_file watch)"
}

status() {
  local name pid all=0
  for name in "${components[@]}"; do
    if [ "$name" = luminate ] && [ -n "${MONITORING_STACK_LUMINATE:-}" ]; then
      printf '%-14s external      %s\n' "$name" "$(url_of "$name")"
      continue
    fi
    pid="$(running_pid "$name")"
    if [ -n "$pid" ]; then
      printf '%-14s running %-5s %s\n' "$name" "$pid" "$(url_of "$name")"
    else
      printf '%-14s stopped\n' "$name"
      all=3
    fi
  done
  return $all
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status (settings: see the top of this script)" >&2
    exit 2
    ;;
esac
