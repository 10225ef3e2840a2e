"""Error kinds as values.

Two families live here and must never be confused:

* ``ProxyError`` is an answer to the client: a status plus the Anthropic error
  body. The app layer turns it into a response (or an SSE ``error`` frame once
  a stream has begun).
* ``AttemptFailure`` and its subclasses describe why one upstream attempt did
  not succeed. The fallback loop decides "charge the breaker / next model /
  block the provider" from the *class and status*, never from message text.

``ClientGone`` is neither: the client left, so nothing is answered and nothing
is charged.
"""

from __future__ import annotations

import enum
import json

# HTTP status -> Anthropic error type.
_KIND_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def kind_for_status(status: int) -> str:
    return _KIND_BY_STATUS.get(status, "api_error")


def error_payload(message: str, kind: str = "api_error") -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_body(status: int, message: str, kind: str | None = None) -> bytes:
    return json.dumps(error_payload(message, kind or kind_for_status(status))).encode()


class ProxyError(Exception):
    """An error the proxy answers to its client with ``status``."""

    def __init__(self, status: int, message: str, kind: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or kind_for_status(status)

    def body(self) -> bytes:
        return error_body(self.status, self.message, self.kind)


class ClientGone(Exception):
    """The client disconnected; stop quietly (never a model failure)."""


class AttemptFailure(Exception):
    """One upstream attempt failed; the chain may move on."""

    #: A short label for logs, and for the stream's error frame.
    cause = "upstream-failure"


class UpstreamHTTPError(AttemptFailure):
    """The upstream answered with status >= 400; ``body`` is its text."""

    def __init__(self, status: int, body: str):
        super().__init__(f"API error {status}: {body[:500]}")
        self.status = status
        self.body = body


class UpstreamConnectionError(AttemptFailure):
    """Connection refused, reset, aborted, DNS or TLS failure."""

    def __init__(self, message: str, refused_or_reset: bool = True):
        super().__init__(message)
        self.refused_or_reset = refused_or_reset


class AttemptTimeout(AttemptFailure):
    """The attempt's own deadline expired (timeout_ms / streaming_timeout_ms)."""

    cause = "attempt-timeout"


class StreamIdle(AttemptFailure):
    """No byte from the upstream for longer than the idle limit."""

    cause = "stream-idle"


class UpstreamDataError(AttemptFailure):
    """The upstream answered 2xx with data we cannot use (bad JSON, empty
    stream, an error chunk, no choices...)."""


class Verdict(enum.Enum):
    """What the fallback loop does with a failed attempt."""

    CHARGE = "charge"  # retryable: record a breaker failure, next model
    NEXT = "next"  # non-retryable: next model, breaker untouched
    BLOCK_PROVIDER = "block"  # skip the rest of this provider's models


def classify(failure: AttemptFailure, key_count: int) -> Verdict:
    """The verdict from the failure's class and HTTP status alone. A message
    is whatever a library or the upstream wrote, and may carry a URL or a
    session id: "timeout" or "500" in it must not charge a breaker."""
    if isinstance(failure, UpstreamHTTPError):
        # The upstream names this error kind in its body; checked before the
        # auth rule because a usage limit can come with any status.
        if "GoUsageLimitError" in failure.body:
            return Verdict.BLOCK_PROVIDER
        if failure.status in (401, 403):
            # One key: every model of the provider would fail the same way.
            return Verdict.BLOCK_PROVIDER if key_count <= 1 else Verdict.NEXT
        return Verdict.CHARGE if failure.status >= 500 else Verdict.NEXT
    if isinstance(failure, (AttemptTimeout, StreamIdle)):
        return Verdict.CHARGE
    if isinstance(failure, UpstreamConnectionError) and failure.refused_or_reset:
        return Verdict.CHARGE
    # DNS or TLS failures, unusable 2xx answers, transform errors: the next
    # model may do better, but this one is not shown to be failing.
    return Verdict.NEXT
