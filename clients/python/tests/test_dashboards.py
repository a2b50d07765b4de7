"""A dashboard's life through the real server: create, list, get, replace naming the version read, a
stale replace refused 409, export, delete, and the export imported back to the same document."""

from __future__ import annotations

import copy
import unittest
from typing import Any, Dict

from luminate_client import Client, LuminateError

from .server import Server

DOCUMENT: Dict[str, Any] = {
    "id": "customer_overview",
    "title": "Customer overview",
    "tags": ["customers", "latency"],
    "timeRange": {"relative": "6h"},
    "variables": [{"name": "customer", "type": "custom", "options": ["cust_1", "cust_2"], "default": "cust_1"}],
    "panels": [{
        "id": "p95",
        "title": "p95 latency",
        "type": "timeseries",
        "gridPosition": {"x": 0, "y": 0, "w": 12, "h": 6},
        "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                  "filters": {"customer_id": "$customer"}},
    }],
}


class DashboardTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = Server().start()
        self.addCleanup(self.server.stop)
        self.client = Client(self.server.url)

    def test_round_trip_with_a_stale_version_refused(self) -> None:
        created = self.client.create_dashboard({"dashboard": DOCUMENT})
        self.assertEqual(created["version"], 1)
        self.assertEqual({k: v for k, v in created.items() if k in DOCUMENT}, DOCUMENT)
        self.client.create_dashboard({"id": "other", "title": "Other", "tags": ["ops"]})
        self.assertEqual(self.client.list_dashboards(), [
            {"id": "customer_overview", "title": "Customer overview", "tags": ["customers", "latency"], "version": 1},
            {"id": "other", "title": "Other", "tags": ["ops"], "version": 1},
        ])
        self.assertEqual([d["id"] for d in self.client.list_dashboards(tag="ops")], ["other"])

        read = self.client.get_dashboard("customer_overview")
        self.assertEqual(read, created)
        edited = copy.deepcopy(read)
        edited["title"] = "Customers"
        saved = self.client.replace_dashboard("customer_overview", edited)
        self.assertEqual((saved["title"], saved["version"]), ("Customers", 2))

        # A second editor still holding version 1 is refused, told the current version.
        stale = copy.deepcopy(read)
        stale["title"] = "Stale"
        with self.assertRaises(LuminateError) as conflict:
            self.client.replace_dashboard("customer_overview", stale)
        self.assertEqual((conflict.exception.status, conflict.exception.code), (409, "CONFLICT"))
        self.assertEqual(conflict.exception.details["current_version"], 2)
        # Naming the version explicitly wins over the document's.
        again = self.client.replace_dashboard("customer_overview", stale, version=2)
        self.assertEqual((again["title"], again["version"]), ("Stale", 3))

        exported = self.client.export_dashboard("customer_overview")
        self.assertEqual(exported, {"dashboard": again})
        self.client.delete_dashboard("customer_overview")
        with self.assertRaises(LuminateError) as gone:
            self.client.get_dashboard("customer_overview")
        self.assertEqual((gone.exception.status, gone.exception.code), (404, "NOT_FOUND"))
        with self.assertRaises(LuminateError) as gone_again:
            self.client.delete_dashboard("customer_overview")
        self.assertEqual(gone_again.exception.code, "NOT_FOUND")

        imported = self.client.create_dashboard(exported)
        self.assertEqual({**imported, "version": 3}, again)
        self.assertEqual(imported["version"], 1)

    def test_id_taken_is_a_conflict(self) -> None:
        self.client.create_dashboard(DOCUMENT)
        with self.assertRaises(LuminateError) as taken:
            self.client.create_dashboard(DOCUMENT)
        self.assertEqual((taken.exception.status, taken.exception.code), (409, "CONFLICT"))

    def test_invalid_document_lists_every_problem(self) -> None:
        broken = copy.deepcopy(DOCUMENT)
        broken["panels"][0]["query"]["aggregation"] = "p42"
        broken["panels"][0]["gridPosition"]["w"] = 30
        with self.assertRaises(LuminateError) as invalid:
            self.client.create_dashboard(broken)
        error = invalid.exception
        self.assertEqual((error.status, error.code), (400, "INVALID_REQUEST"))
        paths = sorted(p["path"] for p in error.details["problems"])
        self.assertEqual(paths, ["panels[0].gridPosition", "panels[0].query.aggregation"])
        self.assertIn('unknown "p42"', error.message)


if __name__ == "__main__":
    unittest.main()
