"""Request decoding and validation: one 400 naming the field, before anything else runs."""

import json

import pytest

from ocproxy.errors import ProxyError
from ocproxy.request import parse_count_tokens_request, parse_messages_request

GOOD = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}


def body(**changes):
    req = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            req.pop(key, None)
        else:
            req[key] = value
    return json.dumps(req).encode()


def msgs(*messages):
    return body(messages=list(messages))


def rejected(parse, raw) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        parse(raw)
    err = info.value
    assert err.status == 400
    assert err.kind == "invalid_request_error"
    payload = json.loads(err.body())
    assert payload == {"type": "error", "error": {"type": "invalid_request_error", "message": err.message}}
    return err


BAD = [
    # (id, raw body, exact message or the field it must name)
    ("not-json", b"{not json", "invalid request body: not valid JSON"),
    ("empty-body", b"", "invalid request body: not valid JSON"),
    ("json-array-not-object", b"[1,2]", "invalid request body: expected a JSON object, got array"),
    ("json-string-not-object", b'"x"', "invalid request body: expected a JSON object, got string"),
    ("json-null", b"null", "invalid request body: expected a JSON object, got null"),
    ("invalid-utf8", b'{"model": "\xff\xfe", "messages": []}', "invalid request body: body is not valid UTF-8"),
    ("nan-not-json", b'{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":NaN}',
     "invalid request body: not valid JSON"),
    ("trailing-garbage", body() + b"}", "invalid request body: not valid JSON"),
    ("model-missing", body(model=...), "model is required"),
    ("model-empty", body(model=""), "model is required"),
    ("model-null", body(model=None), "model is required"),
    ("model-number", body(model=5), "invalid request body: model must be a string"),
    ("messages-missing", body(messages=...), "messages is required"),
    ("messages-empty", body(messages=[]), "messages is required"),
    ("messages-string-x", body(messages="x"), "invalid request body: messages must be an array"),
    ("messages-object", body(messages={"role": "user"}), "invalid request body: messages must be an array"),
    ("stream-yes", body(stream="yes"), "invalid request body: stream must be a boolean"),
    ("stream-1", body(stream=1), "invalid request body: stream must be a boolean"),
    ("max_tokens-1.5", body(max_tokens=1.5), "invalid request body: max_tokens must be an integer"),
    ("max_tokens-1.0", b'{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1.0}',
     "invalid request body: max_tokens must be an integer"),
    ("max_tokens-bool", body(max_tokens=True), "invalid request body: max_tokens must be an integer"),
    ("max_tokens-string", body(max_tokens="100"), "invalid request body: max_tokens must be an integer"),
    ("temperature-string", body(temperature="hot"), "invalid request body: temperature must be a number"),
    ("temperature-bool", body(temperature=False), "invalid request body: temperature must be a number"),
    ("top_p-list", body(top_p=[1]), "invalid request body: top_p must be a number"),
    ("top_k-float", body(top_k=2.5), "invalid request body: top_k must be an integer"),
    ("metadata-string", body(metadata="u"), "invalid request body: metadata must be an object"),
    ("thinking-bool", body(thinking=True), "invalid request body: thinking must be an object"),
    ("tool_choice-string", body(tool_choice="auto"), "invalid request body: tool_choice must be an object"),
    ("message-not-object", msgs({"role": "user", "content": "a"}, "b"),
     "invalid request body: messages[1] must be an object"),
    ("role-number", msgs(*[{"role": "user", "content": "a"}] * 3, {"role": 7, "content": "x"}),
     "invalid request body: messages[3].role must be a string"),
    ("content-number", msgs({"role": "user", "content": 5}),
     "invalid request body: messages[0].content must be a string or an array of content blocks"),
    ("content-object", msgs({"role": "user", "content": {"type": "text"}}),
     "invalid request body: messages[0].content must be a string or an array of content blocks"),
    ("block-not-object", msgs({"role": "user", "content": ["x"]}),
     "invalid request body: messages[0].content[0] must be an object"),
    ("block-type-number", msgs({"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": 3}]}),
     "invalid request body: messages[2].content[1].type must be a string"),
    ("text-block-text-number", msgs({"role": "user", "content": [{"type": "text", "text": 1}]}),
     "invalid request body: messages[0].content[0].text must be a string"),
    ("tool_result-content-number",
     msgs({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 4}]}),
     "invalid request body: messages[0].content[0].content must be a string or an array of content blocks"),
    ("tool_result-inner-block-type",
     msgs({"role": "user", "content": [{"type": "tool_result", "content": [{"type": False}]}]}),
     "invalid request body: messages[0].content[0].content[0].type must be a string"),
    ("system-number", body(system=3), "invalid request body: system must be a string or an array of content blocks"),
    ("system-object", body(system={"text": "x"}),
     "invalid request body: system must be a string or an array of content blocks"),
    ("system-block-not-object", body(system=["x"]), "invalid request body: system[0] must be an object"),
    ("tools-object", body(tools={"name": "x"}), "invalid request body: tools must be an array"),
    ("tool-not-object", body(tools=["Bash"]), "invalid request body: tools[0] must be an object"),
    ("tool-name-missing", body(tools=[{"name": "a"}, {"input_schema": {}}]),
     "invalid request body: tools[1].name must be a string"),
    ("tool-name-number", body(tools=[{"name": 1}]), "invalid request body: tools[0].name must be a string"),
    ("stop_sequences-string", body(stop_sequences="END"),
     "invalid request body: stop_sequences must be an array of strings"),
    ("stop_sequences-item-number", body(stop_sequences=["a", 2]),
     "invalid request body: stop_sequences[1] must be a string"),
]


@pytest.mark.parametrize("raw, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_bodies_400(raw, message):
    err = rejected(parse_messages_request, raw)
    assert err.message.startswith(message), err.message


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a":' * 100_000, b'{"model":"m","messages":' + b"[" * 100_000],
    ids=["deep-array-100k", "deep-object-100k", "deep-inside-messages-100k"],
)
@pytest.mark.parametrize("parse", [parse_messages_request, parse_count_tokens_request],
                         ids=["messages", "count_tokens"])
def test_deep_nesting_is_400_not_crash(parse, raw):
    err = rejected(parse, raw)
    assert err.message == "invalid request body: JSON nested too deeply"


GOOD_BODIES = [
    ("minimal", GOOD),
    ("claude-code-shaped", {
        "model": "claude-opus-4-8[1m]", "max_tokens": 32000, "stream": True, "temperature": 1,
        "top_p": 0.9, "top_k": 5,
        "system": [{"type": "text", "text": "You are Claude Code", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user_x_session_1"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tool_choice": {"type": "auto"},
        "stop_sequences": ["END"],
        "tools": [{"type": "custom", "name": "Bash", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "run ls"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "…", "signature": "s"},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a b"}]},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]},
        ],
        "unknown_future_field": {"kept": True},
    }),
    ("nulls-read-as-absent", {**GOOD, "system": None, "tools": None, "stream": None, "temperature": None,
                              "messages": [{"role": None, "content": None}]}),
    ("temperature-int-ok", {**GOOD, "temperature": 0}),
    ("role-not-checked", {**GOOD, "messages": [{"role": "robot", "content": "x"}]}),
    ("block-without-type-passes", {**GOOD, "messages": [{"role": "user", "content": [{"text": "x"}]}]}),
    ("special-tokens-in-text", {**GOOD, "messages": [{"role": "user", "content": "<|endoftext|>"}]}),
    ("max_tokens-absent-or-zero", {**GOOD, "max_tokens": 0}),
]


@pytest.mark.parametrize("req", [g[1] for g in GOOD_BODIES], ids=[g[0] for g in GOOD_BODIES])
def test_valid_requests_pass_unchanged(req):
    assert parse_messages_request(json.dumps(req).encode()).body == req


def test_utf8_text_kept():
    raw = '{"model":"m","messages":[{"role":"user","content":"héllo ✓ 😀"}]}'.encode()
    assert parse_messages_request(raw).messages[0]["content"] == "héllo ✓ 😀"


def test_bytearray_and_memoryview_accepted():
    raw = body()
    assert parse_messages_request(bytearray(raw)).body == GOOD
    assert parse_messages_request(memoryview(raw)).body == GOOD


def test_type_errors_checked_before_presence():
    # a field of the wrong type is named even when a required field is missing
    err = rejected(parse_messages_request, b'{"messages": "x"}')
    assert err.message == "invalid request body: messages must be an array"


# --- count_tokens -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"{}", {}),
        (b'{"messages": []}', {"messages": []}),
        (b'{"model": ""}', {"model": ""}),
        (b'{"model":"x","messages":[{"role":"user","content":"hello world"}]}',
         {"model": "x", "messages": [{"role": "user", "content": "hello world"}]}),
    ],
    ids=["empty-object-valid", "no-messages-valid", "no-model-valid", "example"],
)
def test_count_tokens_no_presence_checks(raw, expected):
    assert parse_count_tokens_request(raw).body == expected


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "invalid request body: not valid JSON"),
        (b"[]", "invalid request body: expected a JSON object"),
        (b"\xc3\x28", "invalid request body: body is not valid UTF-8"),
        (b'{"messages": "x"}', "invalid request body: messages must be an array"),
    ],
    ids=["not-json", "not-object", "invalid-utf8", "wrong-type-is-decoding-error"],
)
def test_count_tokens_decoding_errors_400(raw, message):
    assert rejected(parse_count_tokens_request, raw).message.startswith(message)


def test_large_request_parses_fast():
    import time

    req = {"model": "m", "messages": [
        {"role": "user" if i % 2 == 0 else "assistant",
         "content": [{"type": "text", "text": "x" * 2000}, {"type": "tool_result", "content": "y" * 2000}]}
        for i in range(2000)
    ]}
    raw = json.dumps(req).encode()  # ~8 MB
    start = time.perf_counter()
    assert parse_messages_request(raw).body == req
    assert time.perf_counter() - start < 5
