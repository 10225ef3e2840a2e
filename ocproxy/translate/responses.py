"""Anthropic Messages ⇄ OpenAI Responses API (the ``responses`` endpoint).

OpenCode Zen serves its GPT-5 family only through the Responses API. The Go
original flattened tool calls to text there (transform.md §6, streaming.md
ST-48), which leaves Claude Code — an agent that lives on tool calls — unable
to work with those models. This module carries tool calls both ways:
``tool_use`` ⇄ ``function_call`` items and ``tool_result`` ⇄
``function_call_output`` items, in requests, whole responses and streams.

Pure: dicts in, dicts / SSE frames out.
"""

from __future__ import annotations


from ..config import ModelConfig
from . import request_blocks as rb
from . import sse
from .tools import named_tools, sanitize_schema

#: The Responses API rejects ``max_output_tokens`` below this value; Claude
#: Code sometimes probes with ``max_tokens: 1``.
MIN_OUTPUT_TOKENS = 16

# Reasoning models reject sampling parameters ("Unsupported parameter:
# 'temperature' is not supported with this model"). Every GPT model OpenCode
# Zen routes here is one, so sampling is only sent to other model ids (a user
# may point an ``endpoint: responses`` override at e.g. gpt-4.1).
_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4", "codex")

# The config speaks Anthropic/DeepSeek effort words; the Responses API knows
# none/minimal/low/medium/high/xhigh. "max" has no portable equivalent.
_EFFORT = {"max": "high"}

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def _is_reasoning_model(model_id: str) -> bool:
    return model_id.startswith(_REASONING_PREFIXES)


# ---------------------------------------------------------------------------
# request
# ---------------------------------------------------------------------------


def _message(role: str, parts: list[dict]) -> dict:
    return {"type": "message", "role": role, "content": parts}


def _input_image(block: dict) -> dict | None:
    url = rb.image_url(block)
    return {"type": "input_image", "image_url": url, "detail": "auto"} if url else None


def _user_items(content, call_ids) -> list[dict]:
    """Tool outputs first, then one user message with the rest: a
    ``function_call_output`` must follow the assistant's calls directly, and
    Claude Code puts its follow-up text after the results in the same turn.
    A result whose call is not in the history (compacted away) goes as text:
    the API rejects an output with no matching call."""
    outputs: list[dict] = []
    parts: list[dict] = []
    for b in rb.blocks(content):
        kind = b.get("type")
        if kind == "text" and b.get("text"):
            parts.append({"type": "input_text", "text": b["text"]})
        elif kind == "image":
            part = _input_image(b)
            if part:
                parts.append(part)
        elif kind == "tool_result":
            call_id = b.get("tool_use_id") or ""
            if call_id in call_ids:
                outputs.append({"type": "function_call_output", "call_id": call_id, "output": rb.tool_result_text(b)})
            else:
                text = f"[Tool result for {call_id or 'unknown call'}] {rb.tool_result_text(b)}"
                parts.append({"type": "input_text", "text": text})
            # Images a tool returned (screenshots) ride along in the user
            # message: a plain-text output cannot hold them.
            for img in rb.tool_result_images(b):
                part = _input_image(img)
                if part:
                    parts.append(part)
    if parts:
        outputs.append(_message("user", parts))
    return outputs


def _assistant_items(content) -> list[dict]:
    """Text runs become assistant messages, tool_use blocks function_call
    items, in block order. Thinking is dropped: a Responses reasoning item
    needs the upstream's own encrypted id, which never reached the client."""
    items: list[dict] = []
    parts: list[dict] = []
    for b in rb.blocks(content):
        kind = b.get("type")
        if kind == "text" and b.get("text"):
            parts.append({"type": "output_text", "text": b["text"]})
        elif kind == "tool_use":
            if parts:
                items.append(_message("assistant", parts))
                parts = []
            args = b.get("input")
            items.append(
                {
                    "type": "function_call",
                    "call_id": b.get("id") or "",
                    "name": b.get("name") or "",
                    "arguments": sse.dumps(args if args is not None else {}),
                }
            )
    if parts:
        items.append(_message("assistant", parts))
    return items


def _input(messages) -> list[dict]:
    call_ids = rb.tool_names_by_id(messages)
    items: list[dict] = []
    for msg in messages or ():
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role == "assistant":
            items.extend(_assistant_items(msg.get("content")))
        elif role == "user":
            items.extend(_user_items(msg.get("content"), call_ids))
        elif role == "system":
            # Claude Code's mid-conversation reminders: a developer message at
            # the same position keeps their authority and the prompt prefix.
            text = rb.text_of(msg.get("content"))
            if text:
                items.append(_message("developer", [{"type": "input_text", "text": text}]))
    return items


def _tools(tools) -> list[dict]:
    out = []
    for name, tool in named_tools(tools):
        entry = {"type": "function", "name": name}
        if tool.get("description"):
            entry["description"] = tool["description"]
        entry["parameters"] = sanitize_schema(tool.get("input_schema"))
        # Strict mode would demand additionalProperties:false and every
        # property required — Claude Code's schemas are neither.
        entry["strict"] = False
        out.append(entry)
    return out


def _tool_choice(choice, tool_names: set[str]):
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind in _TOOL_CHOICE:
        return _TOOL_CHOICE[kind]
    if kind == "tool" and choice.get("name") in tool_names:
        return {"type": "function", "name": choice["name"]}
    return None


def build_request(req: dict, model: ModelConfig, stream: bool) -> dict:
    """The Responses API body for one attempt.

    Decisions where the references are silent: the system text goes to
    ``instructions`` (the API's own slot for it); ``store`` is false because
    the proxy resends the whole conversation each turn; sampling parameters
    are omitted for reasoning models (see ``_REASONING_PREFIXES``); the
    configured effort asks for ``summary: "auto"`` so reasoning comes back as
    thinking blocks.
    """
    body: dict = {"model": model.model_id}
    if stream:
        body["stream"] = True
    system = rb.system_text(req)
    if system:
        body["instructions"] = system
    body["input"] = _input(req.get("messages"))

    tools = _tools(req.get("tools"))
    if tools:
        body["tools"] = tools
        choice = _tool_choice(req.get("tool_choice"), {t["name"] for t in tools})
        if choice is not None:
            body["tool_choice"] = choice
        tc = req.get("tool_choice")
        if isinstance(tc, dict) and tc.get("disable_parallel_tool_use") is True:
            body["parallel_tool_calls"] = False

    limit = rb.max_tokens(req, model)
    if limit is not None:
        body["max_output_tokens"] = max(limit, MIN_OUTPUT_TOKENS)

    if not _is_reasoning_model(model.model_id):
        temp = rb.temperature(req, model)
        if temp is not None:
            body["temperature"] = temp
        top_p = rb.top_p(req)
        if top_p is not None:
            body["top_p"] = top_p

    if model.reasoning_effort and not rb.thinking_disabled(req):
        effort = _EFFORT.get(model.reasoning_effort, model.reasoning_effort)
        body["reasoning"] = {"effort": effort, "summary": "auto"}

    body["store"] = False
    return body
