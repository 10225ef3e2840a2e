"""OpenAI Responses API answers → Anthropic messages, whole and streamed.

Pure: dicts and bytes in, dicts / SSE frames out.
"""

from __future__ import annotations

import json
from ..config import ModelConfig
from ..errors import UpstreamDataError
from . import request_blocks as rb
from . import sse

# ---------------------------------------------------------------------------
# whole response
# ---------------------------------------------------------------------------


def _parse_args(arguments) -> dict:
    """Tool arguments as an object; ``{}`` for anything else (TR-62)."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reasoning_text(item: dict) -> str:
    """Summary paragraphs, else raw reasoning text (open-weight models send
    ``content`` with ``reasoning_text`` parts instead of a summary)."""
    for field, part_type in (("summary", "summary_text"), ("content", "reasoning_text")):
        texts = [
            p.get("text") or ""
            for p in item.get(field) or ()
            if isinstance(p, dict) and p.get("type") == part_type and p.get("text")
        ]
        if texts:
            return "\n\n".join(texts)
    return ""


def usage_of(usage) -> dict:
    """Responses usage → Anthropic usage; ``input_tokens`` includes the cached
    prompt, which is moved to ``cache_read_input_tokens`` (TR-70)."""
    if not isinstance(usage, dict):
        return rb.cached_usage(0, 0)
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return rb.cached_usage(usage.get("input_tokens"), usage.get("output_tokens"), cached)


def _failure_message(response: dict) -> str:
    error = response.get("error")
    if isinstance(error, dict) and error.get("message"):
        code = f"{error['code']}: " if error.get("code") else ""
        return f"Responses upstream failed: {code}{error['message']}"
    return f"Responses upstream failed (status {response.get('status')})"


def _stop_reason(response: dict, tool_called: bool) -> str:
    if tool_called:
        return "tool_use"
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        if isinstance(details, dict) and details.get("reason") == "max_output_tokens":
            return "max_tokens"
    return "end_turn"


def convert_response(body: dict, model: ModelConfig) -> dict:
    """A whole Responses API body → an Anthropic message (transform.md §6,
    extended with reasoning and tool calls)."""
    if not isinstance(body, dict):
        raise UpstreamDataError("Responses upstream returned a non-object body")
    if body.get("status") == "failed" or (isinstance(body.get("error"), dict) and not body.get("output")):
        raise UpstreamDataError(_failure_message(body))
    output = body.get("output")
    if not isinstance(output, list) or not output:
        raise UpstreamDataError("empty Responses output")

    content: list[dict] = []
    tool_called = False
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            text = _reasoning_text(item)
            if text:
                content.append({"type": "thinking", "thinking": text, "signature": sse.THINKING_SIGNATURE})
        elif kind == "message":
            for part in item.get("content") or ():
                if not isinstance(part, dict):
                    continue
                text = part.get("text") if part.get("type") == "output_text" else part.get("refusal")
                if part.get("type") in ("output_text", "refusal") and text:
                    content.append({"type": "text", "text": text})
        elif kind == "function_call":
            tool_called = True
            content.append(
                {
                    "type": "tool_use",
                    "id": item.get("call_id") or sse.new_tool_id(),
                    "name": item.get("name") or "",
                    "input": _parse_args(item.get("arguments")),
                }
            )
    if not content:
        content.append({"type": "text", "text": ""})
    return {
        "id": sse.new_message_id(),
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model.model_id,
        "stop_reason": _stop_reason(body, tool_called),
        "stop_sequence": None,
        "usage": usage_of(body.get("usage")),
    }


# ---------------------------------------------------------------------------
# stream
# ---------------------------------------------------------------------------


class ResponsesStreamTranslator(sse.LineTranslator):
    """Responses API SSE events → Anthropic SSE frames.

    Reading follows ST-40/ST-41 (lines as they arrive, ``data:`` payloads,
    ``[DONE]``); the ``event:`` lines are redundant with each payload's
    ``type`` and are ignored. Unparseable payloads are skipped without a
    failure count (streaming.md §7). Function calls are keyed by
    ``output_index`` (every argument event carries it), with ``item_id`` as a
    fallback for gateways that drop it. The closing frames are written as
    soon as the upstream says it is finished, so the client does not wait for
    the connection to close.
    """

    def __init__(self, model_id: str):
        super().__init__(model_id)
        self._handled = False
        self._keys: dict[str, object] = {}  # item id -> tool key
        self._args_seen: set = set()  # tool keys that got argument text
        self._summary_at: tuple | None = None  # (item id, summary index) last streamed

    # -- reading -----------------------------------------------------------

    def _end_of_stream(self) -> list[bytes]:
        return self._finish("end_turn", None)

    def _line(self, line: bytes) -> list[bytes]:
        payload = sse.data_payload(line)
        if payload is None:
            return []
        if payload == b"[DONE]":
            return self._finish("end_turn", None)
        try:
            event = json.loads(payload)
        except ValueError:
            return []
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return []
        return self._event(event)

    # -- events ------------------------------------------------------------

    def _tool_key(self, event: dict, item_id=None):
        index = event.get("output_index")
        if isinstance(index, int):
            return ("out", index)
        item_id = item_id or event.get("item_id")
        return self._keys.get(item_id, ("item", item_id))

    def _open_call(self, event: dict, item: dict) -> list[bytes]:
        key = self._tool_key(event, item.get("id"))
        if item.get("id"):
            self._keys[item["id"]] = key
        if self.emitter.tool_is_open(key):
            return []
        out = self.emitter.tool_start(key, item.get("call_id") or None, item.get("name") or "")
        if item.get("arguments"):
            out += self._args(key, item["arguments"])
        return out

    def _args(self, key, text) -> list[bytes]:
        if not isinstance(text, str) or not text:
            return []
        self._args_seen.add(key)
        return self.emitter.tool_args(key, text)

    def _event(self, event: dict) -> list[bytes]:
        kind = event["type"]
        self._handled = True
        if kind == "response.output_text.delta" or kind == "response.refusal.delta":
            delta = event.get("delta")
            return self.emitter.text(delta) if isinstance(delta, str) else []
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            return self._thinking(event)
        if kind == "response.function_call_arguments.delta":
            return self._args(self._tool_key(event), event.get("delta"))
        if kind == "response.function_call_arguments.done":
            key = self._tool_key(event)
            if key in self._args_seen:
                return []
            return self._args(key, event.get("arguments"))
        if kind in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item")
            if not isinstance(item, dict) or item.get("type") != "function_call":
                return []
            out = self._open_call(event, item)
            # A gateway that sends the call whole (no argument deltas).
            key = self._tool_key(event, item.get("id"))
            if kind.endswith(".done") and key not in self._args_seen:
                out += self._args(key, item.get("arguments"))
            return out
        if kind in ("response.completed", "response.done", "response.incomplete"):
            return self._terminal(event)
        if kind == "response.failed":
            response = event.get("response")
            raise UpstreamDataError(_failure_message(response if isinstance(response, dict) else {}))
        if kind == "error":
            raise UpstreamDataError(_error_event_message(event))
        return []

    def _thinking(self, event: dict) -> list[bytes]:
        delta = event.get("delta")
        if not isinstance(delta, str) or not delta:
            return []
        at = (event.get("item_id"), event.get("summary_index"), event.get("content_index"))
        if self._summary_at is not None and at != self._summary_at:
            delta = "\n\n" + delta  # a new summary paragraph, as in the whole response
        self._summary_at = at
        return self.emitter.thinking(delta)

    def _terminal(self, event: dict) -> list[bytes]:
        response = event.get("response")
        response = response if isinstance(response, dict) else {}
        if not self.emitter.started and response.get("output") == []:
            raise UpstreamDataError("empty Responses output")
        return self._finish(_stop_reason(response, self.emitter.tool_emitted), response.get("usage"))

    def _finish(self, stop_reason: str, usage) -> list[bytes]:
        if not self._handled:
            raise UpstreamDataError("empty stream")
        self.done = True
        return self.emitter.finish(stop_reason, usage_of(usage))


def _error_event_message(event: dict) -> str:
    error = event.get("error") if isinstance(event.get("error"), dict) else event
    code = error.get("code") or (error.get("type") if error is not event else None)
    message = error.get("message") or "no message"
    return f"Responses upstream error: {code}: {message}" if code else f"Responses upstream error: {message}"
