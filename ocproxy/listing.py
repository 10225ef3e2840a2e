"""The body of ``GET /v1/models``: the configured models, Anthropic list shape."""

from __future__ import annotations

from ocproxy.catalog import normalise_provider
from ocproxy.config.types import Config


def models_listing(config: Config) -> dict:
    """Ids are the names a client may *request*: every ``model_overrides`` key,
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
