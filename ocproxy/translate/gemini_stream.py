"""Gemini ``generateContent`` answers → Anthropic messages, whole and streamed.

Pure: dicts and bytes in, dicts / SSE frames out.
"""

from __future__ import annotations

import json
from ..config import ModelConfig
from ..errors import UpstreamDataError
from . import request_blocks as rb
from . import sse
from .gemini import _is_number

# finishReason values that mean "the model answered"; any other reason with
# no content is a failure worth falling back on (SAFETY, RECITATION,
# MALFORMED_FUNCTION_CALL, …) rather than an empty reply to the agent.
_NORMAL_FINISH = {"", "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}

# ---------------------------------------------------------------------------
# whole response
# ---------------------------------------------------------------------------


def usage_of(meta) -> dict:
    """usageMetadata → Anthropic usage. ``promptTokenCount`` includes the
    cached part (moved to ``cache_read_input_tokens``, TR-70); thinking
    tokens are billed as output, so they count as output."""
    if not isinstance(meta, dict):
        return rb.cached_usage(0, 0)
    output = 0
    for key in ("candidatesTokenCount", "thoughtsTokenCount"):
        if _is_number(meta.get(key)):
            output += meta[key]
    return rb.cached_usage(meta.get("promptTokenCount"), output, meta.get("cachedContentTokenCount"))


def _stop_reason(finish: str) -> str:
    return "max_tokens" if finish == "MAX_TOKENS" else "end_turn"


def _error_message(body: dict) -> str | None:
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    status = error.get("status") or error.get("code") or "error"
    return f"Gemini upstream error {status}: {error.get('message') or 'no message'}"


def _candidate(body: dict) -> dict:
    """``candidates[0]``, or UpstreamDataError naming why there is none."""
    message = _error_message(body)
    if message:
        raise UpstreamDataError(message)
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    feedback = body.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise UpstreamDataError(f"Gemini returned no candidates (prompt blocked: {reason})")
    raise UpstreamDataError("Gemini returned no candidates")


def _parts(candidate: dict) -> list[dict]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def convert_response(body: dict, model: ModelConfig) -> dict:
    """A whole ``generateContent`` body → an Anthropic message.

    Adjacent text (or thought) parts merge into one block: Gemini splits text
    at arbitrary points (e.g. where a thought signature sits).
    """
    if not isinstance(body, dict):
        raise UpstreamDataError("Gemini upstream returned a non-object body")
    candidate = _candidate(body)
    finish = candidate.get("finishReason") or ""
    content: list[dict] = []
    tool_called = False
    for part in _parts(candidate):
        call = part.get("functionCall")
        if isinstance(call, dict):
            tool_called = True
            args = call.get("args")
            content.append(
                {
                    "type": "tool_use",
                    "id": sse.new_tool_id(),
                    "name": call.get("name") or "",
                    "input": args if isinstance(args, dict) else {},
                }
            )
            continue
        text = part.get("text")
        if not isinstance(text, str) or not text:
            continue
        kind, field = ("thinking", "thinking") if part.get("thought") is True else ("text", "text")
        if content and content[-1]["type"] == kind:
            content[-1][field] += text
        elif kind == "thinking":
            content.append({"type": "thinking", "thinking": text, "signature": sse.THINKING_SIGNATURE})
        else:
            content.append({"type": "text", "text": text})
    if not content:
        if finish not in _NORMAL_FINISH:
            raise UpstreamDataError(f"Gemini returned no content (finishReason {finish})")
        content.append({"type": "text", "text": ""})
    return {
        "id": "gemini_" + sse.unique_suffix(),
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model.model_id,
        "stop_reason": "tool_use" if tool_called else _stop_reason(finish),
        "stop_sequence": None,
        "usage": usage_of(body.get("usageMetadata")),
    }


# ---------------------------------------------------------------------------
# stream
# ---------------------------------------------------------------------------


class GeminiStreamTranslator(sse.LineTranslator):
    """``streamGenerateContent?alt=sse`` chunks → Anthropic SSE frames.

    Each ``data:`` line is one GenerateContentResponse. Gemini has no end
    marker: the stream ends at EOF, and the message is closed then (ST-49,
    with blocks closed before ``message_delta``). A ``functionCall`` part
    always arrives whole, so it becomes one tool_use block with a single
    ``input_json_delta`` carrying all its arguments. Usage and finishReason
    usually come in the last chunk and are remembered until EOF; text after
    a finishReason is ignored (ST-49).
    """

    def __init__(self, model_id: str):
        super().__init__(model_id)
        self._handled = False
        self._finish_reason = ""
        self._usage = None
        self._calls = 0

    def _end_of_stream(self) -> list[bytes]:
        return self._finish()

    def _line(self, line: bytes) -> list[bytes]:
        payload = sse.data_payload(line)
        if payload is None:
            return []
        if payload == b"[DONE]":
            return self._finish()
        try:
            chunk = json.loads(payload)
        except ValueError:
            return []
        if not isinstance(chunk, dict):
            return []
        return self._chunk(chunk)

    def _chunk(self, chunk: dict) -> list[bytes]:
        message = _error_message(chunk)
        if message:
            raise UpstreamDataError(message)
        self._handled = True
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        candidates = chunk.get("candidates")
        if not (isinstance(candidates, list) and candidates and isinstance(candidates[0], dict)):
            feedback = chunk.get("promptFeedback")
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if reason:
                raise UpstreamDataError(f"Gemini returned no candidates (prompt blocked: {reason})")
            return []
        if self._finish_reason:
            return []
        candidate = candidates[0]
        out: list[bytes] = []
        for part in _parts(candidate):
            call = part.get("functionCall")
            if isinstance(call, dict):
                key = self._calls
                self._calls += 1
                args = call.get("args")
                out += self.emitter.tool_start(key, None, call.get("name") or "")
                out += self.emitter.tool_args(key, sse.dumps(args if isinstance(args, dict) else {}))
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
            raise UpstreamDataError(f"Gemini returned no content (finishReason {self._finish_reason})")
        self.done = True
        return self.emitter.finish(_stop_reason(self._finish_reason), usage_of(self._usage))
