"""Anthropic Messages → Google Gemini ``generateContent`` request bodies (the
``gemini`` endpoint; the answer's way back is ``gemini_stream``).

OpenCode Zen serves its Gemini models through Google's own API shape. The Go
original flattened tool calls to text and injected the system prompt as a fake
user/model exchange; Claude Code cannot work that way. Here tool calls travel
as ``functionCall`` / ``functionResponse`` parts, the system prompt as
``systemInstruction``, and tool schemas are reduced to the OpenAPI subset
Gemini accepts (``gemini_schema``).

Pure: a parsed request in, a dict out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import content, documents, server_tools, thinking
from .gemini_schema import gemini_schema
from .reasoning_state import gemini_signature
from .tools import function_specs

if TYPE_CHECKING:
    from ..config.types import ModelConfig
    from ..request import MessagesRequest

#: URL suffixes after ``<gemini_base_url>/<model_id>``.
GEMINI_GENERATE = ":generateContent"
GEMINI_STREAM = ":streamGenerateContent?alt=sse"

#: Google's documented stand-in for a missing thought signature. Gemini 3
#: rejects replayed ``functionCall`` parts without one (400 "Function call is
#: missing a thought_signature"). A call the proxy got from Gemini goes back
#: with its real signature (carried in its tool_use id, ``reasoning_state``);
#: only calls from history the proxy never saw get this value.
SKIP_SIGNATURE = "skip_thought_signature_validator"

#: Gemini caps ``stopSequences`` at five entries.
MAX_STOP_SEQUENCES = 5

_TOOL_MODE = {"auto": "AUTO", "any": "ANY", "none": "NONE"}


def _needs_signature(model_id: str) -> bool:
    """Signatures are enforced from Gemini 3 on; older models might treat the
    sentinel as a corrupt signature, so they get none."""
    return not model_id.startswith(("gemini-1", "gemini-2"))


def _image_part(block: dict) -> dict | None:
    src = content.image_source(block)
    if src is None:
        return None
    kind, media_type, value = src
    if kind == "base64":
        return {"inlineData": {"mimeType": media_type or "image/png", "data": value}}
    file_data = {"fileUri": value}
    if media_type:
        file_data["mimeType"] = media_type
    return {"fileData": file_data}


def _document_part(block: dict) -> dict:
    """A PDF inline (or by URL) as ``application/pdf``; a text document
    as text."""
    src = documents.document_source(block)
    if src is not None and src[0] == "pdf":
        return {"inlineData": {"mimeType": documents.PDF, "data": src[1]}}
    if src is not None and src[0] == "url":
        return {"fileData": {"mimeType": documents.PDF, "fileUri": src[1]}}
    return {"text": documents.as_text(block)}


def _user_parts(turn, names: dict[str, str]) -> list[dict]:
    """Function responses first — they must answer the model turn directly
    before them — then text and images in block order. A response is
    matched to its call by name, so only calls with a name can be answered."""
    answers, rest = content.user_turn(turn, {call_id for call_id, name in names.items() if name})
    parts = [
        {"functionResponse": {"name": names[b.get("tool_use_id") or ""], "response": {"content": content.tool_result_text(b)}}}
        for b in answers
    ]
    for b in rest:
        kind = b.get("type")
        part = {"text": b["text"]} if kind == "text" else _document_part(b) if kind == "document" else _image_part(b)
        if part:
            parts.append(part)
    return parts


def _model_parts(turn, signed: bool) -> list[dict]:
    """Text and function calls; each call with the signature Gemini gave
    it, none for a call Gemini left unsigned (parallel calls after the
    first), the placeholder for a call from elsewhere."""
    parts: list[dict] = []
    for b in content.assistant_turn(turn):
        if b.get("type") == "text":
            parts.append({"text": b["text"]})
            continue
        args = b.get("input")
        part = {"functionCall": {"name": b.get("name") or "", "args": args if isinstance(args, dict) else {}}}
        seen, signature = gemini_signature(b.get("id"))
        first = not any("functionCall" in p for p in parts)
        if signature:
            part["thoughtSignature"] = signature
        elif signed and (first or not seen):
            # the first call of a step must be signed; one that came unsigned
            # was made by another model
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts


def _contents(messages: list[dict], model_id: str) -> list[dict]:
    """Gemini wants user/model turns alternating and no empty turn, so
    consecutive same-role turns are merged and empty ones dropped."""
    names = content.tool_names_by_id(messages)
    signed = _needs_signature(model_id)
    contents: list[dict] = []

    def add(role: str, parts: list[dict]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for msg in messages:
        role = msg.get("role")
        if role == "assistant":
            add("model", _model_parts(msg.get("content"), signed))
        elif role == "user":
            add("user", _user_parts(msg.get("content"), names))
        elif role == "system":
            # Mid-conversation reminders stay where they are, as user text:
            # Gemini has no system role inside contents.
            text = content.text_of(msg.get("content"))
            if text:
                add("user", [{"text": text}])
    return contents


def _declarations(req: MessagesRequest) -> list[dict]:
    out = []
    for name, description, parameters in function_specs(req.tools):
        decl: dict = {"name": name}
        if description:
            decl["description"] = description
        params = gemini_schema(parameters)
        if params.get("properties"):
            decl["parameters"] = params  # a no-argument function declares none
        out.append(decl)
    return out


def _tool_config(req: MessagesRequest, names: set[str]) -> dict | None:
    choice = content.tool_choice(req, names)
    if choice is None:
        return None
    kind, name = choice
    if kind == "tool":
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return {"functionCallingConfig": {"mode": _TOOL_MODE[kind]}}


def _generation_config(req: MessagesRequest, model: ModelConfig) -> dict:
    config: dict = {}
    limit = content.max_tokens(req, model)
    if limit is not None:
        config["maxOutputTokens"] = limit
    temp = content.temperature(req, model)
    if temp is not None:
        config["temperature"] = temp
    if req.top_p is not None:
        config["topP"] = req.top_p
    stops = [s for s in req.stop_sequences if s]
    if stops:
        config["stopSequences"] = stops[:MAX_STOP_SEQUENCES]
    thinking_config = thinking.gemini_thinking_config(thinking.request_intent(req, model), model.model_id)
    if thinking_config:
        config["thinkingConfig"] = thinking_config
    return config


def build_request(req: MessagesRequest, model: ModelConfig, stream: bool) -> dict:
    """The ``generateContent`` body for one attempt.

    ``stream`` does not change the body — Gemini selects streaming by URL
    (``GEMINI_STREAM``) — it is taken so every translator has one signature.
    """
    body: dict = {}
    system = content.system_text(req.system)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    body["contents"] = _contents(req.messages, model.model_id)
    declarations = _declarations(req)
    tools = [{"functionDeclarations": declarations}] if declarations else []
    tools += server_tools.gemini_tools(req.tools)  # Google Search grounding
    if tools:
        body["tools"] = tools
    if declarations:
        tool_config = _tool_config(req, {d["name"] for d in declarations})
        if tool_config:
            body["toolConfig"] = tool_config
    config = _generation_config(req, model)
    if config:
        body["generationConfig"] = config
    return body
