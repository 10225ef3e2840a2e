"""Model catalog and endpoint selection.

The expected tables below are typed out by hand, not derived from
``ocproxy.catalog``, so a wrong row in the module cannot agree with itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ocproxy import catalog
from ocproxy.catalog import CATALOG, GO, ZEN, catalog_endpoint, lookup
from ocproxy.config import Config, ModelConfig, ProviderConfig
from ocproxy.upstream.targets import endpoint_for, endpoint_url

# The Go models, one row per model.
GO_ROWS = [
    ("glm-5.1", "chat"),
    ("glm-5", "chat"),
    ("glm-5.2", "chat"),
    ("kimi-k2.6", "chat"),
    ("kimi-k2.5", "chat"),
    ("kimi-k2.7-code", "chat"),
    ("mimo-v2.5-pro", "chat"),
    ("mimo-v2.5", "chat"),
    ("deepseek-v4-pro", "chat"),
    ("deepseek-v4-flash", "chat"),
    ("minimax-m3", "anthropic"),
    ("minimax-m2.7", "anthropic"),
    ("minimax-m2.5", "anthropic"),
    ("qwen3.7-max", "anthropic"),
    ("qwen3.7-plus", "anthropic"),
    ("qwen3.6-plus", "anthropic"),
    ("qwen3.5-plus", "anthropic"),
]

_CLAUDE = [
    "claude-fable-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
    "claude-opus-4-1", "claude-sonnet-4-6", "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5",
    "claude-3-5-haiku",
]
_QWEN = ["qwen3.5-plus", "qwen3.6-plus", "qwen3.7-plus", "qwen3.7-max"]
_GPT = [
    "gpt-5.5", "gpt-5.5-pro", "gpt-5.4", "gpt-5.4-pro", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5.3-codex",
    "gpt-5.3-codex-spark", "gpt-5.2", "gpt-5.2-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-max",
    "gpt-5.1-codex-mini", "gpt-5", "gpt-5-codex", "gpt-5-nano",
]
_GEMINI = ["gemini-3.5-flash", "gemini-3.1-pro", "gemini-3-flash"]
_FREE = [
    "deepseek-v4-pro", "deepseek-v4-flash-free", "grok-build-0.1", "big-pickle", "mimo-v2.5-free",
    "north-mini-code-free", "nemotron-3-ultra-free",
]
_ZEN_CHAT = ["minimax-m2.5", "minimax-m2.7", "minimax-m3", "glm-5", "glm-5.1", "kimi-k2.5", "kimi-k2.6", "deepseek-v4-flash"]

# The Zen models, every id with (endpoint, context).
ZEN_ROWS = (
    [(i, "anthropic", "200k") for i in _CLAUDE]
    + [(i, "anthropic", "200k") for i in _QWEN]
    + [(i, "responses", "128k") for i in _GPT]
    + [(i, "gemini", "1M") for i in _GEMINI]
    + [(i, "chat", "1M" if i.startswith("deepseek") else "200k") for i in _FREE]
    + [(i, "chat", "1M" if i.startswith(("minimax", "deepseek")) else "200k") for i in _ZEN_CHAT]
)


@pytest.mark.parametrize("model_id, endpoint", GO_ROWS, ids=[r[0] for r in GO_ROWS])
def test_go_row(model_id, endpoint):
    assert catalog_endpoint(GO, model_id) == endpoint
    assert endpoint_for(ModelConfig(provider=GO, model_id=model_id)) == endpoint
    entry = lookup(GO, model_id)
    assert entry is not None and entry.endpoint == endpoint and entry.provider == GO


@pytest.mark.parametrize("model_id, endpoint, context", ZEN_ROWS, ids=[r[0] for r in ZEN_ROWS])
def test_zen_row(model_id, endpoint, context):
    assert catalog_endpoint(ZEN, model_id) == endpoint
    assert endpoint_for(ModelConfig(provider=ZEN, model_id=model_id)) == endpoint
    entry = lookup(ZEN, model_id)
    assert entry is not None and entry.endpoint == endpoint and entry.context.startswith(context)


def test_catalog_lists_exactly_these_rows():
    listed = {(e.provider, e.id) for e in CATALOG}
    expected = {(GO, r[0]) for r in GO_ROWS} | {(ZEN, r[0]) for r in ZEN_ROWS}
    assert listed == expected
    assert len(listed) == len(CATALOG), "no (provider, id) listed twice"
    assert len(_GPT) == 17


RULES = [
    ("unknown-go-id-chat", GO, "some-new-model", "chat"),
    ("unknown-zen-id-chat", ZEN, "some-new-model", "chat"),
    ("claude-on-go-chat", GO, "claude-x", "chat"),
    ("qwen3.7-max-on-go-anthropic", GO, "qwen3.7-max", "anthropic"),
    ("minimax-m3-on-zen-chat", ZEN, "minimax-m3", "chat"),
    ("claude-dots-prefix", ZEN, "claude-sonnet-4.5", "anthropic"),
    ("any-claude-prefix", ZEN, "claude-anything", "anthropic"),
    ("any-qwen-prefix", ZEN, "qwen9-ultra", "anthropic"),
    ("unlisted-gpt-chat", ZEN, "gpt-4o", "chat"),
    ("unlisted-gemini-chat", ZEN, "gemini-2.5-pro", "chat"),
    ("unlisted-qwen-on-go-chat", GO, "qwen9-ultra", "chat"),
    ("gpt-on-go-chat", GO, "gpt-5", "chat"),
    ("underscore-provider-is-zen", "opencode_zen", "gpt-5", "responses"),
    ("empty-provider-is-go", "", "minimax-m3", "anthropic"),
    ("unknown-provider-uses-go-rules", "somebody", "claude-sonnet-4-5", "chat"),
    ("unknown-provider-go-anthropic-set", "somebody", "qwen3.6-plus", "anthropic"),
]


@pytest.mark.parametrize("provider, model_id, endpoint", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_endpoint_rules(provider, model_id, endpoint):
    assert catalog_endpoint(provider, model_id) == endpoint


# Resolution order: catalog -> endpoint setting -> tools flag.
RESOLUTION = [
    ("catalog", dict(provider=GO, model_id="glm-5"), "chat"),
    ("endpoint-overrides-catalog", dict(provider=GO, model_id="glm-5", endpoint="anthropic"), "anthropic"),
    ("endpoint-chat-on-anthropic-model", dict(provider=GO, model_id="minimax-m3", endpoint="chat"), "chat"),
    ("endpoint-gemini-on-zen", dict(provider=ZEN, model_id="my-gemini", endpoint="gemini"), "gemini"),
    ("tools-disabled-go-anthropic", dict(provider=GO, model_id="minimax-m3", anthropic_tools_disabled=True), "chat"),
    ("tools-disabled-zen-claude", dict(provider=ZEN, model_id="claude-sonnet-4-5", anthropic_tools_disabled=True), "chat"),
    (
        "tools-disabled-beats-endpoint-anthropic",
        dict(provider=GO, model_id="glm-5", endpoint="anthropic", anthropic_tools_disabled=True),
        "chat",
    ),
    ("tools-disabled-leaves-responses", dict(provider=ZEN, model_id="gpt-5", anthropic_tools_disabled=True), "responses"),
    ("tools-disabled-on-chat-noop", dict(provider=GO, model_id="glm-5", anthropic_tools_disabled=True), "chat"),
]


@pytest.mark.parametrize("fields, endpoint", [r[1:] for r in RESOLUTION], ids=[r[0] for r in RESOLUTION])
def test_endpoint_resolution_order(fields, endpoint):
    assert endpoint_for(ModelConfig(**fields)) == endpoint


_GO_LOCAL = ProviderConfig(
    base_url="http://127.0.0.1:9/go/chat",
    anthropic_base_url="http://127.0.0.1:9/go/messages",
)
_ZEN_LOCAL = ProviderConfig(
    base_url="http://127.0.0.1:9/zen/chat",
    anthropic_base_url="http://127.0.0.1:9/zen/messages",
    responses_base_url="http://127.0.0.1:9/zen/responses",
    gemini_base_url="http://127.0.0.1:9/zen/models",
)
_LOCAL = Config(opencode_go=_GO_LOCAL, opencode_zen=_ZEN_LOCAL)

URLS = [
    ("go-chat", dict(provider=GO, model_id="glm-5"), "http://127.0.0.1:9/go/chat"),
    ("go-anthropic", dict(provider=GO, model_id="minimax-m3"), "http://127.0.0.1:9/go/messages"),
    ("tools-disabled-go-minimax-m3-go-chat-url", dict(provider=GO, model_id="minimax-m3", anthropic_tools_disabled=True), "http://127.0.0.1:9/go/chat"),
    ("zen-chat", dict(provider=ZEN, model_id="big-pickle"), "http://127.0.0.1:9/zen/chat"),
    ("zen-anthropic", dict(provider=ZEN, model_id="claude-haiku-4-5"), "http://127.0.0.1:9/zen/messages"),
    ("zen-responses", dict(provider=ZEN, model_id="gpt-5.5"), "http://127.0.0.1:9/zen/responses"),
    ("zen-gemini-appends-id", dict(provider=ZEN, model_id="gemini-3-flash"), "http://127.0.0.1:9/zen/models/gemini-3-flash"),
    ("tools-disabled-zen-claude-zen-chat-url", dict(provider=ZEN, model_id="claude-opus-4-7", anthropic_tools_disabled=True), "http://127.0.0.1:9/zen/chat"),
]


@pytest.mark.parametrize("fields, url", [r[1:] for r in URLS], ids=[r[0] for r in URLS])
def test_endpoint_url(fields, url):
    assert endpoint_url(_LOCAL, ModelConfig(**fields)) == url


def test_gemini_3_flash_default_url_ends_with_models_id():
    url = endpoint_url(Config(), ModelConfig(provider=ZEN, model_id="gemini-3-flash"))
    assert url == "https://opencode.ai/zen/v1/models/gemini-3-flash"
    assert url.endswith("/models/gemini-3-flash")


def test_gemini_base_trailing_slash_not_doubled():
    config = Config(opencode_zen=ProviderConfig("c", "a", "r", "http://h/models/"))
    assert endpoint_url(config, ModelConfig(provider=ZEN, model_id="gemini-3.1-pro")) == "http://h/models/gemini-3.1-pro"


@pytest.mark.parametrize("endpoint", ["responses", "gemini"], ids=["go-responses-no-url", "go-gemini-no-url"])
def test_go_model_without_zen_only_url_is_an_error(endpoint):
    with pytest.raises(ValueError, match=endpoint):
        endpoint_url(Config(), ModelConfig(provider=GO, model_id="glm-5", endpoint=endpoint))


def test_kimi_k2_7_code_note_says_temperature_forced():
    assert "1.0" in lookup(GO, "kimi-k2.7-code").notes


# GET /v1/models: tests/test_listing.py.


def test_catalog_id_sets_have_the_listed_sizes():
    assert len(catalog.GO_ANTHROPIC_IDS) == 7
    assert len(catalog.ZEN_RESPONSES_IDS) == 17
    assert catalog.ZEN_GEMINI_IDS == set(_GEMINI)


def test_catalog_is_a_leaf():
    """The catalog imports nothing of ocproxy, so anything may import it."""
    tree = ast.parse(Path(catalog.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.split(".")[0] == "ocproxy"]
