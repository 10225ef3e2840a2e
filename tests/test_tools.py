"""Tool definitions and schema sanitising."""

from __future__ import annotations

import functools
import json

import pytest

from ocproxy.errors import ProxyError
from ocproxy.request import checked_request
from ocproxy.translate import tools
from ocproxy.translate.tools import canonical_empty_schema, chat_tools, sanitize_schema

CANONICAL = {"type": "object", "properties": {}, "additionalProperties": False}
_ABSENT = object()


def _tool(name, schema=_ABSENT, description="d"):
    tool = {"name": name, "description": description}
    if schema is not _ABSENT:
        tool["input_schema"] = schema
    return tool


# (name, input_schema, expected parameters or None for "dropped")
TOOL_SCHEMAS = [
    pytest.param("", {"type": "object"}, None, id="empty-name-dropped"),
    pytest.param("   ", {"type": "object"}, None, id="blank-name-dropped"),
    pytest.param("Bash", _ABSENT, CANONICAL, id="schema-absent"),
    pytest.param("Bash", None, CANONICAL, id="schema-null"),
    pytest.param("Bash", " null ", CANONICAL, id="schema-null-text-with-whitespace"),
    pytest.param("Bash", {}, CANONICAL, id="schema-empty-object"),
    pytest.param(
        "Search",
        {"properties": {"query": {"type": "string"}}},
        {"type": "object", "properties": {"query": {"type": "string"}}},
        id="type-missing-added",
    ),
    pytest.param("NoOp", {"type": "object"}, {"type": "object", "properties": {}}, id="properties-missing-added"),
    pytest.param("Bash", "{invalid", CANONICAL, id="schema-text-not-json"),
    pytest.param("S", {"type": "string"}, {"type": "object", "properties": {}}, id="type-string-forced-to-object"),
    pytest.param(
        "P", {"type": "object", "properties": []}, {"type": "object", "properties": {}}, id="properties-array-replaced"
    ),
    pytest.param(
        "Bash",
        {
            "type": "object",
            "properties": {"cmd": {"type": "string", "description": "The command"}},
            "required": ["cmd"],
        },
        {
            "type": "object",
            "properties": {"cmd": {"type": "string", "description": "The command"}},
            "required": ["cmd"],
        },
        id="valid-schema-kept",
    ),
    pytest.param(
        "Flexible",
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
        id="additionalProperties-true-kept",
    ),
    pytest.param("X", [1, 2], CANONICAL, id="schema-array"),
]


@pytest.mark.parametrize("name, schema, expected", TOOL_SCHEMAS)
def test_tool_schema_repaired_or_tool_dropped(name, schema, expected):
    out = chat_tools([_tool(name, schema)])
    if expected is None:
        assert out == []
    else:
        assert out == [{"type": "function", "function": {"name": name, "description": "d", "parameters": expected}}]
        # an object, not a string
        assert isinstance(out[0]["function"]["parameters"], dict)


def test_dropped_tool_leaves_exactly_bash():
    out = chat_tools([_tool("", {"type": "object"}), _tool("Bash", {"type": "object"})])
    assert [t["function"]["name"] for t in out] == ["Bash"]


def test_order_kept_and_unnamed_dropped():
    out = chat_tools([_tool("b"), _tool(" "), _tool("a"), _tool(""), _tool("c")])
    assert [t["function"]["name"] for t in out] == ["b", "a", "c"]
    # a tool without a string name never reaches the translator: the parser refuses it
    for nameless in ({"description": "no name"}, _tool(None)):
        with pytest.raises(ProxyError, match=r"tools\[1\]\.name must be a string"):
            checked_request({"tools": [_tool("b"), nameless]})


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("{}", id="json-text-empty-object"),
        pytest.param("  {  }\n", id="empty-object-with-whitespace"),
        pytest.param("null", id="json-text-null"),
    ],
)
def test_empty_forms_are_canonical(schema):
    assert sanitize_schema(schema) == CANONICAL


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("[1,2]", id="json-text-array"),
        pytest.param('"text"', id="json-text-string"),
        pytest.param("42", id="json-text-number"),
        pytest.param("true", id="json-text-boolean"),
        pytest.param(42, id="number"),
        pytest.param(3.5, id="float"),
        pytest.param(True, id="boolean"),
        pytest.param("", id="empty-string"),
    ],
)
def test_non_objects_are_canonical(schema):
    assert sanitize_schema(schema) == CANONICAL


def test_json_text_object_is_parsed_and_repaired():
    assert sanitize_schema('{"properties":{"q":{"type":"string"}}}') == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
    }


@pytest.mark.parametrize(
    "schema, expected",
    [
        pytest.param(
            {"type": ["object", "null"], "properties": {}},
            {"type": "object", "properties": {}},
            id="type-list-forced-to-object",
        ),
        pytest.param(
            {"type": "object", "properties": None, "additionalProperties": False},
            {"type": "object", "properties": {}, "additionalProperties": False},
            id="properties-null-replaced-additionalProperties-false-kept",
        ),
        pytest.param(
            {"type": "object", "additionalProperties": {"type": "string"}},
            {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            id="additionalProperties-schema-kept",
        ),
        pytest.param(
            {"type": "object", "properties": {"n": {"type": "object"}}, "$defs": {"x": {"type": "integer"}}},
            {"type": "object", "properties": {"n": {"type": "object"}}, "$defs": {"x": {"type": "integer"}}},
            id="nested-untouched-no-additionalProperties-added",
        ),
    ],
)
def test_repair(schema, expected):
    assert sanitize_schema(schema) == expected


def test_repair_does_not_mutate_input():
    schema = {"type": "string", "properties": []}
    sanitize_schema(schema)
    assert schema == {"type": "string", "properties": []}


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "object", "properties": {"a": {"type": "strin"}}}, id="metaschema-bad-nested-type"),
        pytest.param({"type": "object", "properties": {}, "required": "cmd"}, id="metaschema-required-not-array"),
        pytest.param({"type": "object", "properties": {}, "pattern": "("}, id="metaschema-bad-regex"),
        pytest.param({"$schema": 5, "type": "object"}, id="metaschema-odd-$schema"),
        pytest.param({"type": "object", "properties": {"a": {"minimum": float("nan")}}}, id="nan-not-json"),
        pytest.param({"type": "object", "properties": {"a": {1, 2}}}, id="non-json-python-value"),
    ],
)
def test_metaschema_gate_falls_back_to_canonical(schema):
    assert sanitize_schema(schema) == CANONICAL


def test_metaschema_respects_declared_draft():
    # draft-04 allows the boolean exclusiveMinimum that 2020-12 forbids
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"n": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
    }
    assert sanitize_schema(schema) == schema


def test_never_raises_on_deep_nesting():
    deep: dict = {"type": "object"}
    for _ in range(5000):
        deep = {"type": "object", "properties": {"x": deep}}
    out = sanitize_schema(deep)
    assert out["type"] == "object" and isinstance(out["properties"], dict)


def test_huge_schema_not_memoised_but_sanitised():
    props = {f"p{i}": {"type": "string", "description": "x" * 200} for i in range(2000)}
    schema = {"type": "object", "properties": props}
    before = tools._memo.cache_info().currsize
    assert sanitize_schema(schema) == schema
    assert tools._memo.cache_info().currsize == before


def test_memo_bounded_and_repeat_hits(monkeypatch):
    monkeypatch.setattr(tools, "_memo", functools.lru_cache(maxsize=3)(tools._memo.__wrapped__))
    calls = []
    real = tools._passes_metaschema
    monkeypatch.setattr(tools, "_passes_metaschema", lambda s: calls.append(1) or real(s))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    for _ in range(5):
        assert sanitize_schema(schema) == schema
    assert len(calls) == 1
    for i in range(10):
        sanitize_schema({"type": "object", "properties": {f"k{i}": {}}})
    assert tools._memo.cache_info().currsize == 3


def test_result_is_a_fresh_object():
    a = sanitize_schema(None)
    a["properties"]["x"] = 1
    assert sanitize_schema(None) == CANONICAL
    assert canonical_empty_schema() == CANONICAL


@pytest.mark.parametrize(
    "tool, expected_function",
    [
        pytest.param(
            {"name": "f", "description": "", "input_schema": {"type": "object"}},
            {"name": "f", "parameters": {"type": "object", "properties": {}}},
            id="empty-description-omitted",
        ),
        pytest.param(
            {"type": "custom", "name": "mcp__x", "description": "MCP", "input_schema": {"type": "object"}},
            {"name": "mcp__x", "description": "MCP", "parameters": {"type": "object", "properties": {}}},
            id="own-type-ignored",
        ),
    ],
)
def test_chat_tool_shape(tool, expected_function):
    assert chat_tools([tool]) == [{"type": "function", "function": expected_function}]


def test_chat_tools_absent_is_none():
    assert chat_tools(checked_request({"tools": None}).tools) == []
    assert chat_tools(checked_request({}).tools) == []


@pytest.mark.parametrize("value", [{}, "x", [None, 1, "a"]], ids=["dict", "string", "junk-items"])
def test_odd_tools_never_reach_the_translator(value):
    with pytest.raises(ProxyError, match="tools"):
        checked_request({"tools": value})


def test_output_serialises_as_json_object():
    out = chat_tools([_tool("Bash", " null ")])
    assert json.loads(json.dumps(out))[0]["function"]["parameters"] == CANONICAL
