"""``ocproxy models [--refresh]``: the catalog as a table.

One row per model: id, provider, upstream API, context window, output
limit, vision, reasoning style, prices per million input / output / cached
tokens. With a cached provider list (``--refresh``, see
:mod:`ocproxy.catalog_refresh`) ids the provider lists but the built-in
table lacks are shown too (limits unknown), and built-in ids the provider
no longer lists are marked.
"""

from __future__ import annotations

import argparse
import sys

from ocproxy import catalog_refresh, models_cache
from ocproxy.catalog import CATALOG, GO, ZEN, CatalogEntry, catalog_endpoint
from ocproxy.config import ConfigError, load_config

_SECTIONS = ((GO, "OpenCode Go models"), (ZEN, "OpenCode Zen models"))
_HEADER = ("ID", "PROVIDER", "API", "CONTEXT", "OUTPUT", "VISION", "REASONING", "IN $/1M", "OUT $/1M", "CACHED $/1M", "NOTES")


def tokens(n: int) -> str:
    """262144 -> 262k, 1048576 -> 1.05M, 0 -> - (not published)."""
    if not n:
        return "-"
    if n >= 1_000_000:
        return f"{round(n / 1_000_000, 2):g}M"
    return f"{round(n / 1000):g}k"


def price(p: float | None) -> str:
    return "-" if p is None else f"{p:g}"


def row(entry: CatalogEntry, note: str = "") -> tuple[str, ...]:
    notes = "; ".join(n for n in (entry.notes, note) if n)
    return (entry.id, entry.provider, entry.endpoint, tokens(entry.context), tokens(entry.max_output),
            "yes" if entry.vision else "no", entry.reasoning, price(entry.price_input),
            price(entry.price_output), price(entry.price_cached), notes)


def rows(listed: dict[str, models_cache.Cached], provider: str) -> list[tuple[str, ...]]:
    """The provider's built-in rows, then the ids only its cached list has."""
    cached = listed.get(provider)
    ids = set(cached.ids) if cached else None
    out = []
    for entry in CATALOG:
        if entry.provider == provider:
            gone = ids is not None and entry.id not in ids
            out.append(row(entry, f"not in {provider}'s list" if gone else ""))
    known = {e.id for e in CATALOG if e.provider == provider}
    for model_id in (cached.ids if cached else ()):
        if model_id not in known:
            entry = CatalogEntry(model_id, provider, catalog_endpoint(provider, model_id))
            out.append(row(entry, "listed by the provider; not in the built-in table, limits unknown"))
    return out


def aligned(lines: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1] for line in lines]


def cmd_models(args: argparse.Namespace) -> int:
    path = models_cache.cache_path()
    if args.refresh:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"Error: cannot refresh, the config is invalid: {exc}", file=sys.stderr)
            return 2
        listed, warnings = catalog_refresh.refresh(config, path)
        for warning in warnings:
            print(f"Warning: {warning}", file=sys.stderr)
    else:
        listed = models_cache.read_cache(path)
    for provider, title in _SECTIONS:
        cached = listed.get(provider)
        source = f"{len(cached.ids)} ids listed by the provider, cached in {path}" if cached else "built-in table"
        print(f"{title} ({provider}; {source}):")
        for line in aligned([_HEADER, *rows(listed, provider)]):
            print(line.rstrip())
        print()
    print("Use these model IDs in your config.json file (models, fallbacks, model_overrides).")
    print("CONTEXT and OUTPUT are tokens; prices are US dollars per million tokens (- : not published).")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the model catalog (--refresh: read each provider's model list)")
    p.add_argument("-c", "--config", metavar="PATH", help="config file (for --refresh: URLs and key)")
    p.add_argument("--refresh", action="store_true",
                   help="read GET {base}/models of each provider with the configured key and cache it")
    p.set_defaults(func=cmd_models)
