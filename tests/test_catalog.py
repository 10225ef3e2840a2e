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
    ("gpt-5.6-luna", "responses"),
]

_CLAUDE = [
    "claude-fable-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5",
    "claude-opus-4-1", "claude-sonnet-5", "claude-sonnet-4-6", "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5",
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
_ZEN_CHAT = [
    "minimax-m2.5", "minimax-m2.7", "minimax-m3", "glm-5", "glm-5.1", "glm-5.2", "kimi-k2.5", "kimi-k2.6",
    "kimi-k2.7-code", "deepseek-v4-flash",
]

# The Zen models, every id with its endpoint.
ZEN_ROWS = (
    [(i, "anthropic") for i in _CLAUDE]
    + [(i, "anthropic") for i in _QWEN]
    + [(i, "responses") for i in _GPT]
    + [(i, "gemini") for i in _GEMINI]
    + [(i, "chat") for i in _FREE + _ZEN_CHAT]
)

# What routing and `ocproxy models` read of a model, typed from models.dev
# (providers/opencode-go, providers/opencode, providers/openai for gpt-5.6-luna):
# (provider, id, context, max output, vision, $ input, $ output, $ cached per 1M).
CAPABILITIES = [
    (GO, "kimi-k2.6", 262_144, 65_536, True, 0.95, 4.0, 0.16),
    (GO, "glm-5.1", 202_752, 32_768, False, 1.4, 4.4, 0.26),
    (GO, "minimax-m2.5", 204_800, 65_536, False, 0.3, 1.2, 0.03),
    (GO, "qwen3.5-plus", 262_144, 65_536, True, 0.2, 1.2, 0.02),
    (GO, "deepseek-v4-flash", 1_000_000, 384_000, False, 0.14, 0.28, 0.0028),
    (GO, "gpt-5.6-luna", 1_050_000, 128_000, True, None, None, None),
    (GO, "kimi-k2.7-code", 0, 0, False, 0.95, 4.0, 0.19),
    (ZEN, "claude-opus-4-8", 1_000_000, 128_000, True, 5.0, 25.0, 0.5),
    (ZEN, "claude-haiku-4-5", 200_000, 64_000, True, 1.0, 5.0, 0.1),
    (ZEN, "gpt-5.5", 1_050_000, 128_000, True, 5.0, 30.0, 0.5),
    (ZEN, "gpt-5.3-codex-spark", 128_000, 128_000, False, 1.75, 14.0, 0.175),
    (ZEN, "gemini-3.1-pro", 1_048_576, 65_536, True, 2.0, 12.0, 0.2),
    (ZEN, "big-pickle", 200_000, 32_000, False, 0.0, 0.0, 0.0),
    (ZEN, "minimax-m3", 512_000, 128_000, True, 0.3, 1.2, 0.06),
]


@pytest.mark.parametrize("row", CAPABILITIES, ids=[f"{r[0]}/{r[1]}" for r in CAPABILITIES])
def test_capabilities(row):
    provider, model_id, context, output, vision, p_in, p_out, p_cached = row
    e = lookup(provider, model_id)
    assert (e.context, e.max_output, e.vision) == (context, output, vision)
    assert (e.price_input, e.price_output, e.price_cached) == (p_in, p_out, p_cached)
    assert catalog.context_window(provider, model_id) == context
    assert catalog.output_limit(provider, model_id) == output
    assert catalog.has_vision(provider, model_id) is vision


def test_unknown_model_has_no_limits_to_route_on():
    assert catalog.context_window(GO, "some-new-model") == 0
    assert catalog.output_limit(ZEN, "some-new-model") == 0
    assert catalog.has_vision(ZEN, "some-new-model") is False


def test_every_row_has_a_known_reasoning_style_and_sane_limits():
    styles = {catalog.REASONING_CONTENT, catalog.THINKING, catalog.EFFORT, catalog.NO_REASONING}
    for e in CATALOG:
        assert e.reasoning in styles, e
        assert e.context == 0 or e.context >= e.max_output > 0, e


@pytest.mark.parametrize("model_id, endpoint", GO_ROWS, ids=[r[0] for r in GO_ROWS])
def test_go_row(model_id, endpoint):
    assert catalog_endpoint(GO, model_id) == endpoint
    assert endpoint_for(ModelConfig(provider=GO, model_id=model_id)) == endpoint
    entry = lookup(GO, model_id)
    assert entry is not None and entry.endpoint == endpoint and entry.provider == GO


@pytest.mark.parametrize("model_id, endpoint", ZEN_ROWS, ids=[r[0] for r in ZEN_ROWS])
def test_zen_row(model_id, endpoint):
    assert catalog_endpoint(ZEN, model_id) == endpoint
    assert endpoint_for(ModelConfig(provider=ZEN, model_id=model_id)) == endpoint
    entry = lookup(ZEN, model_id)
    assert entry is not None and entry.endpoint == endpoint


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


def test_go_model_without_zen_only_url_is_an_error():
    with pytest.raises(ValueError, match="gemini"):
        endpoint_url(Config(), ModelConfig(provider=GO, model_id="glm-5", endpoint="gemini"))


def test_go_responses_model_goes_to_gos_responses_url():
    url = endpoint_url(Config(), ModelConfig(provider=GO, model_id="gpt-5.6-luna"))
    assert url == "https://opencode.ai/zen/go/v1/responses"


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
