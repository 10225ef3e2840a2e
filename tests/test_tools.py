"""Tool definitions and schema sanitising: transform.md TR-40…TR-44, TX-12."""

from __future__ import annotations

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


# TX-12: (name, input_schema, expected parameters or None for "dropped")
TX_12 = [
    pytest.param("", {"type": "object"}, None, id="TX-12-row1"),
    pytest.param("   ", {"type": "object"}, None, id="TX-12-row2"),
    pytest.param("Bash", _ABSENT, CANONICAL, id="TX-12-row3"),
    pytest.param("Bash", None, CANONICAL, id="TX-12-row4-null"),
    pytest.param("Bash", " null ", CANONICAL, id="TX-12-row4-null-with-whitespace"),
    pytest.param("Bash", {}, CANONICAL, id="TX-12-row5"),
    pytest.param(
        "Search",
        {"properties": {"query": {"type": "string"}}},
        {"type": "object", "properties": {"query": {"type": "string"}}},
        id="TX-12-row6",
    ),
    pytest.param("NoOp", {"type": "object"}, {"type": "object", "properties": {}}, id="TX-12-row7"),
    pytest.param("Bash", "{invalid", CANONICAL, id="TX-12-row8"),
    pytest.param("S", {"type": "string"}, {"type": "object", "properties": {}}, id="TX-12-row9"),
    pytest.param(
        "P", {"type": "object", "properties": []}, {"type": "object", "properties": {}}, id="TX-12-row10"
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
        id="TX-12-row11",
    ),
    pytest.param(
        "Flexible",
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
        id="TX-12-row12",
    ),
    pytest.param("X", [1, 2], CANONICAL, id="TX-12-row13"),
]


@pytest.mark.parametrize("name, schema, expected", TX_12)
def test_TX_12(name, schema, expected):
    out = chat_tools([_tool(name, schema)])
    if expected is None:
        assert out == []
    else:
        assert out == [{"type": "function", "function": {"name": name, "description": "d", "parameters": expected}}]
        # TR-44: an object, not a string
        assert isinstance(out[0]["function"]["parameters"], dict)


def test_TX_12_dropped_tool_leaves_exactly_bash():
    out = chat_tools([_tool("", {"type": "object"}), _tool("Bash", {"type": "object"})])
    assert [t["function"]["name"] for t in out] == ["Bash"]


def test_TR_40_order_kept_and_unnamed_dropped():
    out = chat_tools([_tool("b"), _tool(" "), _tool("a"), _tool(""), _tool("c")])
    assert [t["function"]["name"] for t in out] == ["b", "a", "c"]
    # a tool without a string name never reaches the translator: the parser refuses it
    for nameless in ({"description": "no name"}, _tool(None)):
        with pytest.raises(ProxyError, match=r"tools\[1\]\.name must be a string"):
            checked_request({"tools": [_tool("b"), nameless]})


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("{}", id="TR-41-json-text-empty-object"),
        pytest.param("  {  }\n", id="TR-41-empty-object-with-whitespace"),
        pytest.param("null", id="TR-41-json-text-null"),
    ],
)
def test_TR_41_empty_forms_are_canonical(schema):
    assert sanitize_schema(schema) == CANONICAL


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param("[1,2]", id="TR-42-json-text-array"),
        pytest.param('"text"', id="TR-42-json-text-string"),
        pytest.param("42", id="TR-42-json-text-number"),
        pytest.param("true", id="TR-42-json-text-boolean"),
        pytest.param(42, id="TR-42-number"),
        pytest.param(3.5, id="TR-42-float"),
        pytest.param(True, id="TR-42-boolean"),
        pytest.param("", id="TR-42-empty-string"),
    ],
)
def test_TR_42_non_objects_are_canonical(schema):
    assert sanitize_schema(schema) == CANONICAL


def test_TR_42_json_text_object_is_parsed_and_repaired():
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
            id="TR-43-type-list-forced-to-object",
        ),
        pytest.param(
            {"type": "object", "properties": None, "additionalProperties": False},
            {"type": "object", "properties": {}, "additionalProperties": False},
            id="TR-43-properties-null-replaced-additionalProperties-false-kept",
        ),
        pytest.param(
            {"type": "object", "additionalProperties": {"type": "string"}},
            {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            id="TR-43-additionalProperties-schema-kept",
        ),
        pytest.param(
            {"type": "object", "properties": {"n": {"type": "object"}}, "$defs": {"x": {"type": "integer"}}},
            {"type": "object", "properties": {"n": {"type": "object"}}, "$defs": {"x": {"type": "integer"}}},
            id="TR-43-nested-untouched-no-additionalProperties-added",
        ),
    ],
)
def test_TR_43_repair(schema, expected):
    assert sanitize_schema(schema) == expected


def test_TR_43_input_not_mutated():
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
    before = len(tools._memo)
    assert sanitize_schema(schema) == schema
    assert len(tools._memo) == before


def test_memo_bounded_and_repeat_hits(monkeypatch):
    monkeypatch.setattr(tools, "_memo", {})
    monkeypatch.setattr(tools, "_MEMO_MAX_ENTRIES", 3)
    calls = []
    real = tools._passes_metaschema
    monkeypatch.setattr(tools, "_passes_metaschema", lambda s: calls.append(1) or real(s))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    for _ in range(5):
        assert sanitize_schema(schema) == schema
    assert len(calls) == 1
    for i in range(10):
        sanitize_schema({"type": "object", "properties": {f"k{i}": {}}})
    assert len(tools._memo) == 3


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
            id="TR-2.5-empty-description-omitted",
        ),
        pytest.param(
            {"type": "custom", "name": "mcp__x", "description": "MCP", "input_schema": {"type": "object"}},
            {"name": "mcp__x", "description": "MCP", "parameters": {"type": "object", "properties": {}}},
            id="TR-2.5-own-type-ignored",
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


def test_TR_44_output_serialises_as_json_object():
    out = chat_tools([_tool("Bash", " null ")])
    assert json.loads(json.dumps(out))[0]["function"]["parameters"] == CANONICAL
