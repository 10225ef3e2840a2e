"""Providers, endpoint kinds and the model catalog: which upstream API each
OpenCode model speaks.

The rules in :func:`catalog_endpoint` are the truth for the API (an id that
is in no table still gets an endpoint); the table adds what routing needs to
know of each model (context window, output limit, vision) and what
``ocproxy models`` shows (prices, reasoning style), and the tests check that
every row agrees with the rules. This module is a leaf: it imports nothing of ocproxy and its functions
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
#: Only OpenCode Zen serves these APIs; OpenCode Go has no URL for them
#: (Go serves Responses too, for its GPT models).
ZEN_ONLY_ENDPOINTS = (GEMINI,)


def normalise_provider(provider: str | None) -> str:
    """Empty means OpenCode Go; ``_`` is read as ``-`` (``opencode_zen`` is Zen)."""
    return (provider or GO).replace("_", "-")


def provider_spellings(provider: str) -> tuple[str, ...]:
    """Every spelling that :func:`normalise_provider` turns into ``provider``."""
    return (provider, provider.replace("-", "_"))


#: Reasoning styles: how a model exposes its reasoning upstream.
REASONING_CONTENT = "reasoning_content"  # Chat Completions: a reasoning_content field
THINKING = "thinking"  # Anthropic Messages: thinking blocks (budget or effort)
EFFORT = "effort"  # Responses / Gemini: a reasoning effort setting, no visible text
NO_REASONING = "none"


@dataclass(frozen=True)
class CatalogEntry:
    """One known model. ``context`` and ``max_output`` are tokens (0: not
    published, so never used to skip or clamp); prices are US dollars per
    million tokens (None: not published)."""

    id: str
    provider: str
    endpoint: str
    context: int = 0
    max_output: int = 0
    vision: bool = False
    tools: bool = True
    reasoning: str = NO_REASONING
    price_input: float | None = None
    price_output: float | None = None
    price_cached: float | None = None
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

# Go's models on the Responses API (https://opencode.ai/zen/go/v1/responses).
GO_RESPONSES_IDS = frozenset({"gpt-5.6-luna"})

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
        if model_id in GO_RESPONSES_IDS:
            return RESPONSES
        return ANTHROPIC if model_id in GO_ANTHROPIC_IDS else CHAT
    if model_id.startswith("claude-") or model_id.startswith("qwen"):
        return ANTHROPIC
    if model_id in ZEN_GEMINI_IDS:
        return GEMINI
    if model_id in ZEN_RESPONSES_IDS:
        return RESPONSES
    return CHAT


def _go(model_id: str, context: int, output: int, vision: bool, prices: tuple, reasoning: str,
        notes: str = "") -> CatalogEntry:
    return CatalogEntry(model_id, GO, catalog_endpoint(GO, model_id), context, output, vision, True, reasoning,
                        *prices, notes)


def _zen(model_id: str, context: int, output: int, vision: bool, prices: tuple, reasoning: str,
         notes: str = "") -> CatalogEntry:
    return CatalogEntry(model_id, ZEN, catalog_endpoint(ZEN, model_id), context, output, vision, True, reasoning,
                        *prices, notes)


_RC, _TH, _EF = REASONING_CONTENT, THINKING, EFFORT
_UNPRICED = (None, None, None)
_FREE = (0.0, 0.0, 0.0)
_DEEPSEEK_NOTE = "thinking / reasoning_effort / cache_control kept"
_OLD = "deprecated upstream"

# Limits and prices: models.dev (github.com/anomalyco/models.dev, providers/opencode-go and
# providers/opencode, 2026-07-02), which mirrors https://opencode.ai/docs/go and /docs/zen;
# gpt-5.6-luna's limits are OpenAI's (models.dev providers/openai). 0 = not published.
#: Go models, then Zen models, in the order ``ocproxy models`` prints them.
CATALOG: tuple[CatalogEntry, ...] = (
    _go("glm-5.1", 202_752, 32_768, False, (1.4, 4.4, 0.26), _RC),
    _go("glm-5", 202_752, 32_768, False, (1.0, 3.2, 0.2), _RC, _OLD),
    _go("glm-5.2", 1_000_000, 131_072, False, (1.4, 4.4, 0.26), _RC),
    _go("kimi-k2.6", 262_144, 65_536, True, (0.95, 4.0, 0.16), _RC,
        "placeholder reasoning on tool-call turns, cache_control stripped"),
    _go("kimi-k2.5", 262_144, 65_536, True, (0.6, 3.0, 0.1), _RC, _OLD),
    _go("kimi-k2.7-code", 0, 0, False, (0.95, 4.0, 0.19), _RC, "temperature forced to 1.0 when one is sent"),
    _go("mimo-v2.5-pro", 1_048_576, 128_000, False, (1.74, 3.48, 0.0145), _RC),
    _go("mimo-v2.5", 1_000_000, 128_000, True, (0.14, 0.28, 0.0028), _RC),
    _go("deepseek-v4-pro", 1_000_000, 384_000, False, (1.74, 3.48, 0.0145), _RC, _DEEPSEEK_NOTE),
    _go("deepseek-v4-flash", 1_000_000, 384_000, False, (0.14, 0.28, 0.0028), _RC, _DEEPSEEK_NOTE),
    _go("minimax-m3", 1_000_000, 131_072, True, (0.3, 1.2, 0.06), _TH),
    _go("minimax-m2.7", 204_800, 131_072, False, (0.3, 1.2, 0.06), _TH),
    _go("minimax-m2.5", 204_800, 65_536, False, (0.3, 1.2, 0.03), _TH, _OLD),
    _go("qwen3.7-max", 1_000_000, 65_536, False, (2.5, 7.5, 0.5), _TH, "no OpenAI-compatible endpoint at all"),
    _go("qwen3.7-plus", 1_000_000, 65_536, True, (0.4, 1.6, 0.04), _TH),
    _go("qwen3.6-plus", 1_000_000, 65_536, True, (0.5, 3.0, 0.05), _TH),
    _go("qwen3.5-plus", 262_144, 65_536, True, (0.2, 1.2, 0.02), _TH, _OLD),
    _go("gpt-5.6-luna", 1_050_000, 128_000, True, _UNPRICED, _EF, "served on Go's Responses API"),
    _zen("claude-fable-5", 0, 0, True, (10.0, 50.0, 1.0), _TH, _OLD),
    _zen("claude-opus-4-8", 1_000_000, 128_000, True, (5.0, 25.0, 0.5), _TH),
    _zen("claude-opus-4-7", 1_000_000, 128_000, True, (5.0, 25.0, 0.5), _TH),
    _zen("claude-opus-4-6", 1_000_000, 128_000, True, (5.0, 25.0, 0.5), _TH),
    _zen("claude-opus-4-5", 200_000, 64_000, True, (5.0, 25.0, 0.5), _TH),
    _zen("claude-opus-4-1", 200_000, 32_000, True, (15.0, 75.0, 1.5), _TH),
    _zen("claude-sonnet-5", 1_000_000, 128_000, True, (2.0, 10.0, 0.2), _TH),
    _zen("claude-sonnet-4-6", 1_000_000, 64_000, True, (3.0, 15.0, 0.3), _TH),
    _zen("claude-sonnet-4-5", 1_000_000, 64_000, True, (3.0, 15.0, 0.3), _TH),
    _zen("claude-sonnet-4", 1_000_000, 64_000, True, (3.0, 15.0, 0.3), _TH),
    _zen("claude-haiku-4-5", 200_000, 64_000, True, (1.0, 5.0, 0.1), _TH),
    _zen("claude-3-5-haiku", 200_000, 8_192, True, (0.8, 4.0, 0.08), NO_REASONING, _OLD),
    _zen("qwen3.5-plus", 262_144, 65_536, True, (0.2, 1.2, 0.02), _TH),
    _zen("qwen3.6-plus", 262_144, 65_536, True, (0.5, 3.0, 0.05), _TH),
    _zen("qwen3.7-plus", 0, 0, False, _UNPRICED, _TH),
    _zen("qwen3.7-max", 0, 0, False, _UNPRICED, _TH),
    _zen("gpt-5.5", 1_050_000, 128_000, True, (5.0, 30.0, 0.5), _EF),
    _zen("gpt-5.5-pro", 1_050_000, 128_000, True, (30.0, 180.0, 30.0), _EF),
    _zen("gpt-5.4", 1_050_000, 128_000, True, (2.5, 15.0, 0.25), _EF),
    _zen("gpt-5.4-pro", 1_050_000, 128_000, True, (30.0, 180.0, 30.0), _EF),
    _zen("gpt-5.4-mini", 400_000, 128_000, True, (0.75, 4.5, 0.075), _EF),
    _zen("gpt-5.4-nano", 400_000, 128_000, True, (0.2, 1.25, 0.02), _EF),
    _zen("gpt-5.3-codex", 400_000, 128_000, True, (1.75, 14.0, 0.175), _EF),
    _zen("gpt-5.3-codex-spark", 128_000, 128_000, False, (1.75, 14.0, 0.175), _EF),
    _zen("gpt-5.2", 400_000, 128_000, True, (1.75, 14.0, 0.175), _EF),
    _zen("gpt-5.2-codex", 400_000, 128_000, True, (1.75, 14.0, 0.175), _EF),
    _zen("gpt-5.1", 400_000, 128_000, True, (1.07, 8.5, 0.107), _EF),
    _zen("gpt-5.1-codex", 400_000, 128_000, True, (1.07, 8.5, 0.107), _EF),
    _zen("gpt-5.1-codex-max", 400_000, 128_000, True, (1.25, 10.0, 0.125), _EF),
    _zen("gpt-5.1-codex-mini", 400_000, 128_000, True, (0.25, 2.0, 0.025), _EF),
    _zen("gpt-5", 400_000, 128_000, True, (1.07, 8.5, 0.107), _EF),
    _zen("gpt-5-codex", 400_000, 128_000, True, (1.07, 8.5, 0.107), _EF),
    _zen("gpt-5-nano", 400_000, 128_000, True, (0.05, 0.4, 0.005), _EF),
    _zen("gemini-3.5-flash", 1_048_576, 65_536, True, (1.5, 9.0, 0.15), _EF),
    _zen("gemini-3.1-pro", 1_048_576, 65_536, True, (2.0, 12.0, 0.2), _EF),
    _zen("gemini-3-flash", 1_048_576, 65_536, True, (0.5, 3.0, 0.05), _EF),
    _zen("deepseek-v4-pro", 1_000_000, 384_000, False, (1.74, 3.84, 0.145), _RC),
    _zen("deepseek-v4-flash-free", 200_000, 128_000, False, _FREE, _RC, "free tier"),
    _zen("grok-build-0.1", 256_000, 256_000, True, (1.0, 2.0, 0.2), _RC),
    _zen("big-pickle", 200_000, 32_000, False, _FREE, _RC, "free tier"),
    _zen("mimo-v2.5-free", 200_000, 32_000, True, _FREE, _RC, "free tier"),
    _zen("north-mini-code-free", 0, 0, False, _FREE, _RC, "free tier"),
    _zen("nemotron-3-ultra-free", 1_000_000, 128_000, False, _FREE, _RC, "free tier"),
    _zen("minimax-m2.5", 204_800, 131_072, False, (0.3, 1.2, 0.06), _RC),
    _zen("minimax-m2.7", 204_800, 131_072, False, (0.3, 1.2, 0.06), _RC),
    _zen("minimax-m3", 512_000, 128_000, True, (0.3, 1.2, 0.06), _RC),
    _zen("glm-5", 204_800, 131_072, False, (1.0, 3.2, 0.2), _RC),
    _zen("glm-5.1", 204_800, 131_072, False, (1.4, 4.4, 0.26), _RC),
    _zen("glm-5.2", 1_000_000, 131_072, False, (1.4, 4.4, 0.26), _RC),
    _zen("kimi-k2.5", 262_144, 65_536, True, (0.6, 3.0, 0.08), _RC),
    _zen("kimi-k2.6", 262_144, 65_536, True, (0.95, 4.0, 0.16), _RC),
    _zen("kimi-k2.7-code", 0, 0, False, (0.95, 4.0, 0.19), _RC),
    _zen("deepseek-v4-flash", 1_000_000, 384_000, False, (0.14, 0.28, 0.028), _RC),
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


_ROWS: dict[tuple[str, str], CatalogEntry] = {(e.provider, e.id): e for e in CATALOG}


def lookup(provider: str | None, model_id: str) -> CatalogEntry | None:
    """The catalog row for ``(provider, id)``, or None for an unlisted id."""
    return _ROWS.get((normalise_provider(provider), model_id))


def context_window(provider: str | None, model_id: str) -> int:
    """Tokens the model reads at most; 0 when unknown (never a reason to skip it)."""
    entry = lookup(provider, model_id)
    return entry.context if entry else 0


def output_limit(provider: str | None, model_id: str) -> int:
    """Tokens the model writes at most; 0 when unknown (nothing to clamp to)."""
    entry = lookup(provider, model_id)
    return entry.max_output if entry else 0


def has_vision(provider: str | None, model_id: str) -> bool:
    """The catalog says the model reads images."""
    entry = lookup(provider, model_id)
    return bool(entry and entry.vision)
