"""Tool definitions for the upstreams: names, descriptions, parameter schemas.

OpenAI-compatible upstreams reject tools whose ``parameters`` are empty,
missing ``type``/``properties``, of the wrong shape or not a valid JSON
Schema, and one bad tool fails the whole request. So every
schema is repaired the cheap way first (see ``_repair``) and then gated by the
JSON Schema metaschema; whatever still fails becomes the canonical empty
schema, which every upstream accepts.

Claude Code sends the same ~20 tools on every request and a metaschema check
costs about a millisecond each, so verdicts are memoised by the repaired
schema's JSON text in a small bounded (thread-safe) ``lru_cache``.

``sanitize_schema`` never raises: the tool list comes from the client and a
crash here would turn one odd schema into a failed request.
"""

from __future__ import annotations

import functools
import json

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from . import server_tools

_key_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# Verdict memo bounds: entries, and the longest schema text kept (huge
# schemas are checked every time instead).
_MEMO_MAX_ENTRIES = 1024
_MEMO_MAX_KEY_CHARS = 256 * 1024


def canonical_empty_schema() -> dict:
    """A fresh copy each time, so callers may mutate what they get."""
    return {"type": "object", "properties": {}, "additionalProperties": False}


@functools.lru_cache(maxsize=None)
def _meta_validator_for(cls: type):
    """One metaschema validator per draft: building one per check costs
    about as much as the check itself."""
    return cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)


def _passes_metaschema(schema: dict) -> bool:
    try:
        validator = _meta_validator_for(validator_for(schema, default=Draft202012Validator))
        return bool(validator.is_valid(schema))
    except Exception:  # odd $schema values, recursion depth, bad regexes…
        return False


@functools.lru_cache(maxsize=_MEMO_MAX_ENTRIES)
def _memo(key: str) -> bool:
    """The verdict for a repaired schema, by its JSON text."""
    return _passes_metaschema(json.loads(key))


def _verdict(key: str, schema: dict) -> bool:
    if len(key) > _MEMO_MAX_KEY_CHARS:
        return _passes_metaschema(schema)
    return _memo(key)


def _repair(schema: dict) -> dict:
    """Force ``type: object`` and an object ``properties``, which every
    upstream demands of parameters; keep the rest (``additionalProperties``
    included, nested schemas untouched)."""
    fixed = dict(schema)
    if fixed.get("type") != "object":
        fixed["type"] = "object"
    if not isinstance(fixed.get("properties"), dict):
        fixed["properties"] = {}
    return fixed


def sanitize_schema(schema) -> dict:
    """The ``parameters`` object to send for an Anthropic ``input_schema``.

    ``schema`` is the parsed value (``None`` when absent); a ``str`` is read
    as JSON text (some clients send it so), and what is not JSON, not an
    object or empty gives the empty schema. The result always is a JSON
    object that passes the metaschema. Nested values are shared with the
    input, never mutated.
    """
    try:
        if isinstance(schema, (str, bytes, bytearray)):
            try:
                schema = json.loads(schema)
            except ValueError:
                return canonical_empty_schema()
        if not isinstance(schema, dict) or not schema:
            return canonical_empty_schema()
        fixed = _repair(schema)
        key = _key_dumps(fixed)  # also proves the value is plain, finite JSON
        if _verdict(key, fixed):
            return fixed
    except Exception:  # unserialisable values, NaN, recursion depth…
        pass
    return canonical_empty_schema()


def function_specs(tools: list[dict]):
    """``(name, description or None, parameters)`` for each tool an upstream
    will take, in order. Tools with a blank name are dropped (upstreams
    reject them), and so are server tools (``server_tools``); ``custom``
    means nothing to a function-calling upstream."""
    for tool in tools:
        name = tool["name"]
        if not name.strip() or server_tools.kind(tool):
            continue  # a server tool as a function would be called and never run
        description = tool.get("description")
        description = description if isinstance(description, str) and description else None
        yield name, description, sanitize_schema(tool.get("input_schema"))


def chat_tools(tools: list[dict]) -> list:
    """Anthropic ``tools`` → Chat Completions ``tools``."""
    out: list = []
    for name, description, parameters in function_specs(tools):
        function: dict = {"name": name}
        if description:
            function["description"] = description
        function["parameters"] = parameters
        out.append({"type": "function", "function": function})
    return out
