"""Config loading: file lookup, interpolation, overrides, defaults, the template.

Every test builds its own env dict and files under ``tmp_path``; the real
HOME and process environment are never read.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocproxy.config import (
    GO,
    ZEN,
    Config,
    ConfigError,
    ModelConfig,
    default_template,
    interpolate,
    load_config,
    resolve_config_path,
)
from ocproxy.upstream.targets import endpoint_for, endpoint_url
from tests.configfiles import load, paths_of, problems_of, write

REPO = Path(__file__).resolve().parent.parent


# -- minimal config and defaults --------------------------------------


def test_minimal_config_gets_every_default(tmp_path):
    c = load(tmp_path, {"api_key": "${OCPROXY_API_KEY}"}, {"OCPROXY_API_KEY": "sk-test"})
    assert c.api_key == "sk-test"
    assert (c.host, c.port) == ("127.0.0.1", 3456)
    assert c.opencode_go.base_url == "https://opencode.ai/zen/go/v1/chat/completions"
    assert c.opencode_go.anthropic_base_url == "https://opencode.ai/zen/go/v1/messages"
    assert c.opencode_zen.base_url == "https://opencode.ai/zen/v1/chat/completions"
    assert c.opencode_zen.anthropic_base_url == "https://opencode.ai/zen/v1/messages"
    assert c.opencode_zen.responses_base_url == "https://opencode.ai/zen/v1/responses"
    assert c.opencode_zen.gemini_base_url == "https://opencode.ai/zen/v1/models"
    for block in (c.opencode_go, c.opencode_zen):
        assert block.timeout_ms == 300000
        assert block.stream_timeout_ms == 300000
        assert block.stream_idle_timeout == 300.0
    assert c.log_level == "info"
    assert dict(c.fallbacks) == {} and dict(c.model_overrides) == {} and dict(c.models) == {}
    assert c.respect_requested_model is True  # absent reads as true
    assert c.hot_reload is False and c.enable_streaming_scenario_routing is False
    assert c.log_requests is False


def test_defaults_of_settings_the_original_lacked(tmp_path):
    c = load(tmp_path, {"api_key": "k"})
    assert c.heartbeat_interval_ms == 3000
    assert (c.breaker_threshold, c.breaker_recovery_ms) == (3, 30000)
    assert c.max_request_bytes == 33554432
    assert c.rate_limit_per_minute == 0
    assert c.client_api_keys == ()


def test_settings_the_original_lacked_are_read(tmp_path):
    c = load(
        tmp_path,
        {
            "api_key": "k",
            "heartbeat_interval_ms": 500,
            "circuit_breaker": {"threshold": 5, "recovery_timeout_ms": 1000},
            "max_request_bytes": 1024,
            "rate_limit_per_minute": 60,
            "client_api_keys": ["c1", "c2", {"name": "alice", "key": "alice-key-1"}],
            "trusted_proxies": ["10.0.0.0/8", "::1"],
            "max_connections": 50,
            "request_read_timeout_ms": 5000,
        },
    )
    assert c.heartbeat_interval_ms == 500 and c.heartbeat_interval == 0.5
    assert (c.breaker_threshold, c.breaker_recovery_ms) == (5, 1000)
    assert c.max_request_bytes == 1024
    assert c.rate_limit_per_minute == 60
    # plain keys are named after their hash; the name is what logs and limits use
    assert [k.key for k in c.client_api_keys] == ["c1", "c2", "alice-key-1"]
    assert [k.name for k in c.client_api_keys] == ["key-" + hashlib.sha256(b"c1").hexdigest()[:8],
                                                   "key-" + hashlib.sha256(b"c2").hexdigest()[:8], "alice"]
    assert "alice-key-1" not in repr(c.client_api_keys)
    assert c.trusted_proxies == ("10.0.0.0/8", "::1")
    assert (c.max_connections, c.request_read_timeout) == (50, 5.0)


def test_model_config_fields(tmp_path):
    entry = {
        "provider": "opencode_zen",
        "model_id": "deepseek-v4-pro",
        "temperature": 1,
        "max_tokens": 8192,
        "context_threshold": 90000,
        "reasoning_effort": "max",
        "thinking": {"type": "enabled", "budget_tokens": 10},
        "vision": True,
        "anthropic_tools_disabled": False,
        "wire_format": "openai",
        "endpoint": "chat",
    }
    m = load(tmp_path, {"api_key": "k", "models": {"think": entry}}).models["think"]
    assert m == ModelConfig(
        provider=ZEN,
        model_id="deepseek-v4-pro",
        temperature=1.0,
        max_tokens=8192,
        context_threshold=90000,
        reasoning_effort="max",
        thinking={"type": "enabled", "budget_tokens": 10},
        vision=True,
        anthropic_tools_disabled=False,
        endpoint="chat",
    )
    assert isinstance(m.temperature, float)


def test_empty_model_config_defaults(tmp_path):
    m = load(tmp_path, {"api_key": "k", "models": {"x": {}}}).models["x"]
    assert m == ModelConfig(provider=GO)
    assert m.thinking is None and m.endpoint is None


@pytest.mark.parametrize(
    "value, expected",
    [(None, True), (True, True), (False, False)],
    ids=["respect-absent-true", "respect-true", "respect-false"],
)
def test_respect_requested_model(tmp_path, value, expected):
    data = {"api_key": "k"}
    if value is not None:
        data["respect_requested_model"] = value
    assert load(tmp_path, data).respect_requested_model is expected


@pytest.mark.parametrize(
    "level, expected",
    [("debug", "debug"), ("INFO", "info"), ("warn", "warn"), ("warning", "warn"), ("error", "error"), ("loud", "info"), ("", "info")],
    ids=["debug", "case", "warn", "warning", "error", "unknown-is-info", "empty-is-info"],
)
def test_logging_level(tmp_path, level, expected):
    assert load(tmp_path, {"api_key": "k", "logging": {"level": level, "requests": True}}).log_level == expected


def test_logging_requests(tmp_path):
    assert load(tmp_path, {"api_key": "k", "logging": {"requests": True}}).log_requests is True


def test_null_maps_become_empty(tmp_path):
    c = load(tmp_path, {"api_key": "k", "models": None, "fallbacks": None, "model_overrides": None})
    assert dict(c.models) == dict(c.fallbacks) == dict(c.model_overrides) == {}


def test_unknown_keys_ignored(tmp_path):
    c = load(tmp_path, {"api_key": "k", "mystery": [1, 2], "models": {"x": {"model_id": "glm-5", "colour": "red"}}})
    assert c.models["x"].model_id == "glm-5"


def test_frozen_maps(tmp_path):
    c = load(tmp_path, {"api_key": "k", "fallbacks": {"default": [{"model_id": "glm-5"}]}})
    with pytest.raises(TypeError):
        c.models["x"] = ModelConfig()  # type: ignore[index]
    assert isinstance(c.fallbacks["default"], tuple)


# -- the three timeouts ---------------------------------------------------

TIMEOUTS = [
    ("empty", {}, (300, 300, 300)),
    ("timeout-only", {"timeout_ms": 120000}, (120, 120, 120)),
    ("streaming-set-idle-from-timeout", {"timeout_ms": 300000, "streaming_timeout_ms": 600000}, (300, 600, 300)),
    (
        "all-three",
        {"timeout_ms": 300000, "streaming_timeout_ms": 600000, "stream_timeout_ms": 90000},
        (300, 600, 90),
    ),
    ("negative-means-default", {"timeout_ms": -1, "streaming_timeout_ms": -5}, (300, 300, 300)),
]


@pytest.mark.parametrize("block, expected", [t[1:] for t in TIMEOUTS], ids=[t[0] for t in TIMEOUTS])
@pytest.mark.parametrize("provider", ["opencode_go", "opencode_zen"])
def test_timeout_table(tmp_path, provider, block, expected):
    c = load(tmp_path, {"api_key": "k", provider: block})
    model = ModelConfig(provider=provider.replace("_", "-"))
    p = c.provider(model)
    assert (p.request_timeout, p.streaming_timeout, p.stream_idle_timeout) == expected


def test_zen_timeout_applies_to_zen_model_only(tmp_path):
    c = load(tmp_path, {"api_key": "k", "opencode_zen": {"timeout_ms": 60000}})
    zen = c.provider(ModelConfig(provider=ZEN))
    go = c.provider(ModelConfig(provider=GO))
    assert (zen.request_timeout, zen.streaming_timeout, zen.stream_idle_timeout) == (60, 60, 60)
    assert (go.request_timeout, go.streaming_timeout, go.stream_idle_timeout) == (300, 300, 300)


def test_streaming_timeouts_per_provider(tmp_path):
    c = load(
        tmp_path,
        {
            "api_key": "k",
            "opencode_go": {"timeout_ms": 300000, "streaming_timeout_ms": 600000},
            "opencode_zen": {"timeout_ms": 300000, "streaming_timeout_ms": 700000},
        },
    )
    assert (c.opencode_go.streaming_timeout, c.opencode_zen.streaming_timeout) == (600, 700)
    assert (c.opencode_go.stream_idle_timeout, c.opencode_zen.stream_idle_timeout) == (300, 300)


def test_stream_timeout_defaults_to_own_timeout_ms(tmp_path):
    c = load(tmp_path, {"api_key": "k", "opencode_go": {"timeout_ms": 45000}, "opencode_zen": {"timeout_ms": 70000}})
    assert (c.opencode_go.stream_timeout_ms, c.opencode_zen.stream_timeout_ms) == (45000, 70000)


def test_first_byte_timeout_per_provider_defaults_to_a_minute_and_never_exceeds_the_idle_limit(tmp_path):
    c = load(tmp_path, {"api_key": "k", "opencode_go": {"first_byte_timeout_ms": 20000},
                        "opencode_zen": {"stream_timeout_ms": 10000}})
    assert c.opencode_go.first_byte_timeout == 20
    assert load(tmp_path, {"api_key": "k"}).opencode_go.first_byte_timeout == 60
    assert c.opencode_zen.first_byte_timeout == 10  # the idle limit bounds every silent gap


def test_hedge_after_ms_is_read_per_scenario_and_off_by_default(tmp_path):
    c = load(tmp_path, {"api_key": "k", "models": {"default": {"model_id": "kimi-k2.6", "hedge_after_ms": 8000},
                                                   "fast": {"model_id": "kimi-k2.6"}}})
    assert c.models["default"].hedge_after_ms == 8000
    assert c.models["fast"].hedge_after_ms == 0
    paths = paths_of(tmp_path, {"api_key": "k", "models": {"default": {"model_id": "x", "hedge_after_ms": -1}}})
    assert paths == ["$.models.default.hedge_after_ms"]


# -- interpolation ----------------------------------------------------------

INTERP = [
    ("resolved", "${TEST_SECRET}", "my-secret-value"),
    ("default-syntax-literal", "${UNSET_VAR:-fallback}", "${UNSET_VAR:-fallback}"),
    ("unset-literal", "${UNSET_VAR}", "${UNSET_VAR}"),
    ("dollar-without-braces-literal", "$TEST_SECRET", "$TEST_SECRET"),
    ("dotted-literal", "${A.B}", "${A.B}"),
    ("inside-text", "Bearer ${TEST_SECRET}!", "Bearer my-secret-value!"),
    ("two-placeholders", "${TEST_SECRET}/${TEST_SECRET}", "my-secret-value/my-secret-value"),
    ("empty-var-is-unset", "${EMPTY_VAR}", "${EMPTY_VAR}"),
    ("alias-group-legacy-member", "${ROUTATIC_PROXY_API_KEY}", "legacy-key"),
    ("alias-group-newest-first", "${OC_GO_CC_HOST}", "new-host"),
]
INTERP_ENV = {
    "TEST_SECRET": "my-secret-value",
    "EMPTY_VAR": "",
    "OC_GO_CC_API_KEY": "legacy-key",
    "OCPROXY_HOST": "new-host",
    "ROUTATIC_PROXY_HOST": "mid-host",
}


@pytest.mark.parametrize("text, expected", [t[1:] for t in INTERP], ids=[t[0] for t in INTERP])
def test_interpolation_table(text, expected):
    assert interpolate(text, INTERP_ENV) == expected


def test_only_string_values_keys_untouched():
    data = {"${TEST_SECRET}": "${TEST_SECRET}", "n": 5, "b": True, "l": ["${TEST_SECRET}", None]}
    assert interpolate(data, INTERP_ENV) == {"${TEST_SECRET}": "my-secret-value", "n": 5, "b": True, "l": ["my-secret-value", None]}


def test_value_with_quote_cannot_break_json(tmp_path):
    c = load(tmp_path, {"api_key": "${Q}", "host": "${Q}"}, {"Q": 'a"b,}'})
    assert c.api_key == 'a"b,}' and c.host == 'a"b,}'


def test_routatic_placeholder_resolved_from_oc_go_cc(tmp_path):
    c = load(tmp_path, {"api_key": "${ROUTATIC_PROXY_API_KEY}"}, {"OC_GO_CC_API_KEY": "legacy-key"})
    assert c.api_key == "legacy-key"


def test_unset_in_api_keys_fails_validation(tmp_path):
    problems = problems_of(tmp_path, {"api_keys": ["k1", "${UNSET_VAR}"]})
    assert [p.path for p in problems] == ["$.api_keys[1]"]
    assert '"${UNSET_VAR}"' in problems[0].message


# -- environment overrides --------------------------------------------------


def test_env_legacy_key_replaces_pool(tmp_path):
    c = load(tmp_path, {"api_keys": ["a", "b"]}, {"OC_GO_CC_API_KEY": "env-key"})
    assert c.key_pool == ("env-key",)
    assert c.api_keys == ()


HOSTS = [
    ("host-ocproxy-wins", {"OCPROXY_HOST": "1.1.1.1", "ROUTATIC_PROXY_HOST": "2.2.2.2", "OC_GO_CC_HOST": "3.3.3.3"}, "1.1.1.1"),
    ("host-routatic-beats-oc-go-cc", {"ROUTATIC_PROXY_HOST": "2.2.2.2", "OC_GO_CC_HOST": "3.3.3.3"}, "2.2.2.2"),
    ("host-oc-go-cc", {"OC_GO_CC_HOST": "3.3.3.3"}, "3.3.3.3"),
    ("host-empty-ignored", {"OCPROXY_HOST": "", "OC_GO_CC_HOST": "3.3.3.3"}, "3.3.3.3"),
    ("host-none-file-wins", {}, "10.0.0.1"),
]


@pytest.mark.parametrize("env, expected", [h[1:] for h in HOSTS], ids=[h[0] for h in HOSTS])
def test_env_host_precedence(tmp_path, env, expected):
    assert load(tmp_path, {"api_key": "k", "host": "10.0.0.1"}, env).host == expected


PORTS = [
    ("port-abc-ignored", "abc", 4000),
    ("port-set", "5000", 5000),
    ("port-zero-then-default", "0", 3456),
    ("port-float-ignored", "12.5", 4000),
]


@pytest.mark.parametrize("value, expected", [p[1:] for p in PORTS], ids=[p[0] for p in PORTS])
def test_env_port(tmp_path, value, expected):
    assert load(tmp_path, {"api_key": "k", "port": 4000}, {"OCPROXY_PORT": value}).port == expected


def test_env_urls_and_log_level(tmp_path):
    env = {
        "ROUTATIC_PROXY_OPENCODE_URL": "http://127.0.0.1:1/go",
        "OC_GO_CC_OPENCODE_ZEN_URL": "http://127.0.0.1:1/zen",
        "OCPROXY_LOG_LEVEL": "debug",
    }
    c = load(tmp_path, {"api_key": "k", "logging": {"level": "error"}}, env)
    assert c.opencode_go.base_url == "http://127.0.0.1:1/go"
    assert c.opencode_zen.base_url == "http://127.0.0.1:1/zen"
    assert c.opencode_go.anthropic_base_url == "https://opencode.ai/zen/go/v1/messages"
    assert c.log_level == "debug"


def test_env_key_satisfies_required_key(tmp_path):
    assert load(tmp_path, {}, {"ROUTATIC_PROXY_API_KEY": "rk"}).api_key == "rk"


def test_cli_host_port_beat_env_and_file(tmp_path):
    c = load(tmp_path, {"api_key": "k", "port": 4000, "host": "h"}, {"OCPROXY_PORT": "5000"}, cli_host="0.0.0.0", cli_port=6000)
    assert (c.host, c.port) == ("0.0.0.0", 6000)


def test_override_never_hides_a_type_mistake_in_the_file(tmp_path):
    problems = problems_of(tmp_path, {"api_key": "k", "host": 1, "port": "x"}, {"OCPROXY_HOST": "h"}, cli_port=5000)
    assert [p.path for p in problems] == ["$.host", "$.port"]


def test_rules_judge_the_values_in_effect(tmp_path):
    assert load(tmp_path, {"api_key": "k", "port": 70000}, {"OCPROXY_PORT": "5000"}).port == 5000
    assert paths_of(tmp_path, {"api_key": "k", "port": 4000}, {"OCPROXY_PORT": "70000"}) == ["$.port"]
    assert load(tmp_path, {"api_keys": ["", "${NOPE_W}"]}, {"OCPROXY_API_KEY": "env"}).key_pool == ("env",)


def test_port_zero_means_the_default_port(tmp_path):
    assert load(tmp_path, {"api_key": "k", "port": 0}).port == 3456


# -- resolution and built-in defaults -------------------------------------------


def _touch(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return str(path)


def test_config_file_lookup_order(tmp_path):
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    assert resolve_config_path(None, env) is None
    oc_go_cc = _touch(home / ".config/oc-go-cc/config.json")
    assert resolve_config_path(None, env) == oc_go_cc
    routatic = _touch(home / ".config/routatic-proxy/config.json")
    assert resolve_config_path(None, env) == routatic
    primary = _touch(home / ".config/ocproxy/config.json")
    assert resolve_config_path(None, env) == primary
    env["OC_GO_CC_CONFIG"] = "/etc/c.json"
    assert resolve_config_path(None, env) == "/etc/c.json"
    env["ROUTATIC_PROXY_CONFIG"] = "/etc/b.json"
    assert resolve_config_path(None, env) == "/etc/b.json"
    env["OCPROXY_CONFIG"] = "/etc/a.json"
    assert resolve_config_path(None, env) == "/etc/a.json"
    assert resolve_config_path("/flag.json", env) == "/flag.json"


@pytest.mark.parametrize(
    "cli, env_value, expected",
    [("~/x.json", None, "home/x.json"), (None, "~/y.json", "home/y.json"), ("rel.json", None, "CWD/rel.json")],
    ids=["tilde-in-flag", "tilde-in-env", "relative-made-absolute"],
)
def test_paths_expanded(tmp_path, monkeypatch, cli, env_value, expected):
    monkeypatch.chdir(tmp_path)
    env = {"HOME": str(tmp_path / "home")}
    if env_value:
        env["OCPROXY_CONFIG"] = env_value
    got = resolve_config_path(cli, env)
    assert got == os.path.join(str(tmp_path), expected.replace("CWD/", ""))


def test_explicit_path_returned_even_if_missing(tmp_path):
    assert resolve_config_path(None, {"HOME": str(tmp_path), "OCPROXY_CONFIG": "/no/such.json"}) == "/no/such.json"


def test_builtin_defaults_are_init_template_with_env_key(tmp_path):
    c = load_config(None, {"HOME": str(tmp_path), "OC_GO_CC_API_KEY": "sk-env"})
    assert c.api_key == "sk-env" and c.source_path is None
    assert sorted(c.models) == ["background", "complex", "default", "fast", "long_context", "think"]
    assert c.models["long_context"].context_threshold == 80000
    assert c.respect_requested_model is True
    assert "big-pickle" in c.model_overrides


def test_builtin_defaults_without_key_only_warn(tmp_path):
    warnings: list[str] = []
    c = load_config(None, {"HOME": str(tmp_path)}, warnings=warnings)
    assert c.api_key == ""  # never the literal placeholder
    assert len(warnings) == 1 and "OCPROXY_API_KEY" in warnings[0]


def test_explicit_file_without_key_is_error(tmp_path):
    assert paths_of(tmp_path, default_template()) == ["$.api_key"]


def test_source_path_kept(tmp_path):
    path = write(tmp_path, {"api_key": "k"})
    assert load_config(path, {"HOME": str(tmp_path)}).source_path == path


# -- examples ---------------------------------------------------------------


def test_example_file_loads():
    c = load_config(str(REPO / "etc/config.example.json"), {"HOME": "/nonexistent", "OCPROXY_API_KEY": "sk-x"})
    assert c.respect_requested_model is False
    assert len(c.models) == 8 and len(c.fallbacks) == 6 and len(c.model_overrides) == 5
    assert c.opencode_go.streaming_timeout == 600 and c.opencode_zen.streaming_timeout == 600
    assert c.models["deepseek-v4-pro"].thinking == {"type": "enabled"}
    assert c.fallbacks["default"][0].model_id == "mimo-v2.5-pro"
    assert c.model_overrides["claude-sonnet-4-5"].provider == ZEN
    assert c.log_requests is True


def test_example_file_needs_the_key():
    with pytest.raises(ConfigError) as info:
        load_config(str(REPO / "etc/config.example.json"), {"HOME": "/nonexistent"})
    assert [p.path for p in info.value.problems] == ["$.api_key"]


def test_init_template():
    t = default_template()
    assert t["api_key"] == "${OCPROXY_API_KEY}" and t["respect_requested_model"] is True
    assert {k: (m["model_id"], m["temperature"]) for k, m in t["models"].items()} == {
        "background": ("qwen3.5-plus", 0.5),
        "default": ("kimi-k2.6", 0.7),
        "long_context": ("minimax-m2.5", 0.7),
        "think": ("glm-5", 0.7),
        "complex": ("glm-5.1", 0.7),
        "fast": ("qwen3.6-plus", 0.7),
    }
    # issue 15: the template caps nothing below a model's real output limit
    every = [*t["models"].values(), *t["model_overrides"].values(), *(m for c in t["fallbacks"].values() for m in c)]
    assert not any("max_tokens" in m for m in every)
    assert not any("vision" in m for m in t["models"].values())
    assert t["models"]["long_context"]["context_threshold"] == 80000
    overrides = t["model_overrides"]
    assert sorted(overrides) == sorted(
        ["deepseek-v4-pro", "deepseek-v4-flash-free", "grok-build-0.1", "big-pickle", "mimo-v2.5-free", "north-mini-code-free", "nemotron-3-ultra-free"]
    )
    assert all(m["provider"] == "opencode-zen" and m["temperature"] == 0.7 for m in overrides.values())
    assert overrides["deepseek-v4-pro"]["reasoning_effort"] == "max"
    assert overrides["deepseek-v4-pro"]["thinking"] == {"type": "enabled"}
    for block in ("opencode_go", "opencode_zen"):
        assert t[block]["timeout_ms"] == 300000
        assert "streaming_timeout_ms" not in t[block] and "stream_timeout_ms" not in t[block]
    assert t["logging"] == {"level": "info", "requests": True}
    chains = [m["model_id"] for chain in t["fallbacks"].values() for m in chain]
    assert "mimo-v2.5-pro" in chains and "mimo-v2-pro" not in chains
    assert default_template() is not t  # a fresh copy each call


def _seed_entry(model_id: str, **extra) -> dict:
    return {"provider": "opencode-go", "model_id": model_id, "reasoning_effort": "high", "thinking": {"type": "enabled"}, **extra}


# A real-world config: DeepSeek/MiMo/MiniMax chains with thinking on, key from the legacy env var.
REAL_WORLD_CONFIG = {
    "api_key": "${OC_GO_CC_API_KEY}",
    "hot_reload": True,
    "models": {
        "background": _seed_entry("deepseek-v4-flash"),
        "fast": _seed_entry("deepseek-v4-flash"),
        "default": _seed_entry("mimo-v2.5"),
        "think": _seed_entry("deepseek-v4-pro"),
        "complex": _seed_entry("deepseek-v4-pro"),
        "long_context": _seed_entry("minimax-m3", context_threshold=80000),
    },
    "fallbacks": {
        "background": [_seed_entry("mimo-v2.5")],
        "fast": [_seed_entry("mimo-v2.5")],
        "default": [_seed_entry("deepseek-v4-flash")],
        "think": [_seed_entry("mimo-v2.5")],
        "complex": [_seed_entry("mimo-v2.5")],
        "long_context": [_seed_entry("deepseek-v4-pro")],
    },
}


@pytest.mark.parametrize("var", ["OC_GO_CC_API_KEY", "OCPROXY_API_KEY"], ids=["key-from-oc-go-cc", "key-from-ocproxy"])
def test_real_world_config_loads(tmp_path, var):
    c = load(tmp_path, REAL_WORLD_CONFIG, {var: "seed-key"})
    assert c.api_key == "seed-key" and c.hot_reload is True
    assert len(c.fallbacks) == 6
    long_context = c.models["long_context"]
    assert (long_context.model_id, long_context.context_threshold) == ("minimax-m3", 80000)
    assert endpoint_for(long_context) == "anthropic"
    assert endpoint_url(c, long_context) == "https://opencode.ai/zen/go/v1/messages"
    assert all(m.thinking == {"type": "enabled"} and m.reasoning_effort for m in c.models.values())


# -- the package's shape ------------------------------------------------------------


def test_types_import_without_jsonschema():
    """Translators import the config types; that must not pull in the validator."""
    code = "import sys, ocproxy.config.types, ocproxy.config; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_template_takes_its_defaults_from_the_types():
    t, d = default_template(), Config()
    assert (t["host"], t["port"], t["respect_requested_model"]) == (d.host, d.port, d.respect_requested_model)
    assert t["opencode_go"]["timeout_ms"] == d.opencode_go.timeout_ms
    assert t["opencode_zen"]["gemini_base_url"] == d.opencode_zen.gemini_base_url
    assert t["logging"]["level"] == d.log_level
