"""A whole Chat Completions answer → an Anthropic message.

Pure: dicts in, dicts out.
"""

from __future__ import annotations

from ..config.types import ModelConfig
from ..errors import UpstreamDataError
from .content import as_str
from .ids import IdFactory
from .message import error_text, message, tool_input
from .think_tags import THINKING, split_whole, starts_inside_reasoning
from .usage import anthropic_usage

#: Chat Completions finish_reason -> Anthropic stop_reason (anything else:
#: end_turn). Shared with the stream translator.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "tool_use": "tool_use",
    "content_filter": "end_turn",
}


#: Where upstreams put a delta's reasoning text: DeepSeek, Kimi and GLM
#: say ``reasoning_content``, OpenRouter-style upstreams ``reasoning``.
REASONING_KEYS = ("reasoning_content", "reasoning")


def reasoning_text(part: dict) -> str:
    """The reasoning of a delta or message: the first key that has text (an
    upstream that fills both with the same text is read once)."""
    for key in REASONING_KEYS:
        value = part.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _message_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            as_str(p.get("text")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def convert_response(body: dict, model: ModelConfig, ids: IdFactory, warnings: list[str]) -> dict:
    """A non-streaming Chat Completions answer → an Anthropic message.

    Raises ``UpstreamDataError`` when there is no usable choice or the
    upstream reports a failure, so the fallback loop tries the next model.
    """
    if not isinstance(body, dict):
        raise UpstreamDataError("upstream response is not a JSON object")
    if body.get("error"):
        raise UpstreamDataError("upstream error: " + error_text(body["error"]))
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamDataError("upstream response has no choices")
    choice = choices[0]
    if choice.get("finish_reason") == "error":
        raise UpstreamDataError('upstream answer ended with finish_reason "error"')
    reply = choice.get("message")
    if not isinstance(reply, dict):
        reply = {}

    content: list = []
    reasoning = reasoning_text(reply)
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning})
    # reasoning in a field of its own: the text is the answer
    starts_inside = starts_inside_reasoning(model.model_id) and not reasoning
    for kind, piece in split_whole(_message_text(reply.get("content")), starts_inside=starts_inside):
        if content and content[-1]["type"] == kind:
            content[-1][kind] += piece
        elif kind == THINKING:
            content.append({"type": "thinking", "thinking": piece})
        else:
            content.append({"type": "text", "text": piece})
    tool_calls = reply.get("tool_calls")
    for call in tool_calls if isinstance(tool_calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        name = as_str(function.get("name"))
        if not name:
            warnings.append("tool call without a name dropped")
            continue
        content.append(
            {
                "type": "tool_use",
                "id": as_str(call.get("id")) or ids("toolu_"),
                "name": name,
                "input": tool_input(function.get("arguments"), name, warnings),
            }
        )

    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = choice.get("usage")  # Moonshot puts it on the choice
    return message(
        as_str(body.get("id")) or ids("msg_"),
        model.model_id,
        content,
        STOP_REASONS.get(as_str(choice.get("finish_reason")), "end_turn"),
        anthropic_usage(usage),
    )
