"""The client: one method per route of Luminate's JSON API (docs/api.md) that an application calls —
write, query, discovery, dashboards and health. Bodies are built and answers read here; the transport
sends them and turns refusals into :class:`~luminate_client.errors.LuminateError`.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from .transport import RetryEvent, RetryPolicy, Transport
from .types import DashboardSummary, DimensionValue, MetricCardinality, QueryAnswer
from .writer import BatchWriter, Timestamp, WriteResult, WriteStats, encode_point, send_batch


class Client:
    """A client of one Luminate server.

    Args:
        base_url: The server, e.g. ``"http://127.0.0.1:8080"``.
        token: A JWT sent as ``Authorization: Bearer`` (servers with ``auth.enabled``).
        timeout: Seconds each HTTP exchange may take.
        retry: When and how long to retry refusals and lost connections (:class:`RetryPolicy`).
        on_retry: Called before each retry with a :class:`RetryEvent` (to log them, say).
    """

    def __init__(
        self,
        base_url: str,
        token: Optional[str] = None,
        timeout: float = 60.0,
        retry: Optional[RetryPolicy] = None,
        on_retry: Optional[Callable[[RetryEvent], None]] = None,
    ) -> None:
        self._transport = Transport(base_url, token, timeout, retry or RetryPolicy(), on_retry)

    # Write

    def write(
        self,
        name: str,
        value: float,
        timestamp: Optional[Timestamp] = None,
        dimensions: Optional[Mapping[str, str]] = None,
    ) -> WriteResult:
        """Writes one point at once (for many, use :meth:`writer` or :meth:`write_points`)."""
        return send_batch(self._transport, [encode_point(name, value, timestamp, dimensions)])

    def write_points(
        self,
        points: Iterable[Mapping[str, Any]],
        idempotency_key: Optional[str] = None,
        use_gzip: bool = True,
        stats: Optional[WriteStats] = None,
    ) -> WriteResult:
        """Writes points given as ``{"name", "value", "timestamp"?, "dimensions"?}`` as ONE batch (at
        most 10 000 points), under ``idempotency_key`` when given (else a new key): sending the same
        batch again with the same key within 10 minutes stores nothing twice and returns the first
        answer. Returns the server's answer; raises :class:`PointsRejectedError` when every point was
        refused."""
        encoded = [
            encode_point(p["name"], p["value"], p.get("timestamp"), p.get("dimensions")) for p in points
        ]
        return send_batch(self._transport, encoded, idempotency_key, use_gzip, stats)

    def writer(self, max_points: int = 5000, max_bytes: int = 1024 * 1024, use_gzip: bool = True) -> BatchWriter:
        """A :class:`BatchWriter` that sends a batch every ``max_points`` points or ``max_bytes`` bytes
        of JSON, whichever comes first, gzip-compressed unless ``use_gzip`` is false."""
        return BatchWriter(self._transport, max_points, max_bytes, use_gzip)

    # Query

    def query(self, query: Mapping[str, Any]) -> QueryAnswer:
        """Runs a query of the JSON query language (``queryType`` ``range``, ``aggregate``, ``rate`` or
        ``listDimensionValues``) and returns its parsed answer::

            client.query({"queryType": "aggregate", "metricName": "api_latency",
                          "aggregation": "p95", "groupBy": ["customer_id"],
                          "timeRange": {"relative": "1h"}})
        """
        return self._post_json("/api/v1/query", query)  # type: ignore[no-any-return]

    # Discovery

    def metrics(self) -> List[str]:
        """The tenant's metric names, sorted."""
        return list(self._get("/api/v1/metrics")["metrics"])

    def dimensions(self, metric: str) -> List[str]:
        """The dimension keys of ``metric``, sorted; an unknown metric raises ``NOT_FOUND``."""
        return list(self._get(f"/api/v1/metrics/{_segment(metric)}/dimensions")["dimensions"])

    def dimension_values(
        self, metric: str, key: str, limit: int = 100, prefix: Optional[str] = None
    ) -> List[DimensionValue]:
        """Values of dimension ``key`` of ``metric``, by stored points descending (ties by value),
        optionally only those starting with ``prefix``; ``limit`` at most 1000."""
        params: Dict[str, Any] = {"limit": limit}
        if prefix:
            params["prefix"] = prefix
        path = f"/api/v1/metrics/{_segment(metric)}/dimensions/{_segment(key)}/values?"
        return list(self._get(path + urllib.parse.urlencode(params))["values"])

    def cardinality(self, metric: Optional[str] = None) -> List[MetricCardinality]:
        """Series per metric and distinct values per dimension key, largest first."""
        path = "/api/v1/cardinality"
        if metric is not None:
            path += "?" + urllib.parse.urlencode({"metric": metric})
        return list(self._get(path)["metrics"])

    # Dashboards

    def list_dashboards(self, tag: Optional[str] = None) -> List[DashboardSummary]:
        """Id, title, tags and version of each dashboard, by id; with ``tag``, those carrying it."""
        path = "/api/v1/dashboards"
        if tag is not None:
            path += "?" + urllib.parse.urlencode({"tag": tag})
        return list(self._get(path)["dashboards"])

    def get_dashboard(self, dashboard_id: str) -> Dict[str, Any]:
        """The dashboard's document (with its current ``version``); none raises ``NOT_FOUND``."""
        return dict(self.export_dashboard(dashboard_id)["dashboard"])

    def export_dashboard(self, dashboard_id: str) -> Dict[str, Any]:
        """The dashboard as a file, ``{"dashboard": {...}}``, which :meth:`create_dashboard` imports
        back to the same document."""
        return dict(self._get(f"/api/v1/dashboards/{_segment(dashboard_id)}"))

    def create_dashboard(self, document: Mapping[str, Any]) -> Dict[str, Any]:
        """Creates (imports) a dashboard from a file ``{"dashboard": {...}}`` or a bare document;
        returns the saved document, at ``version`` 1. An id already taken raises ``CONFLICT``."""
        answer = self._transport.request(
            "POST", "/api/v1/dashboards", _json_body(document), _JSON, idempotent=False
        )
        return dict(answer.body["dashboard"])

    def replace_dashboard(
        self, dashboard_id: str, document: Mapping[str, Any], version: Optional[int] = None
    ) -> Dict[str, Any]:
        """Replaces the dashboard, naming the ``version`` it was read at (``version`` here, else the
        document's own); returns the saved document at the next version. A stale version raises
        ``CONFLICT`` whose ``details["current_version"]`` is the version to read again."""
        body = dict(document["dashboard"]) if "dashboard" in document else dict(document)
        if version is not None:
            body["version"] = version
        answer = self._transport.request(
            "PUT", f"/api/v1/dashboards/{_segment(dashboard_id)}", _json_body(body), _JSON, idempotent=False
        )
        return dict(answer.body["dashboard"])

    def delete_dashboard(self, dashboard_id: str) -> None:
        """Deletes the dashboard; none raises ``NOT_FOUND``."""
        self._transport.request("DELETE", f"/api/v1/dashboards/{_segment(dashboard_id)}", idempotent=False)

    # Health

    def health(self) -> Dict[str, Any]:
        """The server's health (``status`` ``healthy``, ``degraded`` or ``unhealthy``). An unhealthy
        server answers ``503`` with the same body: that is returned too, not raised."""
        return dict(self._transport.request("GET", "/api/v1/health", answers=(503,)).body)

    # Plumbing

    def _get(self, path: str) -> Any:
        return self._transport.request("GET", path).body

    def _post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        # Queries only read: safe to resend after a lost answer.
        return self._transport.request("POST", path, _json_body(body), _JSON, idempotent=True).body


_JSON = {"Content-Type": "application/json"}


def _json_body(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _segment(value: str) -> str:
    """``value`` as one path segment: every byte but the unreserved ones escaped (``/`` included)."""
    return urllib.parse.quote(value, safe="")
