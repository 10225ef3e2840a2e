"""Claude Code 2.1's request shape end to end: the official SDK sends it
(adaptive thinking, output_config.effort, context_management with its
anthropic-beta, the billing attribution block) through the real server to
fake upstreams on real sockets that refuse, as the real ones do, what they
do not accept: Anthropic rejects foreign tool ids and beta fields without
their beta, OpenCode's Qwen rejects adaptive thinking, DeepSeek and Kimi take
only their own thinking switch, no chat/Responses/Gemini API knows
Anthropic's fields."""

from __future__ import annotations

import json

import pytest

from ocproxy import __version__
from ocproxy.config import ModelConfig, ProviderConfig
from ocproxy.translate.anthropic import anthropic_tool_id
from tests import cc21_shapes as cc
from tests.conftest import GO_CHAT, GO_MESSAGES, ZEN_MESSAGES, ZEN_MODELS, ZEN_RESPONSES, make_config, replace
from tests.fakes import chat_text_chunks, json_body, sse, status

UA = f"ocproxy/{__version__}"


def _error(message: str):
    return status(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})


def _anthropic_answer(body: dict):
    message = {"id": "msg_01", "type": "message", "role": "assistant", "model": body.get("model"),
               "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 12, "output_tokens": 2}}
    if not body.get("stream"):
        return json_body(message)
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 12, "output_tokens": 0}}
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Done."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return sse(*[f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events])


def anthropic_upstream(*, adaptive_ok: bool):
    """An Anthropic Messages endpoint holding requests to Anthropic's rules."""
    def script(h, rec):
        why = cc.anthropic_rejection(rec.json, rec.headers, adaptive_ok=adaptive_ok)
        (_error(why) if why else _anthropic_answer(rec.json))(h, rec)
    return script


#: No chat, Responses or Gemini API knows these Anthropic request fields.
_ANTHROPIC_ONLY = ("output_config", "context_management", "metadata", "system")


def _foreign_fields(body: dict, raw: bytes) -> list[str]:
    found = [key for key in _ANTHROPIC_ONLY if key in body]
    if b"x-anthropic-billing-header" in raw:
        found.append("billing attribution")
    return found


def chat_upstream(model_id: str):
    """A chat endpoint: DeepSeek and Kimi take ``thinking`` only as
    {"type": "enabled"|"disabled"} (https://api-docs.deepseek.com/guides/thinking_mode,
    https://platform.kimi.ai/docs/api/models-overview); the others have no
    ``thinking`` parameter; reasoning_effort is OpenAI's enum (DeepSeek also
    takes max)."""
    switch = model_id.startswith(("deepseek-", "kimi-"))
    efforts = ("low", "medium", "high", "max") if model_id.startswith("deepseek-") else ("minimal", "low", "medium", "high")

    def script(h, rec):
        body = rec.json
        problems = _foreign_fields(body, rec.body)
        if "thinking" in body and (not switch or body["thinking"] not in ({"type": "enabled"}, {"type": "disabled"})):
            problems.append(f"thinking {body['thinking']}")
        if "reasoning_effort" in body and body["reasoning_effort"] not in efforts:
            problems.append(f"reasoning_effort {body['reasoning_effort']}")
        if problems:
            return status(400, {"error": {"message": "unsupported: " + ", ".join(problems)}})(h, rec)
        usage = {"prompt_tokens": 12, "completion_tokens": 2}
        if body.get("stream"):
            return sse(*chat_text_chunks(["Done."], usage=usage))(h, rec)
        json_body({"id": "c1", "object": "chat.completion", "model": model_id, "usage": usage,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": "stop"}]})(h, rec)
    return script


def ask(client, *, stream: bool, messages=None, model="claude-opus-4-8"):
    """One Claude Code 2.1 main-loop request through the SDK."""
    body = cc.request(model, messages=messages)
    kwargs = dict(model=body["model"], max_tokens=body["max_tokens"], system=body["system"], messages=body["messages"],
                  tools=body["tools"], metadata=body["metadata"], thinking=body["thinking"],
                  extra_headers={"anthropic-beta": cc.CLAUDE_CODE_BETAS},
                  extra_body={"output_config": body["output_config"], "context_management": body["context_management"]})
    if stream:
        with client.messages.stream(**kwargs) as s:
            return s.get_final_message()
    return client.messages.create(**kwargs)


def one_model(upstream, model: ModelConfig, **overrides):
    return make_config(upstream, models={"default": model, "fast": model}, **overrides)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_claude_takes_the_second_turn_after_kimi_with_context_management(upstream, start_proxy, sdk, stream):
    upstream.on(ZEN_MESSAGES, anthropic_upstream(adaptive_ok=True))
    proxy = start_proxy(one_model(upstream, ModelConfig(provider="opencode-zen", model_id="claude-opus-4-8")))
    client = sdk(proxy)

    first = ask(client, stream=stream)
    second = ask(client, stream=stream, messages=cc.second_turn_after_kimi())

    assert [b.text for b in first.content] == [b.text for b in second.content] == ["Done."]
    opening, follow_up = upstream.calls(ZEN_MESSAGES)
    for call in (opening, follow_up):
        assert call.headers["anthropic-beta"] == cc.CLAUDE_CODE_BETAS
        assert call.headers["anthropic-version"] == client.default_headers["anthropic-version"]  # the client's own
        assert call.headers["user-agent"] == UA
    # Claude gets Claude Code's own shape on a turn it made itself
    assert opening.json["thinking"] == cc.ADAPTIVE and opening.json["output_config"] == cc.EFFORT
    assert opening.json["context_management"] == cc.CONTEXT_MANAGEMENT
    assert opening.json["system"][0] == cc.BILLING_BLOCKS[0]
    # the turn Kimi made: its ids renamed alike on both sides
    sent = follow_up.json["messages"]
    assert sent[1]["content"][0]["id"] == sent[2]["content"][0]["tool_use_id"] == anthropic_tool_id(cc.KIMI_TOOL_ID)
    # Kimi's turn cannot start with a signed thinking block: this one request thinks not
    assert "thinking" not in follow_up.json and "context_management" not in follow_up.json


def test_the_fake_anthropic_upstream_refuses_what_anthropic_refuses(upstream):
    """The rules are live: the client's own second turn, sent straight to
    the fake, is refused for the tool id; without the beta, for
    context_management."""
    import requests

    upstream.on(ZEN_MESSAGES, anthropic_upstream(adaptive_ok=True))
    body = cc.request(messages=cc.second_turn_after_kimi(), stream=False)
    answer = requests.post(upstream.url(ZEN_MESSAGES), json=body, headers={"anthropic-beta": cc.CLAUDE_CODE_BETAS})
    assert answer.status_code == 400 and "tool_use.id" in answer.json()["error"]["message"]
    answer = requests.post(upstream.url(ZEN_MESSAGES), json=cc.request(stream=False))
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "context_management: Extra inputs are not permitted"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_qwen_on_opencodes_anthropic_endpoint_gets_enabled_thinking(upstream, start_proxy, sdk, stream):
    upstream.on(GO_MESSAGES, anthropic_upstream(adaptive_ok=False))
    proxy = start_proxy(one_model(upstream, ModelConfig(model_id="qwen3.7-plus")))
    answer = ask(sdk(proxy), stream=stream)

    assert [b.text for b in answer.content] == ["Done."]
    [call] = upstream.calls(GO_MESSAGES)
    assert call.json["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert "output_config" not in call.json
    assert call.json["system"] == cc.SYSTEM_REST  # no billing block to defeat the prefix cache
    assert call.json["context_management"] == cc.CONTEXT_MANAGEMENT
    assert call.headers["anthropic-beta"] == cc.CLAUDE_CODE_BETAS
    assert call.headers["user-agent"] == UA


CHAT_MODELS = [
    pytest.param("deepseek-v4-pro", {"thinking": {"type": "enabled"}, "reasoning_effort": "high"}, id="deepseek"),
    pytest.param("kimi-k2.6", {"thinking": {"type": "enabled"}}, id="kimi"),
    pytest.param("glm-5.1", {"reasoning_effort": "high"}, id="glm"),
]


@pytest.mark.parametrize("model_id, params", CHAT_MODELS)
def test_chat_upstreams_get_their_own_thinking_parameter_and_a_stable_prompt(upstream, start_proxy, sdk, model_id, params):
    upstream.on(GO_CHAT, chat_upstream(model_id))
    proxy = start_proxy(one_model(upstream, ModelConfig(model_id=model_id)))
    client = sdk(proxy)
    answers = [ask(client, stream=False), ask(client, stream=True)]  # two requests, two cch values

    assert [[b.text for b in a.content if b.type == "text"] for a in answers] == [["Done."], ["Done."]]
    calls = upstream.calls(GO_CHAT)
    assert len(calls) == 2
    for call in calls:
        assert {k: call.json[k] for k in ("thinking", "reasoning_effort") if k in call.json} == params
        assert call.headers["user-agent"] == UA
        assert not any(name.startswith("anthropic-") for name in call.headers)
    assert calls[0].json["messages"][0] == calls[1].json["messages"][0]  # the same prefix both times
    assert calls[0].json["messages"][0]["content"] == "\n\n".join(b["text"] for b in cc.SYSTEM_REST)


def test_forced_thinking_setting_and_provider_user_agent(upstream, start_proxy, sdk):
    upstream.on(GO_CHAT, chat_upstream("deepseek-v4-pro"))
    config = one_model(upstream, ModelConfig(model_id="deepseek-v4-pro", thinking="off"))
    config = replace(config, opencode_go=ProviderConfig(base_url=upstream.url(GO_CHAT), anthropic_base_url=upstream.url(GO_MESSAGES),
                                                        user_agent="acme-gateway/2"))
    proxy = start_proxy(config)
    ask(sdk(proxy), stream=False)

    [call] = upstream.calls(GO_CHAT)
    assert call.json["thinking"] == {"type": "disabled"} and "reasoning_effort" not in call.json
    assert call.headers["user-agent"] == "acme-gateway/2"


def responses_upstream():
    """Responses: reasoning.effort is none/minimal/low/medium/high/xhigh;
    unknown parameters are refused."""
    def script(h, rec):
        body = rec.json
        problems = _foreign_fields({k: v for k, v in body.items() if k != "system"}, rec.body)
        problems += [k for k in ("thinking", "system") if k in body]
        effort = (body.get("reasoning") or {}).get("effort")
        if effort is not None and effort not in ("none", "minimal", "low", "medium", "high", "xhigh"):
            problems.append(f"reasoning.effort {effort}")
        if problems:
            return status(400, {"error": {"message": "Unsupported parameter: " + ", ".join(problems)}})(h, rec)
        json_body({"id": "resp_1", "object": "response", "status": "completed", "model": body["model"],
                   "output": [{"type": "message", "id": "m1", "role": "assistant", "status": "completed",
                               "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}],
                   "usage": {"input_tokens": 12, "output_tokens": 2}})(h, rec)
    return script


def gemini_upstream():
    """Gemini: thinkingLevel and thinkingBudget together are a 400; unknown
    fields are refused."""
    def script(h, rec):
        body = rec.json
        problems = _foreign_fields(body, rec.body) + [k for k in ("thinking", "reasoning_effort") if k in body]
        cfg = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        if "thinkingLevel" in cfg and "thinkingBudget" in cfg:
            problems.append("thinkingLevel with thinkingBudget")
        if problems:
            return status(400, {"error": {"code": 400, "message": "Invalid JSON payload: " + ", ".join(problems)}})(h, rec)
        json_body({"candidates": [{"content": {"role": "model", "parts": [{"text": "Done."}]}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 2}})(h, rec)
    return script


def test_responses_and_gemini_get_their_own_reasoning_settings(upstream, start_proxy, sdk):
    upstream.on(ZEN_RESPONSES, responses_upstream())
    gemini_path = f"{ZEN_MODELS}/gemini-3-flash:generateContent"
    upstream.on(gemini_path, gemini_upstream())
    for model_id in ("gpt-5.4", "gemini-3-flash"):
        proxy = start_proxy(one_model(upstream, ModelConfig(provider="opencode-zen", model_id=model_id)))
        answer = ask(sdk(proxy), stream=False)
        assert [b.text for b in answer.content if b.type == "text"] == ["Done."]

    [gpt] = upstream.calls(ZEN_RESPONSES)
    assert gpt.json["reasoning"] == {"effort": "high", "summary": "auto"}
    assert gpt.json["instructions"] == "\n\n".join(b["text"] for b in cc.SYSTEM_REST)
    [gem] = upstream.calls(gemini_path)
    assert gem.json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "high"}
    for call in (gpt, gem):
        assert call.headers["user-agent"] == UA
