#!/usr/bin/env python3
"""DuckDB and chDB (ClickHouse in-process) for bench/peers.sh: load the dataset's TabSeparated files,
settle the table on disk, run the benchmark's query set in SQL, and check every answer against the
exact reference of the dataset (meta.json's `expected`, the answers `luminate bench` is checked against).
One system per process, so that the process's peak RSS is that system's.

  inprocess.py run duckdb|chdb DATASET_DIR DB_DIR REPEAT > report.json

DATASET_DIR is `luminate bench --dataset-out`'s directory (ch/*.tsv and meta.json); DB_DIR an empty
directory for the database. The report holds the system's version, its ingest, disk and memory figures
in the form peers.py's table reads, the runs and answer of every query, and each answer's verdict
against the reference. Needs the PyPI packages `duckdb` and `chdb` (bench/peers.sh installs them).

What is timed:
- ingest: one `INSERT INTO points SELECT … FROM <every TSV file>` from the start of the statement to its
  commit (DuckDB: written to the database file, WAL fsynced at commit; chDB: MergeTree parts written, not
  fsynced, as ClickHouse does by default). Points/s = all points ÷ that time.
- settle (reported apart, not part of the ingest): DuckDB `CHECKPOINT`, chDB `OPTIMIZE TABLE … FINAL`.
- bytes on disk: DuckDB the database file (+ WAL, empty after the checkpoint); chDB `bytes_on_disk` of the
  table's active parts (merged-away parts linger on disk for minutes, not counted).
- queries: each statement from submission until its whole answer is in Python (DuckDB `fetchall`, chDB
  the TabSeparated text), `REPEAT` runs, no warm-up run apart (the same as `luminate bench`).
- peak RSS: the process's `ru_maxrss` after the queries; the interpreter and the loaded library are part of
  it (measured idle: Python 8 MiB, with DuckDB connected 59 MiB, with a chDB session 260 MiB).
"""

import json
import os
import resource
import statistics
import sys
import time

import peers

COLUMNS = [("metric", "VARCHAR"), ("customer_id", "VARCHAR"), ("endpoint", "VARCHAR"), ("region", "VARCHAR"),
           ("status_code", "VARCHAR"), ("ts", "BIGINT"), ("value", "DOUBLE")]
SERIES = "customer_id, endpoint, region, status_code"

# Percentile at CONTRACT §4's 0-based index min(floor(q × N), N − 1). DuckDB's quantile_disc(v, q) takes
# index ceil(q × N) − 1 (they differ whenever q × N is a whole number: N = 20 for p95), but
# percentile_disc(1 − q) over the values in descending order takes index ceil((1 − q) × N) − 1 from the top,
# which is floor(q × N) from the bottom, clamped to N − 1: the contract's. ClickHouse's quantileExact is the
# contract's rule by definition. `percentile_probe` checks both on N = 1 … 400 before the run.
DUCKDB_PERCENTILE = "percentile_disc({rest}) WITHIN GROUP (ORDER BY value DESC)"


def duckdb_percentile(pct):
    return DUCKDB_PERCENTILE.format(rest=f"{(100 - pct) / 100}")


def rate_sql(group_by, counter, bucket, lag):
    """CONTRACT §4 rate: per series, points ordered by (ts, value); each point after the first adds
    max(0, v_i − v_{i−1}) to the bucket of t_i (a reset adds 0); a bucket's rate is the sum over the
    group's series ÷ 60 s. `lag` is the dialect's previous-value window function (NULL for the first
    point), `bucket` its epoch-aligned minute of ts."""
    keys = "".join(f"{k}, " for k in group_by)
    return (
        f"SELECT {keys}{bucket} AS bucket, sum(greatest(value - prev, 0)) / 60 AS rate FROM ("
        f" SELECT {keys}ts, value, {lag} OVER (PARTITION BY {SERIES} ORDER BY ts, value) AS prev"
        f" FROM points WHERE {counter})"
        f" WHERE prev IS NOT NULL GROUP BY {keys}bucket ORDER BY {keys}bucket")


def duckdb_queries(meta):
    """(name, SQL, reader) per query in DuckDB's SQL; the readers are peers.py's ClickHouse ones (rows of
    values rather than of TSV text, which they convert alike)."""
    start, end = meta["start"], meta["end"]
    where = f"metric = 'api_latency' AND ts >= {start} AND ts < {end}"
    counter = f"metric = 'requests_total' AND ts >= {start} AND ts < {end}"
    readers = {name: read for name, _, read in peers.clickhouse_queries(meta)}
    region = meta["filter_region"]

    def range_of(customer):
        return (f"SELECT ts, value FROM points WHERE {where} AND customer_id = '{customer}'"
                f" ORDER BY ts, endpoint, region, status_code, value LIMIT 10001")

    def top_by(value, limit=10, keys=("customer_id",), extra=""):
        k = ", ".join(keys)
        return (f"SELECT {k}, {value} AS v, count(*) AS c FROM points WHERE {where}{extra}"
                f" GROUP BY {k} ORDER BY v DESC, {k} LIMIT {limit}")

    lag, bucket = "lag(value)", "(ts // 60000) * 60000"
    sql = {
        "range_top_customer": range_of(meta["top_customer"]),
        "range_typical_customer": range_of(meta["typical_customer"]),
        "avg_by_customer_top10": top_by("avg(value)"),
        "count_by_customer_top10": top_by("count(*)"),
        "p95_by_customer_top10": top_by(duckdb_percentile(95)),
        "p99_by_endpoint_region": top_by(duckdb_percentile(99), 100, ("endpoint",), f" AND region = '{region}'"),
        "sum_by_region_status": top_by("sum(value)", 100, ("region", "status_code")),
        "rate": rate_sql([], counter, bucket, lag),
        "rate_by_region": rate_sql(["region"], counter, bucket, lag),
        "top_values_customer":
            "SELECT customer_id, count(*) AS c FROM points WHERE metric = 'api_latency'"
            " GROUP BY customer_id ORDER BY c DESC, customer_id LIMIT 100",
        "series_count":
            f"SELECT count(DISTINCT ({SERIES})), count(DISTINCT customer_id), count(DISTINCT endpoint),"
            " count(DISTINCT region), count(DISTINCT status_code) FROM points WHERE metric = 'api_latency'",
    }
    return [(name, sql[name], readers[name]) for name in readers]


def chdb_queries(meta):
    """peers.py's ClickHouse SQL (written for 18.16, valid in 26.x), but the rate with a window function
    (ClickHouse 21.x and later) instead of 18.16's per-series sorted arrays."""
    start, end = meta["start"], meta["end"]
    counter = f"metric = 'requests_total' AND ts >= {start} AND ts < {end}"
    lag, bucket = "lagInFrame(toNullable(value))", "intDiv(ts, 60000) * 60000"
    rates = {"rate": rate_sql([], counter, bucket, lag), "rate_by_region": rate_sql(["region"], counter, bucket, lag)}
    return [(name, rates.get(name, sql), read) for name, sql, read in peers.clickhouse_queries(meta)]


class DuckDB:
    name = "DuckDB"

    def __init__(self, db_dir):
        import duckdb
        self.path = os.path.join(db_dir, "points.duckdb")
        self.db = duckdb.connect(self.path)
        self.version = duckdb.__version__

    def execute(self, sql):
        return [list(row) for row in self.db.execute(sql).fetchall()]

    def create_and_load(self, tsv_glob):
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
        self.db.execute(f"CREATE TABLE points ({columns})")
        types = ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS)
        # nullstr: the counter's empty customer_id is the empty string, as in every other system.
        return lambda: self.db.execute(
            f"INSERT INTO points SELECT * FROM read_csv('{tsv_glob}', delim = '\t', header = false,"
            f" quote = '', escape = '', nullstr = '\\N', columns = {{{types}}})")

    def settle(self):
        self.db.execute("CHECKPOINT")

    def disk_bytes(self):
        wal = self.path + ".wal"
        return os.path.getsize(self.path) + (os.path.getsize(wal) if os.path.exists(wal) else 0)

    def queries(self, meta):
        return duckdb_queries(meta)

    def percentile_probe(self):
        self.db.execute("CREATE TEMP TABLE probe AS SELECT n, i::DOUBLE AS value"
                        " FROM range(1, 401) r(n), range(0, 400) s(i) WHERE i < n")
        return {pct: self.execute(f"SELECT n, {duckdb_percentile(pct)} FROM probe GROUP BY n ORDER BY n")
                for pct in (50, 95, 99)}

    def describe(self):
        return {"percentile": DUCKDB_PERCENTILE.format(rest="1 − q"), "storage": "a DuckDB database file"}


class Chdb:
    name = "chDB"

    def __init__(self, db_dir):
        import chdb
        from chdb import session
        self.session = session.Session(db_dir)
        self.version = f"chdb {chdb.__version__}, ClickHouse {self.execute('SELECT version()')[0][0]}"

    def execute(self, sql):
        result = self.session.query(sql, "TabSeparated")
        if result.has_error():
            sys.exit(f"chDB: {result.error_message()}\nquery: {sql}")
        return [line.split("\t") for line in result.data().splitlines()]

    def create_and_load(self, tsv_glob):
        # The schema of bench/peers.sh's ClickHouse table, with LowCardinality for the small dimensions as
        # a ClickHouse user of today would write it (customer_id, 100 000 values, stays String).
        self.execute(
            "CREATE TABLE points (metric LowCardinality(String), customer_id String,"
            " endpoint LowCardinality(String), region LowCardinality(String), status_code LowCardinality(String),"
            " ts UInt64, value Float64) ENGINE = MergeTree"
            " PARTITION BY toDate(intDiv(ts, 1000)) ORDER BY (metric, customer_id, endpoint, region, status_code, ts)")
        structure = "metric String, customer_id String, endpoint String, region String, status_code String," \
                    " ts UInt64, value Float64"
        return lambda: self.execute(
            f"INSERT INTO points SELECT * FROM file('{tsv_glob}', 'TabSeparated', '{structure}')")

    def settle(self):
        self.execute("OPTIMIZE TABLE points FINAL")

    def disk_bytes(self):
        rows = self.execute("SELECT sum(bytes_on_disk) FROM system.parts WHERE table = 'points' AND active")
        return int(rows[0][0])

    def queries(self, meta):
        return chdb_queries(meta)

    def percentile_probe(self):
        return {pct: [[int(n), float(v)] for n, v in self.execute(
            f"SELECT n, quantileExact({pct / 100})(toFloat64(i)) FROM (SELECT n, arrayJoin(range(n)) AS i"
            " FROM (SELECT number + 1 AS n FROM numbers(400))) GROUP BY n ORDER BY n")]
            for pct in (50, 95, 99)}

    def describe(self):
        return {"percentile": "quantileExact(q)", "storage": "a MergeTree table in a chDB session directory"}


def check_probe(probe):
    """The (n, percentile) rows of values 0 … n − 1 against CONTRACT §4's index: the first mismatch, or None."""
    for pct, rows in probe.items():
        for n, got in rows:
            if float(got) != min(pct * n // 100, n - 1):
                return f"p{pct} of 0 … {n - 1} is {got}, CONTRACT §4 says {min(pct * n // 100, n - 1)}"
    return None


def run(system_name, dataset_dir, db_dir, repeat):
    meta = json.load(open(os.path.join(dataset_dir, "meta.json")))
    system = {"duckdb": DuckDB, "chdb": Chdb}[system_name](db_dir)
    log = lambda message: print(f"{system.name}: {message}", file=sys.stderr)
    probe_error = check_probe(system.percentile_probe())
    if probe_error:
        sys.exit(f"{system.name}: the percentile expression does not follow CONTRACT §4: {probe_error}")

    total = meta["latency_points"] + meta["counter_points"]
    insert = system.create_and_load(os.path.join(os.path.abspath(dataset_dir), "ch", "*.tsv"))
    started = time.perf_counter()
    insert()
    seconds = time.perf_counter() - started
    held = int(system.execute("SELECT count(*) FROM points")[0][0])
    if held != total:
        sys.exit(f"{system.name} holds {held} points, not {total}")
    started = time.perf_counter()
    system.settle()
    settle_seconds = time.perf_counter() - started
    disk = system.disk_bytes()
    log(f"{total:,} points in {seconds:.2f} s ({total / seconds:,.0f}/s), settled in {settle_seconds:.2f} s,"
        f" {disk / total:.2f} bytes/point")

    queries, failures = {}, 0
    for name, sql, read in system.queries(meta):
        times, rows = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            rows = system.execute(sql)
            times.append((time.perf_counter() - started) * 1000)
        answer = read(rows)
        exact = peers.equal(meta["expected"][name], answer)
        failures += not exact
        queries[name] = {"runs_ms": times, "answer": answer, "semantics": "exact", "query": sql,
                         "reference": "exact" if exact else "DIFFERS"}
        log(f"{name}: median {statistics.median(times):.1f} ms, {'exact' if exact else 'DIFFERS from the reference'}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump({
        "system": system.name, "version": system.version, "method": system.describe(),
        "ingest": {"seconds": seconds, "points_per_second": total / seconds, "settle_seconds": settle_seconds,
                   "disk_bytes": disk, "bytes_per_point": disk / total, "peak_rss_bytes": peak_rss},
        "queries": queries, "all_checks_passed": failures == 0,
    }, sys.stdout)
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "run" and argv[2] in ("duckdb", "chdb"):
        return run(argv[2], argv[3], argv[4], int(argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
