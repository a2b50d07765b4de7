#!/usr/bin/env python3
"""Query side of bench/peers.sh: runs the benchmark's query set against ClickHouse or VictoriaMetrics,
reduces each answer to the form `luminate bench --json` reports, compares it with Luminate's, and prints
the side-by-side tables (DuckDB's and chDB's figures come from bench/inprocess.py). Standard library only.

  peers.py queries clickhouse URL META REPEAT        > answers.json
  peers.py queries victoriametrics URL META REPEAT   > answers.json
  peers.py vm-count URL META                         checks that VictoriaMetrics holds every point of META
  peers.py table LUMINATE.json SYSTEMS.json [--remote-write LUMINATE_RW.json] [--report OUT.json]
                                                     (SYSTEMS: {"ClickHouse": {"ingest": .., "queries": ..}, ...});
                                                     with DuckDB or chDB among them, a second table: Luminate
                                                     against the best of the two, with issue 16's targets
  peers.py promql luminate|victoriametrics URL META REPEAT > answers.json
                                                     the PromQL set against URL/api/v1/query[_range] (URL:
                                                     Luminate's .../prometheus, VictoriaMetrics' root)
  peers.py promql-table LUMINATE.json VM.json META DATASET_DIR
                                                     PromQL latencies side by side; answers compared with
                                                     each other and, for rates, with Prometheus 2.42's

A comparison is `exact` when the answer equals Luminate's (floats to 1e-9 relative: sums are added in
different orders), `DIFFERS` when it does not, `ties` when a top-N answer differs only in which of the
rows tied at the cut were kept, `approx` when the peer's query only approximates the semantics
(VictoriaMetrics' histogram quantiles, counter-reset handling), `n/a` when the peer's answer cannot be
compared (no range limit in VictoriaMetrics' export).
"""

import bisect
import json
import math
import re
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 600


def http(url, data=None):
    """Returns (seconds, body text); exits with the server's message on a non-2xx answer."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, data=data, timeout=TIMEOUT) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as e:
        sys.exit(f"{url} answered {e.code}: {e.read().decode()[:2000]}\nrequest: {(data or b'').decode()[:2000]}")
    return time.perf_counter() - started, body


# ---------------------------------------------------------------------------------------------- ClickHouse

def clickhouse_queries(meta):
    """(name, SQL, reader) per query; readers turn TSV rows into Luminate's answer form."""
    start, end = meta["start"], meta["end"]
    where = f"metric = 'api_latency' AND ts >= {start} AND ts < {end}"
    counter = f"metric = 'requests_total' AND ts >= {start} AND ts < {end}"

    def groups(n_keys):
        def read(rows):
            return [{"key": r[:n_keys], "value": float(r[n_keys]), "count": int(r[n_keys + 1])} for r in rows]
        return read

    def rates(n_keys):
        def read(rows):
            return [{"key": r[:n_keys], "timestamp": int(r[n_keys]), "rate": float(r[n_keys + 1])} for r in rows]
        return read

    def read_range(rows):
        truncated = len(rows) > 10000
        rows = rows[:10000]
        tenths = sum(round(float(r[1]) * 10) for r in rows)
        return {"points": len(rows), "truncated": truncated,
                "first_ts": int(rows[0][0]) if rows else 0, "last_ts": int(rows[-1][0]) if rows else 0,
                "value_sum": tenths / 10}

    def read_series(rows):
        r = rows[0]
        keys = ["customer_id", "endpoint", "region", "status_code"]
        return {"series": int(r[0]),
                "distinct_values": [{"key": k, "distinct_values": int(v)} for k, v in zip(keys, r[1:]) if int(v) > 0]}

    # Rate (CONTRACT §4): per series, points ordered by (ts, value); each consecutive pair adds
    # max(0, v_i - v_{i-1}) to the bucket of t_i. ClickHouse 18.16 has no window functions: sort each
    # series' points in an array, take arrayDifference of the values, and ARRAY JOIN it with the
    # timestamps (index 1 has no predecessor). A lambda that indexes the captured array instead would
    # copy it once per element: quadratic memory.
    def rate_sql(group_by):
        keys = "".join(f"{k}, " for k in group_by)
        return (
            f"SELECT {keys}intDiv(t, 60000) * 60000 AS bucket, sum(greatest(d, 0)) / 60 AS rate FROM ("
            f" SELECT {keys}arraySort(groupArray((ts, value))) AS pts,"
            f"  arrayMap(p -> tupleElement(p, 1), pts) AS times,"
            f"  arrayDifference(arrayMap(p -> tupleElement(p, 2), pts)) AS deltas"
            f" FROM points WHERE {counter} GROUP BY customer_id, endpoint, region, status_code)"
            f" ARRAY JOIN times AS t, deltas AS d, arrayEnumerate(times) AS i"
            f" WHERE i > 1 GROUP BY {keys}bucket ORDER BY {keys}bucket")

    top = meta["top_customer"]
    typical = meta["typical_customer"]
    region = meta["filter_region"]
    return [
        ("range_top_customer",
         f"SELECT ts, value FROM points WHERE {where} AND customer_id = '{top}'"
         f" ORDER BY ts, endpoint, region, status_code, value LIMIT 10001", read_range),
        ("range_typical_customer",
         f"SELECT ts, value FROM points WHERE {where} AND customer_id = '{typical}'"
         f" ORDER BY ts, endpoint, region, status_code, value LIMIT 10001", read_range),
        ("avg_by_customer_top10",
         f"SELECT customer_id, avg(value) AS v, count() AS c FROM points WHERE {where}"
         f" GROUP BY customer_id ORDER BY v DESC, customer_id LIMIT 10", groups(1)),
        ("count_by_customer_top10",
         f"SELECT customer_id, count() AS v, count() AS c FROM points WHERE {where}"
         f" GROUP BY customer_id ORDER BY v DESC, customer_id LIMIT 10", groups(1)),
        ("p95_by_customer_top10",
         f"SELECT customer_id, quantileExact(0.95)(value) AS v, count() AS c FROM points WHERE {where}"
         f" GROUP BY customer_id ORDER BY v DESC, customer_id LIMIT 10", groups(1)),
        ("p99_by_endpoint_region",
         f"SELECT endpoint, quantileExact(0.99)(value) AS v, count() AS c FROM points WHERE {where}"
         f" AND region = '{region}' GROUP BY endpoint ORDER BY v DESC, endpoint LIMIT 100", groups(1)),
        ("sum_by_region_status",
         f"SELECT region, status_code, sum(value) AS v, count() AS c FROM points WHERE {where}"
         f" GROUP BY region, status_code ORDER BY v DESC, region, status_code LIMIT 100", groups(2)),
        ("rate", rate_sql([]), rates(0)),
        ("rate_by_region", rate_sql(["region"]), rates(1)),
        ("top_values_customer",
         "SELECT customer_id, count() AS c FROM points WHERE metric = 'api_latency'"
         " GROUP BY customer_id ORDER BY c DESC, customer_id LIMIT 100",
         lambda rows: [{"value": r[0], "points": int(r[1])} for r in rows]),
        ("series_count",
         "SELECT uniqExact(customer_id, endpoint, region, status_code), uniqExact(customer_id),"
         " uniqExact(endpoint), uniqExact(region), uniqExact(status_code) FROM points"
         " WHERE metric = 'api_latency'", read_series),
    ]


def run_clickhouse(url, meta, repeat):
    out = {}
    for name, sql, read in clickhouse_queries(meta):
        times, text = [], ""
        for _ in range(repeat):
            seconds, text = http(url + "/", (sql + " FORMAT TabSeparated").encode())
            times.append(seconds * 1000)
        rows = [line.split("\t") for line in text.splitlines()]
        out[name] = {"runs_ms": times, "answer": read(rows), "semantics": "exact", "query": sql}
    return out


# ----------------------------------------------------------------------------------------- VictoriaMetrics

TOPK = "exact but ties: topk keeps an arbitrary one of the rows tied at the cut"


def vm_queries(meta):
    """(name, kind, params, reader, semantics) per query. Instant queries are evaluated at end - 1 ms with
    a 1h window: VictoriaMetrics windows are (t - 1h, t], which is then [start, end) in milliseconds."""
    at = f"{(meta['end'] - 1) / 1000:.3f}"
    region = meta["filter_region"]

    def vector_groups(keys, count=False):
        def read(body):
            rows = [{"key": [r["metric"].get(k, "") for k in keys], "value": float(r["value"][1]),
                     "count": int(float(r["value"][1])) if count else None}
                    for r in body["data"]["result"]]
            rows.sort(key=lambda g: (-g["value"], g["key"]))
            return rows
        return read

    def read_rates(keys):
        def read(body):
            rows = []
            for r in body["data"]["result"]:
                for t, v in r["values"]:
                    # The value at t covers [t - 1m, t): Luminate's bucket t - 1m.
                    if float(v) != 0:
                        rows.append({"key": [r["metric"].get(k, "") for k in keys],
                                     "timestamp": int(round(float(t) * 1000)) - 60000, "rate": float(v)})
            rows.sort(key=lambda p: (p["key"], p["timestamp"]))
            return rows
        return read

    def read_export(text):
        points = 0
        for line in text.splitlines():
            points += len(json.loads(line)["values"])
        return {"points": points}

    def read_export_whole(text):
        """Every point of a customer with fewer than 10 000: the same answer as Luminate's range."""
        rows = []
        for line in text.splitlines():
            series = json.loads(line)
            rows.extend(zip(series["timestamps"], series["values"]))
        rows.sort()
        return {"points": len(rows), "truncated": len(rows) > 10000,
                "first_ts": rows[0][0] if rows else 0, "last_ts": rows[-1][0] if rows else 0,
                "value_sum": sum(round(v * 10) for _, v in rows) / 10}

    def read_values(body):
        rows = [{"value": r["metric"].get("customer_id", ""), "points": int(float(r["value"][1]))}
                for r in body["data"]["result"]]
        rows.sort(key=lambda v: (-v["points"], v["value"]))
        return rows

    def read_series(body):
        result = body["data"]["result"]
        return {"series": int(float(result[0]["value"][1])) if result else 0}

    def instant(q):
        return {"query": q, "time": at, "nocache": "1"}

    rate_range = {"start": f"{(meta['start'] + 60000) / 1000:.3f}", "end": f"{meta['end'] / 1000:.3f}",
                  "step": "60", "nocache": "1"}
    hist = "histogram_quantile({q}, sum by ({k}, vmrange)(histogram_over_time(api_latency{f}[1h])))"
    return [
        ("range_top_customer", "export",
         {"match[]": f'api_latency{{customer_id="{meta["top_customer"]}"}}',
          "start": f"{meta['start'] / 1000:.3f}", "end": at},
         read_export, "n/a: export returns every point of the customer, unordered, no limit"),
        ("range_typical_customer", "export",
         {"match[]": f'api_latency{{customer_id="{meta["typical_customer"]}"}}',
          "start": f"{meta['start'] / 1000:.3f}", "end": at},
         read_export_whole, "exact: every point of the customer (fewer than the limit), sorted here"),
        ("avg_by_customer_top10", "query",
         instant("topk(10, sum by (customer_id)(sum_over_time(api_latency[1h]))"
                 " / sum by (customer_id)(count_over_time(api_latency[1h])))"),
         vector_groups(["customer_id"]), TOPK),
        ("count_by_customer_top10", "query",
         instant("topk(10, sum by (customer_id)(count_over_time(api_latency[1h])))"),
         vector_groups(["customer_id"], count=True), TOPK),
        ("p95_by_customer_top10", "query",
         instant("topk(10, " + hist.format(q="0.95", k="customer_id", f="") + ")"),
         vector_groups(["customer_id"]), "approx: histogram buckets (vmrange), not exact quantiles"),
        ("p99_by_endpoint_region", "query",
         instant(hist.format(q="0.99", k="endpoint", f=f'{{region="{region}"}}')),
         vector_groups(["endpoint"]), "approx: histogram buckets (vmrange), not exact quantiles"),
        ("sum_by_region_status", "query",
         instant("sum by (region, status_code)(sum_over_time(api_latency[1h]))"),
         vector_groups(["region", "status_code"]), "exact"),
        ("rate", "query_range",
         dict(rate_range, query="sum(increase(requests_total[1m] offset 1ms)) / 60"),
         read_rates([]), "approx: increase() counts a reset as the new value, not 0"),
        ("rate_by_region", "query_range",
         dict(rate_range, query="sum by (region)(increase(requests_total[1m] offset 1ms)) / 60"),
         read_rates(["region"]), "approx: increase() counts a reset as the new value, not 0"),
        ("top_values_customer", "query",
         instant("topk(100, sum by (customer_id)(count_over_time(api_latency[1h])))"), read_values, TOPK),
        ("series_count", "query", instant("count(last_over_time(api_latency[1h]))"), read_series, "exact"),
    ]


def run_vm(url, meta, repeat):
    out = {}
    for name, kind, params, read, semantics in vm_queries(meta):
        times, text = [], ""
        for _ in range(repeat):
            seconds, text = http(f"{url}/api/v1/{kind}", urllib.parse.urlencode(params).encode())
            times.append(seconds * 1000)
        answer = read(text if kind == "export" else json.loads(text))
        out[name] = {"runs_ms": times, "answer": answer, "semantics": semantics, "query": params}
    return out


def vm_count(url, meta):
    """Exits non-zero unless VictoriaMetrics counts exactly the dataset's points of each metric in the hour."""
    at = f"{(meta['end'] - 1) / 1000:.3f}"
    for metric, expected in (("api_latency", meta["latency_points"]), ("requests_total", meta["counter_points"])):
        params = {"query": f"sum(count_over_time({metric}[1h]))", "time": at, "nocache": "1"}
        _, text = http(f"{url}/api/v1/query", urllib.parse.urlencode(params).encode())
        result = json.loads(text)["data"]["result"]
        got = int(float(result[0]["value"][1])) if result else 0
        if got != expected:
            sys.exit(f"VictoriaMetrics holds {got} {metric} points, not {expected}")
        print(f"VictoriaMetrics holds all {got} {metric} points", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------------------- PromQL

PROMQL_TOPK = "topk"


def promql_queries(meta):
    """(name, description, kind, params, semantics) of the PromQL set; the same requests go to Luminate's
    /prometheus/api/v1/... and to VictoriaMetrics' /api/v1/.... Instant queries are evaluated at end − 1 ms,
    so that a [1h] window holds the whole dataset both under Prometheus 2.42's closed windows [t − 1h, t]
    and VictoriaMetrics' (t − 1h, t]. The count range query steps every 5 minutes through the hour with
    [1h] windows, which all start before the data, so the two window rules agree there too; the rate range
    query steps every minute with [1m] windows."""
    at = f"{(meta['end'] - 1) / 1000:.3f}"
    by_customer = "sum by (customer_id) (count_over_time(api_latency[1h]))"
    rate = "sum by (region) (rate(requests_total[1m]))"
    # Steps at multiples of the step: VictoriaMetrics aligns a range query's start down to one.
    first_5m = (meta["start"] // 300_000 + 1) * 300
    count_range = {"start": str(first_5m), "end": at, "step": "300"}
    rate_range = {"start": f"{meta['start'] / 1000 + 60:.3f}", "end": at, "step": "60"}
    return [
        ("count_by_customer", "instant " + by_customer, "query", {"query": by_customer, "time": at}, "exact"),
        ("count_by_customer_range", "range (5m steps) " + by_customer, "query_range",
         dict(count_range, query=by_customer), "exact"),
        ("max_by_customer", "instant max by (customer_id) (max_over_time(api_latency[1h]))", "query",
         {"query": "max by (customer_id) (max_over_time(api_latency[1h]))", "time": at}, "exact"),
        ("topk_customers", "instant topk(10, " + by_customer + ")", "query",
         {"query": f"topk(10, {by_customer})", "time": at}, PROMQL_TOPK),
        ("series_by_region", "instant count by (region) (count_over_time(api_latency[1h]))", "query",
         {"query": "count by (region) (count_over_time(api_latency[1h]))", "time": at}, "exact"),
        ("count_by_region", "instant sum by (region) (count_over_time(api_latency[1h]))", "query",
         {"query": "sum by (region) (count_over_time(api_latency[1h]))", "time": at}, "exact"),
        ("rate_by_region", "instant " + rate, "query", {"query": rate, "time": at}, "prometheus"),
        ("rate_by_region_range", "range (1m steps) " + rate, "query_range", dict(rate_range, query=rate),
         "prometheus"),
    ]


def promql_answer(body):
    """A PromQL result as {labels: value} (vector) or {labels: [[ms, value], ...]} (matrix), labels a
    sorted tuple of pairs, so that answers compare regardless of order."""
    data = body["data"]
    key = lambda r: tuple(sorted(r["metric"].items()))
    if data["resultType"] == "vector":
        return {key(r): float(r["value"][1]) for r in data["result"]}
    return {key(r): [[int(round(float(t) * 1000)), float(v)] for t, v in r["values"]] for r in data["result"]}


def run_promql(system, url, meta, repeat):
    """Runs of each query (ms) and the last answer, or the error the system answered."""
    out = {}
    for name, _, kind, params, _ in promql_queries(meta):
        params = dict(params, **({"nocache": "1"} if system == "victoriametrics" else {"timeout": "600s"}))
        times, answer, error = [], None, None
        for _ in range(repeat):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{url}/api/v1/{kind}", urllib.parse.urlencode(params).encode(),
                                            timeout=TIMEOUT) as response:
                    text = response.read().decode()
            except urllib.error.HTTPError as e:
                error = f"{e.code} {e.read().decode()[:300]}"
                break
            times.append((time.perf_counter() - started) * 1000)
            answer = promql_answer(json.loads(text))
        print(f"{system} {name}: {statistics.median(times) if times else error} ms", file=sys.stderr)
        out[name] = {"runs_ms": times, "error": error, "params": params,
                     "answer": None if answer is None else [[list(map(list, k)), v] for k, v in answer.items()]}
    return out


def counter_series(dataset_dir, meta):
    """requests_total's points per series from the dataset's Prometheus text files: {labels: [(ms, v)]}."""
    line_re = re.compile(r'^requests_total\{(.*)\} (\S+) (\d+)$')
    series = {}
    for name in meta["vm_files"]:
        with open(f"{dataset_dir}/vm/{name}") as f:
            for line in f:
                if not line.startswith("requests_total{"):
                    continue
                m = line_re.match(line.rstrip("\n"))
                labels = tuple(sorted(tuple(kv.split("=", 1)) for kv in m.group(1).split(",")))
                labels = tuple((k, v.strip('"')) for k, v in labels)
                series.setdefault(labels, []).append((int(m.group(3)), float(m.group(2))))
    for points in series.values():
        points.sort()
    return series


def prometheus_rate(points, t, range_ms):
    """Prometheus 2.42's extrapolatedRate (promql/functions.go) of one series' points over [t − range, t]."""
    lo, hi = bisect.bisect_left(points, (t - range_ms, -math.inf)), bisect.bisect_right(points, (t, math.inf))
    window = points[lo:hi]
    if len(window) < 2:
        return None
    (first_t, first_v), (last_t, last_v) = window[0], window[-1]
    result = last_v - first_v
    previous = first_v
    for _, v in window:
        if v < previous:
            result += previous
        previous = v
    to_start = (first_t - (t - range_ms)) / 1000
    to_end = (t - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (len(window) - 1)
    if result > 0 and first_v >= 0:
        to_start = min(to_start, sampled * (first_v / result))
    threshold = average * 1.1
    interval = sampled + (to_start if to_start < threshold else average / 2)
    interval += to_end if to_end < threshold else average / 2
    return result * (interval / sampled) / (range_ms / 1000)


def prometheus_rate_by_region(series, times):
    """`sum by (region) (rate(requests_total[1m]))` at each of `times` (ms), by Prometheus' rules."""
    out = {}
    for t in times:
        sums = {}
        for labels, points in series.items():
            r = prometheus_rate(points, t, 60_000)
            if r is not None:
                region = dict(labels)["region"]
                sums[region] = sums.get(region, 0.0) + r
        for region, v in sums.items():
            out.setdefault((("region", region),), []).append([t, v])
    return out


def promql_equal(a, b):
    """Same label sets, values within 1e-9 relative (matrices: the same timestamps too)."""
    if a is None or b is None or set(a) != set(b):
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, list):
            if len(v) != len(w) or any(p[0] != q[0] or not close(p[1], q[1]) for p, q in zip(v, w)):
                return False
        elif not close(v, w):
            return False
    return True


def promql_equal_but_ties(a, b):
    """topk answers that differ only in which of the rows tied at the cut were kept."""
    if a is None or b is None or len(a) != len(b) or not a:
        return False
    cut = min(a.values())
    if sorted(a.values()) != sorted(b.values()):
        return False
    return {k: v for k, v in a.items() if v != cut} == {k: v for k, v in b.items() if v != cut}


def promql_table(luminate_path, vm_path, meta_path, dataset_dir):
    """Prints the PromQL comparison; returns the number of answers that differ where they must not."""
    meta = json.load(open(meta_path))
    lum, vm = json.load(open(luminate_path)), json.load(open(vm_path))
    decode = lambda r: None if r["answer"] is None else {
        tuple(map(tuple, k)): v for k, v in r["answer"]}
    series = None
    print(f"{'PromQL query (median ms)':<66} {'Luminate':>10} {'VictoriaM.':>10} {'ratio':>8}  answers")
    failures, notes = 0, []
    for name, description, kind, params, semantics in promql_queries(meta):
        ours, theirs = lum[name], vm[name]
        a, b = decode(ours), decode(theirs)
        ms = lambda r: statistics.median(r["runs_ms"]) if r["runs_ms"] else None
        if ours["error"] or theirs["error"]:
            verdict = "ERROR"
            for system, r in (("Luminate", ours), ("VictoriaMetrics", theirs)):
                if r["error"]:
                    notes.append(f"{name}: {system} answered {r['error']}")
            failures += 1
        elif semantics == "prometheus":
            if series is None:
                series = counter_series(dataset_dir, meta)
            if kind == "query":
                times = [round(float(params["time"]) * 1000)]
            else:
                first, last = round(float(params["start"]) * 1000), round(float(params["end"]) * 1000)
                times = list(range(first, last + 1, int(params["step"]) * 1000))
            reference = prometheus_rate_by_region(series, times)
            if kind == "query":
                reference = {k: v[0][1] for k, v in reference.items()}
            lum_ok, vm_ok = promql_equal(a, reference), promql_equal(a, b)
            verdict = ("= VM" if vm_ok else "≠ VM") + (", = Prometheus" if lum_ok else ", ≠ PROMETHEUS")
            failures += not lum_ok
            if not reference:
                notes.append(f"{name}: Prometheus' answer is empty (fewer than 2 points in every window)")
            if not vm_ok:
                notes.append(f"{name}: VictoriaMetrics' answer "
                             f"{'equals' if promql_equal(b, reference) else 'differs from'} Prometheus 2.42's "
                             "(MetricsQL's rate starts from the last sample before the window and does not "
                             "extrapolate); Luminate's is checked against Prometheus' rules computed here")
        elif semantics == PROMQL_TOPK and not promql_equal(a, b) and promql_equal_but_ties(a, b):
            verdict = "ties"
            notes.append(f"{name}: equal but for which rows tied at the cut were kept (topk breaks ties arbitrarily)")
        else:
            verdict = "equal" if promql_equal(a, b) else "DIFFERS"
            failures += verdict == "DIFFERS"
        print(f"{description[:66]:<66} {fmt(ms(ours)):>10} {fmt(ms(theirs)):>10} "
              f"{ratio(ms(ours), ms(theirs)):>8}  {verdict}")
    if notes:
        print("\nNotes:")
        for note in notes:
            print(f"  - {note}")
    return failures

# ------------------------------------------------------------------------------------------------ compare

def close(a, b):
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def equal(expected, got):
    """Luminate's answer against a peer's; fields a peer lacks (None) are not compared."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return all(k not in got or got[k] is None or equal(v, got[k]) for k, v in expected.items()) \
            and all(k in expected for k in got)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(equal(e, g) for e, g in zip(expected, got))
    if isinstance(expected, float) or isinstance(got, float):
        return isinstance(got, (int, float)) and isinstance(expected, (int, float)) and close(expected, got)
    return expected == got


def equal_but_ties(expected, got):
    """Top-N answers that differ only in which of the rows tied at the cut were kept: PromQL's topk
    breaks ties arbitrarily, Luminate by key."""
    if not (isinstance(expected, list) and isinstance(got, list)) or len(expected) != len(got) or not got:
        return False
    field = "points" if "points" in got[0] else "value"
    last = expected[-1][field]
    if not equal([r[field] for r in expected], [r[field] for r in got]):
        return False
    return equal([r for r in expected if r[field] != last], [r for r in got if r[field] != last])


def verdict(luminate_answer, peer):
    semantics = peer["semantics"]
    if semantics.startswith("n/a"):
        return "n/a"
    if equal(luminate_answer, peer["answer"]):
        return "exact" if semantics.startswith("exact") else "equal"
    if semantics.startswith("exact") and "ties" in semantics and equal_but_ties(luminate_answer, peer["answer"]):
        return "ties"
    return "DIFFERS" if semantics.startswith("exact") else "approx"


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    if isinstance(value, float) and digits >= 0:
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def ratio(ours, theirs, higher_is_better=False):
    if not ours or not theirs:
        return "n/a"
    r = ours / theirs if higher_is_better else theirs / ours
    return f"{r:.2f}x"


def table(luminate_path, systems_path, remote_write_path=None, report_path=None):
    """Prints the side-by-side table (and, when DuckDB or chDB ran, Luminate against the best of them);
    writes every figure, answer and ratio to `report_path` as JSON; returns the number of answers that
    differ where they must not."""
    lum = json.load(open(luminate_path))
    lum_rw = json.load(open(remote_write_path)) if remote_write_path else None
    systems = json.load(open(systems_path))
    names = list(systems)
    total = lum["dataset"]["latency_points"] + lum["dataset"]["counter_points"]
    print(f"Dataset: {lum['dataset']['latency_points']:,} api_latency points ({lum['dataset']['latency_series']:,} series, "
          f"{lum['dataset']['customers']:,} customers, Zipf 1.1) + {lum['dataset']['counter_points']:,} requests_total points")
    print("Ratio columns: how many times better Luminate is (peer time, bytes or memory / Luminate's; "
          "Luminate's points/s / peer's); below 1.00x the peer is ahead.\n")
    header = f"{'figure':<44} {'Luminate':>14}"
    for n in names:
        header += f" {n:>16} {'ratio':>8}"
    print(header)

    def row(label, ours, key, higher_is_better=False, digits=1):
        line = f"{label:<44} {fmt(ours, digits):>14}"
        for n in names:
            theirs = systems[n]["ingest"].get(key)
            line += f" {fmt(theirs, digits):>16} {ratio(ours, theirs, higher_is_better):>8}"
        print(line)

    row("ingest points/s", float(lum["ingest"]["points_per_second"]), "points_per_second", True, 0)
    if lum_rw is not None:
        row("remote-write ingest points/s", float(lum_rw["ingest"]["points_per_second"]),
            "remote_write_points_per_second", True, 0)
    row("bytes/point on disk", lum["storage"]["bytes_per_point"], "bytes_per_point", False, 2)
    gib = lambda b: None if b is None else b / 2**30
    line = f"{'peak RSS GiB':<44} {fmt(gib(lum['storage']['peak_rss_bytes']), 3):>14}"
    for n in names:
        theirs = gib(systems[n]["ingest"].get("peak_rss_bytes"))
        line += f" {fmt(theirs, 3):>16} {ratio(gib(lum['storage']['peak_rss_bytes']), theirs):>8}"
    print(line)
    print()
    header = f"{'query (median ms)':<44} {'Luminate':>14}"
    for n in names:
        header += f" {n:>16} {'ratio':>8} {'answer':>8}"
    print(header)
    notes = []
    failures = 0
    for q in lum["queries"]:
        line = f"{q['description'][:44]:<44} {q['median_ms']:>14.1f}"
        for n in names:
            peer = systems[n]["queries"].get(q["name"])
            if peer is None:
                line += f" {'-':>16} {'':>8} {'':>8}"
                continue
            ms = statistics.median(peer["runs_ms"])
            v = verdict(q["answer"], peer)
            failures += v == "DIFFERS"
            if v in ("approx", "n/a", "ties") or (v == "DIFFERS" and not peer["semantics"].startswith("exact")):
                notes.append(f"{n} {q['name']}: {peer['semantics']}")
            elif v == "DIFFERS":
                notes.append(f"{n} {q['name']}: answer differs from Luminate's exact answer")
            line += f" {ms:>16.1f} {ratio(q['median_ms'], ms):>8} {v:>8}"
        print(line)
    if notes:
        print("\nNotes:")
        for note in notes:
            print(f"  - {note}")
    print(f"\nLuminate's own answers: {'all exact' if lum['all_checks_passed'] else 'SOME DIFFER from the reference'}"
          f" ({total:,} points written).")
    if lum_rw is not None:
        print(f"Luminate's answers after the remote-write load: "
              f"{'all exact' if lum_rw['all_checks_passed'] else 'SOME DIFFER from the reference'}.")
        failures += not lum_rw["all_checks_passed"]
    versus = None
    if any(n in systems for n in COLUMNAR):
        print()
        versus = versus_columnar(lum, systems)
    on_clickhouse = None
    if LUMINATE_CLICKHOUSE in systems and "ClickHouse" in systems:
        print()
        on_clickhouse = versus_clickhouse(lum, systems)
    for n in names:
        if systems[n].get("version"):
            print(f"{n}: {systems[n]['version']}")
        if systems[n].get("all_checks_passed") is False:
            print(f"{n}: SOME ANSWERS DIFFER from the exact reference")
            failures += 1
    if report_path:
        json.dump({"luminate": lum, "luminate_remote_write": lum_rw, "systems": systems,
                   "versus_columnar": versus, "luminate_clickhouse_versus_clickhouse": on_clickhouse,
                   "failures": failures}, open(report_path, "w"), indent=1)
    return failures


COLUMNAR = ("DuckDB", "chDB")
# Luminate on its ClickHouse backend, against the same clickhouse-server queried directly (issue 18).
LUMINATE_CLICKHOUSE = "Luminate on ClickHouse"
# Issue 18's targets: every query at most 1.2x ClickHouse's own time, ingest at least 0.8x its points/s.
CLICKHOUSE_QUERY_FACTOR = 1.2
CLICKHOUSE_INGEST_FACTOR = 0.8


def luminate_clickhouse_system(path):
    """`luminate bench --clickhouse … --json` as a peer's figures: its answers are Luminate's own,
    checked exact against the reference by the bench itself."""
    run = json.load(open(path))
    return {
        "ingest": {"points_per_second": run["ingest"]["points_per_second"],
                   "bytes_per_point": run["storage"]["bytes_per_point"],
                   "peak_rss_bytes": run["storage"]["peak_rss_bytes"]},
        "queries": {q["name"]: {"runs_ms": q["runs_ms"], "answer": q["answer"], "semantics": "exact"}
                    for q in run["queries"]},
        "all_checks_passed": run["all_checks_passed"],
        "version": f"Luminate {run['version']} on its {run['backend']} backend, database "
                   f"{(run.get('clickhouse') or {}).get('database')} (peak RSS: Luminate's and the shared "
                   f"clickhouse-server's, whose peak may be the direct load's)",
    }


def versus_clickhouse(lum, systems):
    """Prints Luminate on the ClickHouse backend against ClickHouse queried directly (one column per
    dimension), figure by figure, with issue 18's targets; returns the rows."""
    ours, theirs = systems[LUMINATE_CLICKHOUSE], systems["ClickHouse"]
    print(f"{LUMINATE_CLICKHOUSE} against ClickHouse queried directly (same server, same run); ratio = "
          f"Luminate on ClickHouse ÷ ClickHouse (issue 18: times ≤ {CLICKHOUSE_QUERY_FACTOR}x, "
          f"ingest ≥ {CLICKHOUSE_INGEST_FACTOR}x):")
    print(f"{'figure':<44} {'Lum. on CH':>12} {'ClickHouse':>12} {'ratio':>8}  target")
    rows = []

    def line(label, a, b, target_ok):
        r = a / b if a and b else None
        met = "n/a" if r is None else ("met" if target_ok(r) else "NOT met")
        print(f"{label[:44]:<44} {fmt(a, 1):>12} {fmt(b, 1):>12} {fmt(r, 2):>8}  {met}")
        rows.append({"figure": label, "luminate_clickhouse": a, "clickhouse": b, "ratio": r, "target": met})

    line("ingest points/s", ours["ingest"]["points_per_second"], theirs["ingest"]["points_per_second"],
         lambda r: r >= CLICKHOUSE_INGEST_FACTOR)
    for q in lum["queries"]:
        a, b = ours["queries"].get(q["name"]), theirs["queries"].get(q["name"])
        if a is None or b is None:
            continue
        label = f"{ISSUE_LABELS.get(q['name'], '')} {q['description']}".strip()
        line(label, statistics.median(a["runs_ms"]), statistics.median(b["runs_ms"]),
             lambda r: r <= CLICKHOUSE_QUERY_FACTOR or q["name"] == "series_count")
    return rows
# Issue 16's targets: at or below 0.8x the best of DuckDB and chDB for times, bytes and memory; at least the
# best for ingest.
TARGET_FACTOR = 0.8
# The issue's names of the queries (Q1 is "raw points of one customer": both range queries).
ISSUE_LABELS = {"range_top_customer": "Q1", "range_typical_customer": "Q1", "avg_by_customer_top10": "Q2",
                "count_by_customer_top10": "Q3", "p95_by_customer_top10": "Q4", "p99_by_endpoint_region": "Q5",
                "sum_by_region_status": "Q6", "rate": "Q7", "rate_by_region": "Q8", "top_values_customer": "Q9",
                "series_count": "Q10"}


def versus_columnar(lum, systems):
    """Prints Luminate against the best of DuckDB and chDB, figure by figure: the ratio Luminate ÷ best
    (below 1.00x Luminate is ahead for times, bytes and memory; above 1.00x for points/s) and the issue's
    target. Returns the rows."""
    peers = [n for n in COLUMNAR if n in systems]
    rows = []

    def add(figure, ours, theirs, higher_is_better, unit, answers=None):
        known = {n: v for n, v in theirs.items() if v is not None}
        best_name = (max if higher_is_better else min)(known, key=known.get) if known else None
        best = known.get(best_name)
        target = None if best is None else best if higher_is_better else TARGET_FACTOR * best
        met = None if target is None or ours is None else ours >= target if higher_is_better else ours <= target
        rows.append({"figure": figure, "unit": unit, "luminate": ours, **theirs, "best": best,
                     "best_system": best_name, "ratio": ours / best if ours and best else None,
                     "target": target, "target_rule": ">= best" if higher_is_better else f"<= {TARGET_FACTOR} x best",
                     "met": met, "answers": answers})

    ingest = lambda n, key: systems[n]["ingest"].get(key)
    add("ingest points/s", lum["ingest"]["points_per_second"],
        {n: ingest(n, "points_per_second") for n in peers}, True, "points/s")
    add("bytes/point on disk", lum["storage"]["bytes_per_point"],
        {n: ingest(n, "bytes_per_point") for n in peers}, False, "bytes")
    mib = lambda b: None if b is None else b / 2**20
    add("peak RSS MiB", mib(lum["storage"]["peak_rss_bytes"]),
        {n: mib(ingest(n, "peak_rss_bytes")) for n in peers}, False, "MiB")
    for q in lum["queries"]:
        theirs, answers = {}, {}
        for n in peers:
            peer = systems[n]["queries"].get(q["name"])
            theirs[n] = statistics.median(peer["runs_ms"]) if peer else None
            answers[n] = verdict(q["answer"], peer) if peer else None
        label = ISSUE_LABELS.get(q["name"], "")
        add(f"{label} {q['description']}, ms".strip(), q["median_ms"], theirs, False, "ms", answers)

    def number(v):
        if v is None:
            return "n/a"
        return f"{v:,.0f}" if v >= 1000 else f"{v:,.1f}" if v >= 10 else f"{v:,.2f}"

    print(f"Luminate against the best of {' and '.join(peers)} (queried in-process; Luminate over HTTP).")
    print(f"ratio = Luminate ÷ best: times, bytes, memory below 1.00x and points/s above it mean Luminate is"
          f" ahead; target: <= {TARGET_FACTOR}x best, points/s >= best.\n")
    header = f"{'figure':<52} {'Luminate':>11}" + "".join(f" {n:>11}" for n in peers)
    print(header + f" {'ratio':>8} {'target':>11} {'met':>4}  answers")
    for r in rows:
        line = f"{r['figure'][:52]:<52} {number(r['luminate']):>11}" + "".join(f" {number(r[n]):>11}" for n in peers)
        ratio_text = "n/a" if r["ratio"] is None else f"{r['ratio']:.2f}x" if r["ratio"] >= 0.1 else f"{r['ratio']:.3f}x"
        met = "n/a" if r["met"] is None else "yes" if r["met"] else "no"
        answers = "" if r["answers"] is None else " ".join(f"{n} {v}" for n, v in r["answers"].items())
        print(line + f" {ratio_text:>8} {number(r['target']):>11} {met:>4}  {answers}")
    return rows


def main(argv):
    if len(argv) >= 6 and argv[1] == "queries":
        system, url, meta_path, repeat = argv[2], argv[3].rstrip("/"), argv[4], int(argv[5])
        meta = json.load(open(meta_path))
        run = run_clickhouse if system == "clickhouse" else run_vm
        json.dump(run(url, meta, repeat), sys.stdout)
        return 0
    if len(argv) == 4 and argv[1] == "vm-count":
        return vm_count(argv[2].rstrip("/"), json.load(open(argv[3])))
    if len(argv) == 6 and argv[1] == "promql":
        system, url, meta, repeat = argv[2], argv[3].rstrip("/"), json.load(open(argv[4])), int(argv[5])
        json.dump(run_promql(system, url, meta, repeat), sys.stdout)
        return 0
    if len(argv) == 6 and argv[1] == "promql-table":
        return 1 if promql_table(*argv[2:]) else 0
    if len(argv) >= 4 and argv[1] == "table":
        paths, flags = argv[2:4], dict(zip(argv[4::2], argv[5::2]))
        if len(argv) % 2 or set(flags) - {"--remote-write", "--report"}:
            print(__doc__, file=sys.stderr)
            return 2
        return 1 if table(*paths, flags.get("--remote-write"), flags.get("--report")) else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
