"""Validation: every problem a config can have, where it is reported and in
what words, and the warnings that do not stop a config from loading."""

from __future__ import annotations

import logging

import pytest

from ocproxy.config import (
    API_KEY_REQUIRED,
    GO,
    ZEN,
    Config,
    ConfigError,
    json_path,
    load_config,
)
from tests.configfiles import load, paths_of, problems_of

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
        "gemini-on-go-model",
        {"api_key": "k", "models": {"default": {"model_id": "gemini-3-flash", "endpoint": "gemini"}}},
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
    ("client_api_keys-named-unresolved", {"api_key": "k", "client_api_keys": [{"name": "alice", "key": "${NOT_SET_ANYWHERE}"}]},
     ["$.client_api_keys[0].key"]),
    ("trusted_proxies-not-cidr", {"api_key": "k", "trusted_proxies": ["10.0.0.0/8", "proxy.local"]}, ["$.trusted_proxies[1]"]),
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
    ("wrong-type-thinking", {"models": {"x": {"thinking": 3}}}, "$.models.x.thinking", "object"),
    ("thinking-mode-enum", {"models": {"x": {"thinking": "loud"}}}, "$.models.x.thinking", "one of"),
    ("user_agent-type", {"opencode_go": {"user_agent": 1}}, "$.opencode_go.user_agent", "string"),
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
    ("client_api_keys-named-no-key", {"client_api_keys": [{"name": "alice"}]}, "$.client_api_keys[0].key", "required"),
    ("client_api_keys-number", {"client_api_keys": [5]}, "$.client_api_keys[0]", "string"),
    ("trusted_proxies-type", {"trusted_proxies": "10.0.0.1"}, "$.trusted_proxies", "array"),
    ("max_connections-negative", {"max_connections": -1}, "$.max_connections", ">= 0"),
    ("request_read_timeout-type", {"request_read_timeout_ms": "60s"}, "$.request_read_timeout_ms", "integer"),
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
        "models": {"d": {"model_id": "gemini-3-flash", "endpoint": "gemini"}},
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
    ("go-responses-endpoint-ok", {"api_key": "k", "models": {"x": {"model_id": "gpt-5.6-luna", "endpoint": "responses"}}}),
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
