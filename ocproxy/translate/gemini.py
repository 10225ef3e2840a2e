"""Anthropic Messages ⇄ Google Gemini ``generateContent`` (the ``gemini`` endpoint).

OpenCode Zen serves its Gemini models through Google's own API shape. The Go
original flattened tool calls to text and injected the system prompt as a fake
user/model exchange (transform.md §7); Claude Code cannot work that way. Here
tool calls travel as ``functionCall`` / ``functionResponse`` parts, the system
prompt as ``systemInstruction``, thinking as ``thought`` parts, and tool
schemas are reduced to the OpenAPI subset Gemini accepts.

Pure: dicts in, dicts / SSE frames out.
"""

from __future__ import annotations


from ..config import ModelConfig
from . import request_blocks as rb
from .tools import named_tools, sanitize_schema

#: URL suffixes after ``<gemini_base_url>/<model_id>`` (routing.md §3).
GEMINI_GENERATE = ":generateContent"
GEMINI_STREAM = ":streamGenerateContent?alt=sse"

#: Google's documented stand-in for a missing thought signature. Gemini 3
#: rejects replayed ``functionCall`` parts without one (400 "Function call is
#: missing a thought_signature"); the real signatures never reach Claude Code,
#: so every replayed call carries this value instead.
SKIP_SIGNATURE = "skip_thought_signature_validator"

#: Gemini caps ``stopSequences`` at five entries.
MAX_STOP_SEQUENCES = 5

_TOOL_MODE = {"auto": "AUTO", "any": "ANY", "none": "NONE"}
_THINKING_LEVEL = {"max": "high", "xhigh": "high", "none": "minimal"}


def _needs_signature(model_id: str) -> bool:
    """Signatures are enforced from Gemini 3 on; older models might treat the
    sentinel as a corrupt signature, so they get none."""
    return not model_id.startswith(("gemini-1", "gemini-2"))


# ---------------------------------------------------------------------------
# tool schemas: JSON Schema → Gemini's OpenAPI subset
# ---------------------------------------------------------------------------

_STRING_FORMATS = {"enum", "date-time"}
_NUMBER_FORMATS = {"float", "double", "int32", "int64"}
_COUNT_KEYS = ("minItems", "maxItems")
_BOUND_KEYS = ("minimum", "maximum")
_MAX_DEPTH = 24


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _resolve_ref(ref: str, root: dict):
    """A local ``#/…`` pointer into the root schema (``$defs``, ``definitions``)."""
    if not ref.startswith("#/"):
        return None
    node = root
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node if isinstance(node, dict) else None


def _merge_all_of(node: dict) -> dict:
    """``allOf`` folded into one schema: properties and required united,
    the first value winning for every other key."""
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for sub in node.get("allOf") or ():
        if not isinstance(sub, dict):
            continue
        for key, value in sub.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**value, **(merged.get("properties") or {})}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _convert(node, root: dict, refs: frozenset, depth: int) -> dict:
    if not isinstance(node, dict):
        node = {}  # `true` / junk: any value
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _resolve_ref(ref, root)
        if target is not None and (ref in refs or depth >= _MAX_DEPTH):
            # A cycle (a tree node referring to itself): keep the outer shape
            # only, so a recursive object stays an object, just free-form.
            target = {k: target[k] for k in ("type", "description") if k in target}
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**(target or {}), **rest}
        refs = refs | {ref}
    if isinstance(node.get("allOf"), list):
        node = _merge_all_of(node)

    out: dict = {}
    nullable = node.get("nullable") is True

    raw_type = node.get("type")
    if isinstance(raw_type, str):
        types = [raw_type]
    elif isinstance(raw_type, list):
        types = [t for t in raw_type if isinstance(t, str)]
    else:
        types = []
    if "null" in types:
        nullable = True
        types = [t for t in types if t != "null"]
    type_ = types[0] if len(types) == 1 else None

    variants = node.get("anyOf") if isinstance(node.get("anyOf"), list) else node.get("oneOf")
    if len(types) > 1:
        variants = [{"type": t} for t in types]
    if isinstance(variants, list):
        kept = []
        for v in variants:
            if isinstance(v, dict) and v.get("type") == "null":
                nullable = True
            else:
                kept.append(v)
        converted = [_convert(v, root, refs, depth + 1) for v in kept] if depth < _MAX_DEPTH else []
        if len(converted) == 1 and type_ is None:
            out.update(converted[0])  # "X or null" is just a nullable X
            type_ = out.get("type")
        elif converted:
            out["anyOf"] = converted

    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]

    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if isinstance(enum, list):
        if None in enum:
            nullable = True
            enum = [e for e in enum if e is not None]
        # Gemini takes enums of strings only; a typed non-string enum is
        # left as its plain type.
        if enum and all(isinstance(e, str) for e in enum) and type_ in (None, "string"):
            out["enum"] = enum
            type_ = "string"

    props = node.get("properties")
    if isinstance(props, dict) and props and depth < _MAX_DEPTH:
        out["properties"] = {
            name: _convert(sub, root, refs, depth + 1) for name, sub in props.items() if isinstance(name, str)
        }
        required = [r for r in node.get("required") or () if isinstance(r, str) and r in out["properties"]]
        if required:
            out["required"] = list(dict.fromkeys(required))
        type_ = type_ or "object"

    items = node.get("items")
    if isinstance(items, list):
        items = items[0] if items else None
    if type_ == "array" or (type_ is None and isinstance(items, dict)):
        type_ = "array"
        if isinstance(items, dict) or "items" not in out:  # keep a merged variant's items
            # Gemini needs ``items`` on every array; untyped items read as strings.
            out["items"] = _convert(items, root, refs, depth + 1) if depth < _MAX_DEPTH else {"type": "string"}

    if type_ is None and "anyOf" not in out:
        # Gemini wants a type on every schema; an untyped JSON Schema
        # ("any value") is closest to a free string.
        type_ = "string"
    if type_ is not None:
        out = {"type": type_, **{k: v for k, v in out.items() if k != "type"}}

    fmt = node.get("format")
    if isinstance(fmt, str) and "enum" not in out and (
        (type_ == "string" and fmt in _STRING_FORMATS) or (type_ in ("number", "integer") and fmt in _NUMBER_FORMATS)
    ):
        out["format"] = fmt
    if type_ == "array":
        for key in _COUNT_KEYS:
            if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
                out[key] = node[key]
    if type_ in ("number", "integer"):
        for key in _BOUND_KEYS:
            if _is_number(node.get(key)):
                out[key] = node[key]
    if nullable:
        out["nullable"] = True
    return out


def gemini_schema(schema) -> dict:
    """A tool's sanitised JSON Schema → Gemini's OpenAPI-subset ``Schema``.

    Gemini rejects what it does not know (``additionalProperties``,
    ``$schema``, ``$ref``/``$defs``, ``default``, ``examples``, ``pattern``,
    unknown ``format`` values, type arrays) with a 400 for the whole request,
    so this keeps a small allow-list: local ``$ref``s are inlined (cycles cut),
    ``allOf`` merged, ``oneOf`` read as ``anyOf``, ``["T","null"]`` and
    null variants become ``nullable``, ``const`` a one-value enum. Objects
    with no properties lose the empty ``properties`` (Gemini: "should be
    non-empty for OBJECT type").
    """
    root = schema if isinstance(schema, dict) else {}
    return _convert(root, root, frozenset(), 0)


# ---------------------------------------------------------------------------
# request
# ---------------------------------------------------------------------------


def _image_part(block: dict) -> dict | None:
    src = rb.image_source(block)
    if src is None:
        return None
    kind, media_type, value = src
    if kind == "base64":
        return {"inlineData": {"mimeType": media_type, "data": value}}
    file_data = {"fileUri": value}
    if media_type:
        file_data["mimeType"] = media_type
    return {"fileData": file_data}


def _user_parts(content, names: dict[str, str]) -> list[dict]:
    """Function responses first — they must answer the model turn directly
    before them — then text and images in block order."""
    responses: list[dict] = []
    rest: list[dict] = []
    for b in rb.blocks(content):
        kind = b.get("type")
        if kind == "text" and b.get("text"):
            rest.append({"text": b["text"]})
        elif kind == "image":
            part = _image_part(b)
            if part:
                rest.append(part)
        elif kind == "tool_result":
            text = rb.tool_result_text(b)
            name = names.get(b.get("tool_use_id") or "")
            if name:
                responses.append({"functionResponse": {"name": name, "response": {"content": text}}})
            else:
                # No call to answer (history compacted away): a
                # functionResponse without its functionCall is a 400, the
                # text still informs the model.
                rest.append({"text": f"[Tool result for {b.get('tool_use_id') or 'unknown call'}] {text}"})
            for img in rb.tool_result_images(b):
                part = _image_part(img)
                if part:
                    rest.append(part)
    return responses + rest


def _model_parts(content, signed: bool) -> list[dict]:
    """Text and function calls; thinking is dropped (a thought part without
    Gemini's own signature is noise to the model)."""
    parts: list[dict] = []
    for b in rb.blocks(content):
        kind = b.get("type")
        if kind == "text" and b.get("text"):
            parts.append({"text": b["text"]})
        elif kind == "tool_use":
            args = b.get("input")
            part = {"functionCall": {"name": b.get("name") or "", "args": args if isinstance(args, dict) else {}}}
            if signed:
                part["thoughtSignature"] = SKIP_SIGNATURE
            parts.append(part)
    return parts


def _contents(messages, model_id: str) -> list[dict]:
    """Gemini wants user/model turns alternating and no empty turn, so
    consecutive same-role turns are merged and empty ones dropped."""
    names = rb.tool_names_by_id(messages)
    signed = _needs_signature(model_id)
    contents: list[dict] = []

    def add(role: str, parts: list[dict]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for msg in messages or ():
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role == "assistant":
            add("model", _model_parts(msg.get("content"), signed))
        elif role == "user":
            add("user", _user_parts(msg.get("content"), names))
        elif role == "system":
            # Mid-conversation reminders stay where they are, as user text:
            # Gemini has no system role inside contents.
            text = rb.text_of(msg.get("content"))
            if text:
                add("user", [{"text": text}])
    return contents


def _declarations(tools) -> list[dict]:
    out = []
    for name, tool in named_tools(tools):
        decl: dict = {"name": name}
        if tool.get("description"):
            decl["description"] = tool["description"]
        params = gemini_schema(sanitize_schema(tool.get("input_schema")))
        if params.get("properties"):
            decl["parameters"] = params  # a no-argument function declares none
        out.append(decl)
    return out


def _tool_config(choice, names: set[str]) -> dict | None:
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind in _TOOL_MODE:
        return {"functionCallingConfig": {"mode": _TOOL_MODE[kind]}}
    if kind == "tool" and choice.get("name") in names:
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["name"]]}}
    return None


def _generation_config(req: dict, model: ModelConfig) -> dict:
    config: dict = {}
    limit = rb.max_tokens(req, model)
    if limit is not None:
        config["maxOutputTokens"] = limit
    temp = rb.temperature(req, model)
    if temp is not None:
        config["temperature"] = temp
    top_p = rb.top_p(req)
    if top_p is not None:
        config["topP"] = top_p
    stops = [s for s in req.get("stop_sequences") or () if isinstance(s, str) and s]
    if stops:
        config["stopSequences"] = stops[:MAX_STOP_SEQUENCES]
    if not rb.thinking_disabled(req):
        thinking: dict = {}
        if rb.thinking_requested(req) or model.thinking:
            thinking["includeThoughts"] = True
        if model.reasoning_effort:
            thinking["thinkingLevel"] = _THINKING_LEVEL.get(model.reasoning_effort, model.reasoning_effort)
        if thinking:
            config["thinkingConfig"] = thinking
    return config


def build_request(req: dict, model: ModelConfig, stream: bool) -> dict:
    """The ``generateContent`` body for one attempt.

    ``stream`` does not change the body — Gemini selects streaming by URL
    (``GEMINI_STREAM``) — it is taken so every translator has one signature.
    """
    body: dict = {}
    system = rb.system_text(req)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    body["contents"] = _contents(req.get("messages"), model.model_id)
    declarations = _declarations(req.get("tools"))
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(req.get("tool_choice"), {d["name"] for d in declarations})
        if tool_config:
            body["toolConfig"] = tool_config
    config = _generation_config(req, model)
    if config:
        body["generationConfig"] = config
    return body
