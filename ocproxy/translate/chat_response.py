"""A whole Chat Completions answer → an Anthropic message.

Pure: dicts in, dicts out.
"""

from __future__ import annotations

from ..config.types import ModelConfig
from ..errors import UpstreamDataError
from .content import as_str
from .ids import IdFactory
from .message import message, tool_input
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

    Raises ``UpstreamDataError`` when there is no usable choice, so the
    fallback loop tries the next model.
    """
    if not isinstance(body, dict):
        raise UpstreamDataError("upstream response is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamDataError("upstream response has no choices")
    choice = choices[0]
    reply = choice.get("message")
    if not isinstance(reply, dict):
        reply = {}

    content: list = []
    reasoning = reply.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning})
    text = _message_text(reply.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    tool_calls = reply.get("tool_calls")
    for call in tool_calls if isinstance(tool_calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        name = as_str(function.get("name"))
        content.append(
            {
                "type": "tool_use",
                "id": as_str(call.get("id")) or ids("toolu_"),
                "name": name,
                "input": tool_input(function.get("arguments"), name, warnings),
            }
        )

    return message(
        as_str(body.get("id")) or ids("msg_"),
        model.model_id,
        content,
        STOP_REASONS.get(as_str(choice.get("finish_reason")), "end_turn"),
        anthropic_usage(body.get("usage")),
    )
