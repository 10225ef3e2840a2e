"""OpenAI-style usage → Anthropic usage (transform.md §4, TR-70/TR-71).

Claude Code sizes its context as input + cache_read + cache_creation, so a
cached token must be counted in exactly one of them; counting cache hits
inside ``input_tokens`` too made it auto-compact ~5× too early (B11).
Shared by the non-streaming converter and the stream translators.
"""

from __future__ import annotations


def _count(usage: dict, key: str) -> int:
    value = usage.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))


def anthropic_usage(openai_usage: dict | None) -> dict:
    """``prompt_tokens`` P, ``completion_tokens`` C and DeepSeek's
    ``prompt_cache_hit_tokens`` H / ``prompt_cache_miss_tokens`` M →
    ``input_tokens``/``output_tokens`` (always) plus the cache fields (only
    when > 0)."""
    usage = openai_usage if isinstance(openai_usage, dict) else {}
    prompt = _count(usage, "prompt_tokens")
    hit = _count(usage, "prompt_cache_hit_tokens")
    miss = _count(usage, "prompt_cache_miss_tokens")
    if hit == 0 and miss == 0:
        input_tokens, read, creation = prompt, 0, 0
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
