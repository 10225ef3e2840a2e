"""Issue #15 item 1: Claude model names never go upstream by accident.

Claude Code names its own models in every request; they map by family
(``model_family_overrides``) or go to scenario routing. A requested catalog
id goes to its own provider and endpoint; an unknown name to the scenario
route. The built-in config routes Claude Code's real traffic sensibly.
"""

import pytest

from ocproxy.catalog import ANTHROPIC, CHAT, GEMINI, RESPONSES, provider_of
from ocproxy.config import GO, ZEN, Config, ModelConfig, load_config
from ocproxy.request import checked_request
from ocproxy.routing.chain import build_route, family_of
from ocproxy.upstream.targets import endpoint_for
from tests.configfiles import load, problems_of


def mc(model_id, provider=GO, **kw):
    return ModelConfig(provider=provider, model_id=model_id, **kw)


def req(model, text="hello", **extra):
    return checked_request({"model": model, "messages": [{"role": "user", "content": text}], **extra})


def ids(route):
    return [m.model_id for m in route.chain]


LONG_TEXT = "lorem " * 130_000  # well over any threshold below

FAMILY = Config(
    models={
        "default": mc("kimi-k2.6"),
        "background": mc("qwen3.5-plus"),
        "fast": mc("qwen3.6-plus"),
        "long_context": mc("minimax-m3", context_threshold=80_000),
    },
    fallbacks={"default": (mc("mimo-v2.5-pro"),), "background": (mc("glm-5"),)},
    model_family_overrides={
        "opus": "default",
        "sonnet": "default",
        "fable": "default",
        "haiku": "background",
        "sonnet-4-5": "gpt-5.5",  # longer keys win over shorter ones
    },
)

FAMILY_TABLE = [
    # (requested name, streaming, primary model_id, scenario label)
    ("claude-opus-4-8", False, "kimi-k2.6", "default"),
    ("claude-opus-4-8", True, "kimi-k2.6", "default"),
    ("claude-opus-4-8[1m]", True, "kimi-k2.6", "default"),
    ("claude-sonnet-4-6", True, "kimi-k2.6", "default"),
    ("claude-fable-5", False, "kimi-k2.6", "default"),
    ("claude-haiku-4-5-20251001", True, "qwen3.5-plus", "background"),
    ("claude-3-5-haiku-20241022", False, "qwen3.5-plus", "background"),
    ("CLAUDE-HAIKU-4-5", False, "qwen3.5-plus", "background"),  # case-insensitive
    ("claude-sonnet-4-5-20250929", False, "gpt-5.5", "family"),  # longest key first
    ("claude-mythos-1", False, "kimi-k2.6", "default"),  # no family: scenario route
    ("claude-mythos-1", True, "qwen3.6-plus", "fast"),  # (streaming: fast, as configured)
]


@pytest.mark.parametrize("name, streaming, primary, label", FAMILY_TABLE,
                         ids=[f"{t[0]}-{'stream' if t[1] else 'whole'}" for t in FAMILY_TABLE])
def test_family_table(name, streaming, primary, label):
    route = build_route(req(name), FAMILY, streaming)
    assert (route.primary.model_id, route.scenario) == (primary, label)
    assert not any(m.model_id.startswith("claude-") for m in route.chain)


def test_family_brings_its_models_key_fallbacks_then_the_scenario_safety_net():
    route = build_route(req("claude-haiku-4-5"), FAMILY, False)
    # background's own fallbacks, then the scenario chain (default) de-duplicated
    assert ids(route) == ["qwen3.5-plus", "glm-5", "kimi-k2.6", "mimo-v2.5-pro"]


@pytest.mark.parametrize("name", ["claude-opus-4-8", "claude-haiku-4-5", "claude-sonnet-4-5"])
@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
def test_long_request_goes_to_long_context_over_any_family(name, streaming):
    route = build_route(req(name, LONG_TEXT), FAMILY, streaming)
    assert (route.primary.model_id, route.scenario) == ("minimax-m3", "long_context")


def test_family_of_longest_key_then_none():
    assert family_of("claude-sonnet-4-5-x", FAMILY) == "sonnet-4-5"
    assert family_of("claude-sonnet-4-6", FAMILY) == "sonnet"
    assert family_of("gpt-5.5", FAMILY) is None


@pytest.mark.parametrize(
    "target, provider, endpoint",
    [
        ("gpt-5.5", ZEN, RESPONSES),
        ("gemini-3.1-pro", ZEN, GEMINI),
        ("claude-opus-4-8", ZEN, ANTHROPIC),
        ("glm-5.1", GO, CHAT),
        ("minimax-m3", GO, ANTHROPIC),  # served by both: Go's
    ],
)
def test_family_naming_a_catalog_id_uses_its_provider_and_endpoint(target, provider, endpoint):
    config = Config(models={"default": mc("kimi-k2.6")}, model_family_overrides={"opus": target})
    primary = build_route(req("claude-opus-4-8"), config, True).primary
    assert (primary.model_id, primary.provider, endpoint_for(primary)) == (target, provider, endpoint)


def test_family_entry_form_routatic():
    entry = mc("gpt-5.4", ZEN, reasoning_effort="high")
    config = Config(models={"default": mc("kimi-k2.6")}, fallbacks={"opus": (mc("glm-5"),)},
                    model_family_overrides={"opus": entry})
    route = build_route(req("claude-opus-4-8"), config, False)
    assert route.chain == (entry, mc("glm-5"), mc("kimi-k2.6")) and route.scenario == "family"


def test_exact_override_beats_family():
    config = Config(models={"default": mc("kimi-k2.6")}, model_family_overrides={"opus": "default"},
                    model_overrides={"claude-opus-4-8": mc("glm-5.1")})
    assert build_route(req("claude-opus-4-8"), config, False).primary.model_id == "glm-5.1"


# -- respect_requested_model: configured or catalog names only -----------------

RESPECT = Config(models={"default": mc("kimi-k2.6"), "think": mc("glm-5")},
                 fallbacks={"default": (mc("mimo-v2.5-pro"),)})

REQUESTED = [
    # (requested, primary model_id, provider, endpoint)
    ("gpt-5.5", "gpt-5.5", ZEN, RESPONSES),
    ("gpt-5.3-codex", "gpt-5.3-codex", ZEN, RESPONSES),
    ("gemini-3.1-pro", "gemini-3.1-pro", ZEN, GEMINI),
    ("big-pickle", "big-pickle", ZEN, CHAT),
    ("qwen3.6-plus", "qwen3.6-plus", GO, ANTHROPIC),  # on both: Go
    ("glm-5.1", "glm-5.1", GO, CHAT),
    ("think", "glm-5", GO, CHAT),  # a models key
    ("some-unknown-model", "kimi-k2.6", GO, CHAT),  # unknown: scenario route
    ("gpt-9", "kimi-k2.6", GO, CHAT),
    ("claude-opus-4-8", "kimi-k2.6", GO, CHAT),  # in the catalog, but a Claude Code name
]


@pytest.mark.parametrize("name, model_id, provider, endpoint", REQUESTED, ids=[r[0] for r in REQUESTED])
def test_requested_model_table(name, model_id, provider, endpoint):
    primary = build_route(req(name), RESPECT, False).primary
    assert (primary.model_id, primary.provider, endpoint_for(primary)) == (model_id, provider, endpoint)


def test_configured_claude_name_is_passed():
    config = Config(models={"default": mc("kimi-k2.6"), "claude-opus-4-8": mc("claude-opus-4-8", ZEN)})
    primary = build_route(req("claude-opus-4-8"), config, False).primary
    assert (primary.provider, endpoint_for(primary)) == (ZEN, ANTHROPIC)


def test_catalog_provider_of():
    assert provider_of("gpt-5.5") == ZEN and provider_of("kimi-k2.6") == GO
    assert provider_of("nope") is None


# -- config -------------------------------------------------------------------


def test_family_overrides_load_both_forms(tmp_path):
    c = load(tmp_path, {
        "api_key": "k",
        "models": {"default": {"model_id": "kimi-k2.6"}},
        "model_family_overrides": {"haiku": "default", "opus": {"provider": "opencode_zen", "model_id": "gpt-5.5"}},
    })
    assert c.model_family_overrides["haiku"] == "default"
    assert c.model_family_overrides["opus"] == mc("gpt-5.5", ZEN)


@pytest.mark.parametrize(
    "families, path, words",
    [
        ({"opus": "kimi-k9"}, '$.model_family_overrides.opus', 'unknown model "kimi-k9"'),
        ({"opus": "background"}, '$.model_family_overrides.opus', 'unknown model "background"'),
        ({"sonnet": {"provider": "opencode-go", "model_id": "gpt-5.5"}},
         '$.model_family_overrides.sonnet.model_id', 'unknown model "gpt-5.5" on opencode-go'),
        ({"sonnet": {"provider": "opencode-go"}},
         '$.model_family_overrides.sonnet.model_id', "missing required field model_id"),
        ({"haiku": 5}, '$.model_family_overrides.haiku', "must be an object"),
        ({"haiku": ""}, '$.model_family_overrides.haiku', "must not be empty"),
    ],
    ids=["unknown-name", "missing-models-key", "not-on-that-provider", "no-model-id", "wrong-type", "empty"],
)
def test_family_override_naming_unknown_model_is_a_validate_error(tmp_path, families, path, words):
    data = {"api_key": "k", "models": {"default": {"model_id": "kimi-k2.6"}}, "model_family_overrides": families}
    problems = problems_of(tmp_path, data)
    assert any(p.path == path and words in p.message for p in problems), problems


def test_family_entry_with_a_configured_model_id_is_known(tmp_path):
    c = load(tmp_path, {"api_key": "k", "models": {"default": {"model_id": "my-private-model"}},
                        "model_family_overrides": {"opus": {"model_id": "my-private-model"}}})
    assert c.model_family_overrides["opus"].model_id == "my-private-model"


# -- the built-in config (the `ocproxy init` template) ----------------------------


@pytest.fixture(scope="module")
def builtin():
    return load_config(None, {"HOME": "/nonexistent", "OCPROXY_API_KEY": "k"})


CLAUDE_CODE_TRAFFIC = [
    # (what Claude Code sends, streaming, text, the models key it must reach)
    ("claude-opus-4-8", True, "fix the failing test in tests/test_x.py", "default"),
    ("claude-opus-4-8[1m]", True, "refactor the architecture", "default"),
    ("claude-sonnet-4-6", True, "hi", "default"),
    ("claude-sonnet-4-6", False, "hi", "default"),
    ("claude-haiku-4-5-20251001", True, "Please write a 5-10 word title", "background"),
    ("claude-haiku-4-5-20251001", False, "quota", "background"),
    ("claude-opus-4-8", True, LONG_TEXT, "long_context"),
    ("claude-haiku-4-5-20251001", True, LONG_TEXT, "long_context"),
]


@pytest.mark.parametrize("name, streaming, text, key", CLAUDE_CODE_TRAFFIC,
                         ids=[f"{t[0]}-{t[3]}-{'stream' if t[1] else 'whole'}" for t in CLAUDE_CODE_TRAFFIC])
def test_builtin_config_routes_claude_code_traffic(builtin, name, streaming, text, key):
    route = build_route(req(name, text), builtin, streaming)
    assert route.primary == builtin.models[key]
    assert not any(m.model_id.startswith("claude-") for m in route.chain)


def test_builtin_120k_token_request_counts_over_the_threshold(builtin):
    from ocproxy.routing.scenarios import long_context_threshold

    route = build_route(req("claude-opus-4-8", "lorem " * 120_000), builtin, True)
    assert int(route.token_count) > long_context_threshold(builtin)
    assert route.scenario == "long_context"
