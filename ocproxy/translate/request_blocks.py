"""Anthropic usage for upstreams that count cached tokens inside the prompt.

The request-reading helpers that lived here are in ``content``; this one
stays importable from here for the response translators that use it
(``responses_stream``, ``gemini_stream``).
"""

from __future__ import annotations

from .usage import anthropic_usage


def cached_usage(prompt_tokens, output_tokens, cached_tokens=0) -> dict:
    """Anthropic usage for upstreams that count cached tokens *inside* the
    prompt (Responses ``input_tokens_details.cached_tokens``, Gemini
    ``cachedContentTokenCount``): the cached part is passed as cache hits,
    so the shared mapping moves it out of ``input_tokens`` and Claude Code
    never counts it twice."""
    return anthropic_usage(
        {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens, "prompt_cache_hit_tokens": cached_tokens}
    )
