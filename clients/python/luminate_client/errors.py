"""The one exception type of the client: a refusal in the server's own words, or a server that could
not be reached.

Every error Luminate answers has the body ``{"error": {"code", "message", "details"}}`` (the API
contract, §8); :class:`LuminateError` carries those three with the HTTP status, so a caller can branch
on ``error.code`` (``"INVALID_QUERY"``, ``"CONFLICT"``, ...) rather than on message text.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional


class LuminateError(Exception):
    """A request Luminate refused, or one that never got an answer.

    Attributes:
        status: The HTTP status (``0`` when no answer arrived: see :class:`LuminateConnectionError`).
        code: The contract's error code, e.g. ``"INVALID_QUERY"``; ``"HTTP_<status>"`` when the answer
            was not in the contract's format (a proxy's page, say).
        message: The server's message.
        details: The error's ``details`` object (``{}`` when it had none).
        retry_after: Seconds the server asked to wait (``Retry-After``), when it said.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[Dict[str, Any]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: Dict[str, Any] = details if details is not None else {}
        self.retry_after = retry_after
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")


class LuminateConnectionError(LuminateError):
    """No answer: the connection was refused, reset or timed out, and retries (if any) ran out."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "CONNECTION_ERROR", message)


class PointsRejectedError(LuminateError):
    """A write whose every point was invalid (``400`` with the write's own body, not the error format).

    ``code`` is the first rejected point's code (``"INVALID_METRIC_NAME"``, ...); ``errors`` lists
    every rejected point as the server did: ``{"index", "metric", "code", "error"}``, ``index`` counting
    from 0 in the batch that was sent.
    """

    def __init__(self, errors: List[Dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {"code": "INVALID_REQUEST", "error": "every point was rejected"}
        message = f"all {len(errors)} points were rejected; the first: {first.get('error', '')}"
        super().__init__(400, str(first.get("code", "INVALID_REQUEST")), message, {"errors": errors})
