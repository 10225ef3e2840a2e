"""Claude Code 2.1's requests per upstream API, as tables: thinking and
effort (adaptive, enabled+budget, disabled, output_config.effort, a forced
model setting), the billing attribution block and system joining, tool ids
from other providers before an Anthropic-format upstream, beta-only fields,
and the headers that go upstream."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest

from ocproxy import __version__
from ocproxy.config import ModelConfig
from ocproxy.request import checked_request
from ocproxy.translate import anthropic, chat, content, gemini, responses, thinking
from ocproxy.upstream.identity import upstream_headers
from tests import cc21_shapes as cc
from tests.configfiles import load

ADAPTIVE_HIGH = ({"type": "adaptive"}, {"effort": "high"})


def M(model_id, **kw) -> ModelConfig:
    if isinstance(kw.get("thinking"), dict):
        kw["thinking"] = MappingProxyType(kw["thinking"])
    return ModelConfig(model_id=model_id, **kw)


def want(req_thinking=None, output_config=None, **cfg) -> thinking.Intent:
    return thinking.intent(req_thinking, output_config, M("m", **cfg))


# -- intent: what was asked ---------------------------------------------------

INTENTS = [
    pytest.param(None, None, {}, thinking.Intent(), id="nothing-asked"),
    pytest.param(*ADAPTIVE_HIGH, {}, thinking.Intent(on=True, effort="high"), id="cc21-adaptive-with-effort"),
    pytest.param(cc.ADAPTIVE, None, {}, thinking.Intent(on=True), id="adaptive-budget-0-is-no-budget"),
    pytest.param({"type": "enabled", "budget_tokens": 9000}, None, {}, thinking.Intent(on=True, budget=9000), id="enabled-budget"),
    pytest.param({"type": "enabled", "budget_tokens": 9000}, {"effort": "low"}, {},
                 thinking.Intent(on=True, effort="low", budget=9000), id="effort-word-beside-budget"),
    pytest.param({"type": "disabled"}, {"effort": "high"}, {}, thinking.Intent(on=False), id="disabled-drops-effort"),
    pytest.param(None, {"effort": "medium"}, {}, thinking.Intent(effort="medium"), id="effort-alone"),
    pytest.param(*ADAPTIVE_HIGH, {"thinking": "off"}, thinking.Intent(on=False), id="forced-off-beats-client"),
    pytest.param({"type": "disabled"}, None, {"thinking": "on"}, thinking.Intent(on=True), id="forced-on-beats-client-off"),
    pytest.param(*ADAPTIVE_HIGH, {"thinking": "low"}, thinking.Intent(on=True, effort="low", configured=True), id="forced-level"),
    pytest.param(*ADAPTIVE_HIGH, {"reasoning_effort": "max"}, thinking.Intent(on=True, effort="max", configured=True),
                 id="configured-effort-beats-client-effort"),
    pytest.param(None, None, {"thinking": {"type": "enabled"}}, thinking.Intent(on=True), id="legacy-object-on"),
    pytest.param(*ADAPTIVE_HIGH, {"thinking": {"type": "disabled"}}, thinking.Intent(on=True, effort="high"),
                 id="legacy-object-is-only-a-default"),
]


@pytest.mark.parametrize("req_thinking, output_config, cfg, expected", INTENTS)
def test_intent(req_thinking, output_config, cfg, expected):
    assert want(req_thinking, output_config, **cfg) == expected


# -- chat: each provider's own parameter --------------------------------------

CHAT = [
    # model, intent, thought_before, answered_before -> keys
    pytest.param("deepseek-v4-pro", want(*ADAPTIVE_HIGH), False, False,
                 {"thinking": {"type": "enabled"}, "reasoning_effort": "high"}, id="deepseek-switch-and-effort"),
    pytest.param("deepseek-v4-pro", want({"type": "disabled"}), True, True, {"thinking": {"type": "disabled"}}, id="deepseek-off"),
    pytest.param("deepseek-v4-pro", want(*ADAPTIVE_HIGH), False, True, {"thinking": {"type": "disabled"}},
                 id="deepseek-history-without-reasoning-stays-off"),
    pytest.param("deepseek-v4-flash", want(None, {"effort": "max"}), True, True,
                 {"thinking": {"type": "enabled"}, "reasoning_effort": "max"}, id="deepseek-max-is-its-own-word"),
    pytest.param("kimi-k2.6", want(*ADAPTIVE_HIGH), True, True, {"thinking": {"type": "enabled"}}, id="kimi-switch-on"),
    pytest.param("kimi-k2.6", want({"type": "disabled"}), False, False, {"thinking": {"type": "disabled"}}, id="kimi-switch-off"),
    pytest.param("kimi-k2.5", want(*ADAPTIVE_HIGH, reasoning_effort="high"), False, False,
                 {"thinking": {"type": "enabled"}, "reasoning_effort": "high"}, id="kimi-configured-effort"),
    pytest.param("kimi-k2.7-code", want({"type": "disabled"}), False, False, {}, id="kimi-that-always-thinks-gets-no-switch"),
    pytest.param("glm-5.1", want(*ADAPTIVE_HIGH), False, False, {"reasoning_effort": "high"}, id="other-chat-effort"),
    pytest.param("glm-5.1", want(cc.ADAPTIVE, {"effort": "xhigh"}), False, False, {"reasoning_effort": "high"},
                 id="other-chat-xhigh-as-high"),
    pytest.param("glm-5.1", want({"type": "enabled", "budget_tokens": 3000}), False, False, {"reasoning_effort": "medium"},
                 id="other-chat-budget-as-effort"),
    pytest.param("glm-5.1", want({"type": "disabled"}), False, False, {}, id="other-chat-off-sends-nothing"),
    pytest.param("glm-5.1", want(cc.ADAPTIVE), False, False, {}, id="other-chat-adaptive-without-effort"),
    pytest.param("glm-5.1", want(thinking="off"), False, False, {}, id="other-chat-forced-off"),
    pytest.param("minimax-m2.7", want(*ADAPTIVE_HIGH, reasoning_effort="max"), False, False, {"reasoning_effort": "max"},
                 id="configured-effort-sent-as-written"),
]


@pytest.mark.parametrize("model_id, intent, thought, answered, keys", CHAT)
def test_chat_params(model_id, intent, thought, answered, keys):
    assert thinking.chat_params(intent, model_id, thought_before=thought, answered_before=answered) == keys


# -- Responses and Gemini -----------------------------------------------------

RESPONSES = [
    pytest.param(want(*ADAPTIVE_HIGH), {"effort": "high", "summary": "auto"}, id="cc21-effort"),
    pytest.param(want(None, {"effort": "max"}), {"effort": "high", "summary": "auto"}, id="max-as-high"),
    pytest.param(want(None, {"effort": "xhigh"}), {"effort": "xhigh", "summary": "auto"}, id="xhigh-is-known"),
    pytest.param(want(cc.ADAPTIVE), {"summary": "auto"}, id="on-without-effort"),
    pytest.param(want({"type": "disabled"}), None, id="off"),
    pytest.param(want(), None, id="nothing-asked"),
    pytest.param(want(*ADAPTIVE_HIGH, thinking="low"), {"effort": "low", "summary": "auto"}, id="forced-level"),
]


@pytest.mark.parametrize("intent, reasoning", RESPONSES)
def test_responses_reasoning(intent, reasoning):
    assert thinking.responses_reasoning(intent) == reasoning


GEMINI = [
    pytest.param("gemini-3-flash", want(*ADAPTIVE_HIGH), {"includeThoughts": True, "thinkingLevel": "high"}, id="g3-level"),
    pytest.param("gemini-3-flash", want(cc.ADAPTIVE, {"effort": "medium"}), {"includeThoughts": True, "thinkingLevel": "medium"},
                 id="g3-flash-medium"),
    pytest.param("gemini-3.1-pro", want(cc.ADAPTIVE, {"effort": "medium"}), {"includeThoughts": True, "thinkingLevel": "high"},
                 id="g3-pro-has-no-medium"),
    pytest.param("gemini-3.1-pro", want(cc.ADAPTIVE, {"effort": "max"}), {"includeThoughts": True, "thinkingLevel": "high"},
                 id="g3-max-as-high"),
    pytest.param("gemini-3-flash", want({"type": "enabled", "budget_tokens": 5000}), {"includeThoughts": True},
                 id="g3-bare-budget-only-shows-thoughts"),
    pytest.param("gemini-2.5-pro", want({"type": "enabled", "budget_tokens": 5000}), {"includeThoughts": True, "thinkingBudget": 5000},
                 id="g25-budget"),
    pytest.param("gemini-2.5-flash", want(*ADAPTIVE_HIGH), {"includeThoughts": True, "thinkingBudget": 16384}, id="g25-effort-as-budget"),
    pytest.param("gemini-3-flash", want({"type": "disabled"}), None, id="off"),
]


@pytest.mark.parametrize("model_id, intent, config", GEMINI)
def test_gemini_thinking_config(model_id, intent, config):
    assert thinking.gemini_thinking_config(intent, model_id) == config


# -- Anthropic-format upstreams -----------------------------------------------

ANTHROPIC = [
    pytest.param("qwen3.7-plus", want(*ADAPTIVE_HIGH), 32000, ({"type": "enabled", "budget_tokens": 16384}, None),
                 id="qwen-adaptive-becomes-enabled"),
    pytest.param("minimax-m3", want(cc.ADAPTIVE, {"effort": "low"}), 32000, ({"type": "enabled", "budget_tokens": 2048}, None),
                 id="minimax-low"),
    pytest.param("qwen3.7-plus", want(*ADAPTIVE_HIGH), 4000, ({"type": "enabled", "budget_tokens": 3999}, None),
                 id="budget-below-max-tokens"),
    pytest.param("qwen3.7-plus", want(*ADAPTIVE_HIGH), 512, (None, None), id="no-budget-fits"),
    pytest.param("qwen3.7-plus", want({"type": "disabled"}), 512, ({"type": "disabled"}, None), id="off"),
    pytest.param("claude-opus-4-8", want(*ADAPTIVE_HIGH, thinking="medium"), 32000, ({"type": "adaptive"}, "medium"),
                 id="claude-forced-level"),
    pytest.param("claude-opus-4-8", want(*ADAPTIVE_HIGH, thinking="off"), 32000, ({"type": "disabled"}, None), id="claude-forced-off"),
]


@pytest.mark.parametrize("model_id, intent, max_tokens, expected", ANTHROPIC)
def test_anthropic_thinking(model_id, intent, max_tokens, expected):
    assert thinking.anthropic_thinking(intent, model_id, max_tokens) == expected


CLAUDE = [
    # Claude Code asked for one Claude, the chain answers with another
    pytest.param("claude-haiku-4-5-20251001", {"type": "adaptive"}, want(*ADAPTIVE_HIGH), 32000,
                 ({"type": "enabled", "budget_tokens": 16384}, None), id="haiku-4-5-takes-only-a-budget"),
    pytest.param("claude-sonnet-4-5", {"type": "adaptive"}, want(cc.ADAPTIVE, {"effort": "low"}), 32000,
                 ({"type": "enabled", "budget_tokens": 2048}, None), id="sonnet-4-5-low"),
    pytest.param("claude-opus-4-8", {"type": "enabled", "budget_tokens": 9000}, want({"type": "enabled", "budget_tokens": 9000}),
                 32000, ({"type": "adaptive"}, "high"), id="opus-4-8-takes-only-adaptive"),
    pytest.param("claude-opus-4-8", {"type": "adaptive"}, want(*ADAPTIVE_HIGH), 32000, None, id="opus-4-8-as-sent"),
    pytest.param("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 9000}, want({"type": "enabled", "budget_tokens": 9000}),
                 32000, None, id="sonnet-4-6-takes-both"),
    pytest.param("claude-sonnet-4-6", {"type": "adaptive"}, want(*ADAPTIVE_HIGH), 32000, None, id="sonnet-4-6-adaptive"),
]


@pytest.mark.parametrize("model_id, sent, intent, max_tokens, expected", CLAUDE)
def test_claude_thinking_for_the_claude_that_answers(model_id, sent, intent, max_tokens, expected):
    assert thinking.claude_thinking(sent, intent, model_id, max_tokens) == expected


def test_passthrough_to_an_older_claude_gets_a_budget_and_no_effort():
    out = passthrough(cc.request(), M("claude-haiku-4-5", provider="opencode-zen"))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert "output_config" not in out
    assert out["system"][0] == cc.BILLING_BLOCKS[0]  # Claude keeps Claude Code's system as sent


def passthrough(body, model):
    warnings = []
    out = json.loads(anthropic.passthrough_body(json.dumps(body).encode(), model.model_id, warnings, model))
    assert warnings == []
    return out


def test_passthrough_to_claude_keeps_claude_codes_own_shape():
    body = cc.request()
    raw = json.dumps(body).encode()
    model = M("claude-opus-4-8", provider="opencode-zen")
    assert anthropic.passthrough_body(raw, "claude-opus-4-8", [], model) is raw


def test_passthrough_to_qwen_rewrites_thinking_and_drops_the_billing_block():
    out = passthrough(cc.request(), M("qwen3.7-plus"))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert "output_config" not in out
    assert out["system"] == cc.SYSTEM_REST
    assert out["context_management"] == cc.CONTEXT_MANAGEMENT  # the beta header carries it
    assert cc.anthropic_rejection(out, {"anthropic-beta": cc.CLAUDE_CODE_BETAS}, adaptive_ok=False) is None


def test_passthrough_thinking_off_takes_its_context_edit_along():
    out = passthrough(cc.request(), M("qwen3.7-plus", thinking="off"))
    assert out["thinking"] == {"type": "disabled"}
    assert "context_management" not in out
    assert cc.anthropic_rejection(out, {"anthropic-beta": cc.CLAUDE_CODE_BETAS}, adaptive_ok=False) is None


def test_passthrough_output_config_keeps_what_is_not_effort():
    body = {**cc.request(), "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {}}}}
    assert passthrough(body, M("minimax-m3"))["output_config"] == {"format": {"type": "json_schema", "schema": {}}}


# -- tool ids -----------------------------------------------------------------

TOOL_IDS = [
    ("toolu_01AbC-d_e", "toolu_01AbC-d_e"),
    ("call_abc123", "call_abc123"),
]


@pytest.mark.parametrize("valid, same", TOOL_IDS)
def test_valid_tool_ids_untouched(valid, same):
    assert anthropic.anthropic_tool_id(valid) == same


@pytest.mark.parametrize("foreign", ["functions.Read:0", "functions.Bash:12", "call|abc", "a b", "", "функция:1"])
def test_foreign_tool_ids_become_valid_stably_and_distinctly(foreign):
    mapped = anthropic.anthropic_tool_id(foreign)
    assert cc._TOOL_ID.match(mapped)
    assert anthropic.anthropic_tool_id(foreign) == mapped
    assert mapped != anthropic.anthropic_tool_id(foreign + "x")


def test_look_alike_ids_stay_apart():
    assert anthropic.anthropic_tool_id("functions.Read:0") != anthropic.anthropic_tool_id("functions:Read.0")


def test_second_turn_after_kimi_passes_anthropics_rules():
    body = cc.request("claude-opus-4-8", messages=cc.second_turn_after_kimi())
    headers = {"anthropic-beta": cc.CLAUDE_CODE_BETAS}
    assert "tool_use.id" in cc.anthropic_rejection(body, headers, adaptive_ok=True)  # as the client sent it
    out = passthrough(body, M("claude-opus-4-8", provider="opencode-zen"))
    [call] = out["messages"][1]["content"]  # the placeholder thinking went
    answer = out["messages"][2]["content"][0]
    assert call["id"] == answer["tool_use_id"] == anthropic.anthropic_tool_id(cc.KIMI_TOOL_ID)
    # Kimi's turn has no signed thinking to start with: this request goes without
    assert "thinking" not in out and "context_management" not in out
    assert cc.anthropic_rejection(out, headers, adaptive_ok=True) is None


def test_claudes_own_tool_turn_keeps_thinking():
    messages = cc.second_turn_after_kimi()
    messages[1]["content"] = [{"type": "thinking", "thinking": "Read it.", "signature": "EqQBCkYIBxgCKkA"},
                              {"type": "tool_use", "id": "toolu_01A", "name": "Read", "input": {"file_path": "README.md"}}]
    messages[2]["content"][0]["tool_use_id"] = "toolu_01A"
    body = cc.request("claude-opus-4-8", messages=messages)
    raw = json.dumps(body).encode()
    assert anthropic.passthrough_body(raw, "claude-opus-4-8", [], M("claude-opus-4-8", provider="opencode-zen")) is raw


# -- system text: billing block out, blocks apart -----------------------------


def test_billing_block_leaves_every_translated_prompt_and_two_conversations_share_a_prefix():
    for build, model, read in [
        (chat.build_request, M("glm-5.1"), lambda b: b["messages"][0]["content"]),
        (responses.build_request, M("gpt-5.4", provider="opencode-zen"), lambda b: b["instructions"]),
        (gemini.build_request, M("gemini-3-flash", provider="opencode-zen"),
         lambda b: b["systemInstruction"]["parts"][0]["text"]),
    ]:
        first, second = (build(checked_request(cc.request(billing=i)), model, True) for i in (0, 1))
        assert read(first) == read(second) == "\n\n".join(b["text"] for b in cc.SYSTEM_REST)
        wire = json.dumps(first)
        for beta_only in ("x-anthropic-billing-header", "context_management", "clear_thinking", "output_config",
                          "adaptive", "metadata"):
            assert beta_only not in wire, (model.model_id, beta_only)


@pytest.mark.parametrize("system, text", [
    ("x-anthropic-billing-header: cc_version=2.1.197.01c; cch=1;\nYou are Claude Code.", "You are Claude Code."),
    ("You are Claude Code.\nx-anthropic-billing-header: not at the start", "You are Claude Code.\nx-anthropic-billing-header: not at the start"),
    ([{"type": "text", "text": "A"}, {"type": "text", "text": ""}, {"type": "text", "text": "B"}], "A\n\nB"),
])
def test_system_text(system, text):
    assert content.system_text(system) == text


# -- headers ------------------------------------------------------------------

CLIENT = {"HTTP_ANTHROPIC_BETA": cc.CLAUDE_CODE_BETAS, "HTTP_ANTHROPIC_VERSION": "2023-06-01",
          "HTTP_COOKIE": "a=b", "HTTP_X_API_KEY": "client-key", "HTTP_USER_AGENT": "claude-cli/2.1.197"}


@pytest.mark.parametrize("endpoint", ["chat", "anthropic", "responses", "gemini"])
def test_upstream_headers(endpoint):
    headers = upstream_headers(endpoint, "k", "", CLIENT)
    assert headers["User-Agent"] == f"ocproxy/{__version__}"
    assert "client-key" not in headers.values() and "a=b" not in headers.values()
    if endpoint == "anthropic":
        assert headers["anthropic-beta"] == cc.CLAUDE_CODE_BETAS
        assert headers["anthropic-version"] == "2023-06-01"
    else:
        assert not any(name.lower().startswith("anthropic-") for name in headers)


def test_user_agent_setting_overrides():
    assert upstream_headers("chat", "k", "acme-gateway/2", {})["User-Agent"] == "acme-gateway/2"


def test_config_reads_thinking_mode_and_user_agent(tmp_path):
    config = load(tmp_path, {"api_key": "k", "opencode_go": {"user_agent": "acme/1"},
                             "models": {"default": {"model_id": "glm-5.1", "thinking": "off"},
                                        "think": {"model_id": "deepseek-v4-pro", "thinking": {"type": "enabled"}}}})
    assert config.opencode_go.user_agent == "acme/1" and config.opencode_zen.user_agent == ""
    assert config.models["default"].thinking == "off"
    assert config.models["think"].thinking == {"type": "enabled"}
