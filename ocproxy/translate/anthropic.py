"""Raw Anthropic passthrough.

Anthropic-native upstreams get the client's own body, not a re-encoding of
our parsed form (re-encoding once sent OpenAI-shaped tools to an Anthropic
upstream). Only three edits are allowed, each because the upstream would
otherwise reject or misroute the request:

1. the top-level ``model`` becomes the routed id (parsed, not searched as
   text: a text search misses ``"model": "…"`` with a space);
2. ``"type":"custom"`` is removed from tools (only that exact value);
3. thinking blocks carrying a signature the proxy made (its placeholder,
   or another upstream's reasoning state) are removed from the history (a
   genuine Anthropic upstream rejects the fake signature).

When nothing needs editing, or the body cannot be read with certainty, the
original bytes go out unchanged.

The answer comes back as the upstream sent it, with one edit: its
``model`` (whole, or in ``message_start``) becomes the name the client asked
for, because Claude Code keeps thinking blocks in its history only when the
answer names the model it requested. The stream side forwards the upstream's
SSE otherwise unchanged but in whole events, so the proxy's own bytes (an
error frame) can never land inside one.
"""

from __future__ import annotations

import json
import math

from ..errors import UpstreamDataError
from .reasoning_state import is_proxy_signature
from .sse import DecodingTranslator


class _NotPlainJSON(ValueError):
    """The body uses a value that would not survive re-serialisation."""


def _reject_constant(name: str):
    raise _NotPlainJSON(name)  # NaN / Infinity are not JSON


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999 would come back as "Infinity"
        raise _NotPlainJSON(text)
    return value


def _parse(raw: bytes):
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


def _serialise(obj) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # a lone surrogate (``"\\ud800"`` in the original) cannot be UTF-8;
        # escaped it stays valid JSON with the same meaning
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _strip_custom_tool_types(body: dict) -> bool:
    changed = False
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict) and tool.get("type") == "custom":
                del tool["type"]
                changed = True
    return changed


def _is_placeholder_thinking(block) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "thinking"
        and is_proxy_signature(block.get("signature"))
    )


def _strip_placeholder_thinking(body: dict) -> bool:
    changed = False
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list) and any(_is_placeholder_thinking(b) for b in content):
            message["content"] = [b for b in content if not _is_placeholder_thinking(b)]
            changed = True
    return changed


def passthrough_body(raw: bytes, model_id: str, warnings: list[str] | None = None) -> bytes:
    """The body to send to an Anthropic-native upstream for ``model_id``;
    why it went out unedited is added to ``warnings``."""
    warnings = [] if warnings is None else warnings
    try:
        body = _parse(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        warnings.append(f"raw passthrough: body is not plain JSON, forwarding it unchanged: {exc}")
        return raw
    if not isinstance(body, dict):
        warnings.append("raw passthrough: body is not a JSON object, forwarding it unchanged")
        return raw
    changed = False
    if isinstance(body.get("model"), str) and body["model"] != model_id:
        body["model"] = model_id  # top level only; nested "model" keys stay
        changed = True
    changed = _strip_custom_tool_types(body) or changed
    changed = _strip_placeholder_thinking(body) or changed
    if not changed:
        return raw
    try:
        return _serialise(body)
    except (ValueError, TypeError, RecursionError) as exc:  # pragma: no cover - parse already proved it plain
        warnings.append(f"raw passthrough: cannot re-serialise, forwarding unchanged: {exc}")
        return raw


def check_response(body: bytes, model: str | None = None) -> bytes:
    """A 2xx non-streaming answer, returned verbatim if it is a JSON object
    (naming ``model`` already, or ``model`` is None); else with its top-level
    ``model`` replaced by ``model``.

    An HTML page or an error object served with 200 (proxies, captive
    portals, misconfigured gateways) must fail the attempt so the next
    model is tried, instead of reaching the client as a garbage message.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UpstreamDataError("upstream answered 2xx with a body that is not JSON") from None
    if not isinstance(parsed, dict):
        raise UpstreamDataError("upstream answered 2xx with JSON that is not an object")
    if parsed.get("type") == "error":
        error = parsed.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        raise UpstreamDataError(f"upstream answered 2xx with an error body: {message or body[:200]!r}")
    if model is None or parsed.get("model") == model:
        return body
    try:
        plain = _parse(body)
    except ValueError:  # NaN or an infinite number: cannot re-serialise faithfully
        return body
    plain["model"] = model
    return _serialise(plain)


def _line_end(line: bytes) -> bytes:
    return line[len(line.rstrip(b"\r\n")):]


def renamed_message_start(event: bytes, model: str) -> bytes | None:
    """``event`` (one whole SSE event) with ``message.model`` set to
    ``model`` if it is a ``message_start``; None when it is not one (or its
    data cannot be read). Every other line stays as it was."""
    lines = event.splitlines(True)
    payload = b"".join(
        line.rstrip(b"\r\n")[6:] if line[5:6] == b" " else line.rstrip(b"\r\n")[5:]
        for line in lines if line.startswith(b"data:")
    )
    try:
        data = _parse(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") != "message_start" or not isinstance(data.get("message"), dict):
        return None
    data["message"]["model"] = model
    out, written = [], False
    for line in lines:
        if not line.startswith(b"data:"):
            out.append(line)
        elif not written:
            out.append(b"data: " + _serialise(data) + _line_end(line))
            written = True
    return b"".join(out)


class PassthroughStream(DecodingTranslator):
    """Forwards the upstream SSE byte for byte, one whole event per frame, so
    the proxy's own bytes (an error frame) can never land inside one. EOF
    ends a passthrough stream; ``done`` stays false."""

    whole_events = True

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self._received = False
        self._model = model  # the name message_start must carry (None: as sent)

    def feed(self, data: bytes) -> list[bytes]:
        self._received = self._received or bool(data)
        return super().feed(data)

    def _item(self, event: bytes, out: list[bytes]) -> None:
        if self._model is not None and b"message_start" in event:
            renamed = renamed_message_start(event, self._model)
            if renamed is not None:
                self._model = None  # only the one message_start
                event = renamed
        out.append(event)

    def _end(self, out: list[bytes]) -> None:
        if not self._received:
            raise UpstreamDataError("empty stream")
