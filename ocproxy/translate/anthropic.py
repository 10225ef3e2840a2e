"""Raw Anthropic passthrough (transform.md §5, streaming.md §8, contract "Decisions").

Anthropic-native upstreams get the client's own body, not a re-encoding of
our parsed form (B5: OpenAI-shaped tools reached MiniMax). Only three edits
are allowed, each because the upstream would otherwise reject or misroute
the request:

1. the top-level ``model`` becomes the routed id (TR-51; B4 was a text
   search that missed ``"model": "…"`` with a space, so we parse);
2. ``"type":"custom"`` is removed from tools (TR-52; B1 — and only that
   exact value, B2);
3. thinking blocks carrying the proxy's own placeholder signature are
   removed from the history (a genuine Anthropic upstream rejects the fake
   signature).

When nothing needs editing, or the body cannot be read with certainty, the
original bytes go out unchanged.

The stream side forwards the upstream's SSE unchanged but in whole events,
so the proxy's own bytes (an error frame) can never land inside one (S2).
"""

from __future__ import annotations

import json
import logging
import math

from ..errors import UpstreamDataError
from .sse import THINKING_SIGNATURE

log = logging.getLogger(__name__)


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
        and block.get("signature") == THINKING_SIGNATURE
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


def passthrough_body(raw: bytes, model_id: str) -> bytes:
    """The body to send to an Anthropic-native upstream for ``model_id``."""
    try:
        body = _parse(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        log.error("raw passthrough: body is not plain JSON, forwarding it unchanged: %s", exc)
        return raw
    if not isinstance(body, dict):
        log.error("raw passthrough: body is not a JSON object, forwarding it unchanged")
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
        log.error("raw passthrough: cannot re-serialise, forwarding unchanged: %s", exc)
        return raw


def check_response(body: bytes) -> bytes:
    """A 2xx non-streaming answer, returned verbatim if it is a JSON object.

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
    return body


class PassthroughStream:
    """streaming.md §8: forward the upstream SSE byte-for-byte, one whole
    event per frame (ST-52).

    An event ends at a blank line. Searching for ``\\n\\n`` and ``\\n\\r\\n``
    finds both the ``\\n\\n`` and ``\\r\\n\\r\\n`` terminators (and mixed
    ones); the terminator stays with its event. Each search resumes just
    before the newly arrived bytes, so one huge event arriving in many
    chunks costs linear time.
    """

    pauses_heartbeat = True

    def __init__(self) -> None:
        self.done = False  # EOF ends a passthrough stream (ST-55)
        self._buf = bytearray()
        self._scan = 0  # no terminator starts before this offset
        self._received = False

    def feed(self, data: bytes) -> list[bytes]:
        if not data:
            return []
        self._received = True
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        start = 0
        scan = self._scan
        while True:
            lf = buf.find(b"\n\n", scan)
            crlf = buf.find(b"\n\r\n", scan)
            if lf < 0 and crlf < 0:
                break
            if crlf < 0 or (0 <= lf < crlf):
                end = lf + 2
            else:
                end = crlf + 3
            frames.append(bytes(buf[start:end]))
            start = scan = end
        if start:
            del buf[:start]
            scan -= start
        # a terminator may straddle the next chunk: keep its first 2 bytes in view
        self._scan = max(scan, len(buf) - 2, 0)
        return frames

    def close(self) -> list[bytes]:
        """At clean EOF: the unterminated remainder, if any, as it is."""
        if not self._received:
            raise UpstreamDataError("empty stream")
        rest, self._buf = bytes(self._buf), bytearray()
        self._scan = 0
        return [rest] if rest else []
