"""Turning a finished request (its :class:`~ocproxy.relay.Call` and fallback
trace) into the ledger's :class:`UsageRow`."""

from __future__ import annotations

import time

from ocproxy import catalog
from ocproxy.errors import UpstreamHTTPError
from ocproxy.upstream.targets import endpoint_for
from ocproxy.usage.record import Prices, UsageRow, cost_usd


def prices_of(provider: str, model_id: str) -> Prices | None:
    """The catalog's published prices for a model, if it has them."""
    entry = catalog.lookup(provider, model_id)
    if entry is None:
        return None
    # The catalog publishes one cached-input price (a cache read); writes
    # cost what input costs.
    return Prices(input=entry.price_input, output=entry.price_output, cache_read=entry.price_cached)


def attempts_of(trace) -> list[dict]:
    """One ``{"model", "outcome"}`` per model tried or skipped, in order; an
    upstream's HTTP error is named by its status (``http-503``)."""
    failures = iter(trace.failures)
    out = []
    for entry in trace.tried:
        model, _, outcome = entry.rpartition(":")
        if outcome != "ok":
            failure = next(failures, (None, None, None))[2]
            if isinstance(failure, UpstreamHTTPError):
                outcome = f"http-{failure.status}"
        out.append({"model": model, "outcome": outcome})
    return out


def row_of(call, trace, outcome: str, client: str = "", now: float | None = None) -> UsageRow:
    """The ledger row of a request that ended with ``outcome``."""
    now = time.monotonic() if now is None else now
    answered = next((m for m in call.route.chain if m.model_id == call.answered_by), None)
    tokens = call.tokens.tokens
    row = UsageRow(
        ts=time.time() - (now - call.started),
        request_id=call.rid,
        client=client,
        session=call.session,
        requested_model=call.req.model or "",
        model=call.answered_by,
        provider=answered.provider if answered else "",
        endpoint=endpoint_for(answered) if answered else "",
        attempts=attempts_of(trace),
        outcome=outcome,
        status=call.status,
        streaming=bool(call.req.stream),
        tokens=tokens,
        ttfb_ms=None if call.first_byte_at is None else round((call.first_byte_at - call.started) * 1000, 1),
        duration_ms=round((now - call.started) * 1000, 1),
    )
    if answered is not None:
        row.cost_usd = cost_usd(tokens, prices_of(answered.provider, answered.model_id))
    return row
