"""Anthropic ⇄ OpenAI Responses API, both ways: tool calls as function_call
items, reasoning summaries as thinking, and cached usage.

Upstream shapes are recorded from the public Responses API reference
(`response.output_item.added`, `response.function_call_arguments.delta`,
`response.output_text.delta`, `response.reasoning_summary_text.delta`,
`response.completed`, usage `input_tokens_details.cached_tokens`).
"""

from __future__ import annotations

import json

import pytest

from ocproxy.config import ModelConfig
from ocproxy.errors import UpstreamDataError
from ocproxy.translate import sse
from tests.sseclient import check_grammar, tool_input, translate
from tests.sseclient import frame_events as parse
from ocproxy.translate.responses import (
    MIN_OUTPUT_TOKENS,
)
from ocproxy.translate.dialects import DIALECTS
from ocproxy.translate.ids import sequential
from ocproxy.request import checked_request
from ocproxy.translate import responses
from ocproxy.translate.responses_stream import ResponsesStreamTranslator, convert_response
from ocproxy.translate.tools import canonical_empty_schema


def build_request(body: dict, model, stream):
    """The builder fed as the proxy feeds it: a type-checked MessagesRequest."""
    return responses.build_request(checked_request(body), model, stream)


GPT = ModelConfig(provider="opencode-zen", model_id="gpt-5.4")


def M(model_id="gpt-5.4", **kw) -> ModelConfig:
    return ModelConfig(provider="opencode-zen", model_id=model_id, **kw)


def build(messages, model=GPT, *, stream=False, **req):
    body = build_request({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages, **req}, model, stream)
    return json.loads(sse.dumps(body))  # what goes on the wire


def user_msg(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant_msg(text):
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

# ---------------------------------------------------------------------------
# request: top level


def test_basic_request_top_level():
    body = build([{"role": "user", "content": "hello"}], system="Be brief.")
    assert body == {
        "model": "gpt-5.4",
        "instructions": "Be brief.",
        "input": [user_msg("hello")],
        "max_output_tokens": 1024,
        "store": False,
        # issue 14 item 13: reasoning is replayed from its encrypted form
        "include": ["reasoning.encrypted_content"],
    }


def test_stream_flag_only_when_streaming():
    assert build([{"role": "user", "content": "x"}], stream=True)["stream"] is True
    assert "stream" not in build([{"role": "user", "content": "x"}], stream=False)


def test_system_blocks_joined_and_absent_system_omitted():
    system = [{"type": "text", "text": "You are "}, {"type": "text", "text": "Claude Code."}]
    assert build([{"role": "user", "content": "x"}], system=system)["instructions"] == "You are \n\nClaude Code."
    assert "instructions" not in build([{"role": "user", "content": "x"}])


def test_strings_survive_serialisation():
    system = 'line1\nline2 "q" \\'
    raw = sse.dumps(build_request({"system": system, "messages": [{"role": "user", "content": system}]}, GPT, True))
    body = json.loads(raw)
    assert body["instructions"] == system
    assert body["input"][0]["content"][0]["text"] == system


# (request max_tokens, configured max_tokens) -> max_output_tokens
MAX_TOKENS = [
    pytest.param(1024, 0, 1024, id="request"),
    pytest.param(1024, 4096, 1024, id="config-above-request-is-no-raise"),  # issue 15: a cap
    pytest.param(32000, 2000, 2000, id="config-caps-request"),
    pytest.param(500_000, 0, 128_000, id="clamped-to-the-models-output-limit"),
    pytest.param(None, 4096, 4096, id="config-alone-when-client-sent-none"),
    pytest.param(1, 0, MIN_OUTPUT_TOKENS, id="clamped-to-api-minimum"),
    pytest.param(None, 0, None, id="none"),
    pytest.param(0, 0, None, id="zero-is-unset"),
]


@pytest.mark.parametrize("requested, configured, sent", MAX_TOKENS)
def test_max_output_tokens(requested, configured, sent):
    req = {"messages": [{"role": "user", "content": "x"}]}
    if requested is not None:
        req["max_tokens"] = requested
    body = build_request(req, M(max_tokens=configured), False)
    assert body.get("max_output_tokens") == sent


# model, request temperature/top_p, configured temperature -> sent temperature, top_p
SAMPLING = [
    pytest.param("gpt-5.4", 0.7, 0.9, 0.0, None, None, id="gpt-5-rejects-sampling"),
    pytest.param("gpt-5.1-codex", 0.7, None, 0.5, None, None, id="codex-config-ignored-too"),
    pytest.param("o3-mini", 0.2, None, 0.0, None, None, id="o-series"),
    pytest.param("gpt-4.1", 0.7, 0.9, 0.0, 0.7, 0.9, id="non-reasoning-gets-request"),
    pytest.param("gpt-4.1", 0.7, None, 0.3, 0.3, None, id="config-wins"),
]


@pytest.mark.parametrize("model_id, temp, top_p, cfg, sent_temp, sent_top_p", SAMPLING)
def test_sampling_parameters(model_id, temp, top_p, cfg, sent_temp, sent_top_p):
    req = {"messages": [{"role": "user", "content": "x"}], "temperature": temp}
    if top_p is not None:
        req["top_p"] = top_p
    body = build_request(req, M(model_id, temperature=cfg), False)
    assert body.get("temperature") == sent_temp
    assert body.get("top_p") == sent_top_p


# configured effort, request thinking -> reasoning
REASONING = [
    pytest.param("high", None, {"effort": "high", "summary": "auto"}, id="configured"),
    pytest.param("low", {"type": "enabled", "budget_tokens": 9000}, {"effort": "low", "summary": "auto"}, id="config-wins"),
    pytest.param("max", None, {"effort": "high", "summary": "auto"}, id="max-has-no-equivalent"),
    pytest.param("high", {"type": "disabled"}, None, id="request-disabled"),
    pytest.param("", {"type": "enabled", "budget_tokens": 4096}, {"effort": "medium", "summary": "auto"}, id="request-budget-sets-effort"),
]


@pytest.mark.parametrize("effort, thinking, sent", REASONING)
def test_reasoning(effort, thinking, sent):
    req = {"messages": [{"role": "user", "content": "x"}]}
    if thinking:
        req["thinking"] = thinking
    assert build_request(req, M(reasoning_effort=effort), False).get("reasoning") == sent


# ---------------------------------------------------------------------------
# request: tools


def test_tools_converted_with_sanitised_schemas():
    tools = [
        WEATHER_TOOL,
        {"name": "", "input_schema": {"type": "object"}},
        {"name": "   ", "input_schema": {"type": "object"}},
        {"name": "Bash", "input_schema": {}},
        {"name": "NoOp", "description": "", "input_schema": {"type": "object"}},
        {"name": "Search", "input_schema": {"properties": {"query": {"type": "string"}}}},
    ]
    body = build([{"role": "user", "content": "x"}], tools=tools)
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": WEATHER_TOOL["input_schema"],
            "strict": False,
        },
        {"type": "function", "name": "Bash", "parameters": canonical_empty_schema(), "strict": False},
        {"type": "function", "name": "NoOp", "parameters": {"type": "object", "properties": {}}, "strict": False},
        {
            "type": "function",
            "name": "Search",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            "strict": False,
        },
    ]


def test_no_surviving_tool_omits_tools_and_tool_choice():
    body = build([{"role": "user", "content": "x"}], tools=[{"name": ""}], tool_choice={"type": "any"})
    assert "tools" not in body and "tool_choice" not in body


TOOL_CHOICE = [
    pytest.param({"type": "auto"}, "auto", id="auto"),
    pytest.param({"type": "any"}, "required", id="any"),
    pytest.param({"type": "none"}, "none", id="none"),
    pytest.param({"type": "tool", "name": "get_weather"}, {"type": "function", "name": "get_weather"}, id="tool"),
    pytest.param({"type": "tool", "name": "unknown"}, None, id="tool-not-offered"),
    pytest.param(None, None, id="absent"),
]


@pytest.mark.parametrize("choice, sent", TOOL_CHOICE)
def test_tool_choice(choice, sent):
    req = {"tools": [WEATHER_TOOL]}
    if choice is not None:
        req["tool_choice"] = choice
    assert build([{"role": "user", "content": "x"}], **req).get("tool_choice") == sent


def test_disable_parallel_tool_use():
    body = build(
        [{"role": "user", "content": "x"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert body["parallel_tool_calls"] is False


# ---------------------------------------------------------------------------
# request: conversation


def test_multi_turn_tool_conversation():
    messages = [
        {"role": "user", "content": "Weather in Kigali and Lima?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two cities, two calls.", "signature": "sig"},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Kigali"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Lima"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "24°C sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": [{"type": "text", "text": "18°C"}, {"type": "text", "text": " fog"}]},
                {"type": "text", "text": "Also Quito?"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_03", "name": "get_weather", "input": {"city": "Quito"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_03", "content": "15°C"}]},
        {"role": "assistant", "content": "Kigali 24°C, Lima 18°C, Quito 15°C."},
        {"role": "user", "content": "Thanks"},
    ]
    body = build(messages, tools=[WEATHER_TOOL])
    assert body["input"] == [
        user_msg("Weather in Kigali and Lima?"),
        assistant_msg("Checking both."),
        {"type": "function_call", "call_id": "toolu_01", "name": "get_weather", "arguments": '{"city":"Kigali"}'},
        {"type": "function_call", "call_id": "toolu_02", "name": "get_weather", "arguments": '{"city":"Lima"}'},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "24°C sunny"},
        {"type": "function_call_output", "call_id": "toolu_02", "output": "18°C fog"},
        user_msg("Also Quito?"),
        {"type": "function_call", "call_id": "toolu_03", "name": "get_weather", "arguments": '{"city":"Quito"}'},
        {"type": "function_call_output", "call_id": "toolu_03", "output": "15°C"},
        assistant_msg("Kigali 24°C, Lima 18°C, Quito 15°C."),
        user_msg("Thanks"),
    ]


def test_assistant_text_after_tool_use_keeps_block_order():
    content = [
        {"type": "text", "text": "a"},
        {"type": "tool_use", "id": "t1", "name": "f", "input": None},
        {"type": "text", "text": "b"},
    ]
    body = build([{"role": "user", "content": "x"}, {"role": "assistant", "content": content}])
    assert body["input"][1:] == [
        assistant_msg("a"),
        {"type": "function_call", "call_id": "t1", "name": "f", "arguments": "{}"},
        assistant_msg("b"),
    ]


def test_images_become_input_image_data_urls():
    content = [
        {"type": "text", "text": "What's in this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert build([{"role": "user", "content": content}])["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What's in this image?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"},
                {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
            ],
        }
    ]


def test_orphan_tool_result_becomes_text():
    """History compacted away the call: an output with no matching
    function_call is a 400, so the result is passed as user text."""
    content = [{"type": "tool_result", "tool_use_id": "toolu_gone", "content": "ok"}, {"type": "text", "text": "go on"}]
    assert build([{"role": "user", "content": content}])["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "[Tool result for toolu_gone] ok"},
                {"type": "input_text", "text": "go on"},
            ],
        }
    ]


def test_tool_result_images_ride_in_the_following_user_message():
    content = [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_9",
            "content": [
                {"type": "text", "text": "screenshot taken"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
            ],
        }
    ]
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "screenshot", "input": {}}]}
    assert build([call, {"role": "user", "content": content}])["input"][1:] == [
        {"type": "function_call_output", "call_id": "toolu_9", "output": "screenshot taken"},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/", "detail": "auto"}],
        },
    ]


def test_system_role_message_becomes_developer_message_in_place():
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "system", "content": [{"type": "text", "text": "<system-reminder>todo</system-reminder>"}]},
        {"role": "system", "content": ""},
    ]
    assert build(messages)["input"] == [
        user_msg("hello"),
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<system-reminder>todo</system-reminder>"}]},
    ]


def test_arguments_are_compact_utf8_json():
    content = [{"type": "tool_use", "id": "t", "name": "w", "input": {"text": "héllo 世界", "n": [1, 2]}}]
    item = build([{"role": "user", "content": "x"}, {"role": "assistant", "content": content}])["input"][1]
    assert item["arguments"] == '{"text":"héllo 世界","n":[1,2]}'


# ---------------------------------------------------------------------------
# response (non-streaming)

RECORDED_TEXT = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "model": "gpt-5.4",
    "output": [
        {
            "type": "message",
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "In a peaceful grove beneath a silver moon...", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 87,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 123,
    },
}

RECORDED_TOOL_CALL = {
    "id": "resp_abc",
    "object": "response",
    "status": "completed",
    "output": [
        {
            "id": "rs_123",
            "type": "reasoning",
            "summary": [
                {"type": "summary_text", "text": "**Checking weather**"},
                {"type": "summary_text", "text": "I should call get_weather."},
            ],
        },
        {
            "type": "function_call",
            "id": "fc_12345xyz",
            "call_id": "call_12345xyz",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
    ],
    "usage": {
        "input_tokens": 2006,
        "input_tokens_details": {"cached_tokens": 1920},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 256},
        "total_tokens": 2306,
    },
}


def test_convert_text_response():
    out = convert_response(RECORDED_TEXT, GPT, sequential(), [])
    assert out["id"].startswith("msg_")
    assert {k: v for k, v in out.items() if k != "id"} == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "In a peaceful grove beneath a silver moon..."}],
        "model": "gpt-5.4",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 36, "output_tokens": 87},
    }


def test_convert_reasoning_and_function_call():
    out = convert_response(RECORDED_TOOL_CALL, GPT, sequential(), [])
    assert out["content"] == [
        {
            "type": "thinking",
            "thinking": "**Checking weather**\n\nI should call get_weather.",
            "signature": sse.THINKING_SIGNATURE,
        },
        {"type": "tool_use", "id": "call_12345xyz", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert out["stop_reason"] == "tool_use"
    # cached prompt tokens are moved out of input_tokens, so they count once
    assert out["usage"] == {"input_tokens": 86, "output_tokens": 300, "cache_read_input_tokens": 1920}


# (arguments) -> tool input
ARGUMENTS = [
    pytest.param('{"a":1}', {"a": 1}, id="object"),
    pytest.param("", {}, id="empty"),
    pytest.param("   ", {}, id="whitespace"),
    pytest.param("{broken", {}, id="invalid"),
    pytest.param("[1,2]", {}, id="not-object"),
]


@pytest.mark.parametrize("arguments, parsed", ARGUMENTS)
def test_function_call_arguments(arguments, parsed):
    body = {"output": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": arguments}]}
    assert convert_response(body, GPT, sequential(), [])["content"] == [{"type": "tool_use", "id": "c", "name": "f", "input": parsed}]


def test_text_then_tool_keeps_output_order():
    body = {
        "output": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        ]
    }
    assert [b["type"] for b in convert_response(body, GPT, sequential(), [])["content"]] == ["text", "tool_use"]


# (status, incomplete_details, output) -> stop_reason
STOP = [
    pytest.param("completed", None, "text", "end_turn", id="completed"),
    pytest.param("incomplete", {"reason": "max_output_tokens"}, "text", "max_tokens", id="max-output-tokens"),
    pytest.param("incomplete", {"reason": "content_filter"}, "text", "end_turn", id="content-filter"),
    pytest.param("completed", None, "call", "tool_use", id="tool-call"),
]


@pytest.mark.parametrize("status, details, kind, stop", STOP)
def test_stop_reason(status, details, kind, stop):
    item = (
        {"type": "message", "content": [{"type": "output_text", "text": "x"}]}
        if kind == "text"
        else {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    )
    body = {"status": status, "incomplete_details": details, "output": [item]}
    assert convert_response(body, GPT, sequential(), [])["stop_reason"] == stop


def test_reasoning_only_or_empty_text_message():
    body = {"output": [{"type": "message", "content": [{"type": "output_text", "text": ""}]}]}
    assert convert_response(body, GPT, sequential(), [])["content"] == [{"type": "text", "text": ""}]
    body = {"output": [{"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "raw"}]}]}
    assert convert_response(body, GPT, sequential(), [])["content"][0]["thinking"] == "raw"


def test_refusal_becomes_text():
    body = {"output": [{"type": "message", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}]}
    assert convert_response(body, GPT, sequential(), [])["content"] == [{"type": "text", "text": "I can't help with that."}]


@pytest.mark.parametrize(
    "body, words",
    [
        pytest.param({"output": []}, "empty Responses output", id="empty-output"),
        pytest.param({"status": "completed"}, "empty Responses output", id="absent-output"),
        pytest.param(
            {"status": "failed", "error": {"code": "server_error", "message": "boom"}, "output": []},
            "server_error: boom",
            id="failed",
        ),
    ],
)
def test_unusable_response_is_an_upstream_data_error(body, words):
    with pytest.raises(UpstreamDataError, match=words):
        convert_response(body, GPT, sequential(), [])


# ---------------------------------------------------------------------------
# streaming


def sse_lines(*events, done=False) -> bytes:
    """The upstream body as the API frames it: ``event:`` + ``data:`` lines."""
    out = b""
    for ev in events:
        out += f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode()
    if done:
        out += b"data: [DONE]\n\n"
    return out


def run(body: bytes, chunk: int | None = None) -> list[dict]:
    return translate(ResponsesStreamTranslator("gpt-5.4", sequential()), body, chunk)


def normalised(events):
    """Ids are unique per run; everything else must match exactly."""
    out = json.loads(json.dumps(events))
    for ev in out:
        if ev["type"] == "message_start":
            ev["message"]["id"] = "msg_X"
    return out


CREATED = {
    "type": "response.created",
    "sequence_number": 0,
    "response": {"id": "resp_1", "object": "response", "status": "in_progress", "output": []},
}
IN_PROGRESS = {"type": "response.in_progress", "sequence_number": 1, "response": {"id": "resp_1", "status": "in_progress"}}

TEXT_STREAM = sse_lines(
    CREATED,
    IN_PROGRESS,
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "sequence_number": 2,
        "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []},
    },
    {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "sequence_number": 3,
        "part": {"type": "output_text", "text": "", "annotations": []},
    },
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hel", "sequence_number": 4},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "lo \"wörld\"\n", "sequence_number": 5},
    {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0, "text": "Hello \"wörld\"\n", "sequence_number": 6},
    {
        "type": "response.completed",
        "sequence_number": 7,
        "response": {
            "id": "resp_1",
            "status": "completed",
            "output": [{"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "Hello"}]}],
            "usage": {"input_tokens": 37, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 11, "total_tokens": 48},
        },
    },
)


def test_text_stream():
    events = run(TEXT_STREAM)
    check_grammar(events)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1]["content_block"] == {"type": "text", "text": ""}
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == 'Hello "wörld"\n'
    assert events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 37, "output_tokens": 11}
    assert events[0]["message"]["model"] == "gpt-5.4"


TOOL_STREAM = sse_lines(
    CREATED,
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "sequence_number": 2,
        "item": {"id": "rs_1", "type": "reasoning", "summary": []},
    },
    {
        "type": "response.reasoning_summary_part.added",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "part": {"type": "summary_text", "text": ""},
    },
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": "**Plan**"},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "summary_index": 1, "delta": "Call the tool."},
    {"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0, "summary_index": 1, "text": "Call the tool."},
    {"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
    {
        "type": "response.output_item.added",
        "output_index": 1,
        "sequence_number": 8,
        "item": {
            "id": "fc_1",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": "call_abc",
            "name": "get_weather",
        },
    },
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": '{"ci'},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": 'ty":"Kigali"}'},
    {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1, "arguments": '{"city":"Kigali"}'},
    {
        "type": "response.output_item.done",
        "output_index": 1,
        "item": {"id": "fc_1", "type": "function_call", "status": "completed", "arguments": '{"city":"Kigali"}', "call_id": "call_abc", "name": "get_weather"},
    },
    {
        "type": "response.completed",
        "response": {
            "status": "completed",
            "usage": {"input_tokens": 2006, "input_tokens_details": {"cached_tokens": 1920}, "output_tokens": 40},
        },
    },
)


def test_reasoning_and_function_call_stream():
    events = run(TOOL_STREAM)
    check_grammar(events)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts == [
        {"type": "thinking", "thinking": "", "signature": sse.THINKING_SIGNATURE},
        {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {}},
    ]
    thinking = "".join(e["delta"].get("thinking", "") for e in events if e["type"] == "content_block_delta")
    assert thinking == "**Plan**\n\nCall the tool."
    # the thinking block is signed and closed before the tool block opens
    sig = next(i for i, e in enumerate(events) if e.get("delta", {}).get("type") == "signature_delta")
    assert events[sig + 1] == {"type": "content_block_stop", "index": 0}
    assert events.index({"type": "content_block_stop", "index": 0}) < [e["type"] for e in events].index("content_block_start", 2)
    # arguments arrive once, not duplicated by the .done events
    assert tool_input(events, 1) == {"city": "Kigali"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"input_tokens": 86, "output_tokens": 40, "cache_read_input_tokens": 1920}
    assert events[-1] == {"type": "message_stop"}


def test_parallel_calls_interleaved_by_output_index():
    body = sse_lines(
        {"type": "response.output_item.added", "output_index": 0, "item": {"id": "fc_a", "type": "function_call", "call_id": "call_a", "name": "f", "arguments": ""}},
        {"type": "response.output_item.added", "output_index": 1, "item": {"id": "fc_b", "type": "function_call", "call_id": "call_b", "name": "g", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_b", "output_index": 1, "delta": '{"y":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "output_index": 0, "delta": '{"x":1}'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_b", "output_index": 1, "delta": "2}"},
        {"type": "response.completed", "response": {"status": "completed"}},
    )
    events = run(body)
    check_grammar(events)
    assert tool_input(events, 0) == {"x": 1}
    assert tool_input(events, 1) == {"y": 2}


def test_deltas_keyed_by_item_id_when_output_index_missing():
    body = sse_lines(
        {"type": "response.output_item.added", "item": {"id": "fc_a", "type": "function_call", "call_id": "call_a", "name": "f"}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": '{"x":1}'},
        {"type": "response.completed", "response": {"status": "completed"}},
    )
    assert tool_input(run(body), 0) == {"x": 1}


def test_call_sent_whole_in_output_item_done():
    """A gateway that skips the added/delta events still yields the call."""
    body = sse_lines(
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": '{"command":"ls"}'},
        },
        {"type": "response.completed", "response": {"status": "completed"}},
    )
    events = run(body)
    check_grammar(events)
    assert tool_input(events, 0) == {"command": "ls"}


def test_arguments_only_in_done_event():
    body = sse_lines(
        {"type": "response.output_item.added", "output_index": 0, "item": {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "f"}},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0, "arguments": '{"a":true}'},
        {"type": "response.completed", "response": {"status": "completed"}},
    )
    assert tool_input(run(body), 0) == {"a": True}


def test_incomplete_stream_is_max_tokens():
    body = sse_lines(
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "partial"},
        {
            "type": "response.incomplete",
            "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "usage": {"input_tokens": 5, "output_tokens": 16}},
        },
    )
    events = run(body)
    check_grammar(events)
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert events[-2]["usage"] == {"input_tokens": 5, "output_tokens": 16}


@pytest.mark.parametrize("end", [b"", b"data: [DONE]\n\n"], ids=["eof", "done"])
def test_eof_or_done_before_completed_closes_with_zero_usage(end):
    body = sse_lines({"type": "response.output_text.delta", "delta": "hi"}) + end
    events = run(body)
    check_grammar(events)
    assert events[-2]["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


def test_completed_sets_done_and_later_bytes_are_ignored():
    t = ResponsesStreamTranslator("gpt-5.4", sequential())
    frames = t.feed(TEXT_STREAM)
    assert t.done
    assert t.feed(sse_lines({"type": "response.output_text.delta", "delta": "late"}, done=True)) == []
    assert t.close() == []
    events = parse(frames)
    check_grammar(events)
    assert "late" not in json.dumps(events)


@pytest.mark.parametrize("chunk", [1, 2, 7, 64])
def test_chunk_boundaries_do_not_matter(chunk):
    for body in (TEXT_STREAM, TOOL_STREAM):
        assert normalised(run(body, chunk)) == normalised(run(body))


def test_crlf_and_data_without_space_and_junk_lines():
    body = (
        b": keep-alive comment\r\n"
        b"event: response.output_text.delta\r\n"
        b'data:{"type":"response.output_text.delta","delta":"a"}\r\n\r\n'
        b"data: {not json\r\n"
        b"data: [1,2]\r\n"
        b'data: {"no_type":true}\r\n'
        b'data: {"type":"response.output_text.delta","delta":"b"}\r\n'
    )
    events = run(body)
    check_grammar(events)
    assert [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"] == ["a", "b"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty-body"),
        pytest.param(b": comment only\n\n", id="comments-only"),
        pytest.param(b"data: [DONE]\n\n", id="done-only"),
        pytest.param(b'{"error":{"message":"bad key"}}', id="json-error-body"),
    ],
)
def test_empty_stream_is_an_upstream_data_error(body):
    t = ResponsesStreamTranslator("gpt-5.4", sequential())
    with pytest.raises(UpstreamDataError, match="empty stream"):
        t.feed(body)
        t.close()


def test_completed_with_no_output_and_nothing_written_fails():
    t = ResponsesStreamTranslator("gpt-5.4", sequential())
    with pytest.raises(UpstreamDataError, match="empty Responses output"):
        t.feed(sse_lines(CREATED, {"type": "response.completed", "response": {"status": "completed", "output": []}}))


@pytest.mark.parametrize(
    "event, words",
    [
        pytest.param(
            {"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error", "message": "The model failed"}}},
            "server_error: The model failed",
            id="response.failed",
        ),
        pytest.param(
            {"type": "error", "code": "rate_limit_exceeded", "message": "Slow down", "param": None, "sequence_number": 3},
            "rate_limit_exceeded: Slow down",
            id="error-event",
        ),
    ],
)
def test_failure_events_raise(event, words):
    t = ResponsesStreamTranslator("gpt-5.4", sequential())
    with pytest.raises(UpstreamDataError, match=words):
        t.feed(sse_lines(CREATED, event))


def test_failure_after_frames_in_one_read_is_raised_next_call():
    """Frames already produced are delivered; the failure follows, so the
    client sees the same thing however the bytes were split."""
    t = ResponsesStreamTranslator("gpt-5.4", sequential())
    frames = t.feed(sse_lines({"type": "response.output_text.delta", "delta": "hi"}, {"type": "error", "message": "overloaded"}))
    assert [e["type"] for e in parse(frames)] == ["message_start", "content_block_start", "content_block_delta"]
    with pytest.raises(UpstreamDataError, match="overloaded"):
        t.close()


def test_translator_protocol_flags():
    t = ResponsesStreamTranslator("gpt-5.4", sequential())
    assert DIALECTS["responses"].pauses_heartbeat is False and t.done is False
    assert t.feed(sse_lines(CREATED)) == []  # nothing written before real output
