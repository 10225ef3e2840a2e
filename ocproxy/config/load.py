"""Loading: find the file, read it, resolve ``${VAR}``, apply the environment
and command-line overrides, validate, and build the frozen ``Config``.

Loading collects every problem instead of stopping at the first, so
``ocproxy validate`` can list them all with their JSON paths. Warnings are
logged on "ocproxy.config" and, when the caller passes a ``warnings`` list,
appended to it too (a Config cannot carry them: it is a value that compares
equal across reloads).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import os
import re
from types import MappingProxyType
from typing import Any, Mapping

from ocproxy import models_cache
from ocproxy.catalog import (
    ANTHROPIC,
    ENDPOINTS,
    PROVIDERS,
    catalog_endpoint,
    lookup,
    normalise_provider,
    provider_of,
)
from ocproxy.config.schema import (
    PLACEHOLDER,
    ConfigError,
    Problem,
    json_path,
    label,
    model_entries,
    rule_problems,
    type_problems,
)
from ocproxy.config.template import default_template
from ocproxy.config.validate import json_syntax_message
from ocproxy.config.types import (
    DEFAULT_GO,
    DEFAULT_ZEN,
    DEFAULTS,
    ClientKey,
    Config,
    ModelConfig,
    ProviderConfig,
    StateConfig,
)

log = logging.getLogger("ocproxy.config")

#: Env-var families, newest first: the first non-empty member wins.
ENV_PREFIXES = ("OCPROXY_", "ROUTATIC_PROXY_", "OC_GO_CC_")

API_KEY_REQUIRED = (
    "api_key or api_keys is required (set via config file or OCPROXY_API_KEY env var; "
    "ROUTATIC_PROXY_API_KEY and OC_GO_CC_API_KEY are still supported)"
)


# -- where the file is --------------------------------------------------------


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
    """The config file to use: flag, env var, the new default path, then the
    legacy ones; None means "use the built-in defaults".

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


# -- reading and interpolation ------------------------------------------------


def _read_json(path: str) -> Any:
    """Read the file and parse it as strict JSON (no NaN/Infinity)."""
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
        msg = f"invalid JSON in {path}: {json_syntax_message(text, exc)}"
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
    """Replace ``${VAR}`` inside string values; keys are left untouched.

    Working on parsed strings (not the raw text, as the original did) means a
    value that contains a quote cannot break the JSON. Unset placeholders stay
    literal so validation can name them.
    """
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: _env_value(m.group(1), env) or m.group(0), value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


# -- overrides ------------------------------------------------------------------


def _sub_dict(data: dict, key: str) -> dict | None:
    """``data[key]`` as a dict, creating it when absent/null; None if mistyped."""
    value = data.get(key)
    if value is None:
        value = data[key] = {}
    return value if isinstance(value, dict) else None


def apply_env_overrides(data: dict, env: Mapping[str, str]) -> None:
    """Only set, non-empty variables count."""
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


# -- what the schema cannot check -------------------------------------------------


def semantic_problems(data: dict, builtin: bool, warnings: list[str]) -> list[Problem]:
    """The key requirement and the warnings: both depend on more than the document.

    A missing key is an error in a config file but only a warning for the
    built-in config, so a fresh install still starts. Mistyped values were
    already reported by the schema and are skipped here.
    """
    problems: list[Problem] = []
    api_key = data.get("api_key")
    api_keys = data.get("api_keys")
    pool = api_keys if isinstance(api_keys, list) else []
    if api_key is None or isinstance(api_key, str):
        unresolved = PLACEHOLDER.search(api_key or "")
        if pool:
            if unresolved:
                warnings.append(f'config: api_key contains unresolved env var "{unresolved.group(0)}" (unused: api_keys is set)')
        elif not api_key and builtin:
            warnings.append(
                "config: no API key configured; set OCPROXY_API_KEY or run `ocproxy init` "
                "(upstream requests will be rejected until then)"
            )
        elif not api_key:
            problems.append(Problem("$.api_key", API_KEY_REQUIRED))
    for parts, entry in model_entries(data):
        provider = entry.get("provider")
        provider = normalise_provider(provider if isinstance(provider, str) else None)
        if parts[0] not in ("model_overrides", "model_family_overrides") and provider not in PROVIDERS:
            # (in the overrides the schema rejects it)
            warnings.append(f'config: {label(parts)} has unknown provider "{provider}" — it will be sent to OpenCode Go')
        endpoint = entry.get("endpoint")
        model_id = entry.get("model_id")
        if entry.get("anthropic_tools_disabled") is True and isinstance(model_id, str):
            kind = endpoint if endpoint in ENDPOINTS else catalog_endpoint(provider, model_id)
            if kind != ANTHROPIC:
                warnings.append(
                    f"config: {label(parts)} has anthropic_tools_disabled=true — this is only effective "
                    "on models routing to the Anthropic endpoint"
                )
    problems += family_problems(data)
    problems += trusted_proxy_problems(data)
    return problems


def trusted_proxy_problems(data: dict) -> list[Problem]:
    """Each ``trusted_proxies`` entry must be an address or a CIDR block."""
    entries = data.get("trusted_proxies")
    if not isinstance(entries, list):
        return []
    problems = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str) and entry:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                problems.append(Problem(json_path(["trusted_proxies", i]),
                                        f"trusted_proxies[{i}] is not an IP address or CIDR block"))
    return problems


def family_problems(data: dict) -> list[Problem]:
    """Each ``model_family_overrides`` entry must name a model that exists:
    a ``models`` key or a catalog id, or an entry whose ``model_id`` is in
    the catalog for its provider (or is a configured model's). A typo here
    would otherwise send every Claude Code turn of that family to a model
    the upstream does not have."""
    families = data.get("model_family_overrides")
    if not isinstance(families, dict):
        return []
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    configured = {m.get("model_id") for m in models.values() if isinstance(m, dict)}
    problems = []
    for key, target in families.items():
        if isinstance(target, str) and target:
            if target not in models and provider_of(target) is None:
                problems.append(Problem(
                    json_path(["model_family_overrides", key]),
                    f'{label(["model_family_overrides", key])} names unknown model "{target}" '
                    "(not a models key, not in the catalog: see `ocproxy models`)",
                ))
        elif isinstance(target, dict):
            model_id = target.get("model_id")
            provider = target.get("provider")
            provider = normalise_provider(provider if isinstance(provider, str) else None)
            if isinstance(model_id, str) and model_id and model_id not in configured \
                    and lookup(provider, model_id) is None:
                problems.append(Problem(
                    json_path(["model_family_overrides", key, "model_id"]),
                    f'{label(["model_family_overrides", key])} names unknown model "{model_id}" '
                    f"on {provider} (not in the catalog: see `ocproxy models`)",
                ))
    return problems


# -- building the frozen objects ----------------------------------------------------

#: How each model field is read; an absent or null value keeps the field's default.
_MODEL_FIELDS = {
    "provider": normalise_provider,
    "model_id": str,
    "temperature": float,
    "max_tokens": int,
    "context_threshold": int,
    "reasoning_effort": str,
    # an object deep-copied (translators may read it as is), or a mode word
    "thinking": copy.deepcopy,
    "vision": bool,
    "pdf": bool,
    "anthropic_tools_disabled": bool,
    "endpoint": str,
    "hedge_after_ms": int,
}


def _model(d: dict) -> ModelConfig:
    return ModelConfig(**{k: read(d[k]) for k, read in _MODEL_FIELDS.items() if d.get(k) is not None})


# Below, ``value or default``: as in the original, a zero value (absent, null,
# 0 or "") means "use the default".


def _provider(d: dict | None, default: ProviderConfig) -> ProviderConfig:
    d = d or {}
    timeout_ms = int(d.get("timeout_ms") or default.timeout_ms)
    return ProviderConfig(
        base_url=d.get("base_url") or default.base_url,
        anthropic_base_url=d.get("anthropic_base_url") or default.anthropic_base_url,
        responses_base_url=d.get("responses_base_url") or default.responses_base_url,
        gemini_base_url=d.get("gemini_base_url") or default.gemini_base_url,
        timeout_ms=timeout_ms,
        streaming_timeout_ms=int(d.get("streaming_timeout_ms") or default.streaming_timeout_ms),
        # the largest silent gap defaults to this provider's own timeout_ms
        # (not to streaming_timeout_ms, which would let a stalled stream hang)
        stream_timeout_ms=int(d.get("stream_timeout_ms") or timeout_ms),
        first_byte_timeout_ms=int(d.get("first_byte_timeout_ms") or default.first_byte_timeout_ms),
        user_agent=d.get("user_agent") or default.user_agent,
    )


def _state(value: str | dict | None) -> StateConfig:
    if not isinstance(value, dict) or value.get("backend") != "redis":
        return DEFAULTS.state
    return StateConfig("redis", value["url"], value.get("prefix") or DEFAULTS.state.prefix)


_LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}


#: OpenCode Go's usage windows (rolling 5 h, weekly, monthly).
GO_USAGE_URL = "https://opencode.ai/zen/go/v1/usage"


def beside_config(path: str, source_path: str | None, env: Mapping[str, str]) -> str:
    """A relative path is read beside the config file (or in the config dir)."""
    path = expand_user(path, env)
    base = os.path.dirname(source_path) if source_path else config_dir(env)
    return os.path.abspath(os.path.join(base, path))


def _build(data: dict, source_path: str | None, env: Mapping[str, str] = os.environ) -> Config:
    logging_block = data.get("logging") or {}
    capture = logging_block.get("capture") or {}
    usage = data.get("usage") or {}
    quota = data.get("quota") or {}
    breaker = data.get("circuit_breaker") or {}
    return Config(
        api_key=data.get("api_key") or DEFAULTS.api_key,
        api_keys=tuple(data.get("api_keys") or DEFAULTS.api_keys),
        host=data.get("host") or DEFAULTS.host,
        port=int(data.get("port") or DEFAULTS.port),
        hot_reload=bool(data.get("hot_reload")),
        enable_streaming_scenario_routing=bool(data.get("enable_streaming_scenario_routing")),
        respect_requested_model=data.get("respect_requested_model") is not False,
        models=MappingProxyType({k: _model(v) for k, v in (data.get("models") or {}).items()}),
        fallbacks=MappingProxyType({k: tuple(_model(m) for m in v or ()) for k, v in (data.get("fallbacks") or {}).items()}),
        model_overrides=MappingProxyType({k: _model(v) for k, v in (data.get("model_overrides") or {}).items()}),
        model_family_overrides=MappingProxyType({
            k: v if isinstance(v, str) else _model(v) for k, v in (data.get("model_family_overrides") or {}).items()
        }),
        opencode_go=_provider(data.get("opencode_go"), DEFAULT_GO),
        opencode_zen=_provider(data.get("opencode_zen"), DEFAULT_ZEN),
        # any unknown level behaves as the default, so store the normal form
        log_level=_LOG_LEVELS.get(str(logging_block.get("level")).strip().lower(), DEFAULTS.log_level),
        log_requests=bool(logging_block.get("requests")),
        heartbeat_interval_ms=int(data.get("heartbeat_interval_ms") or DEFAULTS.heartbeat_interval_ms),
        breaker_threshold=int(breaker.get("threshold") or DEFAULTS.breaker_threshold),
        breaker_recovery_ms=int(breaker.get("recovery_timeout_ms") or DEFAULTS.breaker_recovery_ms),
        max_request_bytes=int(data.get("max_request_bytes") or DEFAULTS.max_request_bytes),
        rate_limit_per_minute=int(data.get("rate_limit_per_minute") or DEFAULTS.rate_limit_per_minute),
        client_api_keys=tuple(
            k if isinstance(k, str) else ClientKey(k["name"], k["key"])
            for k in data.get("client_api_keys") or DEFAULTS.client_api_keys
        ),
        trusted_proxies=tuple(data.get("trusted_proxies") or DEFAULTS.trusted_proxies),
        max_connections=int(data.get("max_connections") or DEFAULTS.max_connections),
        request_read_timeout_ms=int(data.get("request_read_timeout_ms") or DEFAULTS.request_read_timeout_ms),
        state=_state(data.get("state")),
        usage_enabled=usage.get("enabled") is not False,
        usage_database_path=beside_config(usage.get("database_path") or "usage.db", source_path, env),
        usage_retention_days=int(usage.get("retention_days") or DEFAULTS.usage_retention_days),
        quota_url="" if quota.get("enabled") is False else (quota.get("url") or GO_USAGE_URL),
        quota_switch_at_percent=float(quota.get("switch_at_percent") or 0),
        capture_dir=(beside_config(capture.get("dir") or "capture", source_path, env)
                     if capture.get("enabled") else ""),
        capture_max_bytes=int(capture.get("max_bytes") or DEFAULTS.capture_max_bytes),
        capture_backups=int(capture.get("backups") or DEFAULTS.capture_backups),
        listed_models=MappingProxyType(models_cache.listed_ids(env)),
        source_path=source_path,
    )


def load_config(
    path: str | None,
    env: Mapping[str, str] = os.environ,
    cli_host: str | None = None,
    cli_port: int | None = None,
    warnings: list[str] | None = None,
) -> Config:
    """Load ``path`` (None: the built-in template) into a validated Config.

    ``cli_host``/``cli_port`` (``serve --host/--port``) beat the file and the
    environment and are validated like them. Warnings are logged and, if a
    list is given, appended to it. Raises ``ConfigError`` listing every
    problem; never returns a half-valid config.
    """
    builtin = path is None
    data = default_template() if builtin else _read_json(path)
    data = interpolate(data, env)
    # Type mistakes are the file's own, so they are looked for before any
    # override could replace (and hide) a mistyped value.
    problems = type_problems(data)
    found: list[str] = []
    if isinstance(data, dict):
        if builtin and PLACEHOLDER.search(data.get("api_key") or ""):
            data["api_key"] = ""  # never send a literal "${...}" upstream
        apply_env_overrides(data, env)
        if cli_host:
            data["host"] = cli_host
        if cli_port is not None:
            data["port"] = cli_port
        # the rules judge the settings in effect
        problems += semantic_problems(data, builtin, found)
        problems += rule_problems(data)
    for message in found:
        log.warning("%s", message)
    if warnings is not None:
        warnings.extend(found)
    if problems:
        raise ConfigError(problems)
    return _build(data, path, env)
