"""What the chat, Responses and Gemini answers have in common once they are
read: the Anthropic message they become, the stop reason when a tool was
called, tool arguments as an object, and the text of an upstream error."""

from __future__ import annotations

import json

from .sse import dumps


def final_stop(stop_reason: str, tool_used: bool) -> str:
    """The stop reason the content bears out: a reply that called a tool and
    otherwise ended normally stops for the tool, whatever the upstream called
    it; one that says it stopped for a tool but called none simply ended
    (Claude Code would wait for a tool result that never comes)."""
    if tool_used and stop_reason == "end_turn":
        return "tool_use"
    if not tool_used and stop_reason == "tool_use":
        return "end_turn"
    return stop_reason


def tool_input(arguments, name: str, warnings: list[str]) -> dict:
    """Tool-call arguments as a JSON object; ``{}`` (with a warning when
    there was text) for anything else, rather than failing the reply."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        warnings.append(f"tool call {name!r}: arguments are not valid JSON; using {{}}")
        return {}
    if not isinstance(parsed, dict):
        warnings.append(f"tool call {name!r}: arguments are not a JSON object; using {{}}")
        return {}
    return parsed


def error_text(error, codes: tuple[str, ...] = ()) -> str:
    """``code: message`` of an upstream error object (the first of ``codes``
    it has); the whole object when it has no message. Not cut here: the
    shell cuts it once any key in it is redacted."""
    if not isinstance(error, dict):
        return str(error)
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = dumps(error)
    code = next((error[key] for key in codes if error.get(key)), None)
    return f"{code}: {message}" if code else message


def message(message_id: str, model: str, content: list[dict], stop_reason: str, usage: dict) -> dict:
    """The whole Anthropic message; an empty reply is one empty text block."""
    tool_used = any(block["type"] == "tool_use" for block in content)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content or [{"type": "text", "text": ""}],
        "model": model,
        "stop_reason": final_stop(stop_reason, tool_used),
        "stop_sequence": None,
        "usage": usage,
    }
