# Sourced by bench/peers.sh and bench/backends.sh: starts Debian's clickhouse-server as a child process on
# loopback with a minimal configuration (loopback only, every path under the given directory).
#
#   start_clickhouse DIR HTTP_PORT TCP_PORT   starts it in the background, log in DIR.log; sets CH_PID

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
