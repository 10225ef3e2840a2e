"""Anthropic Messages → OpenAI Chat Completions request bodies.

``build_request`` turns the client's parsed request into the upstream body
for one attempt (the answer's way back is ``chat_response``). Every string
reaches the upstream through a JSON encoder, never by hand.

The model-specific quirks (DeepSeek cache rules, Kimi's temperature and
``reasoning_content`` placeholders) live here (thinking and effort in
``thinking``) because they are facts about the upstream chat APIs, not
about routing.

The output shares nested values (tool schemas) with the
input; nothing in the input is mutated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import content, documents, thinking
from .content import as_str, blocks, text_of
from .think_tags import inline, reasoning_inline
from .thinking import effort_of as effort_of  # noqa: F401 - the name callers knew
from .tools import chat_tools

if TYPE_CHECKING:
    from ..config.types import ModelConfig
    from ..request import MessagesRequest


_EPHEMERAL = {"type": "ephemeral"}

# ---------------------------------------------------------------------------
# Reading the Anthropic request


def _is_ephemeral(block: dict) -> bool:
    cc = block.get("cache_control")
    return isinstance(cc, dict) and cc.get("type") == "ephemeral"


# ---------------------------------------------------------------------------
# thinking and reasoning effort (decided in ``thinking``)


def has_thinking(messages: list[dict]) -> bool:
    """Some assistant turn carries reasoning: a thinking block (even empty) or
    a tool_use with a non-empty ``thinking`` field (how Claude Code attaches
    reasoning to tool calls)."""
    for msg in messages:
        if msg.get("role") != "assistant":
            continue
        for block in blocks(msg.get("content")):
            kind = block.get("type")
            if kind == "thinking":
                return True
            if kind == "tool_use" and as_str(block.get("thinking")):
                return True
    return False


# ---------------------------------------------------------------------------
# messages


def _system_reminder(msg: dict, top_system: str, deepseek: bool):
    """In-conversation system messages. DeepSeek hoists system
    messages to the front, which ruins its prefix cache, so for it they
    become user reminders in place (or vanish when empty/duplicate)."""
    text = text_of(msg.get("content"))
    if not deepseek:
        return {"role": "system", "content": text}
    if not text:
        return None
    top = top_system.strip()
    if top and text.strip() in top:
        return None
    return {"role": "user", "content": "<system-reminder>\n" + text + "\n</system-reminder>"}


def _image_part(block: dict):
    """An ``image_url`` part, or None (the image then shows as "[Image]"):
    a base64 image needs its data and media type said."""
    src = content.image_source(block, untyped_is_base64=True)
    if src is None:
        return None
    kind, media_type, value = src
    if kind == "url":
        url = value
    elif value and media_type:
        url = content.data_url(media_type, value)
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}} if url else None


def _user_messages(msg: dict, model: ModelConfig, deepseek: bool) -> list:
    """Tool results first (OpenAI wants them right after the
    assistant's tool_calls), then at most one user message."""
    out: list = []
    texts: list[str] = []
    parts: list = []
    placeholder = False
    other = False
    cached = False
    for block in blocks(msg.get("content")):
        kind = block.get("type")
        if kind == "tool_result":
            tool_msg = {
                "role": "tool",
                "content": content.tool_result_text(block) + documents.in_tool_result(block),
                "tool_call_id": as_str(block.get("tool_use_id")),
            }
            if deepseek and _is_ephemeral(block):
                tool_msg["cache_control"] = dict(_EPHEMERAL)
            out.append(tool_msg)
        elif kind == "text":
            other = True
            texts.append(block.get("text") or "")
            cached = cached or _is_ephemeral(block)
        elif kind == "document":
            other = True
            cached = cached or _is_ephemeral(block)
            part = documents.chat_part(block) if model.pdf else None
            if part is None:  # a text-only model reads the PDF's extracted text
                texts.append(("\n\n" if texts else "") + documents.as_text(block) + "\n\n")
            else:
                parts.append(part)
        elif kind == "image":
            other = True
            cached = cached or _is_ephemeral(block)
            part = _image_part(block) if content.reads_images(model) else None
            if part is None:
                placeholder = True
            else:
                parts.append(part)
    if not other:
        return out
    text = "".join(texts)
    if placeholder:
        text = text + "\n\n[Image]" if text else "[Image]"
    if parts:
        parts_or_text: object = ([{"type": "text", "text": text}] if text else []) + parts
    else:
        parts_or_text = text
    user = {"role": "user", "content": parts_or_text}
    if deepseek and cached:
        user["cache_control"] = dict(_EPHEMERAL)
    out.append(user)
    return out


def _assistant_message(msg: dict, model: ModelConfig, deepseek: bool, thinking_history: bool) -> dict:
    """One message; reasoning goes back as ``reasoning_content`` (with the
    placeholders DeepSeek and Kimi insist on), or for MiniMax in think tags
    at the start of the content; signatures and redacted thinking are not
    forwarded."""
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list = []
    cached = False
    for block in blocks(msg.get("content")):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(as_str(block.get("thinking")))
        elif kind == "tool_use":
            reasoning.append(as_str(block.get("thinking")))
            tool_calls.append(
                {
                    "id": as_str(block.get("id")),
                    "type": "function",
                    "function": {"name": as_str(block.get("name")), "arguments": content.arguments_json(block)},
                }
            )
        else:
            continue
        cached = cached or _is_ephemeral(block)
    out: dict = {"role": "assistant", "content": "".join(texts)}
    reasoning_content = "".join(reasoning)
    if reasoning_content and reasoning_inline(model.model_id):
        out["content"] = inline(reasoning_content, out["content"])
    elif reasoning_content:
        # DeepSeek and Kimi reject a thinking-mode tool call without it
        out["reasoning_content"] = reasoning_content
    elif deepseek and thinking_history:
        out["reasoning_content"] = " "
    elif tool_calls and model.model_id.startswith("kimi-"):
        out["reasoning_content"] = " "  # Moonshot treats "" as missing
    if tool_calls:
        out["tool_calls"] = tool_calls
    if deepseek and cached:
        out["cache_control"] = dict(_EPHEMERAL)
    return out


def _messages(req: MessagesRequest, model: ModelConfig, thinking_history: bool) -> list:
    deepseek = model.model_id.startswith("deepseek-")
    out: list = []
    top_system = content.system_text(req.system)
    if top_system:
        sys_msg = {"role": "system", "content": top_system}
        if deepseek and isinstance(req.system, list):
            # DeepSeek caches the prompt prefix the first text block marks.
            for block in req.system:
                if block.get("type") == "text" and isinstance(block.get("cache_control"), dict):
                    kind = block["cache_control"].get("type")
                    if kind is not None:
                        sys_msg["cache_control"] = {"type": kind}
                    break
        out.append(sys_msg)
    for msg in req.messages:
        role = msg.get("role")
        if role == "system":
            reminder = _system_reminder(msg, top_system, deepseek)
            if reminder is not None:
                out.append(reminder)
        elif role == "user":
            out.extend(_user_messages(msg, model, deepseek))
        elif role == "assistant":
            out.append(_assistant_message(msg, model, deepseek, thinking_history))
        elif role is not None:
            out.append({"role": role, "content": text_of(msg.get("content"))})
    return out


# ---------------------------------------------------------------------------
# public API


def build_request(req: MessagesRequest, model: ModelConfig, stream: bool) -> dict:
    """The Chat Completions body for one attempt of ``req`` on ``model``.

    ``tool_choice``, ``stop_sequences``, ``top_k`` and ``metadata`` are
    deliberately not sent: the Go proxy never sent them, and several chat
    upstreams reject what they do not know.
    """
    thinking_history = has_thinking(req.messages)

    body: dict = {"model": model.model_id, "messages": _messages(req, model, thinking_history)}
    body["stream"] = bool(stream)
    if stream:
        body["stream_options"] = {"include_usage": True}

    temperature = content.temperature(req, model)
    max_tokens = content.max_tokens(req, model)
    # kimi-k2.7-code rejects any other temperature
    if temperature is not None and model.model_id == "kimi-k2.7-code":
        temperature = 1.0
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p

    answered_before = any(m.get("role") == "assistant" for m in req.messages)
    body.update(thinking.chat_params(thinking.request_intent(req, model), model.model_id,
                                     thought_before=thinking_history, answered_before=answered_before))

    tools = chat_tools(req.tools)
    if tools:
        body["tools"] = tools
    return body
