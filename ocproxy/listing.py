"""``GET /v1/models`` and ``GET /v1/models/{id}``: the names a client may
request, in Anthropic's list shape, paged as Anthropic pages.

Order: the ``claude-`` aliases of every catalog model first (Claude Code
requests ``?limit=1000`` and shows only ``claude*``/``anthropic*`` ids, under
"From gateway"), then the configured names (``model_overrides`` keys, then
``models`` keys, sorted), then every other catalog id that routes to itself.
Each ``display_name`` names the model the id really reaches.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocproxy.aliases import catalog_aliases, display_name
from ocproxy.catalog import CATALOG, is_claude_name, normalise_provider, provider_of
from ocproxy.config.types import Config

CREATED_AT = "1970-01-01T00:00:00Z"
DEFAULT_LIMIT = 20  # Anthropic's default page size
MAX_LIMIT = 1000  # Anthropic's largest page; Claude Code asks for exactly this


class ListingError(ValueError):
    """A paging parameter the list cannot honour (answered 400)."""


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    after_id: str | None = None
    before_id: str | None = None


def _entry(model_id: str, provider: str, model: str) -> dict:
    return {
        "type": "model",
        "object": "model",
        "id": model_id,
        "display_name": display_name(provider, model),
        "created_at": CREATED_AT,
        "owned_by": normalise_provider(provider),
    }


def all_models(config: Config) -> list[dict]:
    """Every listed model, in listing order, each id once."""
    out: dict[str, dict] = {}
    for alias, provider, model_id in catalog_aliases():
        out.setdefault(alias, _entry(alias, provider, model_id))
    configured: dict[str, dict] = {}
    # overrides first: they win at routing time too
    for name, model in (*sorted(config.model_overrides.items()), *sorted(config.models.items())):
        configured.setdefault(name, _entry(name, model.provider, model.model_id or name))
    for name in sorted(configured):
        out.setdefault(name, configured[name])
    for catalog_entry in CATALOG:
        # a claude-* id is mapped by family, never served as itself
        if not is_claude_name(catalog_entry.id) and catalog_entry.id not in out:
            provider = provider_of(catalog_entry.id) or catalog_entry.provider
            out[catalog_entry.id] = _entry(catalog_entry.id, provider, catalog_entry.id)
    return list(out.values())


def parse_page(query: dict[str, list[str]]) -> Page:
    """``limit`` (1..1000, default 20), ``after_id`` or ``before_id``."""
    def one(name: str) -> str | None:
        values = query.get(name) or []
        return values[-1] if values else None

    raw_limit = one("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise ListingError(f"limit: {raw_limit!r} is not an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ListingError(f"limit: must be between 1 and {MAX_LIMIT}, not {limit}")
    after_id, before_id = one("after_id"), one("before_id")
    if after_id and before_id:
        raise ListingError("after_id and before_id cannot be used together")
    return Page(limit, after_id or None, before_id or None)


def models_listing(config: Config, page: Page = Page()) -> dict:
    """One page of :func:`all_models`; a cursor id that is not listed is a
    ``ListingError`` (a stale cursor would otherwise restart the list)."""
    models = all_models(config)
    ids = [m["id"] for m in models]
    cursor = page.after_id or page.before_id
    if cursor is not None and cursor not in ids:
        name = "after_id" if page.after_id else "before_id"
        raise ListingError(f"{name}: {cursor!r} is not a listed model id")
    if page.after_id is not None:
        start = ids.index(page.after_id) + 1
        chunk = models[start:start + page.limit]
        has_more = start + page.limit < len(models)
    elif page.before_id is not None:
        end = ids.index(page.before_id)
        start = max(0, end - page.limit)
        chunk = models[start:end]
        has_more = start > 0
    else:
        chunk = models[:page.limit]
        has_more = page.limit < len(models)
    return {
        "object": "list",
        "data": chunk,
        "has_more": has_more,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }


def model_info(config: Config, model_id: str) -> dict | None:
    """The listing entry for one id; None when it is not listed."""
    for model in all_models(config):
        if model["id"] == model_id:
            return model
    return None
