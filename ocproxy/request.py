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


def _check_blocks(blocks: list, where: str) -> None:
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise _bad(f"{where}[{j}] must be an object")
        kind = block.get("type")
        if kind is not None and not isinstance(kind, str):
            raise _bad(f"{where}[{j}].type must be a string")
        if kind == "text":
            text = block.get("text")
            if text is not None and not isinstance(text, str):
                raise _bad(f"{where}[{j}].text must be a string")
        elif kind == "tool_result":
            inner = block.get("content")
            if inner is not None and not isinstance(inner, (str, list)):
                raise _bad(f"{where}[{j}].content must be a string or an array of content blocks")
            if isinstance(inner, list):
                _check_blocks(inner, f"{where}[{j}].content")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _bad("messages must be an array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}] must be an object")
        role = message.get("role")
        if role is not None and not isinstance(role, str):
            raise _bad(f"messages[{i}].role must be a string")
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise _bad(f"messages[{i}].content must be a string or an array of content blocks")
        _check_blocks(content, f"messages[{i}].content")


def _check_types(req: dict) -> None:
    """Wrong JSON types at the known fields ⇒ 400 naming the field."""
    for name, (ok, what) in _SCALARS.items():
        value = req.get(name)
        if value is not None and not ok(value):
            raise _bad(f"{name} must be {what}")

    messages = req.get("messages")
    if messages is not None:
        _check_messages(messages)

    system = req.get("system")
    if system is not None:
        if isinstance(system, list):
            _check_blocks(system, "system")
        elif not isinstance(system, str):
            raise _bad("system must be a string or an array of content blocks")

    tools = req.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools must be an array")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise _bad(f"tools[{i}] must be an object")
            if not isinstance(tool.get("name"), str):
                raise _bad(f"tools[{i}].name must be a string")

    stops = req.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list):
            raise _bad("stop_sequences must be an array of strings")
        for i, stop in enumerate(stops):
            if not isinstance(stop, str):
                raise _bad(f"stop_sequences[{i}] must be a string")


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
