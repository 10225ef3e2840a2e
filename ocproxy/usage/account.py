"""Turning a finished request (its :class:`~ocproxy.relay.Call` and fallback
trace) into the ledger's :class:`UsageRow`."""

from __future__ import annotations

import time

from ocproxy import catalog
from ocproxy.upstream.targets import endpoint_for
from ocproxy.usage.record import Prices, UsageRow, cost_usd


def prices_of(provider: str, model_id: str) -> Prices | None:
    """The catalog's published prices for a model, if it has them."""
    entry = catalog.lookup(provider, model_id)
    if entry is None:
        return None
    return Prices(*(getattr(entry, name, None) for name in
                    ("price_input", "price_output", "price_cache_read", "price_cache_write")))


def attempts_of(tried: list[str]) -> list[dict]:
    """``["kimi-k2.6:timeout", "glm-5.1:ok"]`` -> one dict per model tried."""
    out = []
    for entry in tried:
        model, _, outcome = entry.rpartition(":")
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
        attempts=attempts_of(trace.tried),
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
