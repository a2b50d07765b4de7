"""Starts the real ``luminate`` binary for the tests: ``$LUMINATE_BIN serve`` over a temporary data
directory on a loopback port, its address read from its ``luminate listening on`` line. The server's
output is kept and shown when a start fails. Without ``LUMINATE_BIN`` every test fails (never skips):
CI runs these through ``crates/luminate/tests/clients.rs``, which sets it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from typing import Dict, List, Optional

LISTEN_PREFIX = "luminate listening on "
START_TIMEOUT = 30.0
JWT_SECRET = "client-tests-secret-of-at-least-32-bytes"


def binary() -> str:
    """The binary under test, from ``LUMINATE_BIN``."""
    path = os.environ.get("LUMINATE_BIN")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(
            "LUMINATE_BIN must name the luminate binary (cargo test -p luminate --test clients sets it); "
            f"got {path!r}"
        )
    return path


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def minute_ago(minutes: int) -> int:
    """The start of the minute ``minutes`` before the current one, in Unix ms (within the write window)."""
    return (now_ms() // 60_000 - minutes) * 60_000


def hs256(claims: Dict[str, object]) -> str:
    """A JWT signed with :data:`JWT_SECRET`."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps(claims).encode())
    signature = hmac.new(JWT_SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


def token(tenant: str, scopes: List[str]) -> str:
    """A token for ``tenant`` with ``scopes``, valid for an hour."""
    now = int(time.time())
    return hs256({"tenant_id": tenant, "scopes": scopes, "iat": now, "exp": now + 3600})


class Server:
    """A running ``luminate serve``; stop it with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, env: Optional[Dict[str, str]] = None, port: int = 0, auth: bool = False) -> None:
        self._dir = tempfile.mkdtemp(prefix="luminate-client-test-")
        self.data_dir = os.path.join(self._dir, "data")
        self.output: List[str] = []
        self.port = port
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LUMINATE")}
        environment.pop("RUST_LOG", None)
        # Side by side with other test servers: no fixed gRPC port, no disk-space floor.
        environment.update(
            {
                "LUMINATE_OTLP_GRPC_PORT": "0",
                "LUMINATE_HEALTH_MIN_FREE_DISK_BYTES": "0",
                "LUMINATE_HEALTH_MIN_FREE_DISK_RATIO": "0",
            }
        )
        if auth:
            environment.update({"LUMINATE_AUTH_ENABLED": "true", "LUMINATE_AUTH_JWT_SECRET": JWT_SECRET})
        environment.update(env or {})
        self._environment = environment
        self._process: Optional[subprocess.Popen[str]] = None
        self.url = ""

    def start(self) -> "Server":
        """Starts the binary and waits until it listens."""
        listen = f"127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [binary(), "serve", "--data-dir", self.data_dir, "--listen", listen],
            env=self._environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        listening = threading.Event()

        def collect() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                line = line.rstrip("\n")
                self.output.append(line)
                if line.startswith(LISTEN_PREFIX):
                    address = line[len(LISTEN_PREFIX) :].strip()
                    self.url = address if address.startswith("http") else f"http://{address}"
                    listening.set()

        self._reader = threading.Thread(target=collect, daemon=True)
        self._reader.start()
        if not listening.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError("luminate did not start; output:\n" + "\n".join(self.output))
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; removes the data directory."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._reader.join(5)  # the output's end follows the exit
            self._process.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def exposition(self) -> str:
        """The self-metrics (``GET /metrics``), as text."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            return str(response.read().decode())

    def sample(self, series: str) -> float:
        """The value of one sample of the exposition, written in full (``name{label="v",...}``); 0 when
        absent (a counter nothing has touched yet)."""
        pattern = re.compile(re.escape(series) + r" (\S+)$")
        for line in self.exposition().splitlines():
            found = pattern.match(line)
            if found:
                return float(found.group(1))
        return 0.0
