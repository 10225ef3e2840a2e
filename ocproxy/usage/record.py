"""One ledger row, and the token counts it carries, read from what the
client was sent. Pure: bytes and dicts in, a :class:`UsageRow` out.

Usage is read from the Anthropic answer the proxy produced (whole body or
stream frames), so it is the same whatever dialect the upstream spoke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


@dataclass
class Tokens:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def take(self, usage: object) -> None:
        """Fold an Anthropic ``usage`` object in: a later non-zero count
        replaces an earlier one (``message_delta`` carries the final output)."""
        if not isinstance(usage, dict):
            return
        for name, attr in zip(TOKEN_FIELDS, ("input", "output", "cache_read", "cache_write")):
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                setattr(self, attr, value)


class AnswerTokens:
    """The token counts of an answer: from a whole Anthropic Messages body,
    or from the frames of a stream, where ``message_start`` and
    ``message_delta`` carry usage and the rest are skipped after a look at
    their first bytes."""

    def __init__(self) -> None:
        self.tokens = Tokens()

    def feed_body(self, body: bytes) -> None:
        try:
            self.tokens.take(json.loads(body).get("usage"))
        except (ValueError, AttributeError):
            pass

    def feed(self, frames: list[bytes]) -> None:
        for frame in frames:
            # one bounded find per frame, no slice: a 2,000-delta stream
            # calls this for every frame (py-spy: 16 % of the stream's GIL time)
            if frame.find(b"message_", 0, 40) < 0:
                continue
            head = frame[:40]
            if b"message_delta" in head:
                self._take(frame, None)
            elif b"message_start" in head:
                self._take(frame, "message")

    def _take(self, frame: bytes, inner: str | None) -> None:
        for line in frame.splitlines():
            if line.startswith(b"data:"):
                try:
                    event = json.loads(line[5:])
                except ValueError:
                    return
                if inner and isinstance(event, dict):
                    event = event.get(inner)
                if isinstance(event, dict):
                    self.tokens.take(event.get("usage"))
                return


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; None where the provider publishes no price."""

    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None


def cost_usd(tokens: Tokens, prices: Prices | None) -> float | None:
    """Estimated cost, or None when the model's input or output price is unknown.
    Cached tokens without their own price cost what input tokens cost."""
    if prices is None or prices.input is None or prices.output is None:
        return None
    read = prices.cache_read if prices.cache_read is not None else prices.input
    write = prices.cache_write if prices.cache_write is not None else prices.input
    total = (tokens.input * prices.input + tokens.output * prices.output
             + tokens.cache_read * read + tokens.cache_write * write)
    return round(total / 1_000_000, 6)


@dataclass
class UsageRow:
    """What the ledger keeps of one ``/v1/messages`` request."""

    ts: float  # unix time the request arrived
    request_id: str
    client: str  # the client key's name, "" without client keys; never the key
    session: str
    requested_model: str
    model: str  # the model that answered; "" when none did
    provider: str
    endpoint: str
    attempts: list[dict] = field(default_factory=list)  # [{"model": id, "outcome": "ok" | cause}]
    outcome: str = "ok"
    status: int = 200
    streaming: bool = False
    tokens: Tokens = field(default_factory=Tokens)
    ttfb_ms: float | None = None
    duration_ms: float = 0.0
    cost_usd: float | None = None

    def values(self) -> tuple:
        """The row in the ledger's column order (:data:`COLUMNS`)."""
        return (
            self.ts, self.request_id, self.client, self.session, self.requested_model, self.model,
            self.provider, self.endpoint, json.dumps(self.attempts, separators=(",", ":")),
            self.outcome, self.status, int(self.streaming), self.tokens.input, self.tokens.output,
            self.tokens.cache_read, self.tokens.cache_write, self.ttfb_ms, self.duration_ms, self.cost_usd,
        )


COLUMNS = (
    "ts", "request_id", "client", "session", "requested_model", "model", "provider", "endpoint",
    "attempts", "outcome", "status", "streaming", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "ttfb_ms", "duration_ms", "cost_usd",
)


@dataclass(frozen=True)
class QuotaWindow:
    """One OpenCode Go usage window: ``rolling`` (5 hours), ``weekly`` or ``monthly``."""

    window: str
    percent: float
    resets_at: float | None  # unix time; None when the provider gave none
    exhausted: bool = False
