"""The model catalog: which upstream API each OpenCode model speaks.

routing.md §3 is a table plus a few rules. The rules are the truth (an id
that is not in any table still gets an endpoint); the tables exist for the
``ocproxy models`` listing and as documentation, and the tests check that
every listed row agrees with the rules. Keeping both as plain data here means
the CLI, ``GET /v1/models`` and the upstream client all read one source.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocproxy.config import GO, ZEN, Config, ModelConfig, normalise_provider

CHAT = "chat"
ANTHROPIC = "anthropic"
RESPONSES = "responses"
GEMINI = "gemini"


@dataclass(frozen=True)
class CatalogEntry:
    """One known model; ``context`` and ``notes`` are informational only."""

    id: str
    provider: str
    endpoint: str
    context: str
    notes: str = ""


# routing.md §3.2: on Go, only this set is Anthropic-native (ded7efd list,
# authoritative: MiniMax/Qwen on Go reject OpenAI-format tools).
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

# routing.md §3.3 rule 3 and rule 4: exact ids, not prefixes, so that an
# unknown ``gpt-*`` or ``gemini-*`` id falls through to chat.
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
    """The catalog's choice for an id (routing.md §3.2/§3.3), before overrides.

    Anything that is not ``opencode-zen`` follows the Go rules (§2): an
    unknown provider ends up on the Go path, as in the original.
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


def endpoint_for(model: ModelConfig) -> str:
    """Resolve the endpoint kind of one attempt (routing.md §3.4).

    Order: catalog, then the contract's ``endpoint`` override, then
    ``anthropic_tools_disabled`` which turns anthropic into chat on the same
    provider -- it wins even over an explicit ``endpoint: "anthropic"``,
    because the flag says the upstream cannot take Anthropic tool format.
    """
    kind = model.endpoint or catalog_endpoint(model.provider, model.model_id)
    if kind == ANTHROPIC and model.anthropic_tools_disabled:
        return CHAT
    return kind


def endpoint_url(config: Config, model: ModelConfig) -> str:
    """Upstream URL for the model's endpoint kind (routing.md §3.1).

    URLs are used exactly as configured; only Gemini gets ``/<model_id>``
    appended (the caller adds ``:generateContent`` or
    ``:streamGenerateContent?alt=sse``). A trailing ``/`` on the Gemini base
    is dropped so the join never produces ``//``.
    """
    provider = config.provider(model)
    kind = endpoint_for(model)
    if kind == CHAT:
        return provider.base_url
    if kind == ANTHROPIC:
        return provider.anthropic_base_url
    if kind == RESPONSES:
        url = provider.responses_base_url
    else:
        url = provider.gemini_base_url.rstrip("/")
        url = url and f"{url}/{model.model_id}"
    if not url:
        # The loader rejects responses/gemini on Go models; a hand-built
        # config can still get here, and a clear error beats a request to "".
        raise ValueError(f"provider {model.provider} has no {kind} URL configured")
    return url


def _go(model_id: str, context: str = "128k", notes: str = "") -> CatalogEntry:
    return CatalogEntry(model_id, GO, catalog_endpoint(GO, model_id), context, notes)


def _zen(model_id: str, context: str, notes: str = "") -> CatalogEntry:
    return CatalogEntry(model_id, ZEN, catalog_endpoint(ZEN, model_id), context, notes)


_DEEPSEEK_NOTE = "thinking / reasoning_effort / cache_control kept"

#: routing.md §3.2 then §3.3, in the spec's order (the ``models`` listing).
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


def lookup(provider: str | None, model_id: str) -> CatalogEntry | None:
    """The catalog row for ``(provider, id)``, or None for an unlisted id."""
    p = normalise_provider(provider)
    for entry in CATALOG:
        if entry.provider == p and entry.id == model_id:
            return entry
    return None


def models_listing(config: Config) -> dict:
    """Body of ``GET /v1/models`` (operations.md §6), Anthropic list shape.

    Ids are the names a client may *request*: every ``model_overrides`` key,
    then every ``models`` key; an id in both keeps the override's provider
    (overrides win at routing time too). Sorted, so the answer is stable.
    """
    owners: dict[str, str] = {}
    for name, model in config.model_overrides.items():
        owners.setdefault(name, normalise_provider(model.provider))
    for name, model in config.models.items():
        owners.setdefault(name, normalise_provider(model.provider))
    ids = sorted(owners)
    data = [
        {
            "type": "model",
            "object": "model",
            "id": i,
            "display_name": i,
            "created_at": "1970-01-01T00:00:00Z",
            "owned_by": owners[i],
        }
        for i in ids
    ]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }
