"""``ocproxy validate``'s own checks: the mistakes a config can load with and
still be silently wrong.

The loader already refuses what cannot load (types, rules, a family
override naming an unknown model). On top of that this module finds:

* unknown keys anywhere, with the nearest known key -- the known keys are
  read from the JSON schema (``schema.CONFIG_SCHEMA``), never listed twice;
* model ids the catalog does not know (a warning: the model may be new);
* model entries with no ``model_id``, a ``fallbacks`` chain that belongs to
  no scenario or name, no ``models.default`` (errors: nothing to route to);
* provider URLs without a scheme or host (errors);
* a JSON syntax error located at the real mistake (a trailing comma at the
  comma, not at the ``}`` after it); the loader words its parse errors with
  it, so ``serve`` and a hot reload say the same.

Everything here is pure: parsed data in, :class:`Finding` lists out.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from ocproxy.catalog import CATALOG, PROVIDERS, lookup, normalise_provider
from ocproxy.config.schema import CONFIG_SCHEMA, PLACEHOLDER, json_path, model_entries

ERROR = "error"
WARNING = "warning"

#: Scenario names routing looks up in ``models`` and ``fallbacks``.
SCENARIOS = ("default", "background", "think", "long_context", "complex", "fast", "image")
_URL_KEYS = ("base_url", "anthropic_base_url", "responses_base_url", "gemini_base_url")


@dataclass(frozen=True)
class Finding:
    severity: str  # ERROR or WARNING
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


# -- JSON syntax ------------------------------------------------------------------


def json_syntax_message(text: str, exc: json.JSONDecodeError) -> str:
    """Where the mistake is: a trailing comma is named at the comma itself
    (the parser stops at the ``}``/``]`` after it); else the parser's place."""
    pos = exc.pos
    if pos < len(text) and text[pos] in "}]" and exc.msg.startswith(("Expecting property name", "Expecting value")):
        before = len(text[:pos].rstrip())
        if before and text[before - 1] == ",":
            comma = before - 1
            line = text.count("\n", 0, comma) + 1
            column = comma - (text.rfind("\n", 0, comma) + 1) + 1
            return f"trailing comma at line {line} column {column} (remove it: JSON allows none before {text[pos]!r})"
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"


# -- unknown keys, from the schema --------------------------------------------------


def _resolve(schema: Any) -> dict:
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(CONFIG_SCHEMA["$defs"][ref[len("#/$defs/"):]])
    return schema


def _branches(schema: Any) -> Iterator[dict]:
    """The schema and every sub-schema that may apply to the same value."""
    schema = _resolve(schema)
    yield schema
    for key in ("then", "else"):
        if key in schema:
            yield from _branches(schema[key])
    for sub in schema.get("allOf", ()):
        yield from _branches(sub)


def _shape(schema: Any) -> tuple[dict[str, Any] | None, Any, Any]:
    """``(properties or None, additionalProperties schema, items schema)``
    merged over every branch; ``properties`` None means keys are free."""
    props: dict[str, list] = {}
    has_props = False
    extra = items = None
    for branch in _branches(schema):
        if "properties" in branch:
            has_props = True
            for name, sub in branch["properties"].items():
                props.setdefault(name, []).append(sub)
        if isinstance(branch.get("additionalProperties"), dict):
            extra = branch["additionalProperties"]
        if "items" in branch:
            items = branch["items"]
    merged = {name: {"allOf": subs} for name, subs in props.items()} if has_props else None
    return merged, extra, items


def known_keys(parts: list) -> list[str]:
    """The keys the schema allows in the object at ``parts`` ([] for the top)."""
    schema: Any = CONFIG_SCHEMA
    for part in parts:
        props, extra, items = _shape(schema)
        if isinstance(part, int):
            schema = items
        elif props is not None and part in props:
            schema = props[part]
        else:
            schema = extra
    props, _, _ = _shape(schema)
    return sorted(props or ())


def _suggest(word: str, choices: list[str]) -> str:
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else ""


def unknown_keys(data: Any, schema: Any = CONFIG_SCHEMA, parts: list | None = None) -> list[Finding]:
    """Every key the schema does not know, at any depth; free-form objects
    (``thinking``) and maps (``models``) are walked by their values only."""
    parts = parts or []
    props, extra, items = _shape(schema)
    found: list[Finding] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if props is not None and key in props:
                found += unknown_keys(value, props[key], [*parts, key])
            elif extra is not None:
                found += unknown_keys(value, extra, [*parts, key])
            elif props is not None:
                hint = _suggest(key, sorted(props))
                where = f"in {json_path(parts)}" if parts else "at the top level"
                message = f'unknown key "{key}" {where}'
                message += f' (did you mean "{hint}"?)' if hint else f" (known: {', '.join(sorted(props))})"
                found.append(Finding(ERROR, json_path([*parts, key]), message + "; it is ignored"))
    elif isinstance(data, list) and items is not None:
        for i, value in enumerate(data):
            found += unknown_keys(value, items, [*parts, i])
    return found


# -- models -----------------------------------------------------------------------


def _catalog_ids(provider: str) -> list[str]:
    return [e.id for e in CATALOG if e.provider == provider]


def model_findings(data: dict, listed: Mapping[str, tuple[str, ...]] = MappingProxyType({})) -> list[Finding]:
    """Unknown model ids (warnings) and entries with nothing to send (errors).
    An id the provider's refreshed model list names (``listed``) is known."""
    found: list[Finding] = []
    for parts, entry in model_entries(data):
        model_id = entry.get("model_id")
        if model_id is None or model_id == "":
            if parts[0] in ("models", "fallbacks"):  # the schema requires it in the overrides
                found.append(Finding(ERROR, json_path([*parts, "model_id"]),
                                     "no model_id: a request routed here has no model to go to"))
            continue
        if not isinstance(model_id, str):
            continue  # a type mistake, reported by the loader
        provider = entry.get("provider")
        provider = normalise_provider(provider if isinstance(provider, str) else None)
        if provider not in PROVIDERS or lookup(provider, model_id) is not None or model_id in listed.get(provider, ()):
            continue
        message = f'"{model_id}" is not in the {provider} catalog (`ocproxy models`)'
        elsewhere = [p for p in PROVIDERS if p != provider and lookup(p, model_id) is not None]
        if elsewhere:
            message += f'; {elsewhere[0]} serves it: set "provider": "{elsewhere[0]}"'
        else:
            nearest = difflib.get_close_matches(model_id, _catalog_ids(provider), n=3, cutoff=0.5)
            if nearest:
                message += f"; nearest: {', '.join(nearest)}"
            message += "; fine if the model is newer than this catalog"
        found.append(Finding(WARNING, json_path([*parts, "model_id"]), message))
    return found


def routing_findings(data: dict) -> list[Finding]:
    """``models.default`` exists, and every ``fallbacks`` chain belongs to a
    name routing looks up (a scenario, a ``models``/override/family key)."""
    found: list[Finding] = []
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    if "default" not in models:
        found.append(Finding(ERROR, "$.models.default",
                             "missing: a request that matches no other scenario has no model "
                             "(answered 500 \"routing failed\")"))
    chains = data.get("fallbacks")
    if isinstance(chains, dict):
        names = set(SCENARIOS) | set(models)
        for section in ("model_overrides", "model_family_overrides"):
            if isinstance(data.get(section), dict):
                names |= set(data[section])
        families = data.get("model_family_overrides")
        if isinstance(families, dict):
            names |= {t for t in families.values() if isinstance(t, str)}
        for key in chains:
            if key not in names:
                hint = _suggest(key, sorted(names))
                message = f'chain "{key}" belongs to no scenario, models key or override, so it is never used'
                found.append(Finding(ERROR, json_path(["fallbacks", key]),
                                     message + (f' (did you mean "{hint}"?)' if hint else "")))
    return found


# -- URLs -------------------------------------------------------------------------


def url_findings(data: dict) -> list[Finding]:
    found: list[Finding] = []
    for block_name in ("opencode_go", "opencode_zen"):
        block = data.get(block_name)
        if not isinstance(block, dict):
            continue
        for key in _URL_KEYS:
            value = block.get(key)
            if not isinstance(value, str) or not value:
                continue  # absent means the default; a wrong type is the loader's
            path = json_path([block_name, key])
            placeholder = PLACEHOLDER.search(value)
            if placeholder:
                found.append(Finding(ERROR, path, f'contains unresolved env var "{placeholder.group(0)}"'))
                continue
            url = urlsplit(value)
            if url.scheme not in ("http", "https"):
                found.append(Finding(ERROR, path, f'"{value}" has no http:// or https:// scheme'))
            elif not url.hostname:
                found.append(Finding(ERROR, path, f'"{value}" has no host'))
    return found


def findings(data: Any, listed: Mapping[str, tuple[str, ...]] = MappingProxyType({})) -> list[Finding]:
    """Every finding for a parsed, interpolated config document; ``listed``
    are the providers' refreshed model lists."""
    if not isinstance(data, dict):
        return []  # "must be an object" is the loader's
    return [*unknown_keys(data), *model_findings(data, listed), *routing_findings(data), *url_findings(data)]


_SEVERITY_ORDER = {ERROR: 0, WARNING: 1}


def ordered(items: list[Finding]) -> list[Finding]:
    return sorted(items, key=lambda f: (_SEVERITY_ORDER[f.severity], f.path))


__all__ = ["ERROR", "WARNING", "Finding", "findings", "json_syntax_message", "known_keys", "ordered",
           "unknown_keys", "model_findings", "routing_findings", "url_findings"]
