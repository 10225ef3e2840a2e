"""Anthropic ⇄ Google Gemini generateContent, both ways: tool calls as
functionCall/functionResponse parts, thinking as thought parts, the system
prompt as systemInstruction, toolConfig and cached usage.

Upstream shapes are recorded from the public Gemini API reference
(`generateContent`, `streamGenerateContent?alt=sse`, `functionCall` parts,
`thought: true` parts, `usageMetadata.cachedContentTokenCount`).
"""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from ocproxy.config import ModelConfig
from ocproxy.errors import UpstreamDataError
from ocproxy.translate import sse
from tests.sseclient import check_grammar, tool_input, translate
from tests.sseclient import frame_events as parse
from ocproxy.translate.gemini import (
    GEMINI_GENERATE,
    GEMINI_STREAM,
    SKIP_SIGNATURE,
    gemini_schema,
)
from ocproxy.translate.dialects import DIALECTS
from ocproxy.request import checked_request
from ocproxy.translate import gemini
from ocproxy.translate.gemini_stream import GeminiStreamTranslator, convert_response
from ocproxy.translate.ids import sequential


def build_request(body: dict, model, stream):
    """The builder fed as the proxy feeds it: a type-checked MessagesRequest."""
    return gemini.build_request(checked_request(body), model, stream)


FLASH = ModelConfig(provider="opencode-zen", model_id="gemini-3-flash")


def M(model_id="gemini-3-flash", **kw) -> ModelConfig:
    if isinstance(kw.get("thinking"), dict):
        kw["thinking"] = MappingProxyType(kw["thinking"])
    return ModelConfig(provider="opencode-zen", model_id=model_id, **kw)


def build(messages, model=FLASH, *, stream=False, **req):
    body = build_request({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages, **req}, model, stream)
    return json.loads(sse.dumps(body))  # what goes on the wire


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


def test_url_suffixes():
    assert GEMINI_GENERATE == ":generateContent"
    assert GEMINI_STREAM == ":streamGenerateContent?alt=sse"


# ---------------------------------------------------------------------------
# request


def test_basic_request():
    body = build([{"role": "user", "content": "hello"}], system="Be brief.")
    assert body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
        "generationConfig": {"maxOutputTokens": 1024},
    }


def test_stream_does_not_change_the_body():
    messages = [{"role": "user", "content": "hello"}]
    assert build(messages, stream=True) == build(messages, stream=False)


def test_no_system_no_system_instruction_and_json_escaping():
    assert "systemInstruction" not in build([{"role": "user", "content": "x"}])
    system = 'line1\nline2 "q" \\'
    body = build([{"role": "user", "content": "x"}], system=[{"type": "text", "text": system}])
    assert body["systemInstruction"]["parts"][0]["text"] == system


def test_multi_turn_tool_conversation():
    messages = [
        {"role": "user", "content": "Weather in Kigali and Lima?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two calls.", "signature": sse.THINKING_SIGNATURE},
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Kigali"}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {"city": "Lima"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "09:00"},
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "24°C"}]},
                {"type": "text", "text": "And Quito?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_03", "name": "get_weather", "input": {"city": "Quito"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_03", "content": "15°C"}]},
        {"role": "assistant", "content": "Kigali 24°C, Quito 15°C; Lima 09:00."},
        {"role": "user", "content": "Thanks"},
    ]
    assert build(messages)["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Kigali and Lima?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Checking both."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Kigali"}}, "thoughtSignature": SKIP_SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {"city": "Lima"}}, "thoughtSignature": SKIP_SIGNATURE},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"content": "09:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "24°C"}}},
                {"text": "And Quito?"},
            ],
        },
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Quito"}}, "thoughtSignature": SKIP_SIGNATURE}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "15°C"}}}]},
        {"role": "model", "parts": [{"text": "Kigali 24°C, Quito 15°C; Lima 09:00."}]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]


@pytest.mark.parametrize(
    "model_id, signed",
    [("gemini-3-flash", True), ("gemini-3.1-pro", True), ("gemini-2.5-flash", False), ("gemini-1.5-pro", False)],
)
def test_thought_signature_sentinel_only_where_enforced(model_id, signed):
    messages = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
    ]
    part = build(messages, M(model_id))["contents"][1]["parts"][0]
    assert ("thoughtSignature" in part) is signed


def test_same_role_turns_merged_and_empty_turns_dropped():
    messages = [
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "only thoughts", "signature": "s"}]},
        {"role": "user", "content": ""},
        {"role": "user", "content": "three"},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    assert build(messages)["contents"] == [
        {"role": "user", "parts": [{"text": "one"}, {"text": "two"}, {"text": "three"}]},
        {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]},
    ]


def test_orphan_tool_result_becomes_text():
    """History compacted away the call: a functionResponse without its
    functionCall would be rejected, so the result is passed as text."""
    messages = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_gone", "content": "ok"}]}]
    assert build(messages)["contents"] == [{"role": "user", "parts": [{"text": "[Tool result for toolu_gone] ok"}]}]


def test_images_become_inline_data():
    content = [
        {"type": "text", "text": "What's in this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg", "media_type": "image/jpeg"}},
    ]
    assert build([{"role": "user", "content": content}])["contents"][0]["parts"] == [
        {"text": "What's in this image?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
    ]


def test_tool_result_images_follow_the_function_responses():
    messages = [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [
                        {"type": "text", "text": "done"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
                    ],
                }
            ],
        },
    ]
    assert build(messages)["contents"][1]["parts"] == [
        {"functionResponse": {"name": "screenshot", "response": {"content": "done"}}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
    ]


def test_system_role_message_stays_in_place_as_user_text():
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi"},
        {"role": "system", "content": "<system-reminder>todo</system-reminder>"},
    ]
    assert build(messages)["contents"][-1] == {"role": "user", "parts": [{"text": "<system-reminder>todo</system-reminder>"}]}


def test_tools_become_function_declarations():
    tools = [
        WEATHER_TOOL,
        {"name": "", "input_schema": {"type": "object"}},
        {"name": "  ", "input_schema": {"type": "object"}},
        {"name": "NoArgs", "description": "", "input_schema": {}},
        {"name": "Broken", "input_schema": "{invalid"},
    ]
    assert build([{"role": "user", "content": "x"}], tools=tools)["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "description": "City name"}},
                        "required": ["city"],
                    },
                },
                {"name": "NoArgs"},
                {"name": "Broken"},
            ]
        }
    ]


def test_no_surviving_tool_omits_tools_and_tool_config():
    body = build([{"role": "user", "content": "x"}], tools=[{"name": ""}], tool_choice={"type": "any"})
    assert "tools" not in body and "toolConfig" not in body


TOOL_CONFIG = [
    pytest.param({"type": "auto"}, {"functionCallingConfig": {"mode": "AUTO"}}, id="auto"),
    pytest.param({"type": "any"}, {"functionCallingConfig": {"mode": "ANY"}}, id="any"),
    pytest.param({"type": "none"}, {"functionCallingConfig": {"mode": "NONE"}}, id="none"),
    pytest.param(
        {"type": "tool", "name": "get_weather"},
        {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        id="tool",
    ),
    pytest.param({"type": "tool", "name": "nope"}, None, id="tool-not-offered"),
    pytest.param(None, None, id="absent"),
]


@pytest.mark.parametrize("choice, sent", TOOL_CONFIG)
def test_tool_config(choice, sent):
    req = {"tools": [WEATHER_TOOL]}
    if choice is not None:
        req["tool_choice"] = choice
    assert build([{"role": "user", "content": "x"}], **req).get("toolConfig") == sent


# (request extras, model config) -> generationConfig
GENERATION = [
    pytest.param({}, {}, {"maxOutputTokens": 1024}, id="max-tokens-from-request"),
    pytest.param({}, {"max_tokens": 8192}, {"maxOutputTokens": 1024}, id="config-max-tokens-is-only-a-cap"),
    pytest.param({}, {"max_tokens": 512}, {"maxOutputTokens": 512}, id="config-max-tokens-caps"),
    pytest.param({"temperature": 0.2, "top_p": 0.9}, {}, {"maxOutputTokens": 1024, "temperature": 0.2, "topP": 0.9}, id="request-sampling"),
    pytest.param({"temperature": 0.2}, {"temperature": 0.7}, {"maxOutputTokens": 1024, "temperature": 0.7}, id="config-temperature-wins"),
    pytest.param(
        {"stop_sequences": ["a", "b", "c", "d", "e", "f"]},
        {},
        {"maxOutputTokens": 1024, "stopSequences": ["a", "b", "c", "d", "e"]},
        id="stop-sequences-capped-at-5",
    ),
    pytest.param(
        {"thinking": {"type": "enabled", "budget_tokens": 4096}},
        {},
        {"maxOutputTokens": 1024, "thinkingConfig": {"includeThoughts": True}},
        id="thinking-requested",
    ),
    pytest.param(
        {"thinking": {"type": "enabled", "budget_tokens": 4096}},
        {"reasoning_effort": "max"},
        {"maxOutputTokens": 1024, "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "high"}},
        id="thinking-with-configured-level",
    ),
    pytest.param({}, {"thinking": {"type": "enabled"}}, {"maxOutputTokens": 1024, "thinkingConfig": {"includeThoughts": True}}, id="thinking-configured"),
    pytest.param({}, {"reasoning_effort": "low"}, {"maxOutputTokens": 1024, "thinkingConfig": {"thinkingLevel": "low"}}, id="level-only"),
    pytest.param({"thinking": {"type": "disabled"}}, {"reasoning_effort": "high"}, {"maxOutputTokens": 1024}, id="thinking-disabled"),
]


@pytest.mark.parametrize("extra, cfg, generation", GENERATION)
def test_generation_config(extra, cfg, generation):
    assert build([{"role": "user", "content": "x"}], M(**cfg), **extra)["generationConfig"] == generation


def test_generation_config_omitted_when_empty():
    body = build_request({"messages": [{"role": "user", "content": "x"}]}, FLASH, False)
    assert "generationConfig" not in body


# ---------------------------------------------------------------------------
# tool schemas → Gemini's OpenAPI subset

SCHEMAS = [
    pytest.param(
        {"type": "object", "properties": {}, "additionalProperties": False},
        {"type": "object"},
        id="canonical-empty-loses-empty-properties",
    ),
    pytest.param(
        {"$schema": "x", "$id": "y", "type": "object", "properties": {"a": {"type": "string", "default": "d", "examples": ["e"], "pattern": "^a", "title": "A"}}},
        {"type": "object", "properties": {"a": {"type": "string"}}},
        id="unsupported-keys-dropped",
    ),
    pytest.param(
        {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}, "url": {"type": "string", "format": "uri"}, "n": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 9, "exclusiveMaximum": 10}}},
        {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}, "url": {"type": "string"}, "n": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 9}}},
        id="formats-and-bounds",
    ),
    pytest.param(
        {"type": "object", "properties": {"a": {"type": ["string", "null"]}, "b": {"type": ["string", "integer"]}}},
        {"type": "object", "properties": {"a": {"type": "string", "nullable": True}, "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}},
        id="type-lists",
    ),
    pytest.param(
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "count"}, "b": {"oneOf": [{"type": "string"}, {"type": "boolean"}]}}},
        {"type": "object", "properties": {"a": {"type": "integer", "description": "count", "nullable": True}, "b": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}}},
        id="anyOf-null-and-oneOf",
    ),
    pytest.param(
        {"type": "object", "properties": {"mode": {"enum": ["a", "b"]}, "k": {"const": "x"}, "n": {"type": "integer", "enum": [1, 2]}, "m": {"type": "string", "enum": ["x", None]}}},
        {"type": "object", "properties": {"mode": {"type": "string", "enum": ["a", "b"]}, "k": {"type": "string", "enum": ["x"]}, "n": {"type": "integer"}, "m": {"type": "string", "enum": ["x"], "nullable": True}}},
        id="enums",
    ),
    pytest.param(
        {"type": "object", "properties": {"tags": {"type": "array", "minItems": 1, "maxItems": 3}, "pairs": {"type": "array", "items": [{"type": "number"}]}, "any": {}}},
        {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}, "pairs": {"type": "array", "items": {"type": "number"}}, "any": {"type": "string"}}},
        id="arrays-and-untyped",
    ),
    pytest.param(
        {
            "type": "object",
            "properties": {"todo": {"$ref": "#/$defs/Todo"}, "list": {"type": "array", "items": {"$ref": "#/definitions/Item"}}},
            "$defs": {"Todo": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"], "additionalProperties": False}},
            "definitions": {"Item": {"type": "string", "description": "an item"}},
        },
        {
            "type": "object",
            "properties": {
                "todo": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
                "list": {"type": "array", "items": {"type": "string", "description": "an item"}},
            },
        },
        id="refs-inlined",
    ),
    pytest.param(
        {"type": "object", "properties": {"node": {"$ref": "#/$defs/Node"}}, "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}, "v": {"type": "string"}}}}},
        {"type": "object", "properties": {"node": {"type": "object", "properties": {"next": {"type": "object"}, "v": {"type": "string"}}}}},
        id="recursive-ref-cut",
    ),
    pytest.param(
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}},
        {"type": "object", "properties": {"x": {"type": "string"}}},
        id="unresolvable-ref",
    ),
    pytest.param(
        {"type": "object", "allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"properties": {"b": {"type": "number"}}}], "properties": {}},
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}, "required": ["a"]},
        id="allOf-merged",
    ),
    pytest.param(
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "ghost"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        id="required-limited-to-properties",
    ),
    pytest.param(
        {"type": "object", "properties": {"opts": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}}},
        {"type": "object", "properties": {"opts": {"type": "object"}}},
        id="nested-free-object",
    ),
]


@pytest.mark.parametrize("schema, converted", SCHEMAS)
def test_gemini_schema(schema, converted):
    assert gemini_schema(schema) == converted


def test_gemini_schema_does_not_mutate_input():
    schema = {"type": "object", "properties": {"a": {"type": ["string", "null"], "default": "x"}}}
    before = json.dumps(schema)
    gemini_schema(schema)
    assert json.dumps(schema) == before


# ---------------------------------------------------------------------------
# response (non-streaming)

RECORDED_TEXT = {
    "candidates": [
        {
            "content": {
                "parts": [{"text": "1+1 equals 2.", "thoughtSignature": "EjQKMgEM"}],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 15, "candidatesTokenCount": 6, "totalTokenCount": 21},
    "modelVersion": "gemini-3-flash",
    "responseId": "Il0taoSYJ5Cez7",
}

RECORDED_TOOL_CALL = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "The user wants the weather. ", "thought": True},
                    {"text": "I'll call the tool.", "thought": True},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}, "thoughtSignature": "CoEB..."},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 5000,
        "cachedContentTokenCount": 4096,
        "candidatesTokenCount": 30,
        "thoughtsTokenCount": 120,
        "totalTokenCount": 5150,
    },
}


def test_convert_text_response():
    out = convert_response(RECORDED_TEXT, FLASH, sequential(), [])
    assert out["id"].startswith("gemini_")
    assert {k: v for k, v in out.items() if k != "id"} == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "1+1 equals 2."}],
        "model": "gemini-3-flash",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 15, "output_tokens": 6},
    }


def test_convert_thoughts_and_function_calls():
    out = convert_response(RECORDED_TOOL_CALL, FLASH, sequential(), [])
    thinking, call1, call2 = out["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": "The user wants the weather. I'll call the tool.",
        "signature": sse.THINKING_SIGNATURE,
    }
    assert call1["type"] == "tool_use" and call1["name"] == "get_weather"
    assert call1["input"] == {"city": "Paris", "unit": "celsius"}
    assert call2["input"] == {} and call2["name"] == "get_time"
    assert call1["id"].startswith("toolu_") and call1["id"] != call2["id"]
    assert out["stop_reason"] == "tool_use"
    # cached prompt moved out of input; thinking tokens are output
    assert out["usage"] == {"input_tokens": 904, "output_tokens": 150, "cache_read_input_tokens": 4096}


@pytest.mark.parametrize(
    "finish, stop",
    [("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), (None, "end_turn"), ("OTHER_NEW_REASON", "end_turn")],
)
def test_finish_reason(finish, stop):
    candidate = {"content": {"parts": [{"text": "x"}]}}
    if finish:
        candidate["finishReason"] = finish
    assert convert_response({"candidates": [candidate]}, FLASH, sequential(), [])["stop_reason"] == stop


def test_empty_parts_give_one_empty_text_block():
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}]}
    out = convert_response(body, FLASH, sequential(), [])
    assert out["content"] == [{"type": "text", "text": ""}]
    assert out["usage"] == {"input_tokens": 0, "output_tokens": 0}


@pytest.mark.parametrize(
    "body, words",
    [
        pytest.param({"usageMetadata": {"promptTokenCount": 3}}, "no candidates", id="no-candidates"),
        pytest.param({"candidates": []}, "no candidates", id="empty-candidates"),
        pytest.param(
            {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}},
            "prompt blocked: SAFETY",
            id="prompt-blocked",
        ),
        pytest.param({"candidates": [{"finishReason": "SAFETY", "index": 0}]}, "finishReason SAFETY", id="answer-blocked"),
        pytest.param(
            {"candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL"}]},
            "MALFORMED_FUNCTION_CALL",
            id="malformed-call",
        ),
        pytest.param({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}, "RESOURCE_EXHAUSTED", id="error-body"),
    ],
)
def test_unusable_response_is_an_upstream_data_error(body, words):
    with pytest.raises(UpstreamDataError, match=words):
        convert_response(body, FLASH, sequential(), [])


# ---------------------------------------------------------------------------
# streaming


def sse_chunks(*chunks, sep=b"\r\n\r\n") -> bytes:
    """``alt=sse`` framing as Gemini sends it: one ``data:`` line per chunk."""
    return b"".join(b"data: " + json.dumps(c).encode() + sep for c in chunks)


def run(body: bytes, chunk: int | None = None) -> list[dict]:
    return translate(GeminiStreamTranslator("gemini-3-flash", sequential()), body, chunk)


def normalised(events):
    out = json.loads(json.dumps(events))
    for ev in out:
        if ev["type"] == "message_start":
            ev["message"]["id"] = "msg_X"
        if ev["type"] == "content_block_start" and ev["content_block"]["type"] == "tool_use":
            ev["content_block"]["id"] = "toolu_X"
    return out


TEXT_STREAM = sse_chunks(
    {"candidates": [{"content": {"parts": [{"text": "The quick"}], "role": "model"}, "index": 0}], "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-3-flash"},
    {"candidates": [{"content": {"parts": [{"text": " brown \"fox\"\n"}], "role": "model"}, "index": 0}], "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 5}},
    {
        "candidates": [{"content": {"parts": [{"text": "jumps."}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 9, "totalTokenCount": 17},
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
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == 'The quick brown "fox"\njumps.'
    assert events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 8, "output_tokens": 9}


TOOL_STREAM = sse_chunks(
    {"candidates": [{"content": {"parts": [{"text": "Need the weather.", "thought": True}], "role": "model"}}]},
    {"candidates": [{"content": {"parts": [{"text": "Let me check."}], "role": "model"}}]},
    {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Kigali", "days": [1, 2]}}, "thoughtSignature": "CiIB..."},
                        {"functionCall": {"name": "get_time", "args": {"tz": "Africa/Kigali"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 1200, "cachedContentTokenCount": 1000, "candidatesTokenCount": 25, "thoughtsTokenCount": 40},
    },
)


def test_thought_text_and_function_calls_stream():
    events = run(TOOL_STREAM)
    check_grammar(events)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert starts[2]["name"] == "get_weather" and starts[2]["id"].startswith("toolu_")
    assert starts[2]["input"] == {}
    assert tool_input(events, 2) == {"city": "Kigali", "days": [1, 2]}
    assert tool_input(events, 3) == {"tz": "Africa/Kigali"}
    # one input_json_delta per call: the call arrives whole
    assert sum(1 for e in events if e.get("delta", {}).get("type") == "input_json_delta") == 2
    sig = [e["index"] for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert sig == [0]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"input_tokens": 200, "output_tokens": 65, "cache_read_input_tokens": 1000}
    assert events[-1] == {"type": "message_stop"}


def test_max_tokens_stream():
    body = sse_chunks({"candidates": [{"content": {"parts": [{"text": "cut"}]}, "finishReason": "MAX_TOKENS"}]})
    assert run(body)[-2]["delta"]["stop_reason"] == "max_tokens"


def test_text_after_finish_reason_is_ignored_but_usage_kept():
    body = sse_chunks(
        {"candidates": [{"content": {"parts": [{"text": "done"}]}, "finishReason": "STOP"}]},
        {"candidates": [{"content": {"parts": [{"text": "late"}]}}], "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1}},
    )
    events = run(body)
    assert "late" not in json.dumps(events)
    assert events[-2]["usage"] == {"input_tokens": 4, "output_tokens": 1}


@pytest.mark.parametrize("chunk", [1, 3, 17, 256])
def test_chunk_boundaries_do_not_matter(chunk):
    for body in (TEXT_STREAM, TOOL_STREAM):
        assert normalised(run(body, chunk)) == normalised(run(body))


def test_lf_framing_data_without_space_and_junk_lines():
    body = (
        b": comment\n\n"
        b'data:{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\n\n'
        b"data: {truncated\n\n"
        b'data: ["not", "an", "object"]\n\n'
        b'data: {"candidates":[{"content":{"parts":[{"text":"b"}]}}]}'  # final line without newline
    )
    events = run(body)
    check_grammar(events)
    assert [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"] == ["a", "b"]


def test_usage_only_chunk_is_a_valid_empty_message():
    events = run(sse_chunks({"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 3}}))
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]


@pytest.mark.parametrize(
    "body, words",
    [
        pytest.param(b"", "empty stream", id="empty-body"),
        pytest.param(b": only a comment\n\n", "empty stream", id="comments-only"),
        pytest.param(b'[{"error": {"code": 400, "message": "bad"}}]', "empty stream", id="non-sse-json-body"),
        pytest.param(
            sse_chunks({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
            "UNAVAILABLE: The model is overloaded.",
            id="error-chunk",
        ),
        pytest.param(
            sse_chunks({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 7}}),
            "prompt blocked: PROHIBITED_CONTENT",
            id="prompt-blocked",
        ),
        pytest.param(
            sse_chunks({"candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL"}]}),
            "MALFORMED_FUNCTION_CALL",
            id="malformed-call-nothing-written",
        ),
    ],
)
def test_stream_failures(body, words):
    t = GeminiStreamTranslator("gemini-3-flash", sequential())
    with pytest.raises(UpstreamDataError, match=words):
        t.feed(body)
        t.close()


def test_failure_after_frames_in_one_read_is_raised_next_call():
    t = GeminiStreamTranslator("gemini-3-flash", sequential())
    frames = t.feed(
        sse_chunks(
            {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]},
            {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}},
        )
    )
    assert [e["type"] for e in parse(frames)] == ["message_start", "content_block_start", "content_block_delta"]
    with pytest.raises(UpstreamDataError, match="INTERNAL"):
        t.feed(b"")


def test_translator_protocol_flags_and_idempotent_close():
    t = GeminiStreamTranslator("gemini-3-flash", sequential())
    assert DIALECTS["gemini"].pauses_heartbeat is False and t.done is False
    assert t.feed(sse_chunks({"usageMetadata": {"promptTokenCount": 1}})) == []  # nothing written before real output
    frames = t.close()
    assert [e["type"] for e in parse(frames)] == ["message_start", "message_delta", "message_stop"]
    assert t.done and t.close() == []
