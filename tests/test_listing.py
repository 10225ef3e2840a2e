"""GET /v1/models and /v1/models/{id}: Anthropic's list shape and paging,
claude- aliases for Claude Code's picker, display names that name the real
model, and an alias routing to its own model and API.

Claude Code 2.1.197 (the CLI binary in .cache/claude-code) asks
``GET {ANTHROPIC_BASE_URL}/v1/models?limit=1000`` when
CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1, keeps ids matching
``/^(claude|anthropic)/i`` and shows ``display_name`` under "From gateway"
(also described in https://github.com/theopenco/llmgateway/pull/3321).
"""

from __future__ import annotations

import re

import anthropic
import pytest
import requests

from ocproxy import aliases
from ocproxy.catalog import CATALOG, GO, ZEN
from ocproxy.config import Config, ModelConfig
from ocproxy.listing import ListingError, Page, all_models, model_info, models_listing, parse_page
from tests.conftest import GO_CHAT, ZEN_RESPONSES, make_config
from tests.fakes import chat_completion, json_body

CLAUDE_CODE_FILTER = re.compile(r"^(claude|anthropic)", re.I)


@pytest.mark.parametrize("model_id, title", [
    ("kimi-k2.6", "Kimi K2.6"),
    ("glm-5.1", "GLM 5.1"),
    ("minimax-m2.5", "MiniMax M2.5"),
    ("deepseek-v4-pro", "DeepSeek V4 Pro"),
    ("mimo-v2.5-pro", "MiMo V2.5 Pro"),
    ("qwen3.7-max", "Qwen3.7 Max"),
    ("claude-opus-4-8", "Claude Opus 4.8"),
    ("claude-3-5-haiku", "Claude 3.5 Haiku"),
    ("gpt-5.1-codex-max", "GPT 5.1 Codex Max"),
    ("gemini-3.1-pro", "Gemini 3.1 Pro"),
    ("grok-build-0.1", "Grok Build 0.1"),
])
def test_model_titles(model_id, title):
    assert aliases.model_title(model_id) == title


def test_every_catalog_row_has_one_alias_that_resolves_back():
    seen = set()
    for alias, provider, model_id in aliases.catalog_aliases():
        assert CLAUDE_CODE_FILTER.match(alias)
        assert aliases.alias_target(alias) == (provider, model_id)
        seen.add(alias)
    assert len(seen) == len(CATALOG)
    assert aliases.alias_for(GO, "kimi-k2.6") == "claude-go-kimi-k2.6"
    assert aliases.alias_for(ZEN, "claude-opus-4-8") == "claude-zen-opus-4-8"
    assert aliases.alias_target("claude-go-gpt-5.5") is None  # Go does not serve it
    assert aliases.alias_target("claude-opus-4-8") is None


def test_listing_order_names_and_owner():
    config = Config(
        models={"default": ModelConfig(provider=GO, model_id="kimi-k2.6")},
        model_overrides={"deepseek-v4-pro": ModelConfig(provider=ZEN, model_id="deepseek-v4-pro")},
    )
    models = all_models(config)
    ids = [m["id"] for m in models]
    assert len(ids) == len(set(ids))
    first_plain = next(i for i, m in enumerate(ids) if not m.startswith("claude-"))
    assert all(CLAUDE_CODE_FILTER.match(i) for i in ids[:first_plain])  # aliases first
    assert ids[first_plain:first_plain + 2] == ["deepseek-v4-pro", "default"]
    by_id = {m["id"]: m for m in models}
    assert by_id["claude-go-kimi-k2.6"]["display_name"] == "Kimi K2.6 (OpenCode Go)"
    assert by_id["claude-zen-gpt-5.5"]["display_name"] == "GPT 5.5 (OpenCode Zen)"
    assert by_id["claude-zen-gpt-5.5"]["owned_by"] == "opencode-zen"
    assert by_id["default"]["display_name"] == "Kimi K2.6 (OpenCode Go)"
    # the override decides where "deepseek-v4-pro" goes, so it names Zen
    assert by_id["deepseek-v4-pro"]["display_name"] == "DeepSeek V4 Pro (OpenCode Zen)"
    assert by_id["glm-5.1"]["owned_by"] == "opencode-go"
    # a bare claude-* id is mapped by family, so it is never listed as itself
    assert "claude-opus-4-8" not in by_id
    for m in models:
        assert set(m) == {"type", "object", "id", "display_name", "created_at", "owned_by"}


@pytest.mark.parametrize("query, error", [
    ({"limit": ["0"]}, "between 1 and 1000"),
    ({"limit": ["1001"]}, "between 1 and 1000"),
    ({"limit": ["ten"]}, "not an integer"),
    ({"after_id": ["a"], "before_id": ["b"]}, "cannot be used together"),
])
def test_bad_paging_parameters(query, error):
    with pytest.raises(ListingError, match=error):
        parse_page(query)


def test_pages_forward_and_back_cover_the_list_once():
    config = Config()
    everything = [m["id"] for m in all_models(config)]
    forward, after = [], None
    while True:
        page = models_listing(config, Page(limit=7, after_id=after))
        forward += [m["id"] for m in page["data"]]
        assert page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert forward == everything
    backward, before = [everything[-1]], everything[-1]
    while True:
        page = models_listing(config, Page(limit=7, before_id=before))
        backward = [m["id"] for m in page["data"]] + backward
        if not page["has_more"]:
            break
        before = page["first_id"]
    assert backward == everything
    with pytest.raises(ListingError, match="not a listed model id"):
        models_listing(config, Page(after_id="nope"))
    assert model_info(config, "claude-go-glm-5.1")["display_name"] == "GLM 5.1 (OpenCode Go)"
    assert model_info(config, "nope") is None


# -- through the real server ----------------------------------------------------


def test_sdk_pages_and_raw_http(upstream, start_proxy):
    proxy = start_proxy(make_config(upstream))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    first = client.models.list(limit=5)
    assert len(first.data) == 5 and first.has_more is True
    second = first.get_next_page()
    assert second.data[0].id != first.data[-1].id
    assert second.first_id == second.data[0].id
    every = [m.id for m in client.models.list(limit=10)]  # auto-paging walks all pages
    whole = requests.get(proxy.url + "/v1/models?limit=1000", headers={"anthropic-version": "2023-06-01"},
                         timeout=5).json()
    assert every == [m["id"] for m in whole["data"]] and whole["has_more"] is False
    assert "claude-go-kimi-k2.6" in every and "default" in every
    back = requests.get(proxy.url + f"/v1/models?limit=2&before_id={every[3]}", timeout=5).json()
    assert [m["id"] for m in back["data"]] == every[1:3] and back["has_more"] is True

    one = client.models.retrieve("claude-zen-gemini-3.1-pro")
    assert one.id == "claude-zen-gemini-3.1-pro" and one.display_name == "Gemini 3.1 Pro (OpenCode Zen)"
    with pytest.raises(anthropic.NotFoundError) as info:
        client.models.retrieve("claude-go-nothing")
    assert info.value.body["error"]["type"] == "not_found_error"
    bad = requests.get(proxy.url + "/v1/models?limit=0", timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert requests.get(proxy.url + "/health", timeout=5).json()["status"] == "ok"  # still serving


def test_alias_routes_to_its_model_and_api(upstream, start_proxy):
    """A picker alias reaches its model on its API, not the opus/sonnet family
    model, and the answer speaks the alias back (Claude Code keeps thinking)."""
    upstream.on(GO_CHAT, json_body(chat_completion("from go")))
    upstream.on(ZEN_RESPONSES, json_body({
        "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.5",
        "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "from zen", "annotations": []}]}],
        "usage": {"input_tokens": 3, "output_tokens": 2}}))
    config = make_config(upstream, respect_requested_model=True,
                         model_family_overrides={"opus": "default", "sonnet": "default"},
                         models={"default": ModelConfig(model_id="kimi-k2.6", temperature=0.3),
                                 "fast": ModelConfig(model_id="kimi-k2.6")})
    proxy = start_proxy(config)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=10)
    user = [{"role": "user", "content": "hi"}]

    got = client.messages.create(model="claude-go-glm-5.1", max_tokens=20, messages=user)
    assert got.model == "claude-go-glm-5.1" and got.content[0].text == "from go"
    assert upstream.calls(GO_CHAT)[-1].json["model"] == "glm-5.1"

    got = client.messages.create(model="claude-zen-gpt-5.5", max_tokens=20, messages=user)
    assert got.model == "claude-zen-gpt-5.5" and got.content[0].text == "from zen"
    assert upstream.calls(ZEN_RESPONSES)[-1].json["model"] == "gpt-5.5"

    # the alias of the default model carries that entry's settings
    client.messages.create(model="claude-go-kimi-k2.6", max_tokens=20, messages=user)
    sent = upstream.calls(GO_CHAT)[-1].json
    assert sent["model"] == "kimi-k2.6" and sent["temperature"] == 0.3
