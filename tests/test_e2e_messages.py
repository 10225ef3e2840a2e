"""Non-streaming requests: the whole path through real sockets.

The official ``anthropic`` SDK talks to the real proxy server, which talks to a
fake OpenCode upstream on a local socket. Nothing of ours is mocked; tests
assert what the client got and what the upstream received.

Covered: request and answer bodies, upstream auth and session ids, fallback
and circuit breakers, what each failure kind does, key rotation, and a
client that leaves.
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
from tests.conftest import API_KEY, GO_CHAT, GO_MESSAGES, ZEN_CHAT, chain, make_config
from tests.fakes import chat_completion, json_body, status

FAST = dict(timeout_ms=2000)
USER = [{"role": "user", "content": "Hello, how are you?"}]


def go_chain(*ids, **overrides):
    return {**chain(*ids), **FAST, **overrides}


def health(proxy) -> dict:
    return requests.get(proxy.url + "/health", timeout=5).json()


def assert_no_key_leak(proxy, *bodies):
    """Upstream keys never show in error bodies, /health or /metrics."""
    texts = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
    texts.append(requests.get(proxy.url + "/health", timeout=5).text)
    texts.append(requests.get(proxy.url + "/metrics", timeout=5).text)
    for text in texts:
        assert API_KEY not in text


# -- bodies through the SDK ---------------------------------------------------


def test_plain_text_answer_through_the_sdk(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("Hello there.", model="kimi-k2.6")))
    proxy = start_proxy(make_config(upstream, **FAST))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    assert msg.type == "message" and msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello there."
    assert msg.stop_reason == "end_turn"
    assert msg.model == "claude-sonnet-4-6"  # issue #15: the client's own name
    assert msg.usage.input_tokens == 10 and msg.usage.output_tokens == 5
    sent = upstream.calls(GO_CHAT)[0].json
    assert sent["model"] == "kimi-k2.6"
    assert sent["messages"] == [{"role": "user", "content": "Hello, how are you?"}]
    assert sent.get("stream") in (None, False)


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_tool_call_and_tool_result_round_trip(upstream, start_proxy, sdk):
    call = {"id": "call_123", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Kigali\"}"}}
    upstream.on(GO_CHAT,
                json_body(chat_completion("", tool_calls=[call], finish="tool_calls")),
                json_body(chat_completion("It is sunny in Kigali.")))
    proxy = start_proxy(make_config(upstream, **go_chain("deepseek-v4-flash")))
    client = sdk(proxy)
    first = client.messages.create(model="claude-sonnet-4-6", max_tokens=100, tools=[WEATHER_TOOL],
                                   messages=[{"role": "user", "content": "Weather in Kigali?"}])
    assert first.stop_reason == "tool_use"
    tool_uses = [b for b in first.content if b.type == "tool_use"]
    assert len(tool_uses) == 1
    assert tool_uses[0].id == "call_123" and tool_uses[0].name == "get_weather"
    assert tool_uses[0].input == {"city": "Kigali"}
    sent_tools = upstream.calls(GO_CHAT)[0].json["tools"]
    assert sent_tools == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_TOOL["input_schema"]}}]

    second = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=100, tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Kigali?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_123", "content": "sunny"}]},
        ])
    assert second.content[0].text == "It is sunny in Kigali."
    sent = upstream.calls(GO_CHAT)[1].json["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == "call_123"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Kigali"}
    tool = next(m for m in sent if m["role"] == "tool")
    assert tool["tool_call_id"] == "call_123"
    assert tool["content"] == "sunny"


def test_thinking_block_and_reasoning_content_round_trip(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT,
                json_body(chat_completion("The answer is 42", reasoning="Let me think step by step")),
                json_body(chat_completion("Because.")))
    proxy = start_proxy(make_config(upstream, **go_chain("deepseek-v4-flash")))
    client = sdk(proxy)
    first = client.messages.create(model="claude-sonnet-4-6", max_tokens=100,
                                   messages=[{"role": "user", "content": "What is the answer?"}])
    assert [b.type for b in first.content] == ["thinking", "text"]
    assert first.content[0].thinking == "Let me think step by step"
    assert first.content[1].text == "The answer is 42"

    history = [{"role": "user", "content": "What is the answer?"},
               {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               {"role": "user", "content": "Explain why?"}]
    client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=history)
    raw = upstream.calls(GO_CHAT)[1].body.decode()
    assert '"reasoning_content"' in raw
    assistant = next(m for m in json.loads(raw)["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"] == "Let me think step by step"


@pytest.mark.parametrize("prompt,hit,miss,want_input,want_read,want_creation", [
    (100000, 96000, 4000, 4000, 96000, None),
    (10000, 3000, 2000, 5000, 3000, 2000),
])
def test_usage_with_cache(upstream, start_proxy, sdk, prompt, hit, miss, want_input, want_read,
                                            want_creation):
    usage = {"prompt_tokens": prompt, "completion_tokens": 7, "total_tokens": prompt + 7,
             "prompt_cache_hit_tokens": hit, "prompt_cache_miss_tokens": miss}
    upstream.on(GO_CHAT, json_body(chat_completion("ok", usage=usage)))
    proxy = start_proxy(make_config(upstream, **go_chain("deepseek-v4-flash")))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    assert msg.usage.input_tokens == want_input
    assert msg.usage.output_tokens == 7
    assert msg.usage.cache_read_input_tokens == want_read
    assert msg.usage.cache_creation_input_tokens == want_creation  # None = key absent


def test_custom_tool_and_empty_schema_accepted(upstream, start_proxy, sdk):
    """Claude Code's ``type:"custom"`` tools, and a tool with an empty schema."""
    upstream.on(GO_CHAT, json_body(chat_completion("hello")))
    proxy = start_proxy(make_config(upstream, **go_chain("deepseek-v4-flash")))
    tools = [
        {"type": "custom", "name": "read_file", "description": "Read a file from the filesystem",
         "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}},
        {"name": "NoArgs", "input_schema": {}},
    ]
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=100, tools=tools,
                                     messages=[{"role": "user", "content": "Say hello and nothing else"}])
    assert msg.content[0].text == "hello"
    sent = upstream.calls(GO_CHAT)[0].json["tools"]
    assert sent == [
        {"type": "function", "function": {"name": "read_file", "description": "Read a file from the filesystem",
                                          "parameters": {"type": "object",
                                                         "properties": {"path": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "NoArgs", "parameters": {
            "type": "object", "properties": {}, "additionalProperties": False}}},
    ]


def test_kimi_k2_7_code_temperature_forced_to_1(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    proxy = start_proxy(make_config(upstream, **go_chain("kimi-k2.7-code")))
    client = sdk(proxy)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER, extra_body={"temperature": 0.2})
    client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    with_temp, without = (c.json for c in upstream.calls(GO_CHAT))
    assert with_temp["model"] == "kimi-k2.7-code"
    assert with_temp["temperature"] == 1.0
    assert "temperature" not in without


def test_raw_anthropic_endpoint_minimax_m3(upstream, start_proxy, sdk):
    answer = {"id": "msg_up_1", "type": "message", "role": "assistant", "model": "minimax-m3",
              "content": [{"type": "text", "text": "from minimax"}], "stop_reason": "end_turn",
              "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 2},
              "x_vendor_extra": {"kept": True}}
    upstream.on(GO_MESSAGES, json_body(answer))
    proxy = start_proxy(make_config(upstream, **go_chain("minimax-m3")))
    client = sdk(proxy)
    msg = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=123, system="be brief",
        messages=[{"role": "user", "content": "héllo"}], metadata={"user_id": "u"})
    assert msg.id == "msg_up_1" and msg.content[0].text == "from minimax"
    assert upstream.calls(GO_CHAT) == []
    rec = upstream.calls(GO_MESSAGES)[0]
    sent = rec.json
    assert sent["model"] == "minimax-m3"
    assert sent == {"model": "minimax-m3", "max_tokens": 123, "system": "be brief",
                    "messages": [{"role": "user", "content": "héllo"}], "metadata": {"user_id": "u"}}
    assert rec.headers["x-api-key"] == API_KEY
    assert rec.headers["anthropic-version"] == client.default_headers["anthropic-version"]  # the client's own
    assert rec.headers["authorization"] == f"Bearer {API_KEY}"
    assert "anthropic-beta" not in rec.headers


def test_anthropic_answer_relayed_verbatim_when_it_names_the_requested_model(upstream, start_proxy):
    raw = b'{"id":"msg_v","type":"message","role":"assistant","model":"minimax-m3",' \
          b'"content":[{"type":"text","text":"x"}],"stop_reason":"end_turn","stop_sequence":null,' \
          b'"usage":{"input_tokens":1,"output_tokens":1},  "odd_spacing" : 1.50}'
    upstream.on(GO_MESSAGES, status(200, raw=raw))
    proxy = start_proxy(make_config(upstream, **go_chain("minimax-m3")))
    resp = requests.post(proxy.url + "/v1/messages", timeout=10,
                         json={"model": "minimax-m3", "max_tokens": 10, "messages": USER})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.content == raw


# -- upstream requests: auth and session ---------------------------------------


def test_upstream_auth_bearer_and_client_key_not_forwarded(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    proxy = start_proxy(make_config(upstream, **FAST))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="client-own-key-xyz", max_retries=0,
                                 default_headers={"anthropic-beta": "some-beta", "cookie": "c=1"})
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    headers = upstream.calls(GO_CHAT)[0].headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-api-key" not in headers
    assert "anthropic-beta" not in headers and "cookie" not in headers
    assert "client-own-key-xyz" not in json.dumps(headers)
    assert headers["x-opencode-session"]


def test_session_from_claude_code_session_header(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    proxy = start_proxy(make_config(upstream, **FAST))
    sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER,
                               metadata={"user_id": "user_abc_account__session_11111111-2222"},
                               extra_headers={"x-claude-code-session-id": "cc-session-42"})
    assert upstream.calls(GO_CHAT)[0].headers["x-opencode-session"] == "cc-session-42"


def test_session_from_metadata_user_id(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    proxy = start_proxy(make_config(upstream, **FAST))
    user_id = "user_0123abcd_account_4567_session_9f8e7d6c-aaaa-bbbb-cccc-123456789abc"
    sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER,
                               metadata={"user_id": user_id})
    assert upstream.calls(GO_CHAT)[0].headers["x-opencode-session"] == "9f8e7d6c-aaaa-bbbb-cccc-123456789abc"


def test_session_from_json_shaped_metadata_user_id(upstream, start_proxy, sdk):
    """Newer Claude Code puts a JSON object in ``metadata.user_id``; its
    ``session_id`` is the session part (not the literal "id" of the key)."""
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    proxy = start_proxy(make_config(upstream, **FAST))
    client = sdk(proxy)
    for session in ("5b0c2d1e-1111-4222-8333-944445555666", "0a9b8c7d-aaaa-4bbb-8ccc-dddddddddddd"):
        user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "acc-uuid", "session_id": session})
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER, metadata={"user_id": user_id})
    sessions = [c.headers["x-opencode-session"] for c in upstream.calls(GO_CHAT)]
    assert sessions == ["5b0c2d1e-1111-4222-8333-944445555666", "0a9b8c7d-aaaa-4bbb-8ccc-dddddddddddd"]


def test_session_stable_across_two_turns_without_session_info(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, json_body(chat_completion("Fine.")))
    proxy = start_proxy(make_config(upstream, **FAST))
    client = sdk(proxy)
    first = [{"role": "user", "content": "Start of conversation A"}]
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=first)
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=first + [
        {"role": "assistant", "content": "Fine."}, {"role": "user", "content": "And then?"}])
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10,
                           messages=[{"role": "user", "content": "A different conversation B"}])
    a1, a2, b1 = (c.headers["x-opencode-session"] for c in upstream.calls(GO_CHAT))
    assert a1 and a1 == a2
    assert b1 and b1 != a1


# -- fallback and circuit breakers, as the client and upstream see them ---------


def by_model(**queues):
    """One fake chat path serving several models: each model id (``-`` in
    the id spelled ``_`` in the keyword) gets its own script queue, the last
    script repeating, so a test scripts and counts each model separately."""
    queues = {k.replace("_", "-"): list(v) for k, v in queues.items()}

    def script(h, rec):
        queue = queues[rec.json["model"]]
        (queue.pop(0) if len(queue) > 1 else queue[0])(h, rec)

    return script


def models_called(upstream, path=GO_CHAT):
    return [c.json["model"] for c in upstream.calls(path)]


def ok(text):
    return json_body(chat_completion(text))


def held(seconds):
    """Hold the answer; the proxy's per-attempt deadline should drop us first."""
    def script(h, rec):
        if not h.wait_or_peer_close(seconds, rec):
            ok("too late")(h, rec)
    return script


def mixed_chain(*entries):
    """``entries`` are (provider, model_id); the first is primary."""
    first, *rest = [ModelConfig(provider=p, model_id=m) for p, m in entries]
    return dict(models={"default": first, "fast": first}, fallbacks={"default": tuple(rest), "fast": tuple(rest)})


def test_fallback_on_500_returns_next_models_answer(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(model_a=[status(500)], model_b=[ok("answer from b")]))
    proxy = start_proxy(make_config(upstream, **go_chain("model-a", "model-b")))
    raw = sdk(proxy).messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    msg = raw.parse()
    assert msg.content[0].text == "answer from b"
    assert msg.model == "claude-sonnet-4-6"  # issue #15: the client's name in the body...
    assert raw.headers["x-ocproxy-model"] == "model-b"  # ...the model that answered in the header
    assert models_called(upstream) == ["model-a", "model-b"]
    assert health(proxy)["metrics"]["fallbacks"] == 1


def test_a400_b400_two_attempts_502_breakers_closed(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(400, {"error": {"message": "bad for " + API_KEY}}))
    proxy = start_proxy(make_config(upstream, **go_chain("model-a", "model-b")))
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    err = info.value
    assert err.status_code == 502
    assert err.body == {"type": "error", "error": {"type": "api_error", "message":
                        "all models failed: model-a: 400 bad for [redacted]; model-b: 400 bad for [redacted]"}}
    assert err.response.headers["content-type"] == "application/json"
    assert models_called(upstream) == ["model-a", "model-b"]
    h = health(proxy)
    assert h["circuit_breakers"] == {"model-a": "closed", "model-b": "closed"}
    assert h["metrics"]["requests_failed"] == 1
    assert_no_key_leak(proxy, err.response.text)


def test_threshold1_a500_b200_opens_a_and_next_request_skips_a(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(model_a=[status(500)], model_b=[ok("b1"), ok("b2")]))
    proxy = start_proxy(make_config(upstream, breaker_threshold=1, **go_chain("model-a", "model-b")))
    client = sdk(proxy)
    assert client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER).content[0].text == "b1"
    assert health(proxy)["circuit_breakers"] == {"model-a": "open", "model-b": "closed"}
    assert client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER).content[0].text == "b2"
    assert models_called(upstream) == ["model-a", "model-b", "model-b"]
    assert health(proxy)["circuit_breakers"]["model-a"] == "open"


def test_threshold1_a500_b500_502_then_all_breakers_closed(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, status(500))
    proxy = start_proxy(make_config(upstream, breaker_threshold=1, **go_chain("model-a", "model-b")))
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["error"] == {"type": "api_error", "message":
                                        "all models failed: model-a: 500 status 500; model-b: 500 status 500"}
    assert models_called(upstream) == ["model-a", "model-b"]
    assert health(proxy)["circuit_breakers"] == {"model-a": "closed", "model-b": "closed"}


def test_threshold1_a400_b500_c200_a_closed_b_open(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(model_a=[status(400)], model_b=[status(500)], model_c=[ok("c")]))
    proxy = start_proxy(make_config(upstream, breaker_threshold=1, **go_chain("model-a", "model-b", "model-c")))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "c"
    assert health(proxy)["circuit_breakers"] == {"model-a": "closed", "model-b": "open", "model-c": "closed"}


def test_per_attempt_timeout_then_b_answers(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(model_a=[held(5)], model_b=[ok("b in time")]))
    proxy = start_proxy(make_config(upstream, **{**go_chain("model-a", "model-b"), "timeout_ms": 400}))
    started = time.monotonic()
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    elapsed = time.monotonic() - started
    assert msg.content[0].text == "b in time"
    assert 0.35 < elapsed < 3
    a_call = upstream.calls(GO_CHAT)[0]
    assert a_call.json["model"] == "model-a"
    assert a_call.closed_by_peer_at is not None  # the proxy dropped the held attempt
    assert models_called(upstream) == ["model-a", "model-b"]


def test_single_key_401_blocks_provider_go_b_skipped_zen_c_called(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(go_a=[status(401)], go_b=[ok("b")]))
    upstream.on(ZEN_CHAT, ok("from zen c"))
    cfg = make_config(upstream, **FAST, **mixed_chain(("opencode-go", "go-a"), ("opencode-go", "go-b"),
                                                      ("opencode-zen", "zen-c")))
    proxy = start_proxy(cfg)
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "from zen c"
    assert models_called(upstream) == ["go-a"]
    assert models_called(upstream, ZEN_CHAT) == ["zen-c"]
    assert health(proxy)["circuit_breakers"]["go-a"] == "closed"


def test_two_keys_401_next_model_called_with_second_key(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(go_a=[status(401)], go_b=[ok("b with k2")]))
    upstream.on(ZEN_CHAT, ok("zen"))
    cfg = make_config(upstream, **FAST, api_keys=("sk-first-key-1111", "sk-second-key-2222"),
                      **mixed_chain(("opencode-go", "go-a"), ("opencode-go", "go-b"), ("opencode-zen", "zen-c")))
    proxy = start_proxy(cfg)
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "b with k2"
    a, b = upstream.calls(GO_CHAT)
    assert a.headers["authorization"] == "Bearer sk-first-key-1111"
    assert b.headers["authorization"] == "Bearer sk-second-key-2222"
    assert upstream.calls(ZEN_CHAT) == []


def test_go_usage_limit_429_blocks_provider(upstream, start_proxy, sdk):
    limit = {"type": "error", "error": {"type": "GoUsageLimitError", "message": "usage limit reached"}}
    upstream.on(GO_CHAT, by_model(go_a=[status(429, limit)], go_b=[ok("b")]))
    upstream.on(ZEN_CHAT, ok("from zen c"))
    cfg = make_config(upstream, **FAST, api_keys=("sk-first-key-1111", "sk-second-key-2222"),
                      **mixed_chain(("opencode-go", "go-a"), ("opencode-go", "go-b"), ("opencode-zen", "zen-c")))
    proxy = start_proxy(cfg)
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "from zen c"
    assert models_called(upstream) == ["go-a"]
    assert health(proxy)["circuit_breakers"]["go-a"] == "closed"


def test_default_threshold3_opens_after_three_5xx_across_three_requests(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, by_model(model_a=[status(503)], model_b=[ok("b")]))
    proxy = start_proxy(make_config(upstream, **go_chain("model-a", "model-b")))
    client = sdk(proxy)
    for n in range(1, 4):
        assert client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER).content[0].text == "b"
        assert health(proxy)["circuit_breakers"]["model-a"] == ("open" if n == 3 else "closed")
    client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert models_called(upstream).count("model-a") == 3
    assert models_called(upstream).count("model-b") == 4


def test_all_models_behind_open_breakers_529_overloaded(upstream, start_proxy, sdk):
    """Request 1 (default scenario, chain a, b, c) opens a and b; request 2
    hits the think scenario whose chain is [a, b]: nothing to call."""
    a, b, c = (ModelConfig(model_id=m) for m in ("model-a", "model-b", "model-c"))
    cfg = make_config(upstream, **FAST, breaker_threshold=1,
                      models={"default": a, "think": a}, fallbacks={"default": (b, c), "think": (b,)})
    upstream.on(GO_CHAT, by_model(model_a=[status(500)], model_b=[status(502)], model_c=[ok("c")]))
    proxy = start_proxy(cfg)
    client = sdk(proxy)
    assert client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER).content[0].text == "c"
    assert len(upstream.calls(GO_CHAT)) == 3
    with pytest.raises(anthropic.OverloadedError) as info:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10,
                               messages=[{"role": "user", "content": "Think through this problem step by step"}])
    assert info.value.status_code == 529
    assert info.value.body == {"type": "error", "error": {"type": "overloaded_error", "message":
                               "all models failed: model-a: circuit breaker open; model-b: circuit breaker open"}}
    assert len(upstream.calls(GO_CHAT)) == 3
    # the exhausted chain still resets every breaker
    assert set(health(proxy)["circuit_breakers"].values()) == {"closed"}


def test_upstream_key_absent_from_errors_health_metrics(upstream, start_proxy, sdk):
    echo = {"error": {"message": f"invalid key {API_KEY}", "type": "auth"}}
    upstream.on(GO_CHAT, status(401, echo))
    upstream.on(ZEN_CHAT, status(500, raw=f"upstream echoes Bearer {API_KEY}".encode(), content_type="text/plain"))
    cfg = make_config(upstream, **FAST, **mixed_chain(("opencode-go", "go-a"), ("opencode-zen", "zen-c")))
    proxy = start_proxy(cfg)
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert info.value.status_code == 502
    assert_no_key_leak(proxy, info.value.response.text)


# -- what each failure kind does ---------------------------------------------


def truncated_body(h, rec):
    data = json.dumps(chat_completion("never whole")).encode()
    h.send_head(200, length=len(data) + 100)
    h.wfile.write(data[: len(data) // 2])


@pytest.mark.parametrize("failure,charged", [
    (status(200, raw=b"<html>not json</html>", content_type="text/html"), False),
    (json_body({"id": "x", "choices": []}), False),
    (truncated_body, True),  # the peer closed mid-answer: an aborted connection
    (status(404, {"error": {"message": "model not found"}}), False),
    (status(429, {"error": {"message": "slow down"}}), False),
    (status(503, raw=b"unavailable", content_type="text/plain"), True),
])
def test_failure_moves_to_next_model_breaker_only_for_retryable(upstream, start_proxy, sdk, failure,
                                                                            charged):
    upstream.on(GO_CHAT, by_model(model_a=[failure], model_b=[ok("b")]))
    proxy = start_proxy(make_config(upstream, breaker_threshold=1, **go_chain("model-a", "model-b")))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "b"
    assert models_called(upstream) == ["model-a", "model-b"]
    assert health(proxy)["circuit_breakers"]["model-a"] == ("open" if charged else "closed")


def test_connection_refused_is_retryable(upstream, start_proxy, sdk):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there now
    upstream.on(ZEN_CHAT, ok("from zen"))
    cfg = make_config(upstream, breaker_threshold=1, **FAST,
                      **mixed_chain(("opencode-go", "go-a"), ("opencode-zen", "zen-c")))
    go = dataclasses.replace(cfg.opencode_go, base_url=f"http://127.0.0.1:{port}/v1/chat/completions")
    proxy = start_proxy(dataclasses.replace(cfg, opencode_go=go))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "from zen"
    assert health(proxy)["circuit_breakers"]["go-a"] == "open"


def test_anthropic_endpoint_unusable_200_falls_back(upstream, start_proxy, sdk):
    upstream.on(GO_MESSAGES, status(200, raw=b"{not json"))
    upstream.on(GO_CHAT, ok("from chat model"))
    proxy = start_proxy(make_config(upstream, **go_chain("minimax-m3", "kimi-k2.6")))
    msg = sdk(proxy).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=USER)
    assert msg.content[0].text == "from chat model"
    assert len(upstream.calls(GO_MESSAGES)) == 1


def test_cancelled_client_gone_mid_attempt_aborts_upstream_no_failure(upstream, start_proxy):
    """The client leaving is a cancellation, not a model failure.
    The attempt in flight is dropped at once (not left to run to its
    deadline), nothing is charged, the next model is not tried, no 502."""
    upstream.on(GO_CHAT, by_model(model_a=[held(5)], model_b=[ok("b")]))
    proxy = start_proxy(make_config(upstream, breaker_threshold=1,
                                    **{**go_chain("model-a", "model-b"), "timeout_ms": 10_000}))
    body = json.dumps({"model": "m", "max_tokens": 10, "messages": USER}).encode()
    sock = socket.create_connection(("127.0.0.1", proxy.server.port))
    sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    deadline = time.monotonic() + 3
    while not upstream.calls(GO_CHAT) and time.monotonic() < deadline:
        time.sleep(0.01)
    left_at = time.monotonic()
    sock.close()
    deadline = left_at + 3
    while health(proxy)["metrics"]["client_cancelled"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    rec = upstream.calls(GO_CHAT)[0]
    assert rec.closed_by_peer_at is not None and rec.closed_by_peer_at - left_at < 1.0
    h = health(proxy)
    assert h["metrics"]["client_cancelled"] == 1
    assert h["metrics"]["requests_received"] == 1 and h["metrics"]["requests_failed"] == 0
    assert h["circuit_breakers"] == {"model-a": "closed"}
    assert models_called(upstream) == ["model-a"]


def test_one_client_leaving_cancels_only_its_own_request(upstream, start_proxy):
    """Every waiting non-streaming request is watched by one poll per tick:
    the client that leaves gets its upstream call dropped at
    once; the two others, waiting alongside it, get their answers."""
    upstream.on(GO_CHAT, by_model(model_a=[held(1.5)]))
    proxy = start_proxy(make_config(upstream, **{**go_chain("model-a"), "timeout_ms": 10_000}))
    body = json.dumps({"model": "m", "max_tokens": 10, "messages": USER}).encode()
    request = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    clients = [socket.create_connection(("127.0.0.1", proxy.server.port)) for _ in range(3)]
    for sock in clients:
        sock.sendall(request)
    deadline = time.monotonic() + 3
    while len(upstream.calls(GO_CHAT)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(upstream.calls(GO_CHAT)) == 3
    left_at = time.monotonic()
    clients[1].close()
    answers = []
    for sock in (clients[0], clients[2]):
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        answers.append(data)
    assert all(a.startswith(b"HTTP/1.1 200") and b"too late" in a for a in answers), answers
    closed = [r.closed_by_peer_at for r in upstream.calls(GO_CHAT)]
    assert sum(t is not None for t in closed) == 1
    assert min(t for t in closed if t is not None) - left_at < 1.0
    assert health(proxy)["metrics"]["client_cancelled"] == 1
