"""Gemini ``generateContent`` answers → Anthropic messages, whole and streamed.

Pure: dicts and bytes in, dicts / SSE frames out.
"""

from __future__ import annotations

import json

from ..config.types import ModelConfig
from ..errors import UpstreamDataError
from .emitter import MessageEmitter
from .ids import IdFactory
from .message import error_text, message
from .reasoning_state import gemini_tool_id
from .server_tools import SearchResults
from .sse import THINKING_SIGNATURE, DecodingTranslator, data_payload, dumps
from .usage import gemini_usage

# finishReason values that mean "the model answered"; any other reason with
# no content is a failure worth falling back on (SAFETY, RECITATION,
# MALFORMED_FUNCTION_CALL, …) rather than an empty reply to the agent.
_NORMAL_FINISH = {"", "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}


def _stop_reason(finish: str) -> str:
    return "max_tokens" if finish == "MAX_TOKENS" else "end_turn"


def _check_error(body: dict) -> None:
    error = body.get("error")
    if isinstance(error, dict):
        raise UpstreamDataError("Gemini upstream error: " + error_text(error, ("status", "code")))


def _first_candidate(body: dict) -> dict | None:
    """``candidates[0]``; a blocked prompt fails the attempt."""
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    feedback = body.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise UpstreamDataError(f"Gemini returned no candidates (prompt blocked: {reason})")
    return None


def _parts(candidate: dict) -> list[dict]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _args(call: dict) -> dict:
    args = call.get("args")
    return args if isinstance(args, dict) else {}


def _grounding(candidate: dict) -> dict | None:
    metadata = candidate.get("groundingMetadata")
    return metadata if isinstance(metadata, dict) else None


def _search_blocks(metadata: dict | None, results: SearchResults) -> list[dict]:
    """Google Search grounding as the blocks of Anthropic's web search: one
    search per query Gemini ran; the pages (``groundingChunks``) are not
    tied to a query, so the first search lists them all."""
    if metadata is None:
        return []
    queries = [q for q in metadata.get("webSearchQueries") or () if isinstance(q, str) and q]
    pages: list[tuple[str, str | None]] = []
    for chunk in metadata.get("groundingChunks") or ():
        web = chunk.get("web") if isinstance(chunk, dict) else None
        if isinstance(web, dict) and isinstance(web.get("uri"), str) and web["uri"]:
            title = web.get("title")
            pages.append((web["uri"], title if isinstance(title, str) else None))
    if not queries and not pages:
        return []
    blocks: list[dict] = []
    for i, query in enumerate(queries or [""]):
        blocks += results.search(query, pages if i == 0 else [])
    return blocks


def _tool_id(part: dict, ids: IdFactory) -> str:
    """A fresh tool_use id carrying the part's thought signature."""
    return gemini_tool_id(ids("toolu_"), part.get("thoughtSignature"))


def _no_content(finish: str) -> UpstreamDataError:
    return UpstreamDataError(f"Gemini returned no content (finishReason {finish})")


# ---------------------------------------------------------------------------
# whole response
# ---------------------------------------------------------------------------


def convert_response(body: dict, model: ModelConfig, ids: IdFactory, warnings: list[str]) -> dict:
    """A whole ``generateContent`` body → an Anthropic message.

    Adjacent text (or thought) parts merge into one block: Gemini splits text
    at arbitrary points (e.g. where a thought signature sits).
    """
    if not isinstance(body, dict):
        raise UpstreamDataError("Gemini upstream returned a non-object body")
    _check_error(body)
    candidate = _first_candidate(body)
    if candidate is None:
        raise UpstreamDataError("Gemini returned no candidates")
    finish = candidate.get("finishReason") or ""
    content: list[dict] = []
    for part in _parts(candidate):
        call = part.get("functionCall")
        if isinstance(call, dict):
            content.append({"type": "tool_use", "id": _tool_id(part, ids), "name": call.get("name") or "",
                            "input": _args(call)})
            continue
        text = part.get("text")
        if not isinstance(text, str) or not text:
            continue
        kind = "thinking" if part.get("thought") is True else "text"
        if content and content[-1]["type"] == kind:
            content[-1][kind] += text
        elif kind == "thinking":
            content.append({"type": "thinking", "thinking": text, "signature": THINKING_SIGNATURE})
        else:
            content.append({"type": "text", "text": text})
    if not content and finish not in _NORMAL_FINISH:
        raise _no_content(finish)
    results = SearchResults(ids)
    content += _search_blocks(_grounding(candidate), results)
    # a tool call outranks MAX_TOKENS here, as the upstream finished the call
    tool_called = any(block["type"] == "tool_use" for block in content)
    stop = "tool_use" if tool_called else _stop_reason(finish)
    return message(ids("gemini_"), model.model_id, content, stop, results.usage(gemini_usage(body.get("usageMetadata"))))


# ---------------------------------------------------------------------------
# stream
# ---------------------------------------------------------------------------


class GeminiStreamTranslator(DecodingTranslator):
    """``streamGenerateContent?alt=sse`` chunks → Anthropic SSE frames.

    Each ``data:`` line is one GenerateContentResponse. Gemini has no end
    marker: the stream ends at EOF, and the message is closed then. A
    ``functionCall`` part always arrives whole, so it becomes one tool_use
    block with a single ``input_json_delta`` carrying all its arguments.
    Usage and finishReason usually come in the last chunk and are remembered
    until EOF; text after a finishReason is ignored.
    """

    def __init__(self, model_id: str, ids: IdFactory):
        super().__init__()
        self.emitter = MessageEmitter(model_id, ids)
        self._handled = False
        self._finish_reason = ""
        self._usage = None
        self._calls = 0
        self._ids = ids
        self._grounding: dict | None = None  # the latest groundingMetadata, written out at the end

    def _end(self, out: list[bytes]) -> None:
        if not self.done:
            out += self._finish()

    def _item(self, line: bytes, out: list[bytes]) -> None:
        payload = data_payload(line)
        if payload is None:
            return
        if payload == b"[DONE]":
            out += self._finish()
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            return
        if isinstance(chunk, dict):
            out += self._chunk(chunk)

    def _chunk(self, chunk: dict) -> list[bytes]:
        _check_error(chunk)
        self._handled = True
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        candidate = _first_candidate(chunk)
        if candidate is not None and _grounding(candidate) is not None:
            self._grounding = _grounding(candidate)
        if candidate is None or self._finish_reason:
            return []
        out: list[bytes] = []
        for part in _parts(candidate):
            call = part.get("functionCall")
            if isinstance(call, dict):
                key = self._calls
                self._calls += 1
                out += self.emitter.tool_start(key, _tool_id(part, self._ids), call.get("name") or "")
                out += self.emitter.tool_args(key, dumps(_args(call)))
                continue
            text = part.get("text")
            if isinstance(text, str) and text:
                out += self.emitter.thinking(text) if part.get("thought") is True else self.emitter.text(text)
        finish = candidate.get("finishReason")
        if isinstance(finish, str) and finish:
            self._finish_reason = finish
        return out

    def _finish(self) -> list[bytes]:
        if not self._handled:
            raise UpstreamDataError("empty stream")
        if not self.emitter.started and self._finish_reason not in _NORMAL_FINISH:
            raise _no_content(self._finish_reason)
        self.done = True
        out: list[bytes] = []
        results = SearchResults(self._ids)
        for block in _search_blocks(self._grounding, results):
            out += self.emitter.whole_block(block)
        return out + self.emitter.finish(_stop_reason(self._finish_reason), results.usage(gemini_usage(self._usage)))

