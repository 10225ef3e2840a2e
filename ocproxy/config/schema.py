"""The JSON Schema of the config file, and the problems it reports.

Every rule a schema can say lives here: types, ranges, the endpoint and
provider choices, required and non-empty values, unresolved ``${VAR}``
placeholders, and "only Zen serves the gemini API". The loader
checks by hand only what depends on more than the document (whether the
config is the built-in one).

Type and shape mistakes are looked for in the file as written (after
``${VAR}`` interpolation), so an environment variable never hides one; the
rules judge the settings in effect, after the environment and command-line
overrides. Both use this one schema: :func:`type_problems` and
:func:`rule_problems` each report their half of what it finds. Neither sees
the defaults filled in, so a ``0`` meaning "the default" is still a ``0``.

Messages never echo a value that could be a key. A rule with its own wording
carries it in a ``problem`` entry (ignored by the validator); type mistakes
always use the generic "must be X, not Y".
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from ocproxy.catalog import ENDPOINTS, GO, ZEN, ZEN_ONLY_ENDPOINTS, provider_spellings
from ocproxy.config.types import THINKING_MODES

if TYPE_CHECKING:
    import jsonschema

#: ``${NAME}`` in a string value; an unset variable leaves it in place.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
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


def label(parts: "Iterable[str | int]") -> str:
    """The name a message gives a value, in the original proxy's wording:
    ``api_keys[1]``, ``models["default"]``, ``fallbacks["fast"][0]``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif out:
            out += f'["{p}"]'
        else:
            out = p
    return out


# -- the schema --------------------------------------------------------------
#
# ``null`` is accepted wherever a value is optional: the original proxy's
# decoder treats a JSON null as "not set", and files written for it must keep
# loading.


def model_entries(data: dict) -> "Iterator[tuple[list, dict]]":
    """Every model entry of a config document with its JSON-path parts: the
    scenario models, both kinds of override and each fallback."""
    for section in ("models", "model_overrides", "model_family_overrides"):
        entries = data.get(section)
        if isinstance(entries, dict):
            for name, entry in entries.items():
                if isinstance(entry, dict):
                    yield [section, name], entry
    chains = data.get("fallbacks")
    if isinstance(chains, dict):
        for name, chain in chains.items():
            for i, entry in enumerate(chain if isinstance(chain, list) else ()):
                if isinstance(entry, dict):
                    yield ["fallbacks", name, i], entry


def _opt(*types: str, **more: Any) -> dict:
    return {"type": [*types, "null"], **more}


#: Broken rules are listed after type mistakes, grouped in this order (the
#: order the original proxy checked them, which ``ocproxy validate`` keeps).
_RULE_ORDER = ("api_key", "api_keys", "model_overrides", "port", "client_api_keys", "endpoint")


def _rule(group: str, problem: str, **keywords: Any) -> dict:
    """``keywords`` whose failure reads ``problem`` instead of the generic text.

    ``problem`` may use ``{label}`` (the failing value's name), ``{owner}``
    (the name of the object holding it), ``{value}`` and ``{placeholder}``
    (the first ``${VAR}`` in the value). ``group`` is one of ``_RULE_ORDER``.
    """
    return {**keywords, "problem": problem, "rank": _RULE_ORDER.index(group)}


#: A string that still holds a ``${VAR}`` (other types never match).
_UNRESOLVED = {"type": "string", "pattern": PLACEHOLDER.pattern}
_KNOWN_PROVIDERS = ["", *provider_spellings(GO), *provider_spellings(ZEN)]

_MODEL_SCHEMA = {
    "type": "object",
    "properties": {
        "provider": _opt("string"),
        "model_id": _opt("string"),
        "temperature": _opt("number"),
        "max_tokens": _opt("integer"),
        "context_threshold": _opt("integer"),
        "reasoning_effort": _opt("string"),
        "thinking": {"type": ["object", "string", "null"], "if": {"type": "string"}, "then": {"enum": list(THINKING_MODES)}},
        "vision": _opt("boolean"),
        "pdf": _opt("boolean"),
        "anthropic_tools_disabled": _opt("boolean"),
        "hedge_after_ms": _opt("integer", minimum=0),
        "wire_format": _opt("string"),
        "endpoint": {"enum": [*ENDPOINTS, None]},
    },
    # OpenCode Go has no URL for the APIs only Zen serves. Any provider that
    # is not Zen (absent, Go, unknown, mistyped) is sent to Go.
    "if": {"not": {"required": ["provider"], "properties": {"provider": {"enum": list(provider_spellings(ZEN))}}}},
    "then": {
        "properties": {
            "endpoint": _rule(
                "endpoint",
                '{owner} has endpoint "{value}" but only opencode-zen has a {value} URL',
                **{"not": {"enum": list(ZEN_ONLY_ENDPOINTS)}},
            )
        }
    },
}

_MISSING_MODEL_ID = "{owner} is missing required field model_id"

# A model override names the model a client asks for, so it must say which
# model that is, on a provider that exists (elsewhere an unknown provider is
# only a warning: it is sent to Go).
_OVERRIDE_SCHEMA = {
    "allOf": [
        {"$ref": "#/$defs/model"},
        _rule("model_overrides", _MISSING_MODEL_ID, required=["model_id"]),
        {
            "properties": {
                "model_id": _rule("model_overrides", _MISSING_MODEL_ID, **{"not": {"enum": [None, ""]}}),
                "provider": {
                    "if": {"type": "string"},
                    "then": _rule(
                        "model_overrides",
                        '{owner} has invalid provider "{value}" (must be "opencode-go" or "opencode-zen")',
                        enum=_KNOWN_PROVIDERS,
                    ),
                },
            }
        },
    ]
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
        "first_byte_timeout_ms": _opt("integer"),
        "user_agent": _opt("string"),
    },
}

_POOL_KEY = {
    "type": "string",
    "allOf": [
        _rule("api_keys", "{label} is empty — each key must be a non-empty string", minLength=1),
        _rule(
            "api_keys",
            '{label} contains unresolved env var "{placeholder}" — '
            "set the corresponding environment variable or remove this entry",
            **{"not": _UNRESOLVED},
        ),
    ],
}

_CLIENT_KEY_TEXT = {
    "type": "string",
    "minLength": 1,
    "allOf": [_rule("client_api_keys", "{label} contains an unresolved env var — set it or remove this entry", **{"not": _UNRESOLVED})],
}

# A key alone, or ``{"name": "alice", "key": "${ALICE_KEY}"}``: the name is
# what logs and metrics show.
_CLIENT_KEY = {
    "type": ["string", "object"],
    "if": {"type": "string"},
    "then": _CLIENT_KEY_TEXT,
    "else": {
        # one ``required`` each, so a problem names the key that is missing
        "allOf": [{"required": ["name"]}, {"required": ["key"]}],
        "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}, "key": _CLIENT_KEY_TEXT},
    },
}

CONFIG_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"model": _MODEL_SCHEMA, "override": _OVERRIDE_SCHEMA},
    "properties": {
        "api_key": _opt("string"),
        "api_keys": _opt("array", items=_POOL_KEY),
        "host": _opt("string"),
        "port": _opt(
            "integer",
            # 0 means "the default port", as every zero value does; a port that
            # is not an integer is a type mistake only
            **{"if": {"type": "integer"}, "then": _rule("port", "port {value} is out of range (must be 1–65535)", minimum=0, maximum=65535)},
        ),
        "hot_reload": _opt("boolean"),
        "enable_streaming_scenario_routing": _opt("boolean"),
        "respect_requested_model": _opt("boolean"),
        "models": _opt("object", additionalProperties={"$ref": "#/$defs/model"}),
        "fallbacks": _opt("object", additionalProperties=_opt("array", items={"$ref": "#/$defs/model"})),
        "model_overrides": _opt("object", additionalProperties={"$ref": "#/$defs/override"}),
        # a name (a ``models`` key or a catalog id), or a whole model entry
        "model_family_overrides": _opt(
            "object",
            additionalProperties={
                "if": {"type": "string"},
                "then": {"minLength": 1},
                "else": {"$ref": "#/$defs/override"},
            },
        ),
        "opencode_go": _PROVIDER_SCHEMA,
        "opencode_zen": _PROVIDER_SCHEMA,
        "logging": _opt("object", properties={
            "level": _opt("string"),
            "requests": _opt("boolean"),
            "capture": _opt("object", properties={
                "enabled": _opt("boolean"),
                "dir": _opt("string"),
                "max_bytes": _opt("integer", minimum=0),
                "backups": _opt("integer", minimum=0),
            }),
        }),
        "usage": _opt("object", properties={
            "enabled": _opt("boolean"),
            "database_path": _opt("string"),
            "retention_days": _opt("integer", minimum=0),
        }),
        "quota": _opt("object", properties={
            "enabled": _opt("boolean"),
            "url": _opt("string"),
            "switch_at_percent": _opt("number", minimum=0, maximum=100),
        }),
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
        "client_api_keys": _opt("array", items=_CLIENT_KEY),
        "trusted_proxies": _opt("array", items={"type": "string", "minLength": 1}),
        "max_connections": _opt("integer", minimum=0),
        "request_read_timeout_ms": _opt("integer", minimum=0),
        # "memory", or {"backend": "redis", "url": "redis://…", "prefix": …}
        "state": {
            "type": ["string", "object", "null"],
            "if": {"type": "string"},
            "then": {"enum": ["memory"]},
            "else": {
                "properties": {
                    "backend": {"enum": ["memory", "redis"]},
                    "url": _opt("string", pattern=r"^(rediss?|unix)://"),
                    "prefix": _opt("string"),
                },
                "required": ["backend"],
                "if": {"properties": {"backend": {"const": "redis"}}},
                "then": {"required": ["url"], "properties": {"url": {"type": "string", "minLength": 1}}},
            },
        },
    },
    # ``api_key`` is only used when there is no key pool; only then may it
    # not hold an unresolved placeholder.
    "if": {"not": {"required": ["api_keys"], "properties": {"api_keys": {"type": "array", "minItems": 1}}}},
    "then": {
        "properties": {
            "api_key": _rule(
                "api_key",
                'api_key contains unresolved env var "{placeholder}" — '
                "set the corresponding environment variable (or OCPROXY_API_KEY)",
                **{"not": _UNRESOLVED},
            )
        }
    },
}


@functools.cache
def _validator() -> "jsonschema.Draft202012Validator":
    # Imported on first use, not with this module: importing the config
    # package (for its types) must stay cheap.
    import jsonschema

    return jsonschema.Draft202012Validator(CONFIG_SCHEMA)


# -- messages ----------------------------------------------------------------

_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


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


def _generic_message(error: "jsonschema.ValidationError") -> str:
    if error.validator == "type":
        types = error.validator_value
        wanted = [t for t in ([types] if isinstance(types, str) else types) if t != "null"]
        words = " or ".join(_TYPE_WORDS[t] for t in wanted)
        return f"must be {words}, not {_json_type(error.instance)}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value if v is not None)
        return f"must be one of {allowed}"
    if error.validator == "minimum":
        return f"must be >= {error.validator_value}"
    if error.validator == "maximum":
        return f"must be <= {error.validator_value}"
    if error.validator == "minLength":
        return "must not be empty"
    return error.message


def _parts(error: "jsonschema.ValidationError") -> list:
    parts = list(error.absolute_path)
    if error.validator == "required":
        # located at the missing key, not at the object that lacks it
        parts.append(error.validator_value[0])
    return parts


def _wording(error: "jsonschema.ValidationError") -> "dict | None":
    """The ``_rule`` that failed, or None for a type or shape mistake."""
    if error.validator == "type" or not isinstance(error.schema, dict) or "problem" not in error.schema:
        return None
    return error.schema


def _problem(error: "jsonschema.ValidationError") -> Problem:
    parts = _parts(error)
    rule = _wording(error)
    if rule is None:
        return Problem(json_path(parts), _generic_message(error))
    found = PLACEHOLDER.search(error.instance) if isinstance(error.instance, str) else None
    message = rule["problem"].format(
        label=label(parts),
        owner=label(parts[:-1]),
        value=error.instance,
        placeholder=found.group(0) if found else "",
    )
    return Problem(json_path(parts), message)


def _sorted(problems: "list[tuple[Any, Problem]]") -> list[Problem]:
    return [p for _, p in sorted(problems, key=lambda item: item[0])]


def type_problems(data: Any) -> list[Problem]:
    """Wrong types and shapes, ordered by JSON path."""
    found = []
    for error in _validator().iter_errors(data):
        if _wording(error) is None:
            found.append(([str(p) for p in _parts(error)], _problem(error)))
    return _sorted(found)


def rule_problems(data: Any) -> list[Problem]:
    """Broken rules, grouped as in ``_RULE_ORDER``, then ordered by JSON path.

    Rules never fire on a value of the wrong type: that is a type mistake,
    reported (once) by :func:`type_problems`.
    """
    found = []
    for error in _validator().iter_errors(data):
        rule = _wording(error)
        if rule is not None:
            found.append(((rule["rank"], [str(p) for p in _parts(error)]), _problem(error)))
    return _sorted(found)
