"""Upstream token counts → Anthropic usage, for every dialect, whole and
streamed.

Claude Code sizes its context as input + cache_read + cache_creation, so a
cached token must be counted in exactly one of them; counting cache hits
inside ``input_tokens`` too made it auto-compact about five times too early.
"""

from __future__ import annotations


def _count(usage: dict, key: str) -> int:
    value = usage.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))


def _cached_inside_prompt(usage: dict) -> int:
    """Cached prompt tokens counted inside ``prompt_tokens``: OpenAI's
    ``prompt_tokens_details.cached_tokens`` or Moonshot's top-level
    ``cached_tokens``."""
    details = usage.get("prompt_tokens_details")
    cached = _count(details, "cached_tokens") if isinstance(details, dict) else 0
    return cached or _count(usage, "cached_tokens")


def anthropic_usage(openai_usage: dict | None) -> dict:
    """``prompt_tokens`` P, ``completion_tokens`` C, the cached part of P
    (OpenAI/Moonshot) and DeepSeek's ``prompt_cache_hit_tokens`` H /
    ``prompt_cache_miss_tokens`` M → ``input_tokens``/``output_tokens``
    (always) plus the cache fields (only when > 0)."""
    usage = openai_usage if isinstance(openai_usage, dict) else {}
    prompt = _count(usage, "prompt_tokens")
    hit = _count(usage, "prompt_cache_hit_tokens")
    miss = _count(usage, "prompt_cache_miss_tokens")
    if hit == 0 and miss == 0:
        read = min(prompt, _cached_inside_prompt(usage))
        input_tokens, creation = prompt - read, 0
    elif hit + miss >= prompt:
        # DeepSeek splits the prompt into hit + miss; the miss part is
        # ordinary input billed at the normal rate, not cache creation.
        input_tokens, read, creation = miss, hit, 0
    else:
        # cache counts reported apart from the rest of the prompt
        input_tokens, read, creation = max(0, prompt - hit - miss), hit, miss
    out = {"input_tokens": input_tokens, "output_tokens": _count(usage, "completion_tokens")}
    if read > 0:
        out["cache_read_input_tokens"] = read
    if creation > 0:
        out["cache_creation_input_tokens"] = creation
    return out


def cached_usage(prompt_tokens, output_tokens, cached_tokens=0) -> dict:
    """Usage for upstreams that count cached tokens *inside* the prompt: the
    cached part is moved out of ``input_tokens`` into the cache-read count."""
    return anthropic_usage(
        {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens, "prompt_cache_hit_tokens": cached_tokens}
    )


def responses_usage(usage) -> dict:
    """Responses ``usage``; ``input_tokens`` includes the cached prompt."""
    if not isinstance(usage, dict):
        return cached_usage(0, 0)
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return cached_usage(usage.get("input_tokens"), usage.get("output_tokens"), cached)


def gemini_usage(meta) -> dict:
    """Gemini ``usageMetadata``; ``promptTokenCount`` includes the cached
    part, and thinking tokens are billed as output, so they count as output."""
    if not isinstance(meta, dict):
        return cached_usage(0, 0)
    output = 0
    for key in ("candidatesTokenCount", "thoughtsTokenCount"):
        value = meta.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            output += value
    return cached_usage(meta.get("promptTokenCount"), output, meta.get("cachedContentTokenCount"))
