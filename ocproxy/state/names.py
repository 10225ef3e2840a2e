"""Which model names may own per-model state (a breaker, a metric series).

Only the catalog's ids and the ids named in the config: every other name
shares the one :data:`UNKNOWN` entry, so what clients send cannot grow
``/health``, ``/metrics`` or the breaker table.
"""

from __future__ import annotations

import threading
from typing import Callable

from ocproxy.catalog import CATALOG
from ocproxy.config import Config

UNKNOWN = "unknown"
_CATALOG_IDS = frozenset(entry.id for entry in CATALOG)


def configured_ids(cfg: Config) -> frozenset[str]:
    """Every ``model_id`` a config names, in any of its model tables."""
    ids = {m.model_id for m in cfg.models.values()}
    ids.update(m.model_id for chain in cfg.fallbacks.values() for m in chain)
    ids.update(m.model_id for m in cfg.model_overrides.values())
    ids.update(m.model_id for m in cfg.model_family_overrides.values() if not isinstance(m, str))
    ids.discard("")
    return frozenset(ids)


class ModelNames:
    """``label(model_id)``: the id itself when the catalog or the current
    config names it, else ``"unknown"``. Follows config reloads."""

    def __init__(self, current: Callable[[], Config] | None = None):
        self._current = current
        # Guards _seen and _known: request threads ask while a reload
        # replaces the config the set was computed from.
        self._lock = threading.Lock()
        self._seen: Config | None = None
        self._known: frozenset[str] = _CATALOG_IDS

    def label(self, model_id: str) -> str:
        if model_id in _CATALOG_IDS:
            return model_id
        if self._current is None:
            return UNKNOWN
        cfg = self._current()
        with self._lock:
            if cfg is not self._seen:
                self._seen, self._known = cfg, configured_ids(cfg)
            known = self._known
        return model_id if model_id in known else UNKNOWN


#: For registries built without a config: every name is its own label.
def any_name(model_id: str) -> str:
    return model_id
