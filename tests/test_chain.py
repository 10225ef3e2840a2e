"""Model chain building: overrides, the requested model, scenario routing."""

import pytest

from ocproxy.config import GO, ZEN, Config, ModelConfig
from ocproxy.errors import ProxyError
from ocproxy.request import checked_request
from ocproxy.routing.chain import Route, RoutingError, build_route, strip_context_suffix


def mc(model_id, provider=GO, **kw):
    return ModelConfig(provider=provider, model_id=model_id, **kw)


def req(model="", text="hello", **extra):
    return checked_request({"model": model, "messages": [{"role": "user", "content": text}], **extra})


def ids(route):
    return [m.model_id for m in route.chain]


# Config A
A = Config(
    models={"default": mc("kimi-k2.6")},
    fallbacks={"default": (mc("mimo-v2-pro"), mc("qwen3.6-plus"))},
)
A_OVERRIDE = Config(
    models=A.models,
    fallbacks=A.fallbacks,
    model_overrides={"kimi-k2.6": mc("kimi-k2.6", ZEN, temperature=0.3)},
)
# Config B
B = Config(
    models={"default": mc("kimi-k2.6")},
    fallbacks={"default": (mc("mimo-v2-pro"),)},
    model_overrides={"claude-sonnet-4.5": mc("claude-sonnet-4.5", ZEN)},
)
B_FAST = Config(
    models={"default": mc("kimi-k2.6"), "fast": mc("qwen3.6-plus")},
    fallbacks={"default": (mc("mimo-v2-pro"),), "fast": (mc("qwen3.5-plus"),)},
    model_overrides=B.model_overrides,
)
B_NO_FALLBACKS = Config(models=B.models, model_overrides=B.model_overrides)
# Config C
C = Config(
    respect_requested_model=False,
    models={"default": mc("kimi-k2.6")},
    fallbacks={"default": (mc("mimo-v2-pro"),)},
    model_overrides={"some-other-model": mc("x")},
)
# Config D
D = Config(
    models={"default": mc("kimi-k2.6", temperature=0.5, max_tokens=8192)},
    fallbacks={"default": (mc("qwen3.5-plus"),)},
)
D_ENTRY = Config(
    models={"default": D.models["default"], "kimi-k2.6": mc("kimi-k2.6", temperature=0.7, max_tokens=4096)},
    fallbacks=D.fallbacks,
)


WORKED = [
    ("empty-model", A, req(""), False, ["kimi-k2.6", "mimo-v2-pro", "qwen3.6-plus"], "default"),
    ("override-dedup", A_OVERRIDE, req("kimi-k2.6"), False,
     ["kimi-k2.6", "mimo-v2-pro", "qwen3.6-plus"], "override"),
    ("non-streaming", B, req("claude-sonnet-4.5"), False,
     ["claude-sonnet-4.5", "mimo-v2-pro", "kimi-k2.6"], "override"),
    ("streaming", B_FAST, req("claude-sonnet-4.5"), True,
     ["claude-sonnet-4.5", "mimo-v2-pro", "qwen3.6-plus", "qwen3.5-plus"], "override"),
    ("no-fallbacks", B_NO_FALLBACKS, req("claude-sonnet-4.5"), False,
     ["claude-sonnet-4.5", "kimi-k2.6"], "override"),
    ("unknown-ignored", C, req("completely-unknown"), False, ["kimi-k2.6", "mimo-v2-pro"], "default"),
    # issue #15: an unknown name goes to the scenario route, never upstream as is
    ("unknown-to-scenario", D, req("some-unknown-model"), False,
     ["kimi-k2.6", "qwen3.5-plus"], "default"),
    ("catalog-id-bare-entry", D, req("glm-5.1"), False,
     ["glm-5.1", "qwen3.5-plus"], "default"),
    ("models-entry-bypasses-scenario", D_ENTRY, req("kimi-k2.6", "refactor the architecture"), False,
     ["kimi-k2.6", "qwen3.5-plus"], "default"),
]


@pytest.mark.parametrize("config, request_, streaming, chain, label", [w[1:] for w in WORKED], ids=[w[0] for w in WORKED])
def test_chain_worked_examples(config, request_, streaming, chain, label):
    route = build_route(request_, config, streaming)
    assert isinstance(route, Route)
    assert ids(route) == chain
    assert route.scenario == label


def test_configA_override_keeps_override_entry():
    route = build_route(req("kimi-k2.6"), A_OVERRIDE, False)
    assert route.chain[0].provider == ZEN and route.chain[0].temperature == 0.3
    assert all(m.provider == GO for m in route.chain[1:])


def test_configD_bare_entry_copies_temperature_and_max_tokens_only():
    primary = build_route(req("glm-5.1"), D, False).primary
    assert primary == ModelConfig(provider=GO, model_id="glm-5.1", temperature=0.5, max_tokens=8192)


def test_configD_models_entry_used_as_is():
    primary = build_route(req("kimi-k2.6"), D_ENTRY, False).primary
    assert (primary.temperature, primary.max_tokens) == (0.7, 4096)


def test_requested_model_default_key_picks_models_default():
    route = build_route(req("default"), A, False)
    assert ids(route) == ["kimi-k2.6", "mimo-v2-pro", "qwen3.6-plus"]


def test_requested_model_without_models_default():
    route = build_route(req("glm-5.1"), Config(), False)
    assert route.chain == (ModelConfig(provider=GO, model_id="glm-5.1"),)


def test_requested_model_streaming_uses_fallbacks_default_not_fast():
    route = build_route(req("glm-5.1"), B_FAST, True)
    assert ids(route) == ["glm-5.1", "mimo-v2-pro"] and route.scenario == "default"


def test_claude_code_name_goes_to_scenario_route_not_upstream():
    # issue #15: Claude Code's own names are not a choice of upstream model
    for name in ("claude-sonnet-4-5-20250929", "claude-opus-4-8", "claude-opus-4-8[1m]"):
        route = build_route(req(name), A, False)
        assert ids(route) == ["kimi-k2.6", "mimo-v2-pro", "qwen3.6-plus"], name


# scenario routing: respect_requested_model false, so the requested model is ignored
SCEN = Config(
    respect_requested_model=False,
    models={"default": mc("kimi-k2.6"), "complex": mc("glm-5.1"), "fast": mc("qwen3.6-plus"),
            "think": mc("deepseek-v4-pro")},
    fallbacks={"default": (mc("mimo-v2-pro"),), "complex": (mc("glm-5"),), "fast": (mc("qwen3.5-plus"),)},
)
SCEN_ON = Config(
    respect_requested_model=False,
    enable_streaming_scenario_routing=True,
    models=SCEN.models,
    fallbacks=SCEN.fallbacks,
)

STEP3 = [
    ("step3-complex-own-fallbacks", SCEN, "refactor it", False, ["glm-5.1", "glm-5"], "complex"),
    ("step3-think-falls-back-to-fallbacks-default", SCEN, "think hard", False,
     ["deepseek-v4-pro", "mimo-v2-pro"], "think"),
    ("step3-background-missing-uses-models-default", SCEN, "what is go", False,
     ["kimi-k2.6", "mimo-v2-pro"], "background"),
    ("step3-streaming-off-fast", SCEN, "refactor it", True, ["qwen3.6-plus", "qwen3.5-plus"], "fast"),
    ("step3-streaming-on-scenario", SCEN_ON, "refactor it", True, ["glm-5.1", "glm-5"], "complex"),
    ("step3-streaming-on-default-fallbacks", SCEN_ON, "hi", True, ["kimi-k2.6", "mimo-v2-pro"], "default"),
]


@pytest.mark.parametrize("config, text, streaming, chain, label", [s[1:] for s in STEP3], ids=[s[0] for s in STEP3])
def test_scenario_scenario_routing(config, text, streaming, chain, label):
    route = build_route(req("anything", text), config, streaming)
    assert (ids(route), route.scenario) == (chain, label)


def test_scenario_streaming_off_primary_from_default_never_fallbacks_default():
    config = Config(models={"default": mc("kimi-k2.6")}, fallbacks={"default": (mc("mimo-v2-pro"),)})
    route = build_route(req(""), config, True)
    assert ids(route) == ["kimi-k2.6"] and route.scenario == "fast"


def test_scenario_streaming_long_context_own_entry():
    config = Config(
        models={"default": mc("kimi-k2.6"), "fast": mc("qwen3.6-plus"),
                "long_context": mc("minimax-m3", context_threshold=5)},
        fallbacks={"fast": (mc("qwen3.5-plus"),)},
    )
    route = build_route(req("", "a fairly long request text here"), config, True)
    assert ids(route) == ["minimax-m3", "qwen3.5-plus"] and route.scenario == "long_context"


def test_scenario_list_twice_attempted_twice():
    config = Config(models={"default": mc("kimi-k2.6")}, fallbacks={"default": (mc("kimi-k2.6"), mc("kimi-k2.6"))})
    assert ids(build_route(req(""), config, False)) == ["kimi-k2.6"] * 3


ERRORS = [
    ("no-default-model-configured", Config(), False, "no default model configured"),
    ("no-model-for-streaming", Config(), True,
     'no model configured for streaming; neither scenario "fast", "fast", nor "default" exist in models map'),
    ("streaming-empty-model-id", Config(models={"fast": mc("")}), True, "no model configured for streaming"),
]


@pytest.mark.parametrize("config, streaming, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_routing_errors(config, streaming, message):
    with pytest.raises(RoutingError, match="^" + message.replace("(", r"\(")):
        build_route(req(""), config, streaming)


def test_override_fails_when_scenario_routing_fails():
    config = Config(model_overrides={"x": mc("x-model")})
    with pytest.raises(RoutingError, match="no default model configured"):
        build_route(req("x"), config, False)


def test_override_own_fallbacks_beat_default():
    config = Config(
        models={"default": mc("kimi-k2.6")},
        fallbacks={"default": (mc("mimo-v2-pro"),), "x": (mc("glm-5"),)},
        model_overrides={"x": mc("x-model")},
    )
    assert ids(build_route(req("x"), config, False)) == ["x-model", "glm-5", "kimi-k2.6", "mimo-v2-pro"]


def test_override_dedup_by_model_id_ignores_provider():
    config = Config(
        models={"default": mc("a", ZEN), "fast": mc("c")},
        fallbacks={"default": (mc("b"),), "fast": (mc("c"), mc("d"))},
        model_overrides={"x": mc("a")},
    )
    route = build_route(req("x"), config, False)
    assert ids(route) == ["a", "b"]  # scenario zen/a dropped: same model_id as go/a
    assert route.chain[0].provider == GO
    # streaming: scenario chain fast = c, c, d; first occurrence wins
    assert ids(build_route(req("x"), config, True)) == ["a", "b", "c", "d"]


def test_override_part_not_deduplicated():
    config = Config(
        models={"default": mc("k")},
        fallbacks={"x": (mc("a"), mc("a"))},
        model_overrides={"x": mc("a")},
    )
    assert ids(build_route(req("x"), config, False)) == ["a", "a", "a", "k"]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("claude-opus-4-8[1m]", "claude-opus-4-8"),
        ("m[256k]", "m"),
        ("m[128k]", "m"),
        ("m[1m][256k]", "m"),
        ("m[1m]x", "m[1m]x"),
        ("[1m]", ""),
        ("plain", "plain"),
    ],
    ids=["rec-strip-1m", "rec-strip-256k", "rec-strip-128k", "rec-strip-repeatedly",
         "rec-only-trailing", "rec-strip-to-empty", "rec-untouched"],
)
def test_suffix_strip(name, expected):
    assert strip_context_suffix(name) == expected


def test_suffix_stripped_before_override_lookup():
    assert ids(build_route(req("claude-sonnet-4.5[1m]"), B, False))[0] == "claude-sonnet-4.5"


def test_suffix_stripped_requested_model():
    assert build_route(req("glm-5.1[1m]"), A, False).primary.model_id == "glm-5.1"


def test_suffix_only_name_is_empty_and_scenario_routes():
    route = build_route(req("[1m]"), A, False)
    assert route.scenario == "default" and route.primary.model_id == "kimi-k2.6"


@pytest.mark.parametrize("body", [{"messages": []}, {}], ids=range(2))
def test_odd_request_routes_by_scenario(body):
    assert build_route(checked_request(body), A, False).primary.model_id == "kimi-k2.6"


def test_mistyped_request_never_reaches_routing():
    with pytest.raises(ProxyError, match="model must be a string"):
        checked_request({"model": 5, "messages": "x"})


def test_route_carries_routing_count():
    route = build_route(req("", "hello world", system="You are helpful"), A, False)
    assert int(route.token_count) == 18


def test_long_context_by_count_in_route():
    config = Config(
        respect_requested_model=False,
        models={"default": mc("kimi-k2.6"), "long_context": mc("minimax-m3", context_threshold=9)},
    )
    assert build_route(req("", "hello world"), config, False).scenario == "long_context"  # 10 > 9
    assert build_route(req("", "hello"), config, False).scenario == "default"  # 9 > 9 is false


def test_requested_model_route_counts_tokens_only_when_read(monkeypatch):
    from ocproxy import tokens

    counted = []
    real = tokens.routing_count
    monkeypatch.setattr(tokens, "routing_count", lambda r: counted.append(r) or real(r))
    route = build_route(req("kimi-k2.6", "hello world", system="You are helpful"), A, False)
    assert route.primary.model_id == "kimi-k2.6" and counted == []  # routing did not need it
    assert "tokens=%d" % route.token_count == "tokens=18"  # the log line reads it
    assert int(route.token_count) == 18 and len(counted) == 1  # counted once
