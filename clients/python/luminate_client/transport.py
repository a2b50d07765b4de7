"""HTTP exchanges with one Luminate server: headers, retries and the decoding of answers and errors.

Knows nothing of points, queries or dashboards; the client builds the bodies and reads the answers.

Retries (:class:`RetryPolicy`):

- ``429 RATE_LIMIT_EXCEEDED`` and ``503 STORAGE_UNAVAILABLE`` are retried for every request: the server
  refused before doing the work (a ``429`` stores nothing; a ``503`` is never remembered under an
  idempotency key). The wait is the answer's ``Retry-After`` when it has one, else the backoff.
- A connection that could not be opened (refused, no route) is retried for every request: nothing was
  sent. A connection reset or a timeout after the request was sent is retried only for requests marked
  ``idempotent`` (reads, queries, writes carrying an ``Idempotency-Key``), since the server may have
  acted on it.
- Anything else (``400``, ``404``, ``409``, ``504``, ...) raises at once: a retry would get the same answer.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .errors import LuminateConnectionError, LuminateError

USER_AGENT = "luminate-client-python/0.1.0"
RETRIED_STATUSES = (429, 503)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (see the module's description for which failures).

    Attributes:
        max_retries: Retries after the first attempt (``0``: never retry).
        backoff_base: Seconds before the first retry when the server named no wait; doubles each retry.
        backoff_max: The longest backoff, in seconds.
        max_retry_after: The longest ``Retry-After`` honoured, in seconds; an answer asking for longer
            raises instead of blocking the caller that long.
    """

    max_retries: int = 5
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    max_retry_after: float = 60.0

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (from 0): exponential, capped, with jitter so that
        many clients refused together do not come back together."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**retry)
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class RetryEvent:
    """One retry about to happen, as given to the client's ``on_retry`` callback.

    Attributes:
        method: The request's method.
        path: The request's path.
        retry: Which retry this is, from 1.
        delay: Seconds it waits first.
        status: The refusal's HTTP status, ``0`` for a connection failure.
        code: The refusal's error code (``"RATE_LIMIT_EXCEEDED"``), or ``"CONNECTION_ERROR"``.
        reason: The server's message or the connection error.
    """

    method: str
    path: str
    retry: int
    delay: float
    status: int
    code: str
    reason: str


@dataclass
class Answer:
    """A response: status, headers (lower-case names) and JSON body (``None`` when empty)."""

    status: int
    headers: Dict[str, str]
    body: Any


class Transport:
    """Sends requests to ``base_url`` with the token, timeout and retry policy given."""

    def __init__(
        self,
        base_url: str,
        token: Optional[str],
        timeout: float,
        retry: RetryPolicy,
        on_retry: Optional[Callable[[RetryEvent], None]],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry = retry
        self.on_retry = on_retry

    def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[Mapping[str, str]] = None,
        idempotent: bool = True,
        answers: Tuple[int, ...] = (),
    ) -> Answer:
        """Sends one request, retrying as the policy allows; returns a ``2xx`` answer (or one whose
        status is in ``answers``) and raises :class:`LuminateError` for any other."""
        retry = 0
        while True:
            try:
                answer = self._exchange(method, path, body, headers)
            except _NotSent as e:
                failure: LuminateError = LuminateConnectionError(str(e))
                retryable = True
            except _NoAnswer as e:
                failure = LuminateConnectionError(str(e))
                retryable = idempotent
            else:
                if 200 <= answer.status < 300 or answer.status in answers:
                    return answer
                failure = error_of(answer)
                retryable = answer.status in RETRIED_STATUSES
            if not retryable or retry >= self.retry.max_retries:
                raise failure
            delay = self.retry.backoff(retry)
            if failure.retry_after is not None:
                if failure.retry_after > self.retry.max_retry_after:
                    raise failure
                delay = failure.retry_after
            retry += 1
            if self.on_retry is not None:
                self.on_retry(
                    RetryEvent(method, path, retry, delay, failure.status, failure.code, failure.message)
                )
            time.sleep(delay)

    def _exchange(
        self, method: str, path: str, body: Optional[bytes], headers: Optional[Mapping[str, str]]
    ) -> Answer:
        request = urllib.request.Request(self.base_url + path, data=body, method=method)
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _read(response.status, response.headers, response.read())
        except urllib.error.HTTPError as e:
            # urllib raises for every status >= 400; the error is the response.
            with e:
                return _read(e.code, e.headers, e.read())
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError, ConnectionResetError, BrokenPipeError)):
                raise _NoAnswer(f"{method} {path}: {e.reason}") from e
            raise _NotSent(f"cannot connect to {self.base_url}: {e.reason}") from e
        except (http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError) as e:
            raise _NoAnswer(f"{method} {path}: no answer ({type(e).__name__}: {e})") from e


class _NotSent(Exception):
    """The connection was never opened: nothing reached the server."""


class _NoAnswer(Exception):
    """The request may have reached the server, but no answer came back."""


def _read(status: int, headers: Any, raw: bytes) -> Answer:
    lowered = {name.lower(): value for name, value in headers.items()}
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            # Not JSON (a proxy's error page): kept as text for the error's message.
            body = raw.decode("utf-8", errors="replace")
    return Answer(status, lowered, body)


def error_of(answer: Answer) -> LuminateError:
    """The :class:`LuminateError` of a refusal in the contract's format, or of any other answer."""
    retry_after = parse_retry_after(answer.headers.get("retry-after"))
    body = answer.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return LuminateError(
            answer.status,
            str(error.get("code", f"HTTP_{answer.status}")),
            str(error.get("message", "")),
            error.get("details") if isinstance(error.get("details"), dict) else {},
            retry_after,
        )
    text = body if isinstance(body, str) else json.dumps(body)
    return LuminateError(answer.status, f"HTTP_{answer.status}", text[:500], {}, retry_after)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date (RFC 9110); ``None`` if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
