"""Retries against the real server: a 429 of a tight rate limit waited out for exactly its
``Retry-After``, a 503 of a full disk (the dashboard's temporary file made a link to ``/dev/full``, answered with ``Retry-After: 5``)
retried after a backoff, connections refused until the server listens, and the errors when retries
run out."""

from __future__ import annotations

import email.utils
import os
import socket
import threading
import time
import unittest
import urllib.parse
from typing import Any, Callable, List, Tuple

from luminate_client import Client, LuminateConnectionError, LuminateError, RetryEvent, RetryPolicy, WriteResult
from luminate_client.transport import parse_retry_after

from .server import Server, free_port, minute_ago
from .test_write import count, latency_points

DASHBOARD = {"id": "ops", "title": "Ops", "panels": []}


def at_once(*calls: Callable[[], Any]) -> List[Tuple[Any, float]]:
    """Runs ``calls`` together, each on a thread of its own released at the same instant; returns
    what each returned (or raised) and the seconds it took. Requests sent together reach the rate
    limiter together, however long the server then takes to answer each (a write's fsync on a busy
    machine may take longer than the bucket's refill)."""
    barrier = threading.Barrier(len(calls))
    outcomes: List[Tuple[Any, float]] = [(None, 0.0)] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            outcome: Any = calls[i]()
        except LuminateError as e:
            outcome = e
        outcomes[i] = (outcome, time.monotonic() - started)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


class RateLimitTest(unittest.TestCase):
    """One write request and one query per second: of two sent together, one is a 429."""

    server: Server

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server({
            "LUMINATE__RATE_LIMITS__WRITE_REQUESTS_PER_SECOND": "1",
            "LUMINATE__RATE_LIMITS__QUERY_REQUESTS_PER_SECOND": "1",
        }).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        time.sleep(1.1)  # full buckets, whatever ran before

    def test_write_refused_429_is_retried_after_its_retry_after(self) -> None:
        events: List[RetryEvent] = []
        client = Client(self.server.url, on_retry=events.append)
        points = latency_points(minute_ago(3), 2, metric="limited")
        outcomes = at_once(lambda: client.write_points(points[:1]), lambda: client.write_points(points[1:]))
        self.assertEqual([result.accepted for result, _ in outcomes], [1, 1])
        self.assertEqual(
            [(e.status, e.code, e.delay, e.retry, e.path) for e in events],
            [(429, "RATE_LIMIT_EXCEEDED", 1.0, 1, "/api/v1/write")],
        )
        # The one refused waited out its Retry-After before it was admitted.
        self.assertGreaterEqual(max(took for _, took in outcomes), 1.0)
        # The refused attempt stored nothing, the retry stored the point once.
        self.assertEqual(count(Client(self.server.url), "limited"), 2)

    def test_query_refused_429_is_retried(self) -> None:
        events: List[RetryEvent] = []
        client = Client(self.server.url, on_retry=events.append)
        (first, _), (second, _) = at_once(client.metrics, client.metrics)
        self.assertEqual(first, second)
        self.assertIsInstance(first, list)
        self.assertEqual([(e.status, e.code, e.delay) for e in events], [(429, "RATE_LIMIT_EXCEEDED", 1.0)])

    def test_retries_exhausted_raise_the_429_in_the_servers_words(self) -> None:
        client = Client(self.server.url, retry=RetryPolicy(max_retries=0))

        def write() -> WriteResult:
            return client.write_points(latency_points(minute_ago(3), 1, metric="exhausted"))

        outcomes = [outcome for outcome, _ in at_once(write, write)]
        refused = [o for o in outcomes if isinstance(o, LuminateError)]
        self.assertEqual(len(refused), 1, outcomes)
        error = refused[0]
        self.assertEqual((error.status, error.code, error.retry_after), (429, "RATE_LIMIT_EXCEEDED", 1.0))
        self.assertEqual(error.details["limit"], "write_requests_per_second")
        self.assertIn("write_requests_per_second", error.message)

    def test_retry_after_longer_than_allowed_is_raised_not_waited(self) -> None:
        client = Client(self.server.url, retry=RetryPolicy(max_retry_after=0.5))
        outcomes = at_once(client.metrics, client.metrics)
        refused = [(o, took) for o, took in outcomes if isinstance(o, LuminateError)]
        self.assertEqual([o.code for o, _ in refused], ["RATE_LIMIT_EXCEEDED"])
        # Answered at once: waiting the 1 s asked would have taken at least that.
        self.assertLess(refused[0][1], 1.0)


class StorageUnavailableTest(unittest.TestCase):
    def test_save_refused_503_on_a_full_disk_is_retried_once_there_is_room(self) -> None:
        with Server() as server:
            tenant_dir = os.path.join(server.data_dir, "dashboards", "default")
            os.makedirs(tenant_dir)
            full = os.path.join(tenant_dir, "ops.json.tmp")
            # Writes to /dev/full fail with ENOSPC, even for root.
            os.symlink("/dev/full", full)
            events: List[RetryEvent] = []
            temp_left: List[bool] = []

            def refused(event: RetryEvent) -> None:
                events.append(event)
                # The server removed the temporary file it could not write (the link): room again.
                temp_left.append(os.path.lexists(full))

            client = Client(server.url, retry=RetryPolicy(backoff_base=0.05), on_retry=refused)
            saved = client.create_dashboard(DASHBOARD)
            self.assertEqual((saved["id"], saved["version"]), ("ops", 1))
            self.assertEqual([(e.status, e.code, e.path) for e in events],
                             [(503, "STORAGE_UNAVAILABLE", "/api/v1/dashboards")])
            self.assertIn("No space left on device", events[0].reason)
            self.assertEqual(temp_left, [False])
            # A full disk's refusal asks for Retry-After: 5 (freeing space is an operator's work),
            # honoured instead of the 0.05 s backoff.
            self.assertEqual(events[0].delay, 5.0)
            self.assertEqual([d["id"] for d in client.list_dashboards()], ["ops"])


def read_request(connection: socket.socket) -> bytes:
    """One HTTP request (head and ``Content-Length`` body) as received."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


class AnswerDropper:
    """A relay in front of the real server that passes each request on (one per connection) and, for
    the first ``drop`` of them, hangs up instead of passing the server's answer back: an answer lost on
    the way, after the server acted on the request."""

    def __init__(self, upstream: str, drop: int) -> None:
        address = urllib.parse.urlsplit(upstream)
        self.upstream = (str(address.hostname), int(address.port or 80))
        self.drop = drop
        self.relayed: List[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                request = read_request(connection)
                # urllib asks for `Connection: close`, so the server's answer ends with its connection.
                with socket.create_connection(self.upstream) as server:
                    server.sendall(request)
                    answer = b""
                    while chunk := server.recv(65536):
                        answer += chunk
                status = answer.split(b"\r\n", 1)[0].decode()
                if self.drop > 0:
                    self.drop -= 1
                    self.relayed.append(f"dropped {status}")
                else:
                    self.relayed.append(f"passed {status}")
                    connection.sendall(answer)

    def close(self) -> None:
        self.listener.close()


class ConnectionTest(unittest.TestCase):
    def test_a_write_whose_answer_was_lost_is_retried_and_stored_once(self) -> None:
        with Server() as server:
            relay = AnswerDropper(server.url, drop=1)
            self.addCleanup(relay.close)
            events: List[RetryEvent] = []
            client = Client(relay.url, on_retry=events.append, retry=RetryPolicy(backoff_base=0.05))
            result = client.write_points(latency_points(minute_ago(2), 20, metric="lost"))
            # The server stored the batch and answered; the answer was lost; the retry, with the same
            # Idempotency-Key, got the first answer back and stored nothing.
            self.assertEqual((result.accepted, result.rejected), (20, 0))
            self.assertEqual(relay.relayed, ["dropped HTTP/1.1 200 OK", "passed HTTP/1.1 200 OK"])
            self.assertEqual([(e.status, e.code) for e in events], [(0, "CONNECTION_ERROR")])
            self.assertEqual(count(Client(server.url), "lost"), 20)

    def test_refused_connections_are_retried_until_the_server_listens(self) -> None:
        port = free_port()
        events: List[RetryEvent] = []
        client = Client(f"http://127.0.0.1:{port}", on_retry=events.append,
                        retry=RetryPolicy(max_retries=40, backoff_base=0.2, backoff_max=1.0))
        outcome: dict = {}

        def write() -> None:
            try:
                outcome["result"] = client.write_points(latency_points(minute_ago(2), 5))
            except LuminateError as e:  # reported by the assertion below
                outcome["error"] = e

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        with Server(port=port) as server:
            writer.join(30)
            self.assertNotIn("error", outcome)
            self.assertEqual(outcome["result"].accepted, 5)
            self.assertGreaterEqual(len(events), 1)
            self.assertTrue(all(e.code == "CONNECTION_ERROR" and e.status == 0 for e in events), events)
            self.assertEqual(count(Client(server.url), "api_latency"), 5)

    def test_an_answer_lost_after_sending_is_retried_only_when_safe(self) -> None:
        # A peer that reads each request and hangs up without answering: what a server dying
        # mid-request looks like to its client.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        self.addCleanup(listener.close)
        requests: List[bytes] = []

        def hang_up() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                with connection:
                    requests.append(connection.recv(65536).split(b"\r\n", 1)[0])

        threading.Thread(target=hang_up, daemon=True).start()
        events: List[RetryEvent] = []
        client = Client(f"http://127.0.0.1:{listener.getsockname()[1]}", on_retry=events.append,
                        retry=RetryPolicy(max_retries=2, backoff_base=0.01))
        # A dashboard change may have been saved before the answer was lost: not resent.
        with self.assertRaises(LuminateConnectionError):
            client.create_dashboard(DASHBOARD)
        self.assertEqual((events, requests), ([], [b"POST /api/v1/dashboards HTTP/1.1"]))
        # A query only reads: resent until the retries run out.
        with self.assertRaises(LuminateConnectionError):
            client.query({"queryType": "range", "metricName": "m", "timeRange": {"relative": "1h"}})
        self.assertEqual([e.retry for e in events], [1, 2])
        self.assertEqual(requests[1:], [b"POST /api/v1/query HTTP/1.1"] * 3)

    def test_no_server_at_all_raises_a_connection_error_after_the_retries(self) -> None:
        events: List[RetryEvent] = []
        client = Client(f"http://127.0.0.1:{free_port()}", on_retry=events.append,
                        retry=RetryPolicy(max_retries=2, backoff_base=0.01))
        with self.assertRaises(LuminateConnectionError) as failed:
            client.metrics()
        self.assertEqual((failed.exception.status, failed.exception.code), (0, "CONNECTION_ERROR"))
        self.assertIn("Connection refused", failed.exception.message)
        self.assertEqual([e.retry for e in events], [1, 2])


class WaitTest(unittest.TestCase):
    """The waits themselves, without a server: Luminate sends seconds, a proxy may send a date."""

    def test_retry_after_in_seconds_or_as_an_http_date(self) -> None:
        self.assertEqual(parse_retry_after("3"), 3.0)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after("soon"))
        in_ten = parse_retry_after(email.utils.formatdate(time.time() + 10, usegmt=True))
        assert in_ten is not None
        self.assertAlmostEqual(in_ten, 10, delta=1.5)
        self.assertEqual(parse_retry_after(email.utils.formatdate(time.time() - 100, usegmt=True)), 0.0)

    def test_backoff_doubles_up_to_its_cap_with_jitter(self) -> None:
        policy = RetryPolicy(backoff_base=0.2, backoff_max=1.0)
        for retry, ceiling in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.0), (10, 1.0)]:
            wait = policy.backoff(retry)
            self.assertTrue(ceiling / 2 <= wait <= ceiling, (retry, wait))


if __name__ == "__main__":
    unittest.main()
