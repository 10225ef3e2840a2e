"""Tool definitions for OpenAI-compatible upstreams (transform.md §2.5).

OpenAI-compatible upstreams reject tools whose ``parameters`` are empty,
missing ``type``/``properties``, of the wrong shape or not a valid JSON
Schema (seed bugs B6–B8), and one bad tool fails the whole request. So every
schema is repaired the cheap way first (TR-43) and then gated by the
JSON Schema metaschema; whatever still fails becomes the canonical empty
schema, which every upstream accepts.

Claude Code sends the same ~20 tools on every request and a metaschema check
costs about a millisecond each, so verdicts are memoised by the repaired
schema's JSON text in a small bounded table.

``sanitize_schema`` never raises: the tool list comes from the client and a
crash here would turn one odd schema into a failed request.
"""

from __future__ import annotations

import json
import threading

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

_key_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

# One metaschema validator instance per draft: building one per check costs
# about as much as the check itself.
_meta_validators: dict[type, object] = {}
_meta_lock = threading.Lock()

# Verdict memo: repaired schema JSON text -> passes the metaschema.
_MEMO_MAX_ENTRIES = 1024
_MEMO_MAX_KEY_CHARS = 256 * 1024  # huge schemas are checked every time, not kept
_memo: dict[str, bool] = {}
_memo_lock = threading.Lock()


def canonical_empty_schema() -> dict:
    """A fresh copy each time, so callers may mutate what they get."""
    return {"type": "object", "properties": {}, "additionalProperties": False}


def _meta_validator(schema: dict):
    cls = validator_for(schema, default=Draft202012Validator)
    validator = _meta_validators.get(cls)
    if validator is None:
        with _meta_lock:
            validator = _meta_validators.get(cls)
            if validator is None:
                validator = cls(cls.META_SCHEMA, format_checker=cls.FORMAT_CHECKER)
                _meta_validators[cls] = validator
    return validator


def _passes_metaschema(schema: dict) -> bool:
    try:
        return bool(_meta_validator(schema).is_valid(schema))
    except Exception:  # odd $schema values, recursion depth, bad regexes…
        return False


def _verdict(key: str, schema: dict) -> bool:
    verdict = _memo.get(key)
    if verdict is None:
        verdict = _passes_metaschema(schema)
        if len(key) <= _MEMO_MAX_KEY_CHARS:
            with _memo_lock:
                while len(_memo) >= _MEMO_MAX_ENTRIES:
                    _memo.pop(next(iter(_memo)))  # oldest first
                _memo[key] = verdict
    return verdict


def _repair(schema: dict) -> dict:
    """TR-43: force ``type: object`` and an object ``properties``; keep the
    rest (``additionalProperties`` included, nested schemas untouched)."""
    fixed = dict(schema)
    if fixed.get("type") != "object":
        fixed["type"] = "object"
    if not isinstance(fixed.get("properties"), dict):
        fixed["properties"] = {}
    return fixed


def sanitize_schema(schema) -> dict:
    """The ``parameters`` object to send for an Anthropic ``input_schema``.

    ``schema`` is the parsed value (``None`` when absent); a ``str`` is read
    as JSON text, so ``" null "`` and ``"{invalid"`` behave as TR-41/TR-42
    say. The result always is a JSON object that passes the metaschema
    (TR-44). Nested values are shared with the input, never mutated.
    """
    try:
        if isinstance(schema, (str, bytes, bytearray)):
            try:
                schema = json.loads(schema)
            except ValueError:
                return canonical_empty_schema()  # TR-42: not JSON
        if not isinstance(schema, dict) or not schema:
            return canonical_empty_schema()  # TR-41 / TR-42
        fixed = _repair(schema)
        key = _key_dumps(fixed)  # also proves the value is plain, finite JSON
        if _verdict(key, fixed):
            return fixed
    except Exception:  # unserialisable values, NaN, recursion depth…
        pass
    return canonical_empty_schema()


def named_tools(tools):
    """``(name, tool)`` for each tool an upstream will take, in order:
    objects with a non-blank name (TR-40; upstreams reject unnamed ones)."""
    if not isinstance(tools, list):
        return
    for tool in tools:
        if isinstance(tool, dict):
            name = tool.get("name")
            if isinstance(name, str) and name.strip():
                yield name, tool


def chat_tools(tools) -> list:
    """Anthropic ``tools`` → Chat Completions ``tools`` (TR-40, §2.5).

    Unnamed tools are dropped (upstreams reject them); order is kept. The
    tool's own ``type`` (``custom``, server-tool types) means nothing here.
    """
    out: list = []
    for name, tool in named_tools(tools):
        function: dict = {"name": name}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        function["parameters"] = sanitize_schema(tool.get("input_schema"))
        out.append({"type": "function", "function": function})
    return out
