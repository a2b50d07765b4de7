#!/usr/bin/env python3
"""ClickHouse's HTTP interface in front of chDB (ClickHouse's engine in-process), for the backend's tests.

No modern clickhouse-server package is reachable where Luminate's CI runs, but chDB embeds the same SQL
engine (26.x). This front answers what the ClickHouse backend sends (`src/transport.rs`) the way
clickhouse-server does, so that the backend's suites can run on a modern engine and its modern schema
path (LowCardinality, skip indexes):

- `POST /?query=…` with the SQL in the URL, in the body, or both (URL part first, as the server joins
  them); an `INSERT … FORMAT <fmt>` takes its rows from the body (RowBinary or any other format).
- URL parameters other than the HTTP interface's own (`query`, `query_id`, `wait_end_of_query`,
  `default_format`, `user`, `password`, `database`) are settings for that one statement. `readonly` is
  enforced here (chDB's session cannot drop it again once set); every other setting is applied with `SET`
  before the statement and restored after it.
- Credentials from `X-ClickHouse-User` / `X-ClickHouse-Key` (or `user` / `password` parameters), checked
  against the users given on the command line, refused with code 516 as the server does.
- Answers carry `X-ClickHouse-Query-Id`, `X-ClickHouse-Format` and `X-ClickHouse-Summary`; errors are
  ClickHouse's text (`Code: N. DB::Exception: … (NAME)`), the HTTP status the server gives that code, and
  `X-ClickHouse-Exception-Code`.

What it cannot stand in for (the tests that need these keep running on a real server only): statements
run one at a time, so `KILL QUERY` never finds a running query and a client going away does not cancel
one; there are no HTTP sessions, no `remote_servers` (cluster / `Distributed` tables between servers),
and no TCP or interserver ports.

Usage: chdb_server.py --port P --data DIR [--user NAME:PASSWORD]... (standard library + chdb only).
"""

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

try:
    from chdb import session as chdb_session
except ImportError as e:  # the tests fail with this in the server log rather than skip
    sys.exit(f"chdb_server.py: the chdb package is not importable ({e}); install it with `pip install chdb`")

# URL parameters of the HTTP interface itself, not settings.
INTERFACE_PARAMS = {"query", "query_id", "wait_end_of_query", "default_format", "user", "password", "database"}
# The HTTP status clickhouse-server answers for an exception code (HTTPHandler's mapping, the codes the
# backend can meet); anything else is 500.
STATUS_OF_CODE = {
    27: 400, 36: 400, 38: 400, 62: 400, 69: 400, 70: 400, 115: 400,  # parse / argument errors
    60: 404, 81: 404,  # unknown table / database
    164: 403, 497: 403,  # readonly, access denied
    192: 401, 193: 401, 194: 401, 516: 401,  # unknown user, wrong password, authentication failed
    159: 500,  # timeout exceeded
    101: 400, 306: 413,  # unexpected packet, query too large (the server's closest status)
}
# Statements slower than this are logged (with their start), to see where a test spends its time.
SLOW_SECONDS = 0.5
CODE_RE = re.compile(r"Code:\s*(\d+)")
# `INSERT … FORMAT Name` with its data in the body.
INSERT_FORMAT_RE = re.compile(r"\A\s*INSERT\b.*\bFORMAT\s+(\w+)\s*;?\s*\Z", re.IGNORECASE | re.DOTALL)
READ_ONLY_RE = re.compile(r"\A\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.IGNORECASE)


class Engine:
    """One persistent chDB session; statements run one at a time (chDB's session is not re-entrant)."""

    def __init__(self, data_dir):
        self.session = chdb_session.Session(data_dir)
        self.lock = threading.Lock()
        self.inserts = tempfile.mkdtemp(prefix="inserts-", dir=data_dir)
        self.defaults = {}

    def default_of(self, name):
        if name not in self.defaults:
            quoted = name.replace("\\", "\\\\").replace("'", "\\'")
            rows = self.session.query(f"SELECT value FROM system.settings WHERE name = '{quoted}'", "JSONCompact")
            data = json.loads(rows.bytes() or b'{"data": []}')["data"]
            if not data:
                raise EngineError(115, f"Setting {name} is neither a builtin setting nor started with the prefix 'custom_' registered for user-defined settings. (UNKNOWN_SETTING)")
            self.defaults[name] = data[0][0]
        return self.defaults[name]

    def run(self, sql, data, settings, default_format):
        """The answer's bytes of one statement (with `data` as an insert's rows)."""
        with self.lock:
            applied = []
            try:
                for name, value in settings:
                    default = self.default_of(name)
                    self.session.query(f"SET {name} = {literal(value)}")
                    applied.append((name, default))
                if data is not None:
                    return self.insert(sql, data)
                return self.session.query(sql, default_format).bytes()
            finally:
                for name, default in applied:
                    self.session.query(f"SET {name} = {literal(default)}")

    def insert(self, sql, data):
        match = INSERT_FORMAT_RE.match(sql)
        if not match:
            raise EngineError(62, "Syntax error: an insert with a body must end with FORMAT <name>. (SYNTAX_ERROR)")
        path = os.path.join(self.inserts, f"{uuid.uuid4().hex}.bin")
        with open(path, "wb") as f:
            f.write(data)
        try:
            head = sql[: match.start(1)].rstrip()
            head = head[: -len("FORMAT")].rstrip()
            self.session.query(f"{head} FROM INFILE '{path}' FORMAT {match.group(1)}")
            return b""
        finally:
            os.unlink(path)


class EngineError(Exception):
    def __init__(self, code, message):
        super().__init__(f"Code: {code}. DB::Exception: {message}")
        self.code = code


def literal(value):
    """A setting's value as SQL: numbers as they are, anything else quoted."""
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, 40 ms per request on keep-alive connections.
    disable_nagle_algorithm = True
    server_version = "chdb-adapter"

    def log_message(self, format, *args):  # one line per error only (see `fail`)
        pass

    def do_GET(self):
        self.handle_query(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.handle_query(self.rfile.read(length) if length else b"")

    def handle_query(self, body):
        url = urlsplit(self.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        named = dict(params)
        query_id = named.get("query_id") or str(uuid.uuid4())
        if url.path in ("/ping", "/") and not named.get("query") and not body:
            return self.answer(200, b"Ok.\n", query_id, "TabSeparated")
        user = self.headers.get("X-ClickHouse-User") or named.get("user") or "default"
        key = self.headers.get("X-ClickHouse-Key") or named.get("password") or ""
        if self.server.users.get(user) != key:
            return self.fail(query_id, 516, f"{user}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")
        url_sql = named.get("query", "")
        if url_sql and body and INSERT_FORMAT_RE.match(url_sql):
            sql, data = url_sql, body
        else:
            sql = "\n".join(part for part in (url_sql, body.decode("utf-8", "replace")) if part)
            data = None
            if INSERT_FORMAT_RE.match(sql):
                data = b""
        settings = [(k, v) for k, v in params if k not in INTERFACE_PARAMS]
        readonly = [v for k, v in settings if k == "readonly"]
        settings = [(k, v) for k, v in settings if k != "readonly"]
        if readonly and readonly[-1] not in ("", "0") and not READ_ONLY_RE.match(sql):
            return self.fail(query_id, 164, "Cannot execute query in readonly mode. (READONLY)")
        default_format = named.get("default_format", "TabSeparated")
        started = time.monotonic()
        try:
            out = self.server.engine.run(sql, data, settings, default_format)
        except EngineError as e:
            return self.fail(query_id, e.code, str(e).split("DB::Exception: ", 1)[1])
        except Exception as e:  # chDB's errors carry ClickHouse's own text and code
            text = str(e).strip()
            match = CODE_RE.search(text)
            code = int(match.group(1)) if match else 1001
            message = text.split("DB::Exception: ", 1)[1] if "DB::Exception: " in text else text
            return self.fail(query_id, code, message)
        took = time.monotonic() - started
        if took > SLOW_SECONDS:
            print(f"query {query_id}: slow ({took:.2f} s): {sql[:300]!r}", file=sys.stderr, flush=True)
        fmt = re.search(r"\bFORMAT\s+(\w+)\s*;?\s*\Z", sql, re.IGNORECASE)
        self.answer(200, out, query_id, fmt.group(1) if fmt and data is None else default_format)

    def fail(self, query_id, code, message):
        text = f"Code: {code}. DB::Exception: {message}\n".encode()
        print(f"query {query_id}: code {code}: {message}", file=sys.stderr, flush=True)
        self.answer(STATUS_OF_CODE.get(code, 500), text, query_id, "TabSeparated", {"X-ClickHouse-Exception-Code": str(code)})

    def answer(self, status, body, query_id, fmt, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8" if status != 200 or fmt.startswith("Tab") else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Format", fmt)
        self.send_header("X-ClickHouse-Timezone", "UTC")
        self.send_header("X-ClickHouse-Summary", json.dumps({"read_rows": "0", "written_rows": "0"}))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", required=True, help="directory of chDB's data (created if missing)")
    parser.add_argument("--user", action="append", default=[], help="NAME:PASSWORD, besides default with no password")
    args = parser.parse_args()
    os.environ.setdefault("TZ", "UTC")
    os.makedirs(args.data, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.engine = Engine(args.data)
    server.users = {"default": ""}
    for spec in args.user:
        name, _, password = spec.partition(":")
        server.users[name] = password
    print(f"chdb_server.py: listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
