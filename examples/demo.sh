#!/usr/bin/env bash
# The README's five-minute tour as a script.
#   demo.sh load   writes the design document's example batch plus an hour of demo data
#   demo.sh tour   runs one query of each type and the discovery routes, printing each answer
# LUMINATE_URL defaults to http://127.0.0.1:8080.
set -euo pipefail
url="${LUMINATE_URL:-http://127.0.0.1:8080}"
now=$(( $(date +%s) * 1000 ))

post() { # path body
  curl -sS -X POST "$url$1" -H 'Content-Type: application/json' -d "$2"
  echo
}

load() {
  # The example batch of the design document, at the current time.
  post /api/v1/write '{"metrics": [
    {"name": "api_latency", "timestamp": '"$now"', "value": 145.5,
     "dimensions": {"customer_id": "cust_123", "endpoint": "/api/users"}},
    {"name": "cpu_usage", "timestamp": '"$now"', "value": 75.2,
     "dimensions": {"customer_id": "cust_123", "host": "web-01"}}
  ]}'
  # One hour of latency samples and a request counter for three customers, one point a minute.
  local points="" sep=""
  for c in 1 2 3; do
    for m in $(seq 1 60); do
      local t=$(( now - (60 - m) * 60000 ))
      local latency=$(( 40 * c + (m * 7) % 50 ))
      local requests=$(( c * m * 30 ))
      points+="$sep"'{"name":"api_latency","timestamp":'$t',"value":'$latency',"dimensions":{"customer_id":"cust_'$c'","endpoint":"/api/orders","region":"eu-west-1"}}'
      points+=',{"name":"requests_total","timestamp":'$t',"value":'$requests',"dimensions":{"customer_id":"cust_'$c'","region":"eu-west-1"}}'
      sep=","
    done
  done
  post /api/v1/write '{"metrics": ['"$points"']}'
}

tour() {
  echo "# raw points of one customer (range)"
  post /api/v1/query '{"queryType":"range","metricName":"api_latency","timeRange":{"relative":"10m"},"filters":{"customer_id":"cust_2"},"limit":5}'
  echo "# p95 latency per customer, top 10 (aggregate)"
  post /api/v1/query '{"queryType":"aggregate","metricName":"api_latency","timeRange":{"relative":"1h"},"aggregation":"p95","groupBy":["customer_id"],"limit":10}'
  echo "# requests/s per customer in 15-minute buckets (rate)"
  post /api/v1/query '{"queryType":"rate","metricName":"requests_total","timeRange":{"relative":"1h"},"interval":"15m","groupBy":["customer_id"]}'
  echo "# discovery"
  curl -sS "$url/api/v1/metrics"; echo
  curl -sS "$url/api/v1/metrics/api_latency/dimensions"; echo
  curl -sS "$url/api/v1/metrics/api_latency/dimensions/customer_id/values?prefix=cust_&limit=10"; echo
  curl -sS "$url/api/v1/cardinality"; echo
}

case "${1:-tour}" in
  load) load ;;
  tour) tour ;;
  *) echo "usage: $0 load|tour" >&2; exit 2 ;;
esac
