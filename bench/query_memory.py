#!/usr/bin/env python3
"""Peak memory of concurrent heavy queries (issue 11, item 5): starts a `luminate` binary over a fresh data
directory, writes POINTS points of `api_latency` (CUSTOMERS customers × 5 endpoints, spread over the last
six hours), lets the head settle, resets the process's peak RSS (`/proc/PID/clear_refs`, needs the right
to write it: root or the same user), fires QUERIES concurrent `p99 by customer_id` queries at once, and
prints one JSON object: the statuses, whether every 200 carried the same answer, the server's RSS before
and its peak (VmHWM) during the queries, and the query-memory self-metrics. Standard library only.

  bench/query_memory.py BINARY [--points 2000000] [--customers 10000] [--queries 50]
                               [--budget BYTES] [--wait DURATION]

`--budget` and `--wait` set `query_limits.memory_budget_bytes` and `query_limits.memory_wait` (a binary
without those keys refuses to start with them: leave them out to measure such a build).
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BATCH = 10_000
HOUR_MS = 3_600_000


def request(url, body=None, timeout=600):
    """(status, parsed JSON or text) of a GET, or of a POST of `body` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def status_field(pid, field):
    """A `/proc/PID/status` figure in bytes (`VmRSS`, `VmHWM`)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def start(binary, data_dir, env):
    """The server process and its base URL, read from its `luminate listening on` line."""
    process = subprocess.Popen(
        [binary, "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    for line in process.stdout:
        match = re.search(r"luminate listening on (http://\S+)", line)
        if match:
            # Keep draining the output so the server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            return process, match.group(1)
        if time.time() > deadline:
            break
    process.kill()
    sys.exit("luminate did not start")


def write(base, points, customers):
    rng = random.Random(7)
    now = int(time.time() * 1000)
    for first in range(0, points, BATCH):
        batch = [{
            "name": "api_latency",
            "timestamp": now - 6 * HOUR_MS + (first + i) * (6 * HOUR_MS // points),
            "value": round(rng.lognormvariate(3, 1), 3),
            "dimensions": {"customer_id": f"cust_{rng.randrange(customers)}",
                           "endpoint": f"/api/{rng.randrange(5)}"},
        } for i in range(min(BATCH, points - first))]
        status, body = request(f"{base}/api/v1/write", {"metrics": batch})
        if status != 200:
            sys.exit(f"write answered {status}: {body}")


def metric_samples(base, prefix):
    status, text = request(f"{base}/metrics")
    if status != 200:
        return {}
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith(prefix)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--budget")
    parser.add_argument("--wait")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMINATE")}
    env.update({
        "LUMINATE__RATE_LIMITS__METRICS_PER_SECOND": "1000000000",
        "LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND": "1000000",
        "LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND": "1000000",
        "LUMINATE__RATE_LIMITS__CONCURRENT_QUERIES": "100000",
        "LUMINATE__QUERY_LIMITS__DEFAULT_QUERY_TIMEOUT": "30s",
        "LUMINATE_HEALTH_MIN_FREE_DISK_BYTES": "0",
        "LUMINATE_HEALTH_MIN_FREE_DISK_RATIO": "0",
    })
    if args.budget:
        env["LUMINATE__QUERY_LIMITS__MEMORY_BUDGET_BYTES"] = args.budget
    if args.wait:
        env["LUMINATE__QUERY_LIMITS__MEMORY_WAIT"] = args.wait
    with tempfile.TemporaryDirectory() as data_dir:
        process, base = start(args.binary, data_dir, env)
        try:
            write(base, args.points, args.customers)
            query = {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p99",
                     "groupBy": ["customer_id"], "timeRange": {"relative": "7h"}}
            request(f"{base}/api/v1/query", query)  # warm: the first query pays for lazy set-up
            time.sleep(1)
            rss_before = status_field(process.pid, "VmRSS")
            with open(f"/proc/{process.pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            answers = [None] * args.queries
            barrier = threading.Barrier(args.queries)

            def one(i):
                barrier.wait()
                answers[i] = request(f"{base}/api/v1/query", query)

            started = time.perf_counter()
            threads = [threading.Thread(target=one, args=(i,)) for i in range(args.queries)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - started
            peak = status_field(process.pid, "VmHWM")
            statuses = {}
            for status, _ in answers:
                statuses[status] = statuses.get(status, 0) + 1
            ok = [json.dumps(body["results"], sort_keys=True) for status, body in answers if status == 200]
            refused = [body for status, body in answers if status != 200]
            print(json.dumps({
                "points": args.points, "queries": args.queries, "budget": args.budget,
                "statuses": statuses, "same_answer": len(set(ok)) <= 1,
                "seconds": round(seconds, 2),
                "rss_before_mib": round(rss_before / 2**20, 1),
                "peak_rss_mib": round(peak / 2**20, 1),
                "peak_over_before_mib": round((peak - rss_before) / 2**20, 1),
                "first_refusal": refused[0] if refused else None,
                "self_metrics": metric_samples(base, "luminate_query_memory"),
            }, indent=1))
        finally:
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
