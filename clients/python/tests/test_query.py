"""Queries and discovery through the real server, over one small data set whose answers are known."""

from __future__ import annotations

import unittest

from luminate_client import Client, LuminateError

from .server import Server, minute_ago


class QueryTest(unittest.TestCase):
    """``api_latency``: cust_a 6 points (1..6) on /orders, cust_b 3 points (10, 20, 30) on /users,
    cust_c 1 point (7) on /orders, one per second from t0. ``requests_total``: a counter of cust_a
    rising by 60 a minute over three minutes."""

    server: Server
    client: Client
    t0: int

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server().start()
        cls.client = Client(cls.server.url)
        cls.t0 = t0 = minute_ago(20)
        points = []
        for i, value in enumerate([1, 2, 3, 4, 5, 6]):
            points.append({"name": "api_latency", "timestamp": t0 + i * 1000, "value": value,
                           "dimensions": {"customer_id": "cust_a", "endpoint": "/orders"}})
        for i, value in enumerate([10, 20, 30]):
            points.append({"name": "api_latency", "timestamp": t0 + i * 1000, "value": value,
                           "dimensions": {"customer_id": "cust_b", "endpoint": "/users"}})
        points.append({"name": "api_latency", "timestamp": t0, "value": 7,
                       "dimensions": {"customer_id": "cust_c", "endpoint": "/orders"}})
        for minute in range(4):
            points.append({"name": "requests_total", "timestamp": t0 + minute * 60_000, "value": 60 * minute,
                           "dimensions": {"customer_id": "cust_a"}})
        assert cls.client.write_points(points).accepted == 14

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def range_of(self, minutes: int) -> dict:
        return {"start": self.t0, "end": self.t0 + minutes * 60_000}

    def test_aggregate_p95_by_customer(self) -> None:
        answer = self.client.query({"queryType": "aggregate", "metricName": "api_latency",
                                    "aggregation": "p95", "groupBy": ["customer_id"],
                                    "timeRange": self.range_of(1)})
        self.assertEqual(
            [(r["groupKey"]["customer_id"], r["value"], r["count"]) for r in answer["results"]],
            [("cust_b", 30.0, 3), ("cust_c", 7.0, 1), ("cust_a", 6.0, 6)],
        )

    def test_aggregate_with_interval_and_filter_list(self) -> None:
        answer = self.client.query({"queryType": "aggregate", "metricName": "api_latency",
                                    "aggregation": "max", "interval": "2s",
                                    "filters": {"customer_id": ["cust_a", "cust_c"]},
                                    "timeRange": self.range_of(1)})
        (group,) = answer["results"]
        self.assertEqual((group["groupKey"], group["value"], group["count"]), ({}, 7.0, 7))
        t0 = self.t0
        self.assertEqual(group["points"], [
            {"timestamp": t0, "value": 7.0, "count": 3},
            {"timestamp": t0 + 2000, "value": 4.0, "count": 2},
            {"timestamp": t0 + 4000, "value": 6.0, "count": 2},
        ])

    def test_rate_per_minute(self) -> None:
        answer = self.client.query({"queryType": "rate", "metricName": "requests_total",
                                    "interval": "1m", "timeRange": self.range_of(4)})
        self.assertEqual(answer["results"], [{"groupKey": {}, "points": [
            {"timestamp": self.t0 + m * 60_000, "rate": 1.0} for m in (1, 2, 3)
        ]}])

    def test_range_limit_truncates(self) -> None:
        answer = self.client.query({"queryType": "range", "metricName": "api_latency", "limit": 2,
                                    "filters": {"endpoint": "/users"}, "timeRange": self.range_of(1)})
        self.assertTrue(answer["truncated"])
        self.assertEqual([r["value"] for r in answer["results"]], [10.0, 20.0])

    def test_list_dimension_values_query(self) -> None:
        answer = self.client.query({"queryType": "listDimensionValues", "metricName": "api_latency",
                                    "dimension": "customer_id", "limit": 2})
        self.assertEqual(answer["results"], [{"value": "cust_a", "points": 6}, {"value": "cust_b", "points": 3}])
        self.assertTrue(answer["truncated"])

    def test_discovery_of_metrics_keys_and_values(self) -> None:
        self.assertEqual(self.client.metrics(), ["api_latency", "requests_total"])
        self.assertEqual(self.client.dimensions("api_latency"), ["customer_id", "endpoint"])
        self.assertEqual(
            self.client.dimension_values("api_latency", "customer_id"),
            [{"value": "cust_a", "points": 6}, {"value": "cust_b", "points": 3}, {"value": "cust_c", "points": 1}],
        )
        self.assertEqual(self.client.dimension_values("api_latency", "endpoint", limit=1),
                         [{"value": "/orders", "points": 7}])
        self.assertEqual(self.client.dimension_values("api_latency", "customer_id", prefix="cust_c"),
                         [{"value": "cust_c", "points": 1}])

    def test_cardinality(self) -> None:
        self.assertEqual(self.client.cardinality("api_latency"), [{
            "metric": "api_latency", "series": 3,
            "dimensions": [{"key": "customer_id", "distinct_values": 3}, {"key": "endpoint", "distinct_values": 2}],
        }])
        self.assertEqual([m["metric"] for m in self.client.cardinality()], ["api_latency", "requests_total"])

    def test_unknown_metric_in_discovery_is_not_found(self) -> None:
        with self.assertRaises(LuminateError) as missing:
            self.client.dimensions("no_such_metric")
        self.assertEqual((missing.exception.status, missing.exception.code), (404, "NOT_FOUND"))

    def test_health(self) -> None:
        health = self.client.health()
        self.assertEqual((health["status"], health["storage"]["backend"]), ("healthy", "embedded"))


if __name__ == "__main__":
    unittest.main()
