"""Anthropic ⇄ Chat Completions: request bodies (build_request) and whole answers."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from ocproxy.config import ModelConfig
from ocproxy.errors import ProxyError, UpstreamDataError
from ocproxy.request import checked_request
from ocproxy.translate import chat
from ocproxy.translate.chat import effort_of
from ocproxy.translate.chat_response import convert_response
from ocproxy.translate.ids import sequential
from ocproxy.translate.usage import anthropic_usage


def build_request(body: dict, model, stream):
    """The builder fed as the proxy feeds it: a type-checked MessagesRequest."""
    return chat.build_request(checked_request(body), model, stream)



def M(model_id, **kw) -> ModelConfig:
    if isinstance(kw.get("thinking"), dict):
        kw["thinking"] = MappingProxyType(kw["thinking"])
    return ModelConfig(model_id=model_id, **kw)


def build(messages, model, *, stream=False, **req):
    return build_request({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages, **req}, model, stream)


def wire(body):
    """What actually goes upstream: serialise and parse back."""
    return json.loads(json.dumps(body, ensure_ascii=False))


USER = {"role": "user", "content": "hi"}
THINKING_TURN = {
    "role": "assistant",
    "content": [
        {"type": "thinking", "thinking": "let me think", "signature": "sig"},
        {"type": "text", "text": "answer"},
    ],
}
USER_ONLY = [USER]
PLAIN = [USER, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}]
THINKING = [USER, THINKING_TURN, {"role": "user", "content": "again"}]
ENABLED_4096 = {"type": "enabled", "budget_tokens": 4096}
ENABLED_2048 = {"type": "enabled", "budget_tokens": 2048}
DISABLED = {"type": "disabled"}
T_ON = {"type": "enabled"}
T_OFF = {"type": "disabled"}

# ---------------------------------------------------------------------------
# thinking decision: model, history, request thinking → thinking, effort

THINKING_DECISIONS = [
    pytest.param(M("deepseek-v4-pro"), USER_ONLY, ENABLED_4096, T_ON, "medium", id="deepseek-request-budget-sets-effort"),
    pytest.param(M("deepseek-v4-pro"), PLAIN, ENABLED_4096, T_OFF, None, id="deepseek-history-without-reasoning-turns-thinking-off"),
    pytest.param(M("deepseek-v4-pro", reasoning_effort="max"), THINKING, DISABLED, T_OFF, None, id="deepseek-request-disabled-wins"),
    pytest.param(M("o3-mini"), USER_ONLY, ENABLED_2048, None, "low", id="o-series-budget-2048-low"),
    pytest.param(M("o3-mini", reasoning_effort="max"), USER_ONLY, None, None, "max", id="o-series-configured-effort"),
    pytest.param(M("qwen3.6-plus"), USER_ONLY, ENABLED_2048, None, "low", id="other-chat-request-budget-sets-reasoning-effort"),
    pytest.param(
        M("deepseek-v4-pro", thinking=T_ON, reasoning_effort="max"), USER_ONLY, DISABLED, T_OFF, None, id="deepseek-request-disabled-beats-config"
    ),
    pytest.param(
        M("deepseek-v4-pro", thinking=T_OFF, reasoning_effort="max"), USER_ONLY, None, T_OFF, None, id="deepseek-configured-off"
    ),
    pytest.param(M("kimi-k2.6"), THINKING, ENABLED_4096, T_ON, None, id="kimi-request-turns-its-switch-on"),
    pytest.param(
        M("deepseek-v4-pro", thinking=T_ON, reasoning_effort="max"),
        [USER, THINKING_TURN],
        None,
        T_ON,
        "max",
        id="deepseek-configured-on-with-thinking-history",
    ),
    pytest.param(
        M("deepseek-v4-pro", thinking=T_ON, reasoning_effort="max"),
        [USER, {"role": "assistant", "content": "The answer is 42"}],
        None,
        T_OFF,
        None,
        id="deepseek-configured-on-history-without-reasoning",
    ),
    pytest.param(M("deepseek-v4-pro", reasoning_effort="max"), USER_ONLY, None, T_ON, "max", id="deepseek-configured-effort-turns-thinking-on"),
    pytest.param(M("deepseek-v4-pro"), THINKING, None, T_ON, "high", id="deepseek-thinking-history-default-effort"),
    pytest.param(M("deepseek-v4-pro"), USER_ONLY, None, None, None, id="deepseek-nothing-asked-nothing-sent"),
    pytest.param(
        M("deepseek-v4-pro", thinking=T_OFF, reasoning_effort="max"), THINKING, None, T_OFF, None, id="deepseek-configured-off-despite-history"
    ),
    pytest.param(
        M("deepseek-v4-flash"),
        [
            USER,
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "search", "input": {}, "thinking": "I need to search"}
                ],
            },
        ],
        None,
        T_ON,
        "high",
        id="deepseek-tool-use-thinking-counts-as-history",
    ),
    pytest.param(M("kimi-k2.6", reasoning_effort="high"), USER_ONLY, None, None, "high", id="kimi-configured-effort-only"),
]


@pytest.mark.parametrize("model, history, req_thinking, thinking, effort", THINKING_DECISIONS)
def test_thinking_and_effort_decision(model, history, req_thinking, thinking, effort):
    extra = {"thinking": req_thinking} if req_thinking is not None else {}
    body = wire(build(history, model, **extra))
    assert body.get("thinking") == thinking
    assert body.get("reasoning_effort") == effort
    if thinking is None:
        assert "thinking" not in body
    if effort is None:
        assert "reasoning_effort" not in body


# ---------------------------------------------------------------------------
# messages, tool calls, reasoning


def test_basic_request():
    req = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello"}],
    }
    assert wire(build_request(req, M("glm-5"), False)) == {
        "model": "glm-5",
        "stream": False,
        "max_tokens": 1024,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
    }


def test_tool_call_round_trip():
    req = {
        "model": "x",
        "max_tokens": 256,
        "messages": [
            {"role": "user", "content": "Create draft.fig"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Creating it."},
                    {"type": "tool_use", "id": "toolu_123", "name": "create_file", "input": {"name": "draft.fig"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_123", "content": "created"},
                    {"type": "text", "text": "now continue"},
                ],
            },
        ],
    }
    assert wire(build_request(req, M("glm-5"), False))["messages"] == [
        {"role": "user", "content": "Create draft.fig"},
        {
            "role": "assistant",
            "content": "Creating it.",
            "tool_calls": [
                {
                    "id": "toolu_123",
                    "type": "function",
                    "function": {"name": "create_file", "arguments": '{"name":"draft.fig"}'},
                }
            ],
        },
        {"role": "tool", "content": "created", "tool_call_id": "toolu_123"},
        {"role": "user", "content": "now continue"},
    ]


def test_tool_use_only_assistant_has_empty_content_key():
    history = [USER, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": None}]}]
    text = json.dumps(build(history, M("glm-5")))
    assistant = json.loads(text)["messages"][1]
    assert '"content": ""' in text
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }


def test_thinking_goes_back_as_reasoning_content_kimi():
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Need to look up the weather first", "signature": "sig_123"},
            {"type": "tool_use", "id": "toolu_123", "name": "get_weather", "input": {"city": "Kigali"}},
        ],
    }
    assert wire(build([USER, assistant], M("kimi-k2.6")))["messages"][1] == {
        "role": "assistant",
        "content": "",
        "reasoning_content": "Need to look up the weather first",
        "tool_calls": [
            {
                "id": "toolu_123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Kigali"}'},
            }
        ],
    }


# ---------------------------------------------------------------------------
# reasoning_content placeholders

TOOL_TURN = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ls", "input": {}}]}


def test_kimi_tool_only_turn_gets_space_placeholder():
    assert build([USER, TOOL_TURN], M("kimi-k2.6"))["messages"][1]["reasoning_content"] == " "


def test_deepseek_without_thinking_history_gets_no_placeholder():
    body = build([USER, TOOL_TURN], M("deepseek-v4-pro"))
    assert "reasoning_content" not in body["messages"][1]
    assert body["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize(
    "second_turn",
    [
        pytest.param(TOOL_TURN, id="tool-use-turn"),
        pytest.param({"role": "assistant", "content": "just text"}, id="text-only-turn"),
    ],
)
def test_deepseek_thinking_history_every_turn_gets_space(second_turn):
    model = M("deepseek-v4-flash", thinking=T_ON, reasoning_effort="high")
    body = build([USER, THINKING_TURN, {"role": "user", "content": "more"}, second_turn], model)
    assert body["messages"][1]["reasoning_content"] == "let me think"
    assert body["messages"][3]["reasoning_content"] == " "


def test_tool_use_inline_thinking_becomes_reasoning_content():
    turn = {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "t1", "name": "docs", "input": {"q": 1}, "thinking": "I need to search the docs first"}
        ],
    }
    msg = build([USER, turn], M("deepseek-v4-flash"))["messages"][1]
    assert msg["reasoning_content"] == "I need to search the docs first"
    assert len(msg["tool_calls"]) == 1


def test_no_placeholder_for_other_models():
    msg = build([USER, TOOL_TURN], M("glm-5"))["messages"][1]
    assert "reasoning_content" not in msg


def test_redacted_thinking_and_signature_not_forwarded():
    turn = {
        "role": "assistant",
        "content": [
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "thinking", "thinking": "a", "signature": "s1"},
            {"type": "text", "text": "b"},
            {"type": "thinking", "thinking": "c", "signature": "s2"},
        ],
    }
    msg = build([USER, turn], M("glm-5"))["messages"][1]
    assert msg == {"role": "assistant", "content": "b", "reasoning_content": "ac"}


def test_tool_arguments_are_compact_utf8_json():
    turn = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {"city": "Zürich", "n": [1, 2]}}],
    }
    args = build([USER, turn], M("glm-5"))["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert args == '{"city":"Zürich","n":[1,2]}'


# ---------------------------------------------------------------------------
# images

IMAGE_MSG = {
    "role": "user",
    "content": [
        {"type": "text", "text": "What's in this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ],
}


def test_images_sent_to_vision_models():
    assert build([IMAGE_MSG], M("glm-5v", vision=True))["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]


def test_images_become_placeholder_without_vision():
    assert build([IMAGE_MSG], M("glm-5"))["messages"] == [
        {"role": "user", "content": "What's in this image?\n\n[Image]"}
    ]


def test_image_only_message_without_vision_is_placeholder():
    msg = {"role": "user", "content": IMAGE_MSG["content"][1:] * 2}
    assert build([msg], M("glm-5"))["messages"] == [{"role": "user", "content": "[Image]"}]


def test_url_image_source_with_vision():
    msg = {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}
    assert build([msg], M("glm-5v", vision=True))["messages"] == [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
    ]


def test_tool_results_precede_user_and_only_results_emit_only_tools():
    msg = {
        "role": "user",
        "content": [
            {"type": "text", "text": "a"},
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]},
            {"type": "text", "text": "b"},
            {"type": "tool_result", "tool_use_id": "t2", "output": "legacy"},
        ],
    }
    only = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t3", "is_error": True}]}
    assert build([msg, only], M("glm-5"))["messages"] == [
        {"role": "tool", "content": "xy", "tool_call_id": "t1"},
        {"role": "tool", "content": "legacy", "tool_call_id": "t2"},
        {"role": "user", "content": "ab"},
        {"role": "tool", "content": "", "tool_call_id": "t3"},
    ]


def test_empty_user_string_kept():
    assert build([{"role": "user", "content": ""}], M("glm-5"))["messages"] == [{"role": "user", "content": ""}]


def test_unknown_blocks_ignored():
    # (a document is no longer ignored, issue 14 item 10: tests/test_documents.py)
    msg = {"role": "user", "content": [{"type": "mystery", "source": {}}, {"type": "text", "text": "x"}]}
    assert build([msg], M("glm-5"))["messages"] == [{"role": "user", "content": "x"}]
    # a block that is not an object never reaches the translator: the parser refuses it
    with pytest.raises(ProxyError, match=r"messages\[0\]\.content\[2\] must be an object"):
        build([{"role": "user", "content": [*msg["content"], "junk"]}], M("glm-5"))


# ---------------------------------------------------------------------------
# system-role messages inside the conversation


def sysmsg(text):
    return {"role": "system", "content": [{"type": "text", "text": text}]}


def test_deepseek_system_message_becomes_reminder_in_place():
    body = build([{"role": "user", "content": "hello"}, sysmsg("task tools haven't been used recently")], M("deepseek-v4-pro"))
    assert body["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "user", "content": "<system-reminder>\ntask tools haven't been used recently\n</system-reminder>"},
    ]


def test_deepseek_reminder_repeating_top_system_dropped():
    body = build(
        [{"role": "user", "content": "hello"}, sysmsg("task tools haven't been used recently")],
        M("deepseek-v4-pro"),
        system="You are Claude. task tools haven't been used recently",
    )
    assert body["messages"] == [
        {"role": "system", "content": "You are Claude. task tools haven't been used recently"},
        {"role": "user", "content": "hello"},
    ]


def test_deepseek_empty_reminder_dropped():
    body = build([{"role": "user", "content": "hello"}, sysmsg("")], M("deepseek-v4-pro"))
    assert body["messages"] == [{"role": "user", "content": "hello"}]


def test_deepseek_reminders_keep_positions():
    body = build(
        [sysmsg("first reminder"), {"role": "user", "content": "hello"}, sysmsg("second reminder"), {"role": "assistant", "content": "hi"}],
        M("deepseek-v4-pro"),
    )
    assert body["messages"] == [
        {"role": "user", "content": "<system-reminder>\nfirst reminder\n</system-reminder>"},
        {"role": "user", "content": "hello"},
        {"role": "user", "content": "<system-reminder>\nsecond reminder\n</system-reminder>"},
        {"role": "assistant", "content": "hi"},
    ]


def test_other_models_keep_system_role():
    body = build([{"role": "user", "content": "hello"}, {"role": "system", "content": "a system reminder"}], M("qwen3.6-plus"))
    assert body["messages"][-1] == {"role": "system", "content": "a system reminder"}


def test_other_roles_pass_as_text():
    body = build([{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], M("glm-5"))
    assert body["messages"] == [{"role": "developer", "content": "ab"}]


# ---------------------------------------------------------------------------
# cache_control

CACHED_SYSTEM = [{"type": "text", "text": "You are helpful", "cache_control": {"type": "ephemeral"}}]


def test_deepseek_system_cache_control():
    body = build([USER], M("deepseek-v4-pro"), system=CACHED_SYSTEM)
    assert body["messages"][0] == {"role": "system", "content": "You are helpful", "cache_control": {"type": "ephemeral"}}


@pytest.mark.parametrize("model_id", ["kimi-k2.6", "glm-5"], ids=["kimi", "glm"])
def test_other_models_get_no_cache_control(model_id):
    body = build([USER], M(model_id), system=CACHED_SYSTEM)
    assert body["messages"][0] == {"role": "system", "content": "You are helpful"}


def test_deepseek_tool_result_cache_control():
    msg = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "go on"},
        ],
    }
    assert build([msg], M("deepseek-v4-pro"))["messages"] == [
        {"role": "tool", "content": "ok", "tool_call_id": "t1", "cache_control": {"type": "ephemeral"}},
        {"role": "user", "content": "go on"},
    ]


def test_deepseek_user_and_assistant_markers_carry_only_type():
    cc = {"type": "ephemeral", "ttl": "1h"}
    history = [
        {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": cc}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}, "cache_control": cc}]},
    ]
    ds = build(history, M("deepseek-v4-pro"))["messages"]
    assert ds[0]["cache_control"] == {"type": "ephemeral"}
    assert ds[1]["cache_control"] == {"type": "ephemeral"}
    other = build(history, M("glm-5"))["messages"]
    assert all("cache_control" not in m for m in other)


# ---------------------------------------------------------------------------
# budget → effort

BUDGET_EFFORT = [(1, "low"), (2048, "low"), (2049, "medium"), (8192, "medium"), (8193, "high"), (32768, "high"), (32769, "max")]


@pytest.mark.parametrize("budget, effort", BUDGET_EFFORT, ids=[f"budget-{b}" for b, _ in BUDGET_EFFORT])
def test_budget_to_effort(budget, effort):
    assert effort_of(budget) == effort
    body = build(USER_ONLY, M("o3-mini"), thinking={"type": "enabled", "budget_tokens": budget})
    # OpenAI's reasoning_effort has no "max": the client's goes as "high"
    assert body["reasoning_effort"] == ("high" if effort == "max" else effort)


@pytest.mark.parametrize(
    "thinking", [{"type": "enabled", "budget_tokens": 0}, {"type": "enabled"}], ids=["budget-0", "budget-absent"]
)
def test_no_budget_no_effort(thinking):
    assert "reasoning_effort" not in build(USER_ONLY, M("o3-mini"), thinking=thinking)


# ---------------------------------------------------------------------------
# stream options


def test_streaming_asks_for_usage():
    body = build(USER_ONLY, M("glm-5"), stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_non_streaming_has_no_stream_options():
    body = build(USER_ONLY, M("glm-5"), stream=False)
    assert body["stream"] is False and "stream_options" not in body


# ---------------------------------------------------------------------------
# temperature

_NONE = object()
TEMPERATURES = [
    ("kimi-k2.7-code", 0.7, 0.0, 1.0),
    ("kimi-k2.7-code", 0.0, 0.0, 1.0),
    ("kimi-k2.7-code", 1.5, 0.0, 1.0),
    ("kimi-k2.7-code", _NONE, 0.0, _NONE),
    ("kimi-k2.7-code", _NONE, 0.3, 1.0),
    ("kimi-k2.6", 0.7, 0.0, 0.7),
    ("kimi-k2.5", 0.5, 0.0, 0.5),
    ("deepseek-v4-pro", 0.5, 0.1, 0.1),
    ("glm-5.1", 0.3, 0.0, 0.3),
    ("qwen3.7-plus", 0.9, 0.0, 0.9),
]


@pytest.mark.parametrize("model_id, requested, configured, sent", TEMPERATURES, ids=[f"temperature-{i + 1}" for i in range(len(TEMPERATURES))])
def test_temperature(model_id, requested, configured, sent):
    extra = {} if requested is _NONE else {"temperature": requested}
    body = build(USER_ONLY, M(model_id, temperature=configured), **extra)
    if sent is _NONE:
        assert "temperature" not in body
    else:
        assert body["temperature"] == sent


@pytest.mark.parametrize(
    "req, configured, expected",
    [
        pytest.param({"max_tokens": 1024}, 0, 1024, id="request-max-tokens"),
        # issue 15: a configured max_tokens is a cap, never a raise
        pytest.param({"max_tokens": 1024}, 64000, 1024, id="config-above-request-is-no-raise"),
        pytest.param({"max_tokens": 9999}, 100, 100, id="config-caps-request"),
        pytest.param({"max_tokens": 0}, 0, None, id="zero-omitted"),
    ],
)
def test_max_tokens(req, configured, expected):
    body = build_request({"messages": [USER], **req}, M("glm-5", max_tokens=configured), False)
    assert body.get("max_tokens") == expected
    assert ("max_tokens" in body) == (expected is not None)


def test_top_p_and_no_nulls():
    body = build_request({"messages": [USER], "top_p": 0.9, "temperature": None}, M("glm-5"), False)
    assert body["top_p"] == 0.9
    assert "temperature" not in body and "max_tokens" not in body
    assert None not in body.values()


def test_unsupported_fields_not_sent():
    body = build(
        USER_ONLY,
        M("glm-5"),
        tool_choice={"type": "auto"},
        stop_sequences=["x"],
        top_k=5,
        metadata={"user_id": "u"},
    )
    assert set(body) == {"model", "messages", "stream", "max_tokens"}


def test_tools_sanitised_and_omitted_when_none_survive():
    tools = [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}, {"name": " "}]
    body = build(USER_ONLY, M("glm-5"), tools=tools)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "Bash", "description": "run", "parameters": {"type": "object", "properties": {}}}}
    ]
    assert "tools" not in build(USER_ONLY, M("glm-5"), tools=[{"name": ""}])


def test_routed_model_id_sent():
    assert build(USER_ONLY, M("minimax-m3"))["model"] == "minimax-m3"


# ---------------------------------------------------------------------------
# strings go through a serializer


def test_system_prompt_with_newline_quote_backslash():
    system = 'line1\nline2 "q" \\'
    encoded = json.dumps(build(USER_ONLY, M("glm-5"), system=system), ensure_ascii=False)
    assert json.loads(encoded)["messages"][0]["content"] == system


def test_system_blocks_joined_by_a_blank_line():
    system = [{"type": "text", "text": "A"}, {"type": "other", "text": "X"}, {"type": "text", "text": "B"}]
    assert build(USER_ONLY, M("glm-5"), system=system)["messages"][0] == {"role": "system", "content": "A\n\nB"}


def test_build_request_does_not_mutate_input():
    req = {"max_tokens": 5, "messages": [USER, THINKING_TURN], "tools": [{"name": "a", "input_schema": {"type": "string"}}]}
    snapshot = json.dumps(req)
    build_request(req, M("deepseek-v4-pro", thinking=T_ON), True)
    assert json.dumps(req) == snapshot


# ---------------------------------------------------------------------------
# response conversion

TOOL_CALL_ANSWER = {
    "id": "chatcmpl_456",
    "choices": [
        {
            "message": {
                "role": "assistant",
                "content": "",
                "reasoning_content": "I need to call a tool",
                "tool_calls": [
                    {"id": "call_123", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Kigali"}'}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 15, "total_tokens": 35},
}


def test_reasoning_and_tool_call_answer():
    assert convert_response(TOOL_CALL_ANSWER, M("kimi-k2.6"), sequential(), []) == {
        "id": "chatcmpl_456",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "I need to call a tool"},
            {"type": "tool_use", "id": "call_123", "name": "get_weather", "input": {"city": "Kigali"}},
        ],
        "model": "kimi-k2.6",
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 15},
    }


def _answer(message, finish_reason="stop", **extra):
    return {"id": "c1", "choices": [{"message": message, "finish_reason": finish_reason}], **extra}


def test_empty_reasoning_gives_one_text_block():
    out = convert_response(_answer({"content": "Hello there.", "reasoning_content": ""}), M("glm-5"), sequential(), [])
    assert out["content"] == [{"type": "text", "text": "Hello there."}]


def test_reasoning_then_text():
    out = convert_response(_answer({"content": "The answer is 42.", "reasoning_content": "hmm"}), M("glm-5"), sequential(), [])
    assert out["content"] == [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "The answer is 42."}]


def test_round_trip_reasoning_content():
    model = M("deepseek-v4-flash")
    answer = convert_response(
        _answer({"content": "The answer is 42", "reasoning_content": "Let me think step by step"}), model, sequential(), []
    )
    assert [b["type"] for b in answer["content"]] == ["thinking", "text"]
    history = [USER, {"role": "assistant", "content": answer["content"]}, {"role": "user", "content": "Explain why?"}]
    text = json.dumps(build(history, model), ensure_ascii=False)
    assert '"reasoning_content": "Let me think step by step"' in text
    assert json.loads(text)["messages"][1]["reasoning_content"] == "Let me think step by step"


@pytest.mark.parametrize(
    "finish_reason, expected",
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        # a tool stop reason with no tool call in the answer: the turn simply ended
        ("tool_calls", "end_turn"),
        ("tool_use", "end_turn"),
        ("content_filter", "end_turn"),
        ("weird", "end_turn"),
        (None, "end_turn"),
    ],
    ids=["stop", "length", "tool_calls", "tool_use", "content_filter", "other", "missing"],
)
def test_stop_reason(finish_reason, expected):
    assert convert_response(_answer({"content": "x"}, finish_reason), M("glm-5"), sequential(), [])["stop_reason"] == expected


def test_stop_with_tool_calls_becomes_tool_use():
    msg = {"content": "ok", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}
    out = convert_response(_answer(msg, "stop"), M("glm-5"), sequential(), [])
    assert out["stop_reason"] == "tool_use"
    assert [b["type"] for b in out["content"]] == ["text", "tool_use"]


@pytest.mark.parametrize(
    "arguments, expected",
    [
        pytest.param('{"a":1}', {"a": 1}, id="object"),
        pytest.param("", {}, id="empty"),
        pytest.param("   ", {}, id="whitespace"),
        pytest.param("{bad", {}, id="invalid-json"),
        pytest.param("[1,2]", {}, id="not-object"),
        pytest.param(None, {}, id="absent"),
        pytest.param({"b": 2}, {"b": 2}, id="already-object"),
    ],
)
def test_tool_input(arguments, expected):
    msg = {"content": None, "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": arguments}}]}
    assert convert_response(_answer(msg), M("glm-5"), sequential(), [])["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": expected}
    ]


def test_array_content_and_empty_fallback():
    parts = {"content": [{"type": "text", "text": "a"}, {"type": "image", "x": 1}, {"type": "text", "text": "b"}]}
    assert convert_response(_answer(parts), M("glm-5"), sequential(), [])["content"] == [{"type": "text", "text": "ab"}]
    assert convert_response(_answer({"content": None}), M("glm-5"), sequential(), [])["content"] == [{"type": "text", "text": ""}]


def test_missing_id_gets_msg_id_and_usage_defaults():
    out = convert_response({"choices": [{"message": {"content": "x"}}]}, M("glm-5"), sequential(), [])
    assert out["id"].startswith("msg_")
    assert out["usage"] == {"input_tokens": 0, "output_tokens": 0}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"choices": []}, id="empty-choices"),
        pytest.param({"id": "x"}, id="no-choices"),
        pytest.param({"choices": [None]}, id="choice-not-object"),
        pytest.param(["not", "object"], id="not-object"),
        pytest.param(None, id="none"),
    ],
)
def test_no_choices_is_attempt_failure(body):
    with pytest.raises(UpstreamDataError):
        convert_response(body, M("glm-5"), sequential(), [])


# ---------------------------------------------------------------------------
# usage

_ = None
USAGE_ROWS = [
    (628385, _, _, 628385, _, _),
    (100000, 96000, 4000, 4000, 96000, _),
    (50000, 50000, _, 0, 50000, _),
    (123, 100, 23, 23, 100, _),
    (10000, 3000, 2000, 5000, 3000, 2000),
    (100, 60, 30, 10, 60, 30),
    (50, 40, 20, 20, 40, _),
]


@pytest.mark.parametrize("p, h, m, inp, read, creation", USAGE_ROWS, ids=[f"usage-row{i + 1}" for i in range(len(USAGE_ROWS))])
def test_usage_rows(p, h, m, inp, read, creation):
    usage = {"prompt_tokens": p, "completion_tokens": 7}
    if h is not None:
        usage["prompt_cache_hit_tokens"] = h
    if m is not None:
        usage["prompt_cache_miss_tokens"] = m
    expected = {"input_tokens": inp, "output_tokens": 7}
    if read is not None:
        expected["cache_read_input_tokens"] = read
    if creation is not None:
        expected["cache_creation_input_tokens"] = creation
    assert anthropic_usage(usage) == expected


@pytest.mark.parametrize("usage", [None, {}, {"prompt_tokens": None, "completion_tokens": "x"}], ids=["none", "empty", "junk"])
def test_unknown_usage_is_zero(usage):
    assert anthropic_usage(usage) == {"input_tokens": 0, "output_tokens": 0}
