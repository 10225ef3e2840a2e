"""Anthropic Messages ⇄ OpenAI Chat Completions, whole bodies (transform.md §2, §3).

``build_request`` turns the client's parsed request into the upstream body
for one attempt; ``convert_response`` turns a non-streaming upstream answer
back into an Anthropic message. Both work on plain dicts and serialise
nothing by hand: every string reaches the upstream through a JSON encoder
(TR-90, seed bug B9).

The model-specific quirks (DeepSeek reasoning/cache rules, Kimi's
temperature and ``reasoning_content`` placeholders, OpenAI o-series effort)
all live here because they are facts about the upstream chat APIs, not
about routing.

The output shares nested values (tool schemas, thinking config) with the
input; nothing in the input is mutated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..config import ModelConfig
from .sse import dumps
from .tools import chat_tools

log = logging.getLogger(__name__)

_EPHEMERAL = {"type": "ephemeral"}

# ---------------------------------------------------------------------------
# Reading the Anthropic request (§1)


def _blocks(content) -> list:
    """TR-3: a string is one text block; a list gives its dict blocks;
    anything else gives none."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _str(value) -> str:
    return value if isinstance(value, str) else ""


def _text_of(blocks: list) -> str:
    return "".join(_str(b.get("text")) for b in blocks if b.get("type") == "text")


def system_text(system) -> str:
    """TR-2: the string, or the text blocks concatenated without separator."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return _text_of([b for b in system if isinstance(b, dict)])
    return dumps(system)  # reference behaviour for odd values


def tool_result_text(block: dict) -> str:
    """TR-4: string content, else its text items, else the deprecated
    ``output``, else empty. Images inside are dropped on the chat path."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _text_of([b for b in content if isinstance(b, dict)])
    output = block.get("output")
    if isinstance(output, str):
        return output
    if output is not None:
        return dumps(output)
    return ""


def _is_ephemeral(block: dict) -> bool:
    cc = block.get("cache_control")
    return isinstance(cc, dict) and cc.get("type") == "ephemeral"


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _plain(value):
    """Config mappings may be read-only proxies; the encoder wants dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# §2.2 thinking and reasoning effort


def effort_of(budget: int) -> str:
    if budget <= 2048:
        return "low"
    if budget <= 8192:
        return "medium"
    if budget <= 32768:
        return "high"
    return "max"


def has_thinking(messages: list) -> bool:
    """Some assistant turn carries reasoning: a thinking block (even empty) or
    a tool_use with a non-empty ``thinking`` field (how Claude Code attaches
    reasoning to tool calls)."""
    for msg in messages:
        if msg.get("role") != "assistant":
            continue
        for block in _blocks(msg.get("content")):
            kind = block.get("type")
            if kind == "thinking":
                return True
            if kind == "tool_use" and _str(block.get("thinking")):
                return True
    return False


def _thinking_decision(req: dict, messages: list, model: ModelConfig, thinking_history: bool):
    """TR-20: the first matching row decides ``(thinking, reasoning_effort)``;
    ``None`` means the key is not sent."""
    model_id = model.model_id
    deepseek = model_id.startswith("deepseek-")
    openai_reasoning = model_id.startswith(("o1-", "o3-"))
    cfg_thinking = _plain(model.thinking) if model.thinking else None
    cfg_effort = model.reasoning_effort or ""
    req_thinking = req.get("thinking") if isinstance(req.get("thinking"), dict) else None
    req_disabled = req_thinking is not None and req_thinking.get("type") == "disabled"
    may_think = deepseek or cfg_thinking is not None
    may_effort = openai_reasoning or deepseek or bool(cfg_effort)
    has_assistant = any(m.get("role") == "assistant" for m in messages)
    default_effort = cfg_effort or "high"

    def default_effort_for(thinking):
        if not may_effort:
            return None
        if deepseek and isinstance(thinking, dict) and thinking.get("type") == "disabled":
            return None
        return default_effort

    # row 1
    if req_disabled:
        return (req_thinking if may_think else None), None
    # row 2: DeepSeek 400s when earlier assistant turns lack reasoning_content
    if deepseek and has_assistant and not thinking_history:
        return {"type": "disabled"}, None
    # row 3
    if req_thinking is not None:
        budget = _number(req_thinking.get("budget_tokens")) or 0
        effort = effort_of(budget) if may_effort and budget > 0 else None
        return (req_thinking if may_think else None), effort
    # row 4
    if thinking_history:
        thinking = (cfg_thinking if cfg_thinking is not None else {"type": "enabled"}) if may_think else None
        return thinking, default_effort_for(thinking)
    # row 5
    if cfg_thinking is not None:
        return cfg_thinking, default_effort_for(cfg_thinking)
    # row 6
    if cfg_effort:
        return ({"type": "enabled"} if may_think else None), cfg_effort
    return None, None


# ---------------------------------------------------------------------------
# §2.3 messages


def _system_reminder(msg: dict, top_system: str, deepseek: bool):
    """TR-31: in-conversation system messages. DeepSeek hoists system
    messages to the front, which ruins its prefix cache, so for it they
    become user reminders in place (or vanish when empty/duplicate)."""
    text = _text_of(_blocks(msg.get("content")))
    if not deepseek:
        return {"role": "system", "content": text}
    if not text:
        return None
    top = top_system.strip()
    if top and text.strip() in top:
        return None
    return {"role": "user", "content": "<system-reminder>\n" + text + "\n</system-reminder>"}


def _image_part(block: dict):
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    if source.get("type") == "url" and _str(source.get("url")):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    data = _str(source.get("data"))
    media_type = _str(source.get("media_type"))
    if source.get("type", "base64") == "base64" and data and media_type:
        return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}
    return None


def _user_messages(msg: dict, model: ModelConfig, deepseek: bool) -> list:
    """TR-32: tool results first (OpenAI wants them right after the
    assistant's tool_calls), then at most one user message."""
    out: list = []
    texts: list[str] = []
    parts: list = []
    placeholder = False
    other = False
    cached = False
    for block in _blocks(msg.get("content")):
        kind = block.get("type")
        if kind == "tool_result":
            tool_msg = {"role": "tool", "content": tool_result_text(block), "tool_call_id": _str(block.get("tool_use_id"))}
            if deepseek and _is_ephemeral(block):
                tool_msg["cache_control"] = dict(_EPHEMERAL)
            out.append(tool_msg)
        elif kind == "text":
            other = True
            texts.append(_str(block.get("text")))
            cached = cached or _is_ephemeral(block)
        elif kind == "image":
            other = True
            cached = cached or _is_ephemeral(block)
            part = _image_part(block) if model.vision else None
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
        content: object = ([{"type": "text", "text": text}] if text else []) + parts
    else:
        content = text
    user = {"role": "user", "content": content}
    if deepseek and cached:
        user["cache_control"] = dict(_EPHEMERAL)
    out.append(user)
    return out


def _arguments(value) -> str:
    if value is None:
        return "{}"
    try:
        return dumps(value)
    except (TypeError, ValueError):
        return "{}"


def _assistant_message(msg: dict, model: ModelConfig, deepseek: bool, thinking_history: bool) -> dict:
    """TR-33: one message; reasoning goes back as ``reasoning_content``
    (with the placeholders DeepSeek and Kimi insist on); signatures and
    redacted thinking are not forwarded."""
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list = []
    cached = False
    for block in _blocks(msg.get("content")):
        kind = block.get("type")
        if kind == "text":
            texts.append(_str(block.get("text")))
        elif kind == "thinking":
            reasoning.append(_str(block.get("thinking")))
        elif kind == "tool_use":
            reasoning.append(_str(block.get("thinking")))
            tool_calls.append(
                {
                    "id": _str(block.get("id")),
                    "type": "function",
                    "function": {"name": _str(block.get("name")), "arguments": _arguments(block.get("input"))},
                }
            )
        else:
            continue
        cached = cached or _is_ephemeral(block)
    out: dict = {"role": "assistant", "content": "".join(texts)}
    reasoning_content = "".join(reasoning)
    if reasoning_content:
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


def _messages(req: dict, messages: list, model: ModelConfig, thinking_history: bool) -> list:
    deepseek = model.model_id.startswith("deepseek-")
    out: list = []
    system = req.get("system")
    top_system = system_text(system)
    if top_system:
        sys_msg = {"role": "system", "content": top_system}
        if deepseek and isinstance(system, list):
            for block in system:
                if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("cache_control"), dict):
                    kind = block["cache_control"].get("type")
                    if kind is not None:
                        sys_msg["cache_control"] = {"type": kind}
                    break
        out.append(sys_msg)
    for msg in messages:
        role = msg.get("role")
        if role == "system":
            reminder = _system_reminder(msg, top_system, deepseek)
            if reminder is not None:
                out.append(reminder)
        elif role == "user":
            out.extend(_user_messages(msg, model, deepseek))
        elif role == "assistant":
            out.append(_assistant_message(msg, model, deepseek, thinking_history))
        elif isinstance(role, str):
            out.append({"role": role, "content": _text_of(_blocks(msg.get("content")))})
    return out


# ---------------------------------------------------------------------------
# public API


def build_request(req: dict, model: ModelConfig, stream: bool) -> dict:
    """The Chat Completions body for one attempt of ``req`` on ``model``.

    Only the fields of TR-1 are read; ``tool_choice``, ``stop_sequences``,
    ``top_k``, ``metadata`` are deliberately not sent (TR-16).
    """
    raw_messages = req.get("messages")
    messages = [m for m in raw_messages if isinstance(m, dict)] if isinstance(raw_messages, list) else []
    thinking_history = has_thinking(messages)

    body: dict = {"model": model.model_id, "messages": _messages(req, messages, model, thinking_history)}
    body["stream"] = bool(stream)
    if stream:
        body["stream_options"] = {"include_usage": True}

    # TR-12, in its order
    temperature = _number(req.get("temperature"))
    top_p = _number(req.get("top_p"))
    max_tokens = _number(req.get("max_tokens"))
    if max_tokens is not None and max_tokens <= 0:
        max_tokens = None
    if model.temperature and model.temperature > 0:
        temperature = model.temperature
    if model.max_tokens and model.max_tokens > 0:
        max_tokens = model.max_tokens
    # TR-13: kimi-k2.7-code rejects any other temperature
    if temperature is not None and model.model_id == "kimi-k2.7-code":
        temperature = 1.0
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    if top_p is not None:
        body["top_p"] = top_p

    thinking, effort = _thinking_decision(req, messages, model, thinking_history)
    if thinking is not None:
        body["thinking"] = thinking
    if effort is not None:
        body["reasoning_effort"] = effort

    tools = chat_tools(req.get("tools"))
    if tools:
        body["tools"] = tools
    return body
