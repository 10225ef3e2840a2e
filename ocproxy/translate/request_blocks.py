"""Reading the parts of an Anthropic request that every non-chat translator needs.

The Responses and Gemini translators walk the same Anthropic structures
(system text, content blocks, tool results, images, sampling knobs); keeping
the reading rules (transform.md TR-2…TR-4, TR-12) in one place means both
upstreams see the conversation the same way. Pure functions, dicts in.
"""

from __future__ import annotations

from . import chat
from .usage import anthropic_usage


def system_text(req: dict) -> str:
    """TR-2, read the way the chat path reads it."""
    return chat.system_text(req.get("system"))


def blocks(content) -> list[dict]:
    """TR-3: a string is one text block; an array keeps its dict items; else nothing."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def text_of(content) -> str:
    """The text blocks of ``content`` joined with no separator."""
    return "".join(b.get("text") or "" for b in blocks(content) if b.get("type") == "text")


#: TR-4, read the way the chat path reads it.
tool_result_text = chat.tool_result_text


def tool_result_images(block: dict) -> list[dict]:
    """Image items inside a tool_result (Claude Code's Read tool returns
    screenshots this way); the multimodal upstreams can take them."""
    content = block.get("content")
    if not isinstance(content, list):
        return []
    return [i for i in content if isinstance(i, dict) and i.get("type") == "image"]


def image_source(block: dict) -> tuple[str, str, str] | None:
    """``("base64", media_type, data)`` or ``("url", media_type, url)``; None when unusable."""
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    media_type = source.get("media_type") or ""
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        return "base64", media_type or "image/png", source["data"]
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return "url", media_type, source["url"]
    return None


def image_url(block: dict) -> str | None:
    """A data URL for a base64 image, the URL itself for a url source (TR-32)."""
    src = image_source(block)
    if src is None:
        return None
    kind, media_type, value = src
    return f"data:{media_type};base64,{value}" if kind == "base64" else value


def tool_names_by_id(messages) -> dict[str, str]:
    """tool_use id → tool name over the assistant turns; Gemini's
    functionResponse is matched to its call by name, not by id."""
    names: dict[str, str] = {}
    for msg in messages or ():
        if not isinstance(msg, dict) or msg.get("role") != "assistant":
            continue
        for b in blocks(msg.get("content")):
            if b.get("type") == "tool_use" and isinstance(b.get("id"), str):
                names[b["id"]] = b.get("name") or ""
    return names


def thinking_disabled(req: dict) -> bool:
    thinking = req.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "disabled"


def thinking_requested(req: dict) -> bool:
    """The client asked for thinking (any ``thinking`` object not disabled)."""
    return isinstance(req.get("thinking"), dict) and not thinking_disabled(req)


def max_tokens(req: dict, model) -> int | None:
    """TR-12 steps 3 and 5: a configured max_tokens > 0 wins over the request's."""
    if model.max_tokens and model.max_tokens > 0:
        return int(model.max_tokens)
    value = req.get("max_tokens")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def temperature(req: dict, model) -> float | None:
    """TR-12 steps 1 and 4: a configured temperature > 0 wins over the request's."""
    if model.temperature and model.temperature > 0:
        return float(model.temperature)
    value = req.get("temperature")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def top_p(req: dict) -> float | None:
    value = req.get("top_p")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def cached_usage(prompt_tokens, output_tokens, cached_tokens=0) -> dict:
    """Anthropic usage for upstreams that count cached tokens *inside* the
    prompt (Responses ``input_tokens_details.cached_tokens``, Gemini
    ``cachedContentTokenCount``): that is TR-70's "reported apart" case with
    the cache part as hits, so the shared mapping moves it out of
    ``input_tokens`` and Claude Code never counts it twice (B11)."""
    return anthropic_usage(
        {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens, "prompt_cache_hit_tokens": cached_tokens}
    )
