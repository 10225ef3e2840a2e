"""Capability routing (issue 15 item 4) and the token count it reads, as tables.

The model limits used here are the catalog's (models.dev data, see
tests/test_catalog.py::CAPABILITIES): glm-5.1 holds 202,752 tokens and reads
no images; kimi-k2.6 holds 262,144, writes at most 65,536 and reads images;
deepseek-v4-flash holds 1,000,000; qwen3.6-plus on Go writes at most 65,536.
"""

from __future__ import annotations

import json

import pytest

from ocproxy import tokens
from ocproxy.config import GO, ZEN, Config, ModelConfig, load_config
from ocproxy.request import checked_request
from ocproxy.routing.chain import PromptTooLong, build_route, has_images
from ocproxy.translate import anthropic, content

PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def mc(model_id, provider=GO, **kw):
    return ModelConfig(provider=provider, model_id=model_id, **kw)


def req(blocks, model="", **extra):
    return checked_request({"model": model, "max_tokens": 100,
                            "messages": [{"role": "user", "content": blocks}], **extra})


def ids(route):
    return [m.model_id for m in route.chain]


def chain_config(*model_ids, **models):
    primary, *rest = model_ids
    return Config(respect_requested_model=False, models={"default": mc(primary), **models},
                  fallbacks={"default": tuple(mc(i) for i in rest)})


# -- images -----------------------------------------------------------------------

IMAGE_CASES = [
    ("first-vision-model-leads", chain_config("glm-5.1", "kimi-k2.6", "qwen3.6-plus"), [PNG],
     ("default", ["kimi-k2.6", "qwen3.6-plus"])),
    ("vision-primary-kept", chain_config("kimi-k2.6", "glm-5.1"), [PNG], ("default", ["kimi-k2.6"])),
    ("image-scenario-first", chain_config("glm-5.1", "kimi-k2.6", image=mc("gpt-5.5", ZEN)), [PNG],
     ("image", ["gpt-5.5", "kimi-k2.6"])),
    ("config-vision-flag-counts", chain_config("my-local-vlm", "kimi-k2.6", default=mc("my-local-vlm", vision=True)),
     [PNG], ("default", ["my-local-vlm", "kimi-k2.6"])),
    ("no-vision-anywhere-chain-unchanged", chain_config("glm-5.1", "deepseek-v4-flash"), [PNG],
     ("default", ["glm-5.1", "deepseek-v4-flash"])),
    ("image-in-tool-result", chain_config("glm-5.1", "kimi-k2.6"),
     [{"type": "tool_result", "tool_use_id": "t1", "content": [PNG]}], ("default", ["kimi-k2.6"])),
    ("no-image-chain-unchanged", chain_config("glm-5.1", "kimi-k2.6", image=mc("gpt-5.5", ZEN)),
     [{"type": "text", "text": "hi"}], ("default", ["glm-5.1", "kimi-k2.6"])),
]


@pytest.mark.parametrize("config, blocks, expected", [c[1:] for c in IMAGE_CASES], ids=[c[0] for c in IMAGE_CASES])
def test_images_go_to_models_that_read_them(config, blocks, expected):
    route = build_route(req(blocks), config, False)
    assert (route.scenario, ids(route)) == expected


def test_has_images():
    assert has_images(req([PNG])) and not has_images(req("just text"))


# -- context windows --------------------------------------------------------------

BIG = "lorem " * 250_000  # 250,000 tokens: more than glm-5.1 and kimi-k2.6 hold


def test_a_model_too_small_for_the_request_is_skipped(caplog):
    caplog.set_level("INFO", logger="ocproxy.routing")
    route = build_route(req(BIG), chain_config("glm-5.1", "deepseek-v4-flash", "my-unknown-model"), False)
    assert ids(route) == ["deepseek-v4-flash", "my-unknown-model"]  # an unknown window is never a reason
    assert any("skipping model=glm-5.1" in r.getMessage() and "202752" in r.getMessage() for r in caplog.records)


def test_a_request_no_model_holds_is_prompt_too_long():
    with pytest.raises(PromptTooLong, match=r"^prompt is too long: \d+ tokens > 262144 maximum$"):
        build_route(req(BIG * 2), chain_config("glm-5.1", "kimi-k2.6"), False)


def test_a_small_request_is_not_counted_for_the_window_check(monkeypatch):
    monkeypatch.setattr(tokens, "routing_count", lambda r: pytest.fail("counted"))
    config = Config(models={"default": mc("glm-5.1")}, fallbacks={"default": (mc("kimi-k2.6"),)})
    assert ids(build_route(req("hello", model="kimi-k2.6"), config, False)) == ["kimi-k2.6", "kimi-k2.6"]


def test_a_120k_claude_code_request_routes_to_long_context():
    """Shaped like a Claude Code turn: ~25k tokens of tool definitions,
    thinking carried back from earlier turns, and the conversation. The
    message text alone is under the template's 80,000 threshold; what the
    model reads is ~120k."""
    config = load_config(None, {"HOME": "/nonexistent", "OCPROXY_API_KEY": "k"})
    tools = [{"name": f"Tool{i}", "description": "word " * 1000, "input_schema": {"type": "object"}}
             for i in range(25)]
    history = []
    for turn in range(20):
        history.append({"role": "user", "content": "please look at this file " + "code " * 3000})
        history.append({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "reason " * 1500, "signature": "sig"},
            {"type": "text", "text": "done " * 10}]})
    history.append({"role": "user", "content": "now fix the failing test"})
    request = checked_request({"model": "claude-opus-4-8", "max_tokens": 32000, "system": "You are Claude Code.",
                               "tools": tools, "messages": history})
    _, pairs = tokens.routing_text(request)
    assert sum(tokens.count_text(text) for _, text in pairs) < 80_000
    assert 110_000 < tokens.routing_count(request) < 130_000
    route = build_route(request, config, True)
    assert route.scenario == "long_context" and route.primary.model_id == "minimax-m2.5"


# -- max_tokens: the client's, capped by the config, clamped to the model -----------

CLAMP = [
    # (client max_tokens, configured max_tokens, model) -> sent, cut-by-setting possible
    ("client-kept", 32000, 0, mc("kimi-k2.6"), 32000, False),
    ("clamped-to-output-limit", 100_000, 0, mc("kimi-k2.6"), 65_536, False),
    ("config-caps", 32000, 4096, mc("kimi-k2.6"), 4096, True),
    ("config-above-client-is-no-raise", 1000, 4096, mc("kimi-k2.6"), 1000, False),
    ("config-above-limit-clamped", 100_000, 90_000, mc("kimi-k2.6"), 65_536, False),
    ("config-alone", None, 4096, mc("kimi-k2.6"), 4096, True),
    ("unknown-model-not-clamped", 500_000, 0, mc("my-model"), 500_000, False),
    ("nothing-sent", None, 0, mc("my-model"), None, False),
    ("zen-gpt-limit", 200_000, 0, mc("gpt-5.5", ZEN), 128_000, False),
]


@pytest.mark.parametrize("client, cap, model, sent, by_setting", [c[1:] for c in CLAMP], ids=[c[0] for c in CLAMP])
def test_max_tokens_clamp(client, cap, model, sent, by_setting):
    body = {"messages": [{"role": "user", "content": "x"}]}
    if client is not None:
        body["max_tokens"] = client
    model = ModelConfig(provider=model.provider, model_id=model.model_id, max_tokens=cap, vision=model.vision)
    r = checked_request(body)
    assert content.max_tokens(r, model) == sent
    assert content.capped_by_setting(r, model) is by_setting


def test_passthrough_body_carries_the_clamped_max_tokens():
    raw = json.dumps({"model": "claude-opus-4-8", "max_tokens": 100_000,
                      "messages": [{"role": "user", "content": "x"}]}).encode()
    r = checked_request(json.loads(raw))
    out = json.loads(anthropic.passthrough_body(raw, "qwen3.6-plus", [], max_tokens=content.max_tokens(r, mc("qwen3.6-plus"))))
    assert out["max_tokens"] == 65_536 and out["model"] == "qwen3.6-plus"
