"""Writes through the real server: the query answer of what was written, batching by count and by
size, gzip on the wire (checked on the server's own request-size histogram), one key stored once, and
a batch over the server's limits split until it fits."""

from __future__ import annotations

import datetime
import json
import unittest
from typing import Any, Dict, List

from luminate_client import Client, WriteResult, WriteStats

from .server import Server, minute_ago


def latency_points(t0: int, n: int, metric: str = "api_latency") -> List[Dict[str, Any]]:
    """``n`` points one second apart, customers cust_0..cust_3 in turn, value ``i``."""
    return [
        {"name": metric, "timestamp": t0 + i * 1000, "value": float(i),
         "dimensions": {"customer_id": f"cust_{i % 4}", "endpoint": "/api/v1/orders"}}
        for i in range(n)
    ]


def count(client: Client, metric: str) -> int:
    """Points stored of ``metric`` over the last day."""
    answer = client.query({"queryType": "aggregate", "metricName": metric, "aggregation": "count",
                           "timeRange": {"relative": "1d"}})
    return int(answer["results"][0]["count"]) if answer["results"] else 0


class WriteTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = Server().start()
        self.addCleanup(self.server.stop)
        self.client = Client(self.server.url)

    def write_requests(self) -> float:
        return self.server.sample('luminate_write_requests_total{tenant="default",outcome="accepted"}')

    def test_written_points_answer_the_query_exactly(self) -> None:
        t0 = minute_ago(10)
        result = self.client.write_points(latency_points(t0, 8))
        self.assertEqual(result, WriteResult(accepted=8, rejected=0, errors=[]))
        at = datetime.datetime.fromtimestamp((t0 + 60_000) / 1000, tz=datetime.timezone.utc)
        self.client.write("api_latency", 100.0, at, {"customer_id": "cust_9"})

        answer = self.client.query({"queryType": "aggregate", "metricName": "api_latency",
                                    "aggregation": "sum", "groupBy": ["customer_id"],
                                    "timeRange": {"start": t0, "end": t0 + 120_000}})
        self.assertEqual(answer["queryType"], "aggregate")
        self.assertFalse(answer["truncated"])
        self.assertEqual(
            [(r["groupKey"], r["value"], r["count"]) for r in answer["results"]],
            [({"customer_id": "cust_9"}, 100.0, 1), ({"customer_id": "cust_3"}, 10.0, 2),
             ({"customer_id": "cust_2"}, 8.0, 2), ({"customer_id": "cust_1"}, 6.0, 2),
             ({"customer_id": "cust_0"}, 4.0, 2)],
        )
        rows = self.client.query({"queryType": "range", "metricName": "api_latency",
                                  "filters": {"customer_id": ["cust_1", "cust_9"]},
                                  "timeRange": {"start": t0, "end": t0 + 120_000}})["results"]
        self.assertEqual(
            rows,
            [{"timestamp": t0 + 1000, "value": 1.0,
              "dimensions": {"customer_id": "cust_1", "endpoint": "/api/v1/orders"}},
             {"timestamp": t0 + 5000, "value": 5.0,
              "dimensions": {"customer_id": "cust_1", "endpoint": "/api/v1/orders"}},
             {"timestamp": t0 + 60_000, "value": 100.0, "dimensions": {"customer_id": "cust_9"}}],
        )

    def test_writer_sends_a_batch_every_max_points_gzip_compressed(self) -> None:
        t0 = minute_ago(30)
        with self.client.writer(max_points=100) as writer:
            for p in latency_points(t0, 250):
                writer.add(p["name"], p["value"], p["timestamp"], p["dimensions"])
            # Two full batches went out as the points came; the last 50 wait for the block's end.
            self.assertEqual(writer.stats.batches, 2)
        self.assertEqual(writer.result, WriteResult(accepted=250, rejected=0, errors=[]))
        self.assertEqual((writer.stats.batches, writer.stats.points, writer.stats.gzipped), (3, 250, 3))
        self.assertEqual(count(self.client, "api_latency"), 250)
        # The server saw three write requests, whose bodies as sent (before inflating) are the
        # compressed bytes: the whole JSON was far larger.
        self.assertEqual(self.write_requests(), 3)
        received = self.server.sample(
            'luminate_http_request_size_bytes_sum{method="POST",route="/api/v1/write"}'
        )
        self.assertEqual(received, writer.stats.sent_bytes)
        self.assertLess(received * 5, writer.stats.json_bytes)

    def test_writer_keeps_each_batch_under_max_bytes(self) -> None:
        t0 = minute_ago(30)
        max_bytes = 4000
        # Every point encodes to the same length, so the batch sizes are known in advance.
        points: List[Dict[str, Any]] = [
            {"name": "sized", "timestamp": t0 + i * 1000, "value": 1000 + i, "dimensions": {"k": "v"}}
            for i in range(100)
        ]
        encoded = len(json.dumps(points[0], separators=(",", ":")))
        per_batch = (max_bytes - len('{"metrics":[]}') + 1) // (encoded + 1)
        with self.client.writer(max_points=10_000, max_bytes=max_bytes, use_gzip=False) as writer:
            for p in points:
                writer.add(p["name"], p["value"], p["timestamp"], p["dimensions"])
        expected_batches = -(-100 // per_batch)
        self.assertEqual((writer.stats.batches, writer.stats.gzipped), (expected_batches, 0))
        self.assertEqual(writer.stats.json_bytes, writer.stats.sent_bytes)
        self.assertLessEqual(writer.stats.json_bytes, expected_batches * max_bytes)
        self.assertEqual(self.write_requests(), expected_batches)
        self.assertEqual(count(self.client, "sized"), 100)

    def test_one_idempotency_key_sent_twice_is_stored_once(self) -> None:
        points = latency_points(minute_ago(5), 3)
        first = self.client.write_points(points, idempotency_key="batch-0001")
        again = self.client.write_points(points, idempotency_key="batch-0001")
        self.assertEqual(first, WriteResult(accepted=3, rejected=0, errors=[]))
        self.assertEqual(again, first)
        self.assertEqual(count(self.client, "api_latency"), 3)
        # Another key is another batch: points are never deduplicated otherwise.
        self.client.write_points(points, idempotency_key="batch-0002")
        self.assertEqual(count(self.client, "api_latency"), 6)


class SplitTest(unittest.TestCase):
    """A server whose limits are below the writer's: its refusals split the batch until it fits."""

    def test_batch_over_max_batch_size_is_split_in_halves(self) -> None:
        with Server({"LUMINATE__BATCH_WRITE__MAX_BATCH_SIZE": "50"}) as server:
            client = Client(server.url)
            stats = WriteStats()
            result = client.write_points(latency_points(minute_ago(5), 200), stats=stats)
            self.assertEqual(result.accepted, 200)
            # 200 refused, two 100s refused, four 50s stored.
            self.assertEqual((stats.batches, stats.points), (4, 200))
            self.assertEqual(count(client, "api_latency"), 200)

    def test_body_over_max_request_size_is_split_until_it_fits(self) -> None:
        with Server({"LUMINATE__BATCH_WRITE__MAX_REQUEST_SIZE_BYTES": "8192"}) as server:
            client = Client(server.url)
            stats = WriteStats()
            points = latency_points(minute_ago(10), 400)
            result = client.write_points(points, stats=stats)
            self.assertEqual(result.accepted, 400)
            self.assertEqual(stats.points, 400)
            self.assertGreater(stats.batches, 1)
            # Each stored batch's JSON fits the server's limit (counted after inflating).
            self.assertLessEqual(stats.json_bytes, stats.batches * 8192)
            self.assertEqual(count(client, "api_latency"), 400)


if __name__ == "__main__":
    unittest.main()
