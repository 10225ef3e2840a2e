"""``ocproxy validate [--online]``: every error and warning a config has.

Errors (the config cannot work as written) go to stderr under
``Error: invalid config: N problems`` and make the exit code 2; warnings
(``WARNING: ...``, e.g. a model id newer than the catalog) never do. The
checks are the loader's and ``config.validate``'s; ``--online`` also asks
each provider in use for its model list with each configured key and
reports a refused key (401/403) per provider.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Callable, Mapping

from ocproxy import catalog_refresh, models_cache
from ocproxy.catalog import ZEN, normalise_provider, provider_of
from ocproxy.config import (
    Config,
    ConfigError,
    apply_env_overrides,
    default_template,
    interpolate,
    load_config,
    resolve_config_path,
)
from ocproxy.config.validate import ERROR, WARNING, Finding, findings, ordered

EXIT_OK = 0
EXIT_BAD_CONFIG = 2


def _read(path: str) -> object | None:
    """The parsed file; None when it cannot be read or parsed, which the
    loader reports (a JSON mistake at its real place)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def _load_quietly(path: str | None, env: Mapping[str, str]) -> tuple[Config | None, list[Finding]]:
    warnings: list[str] = []
    logger = logging.getLogger("ocproxy.config")
    # the loader logs each warning too; they are printed here, once
    was_disabled, logger.disabled = logger.disabled, True
    try:
        config = load_config(path, env, warnings=warnings)
        problems: list[Finding] = []
    except ConfigError as exc:
        config = None
        problems = [Finding(ERROR, p.path, p.message) for p in exc.problems]
    finally:
        logger.disabled = was_disabled
    # loader warnings already name their place ("config: models[...] ...")
    return config, problems + [Finding(WARNING, "", w) for w in warnings]


def check(path: str | None, env: Mapping[str, str]) -> tuple[Config | None, list[Finding]]:
    """The loaded config (None when it does not load) and every finding."""
    data = default_template() if path is None else _read(path)
    config, found = _load_quietly(path, env)
    if data is not None:
        data = interpolate(data, env)
        if isinstance(data, dict):
            apply_env_overrides(data, env)  # judge the URLs in effect
        seen = {(f.path, f.message) for f in found}
        found += [f for f in findings(data, models_cache.listed_ids(env)) if (f.path, f.message) not in seen]
    return config, found


# -- --online ---------------------------------------------------------------------


def providers_in_use(config: Config) -> list[str]:
    used = set()
    entries = [*config.models.values(), *config.model_overrides.values()]
    entries += [m for chain in config.fallbacks.values() for m in chain]
    for target in config.model_family_overrides.values():
        if isinstance(target, str):
            entry = config.models.get(target)
            used.add(entry.provider if entry else normalise_provider(provider_of(target)))
        else:
            entries.append(target)
    used |= {normalise_provider(m.provider) for m in entries}
    return [p for p in ("opencode-go", ZEN) if p in used]


def online_findings(config: Config, out: Callable[[str], None]) -> list[Finding]:
    """One model-list request per provider in use and key; a 401/403 is an
    error naming the provider and the key's place in the pool, never the key."""
    import requests  # only --online needs it

    found: list[Finding] = []
    keys = list(dict.fromkeys(k for k in config.key_pool if k))
    for provider in providers_in_use(config):
        block = config.opencode_zen if provider == ZEN else config.opencode_go
        url = catalog_refresh.list_url(block)
        path = "$." + provider.replace("-", "_")
        for n, key in enumerate(keys, 1):
            which = f"key {n} of {len(keys)}" if len(keys) > 1 else "the key"
            try:
                resp = catalog_refresh.get_list(url, key)
            except requests.RequestException as exc:
                found.append(Finding(ERROR, path, f"{provider}: cannot reach {url}: {type(exc).__name__}"))
                break
            if resp.status_code in (401, 403):
                found.append(Finding(ERROR, path, f"{provider}: {which} was refused by {url} (HTTP {resp.status_code})"))
            elif resp.status_code >= 400:
                found.append(Finding(WARNING, path, f"{provider}: {url} answered HTTP {resp.status_code}; "
                                                    f"{which} was not checked"))
            else:
                try:
                    count = len(resp.json().get("data") or [])
                    listed = f", {count} models listed"
                except (ValueError, AttributeError):
                    listed = ""
                out(f"  {provider}: {which} accepted by {url} (HTTP {resp.status_code}{listed})")
    if not keys:
        found.append(Finding(ERROR, "$.api_key", "no key to check"))
    return found


# -- the command ---------------------------------------------------------------------


def _line(f: Finding) -> str:
    return f"{f.path}: {f.message}" if f.path else f.message


def run(config_arg: str | None, online: bool, summary: Callable[[Config], None],
        env: Mapping[str, str] = os.environ) -> int:
    path = resolve_config_path(config_arg, env)
    config, found = check(path, env)
    online_lines: list[str] = []
    if online and config is not None:
        found += online_findings(config, online_lines.append)
    found = ordered(found)
    errors = [f for f in found if f.severity == ERROR]
    warnings = [f for f in found if f.severity == WARNING]
    if errors:
        count = len(errors)
        print(f"Error: invalid config: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        for f in errors:
            print(f"  {_line(f)}", file=sys.stderr)
    for f in warnings:
        print(f"WARNING: {_line(f)}", file=sys.stderr)
    if errors:
        for line in online_lines:  # the keys that were accepted, for the record
            print(line)
        return EXIT_BAD_CONFIG
    assert config is not None  # no error means it loaded
    if path is None:
        print("Note: no config file found; validated the built-in defaults", file=sys.stderr)
    summary(config)
    for line in online_lines:
        print(line)
    return EXIT_OK
