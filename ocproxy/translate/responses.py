"""Anthropic Messages → OpenAI Responses API request bodies (the
``responses`` endpoint; the answer's way back is ``responses_stream``).

OpenCode Zen serves its GPT-5 family only through the Responses API. The Go
original flattened tool calls to text there, which leaves Claude Code — an
agent that lives on tool calls — unable to work with those models. Here
``tool_use`` becomes a ``function_call`` item and ``tool_result`` a
``function_call_output`` item.

Pure: a parsed request in, a dict out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import content, documents, server_tools, thinking
from .reasoning_state import responses_reasoning_item
from .tools import function_specs

if TYPE_CHECKING:
    from ..config.types import ModelConfig
    from ..request import MessagesRequest

#: The Responses API rejects ``max_output_tokens`` below this value; Claude
#: Code sometimes probes with ``max_tokens: 1``.
MIN_OUTPUT_TOKENS = 16

# Reasoning models reject sampling parameters ("Unsupported parameter:
# 'temperature' is not supported with this model"). Every GPT model OpenCode
# Zen routes here is one, so sampling is only sent to other model ids (a user
# may point an ``endpoint: responses`` override at e.g. gpt-4.1).
_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4", "codex")

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def _is_reasoning_model(model_id: str) -> bool:
    return model_id.startswith(_REASONING_PREFIXES)


def _message(role: str, parts: list[dict]) -> dict:
    return {"type": "message", "role": role, "content": parts}


def _document_part(block: dict) -> dict:
    """A PDF as an ``input_file`` (inline data URL, or its URL); a text
    document as text."""
    src = documents.document_source(block)
    if src is not None and src[0] == "pdf":
        return {"type": "input_file", "filename": documents.filename(block),
                "file_data": content.data_url(documents.PDF, src[1])}
    if src is not None and src[0] == "url":
        return {"type": "input_file", "file_url": src[1]}
    return {"type": "input_text", "text": documents.as_text(block)}


def _input_part(block: dict) -> dict | None:
    """A text, image or document block as an ``input_*`` part; None for an
    unusable image."""
    if block.get("type") == "text":
        return {"type": "input_text", "text": block["text"]}
    if block.get("type") == "document":
        return _document_part(block)
    url = content.image_url(block)
    return {"type": "input_image", "image_url": url, "detail": "auto"} if url else None


def _user_items(turn, call_ids: set[str]) -> list[dict]:
    """Tool outputs, then one user message with the rest (Claude Code puts
    its follow-up text after the results in the same turn)."""
    answers, rest = content.user_turn(turn, call_ids)
    items = [
        {"type": "function_call_output", "call_id": b.get("tool_use_id") or "", "output": content.tool_result_text(b)}
        for b in answers
    ]
    parts = [p for p in map(_input_part, rest) if p]
    if parts:
        items.append(_message("user", parts))
    return items


def _assistant_items(turn) -> list[dict]:
    """Text runs become assistant messages, tool_use blocks function_call
    items, and thinking blocks that carry a Responses reasoning item's
    encrypted state that reasoning item again, in block order."""
    items: list[dict] = []
    parts: list[dict] = []
    for b in content.blocks(turn):
        reasoning = responses_reasoning_item(b) if b.get("type") == "thinking" else None
        if b.get("type") == "text" and b.get("text"):
            parts.append({"type": "output_text", "text": b["text"]})
            continue
        if reasoning is None and b.get("type") != "tool_use":
            continue
        if parts:
            items.append(_message("assistant", parts))
            parts = []
        if reasoning is not None:
            items.append(reasoning)
            continue
        call_id = b.get("id") or ""
        name = b.get("name") or ""
        items.append({"type": "function_call", "call_id": call_id, "name": name, "arguments": content.arguments_json(b)})
    if parts:
        items.append(_message("assistant", parts))
    return items


def _input(messages: list[dict]) -> list[dict]:
    call_ids = set(content.tool_names_by_id(messages))
    items: list[dict] = []
    for msg in messages:
        role = msg.get("role")
        if role == "assistant":
            items.extend(_assistant_items(msg.get("content")))
        elif role == "user":
            items.extend(_user_items(msg.get("content"), call_ids))
        elif role == "system":
            # Claude Code's mid-conversation reminders: a developer message at
            # the same position keeps their authority and the prompt prefix.
            text = content.text_of(msg.get("content"))
            if text:
                items.append(_message("developer", [{"type": "input_text", "text": text}]))
    return items


def _tools(req: MessagesRequest) -> list[dict]:
    out = []
    for name, description, parameters in function_specs(req.tools):
        entry = {"type": "function", "name": name}
        if description:
            entry["description"] = description
        entry["parameters"] = parameters
        # Strict mode would demand additionalProperties:false and every
        # property required — Claude Code's schemas are neither.
        entry["strict"] = False
        out.append(entry)
    return out + server_tools.responses_tools(req.tools)


def _forces_search(req: MessagesRequest, tools: list[dict]) -> bool:
    """Claude Code's WebSearch forces its one server tool (``tool_choice``
    naming it); with no function tool besides, "required" says the same to
    the Responses API."""
    choice = req.tool_choice or {}
    forced = choice.get("type") == "tool" and choice.get("name") in {
        t.get("name") for t in req.tools if server_tools.kind(t)
    }
    return forced and all(t["type"] != "function" for t in tools)


def build_request(req: MessagesRequest, model: ModelConfig, stream: bool) -> dict:
    """The Responses API body for one attempt.

    The system text goes to ``instructions`` (the API's own slot for it);
    ``store`` is false because the proxy resends the whole conversation each
    turn; sampling parameters are omitted for reasoning models (see
    ``_REASONING_PREFIXES``); ``reasoning`` is decided in ``thinking``;
    reasoning models are asked for ``reasoning.encrypted_content`` to replay.
    """
    body: dict = {"model": model.model_id}
    if stream:
        body["stream"] = True
    system = content.system_text(req.system)
    if system:
        body["instructions"] = system
    body["input"] = _input(req.messages)

    tools = _tools(req)
    if tools:
        body["tools"] = tools
        choice = content.tool_choice(req, {t["name"] for t in tools if t["type"] == "function"})
        if choice is not None:
            kind, name = choice
            body["tool_choice"] = {"type": "function", "name": name} if kind == "tool" else _TOOL_CHOICE[kind]
        elif _forces_search(req, tools):
            body["tool_choice"] = "required"  # the only tool is the search: run it
        if req.tool_choice is not None and req.tool_choice.get("disable_parallel_tool_use") is True:
            body["parallel_tool_calls"] = False

    limit = content.max_tokens(req, model)
    if limit is not None:
        body["max_output_tokens"] = max(limit, MIN_OUTPUT_TOKENS)

    if not _is_reasoning_model(model.model_id):
        temp = content.temperature(req, model)
        if temp is not None:
            body["temperature"] = temp
        if req.top_p is not None:
            body["top_p"] = req.top_p

    reasoning = thinking.responses_reasoning(thinking.request_intent(req, model))
    if reasoning is not None:
        body["reasoning"] = reasoning

    body["store"] = False
    include = []
    if _is_reasoning_model(model.model_id):
        # store is false, so the reasoning is replayed from its encrypted
        # form (carried in the thinking block's signature) on the next turn
        include.append("reasoning.encrypted_content")
    if any(t["type"] == "web_search" for t in tools):
        include.append("web_search_call.action.sources")  # the pages each search found
    if include:
        body["include"] = include
    return body
