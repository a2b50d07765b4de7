# Sourced by bench/peers.sh and bench/backends.sh (after scripts/lib/common.sh): what both do alike.
#
#   parse_bench_options "$@"                  the shared options: sets POINTS CUSTOMERS COUNTER_POINTS
#                                             REPEAT SEED KEEP LUMINATE (--help prints the caller's
#                                             leading comment block)
#   ensure_luminate                           builds the release binary unless --luminate named one
#   stop_pid PID                              SIGTERM, up to 30 s, then SIGKILL; reaps it
#   free_port                                 a free loopback TCP port
#   start_clickhouse DIR HTTP_PORT TCP_PORT   Debian's clickhouse-server as a child process on loopback with
#                                             a minimal configuration under DIR, log in DIR.log; sets CH_PID

parse_bench_options() {
  POINTS=10000000 CUSTOMERS=100000 COUNTER_POINTS=1440000 REPEAT=5 SEED=42 KEEP=0 LUMINATE=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --points) POINTS=$2; shift 2 ;;
      --customers) CUSTOMERS=$2; shift 2 ;;
      --counter-points) COUNTER_POINTS=$2; shift 2 ;;
      --repeat) REPEAT=$2; shift 2 ;;
      --seed) SEED=$2; shift 2 ;;
      --luminate) LUMINATE=$2; shift 2 ;;
      --keep) KEEP=1; shift ;;
      -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 0 ;;
      *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
  done
  # Small runs have far fewer points than the default counter dataset: keep the counter proportional
  # (both scripts, so that their reduced runs are the same dataset).
  if [ "$POINTS" -lt 10000000 ] && [ "$COUNTER_POINTS" = 1440000 ]; then
    COUNTER_POINTS=$(( POINTS * 144 / 1000 ))
  fi
}

ensure_luminate() {
  if [ -z "$LUMINATE" ]; then
    log "building luminate (release)"
    cargo build --release -q -p luminate
    LUMINATE="$CARGO_TARGET_DIR/release/luminate"
  fi
}

stop_pid() {
  [ -n "$1" ] || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_clickhouse() {
  local dir=$1 http_port=$2 tcp_port=$3
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <mark_cache_size>536870912</mark_cache_size>
    <max_concurrent_queries>16</max_concurrent_queries>
    <timezone>UTC</timezone>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
    <quotas><default></default></quotas>
</yandex>
XML
  clickhouse-server --config-file="$dir/config.xml" > "$dir.log" 2>&1 &
  CH_PID=$!
}
