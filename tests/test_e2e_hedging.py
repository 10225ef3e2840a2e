"""Hedging (``hedge_after_ms`` on a scenario's model): a stream whose model
produced no payload byte by then starts the chain's next model too; the
first to produce payload wins, the other is closed at once and not charged;
off by default; counted in /metrics. Real proxy server, fake upstreams on
real sockets, the official SDK as client.
"""

from __future__ import annotations

import dataclasses
import threading

import anthropic
import pytest
import requests

from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, ZEN_CHAT, make_config
from tests.fakes import chat_text_chunks, no_headers, sse, status
from tests.procs import wait_for

USER = [{"role": "user", "content": "hi"}]


def hedged(upstream, hedge_after_ms: int = 200, **kw):
    """kimi-k2.6 on Go, then zen-c on Zen; hedging after ``hedge_after_ms``.
    The first-byte deadline is far beyond the test: only the hedge can make
    the second model answer early."""
    first = ModelConfig(provider="opencode-go", model_id="kimi-k2.6", hedge_after_ms=hedge_after_ms)
    rest = (ModelConfig(provider="opencode-zen", model_id="zen-c"),)
    cfg = make_config(upstream, models={"default": first, "fast": first},
                      fallbacks={"default": rest, "fast": rest}, breaker_threshold=1, **kw)
    return dataclasses.replace(
        cfg,
        opencode_go=dataclasses.replace(cfg.opencode_go, first_byte_timeout_ms=600_000, stream_timeout_ms=600_000),
        opencode_zen=dataclasses.replace(cfg.opencode_zen, first_byte_timeout_ms=600_000, stream_timeout_ms=600_000),
    )


def stream(proxy, sdk):
    with sdk(proxy).messages.stream(model="claude-sonnet-4-6", max_tokens=10, messages=USER) as s:
        return s.response.headers["x-ocproxy-model"], s.get_final_text()


def counters(proxy) -> dict:
    text = requests.get(proxy.url + "/metrics", timeout=5).text
    return {name: float(line.split()[-1]) for line in text.splitlines()
            for name in ("hedges_started", "hedges_won") if line.startswith(f"ocproxy_{name}_total ")}


def no_hedge_threads() -> bool:
    return not any(t.name == "ocproxy-hedge" for t in threading.enumerate())


def test_a_silent_model_is_hedged_and_the_next_one_answers(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, no_headers(hold=30.0))
    upstream.on(ZEN_CHAT, sse(*chat_text_chunks(["from zen"])))
    proxy = start_proxy(hedged(upstream))
    assert stream(proxy, sdk) == ("zen-c", "from zen")
    # The loser was closed at once (its connection dropped, not held 30 s)
    # and not charged: a threshold of 1 would have opened its breaker.
    assert wait_for(lambda: upstream.calls(GO_CHAT)[0].closed_by_peer_at is not None, 5)
    assert proxy.app.breakers.states()["kimi-k2.6"] == "closed"
    assert counters(proxy) == {"hedges_started": 1, "hedges_won": 1}
    assert wait_for(no_hedge_threads, 5)


def test_the_first_model_still_wins_when_its_payload_comes_first(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, sse(0.5, *chat_text_chunks(["from go"])))  # late, but before the hedge answers
    upstream.on(ZEN_CHAT, no_headers(hold=30.0))
    proxy = start_proxy(hedged(upstream))
    assert stream(proxy, sdk) == ("kimi-k2.6", "from go")
    assert wait_for(lambda: upstream.calls(ZEN_CHAT) and upstream.calls(ZEN_CHAT)[0].closed_by_peer_at, 5)
    assert proxy.app.breakers.states().get("zen-c", "closed") == "closed"
    assert counters(proxy) == {"hedges_started": 1, "hedges_won": 0}
    assert wait_for(no_hedge_threads, 5)


def test_a_model_answering_before_the_hedge_time_starts_no_second_call(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["from go"])))
    upstream.on(ZEN_CHAT, sse(*chat_text_chunks(["from zen"])))
    proxy = start_proxy(hedged(upstream, hedge_after_ms=5_000))
    assert stream(proxy, sdk) == ("kimi-k2.6", "from go")
    assert upstream.calls(ZEN_CHAT) == []
    assert counters(proxy) == {"hedges_started": 0, "hedges_won": 0}


def test_both_hedged_models_failing_is_the_whole_failure_naming_each(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, no_headers(hold=0.6))  # silent past the hedge, then drops the connection
    upstream.on(ZEN_CHAT, status(503, {"error": {"message": "overloaded"}}))
    proxy = start_proxy(hedged(upstream))
    with pytest.raises(anthropic.InternalServerError) as info:
        stream(proxy, sdk)
    assert info.value.status_code == 502
    message = info.value.body["error"]["message"]
    assert "kimi-k2.6: " in message and "zen-c: 503 overloaded" in message
    assert counters(proxy) == {"hedges_started": 1, "hedges_won": 0}
    assert len(upstream.calls(GO_CHAT)) == 1 and len(upstream.calls(ZEN_CHAT)) == 1
    assert wait_for(no_hedge_threads, 5)


def test_hedging_is_off_by_default(upstream, start_proxy, sdk):
    cfg = hedged(upstream, hedge_after_ms=0)
    cfg = dataclasses.replace(cfg, opencode_go=dataclasses.replace(cfg.opencode_go, first_byte_timeout_ms=300))
    upstream.on(GO_CHAT, no_headers(hold=30.0))
    upstream.on(ZEN_CHAT, sse(*chat_text_chunks(["from zen"])))
    proxy = start_proxy(cfg)
    assert stream(proxy, sdk) == ("zen-c", "from zen")  # after the first-byte deadline, as a plain fallback
    assert proxy.app.breakers.states()["kimi-k2.6"] == "open"  # charged: it failed, no race
    assert counters(proxy) == {"hedges_started": 0, "hedges_won": 0}
    assert ModelConfig().hedge_after_ms == 0


def test_a_client_leaving_during_a_race_closes_both_and_charges_nothing(upstream, start_proxy):
    from tests.sseclient import post_stream, stream_body

    upstream.on(GO_CHAT, no_headers(hold=30.0))
    upstream.on(ZEN_CHAT, no_headers(hold=30.0))
    proxy = start_proxy(hedged(upstream))
    post_stream(proxy.url, stream_body(), close_after=0.6)
    assert wait_for(lambda: proxy.app.metrics.snapshot()["client_cancelled"] == 1, 5)
    assert wait_for(lambda: all(r.closed_by_peer_at for r in upstream.calls()) and len(upstream.calls()) == 2, 5)
    assert set(proxy.app.breakers.states().values()) <= {"closed"}
    assert wait_for(no_hedge_threads, 5)
