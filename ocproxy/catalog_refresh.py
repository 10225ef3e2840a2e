"""Reading each provider's model list (``ocproxy models --refresh``).

Each OpenCode plan lists its models at ``GET {base}/models`` (OpenAI list
shape: ``{"data": [{"id": ...}, ...]}``), with the same key as every other
request. The answer is kept in one JSON file in the user's cache directory,
so ``ocproxy models`` can show which ids the provider serves now; the
built-in table (:mod:`ocproxy.catalog`) stays the source of every model's
limits and the fallback when there is no cache or the provider cannot be
reached. A list that fails or answers garbage leaves the provider's cached
ids as they were.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ocproxy.catalog import GO, ZEN
from ocproxy.config import Config, ProviderConfig
from ocproxy.models_cache import Cached, read_cache, write_cache

#: The longest a model list may take to answer, in seconds.
LIST_TIMEOUT = 15.0


def list_url(provider: ProviderConfig) -> str:
    """``{base}/models`` for a provider whose chat URL is ``{base}/chat/completions``."""
    base = provider.base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        base = base[: -len("/chat/completions")]
    return base + "/models"


class ListFailed(Exception):
    """A model list could not be read; the message says why, without the key."""


def parse_list(data: bytes) -> list[str]:
    """The ids of an OpenAI-shape model list; ``ListFailed`` for anything else."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ListFailed(f"answer is not JSON: {data[:80]!r}") from None
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ListFailed('answer has no "data" list of models')
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    if len(ids) != len(items) or not all(isinstance(i, str) and i for i in ids):
        raise ListFailed('an entry of "data" has no string "id"')
    return ids


def get_list(url: str, key: str):
    """GET a model list with ``key`` (a ``requests.Response``). A session of
    its own: proxies and CA bundle from the environment, but never ~/.netrc,
    whose entry would replace the key (as for every upstream call). Raises
    requests' errors."""
    import requests  # imported here: every ocproxy command would pay its ~50 ms start-up

    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
                           timeout=LIST_TIMEOUT, proxies=requests.utils.get_environ_proxies(url),
                           verify=os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                           or True)


def fetch_ids(url: str, key: str) -> list[str]:
    """The ids listed at ``url``; ``ListFailed`` on a network error, a
    non-200 answer or an answer that is no model list."""
    import requests

    try:
        resp = get_list(url, key)
    except requests.RequestException as exc:
        raise ListFailed(f"cannot reach {url}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        hint = " (the API key was refused)" if resp.status_code in (401, 403) else ""
        raise ListFailed(f"{url} answered HTTP {resp.status_code}{hint}")
    return parse_list(resp.content)


def refresh(config: Config, path: Path) -> tuple[dict[str, Cached], list[str]]:
    """Read both providers' lists, update the cache with those that
    answered, and return (the cached lists now, one warning per provider
    that failed)."""
    lists = read_cache(path)
    warnings = []
    key = config.key_pool[0]
    for provider, settings in ((GO, config.opencode_go), (ZEN, config.opencode_zen)):
        try:
            ids = fetch_ids(list_url(settings), key)
        except ListFailed as exc:
            kept = "the cached list" if provider in lists else "the built-in catalog"
            warnings.append(f"{provider}: model list not refreshed, keeping {kept}: {exc}")
            continue
        lists[provider] = Cached(tuple(ids), int(time.time()))
    if len(warnings) < 2:
        write_cache(path, lists)
    return lists, warnings
