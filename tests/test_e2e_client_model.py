"""Issue #15 end to end: Claude Code's traffic on the built-in config.

The official ``anthropic`` SDK talks to the real server running the built-in
config (the ``ocproxy init`` template) pointed at a fake upstream. The
upstream must see the configured models, never a ``claude-*`` name; the
client must see its own model name in every answer (whole, streamed, raw
Anthropic passthrough), and ``x-ocproxy-model`` names the model that answered.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import requests

from ocproxy.config import load_config
from tests.conftest import API_KEY, GO_CHAT, GO_MESSAGES, ZEN_CHAT, ZEN_MESSAGES, ZEN_MODELS, ZEN_RESPONSES
from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status

USER = [{"role": "user", "content": "fix the failing test"}]
OPUS = "claude-opus-4-8"
HAIKU = "claude-haiku-4-5-20251001"


def builtin_config(upstream):
    """The built-in config with its URLs pointed at the fake upstream."""
    c = load_config(None, {"HOME": "/nonexistent", "OCPROXY_API_KEY": API_KEY})
    go = dataclasses.replace(c.opencode_go, base_url=upstream.url(GO_CHAT),
                             anthropic_base_url=upstream.url(GO_MESSAGES), timeout_ms=10_000)
    zen = dataclasses.replace(c.opencode_zen, base_url=upstream.url(ZEN_CHAT),
                              anthropic_base_url=upstream.url(ZEN_MESSAGES),
                              responses_base_url=upstream.url(ZEN_RESPONSES),
                              gemini_base_url=upstream.url(ZEN_MODELS), timeout_ms=10_000)
    return dataclasses.replace(c, port=0, opencode_go=go, opencode_zen=zen)


def anthropic_message(model: str, text: str = "done") -> dict:
    return {"id": "msg_up", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1}}


def anthropic_sse(model: str, text: str = "done") -> list[bytes]:
    """An Anthropic upstream's stream, as a native upstream writes it."""
    start = dict(anthropic_message(model, ""), content=[])

    def ev(name, data):
        return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    return [
        ev("message_start", {"type": "message_start", "message": start}),
        ev("ping", {"type": "ping"}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": text}}),
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": 1}}),
        ev("message_stop", {"type": "message_stop"}),
    ]


def upstream_models(upstream) -> list[str]:
    return [c.json.get("model") for c in upstream.calls()]


@pytest.fixture
def proxy(upstream, start_proxy):
    return start_proxy(builtin_config(upstream))


def test_main_turn_whole_upstream_sees_default_client_sees_its_name(upstream, proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("fixed", model="kimi-k2.6")))
    raw = sdk(proxy).messages.with_raw_response.create(model=OPUS, max_tokens=100, messages=USER)
    msg = raw.parse()
    assert upstream_models(upstream) == ["kimi-k2.6"]  # models.default, not claude-*
    assert msg.model == OPUS and msg.content[0].text == "fixed"
    assert raw.headers["x-ocproxy-model"] == "kimi-k2.6"


def test_main_turn_streamed_message_start_names_the_client_model(upstream, proxy, sdk):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["fi", "xed"])))
    with sdk(proxy).messages.stream(model=OPUS, max_tokens=100, messages=USER) as stream:
        header = stream.response.headers["x-ocproxy-model"]
        starts = [e.message.model for e in stream if e.type == "message_start"]
        final = stream.get_final_message()
    assert upstream_models(upstream) == ["kimi-k2.6"]
    assert starts == [OPUS] and final.model == OPUS and final.content[0].text == "fixed"
    assert header == "kimi-k2.6"


def test_haiku_background_call_streamed_passthrough_rewrites_message_start(upstream, proxy, sdk):
    upstream.on(GO_MESSAGES, sse(*anthropic_sse("qwen3.5-plus", "Fix test")))
    with sdk(proxy).messages.stream(model=HAIKU, max_tokens=50, messages=USER) as stream:
        header = stream.response.headers["x-ocproxy-model"]
        starts = [e.message.model for e in stream if e.type == "message_start"]
        final = stream.get_final_message()
    assert upstream_models(upstream) == ["qwen3.5-plus"]  # models.background, raw Anthropic passthrough
    assert starts == [HAIKU] and final.model == HAIKU and final.content[0].text == "Fix test"
    assert header == "qwen3.5-plus"


def test_haiku_background_call_whole_passthrough_rewrites_model(upstream, proxy, sdk):
    upstream.on(GO_MESSAGES, json_body(anthropic_message("qwen3.5-plus", "title")))
    raw = sdk(proxy).messages.with_raw_response.create(model=HAIKU, max_tokens=50, messages=USER)
    msg = raw.parse()
    assert upstream_models(upstream) == ["qwen3.5-plus"]
    assert msg.model == HAIKU and msg.content[0].text == "title" and msg.id == "msg_up"
    assert raw.headers["x-ocproxy-model"] == "qwen3.5-plus"


def test_long_request_goes_to_long_context(upstream, proxy, sdk):
    upstream.on(GO_MESSAGES, json_body(anthropic_message("minimax-m2.5")))
    long_user = [{"role": "user", "content": "lorem " * 120_000}]
    msg = sdk(proxy).messages.create(model=OPUS, max_tokens=50, messages=long_user)
    assert upstream_models(upstream) == ["minimax-m2.5"]  # models.long_context
    assert msg.model == OPUS


def test_unknown_model_takes_the_scenario_route_not_an_upstream_4xx(upstream, proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("hi", model="kimi-k2.6")))
    msg = sdk(proxy).messages.create(model="no-such-model", max_tokens=50, messages=USER)
    assert upstream_models(upstream) == ["kimi-k2.6"]  # one call, the default model
    assert msg.model == "no-such-model"


def test_requested_zen_gpt_goes_to_responses(upstream, proxy, sdk):
    upstream.on(ZEN_RESPONSES, status(500))  # where it must go; 500 lets the chain move on
    upstream.on(GO_CHAT, json_body(chat_completion("from fallback", model="mimo-v2.5-pro")))
    raw = sdk(proxy).messages.with_raw_response.create(model="gpt-5.5", max_tokens=50, messages=USER)
    assert [c.path for c in upstream.calls()][0] == ZEN_RESPONSES
    assert upstream.calls(ZEN_RESPONSES)[0].json["model"] == "gpt-5.5"
    assert raw.parse().model == "gpt-5.5"
    assert raw.headers["x-ocproxy-model"] == upstream.calls()[-1].json["model"]


def test_answering_model_in_health_and_metrics(upstream, proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("ok", model="kimi-k2.6")))
    sdk(proxy).messages.create(model=OPUS, max_tokens=10, messages=USER)
    assert requests.get(proxy.url + "/health", timeout=5).json()["models"] == {"kimi-k2.6": 1}
    assert 'ocproxy_model_success_total{model="kimi-k2.6"} 1' in requests.get(proxy.url + "/metrics", timeout=5).text
