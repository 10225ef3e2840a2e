"""Providers, endpoint kinds and the model catalog: which upstream API each
OpenCode model speaks.

The rules in :func:`catalog_endpoint` are the truth (an id that is in no table
still gets an endpoint); the table exists for the ``ocproxy models`` listing
and as documentation, and the tests check that every row agrees with the
rules. This module is a leaf: it imports nothing of ocproxy and its functions
take plain values, so configuration, routing and the CLI can all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

GO = "opencode-go"
ZEN = "opencode-zen"
PROVIDERS = (GO, ZEN)

CHAT = "chat"
ANTHROPIC = "anthropic"
RESPONSES = "responses"
GEMINI = "gemini"
ENDPOINTS = (CHAT, ANTHROPIC, RESPONSES, GEMINI)
#: Only OpenCode Zen serves these APIs; OpenCode Go has no URL for them.
ZEN_ONLY_ENDPOINTS = (RESPONSES, GEMINI)


def normalise_provider(provider: str | None) -> str:
    """Empty means OpenCode Go; ``_`` is read as ``-`` (``opencode_zen`` is Zen)."""
    return (provider or GO).replace("_", "-")


def provider_spellings(provider: str) -> tuple[str, ...]:
    """Every spelling that :func:`normalise_provider` turns into ``provider``."""
    return (provider, provider.replace("-", "_"))


@dataclass(frozen=True)
class CatalogEntry:
    """One known model; ``context`` and ``notes`` are informational only."""

    id: str
    provider: str
    endpoint: str
    context: str
    notes: str = ""


# On Go only these ids speak the Anthropic API: MiniMax and Qwen on Go reject
# OpenAI-format tools, every other Go model is reached through chat.
GO_ANTHROPIC_IDS = frozenset(
    {
        "minimax-m3",
        "minimax-m2.7",
        "minimax-m2.5",
        "qwen3.7-max",
        "qwen3.7-plus",
        "qwen3.6-plus",
        "qwen3.5-plus",
    }
)

# Exact ids, not prefixes, so that an unknown ``gpt-*`` or ``gemini-*`` id on
# Zen falls through to chat.
ZEN_GEMINI_IDS = frozenset({"gemini-3.5-flash", "gemini-3.1-pro", "gemini-3-flash"})
ZEN_RESPONSES_ORDER = (
    "gpt-5.5",
    "gpt-5.5-pro",
    "gpt-5.4",
    "gpt-5.4-pro",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5.3-codex",
    "gpt-5.3-codex-spark",
    "gpt-5.2",
    "gpt-5.2-codex",
    "gpt-5.1",
    "gpt-5.1-codex",
    "gpt-5.1-codex-max",
    "gpt-5.1-codex-mini",
    "gpt-5",
    "gpt-5-codex",
    "gpt-5-nano",
)
ZEN_RESPONSES_IDS = frozenset(ZEN_RESPONSES_ORDER)


def catalog_endpoint(provider: str | None, model_id: str) -> str:
    """The catalog's choice of API for an id, before any per-model override.

    Anything that is not ``opencode-zen`` follows the Go rules: an unknown
    provider ends up on the Go path, as in the original proxy.
    """
    if normalise_provider(provider) != ZEN:
        return ANTHROPIC if model_id in GO_ANTHROPIC_IDS else CHAT
    if model_id.startswith("claude-") or model_id.startswith("qwen"):
        return ANTHROPIC
    if model_id in ZEN_GEMINI_IDS:
        return GEMINI
    if model_id in ZEN_RESPONSES_IDS:
        return RESPONSES
    return CHAT


def _go(model_id: str, context: str = "128k", notes: str = "") -> CatalogEntry:
    return CatalogEntry(model_id, GO, catalog_endpoint(GO, model_id), context, notes)


def _zen(model_id: str, context: str, notes: str = "") -> CatalogEntry:
    return CatalogEntry(model_id, ZEN, catalog_endpoint(ZEN, model_id), context, notes)


_DEEPSEEK_NOTE = "thinking / reasoning_effort / cache_control kept"

#: Go models, then Zen models, in the order ``ocproxy models`` prints them.
CATALOG: tuple[CatalogEntry, ...] = (
    _go("glm-5.1"),
    _go("glm-5", notes="deprecated upstream later"),
    _go("glm-5.2"),
    _go("kimi-k2.6", notes="placeholder reasoning on tool-call turns, cache_control stripped"),
    _go("kimi-k2.5"),
    _go("kimi-k2.7-code", notes="temperature forced to 1.0 when one is sent"),
    _go("mimo-v2.5-pro"),
    _go("mimo-v2.5"),
    _go("deepseek-v4-pro", "128k (1M upstream)", _DEEPSEEK_NOTE),
    _go("deepseek-v4-flash", "128k (1M upstream)", _DEEPSEEK_NOTE),
    _go("minimax-m3", "1M"),
    _go("minimax-m2.7", "1M"),
    _go("minimax-m2.5", "1M"),
    _go("qwen3.7-max", "1M", "no OpenAI-compatible endpoint at all"),
    _go("qwen3.7-plus"),
    _go("qwen3.6-plus"),
    _go("qwen3.5-plus"),
    *(
        _zen(i, "200k")
        for i in (
            "claude-fable-5",
            "claude-opus-4-8",
            "claude-opus-4-7",
            "claude-opus-4-6",
            "claude-opus-4-5",
            "claude-opus-4-1",
            "claude-sonnet-4-6",
            "claude-sonnet-4-5",
            "claude-sonnet-4",
            "claude-haiku-4-5",
            "claude-3-5-haiku",
        )
    ),
    *(_zen(i, "200k") for i in ("qwen3.5-plus", "qwen3.6-plus", "qwen3.7-plus", "qwen3.7-max")),
    *(_zen(i, "128k", "no thinking") for i in ZEN_RESPONSES_ORDER),
    *(_zen(i, "1M") for i in ("gemini-3.5-flash", "gemini-3.1-pro", "gemini-3-flash")),
    _zen("deepseek-v4-pro", "1M", "free tier"),
    _zen("deepseek-v4-flash-free", "1M", "free tier"),
    *(
        _zen(i, "200k", "free tier")
        for i in (
            "grok-build-0.1",
            "big-pickle",
            "mimo-v2.5-free",
            "north-mini-code-free",
            "nemotron-3-ultra-free",
        )
    ),
    *(_zen(i, "1M") for i in ("minimax-m2.5", "minimax-m2.7", "minimax-m3")),
    *(_zen(i, "200k") for i in ("glm-5", "glm-5.1", "kimi-k2.5", "kimi-k2.6")),
    _zen("deepseek-v4-flash", "1M"),
)


#: Each listed id's provider; an id both providers serve is OpenCode Go's
#: (the subscription, listed first).
_PROVIDER_OF: dict[str, str] = {}
for _entry in CATALOG:
    _PROVIDER_OF.setdefault(_entry.id, _entry.provider)


def provider_of(model_id: str) -> str | None:
    """The provider that serves a catalog id (Go when both do); None when the
    id is in no table."""
    return _PROVIDER_OF.get(model_id)


def is_claude_name(name: str) -> bool:
    """A name Claude Code sends for its own models (``claude-opus-4-8``,
    ``claude-3-5-haiku-20241022``): never a model to pass upstream as is."""
    return name.lower().startswith("claude-")


def lookup(provider: str | None, model_id: str) -> CatalogEntry | None:
    """The catalog row for ``(provider, id)``, or None for an unlisted id."""
    p = normalise_provider(provider)
    for entry in CATALOG:
        if entry.provider == p and entry.id == model_id:
            return entry
    return None
