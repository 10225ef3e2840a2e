"""JSON Schema → the OpenAPI subset Gemini accepts for function parameters."""

from __future__ import annotations

_STRING_FORMATS = {"enum", "date-time"}
_NUMBER_FORMATS = {"float", "double", "int32", "int64"}
_COUNT_KEYS = ("minItems", "maxItems")
_BOUND_KEYS = ("minimum", "maximum")
_MAX_DEPTH = 24


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _resolve_ref(ref: str, root: dict):
    """A local ``#/…`` pointer into the root schema (``$defs``, ``definitions``)."""
    if not ref.startswith("#/"):
        return None
    node = root
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node if isinstance(node, dict) else None


def _merge_all_of(node: dict) -> dict:
    """``allOf`` folded into one schema: properties and required united,
    the first value winning for every other key."""
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for sub in node.get("allOf") or ():
        if not isinstance(sub, dict):
            continue
        for key, value in sub.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**value, **(merged.get("properties") or {})}
            elif key == "required" and isinstance(value, list):
                merged["required"] = list(dict.fromkeys([*(merged.get("required") or []), *value]))
            else:
                merged.setdefault(key, value)
    return merged


def _convert(node, root: dict, refs: frozenset, depth: int) -> dict:
    if not isinstance(node, dict):
        node = {}  # `true` / junk: any value
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = _resolve_ref(ref, root)
        if target is not None and (ref in refs or depth >= _MAX_DEPTH):
            # A cycle (a tree node referring to itself): keep the outer shape
            # only, so a recursive object stays an object, just free-form.
            target = {k: target[k] for k in ("type", "description") if k in target}
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**(target or {}), **rest}
        refs = refs | {ref}
    if isinstance(node.get("allOf"), list):
        node = _merge_all_of(node)

    out: dict = {}
    nullable = node.get("nullable") is True

    raw_type = node.get("type")
    if isinstance(raw_type, str):
        types = [raw_type]
    elif isinstance(raw_type, list):
        types = [t for t in raw_type if isinstance(t, str)]
    else:
        types = []
    if "null" in types:
        nullable = True
        types = [t for t in types if t != "null"]
    type_ = types[0] if len(types) == 1 else None

    variants = node.get("anyOf") if isinstance(node.get("anyOf"), list) else node.get("oneOf")
    if len(types) > 1:
        variants = [{"type": t} for t in types]
    if isinstance(variants, list):
        kept = []
        for v in variants:
            if isinstance(v, dict) and v.get("type") == "null":
                nullable = True
            else:
                kept.append(v)
        converted = [_convert(v, root, refs, depth + 1) for v in kept] if depth < _MAX_DEPTH else []
        if len(converted) == 1 and type_ is None:
            out.update(converted[0])  # "X or null" is just a nullable X
            type_ = out.get("type")
        elif converted:
            out["anyOf"] = converted

    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]

    enum = node.get("enum")
    if "const" in node and enum is None:
        enum = [node["const"]]
    if isinstance(enum, list):
        if None in enum:
            nullable = True
            enum = [e for e in enum if e is not None]
        # Gemini takes enums of strings only; a typed non-string enum is
        # left as its plain type.
        if enum and all(isinstance(e, str) for e in enum) and type_ in (None, "string"):
            out["enum"] = enum
            type_ = "string"

    props = node.get("properties")
    if isinstance(props, dict) and props and depth < _MAX_DEPTH:
        out["properties"] = {
            name: _convert(sub, root, refs, depth + 1) for name, sub in props.items() if isinstance(name, str)
        }
        required = [r for r in node.get("required") or () if isinstance(r, str) and r in out["properties"]]
        if required:
            out["required"] = list(dict.fromkeys(required))
        type_ = type_ or "object"

    items = node.get("items")
    if isinstance(items, list):
        items = items[0] if items else None
    if type_ == "array" or (type_ is None and isinstance(items, dict)):
        type_ = "array"
        if isinstance(items, dict) or "items" not in out:  # keep a merged variant's items
            # Gemini needs ``items`` on every array; untyped items read as strings.
            out["items"] = _convert(items, root, refs, depth + 1) if depth < _MAX_DEPTH else {"type": "string"}

    if type_ is None and "anyOf" not in out:
        # Gemini wants a type on every schema; an untyped JSON Schema
        # ("any value") is closest to a free string.
        type_ = "string"
    if type_ is not None:
        out = {"type": type_, **{k: v for k, v in out.items() if k != "type"}}

    fmt = node.get("format")
    if isinstance(fmt, str) and "enum" not in out and (
        (type_ == "string" and fmt in _STRING_FORMATS) or (type_ in ("number", "integer") and fmt in _NUMBER_FORMATS)
    ):
        out["format"] = fmt
    if type_ == "array":
        for key in _COUNT_KEYS:
            if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
                out[key] = node[key]
    if type_ in ("number", "integer"):
        for key in _BOUND_KEYS:
            if _is_number(node.get(key)):
                out[key] = node[key]
    if nullable:
        out["nullable"] = True
    return out


def gemini_schema(schema) -> dict:
    """A tool's sanitised JSON Schema → Gemini's OpenAPI-subset ``Schema``.

    Gemini rejects what it does not know (``additionalProperties``,
    ``$schema``, ``$ref``/``$defs``, ``default``, ``examples``, ``pattern``,
    unknown ``format`` values, type arrays) with a 400 for the whole request,
    so this keeps a small allow-list: local ``$ref``s are inlined (cycles cut),
    ``allOf`` merged, ``oneOf`` read as ``anyOf``, ``["T","null"]`` and
    null variants become ``nullable``, ``const`` a one-value enum. Objects
    with no properties lose the empty ``properties`` (Gemini: "should be
    non-empty for OBJECT type").
    """
    root = schema if isinstance(schema, dict) else {}
    return _convert(root, root, frozenset(), 0)
