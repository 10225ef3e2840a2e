"""Configuration: typed objects built once from the JSON file (config.md).

Code below the app layer only ever sees these frozen dataclasses, never the
raw dicts from the file. A ``Config`` is immutable, so a hot reload swaps
the whole object and a request keeps the one it started with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

DEFAULT_TIMEOUT_MS = 300_000

GO = "opencode-go"
ZEN = "opencode-zen"

ENDPOINTS = ("chat", "anthropic", "responses", "gemini")


def normalise_provider(provider: str | None) -> str:
    """Empty means OpenCode Go; ``_`` is read as ``-`` (config.md §6.2)."""
    return (provider or GO).replace("_", "-")


@dataclass(frozen=True)
class ModelConfig:
    """One entry of ``models``, ``fallbacks[*]`` or ``model_overrides``.

    ``temperature``/``max_tokens``/``context_threshold`` of 0 mean "not set".
    """

    provider: str = GO
    model_id: str = ""
    temperature: float = 0.0
    max_tokens: int = 0
    context_threshold: int = 0
    reasoning_effort: str = ""
    thinking: Mapping | None = None
    vision: bool = False
    anthropic_tools_disabled: bool = False
    endpoint: str | None = None  # contract extension: overrides the catalog

    @property
    def is_zen(self) -> bool:
        return self.provider == ZEN


@dataclass(frozen=True)
class ProviderConfig:
    """An OpenCode provider block (``opencode_go`` / ``opencode_zen``)."""

    base_url: str
    anthropic_base_url: str
    responses_base_url: str = ""
    gemini_base_url: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    streaming_timeout_ms: int = 0
    stream_timeout_ms: int = 0

    def _or_default(self, *values: int) -> float:
        for v in values:
            if v and v > 0:
                return v / 1000.0
        return DEFAULT_TIMEOUT_MS / 1000.0

    @property
    def request_timeout(self) -> float:
        """Seconds for one non-streaming attempt (config.md §6.4)."""
        return self._or_default(self.timeout_ms)

    @property
    def streaming_timeout(self) -> float:
        """Seconds for one whole streaming attempt."""
        return self._or_default(self.streaming_timeout_ms, self.timeout_ms)

    @property
    def stream_idle_timeout(self) -> float:
        """Largest silent gap, in seconds, between two upstream reads."""
        return self._or_default(self.stream_timeout_ms, self.timeout_ms)


DEFAULT_GO = ProviderConfig(
    base_url="https://opencode.ai/zen/go/v1/chat/completions",
    anthropic_base_url="https://opencode.ai/zen/go/v1/messages",
)
DEFAULT_ZEN = ProviderConfig(
    base_url="https://opencode.ai/zen/v1/chat/completions",
    anthropic_base_url="https://opencode.ai/zen/v1/messages",
    responses_base_url="https://opencode.ai/zen/v1/responses",
    gemini_base_url="https://opencode.ai/zen/v1/models",
)

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Config:
    api_key: str = ""
    api_keys: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 3456
    hot_reload: bool = False
    enable_streaming_scenario_routing: bool = False
    respect_requested_model: bool = True  # absent in the file reads as true
    # default_factory: Python 3.11 refuses an unhashable (mappingproxy) default
    models: Mapping[str, ModelConfig] = field(default_factory=lambda: _EMPTY)
    fallbacks: Mapping[str, tuple[ModelConfig, ...]] = field(default_factory=lambda: _EMPTY)
    model_overrides: Mapping[str, ModelConfig] = field(default_factory=lambda: _EMPTY)
    opencode_go: ProviderConfig = DEFAULT_GO
    opencode_zen: ProviderConfig = DEFAULT_ZEN
    log_level: str = "info"
    log_requests: bool = False
    # contract extensions
    heartbeat_interval_ms: int = 3000
    breaker_threshold: int = 3
    breaker_recovery_ms: int = 30_000
    max_request_bytes: int = 33_554_432
    rate_limit_per_minute: int = 0
    client_api_keys: tuple[str, ...] = ()
    #: the file this config came from (None: built-in defaults)
    source_path: str | None = field(default=None, compare=False)

    def provider(self, model: ModelConfig) -> ProviderConfig:
        return self.opencode_zen if model.is_zen else self.opencode_go

    @property
    def key_pool(self) -> tuple[str, ...]:
        """``api_keys`` when non-empty, else ``[api_key]`` (routing.md §12)."""
        return self.api_keys or (self.api_key,)

    @property
    def heartbeat_interval(self) -> float:
        return (self.heartbeat_interval_ms if self.heartbeat_interval_ms > 0 else 3000) / 1000.0


# ---------------------------------------------------------------------------
# Loading (config.md §2-§8) and the hot-reload holder (§9.2).
#
# Everything below turns a JSON file (or the built-in template) into the
# frozen objects above. It collects every problem instead of stopping at the
# first (contract), so `ocproxy validate` can list them all with JSON paths.
# Warnings are logged on "ocproxy.config" and, when the caller passes a
# ``warnings`` list, appended to it too (a Config cannot carry them: it is a
# value that compares equal across reloads).
# ---------------------------------------------------------------------------

import copy  # noqa: E402  (grouped with the loader that needs them)
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from typing import Any, Callable, Iterable, Iterator  # noqa: E402

import jsonschema  # noqa: E402

log = logging.getLogger("ocproxy.config")

#: Env-var families, newest first: the first non-empty member wins (§5).
ENV_PREFIXES = ("OCPROXY_", "ROUTATIC_PROXY_", "OC_GO_CC_")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3456
DEFAULT_HEARTBEAT_MS = 3000
DEFAULT_BREAKER_THRESHOLD = 3
DEFAULT_BREAKER_RECOVERY_MS = 30_000
DEFAULT_MAX_REQUEST_BYTES = 33_554_432

API_KEY_REQUIRED = (
    "api_key or api_keys is required (set via config file or OCPROXY_API_KEY env var; "
    "ROUTATIC_PROXY_API_KEY and OC_GO_CC_API_KEY are still supported)"
)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Problem:
    """One reason a config cannot be used, located by a JSON path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(Exception):
    """The config failed to load; ``problems`` holds every reason found."""

    def __init__(self, problems: "list[Problem] | tuple[Problem, ...]"):
        self.problems = tuple(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


# -- where the file is (§2) -------------------------------------------------


def env_lookup(env: Mapping[str, str], suffix: str) -> str | None:
    """First non-empty of OCPROXY_<suffix>, ROUTATIC_PROXY_<suffix>, OC_GO_CC_<suffix>."""
    for prefix in ENV_PREFIXES:
        value = env.get(prefix + suffix)
        if value:
            return value
    return None


def home_dir(env: Mapping[str, str]) -> str:
    """``$HOME`` from the given env (so tests can use a throwaway home)."""
    return env.get("HOME") or os.path.expanduser("~")


def expand_user(path: str, env: Mapping[str, str]) -> str:
    """Expand a leading ``~`` / ``~/`` against ``env['HOME']``."""
    if path == "~" or path.startswith("~/"):
        return home_dir(env) + path[1:]
    return path


def config_dir(env: Mapping[str, str]) -> str:
    return os.path.join(home_dir(env), ".config", "ocproxy")


def primary_config_path(env: Mapping[str, str]) -> str:
    """``~/.config/ocproxy/config.json``: where ``init`` writes by default."""
    return os.path.join(config_dir(env), "config.json")


def legacy_config_paths(env: Mapping[str, str]) -> tuple[str, ...]:
    home = home_dir(env)
    return (
        os.path.join(home, ".config", "routatic-proxy", "config.json"),
        os.path.join(home, ".config", "oc-go-cc", "config.json"),
    )


def resolve_config_path(cli_path: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The config file to use (contract order), or None for built-in defaults.

    An explicit path (flag or env var) is returned even if it does not exist,
    so loading it fails loudly instead of silently falling back to defaults.
    The result is absolute because the daemon child changes directory and a
    hot reload must re-read the very same file.
    """
    explicit = cli_path or env_lookup(env, "CONFIG")
    if explicit:
        return os.path.abspath(expand_user(explicit, env))
    for candidate in (primary_config_path(env), *legacy_config_paths(env)):
        if os.path.isfile(candidate):
            return candidate
    return None


# -- the init template (§11.3) ---------------------------------------------


def _m(model_id: str, temperature: float, max_tokens: int, provider: str = GO, **extra: Any) -> dict:
    return {"provider": provider, "model_id": model_id, "temperature": temperature, "max_tokens": max_tokens, **extra}


def _chain(*ids: str) -> list[dict]:
    return [{"provider": GO, "model_id": i} for i in ids]


def default_template() -> dict:
    """The config ``ocproxy init`` writes, and the built-in defaults (§2.5).

    A fresh dict every call, so callers may mutate it.
    """
    return {
        "api_key": "${OCPROXY_API_KEY}",
        "host": DEFAULT_HOST,
        "port": DEFAULT_PORT,
        "hot_reload": False,
        "enable_streaming_scenario_routing": False,
        "respect_requested_model": True,
        "models": {
            "background": _m("qwen3.5-plus", 0.5, 2048),
            "default": _m("kimi-k2.6", 0.7, 4096),
            "long_context": _m("minimax-m2.5", 0.7, 16384, context_threshold=80000),
            "think": _m("glm-5", 0.7, 8192),
            "complex": _m("glm-5.1", 0.7, 4096),
            "fast": _m("qwen3.6-plus", 0.7, 4096),
        },
        "fallbacks": {
            "background": _chain("qwen3.6-plus", "minimax-m2.5"),
            "default": _chain("mimo-v2.5-pro", "qwen3.6-plus"),
            "long_context": _chain("minimax-m2.7", "kimi-k2.6"),
            "think": _chain("kimi-k2.6", "mimo-v2.5-pro"),
            "complex": _chain("glm-5", "kimi-k2.6"),
            "fast": _chain("qwen3.5-plus", "minimax-m2.5"),
        },
        "model_overrides": {
            "deepseek-v4-pro": _m(
                "deepseek-v4-pro", 0.7, 8192, ZEN, reasoning_effort="max", thinking={"type": "enabled"}
            ),
            **{
                i: _m(i, 0.7, 4096, ZEN)
                for i in (
                    "deepseek-v4-flash-free",
                    "grok-build-0.1",
                    "big-pickle",
                    "mimo-v2.5-free",
                    "north-mini-code-free",
                    "nemotron-3-ultra-free",
                )
            },
        },
        "opencode_go": {
            "base_url": DEFAULT_GO.base_url,
            "anthropic_base_url": DEFAULT_GO.anthropic_base_url,
            "timeout_ms": DEFAULT_TIMEOUT_MS,
        },
        "opencode_zen": {
            "base_url": DEFAULT_ZEN.base_url,
            "anthropic_base_url": DEFAULT_ZEN.anthropic_base_url,
            "responses_base_url": DEFAULT_ZEN.responses_base_url,
            "gemini_base_url": DEFAULT_ZEN.gemini_base_url,
            "timeout_ms": DEFAULT_TIMEOUT_MS,
        },
        "logging": {"level": "info", "requests": True},
    }


# -- schema (types and shapes; §3.3, §6 and the contract extensions) -------
#
# ``null`` is accepted wherever a value is optional: Go's decoder treats a
# JSON null as "not set", and files written for it must keep loading.


def _opt(*types: str, **more: Any) -> dict:
    return {"type": [*types, "null"], **more}


_MODEL_SCHEMA = {
    "type": "object",
    "properties": {
        "provider": _opt("string"),
        "model_id": _opt("string"),
        "temperature": _opt("number"),
        "max_tokens": _opt("integer"),
        "context_threshold": _opt("integer"),
        "reasoning_effort": _opt("string"),
        "thinking": _opt("object"),
        "vision": _opt("boolean"),
        "anthropic_tools_disabled": _opt("boolean"),
        "wire_format": _opt("string"),
        "endpoint": {"enum": [*ENDPOINTS, None]},
    },
}

_PROVIDER_SCHEMA = {
    "type": ["object", "null"],
    "properties": {
        "base_url": _opt("string"),
        "anthropic_base_url": _opt("string"),
        "responses_base_url": _opt("string"),
        "gemini_base_url": _opt("string"),
        "timeout_ms": _opt("integer"),
        "streaming_timeout_ms": _opt("integer"),
        "stream_timeout_ms": _opt("integer"),
    },
}

CONFIG_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"model": _MODEL_SCHEMA},
    "properties": {
        "api_key": _opt("string"),
        "api_keys": _opt("array", items={"type": "string"}),
        "host": _opt("string"),
        "port": _opt("integer"),
        "hot_reload": _opt("boolean"),
        "enable_streaming_scenario_routing": _opt("boolean"),
        "respect_requested_model": _opt("boolean"),
        "models": _opt("object", additionalProperties={"$ref": "#/$defs/model"}),
        "fallbacks": _opt("object", additionalProperties=_opt("array", items={"$ref": "#/$defs/model"})),
        "model_overrides": _opt("object", additionalProperties={"$ref": "#/$defs/model"}),
        "opencode_go": _PROVIDER_SCHEMA,
        "opencode_zen": _PROVIDER_SCHEMA,
        "logging": _opt("object", properties={"level": _opt("string"), "requests": _opt("boolean")}),
        "heartbeat_interval_ms": _opt("integer", minimum=0),
        "circuit_breaker": _opt(
            "object",
            properties={
                "threshold": _opt("integer", minimum=0),
                "recovery_timeout_ms": _opt("integer", minimum=0),
            },
        ),
        "max_request_bytes": _opt("integer", minimum=0),
        "rate_limit_per_minute": _opt("integer", minimum=0),
        "client_api_keys": _opt("array", items={"type": "string", "minLength": 1}),
    },
}

_VALIDATOR = jsonschema.Draft202012Validator(CONFIG_SCHEMA)

_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def json_path(parts: "Iterable[str | int]") -> str:
    """``$.a.b[1]``; keys that are not plain names use ``["..."]``."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _PLAIN_KEY.fullmatch(p):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p)}]"
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _schema_message(error: jsonschema.ValidationError) -> str:
    """A readable message that never echoes a value (it could be a key)."""
    if error.validator == "type":
        wanted = [t for t in ([error.validator_value] if isinstance(error.validator_value, str) else error.validator_value) if t != "null"]
        words = " or ".join(_TYPE_WORDS[t] for t in wanted)
        return f"must be {words}, not {_json_type(error.instance)}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value if v is not None)
        return f"must be one of {allowed}"
    if error.validator == "minimum":
        return f"must be >= {error.validator_value}"
    if error.validator == "minLength":
        return "must not be empty"
    return error.message


def schema_problems(data: Any) -> list[Problem]:
    """Type and shape problems of the parsed file, in document order."""
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return [Problem(json_path(e.absolute_path), _schema_message(e)) for e in errors]


# -- the pipeline steps ------------------------------------------------------


def _read_json(path: str) -> Any:
    """Steps 1 and 3: read the file, parse strict JSON (no NaN/Infinity)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("$", f"cannot read config file {path}: {exc}")]) from None

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not allowed in strict JSON")

    try:
        return json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON in {path}: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except ValueError as exc:
        msg = f"invalid JSON in {path}: {exc}"
    raise ConfigError([Problem("$", msg)])


def _env_value(name: str, env: Mapping[str, str]) -> str | None:
    value = env.get(name)
    if value:
        return value
    for prefix in ENV_PREFIXES:
        if name.startswith(prefix):
            # any member of an alias group stands for the whole group
            return env_lookup(env, name[len(prefix):])
    return None


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Step 2 (§4): replace ``${VAR}`` inside string values; keys untouched.

    Working on parsed strings (not raw text, as Go did) means a value that
    contains a quote cannot break the JSON. Unset placeholders stay literal so
    validation can name them.
    """
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: _env_value(m.group(1), env) or m.group(0), value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def _sub_dict(data: dict, key: str) -> dict | None:
    """``data[key]`` as a dict, creating it when absent/null; None if mistyped."""
    value = data.get(key)
    if value is None:
        value = data[key] = {}
    return value if isinstance(value, dict) else None


def apply_env_overrides(data: dict, env: Mapping[str, str]) -> None:
    """Step 4 (§5): only set, non-empty variables count."""
    key = env_lookup(env, "API_KEY")
    if key:
        data["api_key"] = key
        data["api_keys"] = []  # the env key replaces the pool, never joins it
    host = env_lookup(env, "HOST")
    if host:
        data["host"] = host
    port = env_lookup(env, "PORT")
    if port and re.fullmatch(r"[+-]?[0-9]+", port.strip()):
        data["port"] = int(port)  # a non-integer value is silently ignored
    for suffix, block_name in (("OPENCODE_URL", "opencode_go"), ("OPENCODE_ZEN_URL", "opencode_zen")):
        url = env_lookup(env, suffix)
        block = _sub_dict(data, block_name) if url else None
        if block is not None:
            block["base_url"] = url
    level = env_lookup(env, "LOG_LEVEL")
    block = _sub_dict(data, "logging") if level else None
    if block is not None:
        block["level"] = level


def _unset(value: Any) -> bool:
    """Go's zero value: absent, null, 0 or "" (but never ``False``)."""
    return value is None or (value == 0 and not isinstance(value, bool)) or value == ""


def apply_defaults(data: dict) -> None:
    """Step 5 (§7): fill zero values; nothing else gets a default."""
    if _unset(data.get("host")):
        data["host"] = DEFAULT_HOST
    if _unset(data.get("port")):
        data["port"] = DEFAULT_PORT
    for name, default in (("opencode_go", DEFAULT_GO), ("opencode_zen", DEFAULT_ZEN)):
        block = _sub_dict(data, name)
        if block is None:
            continue
        for url_key in ("base_url", "anthropic_base_url", "responses_base_url", "gemini_base_url"):
            if _unset(block.get(url_key)):
                block[url_key] = getattr(default, url_key)
        if _unset(block.get("timeout_ms")):
            block["timeout_ms"] = DEFAULT_TIMEOUT_MS
        if _unset(block.get("stream_timeout_ms")):
            # PR #79 / contract: the idle gap defaults to this provider's own
            # timeout_ms (not streaming_timeout_ms as Go ded7efd did).
            block["stream_timeout_ms"] = block["timeout_ms"]
    logging_block = _sub_dict(data, "logging")
    if logging_block is not None and _unset(logging_block.get("level")):
        logging_block["level"] = "info"
    for key in ("models", "fallbacks", "model_overrides"):
        if data.get(key) is None:
            data[key] = {}


def _iter_models(data: dict) -> Iterator[tuple[list, str, dict]]:
    """Every ModelConfig dict with its JSON-path parts and Go-style label."""
    for section in ("models", "model_overrides"):
        entries = data.get(section)
        if isinstance(entries, dict):
            for name, entry in entries.items():
                if isinstance(entry, dict):
                    yield [section, name], f'{section}["{name}"]', entry
    chains = data.get("fallbacks")
    if isinstance(chains, dict):
        for name, chain in chains.items():
            if isinstance(chain, list):
                for i, entry in enumerate(chain):
                    if isinstance(entry, dict):
                        yield ["fallbacks", name, i], f'fallbacks["{name}"][{i}]', entry


def semantic_problems(data: dict, builtin: bool, warnings: list[str]) -> list[Problem]:
    """Step 6 (§8 and its Recommendations), in the spec's order.

    Written defensively: a mistyped value was already reported by the schema
    and is skipped here, so one mistake is not reported twice.
    """
    from ocproxy.catalog import ANTHROPIC, catalog_endpoint  # catalog imports this module

    problems: list[Problem] = []
    api_key = data.get("api_key")
    api_keys = data.get("api_keys")
    pool = api_keys if isinstance(api_keys, list) else []
    if api_key is None or isinstance(api_key, str):
        unresolved = _PLACEHOLDER.search(api_key or "")
        if pool:
            if unresolved:
                warnings.append(f'config: api_key contains unresolved env var "{unresolved.group(0)}" (unused: api_keys is set)')
        elif builtin and not api_key:
            warnings.append(
                "config: no API key configured; set OCPROXY_API_KEY or run `ocproxy init` "
                "(upstream requests will be rejected until then)"
            )
        elif unresolved:
            problems.append(
                Problem(
                    "$.api_key",
                    f'api_key contains unresolved env var "{unresolved.group(0)}" — '
                    "set the corresponding environment variable (or OCPROXY_API_KEY)",
                )
            )
        elif not api_key:
            problems.append(Problem("$.api_key", API_KEY_REQUIRED))
    for i, key in enumerate(pool):
        if not isinstance(key, str):
            continue
        unresolved = _PLACEHOLDER.search(key)
        if key == "":
            problems.append(Problem(f"$.api_keys[{i}]", f"api_keys[{i}] is empty — each key must be a non-empty string"))
        elif unresolved:
            problems.append(
                Problem(
                    f"$.api_keys[{i}]",
                    f'api_keys[{i}] contains unresolved env var "{unresolved.group(0)}" — '
                    "set the corresponding environment variable or remove this entry",
                )
            )
    overrides = data.get("model_overrides")
    for name, entry in (overrides.items() if isinstance(overrides, dict) else ()):
        if not isinstance(entry, dict):
            continue
        model_id = entry.get("model_id")
        if model_id is None or model_id == "":
            problems.append(
                Problem(json_path(["model_overrides", name, "model_id"]), f'model_overrides["{name}"] is missing required field model_id')
            )
        provider = entry.get("provider")
        if isinstance(provider, str) and provider and normalise_provider(provider) not in (GO, ZEN):
            problems.append(
                Problem(
                    json_path(["model_overrides", name, "provider"]),
                    f'model_overrides["{name}"] has invalid provider "{provider}" (must be "opencode-go" or "opencode-zen")',
                )
            )
    port = data.get("port")
    if isinstance(port, int) and not isinstance(port, bool) and not 1 <= port <= 65535:
        problems.append(Problem("$.port", f"port {port} is out of range (must be 1–65535)"))
    client_keys = data.get("client_api_keys")
    for i, key in enumerate(client_keys if isinstance(client_keys, list) else ()):
        if isinstance(key, str) and _PLACEHOLDER.search(key):
            problems.append(
                Problem(f"$.client_api_keys[{i}]", f"client_api_keys[{i}] contains an unresolved env var — set it or remove this entry")
            )
    for parts, label, entry in _iter_models(data):
        provider = entry.get("provider")
        provider = normalise_provider(provider if isinstance(provider, str) else None)
        endpoint = entry.get("endpoint")
        if endpoint in ("responses", "gemini") and provider != ZEN:
            problems.append(
                Problem(
                    json_path([*parts, "endpoint"]),
                    f'{label} has endpoint "{endpoint}" but only opencode-zen has a {endpoint} URL',
                )
            )
        if parts[0] != "model_overrides" and provider not in (GO, ZEN):
            warnings.append(f'config: {label} has unknown provider "{provider}" — it will be sent to OpenCode Go')
        model_id = entry.get("model_id")
        if entry.get("anthropic_tools_disabled") is True and isinstance(model_id, str):
            kind = endpoint if endpoint in ENDPOINTS else catalog_endpoint(provider, model_id)
            if kind != ANTHROPIC:
                warnings.append(
                    f"config: {label} has anthropic_tools_disabled=true — this is only effective "
                    "on models routing to the Anthropic endpoint"
                )
    return problems


# -- building the frozen objects --------------------------------------------


def _num(value: Any, kind: type, default: Any = 0) -> Any:
    return kind(value) if value is not None else default


def _model(d: dict) -> ModelConfig:
    thinking = d.get("thinking")
    return ModelConfig(
        provider=normalise_provider(d.get("provider")),
        model_id=d.get("model_id") or "",
        temperature=_num(d.get("temperature"), float, 0.0),
        max_tokens=_num(d.get("max_tokens"), int),
        context_threshold=_num(d.get("context_threshold"), int),
        reasoning_effort=d.get("reasoning_effort") or "",
        # a plain dict (deep-copied) so translators can json.dumps it as is
        thinking=copy.deepcopy(thinking) if thinking is not None else None,
        vision=bool(d.get("vision")),
        anthropic_tools_disabled=bool(d.get("anthropic_tools_disabled")),
        endpoint=d.get("endpoint") or None,
    )


def _provider(d: dict) -> ProviderConfig:
    return ProviderConfig(
        base_url=d["base_url"],
        anthropic_base_url=d["anthropic_base_url"],
        responses_base_url=d["responses_base_url"],
        gemini_base_url=d["gemini_base_url"],
        timeout_ms=int(d["timeout_ms"]),
        streaming_timeout_ms=_num(d.get("streaming_timeout_ms"), int),
        stream_timeout_ms=int(d["stream_timeout_ms"]),
    )


_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}


def _build(data: dict, source_path: str | None) -> Config:
    logging_block = data.get("logging") or {}
    breaker = data.get("circuit_breaker") or {}
    return Config(
        api_key=data.get("api_key") or "",
        api_keys=tuple(data.get("api_keys") or ()),
        host=data["host"],
        port=int(data["port"]),
        hot_reload=bool(data.get("hot_reload")),
        enable_streaming_scenario_routing=bool(data.get("enable_streaming_scenario_routing")),
        respect_requested_model=data.get("respect_requested_model") is not False,
        models=MappingProxyType({k: _model(v) for k, v in data["models"].items()}),
        fallbacks=MappingProxyType({k: tuple(_model(m) for m in v or ()) for k, v in data["fallbacks"].items()}),
        model_overrides=MappingProxyType({k: _model(v) for k, v in data["model_overrides"].items()}),
        opencode_go=_provider(data["opencode_go"]),
        opencode_zen=_provider(data["opencode_zen"]),
        # any unknown level behaves as info (§6.1), so store the normal form
        log_level=_LOG_LEVELS.get(str(logging_block.get("level")).strip().lower(), "info"),
        log_requests=bool(logging_block.get("requests")),
        heartbeat_interval_ms=int(data.get("heartbeat_interval_ms") or DEFAULT_HEARTBEAT_MS),
        breaker_threshold=int(breaker.get("threshold") or DEFAULT_BREAKER_THRESHOLD),
        breaker_recovery_ms=int(breaker.get("recovery_timeout_ms") or DEFAULT_BREAKER_RECOVERY_MS),
        max_request_bytes=int(data.get("max_request_bytes") or DEFAULT_MAX_REQUEST_BYTES),
        rate_limit_per_minute=int(data.get("rate_limit_per_minute") or 0),
        client_api_keys=tuple(data.get("client_api_keys") or ()),
        source_path=source_path,
    )


def load_config(
    path: str | None,
    env: Mapping[str, str] = os.environ,
    cli_host: str | None = None,
    cli_port: int | None = None,
    warnings: list[str] | None = None,
) -> Config:
    """Run the §3 pipeline on ``path`` (None: the built-in template).

    ``cli_host``/``cli_port`` (``serve --host/--port``) beat the file and the
    environment and are validated like them. Warnings are logged and, if a
    list is given, appended to it. Raises ``ConfigError`` listing every
    problem; never returns a half-valid config.
    """
    builtin = path is None
    data = default_template() if builtin else _read_json(path)
    data = interpolate(data, env)
    problems = schema_problems(data)
    found: list[str] = []
    if isinstance(data, dict):
        if builtin and _PLACEHOLDER.search(data.get("api_key") or ""):
            data["api_key"] = ""  # never send a literal "${...}" upstream
        apply_env_overrides(data, env)
        if cli_host:
            data["host"] = cli_host
        if cli_port is not None:
            data["port"] = cli_port
        apply_defaults(data)
        problems += semantic_problems(data, builtin, found)
    for message in found:
        log.warning("%s", message)
    if warnings is not None:
        warnings.extend(found)
    if problems:
        raise ConfigError(problems)
    return _build(data, path)


# -- hot reload (§9.2) ------------------------------------------------------

ReloadCallback = Callable[[Config], "Config | None"]


def _timeouts(c: Config) -> tuple[int, int, int, int]:
    return (
        c.opencode_go.timeout_ms,
        c.opencode_go.streaming_timeout_ms,
        c.opencode_zen.timeout_ms,
        c.opencode_zen.streaming_timeout_ms,
    )


class ConfigHolder:
    """The one place the live Config is published.

    Readers take ``holder.current`` once per request and keep that object, so
    a request never mixes two configs. Publishing is a single reference
    assignment, so a reader sees the whole old or the whole new Config.

    Lock: ``self._lock`` -- the holder's only lock. It serialises writers
    (``swap`` and ``reload``: a file-watch reload and a SIGHUP reload must not
    interleave); readers never take it.
    """

    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str] | None = None,
        cli_host: str | None = None,
        cli_port: int | None = None,
    ):
        self._config = config
        self._lock = threading.Lock()
        self._callbacks: list[ReloadCallback] = []
        self.path = config.source_path  # hot reload re-reads this same file
        self._env = env  # None: the process environment at reload time
        self.cli_host = cli_host
        self.cli_port = cli_port

    @property
    def current(self) -> Config:
        return self._config

    def swap(self, new: Config) -> Config:
        """Publish ``new``; returns the config it replaced."""
        with self._lock:
            old, self._config = self._config, new
            return old

    def add_callback(self, callback: ReloadCallback) -> None:
        """Run on every reloaded config before it is published (§9.2.4).

        A callback may return a Config to publish instead (Configs are
        frozen, so that is how one adjusts a value); returning None keeps it.
        """
        self._callbacks.append(callback)

    def reload(self) -> bool:
        """Re-run the load pipeline; publish on success, keep the old on error."""
        with self._lock:
            env = os.environ if self._env is None else self._env
            try:
                new = load_config(self.path, env, cli_host=self.cli_host, cli_port=self.cli_port)
            except ConfigError as exc:
                log.error("config reload failed: %s", "; ".join(str(p) for p in exc.problems))
                return False
            old = self._config
            if (old.host, old.port) != (new.host, new.port):
                log.warning(
                    "host/port changed but requires server restart to take effect (old %s:%s, new %s:%s)",
                    old.host, old.port, new.host, new.port,
                )
            if _timeouts(old) != _timeouts(new):
                log.info(
                    "timeout config updated, takes effect immediately "
                    "(go timeout_ms=%d streaming_timeout_ms=%d, zen timeout_ms=%d streaming_timeout_ms=%d)",
                    *_timeouts(new),
                )
            for callback in self._callbacks:
                try:
                    replaced = callback(new)
                except Exception:  # one bad callback must not block the reload
                    log.exception("config reload callback failed; skipped")
                    continue
                if isinstance(replaced, Config):
                    new = replaced
            self._config = new
            log.info("config reloaded successfully")
            return True
