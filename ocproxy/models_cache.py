"""The cached copy of each provider's model list: where it lives and how it
is read and written. ``ocproxy models --refresh`` (:mod:`ocproxy.catalog_refresh`)
fills it; the config loader and ``ocproxy validate`` read it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

CACHE_NAME = "models.json"


def cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/ocproxy/models.json``, else ``~/.cache/ocproxy/models.json``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "ocproxy" / CACHE_NAME


@dataclass(frozen=True)
class Cached:
    """One provider's listed ids and when they were read (Unix seconds)."""

    ids: tuple[str, ...]
    fetched_at: int


def read_cache(path: Path) -> dict[str, Cached]:
    """The cached lists by provider; empty when there is no usable file."""
    try:
        body = json.loads(path.read_text())
        return {p: Cached(tuple(v["ids"]), int(v["fetched_at"])) for p, v in body["providers"].items()
                if all(isinstance(i, str) for i in v["ids"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def listed_ids(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """Provider -> the ids its list named at the last refresh; empty when
    there was none."""
    return {provider: cached.ids for provider, cached in read_cache(cache_path(env)).items()}


def write_cache(path: Path, lists: Mapping[str, Cached]) -> None:
    """Replace the cache file in one step (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"providers": {p: {"ids": list(c.ids), "fetched_at": c.fetched_at} for p, c in sorted(lists.items())}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, path)
