"""OpenCode Zen's Responses and Gemini APIs end to end: a
multi-turn tool conversation driven by the official SDK, streaming and not,
against fake upstreams that answer in each API's recorded shapes."""

from __future__ import annotations

import json

import pytest

from ocproxy.config import ModelConfig
from tests.conftest import API_KEY, ZEN_MODELS, ZEN_RESPONSES, make_config
from tests.fakes import json_body, sse, status

TOOLS = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string", "format": "city-name"}},
                     "required": ["city"], "additionalProperties": False,
                     "$schema": "http://json-schema.org/draft-07/schema#"},
}]
QUESTION = {"role": "user", "content": "What's the weather in Paris?"}
ARGS = {"city": "Paris"}

# -- recorded shapes: OpenAI Responses ----------------------------------------

RESP_USAGE = {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 30}, "output_tokens": 9,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 49}


def responses_call_body():
    return {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.4",
            "output": [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need the tool."}]},
                       {"type": "function_call", "id": "fc_1", "call_id": "call_abc", "name": "get_weather",
                        "arguments": json.dumps(ARGS), "status": "completed"}],
            "usage": RESP_USAGE}


def responses_text_body():
    return {"id": "resp_2", "object": "response", "status": "completed", "model": "gpt-5.4",
            "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": "Sunny, 21 °C.", "annotations": []}]}],
            "usage": RESP_USAGE}


def _ev(obj) -> bytes:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()


def responses_call_stream():
    encoded = json.dumps(ARGS)
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
         "item": {"type": "function_call", "id": "fc_1", "call_id": "call_abc", "name": "get_weather",
                  "arguments": "", "status": "in_progress"}},
    ]
    events += [{"type": "response.function_call_arguments.delta", "sequence_number": 2 + i, "item_id": "fc_1",
                "output_index": 0, "delta": encoded[i:i + 5]} for i in range(0, len(encoded), 5)]
    events += [
        {"type": "response.function_call_arguments.done", "sequence_number": 50, "item_id": "fc_1", "output_index": 0,
         "arguments": encoded},
        {"type": "response.output_item.done", "sequence_number": 51, "output_index": 0,
         "item": {"type": "function_call", "id": "fc_1", "call_id": "call_abc", "name": "get_weather",
                  "arguments": encoded, "status": "completed"}},
        {"type": "response.completed", "sequence_number": 52, "response": responses_call_body()},
    ]
    return sse(*[_ev(e) for e in events], delay=0.002)


def responses_text_stream():
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_2", "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
         "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", "sequence_number": 2, "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}},
        {"type": "response.output_text.delta", "sequence_number": 3, "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "delta": "Sunny, "},
        {"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "delta": "21 °C."},
        {"type": "response.output_text.done", "sequence_number": 5, "item_id": "msg_1", "output_index": 0,
         "content_index": 0, "text": "Sunny, 21 °C."},
        {"type": "response.completed", "sequence_number": 6, "response": responses_text_body()},
    ]
    return sse(*[_ev(e) for e in events], delay=0.002)


# -- recorded shapes: Gemini ----------------------------------------------------

GEM_USAGE = {"promptTokenCount": 40, "cachedContentTokenCount": 30, "candidatesTokenCount": 9, "totalTokenCount": 49}


def gemini_call(stream: bool):
    body = {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": ARGS}}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": GEM_USAGE, "modelVersion": "gemini-3-flash"}
    if not stream:
        return json_body(body)
    return sse(b"data: " + json.dumps(body).encode() + b"\r\n\r\n")


def gemini_text(stream: bool):
    if not stream:
        return json_body({"candidates": [{"content": {"role": "model", "parts": [{"text": "Sunny, 21 °C."}]},
                                          "finishReason": "STOP", "index": 0}], "usageMetadata": GEM_USAGE})
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Sunny, "}]}, "index": 0}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "21 °C."}]}, "finishReason": "STOP",
                         "index": 0}], "usageMetadata": GEM_USAGE},
    ]
    return sse(*[b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks], delay=0.002)


def zen(model_id: str, upstream):
    model = ModelConfig(provider="opencode-zen", model_id=model_id)
    return make_config(upstream, models={"default": model, "fast": model})


def run_conversation(client, stream: bool):
    """Turn 1: the model calls the tool. Turn 2: the tool result goes back
    and the model answers in text. Returns both answers."""
    def ask(messages):
        kwargs = dict(model="claude-sonnet-4-5", max_tokens=200, tools=TOOLS, messages=messages)
        if stream:
            with client.messages.stream(**kwargs) as s:
                return s.get_final_message()
        return client.messages.create(**kwargs)

    first = ask([QUESTION])
    tool_use = next(b for b in first.content if b.type == "tool_use")
    history = [QUESTION, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny, 21C"}]}]
    second = ask(history)
    return first, tool_use, second


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses_api_tool_conversation(upstream, start_proxy, sdk, stream):
    if stream:
        upstream.on(ZEN_RESPONSES, responses_call_stream(), responses_text_stream())
    else:
        upstream.on(ZEN_RESPONSES, json_body(responses_call_body()), json_body(responses_text_body()))
    proxy = start_proxy(zen("gpt-5.4", upstream))
    first, tool_use, second = run_conversation(sdk(proxy), stream)

    assert first.stop_reason == "tool_use"
    assert tool_use.name == "get_weather" and tool_use.input == ARGS and tool_use.id == "call_abc"
    assert second.stop_reason == "end_turn"
    assert "".join(b.text for b in second.content if b.type == "text") == "Sunny, 21 °C."
    assert (second.usage.input_tokens, second.usage.cache_read_input_tokens, second.usage.output_tokens) == (10, 30, 9)

    calls = upstream.calls(ZEN_RESPONSES)
    assert len(calls) == 2
    for call in calls:
        assert call.headers["authorization"] == f"Bearer {API_KEY}"
        assert call.headers["x-opencode-session"]
        assert call.json["model"] == "gpt-5.4"
        assert call.json.get("stream", False) is stream
        [tool] = call.json["tools"]
        assert tool["type"] == "function" and tool["name"] == "get_weather"
    assert calls[0].headers["x-opencode-session"] == calls[1].headers["x-opencode-session"]
    items = calls[1].json["input"]
    fc = next(i for i in items if i.get("type") == "function_call")
    out = next(i for i in items if i.get("type") == "function_call_output")
    assert fc["call_id"] == out["call_id"] == "call_abc"
    assert json.loads(fc["arguments"]) == ARGS
    assert out["output"] == "sunny, 21C"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_api_tool_conversation(upstream, start_proxy, sdk, stream):
    action = ":streamGenerateContent" if stream else ":generateContent"
    path = f"{ZEN_MODELS}/gemini-3-flash{action}"
    upstream.on(path, gemini_call(stream), gemini_text(stream))
    proxy = start_proxy(zen("gemini-3-flash", upstream))
    first, tool_use, second = run_conversation(sdk(proxy), stream)

    assert first.stop_reason == "tool_use"
    assert tool_use.name == "get_weather" and tool_use.input == ARGS
    assert tool_use.id.startswith("toolu_")
    assert second.stop_reason == "end_turn"
    assert "".join(b.text for b in second.content if b.type == "text") == "Sunny, 21 °C."
    assert (second.usage.input_tokens, second.usage.cache_read_input_tokens) == (10, 30)

    calls = upstream.calls(path)
    assert len(calls) == 2
    for call in calls:
        assert call.headers["x-goog-api-key"] == API_KEY
        assert call.headers["x-opencode-session"]
        if stream:
            assert call.path.endswith(":streamGenerateContent?alt=sse")
        params = call.json["tools"][0]["functionDeclarations"][0]["parameters"]
        assert "additionalProperties" not in params and "$schema" not in params
        assert "format" not in params["properties"]["city"]  # Gemini rejects unknown formats
    contents = calls[1].json["contents"]
    call_part = next(p for c in contents for p in c["parts"] if "functionCall" in p)
    response_part = next(p for c in contents for p in c["parts"] if "functionResponse" in p)
    assert call_part["functionCall"] == {"name": "get_weather", "args": ARGS}
    assert response_part["functionResponse"]["name"] == "get_weather"
    assert "sunny, 21C" in json.dumps(response_part["functionResponse"]["response"])


def test_responses_failure_falls_back_through_the_shared_loop(upstream, start_proxy, sdk):
    """The Zen APIs use the same fallback loop and error classes as chat."""
    gpt = ModelConfig(provider="opencode-zen", model_id="gpt-5.4")
    gem = ModelConfig(provider="opencode-zen", model_id="gemini-3-flash")
    upstream.on(ZEN_RESPONSES, status(500))
    upstream.on(f"{ZEN_MODELS}/gemini-3-flash:streamGenerateContent", gemini_text(True))
    proxy = start_proxy(make_config(upstream, models={"default": gpt, "fast": gpt},
                                    fallbacks={"default": (gem,), "fast": (gem,)}))
    with sdk(proxy).messages.stream(model="x", max_tokens=50, messages=[QUESTION]) as s:
        assert "".join(s.text_stream) == "Sunny, 21 °C."
    assert len(upstream.calls(ZEN_RESPONSES)) == 1
