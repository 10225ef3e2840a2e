"""A whole Chat Completions answer → an Anthropic message.

Pure: dicts in, dicts out.
"""

from __future__ import annotations

import json
import logging
from ..config import ModelConfig
from ..errors import UpstreamDataError
from .sse import new_message_id, new_tool_id
from .usage import anthropic_usage
from .chat import _str

log = logging.getLogger(__name__)

# TR-63: Chat Completions finish_reason -> Anthropic stop_reason (anything else: end_turn).
# Shared with the stream translator.
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
            _str(p.get("text")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _tool_input(arguments, name: str) -> dict:
    """TR-62.3: a JSON object, else ``{}`` (the reference failed the whole
    response on invalid arguments)."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        log.warning("tool call %r: arguments are not valid JSON; using {}", name)
        return {}
    if not isinstance(parsed, dict):
        log.warning("tool call %r: arguments are not a JSON object; using {}", name)
        return {}
    return parsed


def convert_response(body: dict, model: ModelConfig) -> dict:
    """A non-streaming Chat Completions answer → an Anthropic message (§3).

    Raises ``UpstreamDataError`` when there is no usable choice, so the
    fallback loop tries the next model (TR-60).
    """
    if not isinstance(body, dict):
        raise UpstreamDataError("upstream response is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamDataError("upstream response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}

    content: list = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning})
    text = _message_text(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    tool_used = False
    tool_calls = message.get("tool_calls")
    for call in tool_calls if isinstance(tool_calls, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        name = _str(function.get("name"))
        content.append(
            {
                "type": "tool_use",
                "id": _str(call.get("id")) or new_tool_id(),
                "name": name,
                "input": _tool_input(function.get("arguments"), name),
            }
        )
        tool_used = True
    if not content:
        content.append({"type": "text", "text": ""})

    stop_reason = STOP_REASONS.get(_str(choice.get("finish_reason")), "end_turn")
    if tool_used and stop_reason == "end_turn":
        stop_reason = "tool_use"

    return {
        "id": _str(body.get("id")) or new_message_id(),
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": model.model_id,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage(body.get("usage")),
    }
