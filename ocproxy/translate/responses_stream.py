"""OpenAI Responses API answers → Anthropic messages, whole and streamed.

Pure: dicts and bytes in, dicts / SSE frames out.
"""

from __future__ import annotations

import json

from ..config.types import ModelConfig
from ..errors import UpstreamDataError
from .emitter import MessageEmitter
from .ids import IdFactory
from .message import error_text, message, tool_input
from .reasoning_state import responses_signature
from .server_tools import SearchResults
from .sse import THINKING_SIGNATURE, DecodingTranslator, data_payload
from .usage import responses_usage

# ---------------------------------------------------------------------------
# whole response
# ---------------------------------------------------------------------------


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


def _search(item: dict) -> tuple[str, list[tuple[str, str | None]]]:
    """A ``web_search_call``'s query and the pages it reports: a search's
    ``sources`` (sent when ``include`` asks for them), a page it opened."""
    action = item.get("action")
    action = action if isinstance(action, dict) else {}
    query = action.get("query")
    if not isinstance(query, str) or not query:
        queries = action.get("queries")
        query = next((q for q in queries if isinstance(q, str)), "") if isinstance(queries, list) else ""
    pages: list[tuple[str, str | None]] = []
    for source in action.get("sources") or ():
        if isinstance(source, dict) and isinstance(source.get("url"), str) and source["url"]:
            title = source.get("title")
            pages.append((source["url"], title if isinstance(title, str) else None))
    if isinstance(action.get("url"), str) and action["url"]:
        pages.append((action["url"], None))
        query = query or action["url"]
    return query, pages


def _cite(results: SearchResults, part: dict) -> None:
    for note in part.get("annotations") or ():
        if isinstance(note, dict) and note.get("type") == "url_citation":
            results.cited(note.get("url"), note.get("title"))


def _failure_message(response: dict) -> str:
    error = response.get("error")
    if isinstance(error, dict) and error.get("message"):
        return "Responses upstream failed: " + error_text(error, ("code",))
    return f"Responses upstream failed (status {response.get('status')})"


def _error_event_message(event: dict) -> str:
    error = event.get("error")
    if isinstance(error, dict):
        return "Responses upstream error: " + error_text(error, ("code", "type"))
    return "Responses upstream error: " + error_text(event, ("code",))


def _stop_reason(response: dict, tool_called: bool) -> str:
    if tool_called:
        return "tool_use"
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        if isinstance(details, dict) and details.get("reason") == "max_output_tokens":
            return "max_tokens"
    return "end_turn"


def convert_response(body: dict, model: ModelConfig, ids: IdFactory, warnings: list[str]) -> dict:
    """A whole Responses API body → an Anthropic message (text, reasoning
    and tool calls)."""
    if not isinstance(body, dict):
        raise UpstreamDataError("Responses upstream returned a non-object body")
    if body.get("status") == "failed" or (isinstance(body.get("error"), dict) and not body.get("output")):
        raise UpstreamDataError(_failure_message(body))
    output = body.get("output")
    if not isinstance(output, list) or not output:
        raise UpstreamDataError("empty Responses output")

    content: list[dict] = []
    results = SearchResults(ids)
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            text = _reasoning_text(item)
            signature = responses_signature(item)
            if text or signature:
                content.append({"type": "thinking", "thinking": text, "signature": signature or THINKING_SIGNATURE})
        elif kind == "web_search_call":
            content.extend(results.search(*_search(item)))
        elif kind == "message":
            for part in item.get("content") or ():
                if not isinstance(part, dict):
                    continue
                _cite(results, part)
                text = part.get("text") if part.get("type") == "output_text" else part.get("refusal")
                if part.get("type") in ("output_text", "refusal") and text:
                    content.append({"type": "text", "text": text})
        elif kind == "function_call":
            name = item.get("name") or ""
            content.append(
                {
                    "type": "tool_use",
                    "id": item.get("call_id") or ids("toolu_"),
                    "name": name,
                    "input": tool_input(item.get("arguments"), name, warnings),
                }
            )
    late = results.late_block()
    if late:
        content.append(late)
    tool_called = any(block["type"] == "tool_use" for block in content)
    return message(
        ids("msg_"), model.model_id, content, _stop_reason(body, tool_called),
        results.usage(responses_usage(body.get("usage"))),
    )


# ---------------------------------------------------------------------------
# stream
# ---------------------------------------------------------------------------


class ResponsesStreamTranslator(DecodingTranslator):
    """Responses API SSE events → Anthropic SSE frames.

    The ``event:`` lines are redundant with each payload's ``type`` and are
    ignored; unparseable payloads are skipped without a failure count, as
    the reference did. Function calls are keyed by ``output_index`` (every
    argument event carries it), with ``item_id`` as a fallback for gateways
    that drop it. The closing frames are written as soon as the upstream
    says it is finished, so the client does not wait for the connection to
    close.
    """

    def __init__(self, model_id: str, ids: IdFactory):
        super().__init__()
        self.emitter = MessageEmitter(model_id, ids)
        self._handled = False
        self._keys: dict[str, object] = {}  # item id -> tool key
        self._args_seen: set = set()  # tool keys that got argument text
        self._summary_at: tuple | None = None  # (item id, summary index) last streamed
        self._results = SearchResults(ids)

    # -- reading -----------------------------------------------------------

    def _end(self, out: list[bytes]) -> None:
        if not self.done:
            out += self._finish("end_turn", None)

    def _item(self, line: bytes, out: list[bytes]) -> None:
        payload = data_payload(line)
        if payload is None:
            return
        if payload == b"[DONE]":
            out += self._finish("end_turn", None)
            return
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            out += self._event(event)

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
        if kind == "response.output_text.annotation.added":
            if isinstance(event.get("annotation"), dict):
                _cite(self._results, {"annotations": [event["annotation"]]})
            return []
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            done = self._item_done(event["item"])
            if done is not None:
                return done
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

    def _item_done(self, item: dict) -> list[bytes] | None:
        """A finished reasoning item closes its thinking block with its
        encrypted state; a finished search becomes its two blocks; a
        finished message gives its citations. None: not one of these."""
        kind = item.get("type")
        if kind == "reasoning":
            signature = responses_signature(item)
            if not signature:
                return []
            self._summary_at = None  # the next reasoning item opens its own block
            return self.emitter.thinking_signature(signature)
        if kind == "web_search_call":
            out: list[bytes] = []
            for block in self._results.search(*_search(item)):
                out += self.emitter.whole_block(block)
            return out
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict):
                    _cite(self._results, part)
            return []
        return None

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
        late = self._results.late_block()
        out = self.emitter.whole_block(late) if late else []
        return out + self.emitter.finish(stop_reason, self._results.usage(responses_usage(usage)))
