"""Bad input through the real server becomes a :class:`LuminateError` with the contract's code, the
server's message and the HTTP status; partly invalid writes are answered, not raised; auth refusals
keep their codes."""

from __future__ import annotations

import unittest

from luminate_client import Client, LuminateError, PointsRejectedError, WriteResult

from .server import Server, minute_ago, token


class BadInputTest(unittest.TestCase):
    server: Server
    client: Client

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server().start()
        cls.client = Client(cls.server.url)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def test_unknown_aggregation_is_invalid_query(self) -> None:
        with self.assertRaises(LuminateError) as refused:
            self.client.query({"queryType": "aggregate", "metricName": "m", "aggregation": "p42",
                               "timeRange": {"relative": "1h"}})
        error = refused.exception
        self.assertEqual((error.status, error.code), (400, "INVALID_QUERY"))
        self.assertTrue(error.message.startswith("aggregation"), error.message)

    def test_range_over_the_limit_is_query_limit_exceeded(self) -> None:
        with self.assertRaises(LuminateError) as refused:
            self.client.query({"queryType": "range", "metricName": "m", "timeRange": {"relative": "91d"}})
        self.assertEqual((refused.exception.status, refused.exception.code), (400, "QUERY_LIMIT_EXCEEDED"))

    def test_every_point_invalid_raises_with_each_point(self) -> None:
        with self.assertRaises(PointsRejectedError) as rejected:
            self.client.write_points([{"name": "9bad", "value": 1.0}, {"name": "also bad", "value": 2.0}])
        error = rejected.exception
        self.assertEqual((error.status, error.code), (400, "INVALID_METRIC_NAME"))
        self.assertEqual([(e["index"], e["code"]) for e in error.errors],
                         [(0, "INVALID_METRIC_NAME"), (1, "INVALID_METRIC_NAME")])
        self.assertIsInstance(error, LuminateError)

    def test_some_points_invalid_are_answered_with_the_rest_stored(self) -> None:
        t = minute_ago(1)
        result = self.client.write_points([
            {"name": "partial", "value": 1.0, "timestamp": t},
            {"name": "partial", "value": 2.0, "timestamp": t, "dimensions": {"_tenant_id": "x"}},
            {"name": "partial", "value": 3.0, "timestamp": 0},
        ])
        self.assertEqual((result.accepted, result.rejected), (1, 2))
        self.assertEqual([(e["index"], e["metric"], e["code"]) for e in result.errors],
                         [(1, "partial", "INVALID_DIMENSION"), (2, "partial", "INVALID_TIMESTAMP")])
        self.assertIsInstance(result, WriteResult)

    def test_non_finite_value_is_refused_before_sending(self) -> None:
        with self.assertRaises(ValueError):
            self.client.write("m", float("nan"))
        with self.assertRaises(ValueError):
            self.client.write("m", True)  # type: ignore[arg-type]

    def test_batch_over_ten_thousand_points_is_refused_by_the_writer(self) -> None:
        with self.assertRaises(ValueError):
            self.client.writer(max_points=10_001)


class AuthTest(unittest.TestCase):
    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(auth=True).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def test_no_token_is_unauthorized(self) -> None:
        with self.assertRaises(LuminateError) as refused:
            Client(self.server.url).metrics()
        self.assertEqual((refused.exception.status, refused.exception.code), (401, "UNAUTHORIZED"))

    def test_missing_scope_is_forbidden_naming_it(self) -> None:
        reader = Client(self.server.url, token=token("acme", ["read"]))
        with self.assertRaises(LuminateError) as refused:
            reader.write("m", 1.0)
        error = refused.exception
        self.assertEqual((error.status, error.code, error.details["required_scope"]), (403, "FORBIDDEN", "write"))

    def test_a_token_scopes_reads_and_writes_to_its_tenant(self) -> None:
        acme = Client(self.server.url, token=token("acme", ["read", "write"]))
        globex = Client(self.server.url, token=token("globex", ["read", "write"]))
        acme.write("acme_only", 1.0, minute_ago(1))
        self.assertEqual(acme.metrics(), ["acme_only"])
        self.assertEqual(globex.metrics(), [])


if __name__ == "__main__":
    unittest.main()
