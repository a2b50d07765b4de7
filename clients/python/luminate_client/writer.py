"""Points on the wire and the batches that carry them to ``POST /api/v1/write``.

:class:`BatchWriter` buffers points, already encoded, and sends a batch when it reaches
``max_points`` or ``max_bytes`` (and on :meth:`BatchWriter.flush` / leaving its ``with`` block). Each
batch is gzip-compressed when it is worth it and carries an ``Idempotency-Key`` of its own, kept across
retries, so a batch retried after a lost answer is stored once. A batch the server finds too large
(``413 PAYLOAD_TOO_LARGE`` or ``400 BATCH_TOO_LARGE``: its limits are lower than the writer's) is split
in two halves, each with a key derived from the batch's, and each half sent again.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from .errors import LuminateError, PointsRejectedError
from .transport import Transport, error_of

#: The server's default limits (``batch_write.max_batch_size``, ``batch_write.max_request_size_bytes``):
#: a batch never exceeds them.
SERVER_MAX_POINTS = 10_000
SERVER_MAX_BYTES = 10 * 1024 * 1024
#: ``{"metrics":[]}``: what a body holds besides its points and the commas between them.
ENVELOPE_BYTES = len(b'{"metrics":[]}')
#: Bodies smaller than this are sent as they are: gzip saves nothing worth its time on them.
GZIP_MIN_BYTES = 1024

Timestamp = Union[int, str, _dt.datetime]
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def now_ms() -> int:
    """Now, in Unix milliseconds."""
    return time.time_ns() // 1_000_000


def encode_point(
    name: str,
    value: float,
    timestamp: Optional[Timestamp] = None,
    dimensions: Optional[Mapping[str, str]] = None,
) -> bytes:
    """One point as the write route reads it: ``{"name", "timestamp", "value", "dimensions"}``.

    ``timestamp`` is Unix milliseconds (``int``), an aware :class:`datetime.datetime`, or an RFC 3339
    string passed through; ``None`` is now. A value that is not a finite number raises ``ValueError``
    here, since JSON cannot carry NaN or infinities and the server would refuse the point anyway.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"point {name!r}: value must be a finite number, got {value!r}")
    if timestamp is None:
        ts: Union[int, str] = now_ms()
    elif isinstance(timestamp, _dt.datetime):
        if timestamp.tzinfo is None:
            raise ValueError(f"point {name!r}: a datetime timestamp needs a time zone")
        # Integer arithmetic: a float of seconds times 1000 can land a millisecond short.
        ts = (timestamp - _EPOCH) // _dt.timedelta(milliseconds=1)
    else:
        ts = timestamp
    point = {"name": name, "timestamp": ts, "value": value, "dimensions": dict(dimensions or {})}
    return json.dumps(point, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class WriteResult:
    """What the server answered for the points sent (summed over batches by :class:`BatchWriter`).

    Attributes:
        accepted: Points stored.
        rejected: Points refused one by one (a ``207`` answer).
        errors: The refused points, as the server listed them: ``{"index", "metric", "code", "error"}``,
            ``index`` counting from 0 in the batch that carried it.
    """

    accepted: int = 0
    rejected: int = 0
    errors: List[Dict[str, Any]] = field(default_factory=list)

    def add(self, other: "WriteResult") -> None:
        """Adds another batch's answer."""
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.errors.extend(other.errors)


@dataclass
class WriteStats:
    """What a writer sent, for the curious (and for tests that check batching and compression).

    Attributes:
        batches: Batches the server answered (a split batch counts each half).
        points: Points in those batches.
        json_bytes: Bytes of their JSON bodies.
        sent_bytes: Bytes sent for them (after gzip, when used).
        gzipped: Batches sent gzip-compressed.
    """

    batches: int = 0
    points: int = 0
    json_bytes: int = 0
    sent_bytes: int = 0
    gzipped: int = 0


def send_batch(
    transport: Transport,
    points: List[bytes],
    key: Optional[str] = None,
    use_gzip: bool = True,
    stats: Optional[WriteStats] = None,
) -> WriteResult:
    """Sends already encoded points as one batch under ``key`` (a new one when ``None``).

    Returns the answer of a ``200`` or ``207``; raises :class:`PointsRejectedError` when every point was
    refused and :class:`LuminateError` for any other refusal, after the transport's retries. A batch
    over the server's limits is split (see the module's description).
    """
    key = key if key is not None else uuid.uuid4().hex
    body = b'{"metrics":[' + b",".join(points) + b"]}"
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    payload = body
    if use_gzip and len(body) >= GZIP_MIN_BYTES:
        payload = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"

    def split() -> WriteResult:
        half = len(points) // 2
        result = send_batch(transport, points[:half], f"{key}.0", use_gzip, stats)
        result.add(send_batch(transport, points[half:], f"{key}.1", use_gzip, stats))
        return result

    try:
        answer = transport.request("POST", "/api/v1/write", payload, headers, answers=(400,))
    except LuminateError as e:
        if e.code == "PAYLOAD_TOO_LARGE" and len(points) > 1:
            return split()
        raise
    reply = answer.body
    # A 400 in the write's own format means every point was invalid; any other 400 is an error.
    all_rejected = isinstance(reply, dict) and "errors" in reply and "error" not in reply
    if answer.status == 400 and not all_rejected:
        error = error_of(answer)
        if error.code == "BATCH_TOO_LARGE" and len(points) > 1:
            return split()
        raise error
    if stats is not None:
        stats.batches += 1
        stats.points += len(points)
        stats.json_bytes += len(body)
        stats.sent_bytes += len(payload)
        stats.gzipped += payload is not body
    if answer.status == 400:
        raise PointsRejectedError(list(reply["errors"]))
    return WriteResult(int(reply["accepted"]), int(reply["rejected"]), list(reply["errors"]))


class BatchWriter:
    """Buffers points and writes them in batches; use it as a context manager so the last points are
    sent::

        with client.writer(max_points=5000) as w:
            w.add("api_latency", 12.5, dimensions={"customer_id": "cust_1"})

    Not thread-safe: give each thread its own writer.

    Attributes:
        result: The server's answers, summed over every batch sent.
        stats: Batches and bytes sent.
    """

    def __init__(
        self,
        transport: Transport,
        max_points: int = 5000,
        max_bytes: int = 1024 * 1024,
        use_gzip: bool = True,
    ) -> None:
        if not 1 <= max_points <= SERVER_MAX_POINTS:
            raise ValueError(f"max_points must be 1-{SERVER_MAX_POINTS}, got {max_points}")
        if not 1 <= max_bytes <= SERVER_MAX_BYTES:
            raise ValueError(f"max_bytes must be 1-{SERVER_MAX_BYTES}, got {max_bytes}")
        self._transport = transport
        self.max_points = max_points
        self.max_bytes = max_bytes
        self.use_gzip = use_gzip
        self._buffer: List[bytes] = []
        # The size of the body the buffered points would make: the envelope, the points, the commas.
        self._body_bytes = ENVELOPE_BYTES
        self.result = WriteResult()
        self.stats = WriteStats()

    def add(
        self,
        name: str,
        value: float,
        timestamp: Optional[Timestamp] = None,
        dimensions: Optional[Mapping[str, str]] = None,
    ) -> None:
        """Buffers one point (see :func:`encode_point`), sending the buffer first when the point would
        take its body past ``max_bytes``, and after when it holds ``max_points``. A point larger than
        ``max_bytes`` by itself goes alone."""
        point = encode_point(name, value, timestamp, dimensions)
        if self._buffer and self._body_bytes + 1 + len(point) > self.max_bytes:
            self.flush()
        self._body_bytes += len(point) + (1 if self._buffer else 0)
        self._buffer.append(point)
        if len(self._buffer) >= self.max_points:
            self.flush()

    def flush(self) -> None:
        """Sends what is buffered as one batch (nothing when empty). On an error the batch leaves the
        buffer and the error is raised: the server refused it, or retries ran out without an answer."""
        if not self._buffer:
            return
        points, self._buffer, self._body_bytes = self._buffer, [], ENVELOPE_BYTES
        self.result.add(send_batch(self._transport, points, None, self.use_gzip, self.stats))

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # On an exception in the block the buffered points are still sent: they were added before it.
        self.flush()
