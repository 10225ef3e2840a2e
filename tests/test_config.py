"""Config loading: file lookup, interpolation, overrides, defaults, validation, reload.

Every test builds its own env dict and files under ``tmp_path``; the real
HOME and process environment are never read.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from ocproxy.config import (
    API_KEY_REQUIRED,
    GO,
    ZEN,
    Config,
    ConfigError,
    ModelConfig,
    Problem,
    default_template,
    interpolate,
    json_path,
    load_config,
    resolve_config_path,
)
from ocproxy.reload import ConfigHolder
from ocproxy.upstream.targets import endpoint_for, endpoint_url

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, data, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def load(tmp_path: Path, data, env=None, **kw) -> Config:
    env = {"HOME": str(tmp_path), **(env or {})}
    return load_config(write(tmp_path, data), env, **kw)


def problems_of(tmp_path: Path, data, env=None, **kw) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data, env, **kw)
    return list(info.value.problems)


def paths_of(tmp_path: Path, data, env=None) -> list[str]:
    return [p.path for p in problems_of(tmp_path, data, env)]


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
            "client_api_keys": ["c1", "c2"],
        },
    )
    assert c.heartbeat_interval_ms == 500 and c.heartbeat_interval == 0.5
    assert (c.breaker_threshold, c.breaker_recovery_ms) == (5, 1000)
    assert c.max_request_bytes == 1024
    assert c.rate_limit_per_minute == 60
    assert c.client_api_keys == ("c1", "c2")


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


# -- validation ---------------------------------------------------------------

INVALID = [
    ("api_key-required", {}, ["$.api_key"]),
    ("api_key-empty-and-api_keys-empty", {"api_key": "", "api_keys": []}, ["$.api_key"]),
    ("api_keys-empty-entry", {"api_keys": ["a", ""]}, ["$.api_keys[1]"]),
    ("api_keys-unresolved", {"api_keys": ["${NOT_SET_ANYWHERE}"]}, ["$.api_keys[0]"]),
    ("override-missing-model_id", {"api_key": "k", "model_overrides": {"m": {"provider": "opencode-zen"}}}, ["$.model_overrides.m.model_id"]),
    ("override-empty-model_id", {"api_key": "k", "model_overrides": {"m": {"model_id": ""}}}, ["$.model_overrides.m.model_id"]),
    (
        "override-invalid-provider",
        {"api_key": "k", "model_overrides": {"m": {"model_id": "x", "provider": "openai"}}},
        ["$.model_overrides.m.provider"],
    ),
    ("api_key-unresolved", {"api_key": "${NOT_SET_ANYWHERE}"}, ["$.api_key"]),
    ("port-too-big", {"api_key": "k", "port": 70000}, ["$.port"]),
    ("port-negative", {"api_key": "k", "port": -1}, ["$.port"]),
    (
        "responses-on-go-model",
        {"api_key": "k", "models": {"default": {"model_id": "gpt-5", "endpoint": "responses"}}},
        ["$.models.default.endpoint"],
    ),
    (
        "gemini-on-go-fallback",
        {"api_key": "k", "fallbacks": {"fast": [{"model_id": "a"}, {"provider": "opencode-go", "model_id": "g", "endpoint": "gemini"}]}},
        ["$.fallbacks.fast[1].endpoint"],
    ),
    (
        "gemini-on-go-override",
        {"api_key": "k", "model_overrides": {"g": {"model_id": "g", "endpoint": "gemini"}}},
        ["$.model_overrides.g.endpoint"],
    ),
    ("client_api_keys-unresolved", {"api_key": "k", "client_api_keys": ["${NOT_SET_ANYWHERE}"]}, ["$.client_api_keys[0]"]),
]


@pytest.mark.parametrize("data, paths", [r[1:] for r in INVALID], ids=[r[0] for r in INVALID])
def test_invalid_config_names_the_path(tmp_path, data, paths):
    assert paths_of(tmp_path, data) == paths


def test_messages_use_go_wording(tmp_path):
    data = {
        "api_keys": ["", "${NOPE_X}"],
        "model_overrides": {"m": {"provider": "bogus"}},
    }
    messages = {p.path: p.message for p in problems_of(tmp_path, data)}
    assert messages == {
        "$.api_keys[0]": "api_keys[0] is empty — each key must be a non-empty string",
        "$.api_keys[1]": 'api_keys[1] contains unresolved env var "${NOPE_X}" — set the corresponding environment variable or remove this entry',
        "$.model_overrides.m.model_id": 'model_overrides["m"] is missing required field model_id',
        "$.model_overrides.m.provider": 'model_overrides["m"] has invalid provider "bogus" (must be "opencode-go" or "opencode-zen")',
    }
    assert problems_of(tmp_path, {})[0].message == API_KEY_REQUIRED
    assert "OCPROXY_API_KEY" in API_KEY_REQUIRED


SCHEMA = [
    ("wrong-type-port-string", {"port": "3456"}, "$.port", "integer"),
    ("wrong-type-host", {"host": 1}, "$.host", "string"),
    ("wrong-type-api_keys", {"api_keys": "a,b"}, "$.api_keys", "array"),
    ("wrong-type-api_keys-item", {"api_keys": ["a", 2]}, "$.api_keys[1]", "string"),
    ("wrong-type-hot_reload", {"hot_reload": "yes"}, "$.hot_reload", "boolean"),
    ("wrong-type-models", {"models": []}, "$.models", "object"),
    ("wrong-type-model-entry", {"models": {"default": "glm-5"}}, "$.models.default", "object"),
    ("wrong-type-temperature", {"models": {"default": {"temperature": "hot"}}}, "$.models.default.temperature", "number"),
    ("wrong-type-max_tokens-float", {"models": {"default": {"max_tokens": 1.5}}}, "$.models.default.max_tokens", "integer"),
    ("wrong-type-vision", {"models": {"x": {"vision": 1}}}, "$.models.x.vision", "boolean"),
    ("wrong-type-thinking", {"models": {"x": {"thinking": "on"}}}, "$.models.x.thinking", "object"),
    ("wrong-type-fallback-chain", {"fallbacks": {"default": {"model_id": "x"}}}, "$.fallbacks.default", "array"),
    ("wrong-type-fallback-item", {"fallbacks": {"default": [3]}}, "$.fallbacks.default[0]", "object"),
    ("wrong-type-override-key-with-dot", {"model_overrides": {"a.b": {"model_id": 5}}}, '$.model_overrides["a.b"].model_id', "string"),
    ("wrong-type-timeout", {"opencode_go": {"timeout_ms": "300000"}}, "$.opencode_go.timeout_ms", "integer"),
    ("wrong-type-zen-url", {"opencode_zen": {"gemini_base_url": 1}}, "$.opencode_zen.gemini_base_url", "string"),
    ("wrong-type-logging", {"logging": "debug"}, "$.logging", "object"),
    ("wrong-type-logging-requests", {"logging": {"requests": "yes"}}, "$.logging.requests", "boolean"),
    ("endpoint-enum", {"models": {"x": {"endpoint": "openai"}}}, "$.models.x.endpoint", "one of"),
    ("heartbeat-type", {"heartbeat_interval_ms": "3s"}, "$.heartbeat_interval_ms", "integer"),
    ("heartbeat-negative", {"heartbeat_interval_ms": -1}, "$.heartbeat_interval_ms", ">= 0"),
    ("breaker-threshold", {"circuit_breaker": {"threshold": "3"}}, "$.circuit_breaker.threshold", "integer"),
    ("breaker-recovery", {"circuit_breaker": {"recovery_timeout_ms": 1.5}}, "$.circuit_breaker.recovery_timeout_ms", "integer"),
    ("breaker-object", {"circuit_breaker": 3}, "$.circuit_breaker", "object"),
    ("max_request_bytes", {"max_request_bytes": "big"}, "$.max_request_bytes", "integer"),
    ("rate_limit", {"rate_limit_per_minute": -5}, "$.rate_limit_per_minute", ">= 0"),
    ("client_api_keys-type", {"client_api_keys": "secret"}, "$.client_api_keys", "array"),
    ("client_api_keys-empty-item", {"client_api_keys": [""]}, "$.client_api_keys[0]", "empty"),
    ("top-level-not-object", [], "$", "object"),
]


@pytest.mark.parametrize("data, path, word", [r[1:] for r in SCHEMA], ids=[r[0] for r in SCHEMA])
def test_wrong_type_names_the_key(tmp_path, data, path, word):
    if isinstance(data, dict):
        data = {"api_key": "k", **data}
    problems = problems_of(tmp_path, data)
    assert [p.path for p in problems] == [path]
    assert word in problems[0].message


def test_type_error_never_echoes_a_key_value(tmp_path):
    problems = problems_of(tmp_path, {"api_key": ["sk-very-secret"]})
    assert [p.path for p in problems] == ["$.api_key"]
    assert "sk-very-secret" not in str(ConfigError(problems))


def test_every_problem_listed_at_once(tmp_path):
    data = {
        "port": "x",
        "api_keys": ["", "${NOPE_Y}"],
        "model_overrides": {"m": {"provider": "nope"}},
        "models": {"d": {"model_id": "gpt-5", "endpoint": "responses"}},
        "circuit_breaker": {"threshold": -1},
    }
    paths = paths_of(tmp_path, data)
    assert set(paths) == {
        "$.port",
        "$.api_keys[0]",
        "$.api_keys[1]",
        "$.model_overrides.m.model_id",
        "$.model_overrides.m.provider",
        "$.models.d.endpoint",
        "$.circuit_breaker.threshold",
    }
    text = str(ConfigError(problems_of(tmp_path, data)))
    assert all(p in text for p in paths) and text.count("\n") == len(paths) - 1


NOT_JSON = [
    ("not-json", "{not json", "line 1"),
    ("trailing-comma", '{"api_key": "k",}', "line 1"),
    ("comment", '{"api_key": "k" // key\n}', "line 1"),
    ("empty-file", "", "line 1 column 1"),
    ("nan-not-strict-json", '{"api_key": "k", "port": NaN}', "NaN"),
]


@pytest.mark.parametrize("text, where", [r[1:] for r in NOT_JSON], ids=[r[0] for r in NOT_JSON])
def test_invalid_json_has_location(tmp_path, text, where):
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1 and problems[0].path == "$"
    assert "invalid JSON" in problems[0].message and where in problems[0].message


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "absent.json"), {"HOME": str(tmp_path), "OCPROXY_API_KEY": "k"})
    assert "cannot read" in str(info.value)


VALID = [
    ("override-empty-provider-passes", {"model_overrides": {"m": {"provider": "", "model_id": "x"}}}, GO),
    ("override-provider-opencode-go", {"model_overrides": {"m": {"provider": "opencode-go", "model_id": "x"}}}, GO),
    ("override-provider-opencode-zen", {"model_overrides": {"m": {"provider": "opencode-zen", "model_id": "x"}}}, ZEN),
    ("override-provider-opencode_zen", {"model_overrides": {"m": {"provider": "opencode_zen", "model_id": "x"}}}, ZEN),
]


@pytest.mark.parametrize("data, provider", [r[1:] for r in VALID], ids=[r[0] for r in VALID])
def test_valid_override_provider(tmp_path, data, provider):
    assert load(tmp_path, {"api_key": "k", **data}).model_overrides["m"].provider == provider


ACCEPTED = [
    ("api_keys-alone-is-enough", {"api_keys": ["a", "b"]}),
    ("api_key-placeholder-unused-when-pool-set", {"api_key": "${NOPE_Z}", "api_keys": ["a"]}),
    ("models-not-validated", {"api_key": "k", "models": {"x": {}}, "fallbacks": {"x": [{}]}}),
    ("empty-models-legal", {"api_key": "k", "models": {}}),
    ("zen-responses-endpoint-ok", {"api_key": "k", "models": {"x": {"provider": "opencode-zen", "model_id": "a", "endpoint": "responses"}}}),
    ("port-bounds", {"api_key": "k", "port": 65535}),
    ("null-values-read-as-absent", {"api_key": "k", "host": None, "opencode_go": {"timeout_ms": None}, "logging": None}),
    ("integral-float-is-integer", {"api_key": "k", "port": 4000.0}),
]


@pytest.mark.parametrize("data", [r[1] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_valid_config_accepted(tmp_path, data):
    c = load(tmp_path, data)
    assert isinstance(c, Config) and isinstance(c.port, int)


# -- warnings -------------------------------------------------------------------

WARN = [
    (
        "warn-tools-disabled-on-chat-model",
        {"models": {"k": {"model_id": "glm-5", "anthropic_tools_disabled": True}}},
        'models["k"] has anthropic_tools_disabled=true',
    ),
    (
        "warn-tools-disabled-on-zen-chat-override",
        {"model_overrides": {"o": {"provider": "opencode-zen", "model_id": "big-pickle", "anthropic_tools_disabled": True}}},
        'model_overrides["o"] has anthropic_tools_disabled=true',
    ),
    (
        "warn-tools-disabled-endpoint-chat",
        {"models": {"k": {"model_id": "minimax-m3", "endpoint": "chat", "anthropic_tools_disabled": True}}},
        "only effective on models routing to the Anthropic endpoint",
    ),
    ("warn-unknown-provider", {"models": {"k": {"provider": "acme", "model_id": "x"}}}, 'unknown provider "acme"'),
]


@pytest.mark.parametrize("data, text", [r[1:] for r in WARN], ids=[r[0] for r in WARN])
def test_warnings_do_not_fail(tmp_path, caplog, data, text):
    warnings: list[str] = []
    with caplog.at_level(logging.WARNING, logger="ocproxy.config"):
        load(tmp_path, {"api_key": "k", **data}, warnings=warnings)
    assert len(warnings) == 1 and text in warnings[0]
    assert any(text in r.getMessage() for r in caplog.records)


NO_WARN = [
    ("no-warn-tools-disabled-go-anthropic", {"models": {"k": {"model_id": "minimax-m3", "anthropic_tools_disabled": True}}}),
    ("no-warn-tools-disabled-zen-claude", {"models": {"k": {"provider": "opencode-zen", "model_id": "claude-sonnet-4-5", "anthropic_tools_disabled": True}}}),
    ("no-warn-tools-disabled-endpoint-anthropic", {"models": {"k": {"model_id": "glm-5", "endpoint": "anthropic", "anthropic_tools_disabled": True}}}),
    ("no-warn-plain", {"models": {"k": {"model_id": "glm-5"}}}),
]


@pytest.mark.parametrize("data", [r[1] for r in NO_WARN], ids=[r[0] for r in NO_WARN])
def test_no_warning_for_fine_models(tmp_path, data):
    warnings: list[str] = []
    load(tmp_path, {"api_key": "k", **data}, warnings=warnings)
    assert warnings == []


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
    assert {k: (m["model_id"], m["temperature"], m["max_tokens"]) for k, m in t["models"].items()} == {
        "background": ("qwen3.5-plus", 0.5, 2048),
        "default": ("kimi-k2.6", 0.7, 4096),
        "long_context": ("minimax-m2.5", 0.7, 16384),
        "think": ("glm-5", 0.7, 8192),
        "complex": ("glm-5.1", 0.7, 4096),
        "fast": ("qwen3.6-plus", 0.7, 4096),
    }
    assert not any("vision" in m for m in t["models"].values())
    assert t["models"]["long_context"]["context_threshold"] == 80000
    overrides = t["model_overrides"]
    assert sorted(overrides) == sorted(
        ["deepseek-v4-pro", "deepseek-v4-flash-free", "grok-build-0.1", "big-pickle", "mimo-v2.5-free", "north-mini-code-free", "nemotron-3-ultra-free"]
    )
    assert all(m["provider"] == "opencode-zen" and m["temperature"] == 0.7 for m in overrides.values())
    assert {k: m["max_tokens"] for k, m in overrides.items() if m["max_tokens"] != 4096} == {"deepseek-v4-pro": 8192}
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


# -- reload through ConfigHolder ------------------------------------------------


def test_reload_valid_file_new_values(tmp_path):
    path = write(tmp_path, {"api_key": "k", "opencode_go": {"timeout_ms": 1000}})
    holder = ConfigHolder(load_config(path, {"HOME": str(tmp_path)}), env={"HOME": str(tmp_path)})
    write(tmp_path, {"api_key": "k2", "opencode_go": {"timeout_ms": 2000}})
    assert holder.reload() is True
    assert holder.current.api_key == "k2" and holder.current.opencode_go.timeout_ms == 2000


def test_reload_invalid_json_keeps_old(tmp_path, caplog):
    path = write(tmp_path, {"api_key": "k"})
    holder = ConfigHolder(load_config(path, {"HOME": str(tmp_path)}), env={"HOME": str(tmp_path)})
    before = holder.current
    write(tmp_path, '{"api_key": ')
    with caplog.at_level(logging.ERROR, logger="ocproxy.config"):
        assert holder.reload() is False
    assert holder.current is before
    assert any("config reload failed" in r.getMessage() for r in caplog.records)


def test_reload_callbacks_all_run_and_cli_port_survives(tmp_path, caplog):
    path = write(tmp_path, {"api_key": "k", "port": 4000})
    env = {"HOME": str(tmp_path)}
    holder = ConfigHolder(load_config(path, env, cli_port=9999), env=env, cli_port=9999)
    seen: list[str] = []

    def first(c: Config):
        seen.append("first")
        raise RuntimeError("boom")  # logged and skipped

    def second(c: Config):
        seen.append("second")
        return replace(c, log_level="debug")

    holder.add_callback(first)
    holder.add_callback(second)
    write(tmp_path, {"api_key": "k", "port": 4001, "opencode_zen": {"timeout_ms": 5}})
    with caplog.at_level(logging.INFO, logger="ocproxy.config"):
        assert holder.reload() is True
    assert seen == ["first", "second"]
    assert holder.current.port == 9999 and holder.current.log_level == "debug"
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "timeout config updated, takes effect immediately" in messages
    assert "config reloaded successfully" in messages


def test_host_port_change_warns(tmp_path, caplog):
    path = write(tmp_path, {"api_key": "k", "port": 4000})
    env = {"HOME": str(tmp_path)}
    holder = ConfigHolder(load_config(path, env), env=env)
    write(tmp_path, {"api_key": "k", "port": 4001})
    with caplog.at_level(logging.WARNING, logger="ocproxy.config"):
        holder.reload()
    assert any("requires server restart" in r.getMessage() for r in caplog.records)


def test_holder_swap_atomic_with_concurrent_readers():
    """Readers see whole configs only: each pair of fields always agrees."""
    configs = [Config(port=1000 + i, heartbeat_interval_ms=1000 + i, api_key=f"k{i}") for i in range(4)]
    holder = ConfigHolder(configs[0])
    stop = threading.Event()
    torn: list[Config] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            c = holder.current
            if not (c.port == c.heartbeat_interval_ms and c.api_key == f"k{c.port - 1000}"):
                torn.append(c)
            reads[0] += 1

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20000):
            assert holder.swap(configs[(i + 1) % 4]) is configs[i % 4]
    finally:  # a failing writer must not leave readers spinning
        stop.set()
        for t in threads:
            t.join(5)
    assert torn == [] and reads[0] > 0


def test_reload_concurrent_with_readers(tmp_path):
    """File reloads racing readers: every config read is one whole file."""
    env = {"HOME": str(tmp_path)}
    versions = [{"api_key": f"k{i}", "port": 2000 + i, "opencode_go": {"timeout_ms": 2000 + i}} for i in range(2)]
    path = write(tmp_path, versions[0])
    holder = ConfigHolder(load_config(path, env), env=env)
    stop = threading.Event()
    torn: list[Config] = []

    def reader():
        while not stop.is_set():
            c = holder.current
            if not (c.port == c.opencode_go.timeout_ms and c.api_key == f"k{c.port - 2000}"):
                torn.append(c)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(60):
            write(tmp_path, versions[(i + 1) % 2])
            assert holder.reload() is True
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert torn == []
    assert holder.current.api_key == "k0"


# -- helpers ---------------------------------------------------------------------

JSON_PATHS = [
    ("plain", ["opencode_go", "timeout_ms"], "$.opencode_go.timeout_ms"),
    ("index", ["api_keys", 1], "$.api_keys[1]"),
    ("dash-key", ["model_overrides", "claude-sonnet-4-5", "model_id"], "$.model_overrides.claude-sonnet-4-5.model_id"),
    ("dotted-key", ["model_overrides", "claude-sonnet-4.5"], '$.model_overrides["claude-sonnet-4.5"]'),
    ("root", [], "$"),
]


@pytest.mark.parametrize("parts, expected", [r[1:] for r in JSON_PATHS], ids=[f"json-path-{r[0]}" for r in JSON_PATHS])
def test_json_path(parts, expected):
    assert json_path(parts) == expected


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
