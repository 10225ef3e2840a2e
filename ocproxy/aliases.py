"""``claude-``-prefixed names for catalog models, and the names people read.

Claude Code's model picker keeps only gateway models whose id starts with
``claude`` or ``anthropic`` (its ``/v1/models`` discovery filter), so every
catalog model gets an alias it will show: ``claude-go-kimi-k2.6``,
``claude-zen-gpt-5.5``, ``claude-zen-opus-4-8`` (a Zen Claude id loses its
own ``claude-``). An alias names one model on one provider; routing sends it
there (see :func:`alias_target`). Pure: plain values in, plain values out.
"""

from __future__ import annotations

import re

from ocproxy.catalog import CATALOG, GO, ZEN, lookup, normalise_provider

_TAGS = {GO: "go", ZEN: "zen"}
_BY_TAG = {tag: provider for provider, tag in _TAGS.items()}
_PROVIDER_TITLES = {GO: "OpenCode Go", ZEN: "OpenCode Zen"}

# Spellings a plain capitalisation gets wrong.
_BRANDS = {"glm": "GLM", "gpt": "GPT", "minimax": "MiniMax", "deepseek": "DeepSeek", "mimo": "MiMo"}
_VERSION = re.compile(r"[a-z][0-9][0-9.]*")  # k2.6, v4, m2.5


def alias_for(provider: str, model_id: str) -> str:
    """The picker-visible alias of ``model_id`` on ``provider``."""
    tag = _TAGS.get(normalise_provider(provider), "go")
    bare = model_id[len("claude-"):] if model_id.startswith("claude-") else model_id
    return f"claude-{tag}-{bare}"


def alias_target(name: str) -> tuple[str, str] | None:
    """``(provider, model_id)`` of a catalog alias; None for any other name."""
    match = re.fullmatch(r"claude-(go|zen)-(.+)", name)
    if match is None:
        return None
    provider, rest = _BY_TAG[match.group(1)], match.group(2)
    for model_id in (rest, f"claude-{rest}"):
        if lookup(provider, model_id) is not None:
            return provider, model_id
    return None


def catalog_aliases() -> list[tuple[str, str, str]]:
    """``(alias, provider, model_id)`` for every catalog row, in catalog order."""
    return [(alias_for(e.provider, e.id), e.provider, e.id) for e in CATALOG]


def model_title(model_id: str) -> str:
    """``kimi-k2.6`` -> ``Kimi K2.6``, ``claude-opus-4-8`` -> ``Claude Opus 4.8``:
    dash-separated words capitalised, runs of bare numbers joined by dots."""
    words: list[str] = []
    numbers: list[str] = []
    for token in model_id.split("-"):
        if token.isdigit():
            numbers.append(token)
            continue
        if numbers:
            words.append(".".join(numbers))
            numbers = []
        if token in _BRANDS:
            words.append(_BRANDS[token])
        elif _VERSION.fullmatch(token):
            words.append(token.upper())
        else:
            words.append(token[:1].upper() + token[1:])
    if numbers:
        words.append(".".join(numbers))
    return " ".join(words)


def provider_title(provider: str) -> str:
    p = normalise_provider(provider)
    return _PROVIDER_TITLES.get(p, p)


def display_name(provider: str, model_id: str) -> str:
    """``Kimi K2.6 (OpenCode Go)``: the model and who serves it."""
    return f"{model_title(model_id)} ({provider_title(provider)})"
