"""Reading an Anthropic request: the one set of rules for "the text of these
blocks", "a tool result as text", "the system text", image sources, tool
names, how a turn splits for the upstreams and which sampling values go out.
The three request translators, token counting and the session id all read
through here, so every consumer sees a conversation the same way.

Inputs have passed ``ocproxy.request``'s checks: content is a string, a list
of objects or absent; a block's ``type`` and a text block's ``text`` are
strings or absent; a tool_result's ``content`` is a string, a list of objects
or absent. Pure functions, dicts in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import has_vision, output_limit
from .sse import dumps as compact_json

if TYPE_CHECKING:
    from ..config.types import ModelConfig
    from ..request import MessagesRequest


def as_str(value) -> str:
    """``value`` when it is a string, else ""."""
    return value if isinstance(value, str) else ""


def blocks(content) -> list[dict]:
    """A message's content as a list of blocks: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content or []


def text_of(content) -> str:
    """The text blocks of ``content`` joined with no separator."""
    return "".join(b.get("text") or "" for b in blocks(content) if b.get("type") == "text")


#: How Claude Code's billing attribution starts (``x-anthropic-billing-header:
#: cc_version=…; cc_entrypoint=cli; cch=…;``). Its hash changes every request,
#: so at the head of a prompt it defeats every upstream's prefix cache.
BILLING_PREFIX = "x-anthropic-billing-header:"


def is_billing_block(block) -> bool:
    """A system text block holding only Claude Code's billing attribution."""
    return (
        isinstance(block, dict)
        and block.get("type") == "text"
        and as_str(block.get("text")).lstrip().startswith(BILLING_PREFIX)
    )


def without_billing_line(text: str) -> str:
    """``text`` without a leading billing attribution line."""
    if not text.lstrip().startswith(BILLING_PREFIX):
        return text
    _, _, rest = text.lstrip().partition("\n")
    return rest.lstrip("\n")


def system_text(system) -> str:
    """The top-level ``system`` for a non-Anthropic model: the string, or its
    text blocks joined by a blank line (glued, the last sentence of one block
    would run into the first of the next); Claude Code's billing attribution
    is left out."""
    if isinstance(system, str):
        return without_billing_line(system)
    texts = (b.get("text") or "" for b in blocks(system) if b.get("type") == "text" and not is_billing_block(b))
    return "\n\n".join(t for t in texts if t)


def tool_result_text(block: dict, *, non_string_output_as_json: bool = True) -> str:
    """A tool_result as text: string content, else its text items, else the
    deprecated ``output`` field, else "". Images inside are not text.

    A non-string ``output`` goes to a model as its JSON text; counting for
    routing skips it, as the Go proxy's counter did
    (``non_string_output_as_json=False``)."""
    content = block.get("content")
    if content is not None:
        return text_of(content)
    output = block.get("output")
    if isinstance(output, str):
        return output
    if output is not None and non_string_output_as_json:
        return compact_json(output)
    return ""


def tool_result_images(block: dict, kinds: tuple[str, ...] = ("image",)) -> list[dict]:
    """Image items inside a tool_result (Claude Code's Read tool returns
    screenshots this way, and PDFs as ``document`` items when ``kinds``
    asks for them); the multimodal upstreams can take them."""
    content = block.get("content")
    if not isinstance(content, list):
        return []
    return [item for item in content if item.get("type") in kinds]


def image_source(block: dict, *, untyped_is_base64: bool = False) -> tuple[str, str, str] | None:
    """``("base64", media_type, data)`` or ``("url", media_type, url)`` for an
    image block; None when its source is neither. ``media_type`` may be "".

    The chat path has always read a source without ``type`` as base64
    (``untyped_is_base64=True``); the other paths want the type said."""
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    kind = source.get("type", "base64" if untyped_is_base64 else None)
    media_type = as_str(source.get("media_type"))
    if kind == "base64" and isinstance(source.get("data"), str):
        return "base64", media_type, source["data"]
    if kind == "url" and isinstance(source.get("url"), str):
        return "url", media_type, source["url"]
    return None


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def image_url(block: dict) -> str | None:
    """A data URL for a base64 image (PNG when the type is not said), the URL
    itself for a url source; None when unusable."""
    src = image_source(block)
    if src is None:
        return None
    kind, media_type, value = src
    return data_url(media_type or "image/png", value) if kind == "base64" else value


def arguments_json(tool_use: dict) -> str:
    """A tool_use's ``input`` as JSON text, ``{}`` when absent."""
    value = tool_use.get("input")
    return compact_json(value if value is not None else {})


def tool_names_by_id(messages: list[dict]) -> dict[str, str]:
    """tool_use id → tool name over the assistant turns (which calls a
    tool_result may answer; Gemini matches an answer to its call by name)."""
    names: dict[str, str] = {}
    for msg in messages:
        if msg.get("role") != "assistant":
            continue
        for b in blocks(msg.get("content")):
            if b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                names[b["id"]] = b.get("name") or ""
    return names


def user_turn(content, answerable: set[str]) -> tuple[list[dict], list[dict]]:
    """A user turn split for upstreams that carry tool results as their own
    items: ``(answers, rest)``.

    ``answers`` are the tool_results whose ``tool_use_id`` is in
    ``answerable``: they must directly follow the calls they answer, so they
    go first. ``rest`` is everything else as text and image blocks in block
    order: non-empty texts, images, documents, a result whose call is not in
    the history (compacted away) as text — the APIs reject an answer with no
    call — and the images and documents tool results carry (screenshots,
    PDFs), which a text answer cannot hold.
    """
    answers: list[dict] = []
    rest: list[dict] = []
    for b in blocks(content):
        kind = b.get("type")
        if (kind == "text" and b.get("text")) or kind in ("image", "document"):
            rest.append(b)
        elif kind == "tool_result":
            call_id = b.get("tool_use_id") or ""
            if call_id in answerable:
                answers.append(b)
            else:
                text = f"[Tool result for {call_id or 'unknown call'}] {tool_result_text(b)}"
                rest.append({"type": "text", "text": text})
            rest.extend(tool_result_images(b, ("image", "document")))
    return answers, rest


def assistant_turn(content) -> list[dict]:
    """The blocks of an assistant turn an upstream is sent back: non-empty
    texts and tool_use calls, in order. Thinking is left out: replaying it
    needs the upstream's own signature, which never reached the client."""
    return [
        b for b in blocks(content) if (b.get("type") == "text" and b.get("text")) or b.get("type") == "tool_use"
    ]


def tool_choice(req: MessagesRequest, tool_names: set[str]) -> tuple[str, str | None] | None:
    """The client's ``tool_choice`` as ``(type, name)``: ``auto``, ``any`` or
    ``none`` with no name, or ``tool`` naming one of ``tool_names``; None
    when absent or naming a tool not sent."""
    choice = req.tool_choice
    if choice is None:
        return None
    kind = choice.get("type")
    if kind in ("auto", "any", "none"):
        return kind, None
    if kind == "tool" and choice.get("name") in tool_names:
        return kind, choice["name"]
    return None


def first_user_text(messages: list[dict]) -> str:
    """The text of the first user message; for a block list, every block's
    ``text`` string whatever its type (the session id hashes this, and must
    stay what it was for conversations already under way)."""
    for msg in messages:
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            return "".join(b["text"] for b in content or () if isinstance(b.get("text"), str))
    return ""


def reads_images(model: ModelConfig) -> bool:
    """``vision: true`` in the config, or the catalog says the model reads images."""
    return model.vision or has_vision(model.provider, model.model_id)


def max_tokens(req: MessagesRequest, model: ModelConfig) -> int | None:
    """The output limit to send: the client's, capped by a configured
    ``max_tokens`` and by the model's real output limit (the catalog's);
    the cap alone when the client sent none; None sends none."""
    cap = int(model.max_tokens) if model.max_tokens and model.max_tokens > 0 else None
    wanted = req.max_tokens if req.max_tokens is not None and req.max_tokens > 0 else None
    value = cap if wanted is None else min(wanted, cap) if cap else wanted
    limit = output_limit(model.provider, model.model_id)
    if value is not None and limit:
        value = min(value, limit)
    return value


def capped_by_setting(req: MessagesRequest, model: ModelConfig) -> bool:
    """The configured ``max_tokens`` is what limits this reply (it is below
    what the client asked for), so a reply cut there was cut by the config."""
    value = max_tokens(req, model)
    return bool(model.max_tokens and model.max_tokens > 0 and value == model.max_tokens
                and (req.max_tokens is None or req.max_tokens > value))


def temperature(req: MessagesRequest, model: ModelConfig) -> float | None:
    """A configured temperature wins over the client's; None sends none."""
    if model.temperature and model.temperature > 0:
        return float(model.temperature)
    return req.temperature
