"""A thin client of Luminate's HTTP API, standard library only: batched, gzip-compressed writes that
retry safely (an ``Idempotency-Key`` per batch), queries, discovery and dashboards.

    from luminate_client import Client

    client = Client("http://127.0.0.1:8080")
    with client.writer() as w:
        w.add("api_latency", 12.5, dimensions={"customer_id": "cust_1"})
    print(client.query({"queryType": "aggregate", "metricName": "api_latency",
                        "aggregation": "avg", "timeRange": {"relative": "1h"}}))
"""

from .client import Client
from .errors import LuminateConnectionError, LuminateError, PointsRejectedError
from .transport import RetryEvent, RetryPolicy
from .writer import BatchWriter, WriteResult, WriteStats

__all__ = [
    "BatchWriter",
    "Client",
    "LuminateConnectionError",
    "LuminateError",
    "PointsRejectedError",
    "RetryEvent",
    "RetryPolicy",
    "WriteResult",
    "WriteStats",
]
__version__ = "0.1.0"
