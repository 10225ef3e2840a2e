"""Raw Anthropic passthrough.

Anthropic-native upstreams get the client's own body, not a re-encoding of
our parsed form (re-encoding once sent OpenAI-shaped tools to an Anthropic
upstream). Only these edits are allowed, each because the upstream would
otherwise reject, misroute or mis-cache the request:

1. the top-level ``model`` becomes the routed id (parsed, not searched as
   text: a text search misses ``"model": "…"`` with a space);
2. ``"type":"custom"`` is removed from tools (only that exact value);
3. thinking blocks carrying a signature the proxy made (its placeholder,
   or another upstream's reasoning state) are removed from the history (a
   genuine Anthropic upstream rejects the fake signature);
4. tool ids another provider made (Kimi's ``functions.Read:0``) that break
   Anthropic's ``^[a-zA-Z0-9_-]+$`` are renamed, the same way every turn, in
   the ``tool_use`` and in the ``tool_result`` that answers it;
5. for a model that is not Claude (Qwen, MiniMax on OpenCode), adaptive
   thinking and ``output_config.effort`` become ``enabled`` with a budget
   (``thinking.anthropic_thinking``), and Claude Code's billing attribution
   block leaves the system prompt (it would defeat the prefix cache); a
   Claude model gets the type it takes when Claude Code asked for another
   Claude (adaptive for Opus 4.7 on, enabled before 4.6), and a model's
   forced ``thinking`` setting is written for Claude too;
6. when the last assistant turn calls tools and another model made it (edit
   3 or 4 touched it), thinking is left off for this request: Anthropic
   requires that turn to start with a signed thinking block it cannot have.

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

import hashlib
import json
import math
import re
from typing import TYPE_CHECKING

from ..errors import UpstreamDataError
from . import thinking
from .content import is_billing_block, without_billing_line
from .reasoning_state import is_proxy_signature
from .sse import DecodingTranslator

if TYPE_CHECKING:
    from ..config.types import ModelConfig

#: What Anthropic accepts as a tool_use id.
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_NOT_TOOL_ID_CHAR = re.compile(r"[^a-zA-Z0-9_-]")


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


def anthropic_tool_id(tool_id: str) -> str:
    """``tool_id`` when Anthropic accepts it; else its invalid characters as
    ``_`` plus a hash of the whole id, so two ids never become one and the
    same id always becomes the same one."""
    if _TOOL_ID.match(tool_id):
        return tool_id
    digest = hashlib.sha256(tool_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{_NOT_TOOL_ID_CHAR.sub('_', tool_id)}_{digest}"


def _rename_tool_ids(body: dict) -> bool:
    changed = False
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            key = {"tool_use": "id", "tool_result": "tool_use_id"}.get(block.get("type"))
            value = block.get(key) if key else None
            if isinstance(value, str) and not _TOOL_ID.match(value):
                block[key] = anthropic_tool_id(value)
                changed = True
    return changed


def _strip_billing(body: dict) -> bool:
    system = body.get("system")
    if isinstance(system, str):
        text = without_billing_line(system)
        if text == system:
            return False
        body["system"] = text
        return True
    if isinstance(system, list) and any(is_billing_block(b) for b in system):
        body["system"] = [b for b in system if not is_billing_block(b)]
        return True
    return False


def _rewrite_thinking(body: dict, model: ModelConfig) -> bool:
    """Thinking in the shape the routed model takes (edit 5)."""
    forced = isinstance(model.thinking, str)
    claude = model.model_id.startswith("claude-")
    output_config = body.get("output_config")
    if not forced and "thinking" not in body and not (isinstance(output_config, dict) and "effort" in output_config):
        return False
    want = thinking.intent(body.get("thinking"), output_config, model)
    if claude and not forced:
        decided = thinking.claude_thinking(body.get("thinking"), want, model.model_id, body.get("max_tokens"))
        if decided is None:
            return False
        new_thinking, effort = decided
    else:
        new_thinking, effort = thinking.anthropic_thinking(want, model.model_id, body.get("max_tokens"))
    before = (body.get("thinking"), output_config, body.get("context_management"))
    if new_thinking is None:
        body.pop("thinking", None)
    else:
        body["thinking"] = new_thinking
    if isinstance(output_config, dict):
        output_config = {k: v for k, v in output_config.items() if k != "effort"}
    if effort is not None:
        output_config = {**(output_config or {}), "effort": effort}
    if output_config:
        body["output_config"] = output_config
    else:
        body.pop("output_config", None)
    if new_thinking is None or new_thinking.get("type") == "disabled":
        _drop_clear_thinking(body)
    return (body.get("thinking"), body.get("output_config"), body.get("context_management")) != before


def _drop_clear_thinking(body: dict) -> None:
    """Anthropic rejects a ``clear_thinking_*`` context edit unless thinking
    is enabled or adaptive, so it goes with the thinking."""
    cm = body.get("context_management")
    edits = cm.get("edits") if isinstance(cm, dict) else None
    if not isinstance(edits, list):
        return
    kept = [e for e in edits if not (isinstance(e, dict) and str(e.get("type", "")).startswith("clear_thinking_"))]
    if len(kept) == len(edits):
        return
    if kept:
        body["context_management"] = {**cm, "edits": kept}
    else:
        body.pop("context_management")


def _final_assistant_blocks(body: dict) -> list:
    messages = body.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "assistant":
            content = message.get("content")
            return content if isinstance(content, list) else []
    return []


def _final_turn_is_foreign(body: dict) -> bool:
    """The last assistant turn calls tools and came from another model: its
    thinking carries the proxy's placeholder, or its tool ids are not
    Anthropic's."""
    blocks = [b for b in _final_assistant_blocks(body) if isinstance(b, dict)]
    calls = [b for b in blocks if b.get("type") == "tool_use"]
    if not calls:
        return False
    return any(_is_placeholder_thinking(b) for b in blocks) or any(
        isinstance(c.get("id"), str) and not _TOOL_ID.match(c["id"]) for c in calls
    )


def _no_thinking_after_foreign_turn(body: dict) -> bool:
    """Edit 6: with thinking on, Anthropic wants the last assistant turn to
    start with a signed thinking block (400 "a final assistant message must
    start with a thinking block"); a turn another model made has none, so
    this one request goes without thinking."""
    kind = body.get("thinking", {}).get("type") if isinstance(body.get("thinking"), dict) else None
    blocks = _final_assistant_blocks(body)
    starts_signed = bool(blocks) and isinstance(blocks[0], dict) and blocks[0].get("type") in ("thinking", "redacted_thinking")
    if kind not in ("enabled", "adaptive") or starts_signed:
        return False
    del body["thinking"]
    _drop_clear_thinking(body)
    return True


def passthrough_body(raw: bytes, model_id: str, warnings: list[str] | None = None,
                     model: ModelConfig | None = None, max_tokens: int | None = None) -> bytes:
    """The body to send to an Anthropic-native upstream for ``model_id``
    (``model``, when given, decides edit 5; ``max_tokens``, when given, is
    its output limit); why it went out unedited is added to ``warnings``."""
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
    if max_tokens is not None and body.get("max_tokens") != max_tokens:
        body["max_tokens"] = max_tokens
        changed = True
    changed = _strip_custom_tool_types(body) or changed
    foreign_turn = _final_turn_is_foreign(body)
    changed = _strip_placeholder_thinking(body) or changed
    changed = _rename_tool_ids(body) or changed
    if model is not None:
        changed = _rewrite_thinking(body, model) or changed
        if not model.model_id.startswith("claude-"):
            changed = _strip_billing(body) or changed
    if foreign_turn:
        changed = _no_thinking_after_foreign_turn(body) or changed
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
        raise UpstreamDataError(f"upstream answered 2xx with an error body: {message or body!r}")
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
