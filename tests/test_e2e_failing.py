"""When models fail: streams consult and charge breakers, a silent primary
costs the first-byte deadline, and an all-failed answer says why. Real
proxy server, fake upstreams on real sockets, the official SDK as client.

The primary is a Go model and its fallback a Zen model, so each has its own
upstream path and the requests each one saw are counted apart.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time

import anthropic
import pytest
import requests

from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, ZEN_CHAT, make_config
from tests.fakes import chat_completion, chat_text_chunks, json_body, no_headers, sse, status
from tests.sseclient import post_stream, stream_body

API_KEY = "sk-upstream-secret-0123456789"  # make_config's key
USER = [{"role": "user", "content": "hi"}]
ROLE_ONLY = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}


def go_then_zen(upstream, first_byte_timeout_ms: int | None = None, **kw):
    first = ModelConfig(provider="opencode-go", model_id="kimi-k2.6")
    rest = (ModelConfig(provider="opencode-zen", model_id="zen-c"),)  # not in the catalog: chat completions
    cfg = make_config(upstream, models={"default": first, "fast": first}, fallbacks={"default": rest, "fast": rest},
                      **kw)
    if first_byte_timeout_ms is not None:
        cfg = dataclasses.replace(
            cfg,
            opencode_go=dataclasses.replace(cfg.opencode_go, first_byte_timeout_ms=first_byte_timeout_ms),
            opencode_zen=dataclasses.replace(cfg.opencode_zen, first_byte_timeout_ms=first_byte_timeout_ms),
        )
    return cfg


def stream_text(client) -> str:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=10, messages=USER) as stream:
        return "".join(stream.text_stream)


def zen_answers(text="from zen"):
    return sse(*chat_text_chunks([text]))


def with_retry_after(code: int, obj, retry_after: str):
    def script(h, rec):
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Retry-After", retry_after)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(data)
    return script


def refused_url() -> str:
    """A local port with nothing listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/v1/chat/completions"


# -- breakers on the streaming path --------------------------------------------


def test_stream_failures_open_the_breaker_and_the_next_stream_skips_the_dead_model(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(500, {"error": {"message": "down"}}))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream, breaker_threshold=2))
    client = sdk(proxy)
    assert stream_text(client) == "from zen"
    assert stream_text(client) == "from zen"
    assert len(upstream.calls(GO_CHAT)) == 2
    assert proxy.app.breakers.states()["kimi-k2.6"] == "open"
    assert stream_text(client) == "from zen"
    assert len(upstream.calls(GO_CHAT)) == 2  # the dead model saw no third request
    assert len(upstream.calls(ZEN_CHAT)) == 3
    health = requests.get(proxy.url + "/health", timeout=5).json()
    assert health["status"] == "degraded"
    assert health["last_failures"]["kimi-k2.6"]["error"] == "500 down"


def test_stream_4xx_does_not_charge_the_breaker(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(400, {"error": {"message": "bad request"}}))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream, breaker_threshold=1))
    assert stream_text(sdk(proxy)) == "from zen"
    assert proxy.app.breakers.states()["kimi-k2.6"] == "closed"
    assert requests.get(proxy.url + "/health", timeout=5).json()["status"] == "ok"


def test_every_model_failing_on_streams_closes_every_breaker_again(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(500))
    upstream.on(ZEN_CHAT, status(503))
    proxy = start_proxy(go_then_zen(upstream, breaker_threshold=1))
    with pytest.raises(anthropic.APIStatusError):
        stream_text(sdk(proxy))
    assert set(proxy.app.breakers.states().values()) == {"closed"}


# -- the first-byte deadline -------------------------------------------------------


@pytest.mark.parametrize("silent", [
    no_headers(hold=60.0),  # hangs before its headers
    sse(60.0),  # headers, then nothing
    sse(ROLE_ONLY, 60.0),  # the role chunk (no payload for the client), then nothing
], ids=["before-headers", "after-headers", "after-role-chunk"])
def test_a_silent_primary_costs_the_first_byte_deadline_not_the_idle_limit(upstream, start_proxy, sdk, silent):
    # The idle and attempt limits are far beyond the client's 30 s timeout:
    # only the first-byte deadline can let the fallback answer in time.
    upstream.on(GO_CHAT, silent)
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream, first_byte_timeout_ms=300, timeout_ms=600_000,
                                    streaming_timeout_ms=600_000, stream_timeout_ms=600_000))
    assert stream_text(sdk(proxy, timeout=30.0)) == "from zen"
    assert len(upstream.calls(GO_CHAT)) == 1
    assert proxy.app.metrics.last_failures()["kimi-k2.6"]["error"] == "idle 0.3 s before first byte"


def test_first_byte_deadline_does_not_cut_a_stream_that_began(upstream, start_proxy, sdk):
    # A pause longer than the first-byte deadline after payload began is
    # within the idle limit: the stream goes on.
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["a", "b"])[:2], 0.6, *chat_text_chunks(["a", "b"])[2:]))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream, first_byte_timeout_ms=200, stream_timeout_ms=10_000))
    assert stream_text(sdk(proxy)) == "ab"
    assert upstream.calls(ZEN_CHAT) == []


# -- errors that say why ---------------------------------------------------------


def test_401_on_one_provider_while_the_other_works(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(401, {"error": {"message": f"invalid key {API_KEY}"}}))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream))
    assert stream_text(sdk(proxy)) == "from zen"
    upstream.on(ZEN_CHAT, json_body(chat_completion("from zen")))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "from zen"


def test_every_key_refused_is_401_naming_the_provider(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(401, {"error": {"message": f"invalid key {API_KEY}"}}))
    upstream.on(ZEN_CHAT, status(401, {"error": {"message": "invalid key"}}))
    proxy = start_proxy(go_then_zen(upstream))
    with pytest.raises(anthropic.AuthenticationError) as info:
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert info.value.status_code == 401
    message = info.value.body["error"]["message"]
    assert "opencode-go, opencode-zen refused the API key" in message
    assert "kimi-k2.6: 401 invalid key [redacted]" in message and "zen-c: 401 invalid key" in message
    assert API_KEY not in info.value.response.text
    # The stream says the same in its error event.
    with pytest.raises(anthropic.APIStatusError) as info:
        stream_text(sdk(proxy))
    assert info.value.body["error"]["type"] == "authentication_error"
    assert "kimi-k2.6: 401 invalid key [redacted]" in info.value.body["error"]["message"]


def test_usage_limit_on_go_with_a_zen_fallback_answers(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, with_retry_after(429, {"error": {"type": "GoUsageLimitError", "message": "limit"}}, "120"))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream))
    assert stream_text(sdk(proxy)) == "from zen"
    assert proxy.app.breakers.states()["kimi-k2.6"] == "closed"


def test_usage_limit_everywhere_is_429_with_the_upstreams_retry_after(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, with_retry_after(429, {"error": {"type": "GoUsageLimitError", "message": "limit"}}, "120"))
    upstream.on(ZEN_CHAT, status(429, {"error": {"message": "rate limited"}}))
    proxy = start_proxy(go_then_zen(upstream))
    with pytest.raises(anthropic.RateLimitError) as info:
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert info.value.response.headers["retry-after"] == "120"
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert "kimi-k2.6: 429 limit; zen-c: 429 rate limited" in info.value.body["error"]["message"]


def test_refused_connection_and_an_outage_stay_502_and_name_each_model(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, status(503, {"error": {"message": "overloaded"}}))
    cfg = go_then_zen(upstream)
    cfg = dataclasses.replace(cfg, opencode_go=dataclasses.replace(cfg.opencode_go, base_url=refused_url()))
    proxy = start_proxy(cfg)
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["error"] == {
        "type": "api_error",
        "message": "all models failed: kimi-k2.6: connect refused; zen-c: 503 overloaded"}


def test_health_is_degraded_after_the_last_requests_all_failed(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(500))
    upstream.on(ZEN_CHAT, status(500))
    proxy = start_proxy(go_then_zen(upstream))
    client = sdk(proxy)
    for _ in range(3):
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    health = requests.get(proxy.url + "/health", timeout=5).json()
    assert health["status"] == "degraded"
    assert set(health["last_failures"]) == {"kimi-k2.6", "zen-c"}
    upstream.on(ZEN_CHAT, zen_answers())
    assert stream_text(client) == "from zen"
    assert requests.get(proxy.url + "/health", timeout=5).json()["status"] == "ok"


def test_a_client_leaving_before_the_first_byte_charges_nothing(upstream, start_proxy):
    upstream.on(GO_CHAT, no_headers(hold=30.0))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream, breaker_threshold=1))
    post_stream(proxy.url, stream_body(), close_after=0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and proxy.app.metrics.snapshot()["client_cancelled"] == 0:
        time.sleep(0.02)
    assert proxy.app.metrics.snapshot()["client_cancelled"] == 1
    assert proxy.app.breakers.states()["kimi-k2.6"] == "closed"
    assert upstream.calls(ZEN_CHAT) == []


# -- a stream that failed before its payload carries the whole answer's status ----


def stream_error(client) -> anthropic.APIStatusError:
    with pytest.raises(anthropic.APIStatusError) as info:
        stream_text(client)
    return info.value


def test_streamed_every_key_refused_is_401_and_the_sdk_does_not_retry(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(401, {"error": {"message": f"invalid key {API_KEY}"}}))
    upstream.on(ZEN_CHAT, status(401, {"error": {"message": "invalid key"}}))
    proxy = start_proxy(go_then_zen(upstream))
    err = stream_error(sdk(proxy).with_options(max_retries=2))
    assert isinstance(err, anthropic.AuthenticationError) and err.status_code == 401
    assert err.body["error"]["type"] == "authentication_error"
    assert "opencode-go, opencode-zen refused the API key" in err.body["error"]["message"]
    assert API_KEY not in err.response.text
    # 401 is final for the SDK (and Claude Code): one request per model, no retry.
    assert len(upstream.calls(GO_CHAT)) == 1 and len(upstream.calls(ZEN_CHAT)) == 1


def test_streamed_usage_limit_everywhere_is_429_with_retry_after(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, with_retry_after(429, {"error": {"type": "GoUsageLimitError", "message": "limit"}}, "120"))
    upstream.on(ZEN_CHAT, status(429, {"error": {"message": "rate limited"}}))
    proxy = start_proxy(go_then_zen(upstream))
    err = stream_error(sdk(proxy))
    assert isinstance(err, anthropic.RateLimitError)
    assert err.response.headers["retry-after"] == "120"
    assert err.body["error"]["type"] == "rate_limit_error"
    assert "kimi-k2.6: 429 limit; zen-c: 429 rate limited" in err.body["error"]["message"]


def test_streamed_outage_is_502_naming_each_model(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, status(503, {"error": {"message": "overloaded"}}))
    cfg = go_then_zen(upstream)
    cfg = dataclasses.replace(cfg, opencode_go=dataclasses.replace(cfg.opencode_go, base_url=refused_url()))
    proxy = start_proxy(cfg)
    err = stream_error(sdk(proxy))
    assert isinstance(err, anthropic.InternalServerError) and err.status_code == 502
    assert err.body["error"] == {
        "type": "api_error",
        "message": "all upstream models failed: kimi-k2.6: connect refused; zen-c: 503 overloaded"}


def test_streamed_request_with_every_breaker_open_is_529(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(500))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream, breaker_threshold=1))
    assert stream_text(sdk(proxy)) == "from zen"  # kimi's breaker opens
    proxy.app.breakers.get("zen-c").record_failure()  # and zen's
    err = stream_error(sdk(proxy))
    assert err.status_code == 529 and err.body["error"]["type"] == "overloaded_error"
    assert len(upstream.calls(GO_CHAT)) == 1 and len(upstream.calls(ZEN_CHAT)) == 1


def test_streamed_header_names_the_model_that_answered(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(500))
    upstream.on(ZEN_CHAT, zen_answers())
    proxy = start_proxy(go_then_zen(upstream))
    with sdk(proxy).messages.stream(model="claude-sonnet-4-6", max_tokens=10, messages=USER) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["x-ocproxy-model"] == "zen-c"
        assert stream.get_final_text() == "from zen"
