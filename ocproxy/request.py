"""Decoding and validating client request bodies, once per request.

The Go proxy decodes into typed structs, so a field of the wrong JSON type
is a 400 before anything else runs. We check the same known fields here,
once, so the translators and the router can rely on the shapes (``messages``
is a list of objects, ``content`` a string or a list of objects, …) instead
of each guarding against them. Unknown fields pass through untouched, and
``null`` reads as absent, as it does when Go decodes into a struct.

Messages name the offending field so a user reading Claude Code's error can
tell what was wrong; the status is always 400 invalid_request_error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ProxyError

_PREFIX = "invalid request body: "


def _bad(message: str) -> ProxyError:
    return ProxyError(400, _PREFIX + message, "invalid_request_error")


def _decode(body: bytes) -> dict:
    """One JSON object from ``body``, or a 400 naming what is wrong."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"body is not valid UTF-8 (byte {exc.start})") from None
    elif isinstance(body, str):
        text = body
    else:
        raise _bad("body must be bytes")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _bad("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError; also lone surrogates etc.
        raise _bad(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise _bad(f"expected a JSON object, got {_json_type(value)}")
    return value


def _no_constant(name: str) -> Any:
    # Python accepts NaN/Infinity; JSON (and every other client) does not,
    # and they would make our own upstream bodies invalid JSON.
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_int(value: Any) -> bool:
    # JSON true is not a number and 1.5 (or 1.0) is not an integer for a
    # typed decoder; Python's bool being an int subclass must not leak in.
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


# field -> (predicate, what it must be)
_SCALARS = {
    "model": (lambda v: isinstance(v, str), "a string"),
    "stream": (lambda v: isinstance(v, bool), "a boolean"),
    "max_tokens": (_is_int, "an integer"),
    "temperature": (_is_number, "a number"),
    "top_p": (_is_number, "a number"),
    "top_k": (_is_int, "an integer"),
    "metadata": (lambda v: isinstance(v, dict), "an object"),
    "thinking": (lambda v: isinstance(v, dict), "an object"),
    "tool_choice": (lambda v: isinstance(v, dict), "an object"),
}


_CONTENT = "a string or an array of content blocks"


def _field(obj: dict, key: str, types, path: str, what: str) -> Any:
    """``obj[key]`` when absent/null or of ``types``; else a 400 naming ``path``."""
    value = obj.get(key)
    if value is not None and not isinstance(value, types):
        raise _bad(f"{path} must be {what}")
    return value


def _check_object(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _bad(f"{path} must be an object")


def _check_content(content: Any, path: str) -> None:
    """A string needs nothing more; a list holds content blocks."""
    if isinstance(content, list):
        for j, block in enumerate(content):
            _check_block(block, f"{path}[{j}]")


def _check_block(block: Any, path: str) -> None:
    _check_object(block, path)
    kind = _field(block, "type", str, f"{path}.type", "a string")
    if kind == "text":
        _field(block, "text", str, f"{path}.text", "a string")
    elif kind == "tool_result":
        _check_content(_field(block, "content", (str, list), f"{path}.content", _CONTENT), f"{path}.content")


def _check_message(message: Any, path: str) -> None:
    _check_object(message, path)
    _field(message, "role", str, f"{path}.role", "a string")
    _check_content(_field(message, "content", (str, list), f"{path}.content", _CONTENT), f"{path}.content")


def _check_tool(tool: Any, path: str) -> None:
    _check_object(tool, path)
    if not isinstance(tool.get("name"), str):
        raise _bad(f"{path}.name must be a string")


def _check_stop(stop: Any, path: str) -> None:
    if not isinstance(stop, str):
        raise _bad(f"{path} must be a string")


def _check_array(req: dict, name: str, what: str, check_item) -> None:
    items = _field(req, name, list, name, what)
    for i, item in enumerate(items or ()):
        check_item(item, f"{name}[{i}]")


def _check_types(req: dict) -> None:
    """Wrong JSON types at the known fields ⇒ 400 naming the field."""
    try:
        _check_fields(req)
    except RecursionError:  # tool results nested in tool results, hundreds deep
        raise _bad("JSON nested too deeply") from None


def _check_fields(req: dict) -> None:
    for name, (ok, what) in _SCALARS.items():
        value = req.get(name)
        if value is not None and not ok(value):
            raise _bad(f"{name} must be {what}")
    _check_array(req, "messages", "an array", _check_message)
    _check_content(_field(req, "system", (str, list), "system", _CONTENT), "system")
    _check_array(req, "tools", "an array", _check_tool)
    _check_array(req, "stop_sequences", "an array of strings", _check_stop)


@dataclass(frozen=True)
class MessagesRequest:
    """A ``POST /v1/messages`` (or ``count_tokens``) body, decoded and
    type-checked once.

    ``body`` is the decoded JSON object (unknown fields kept); ``raw`` the
    bytes as received (passthrough forwards them). The other fields are the
    known ones with the types the checks above guarantee; absent and
    ``null`` read alike: ``None``, or empty for the lists and ``model``.
    """

    raw: bytes
    body: dict
    model: str = field(init=False)
    stream: bool = field(init=False)
    messages: list[dict] = field(init=False)
    system: str | list[dict] | None = field(init=False)
    tools: list[dict] = field(init=False)
    tool_choice: dict | None = field(init=False)
    max_tokens: int | None = field(init=False)
    temperature: int | float | None = field(init=False)
    top_p: int | float | None = field(init=False)
    stop_sequences: list[str] = field(init=False)
    thinking: dict | None = field(init=False)
    metadata: dict | None = field(init=False)

    def __post_init__(self) -> None:
        get = self.body.get
        derived = {
            "model": get("model") or "",
            "stream": get("stream") is True,
            "messages": get("messages") or [],
            "system": get("system"),
            "tools": get("tools") or [],
            "tool_choice": get("tool_choice"),
            "max_tokens": get("max_tokens"),
            "temperature": get("temperature"),
            "top_p": get("top_p"),
            "stop_sequences": get("stop_sequences") or [],
            "thinking": get("thinking"),
            "metadata": get("metadata"),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @property
    def thinking_disabled(self) -> bool:
        return self.thinking is not None and self.thinking.get("type") == "disabled"


def _raw_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else bytes(body)


def parse_messages_request(body: bytes) -> MessagesRequest:
    """The decoded ``POST /v1/messages`` body, or ``ProxyError(400)``.

    Beyond types, only ``model`` and ``messages`` are required; roles,
    max_tokens and the rest are the upstream's business.
    """
    req = _decode(body)
    _check_types(req)
    if not req.get("model"):
        raise ProxyError(400, "model is required", "invalid_request_error")
    if not req.get("messages"):
        raise ProxyError(400, "messages is required", "invalid_request_error")
    return MessagesRequest(_raw_bytes(body), req)


def parse_count_tokens_request(body: bytes) -> MessagesRequest:
    """The decoded ``POST /v1/messages/count_tokens`` body, or
    ``ProxyError(400)``. Nothing is required (``{}`` counts 3); a body that
    does not decode, including a known field of the wrong type (as a typed
    decoder would reject it), is refused."""
    req = _decode(body)
    _check_types(req)
    return MessagesRequest(_raw_bytes(body), req)


def checked_request(body: dict) -> MessagesRequest:
    """A ``MessagesRequest`` for an already decoded body, held to the same
    type checks and requiring nothing (for callers that build bodies in
    code, such as tests). Raises ``ProxyError(400)`` as the parsers do."""
    _check_types(body)
    return MessagesRequest(json.dumps(body).encode(), body)
