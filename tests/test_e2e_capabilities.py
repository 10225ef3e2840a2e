"""Issue 15 items 2 and 4 end to end: the official ``anthropic`` SDK against
the real threaded server, a fake upstream on a real socket reading what the
proxy sends.

- a request with an image lands on the chain's vision model;
- a request larger than a model's context window skips that model;
- ``max_tokens`` reaches the upstream clamped to the model's output limit,
  and a reply cut by a configured cap logs a warning naming the setting;
- after a fallback, a stream's ``x-ocproxy-model`` header, the
  ``request completed`` log line and ``/health`` / ``/metrics`` name the
  model that answered.
"""

from __future__ import annotations

import logging
import threading

import pytest
import requests

from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, GO_MESSAGES, chain, make_config
from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status
from tests.test_e2e_client_model import anthropic_message

PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def upstream_models(upstream, path=GO_CHAT):
    return [c.json["model"] for c in upstream.calls(path)]


class Records(logging.Handler):
    """The ``ocproxy`` log records of one test (the proxy's logger may not
    propagate to the root once its logging is set up). ``_lock`` of
    ``logging.Handler`` guards ``records``; ``seen`` wakes a waiting test."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Condition()

    def emit(self, record):
        with self.seen:
            self.records.append(record)
            self.seen.notify_all()

    def wait_for(self, text: str, timeout: float = 10.0) -> list[str]:
        with self.seen:
            self.seen.wait_for(lambda: any(text in r.getMessage() for r in self.records), timeout)
            return [r.getMessage() for r in self.records if text in r.getMessage()]


@pytest.fixture
def records():
    handler = Records()
    logger = logging.getLogger("ocproxy")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_an_image_request_lands_on_the_vision_model(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("a red square", model="kimi-k2.6")))
    proxy = start_proxy(make_config(upstream, **chain("glm-5.1", "kimi-k2.6")))  # glm-5.1 reads no images
    msg = sdk(proxy).messages.create(model="claude-opus-4-8", max_tokens=100, messages=[
        {"role": "user", "content": [PNG, {"type": "text", "text": "what is this?"}]}])
    assert upstream_models(upstream) == ["kimi-k2.6"]
    sent = upstream.calls(GO_CHAT)[0].json["messages"][-1]["content"]
    assert any(part.get("type") == "image_url" for part in sent)
    assert msg.content[0].text == "a red square"


def test_a_huge_request_skips_the_small_context_model(upstream, start_proxy, sdk, records):
    upstream.on(GO_CHAT, json_body(chat_completion("read it all", model="deepseek-v4-flash")))
    proxy = start_proxy(make_config(upstream, **chain("glm-5.1", "deepseek-v4-flash")))
    huge = "lorem " * 250_000  # 250k tokens: glm-5.1 holds 202,752
    msg = sdk(proxy).messages.create(model="claude-opus-4-8", max_tokens=100,
                                     messages=[{"role": "user", "content": huge}])
    assert upstream_models(upstream) == ["deepseek-v4-flash"]
    assert msg.content[0].text == "read it all"
    assert records.wait_for("skipping model=glm-5.1")


def test_a_request_no_model_holds_is_a_400_prompt_too_long(upstream, start_proxy, sdk):
    import anthropic

    proxy = start_proxy(make_config(upstream, **chain("glm-5.1", "kimi-k2.6")))
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(proxy).messages.create(model="claude-opus-4-8", max_tokens=100,
                                   messages=[{"role": "user", "content": "lorem " * 300_000}])
    assert "prompt is too long" in info.value.message and upstream.calls() == []


def test_max_tokens_reaches_the_upstream_clamped(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("ok", model="kimi-k2.6")))
    upstream.on(GO_MESSAGES, json_body(anthropic_message("qwen3.6-plus")))
    proxy = start_proxy(make_config(upstream, respect_requested_model=True, **chain("kimi-k2.6")))
    sdk(proxy).messages.create(model="kimi-k2.6", max_tokens=100_000, messages=[{"role": "user", "content": "x"}])
    sdk(proxy).messages.create(model="qwen3.6-plus", max_tokens=100_000, messages=[{"role": "user", "content": "x"}])
    sdk(proxy).messages.create(model="kimi-k2.6", max_tokens=32_000, messages=[{"role": "user", "content": "x"}])
    assert [c.json["max_tokens"] for c in upstream.calls(GO_CHAT)] == [65_536, 32_000]
    assert upstream.calls(GO_MESSAGES)[0].json["max_tokens"] == 65_536  # raw Anthropic passthrough too


def test_a_reply_cut_by_the_configured_cap_logs_the_setting(upstream, start_proxy, sdk, records):
    upstream.on(GO_CHAT, json_body(chat_completion('{"command": "ls', model="kimi-k2.6", finish="length")),
                sse(*chat_text_chunks(["cut"], finish="length")))
    capped = ModelConfig(model_id="kimi-k2.6", max_tokens=50)
    proxy = start_proxy(make_config(upstream, models={"default": capped, "fast": capped}))
    client = sdk(proxy)
    msg = client.messages.create(model="claude-opus-4-8", max_tokens=32000, messages=[{"role": "user", "content": "x"}])
    assert msg.stop_reason == "max_tokens" and upstream.calls(GO_CHAT)[0].json["max_tokens"] == 50
    with client.messages.stream(model="claude-opus-4-8", max_tokens=32000,
                                messages=[{"role": "user", "content": "x"}]) as stream:
        assert stream.get_final_message().stop_reason == "max_tokens"
    warnings = records.wait_for("reply cut at max_tokens=50")
    for _ in range(50):
        if len(warnings) == 2:
            break
        warnings = records.wait_for("reply cut at max_tokens=50", 0.1)
    assert len(warnings) == 2
    assert all("max_tokens setting of model kimi-k2.6 in the config" in w and "asked for 32000" in w for w in warnings)


def test_a_reply_the_client_limited_logs_no_cap_warning(upstream, start_proxy, sdk, records):
    upstream.on(GO_CHAT, json_body(chat_completion("short", model="kimi-k2.6", finish="length")))
    capped = ModelConfig(model_id="kimi-k2.6", max_tokens=5000)
    proxy = start_proxy(make_config(upstream, models={"default": capped, "fast": capped}))
    sdk(proxy).messages.create(model="claude-opus-4-8", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert records.wait_for("request completed")
    assert not [r for r in records.records if "reply cut" in r.getMessage()]


def test_after_a_fallback_the_stream_names_the_answering_model(upstream, start_proxy, sdk, records):
    upstream.on(GO_CHAT, status(500), sse(*chat_text_chunks(["from ", "b"])))
    # the headers wait for the first payload for up to one heartbeat interval:
    # a long one makes the header certain on a loaded machine
    proxy = start_proxy(make_config(upstream, heartbeat_interval_ms=10_000, **chain("model-a", "model-b")))
    with sdk(proxy).messages.stream(model="claude-opus-4-8", max_tokens=100,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
        header = stream.response.headers.get("x-ocproxy-model")
        final = stream.get_final_message()
    assert upstream_models(upstream) == ["model-a", "model-b"]
    assert final.model == "claude-opus-4-8" and final.content[0].text == "from b"
    assert header == "model-b"
    done = records.wait_for("request completed")
    assert len(done) == 1 and "outcome=ok model=model-b " in done[0] and "chain=model-a:upstream-failure,model-b:ok" in done[0]
    health = requests.get(proxy.url + "/health", timeout=5).json()
    assert health["models"] == {"model-b": 1}
    assert "model-a" in health["last_failures"]
    assert 'ocproxy_model_success_total{model="model-b"} 1' in requests.get(proxy.url + "/metrics", timeout=5).text


def test_a_stream_whose_model_is_slow_to_begin_still_names_it_in_the_headers(upstream, start_proxy):
    """The headers wait for the first payload however many heartbeat
    intervals pass, so they name the model that answered; no keep-alive
    goes out before them."""
    from tests.sseclient import post_stream, stream_body

    upstream.on(GO_CHAT, sse(*chat_text_chunks(["late"]), hold_headers=1.5))
    proxy = start_proxy(make_config(upstream, **chain("model-a")))  # heartbeat 100 ms
    cap = post_stream(proxy.url, stream_body())
    assert cap.status == 200 and cap.headers["x-ocproxy-model"] == "model-a"
    assert cap.body.startswith(b"event: message_start")
    assert cap.types[0] == "message_start" and cap.types[-1] == "message_stop"
