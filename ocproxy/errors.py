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
from typing import Sequence

from ocproxy.logs import REDACTED, clip, redact

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

    def __init__(self, status: int, message: str, kind: str | None = None, headers: Sequence = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind or kind_for_status(status)
        self.headers = tuple(headers)  # extra response headers, e.g. ("Retry-After", "30")

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

    def __init__(self, status: int, body: str, retry_after: str | None = None):
        super().__init__(f"API error {status}: {clip(body, 500)}")
        self.status = status
        self.body = body
        self.retry_after = retry_after  # the upstream's Retry-After header, if any

    @property
    def usage_limit(self) -> bool:
        """The provider's usage limit (or rate limit): the upstream names
        this error kind in its body, with any status."""
        return self.status == 429 or "GoUsageLimitError" in self.body

    @property
    def auth_refused(self) -> bool:
        return self.status in (401, 403) and not self.usage_limit


class UpstreamConnectionError(AttemptFailure):
    """Connection refused, reset, aborted, DNS or TLS failure."""

    def __init__(self, message: str, refused_or_reset: bool = True, reason: str = "connection failed"):
        super().__init__(message)
        self.refused_or_reset = refused_or_reset
        #: what the client may read (``message`` can carry a URL)
        self.reason = reason


class AttemptTimeout(AttemptFailure):
    """The attempt's own deadline expired (timeout_ms / streaming_timeout_ms)."""

    cause = "attempt-timeout"


class StreamIdle(AttemptFailure):
    """No byte from the upstream for longer than the idle limit."""

    cause = "stream-idle"

    def __init__(self, message: str, seconds: float = 0.0):
        super().__init__(message)
        self.seconds = seconds


class FirstByteTimeout(StreamIdle):
    """A stream gave no payload within ``first_byte_timeout_ms`` (before or
    after its headers): the next model may answer, this one is charged."""

    cause = "first-byte-timeout"


class UpstreamDataError(AttemptFailure):
    """The upstream answered 2xx with data we cannot use (bad JSON, empty
    stream, an error chunk, no choices...). The message may quote the
    upstream: it is redacted, then cut."""

    def __init__(self, message: str):
        super().__init__(clip(message, 500))


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


# -- what the client is told when every model failed --------------------------


def describe(failure: AttemptFailure | str, secrets: Sequence[str] = ()) -> str:
    """One model's failure in a few words the client may read: from the
    class and status, plus the upstream's own error message with every
    one of ``secrets`` redacted (an upstream may echo the key it refused).
    A string is a skip reason."""
    if isinstance(failure, str):
        return failure
    if isinstance(failure, UpstreamHTTPError):
        detail = _upstream_message(failure.body, secrets)
        return f"{failure.status} {detail}" if detail else str(failure.status)
    if isinstance(failure, FirstByteTimeout):
        return f"idle {failure.seconds:g} s before first byte"
    if isinstance(failure, StreamIdle):
        return f"idle {failure.seconds:g} s"
    if isinstance(failure, AttemptTimeout):
        return "attempt timed out"
    if isinstance(failure, UpstreamConnectionError):
        return failure.reason
    if isinstance(failure, UpstreamDataError):
        return _short(_redact(str(failure), secrets))
    return failure.cause


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redact(text)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _upstream_message(body: str, secrets: Sequence[str]) -> str:
    """The message in an upstream error body (OpenAI, Anthropic or Gemini
    shape), else the body's start; redacted before it is cut."""
    text = body
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            err = err.get("message") or err.get("type") or ""
        if isinstance(err, str) and err:
            text = err
        elif isinstance(data.get("message"), str):
            text = data["message"]
    return _short(_redact(text, secrets))


def exhausted_error(failures: Sequence[tuple[str, str, AttemptFailure | str]], prefix: str,
                    secrets: Sequence[str] = ()) -> ProxyError:
    """The answer when every model of a chain failed. ``failures`` holds
    (model id, provider, failure or skip reason) per model, in order.

    Failures that a retry cannot cure are told apart so the client stops
    retrying: every attempt refused on its key -> 401 naming the provider;
    every attempt at its usage limit -> 429 with the upstream's
    Retry-After; every model behind an open breaker -> 529; the rest 502.
    """
    attempts = [(p, f) for _, p, f in failures if isinstance(f, AttemptFailure)]
    listing = "; ".join(f"{model}: {describe(f, secrets)}" for model, _, f in failures)
    message = f"{prefix}: {listing}" if listing else prefix
    http = [f for _, f in attempts if isinstance(f, UpstreamHTTPError)]
    if not attempts:
        return ProxyError(529, message) if failures else ProxyError(502, message)
    if len(http) == len(attempts) and all(f.auth_refused or f.usage_limit for f in http):
        refused = [p for p, f in attempts if isinstance(f, UpstreamHTTPError) and f.auth_refused]
        if refused:
            names = ", ".join(dict.fromkeys(refused))
            return ProxyError(401, f"upstream provider {names} refused the API key ({message})")
        retry = next((f.retry_after for f in http if f.retry_after), None)
        headers = [("Retry-After", retry)] if retry else []
        return ProxyError(429, f"upstream usage limit reached ({message})", headers=headers)
    return ProxyError(502, message)
