"""Every chat-upstream quirk fixture in ``tests/quirks/`` through the real
SSE decoder and stream translator, fed whole, byte by byte and at random
splits (the result must not depend on how reads split the bytes), and the
whole-answer ones through the real answer converter. The events are checked
against the block-order invariants and folded into the message a client
would hold, which must be the fixture's expected message."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocproxy.config import ModelConfig
from ocproxy.errors import UpstreamDataError
from ocproxy.request import checked_request
from ocproxy.translate.chat import build_request
from ocproxy.translate.chat_response import convert_response
from ocproxy.translate.chat_stream import ChatStreamTranslator
from ocproxy.translate.ids import sequential
from ocproxy.translate.think_tags import ThinkTagSplitter, split_whole
from tests import quirks
from tests.sseclient import accumulate
from tests.test_chat_stream import check_invariants, parse_frames

FIXTURES = quirks.load()
STREAMING = quirks.streaming(FIXTURES)
WHOLE = quirks.whole(FIXTURES)


def translate(fixture: dict, pieces: list[bytes]) -> tuple[list[bytes], str | None]:
    model = fixture["upstream_model"]
    t = ChatStreamTranslator(model, sequential("test"), upstream_model=model)
    frames: list[bytes] = []
    try:
        for piece in pieces:
            frames += t.feed(piece)
        frames += t.close()
    except UpstreamDataError as exc:
        return frames, str(exc)
    return frames, None


def fold(events: list[dict]) -> dict:
    """The message a client accumulates from the events, thinking signatures
    left out (they are opaque)."""
    message = accumulate(events)
    for block in message["content"]:
        block.pop("signature", None)
    return message


def check(fixture: dict, frames: list[bytes], error: str | None) -> None:
    events = parse_frames(frames)
    check_invariants(events, complete=error is None)
    expect = fixture["expect"]
    message = fold(events)
    if "error" in expect:
        assert error is not None and expect["error"] in error, error
        assert "".join(b.get("text", "") for b in message["content"]) == expect["partial_text"]
        return
    assert error is None, error
    assert message == expect


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_stream_quirk_whole_and_byte_by_byte(name):
    fixture = STREAMING[name]
    data = quirks.sse_body(fixture)
    whole_read = translate(fixture, [data])
    check(fixture, *whole_read)
    assert translate(fixture, [data[i:i + 1] for i in range(len(data))]) == whole_read


@pytest.mark.parametrize("name", sorted(STREAMING))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_stream_quirk_at_random_splits(name, data):
    fixture = STREAMING[name]
    body = quirks.sse_body(fixture)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(body) - 1), max_size=12), label="cuts"))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    assert translate(fixture, pieces) == translate(fixture, [body])


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_whole_answer_quirk(name):
    fixture = WHOLE[name]
    got = convert_response(fixture["whole"], ModelConfig(model_id=fixture["upstream_model"]), sequential("q"), [])
    for block in got["content"]:
        block.pop("signature", None)
    assert {k: got[k] for k in ("content", "stop_reason", "usage")} == fixture["expect"]


def test_every_fixture_names_its_quirk_and_public_sources():
    assert len(FIXTURES) >= 20
    for name, fixture in FIXTURES.items():
        assert fixture["quirk"], name
        assert fixture["sources"] and all(s.startswith("https://") for s in fixture["sources"]), name
        assert ("stream" in fixture) != ("whole" in fixture), name
        assert fixture["upstream_model"], name


# -- the think-tag splitter on its own: any split of the text ------------------

THINK_CASES = [
    ("<think>plan</think>\n\nanswer", False, [("thinking", "plan"), ("text", "answer")]),
    ("  \n<think>plan</think>answer", False, [("thinking", "plan"), ("text", "answer")]),
    ("plan</think>answer", True, [("thinking", "plan"), ("text", "answer")]),
    ("<think>plan</think>answer", True, [("thinking", "plan"), ("text", "answer")]),
    ("just an answer", True, [("text", "just an answer")]),  # never closed: it was text
    ("just an answer", False, [("text", "just an answer")]),
    ("say <think> literally", False, [("text", "say <think> literally")]),
    ("<thinking is fun", False, [("text", "<thinking is fun")]),
    ("<think>cut off", False, [("thinking", "cut off")]),
    ("<think>a</think>b</think>c", False, [("thinking", "a"), ("text", "b</think>c")]),
    ("a < b </thin", True, [("text", "a < b </thin")]),
    ("\n\n", False, [("text", "\n\n")]),
]


def _merged(pieces):
    out: list[list[str]] = []
    for kind, text in pieces:
        if out and out[-1][0] == kind:
            out[-1][1] += text
        elif text:
            out.append([kind, text])
    return [tuple(p) for p in out]


@pytest.mark.parametrize("text, starts_inside, want", THINK_CASES, ids=[c[0] for c in THINK_CASES])
def test_think_tags_at_every_split(text, starts_inside, want):
    assert _merged(split_whole(text, starts_inside=starts_inside)) == want
    for cut in range(1, len(text)):
        splitter = ThinkTagSplitter(starts_inside=starts_inside)
        got = splitter.feed(text[:cut]) + splitter.feed(text[cut:]) + splitter.flush()
        assert _merged(got) == want, cut
    splitter = ThinkTagSplitter(starts_inside=starts_inside)
    got = [p for ch in text for p in splitter.feed(ch)] + splitter.flush()
    assert _merged(got) == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["<think>", "</think>", "<", "</", "think", ">", "a", " ", "\n", "é"]), max_size=12),
       st.booleans(), st.data())
def test_think_tags_do_not_depend_on_splits(parts, starts_inside, data):
    text = "".join(parts)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=6)))
    splitter = ThinkTagSplitter(starts_inside=starts_inside)
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(text)]):
        got += splitter.feed(text[a:b])
    got += splitter.flush()
    assert _merged(got) == _merged(split_whole(text, starts_inside=starts_inside))


# -- whole answers that fail, and reasoning going back in the history -----------

@pytest.mark.parametrize("body, message", [
    ({"error": {"message": "Provider disconnected"}, "choices": [{"message": {"content": "x"}, "finish_reason": "error"}]},
     "upstream error: Provider disconnected"),
    ({"choices": [{"message": {"content": "x"}, "finish_reason": "error"}]}, 'finish_reason "error"'),
], ids=["error-object", "finish-reason-error"])
def test_whole_answer_reporting_an_error_fails_the_attempt(body, message):
    with pytest.raises(UpstreamDataError, match=message):
        convert_response(body, ModelConfig(model_id="glm-5.1"), sequential("q"), [])


def test_whole_answer_drops_a_call_without_a_name_and_says_so():
    warnings: list[str] = []
    body = {"choices": [{"finish_reason": "tool_calls", "message": {"content": "ok", "tool_calls": [
        {"id": "c", "type": "function", "function": {"arguments": "{}"}}]}}]}
    got = convert_response(body, ModelConfig(model_id="glm-5.1"), sequential("q"), warnings)
    assert got["content"] == [{"type": "text", "text": "ok"}] and got["stop_reason"] == "end_turn"
    assert warnings == ["tool call without a name dropped"]


HISTORY = [
    {"role": "user", "content": "list"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "use ls", "signature": "proxy-thinking-placeholder"},
        {"type": "text", "text": "Listing."},
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]},
]


@pytest.mark.parametrize("model_id, want", [
    ("deepseek-v4-pro", {"content": "Listing.", "reasoning_content": "use ls"}),
    ("kimi-k2.6", {"content": "Listing.", "reasoning_content": "use ls"}),
    ("glm-5.1", {"content": "Listing.", "reasoning_content": "use ls"}),
    ("minimax-m2.5", {"content": "<think>use ls</think>\n\nListing."}),
])
def test_reasoning_goes_back_the_way_the_upstream_needs_it(model_id, want):
    req = checked_request({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": HISTORY})
    assistant = next(m for m in build_request(req, ModelConfig(model_id=model_id), True)["messages"]
                     if m["role"] == "assistant")
    assert {k: assistant[k] for k in ("content", "reasoning_content") if k in assistant} == want
    assert assistant["tool_calls"][0]["id"] == "call_1"


def test_minimax_text_streams_at_once_when_reasoning_comes_in_its_own_field():
    """Held text waits for a </think> that a model sending reasoning_content
    never sends: once reasoning came apart, text goes out as it arrives."""
    t = ChatStreamTranslator("minimax-m2.5", sequential("test"), upstream_model="minimax-m2.5")
    t.feed(b'data: {"choices":[{"delta":{"reasoning_content":"plan"}}]}\n\n')
    frames = t.feed(b'data: {"choices":[{"delta":{"content":"Answer"}}]}\n\n')
    assert [e["delta"]["text"] for e in parse_frames(frames)
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"] == ["Answer"]
    held = ChatStreamTranslator("minimax-m2.5", sequential("test"), upstream_model="minimax-m2.5")
    assert held.feed(b'data: {"choices":[{"delta":{"content":"Answer"}}]}\n\n') == []


@pytest.mark.parametrize("model, text, want", [
    ("glm-5.1", "<think>plan é</think>\n\nanswer 😀", [{"type": "thinking", "thinking": "plan é"},
                                                      {"type": "text", "text": "answer 😀"}]),
    ("minimax-m2.5", "plan é</think>\n\nanswer 😀", [{"type": "thinking", "thinking": "plan é"},
                                                   {"type": "text", "text": "answer 😀"}]),
], ids=["opening-and-closing-tag", "closing-tag-only"])
def test_think_tags_split_between_chunks_at_every_place(model, text, want):
    """The content cut into three deltas at every pair of places, each delta
    one chunk: the client always gets the same thinking and text."""
    fixture = {"upstream_model": model}
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            parts = [p for p in (text[:i], text[i:j], text[j:]) if p]
            data = b"".join(b"data: " + json.dumps({"choices": [{"delta": {"content": p}}]}).encode() + b"\n\n"
                            for p in parts) + b"data: [DONE]\n\n"
            frames, error = translate(fixture, [data])
            assert error is None
            events = parse_frames(frames)
            check_invariants(events, complete=True)
            assert fold(events)["content"] == want, parts


def test_whole_answer_usage_on_the_choice_and_cached_tokens():
    body = {"choices": [{"finish_reason": "stop", "message": {"content": "ok"},
                         "usage": {"prompt_tokens": 100, "completion_tokens": 7, "cached_tokens": 60}}]}
    got = convert_response(body, ModelConfig(model_id="kimi-k2.6"), sequential("q"), [])
    assert got["usage"] == {"input_tokens": 40, "output_tokens": 7, "cache_read_input_tokens": 60}
    body["usage"] = {"prompt_tokens": 90, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 80}}
    got = convert_response(body, ModelConfig(model_id="kimi-k2.6"), sequential("q"), [])
    assert got["usage"] == {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 80}


# -- parallel calls in any order: none merged, none lost ----------------------

_args = st.dictionaries(st.sampled_from(["path", "q", "n"]), st.one_of(st.text(max_size=8), st.integers()),
                        max_size=3)


@settings(max_examples=150, deadline=None)
@given(calls=st.lists(_args, min_size=1, max_size=4), shape=st.sampled_from(["index", "id-only", "index-0"]),
       data=st.data())
def test_parallel_calls_in_any_order_keep_their_inputs(calls, shape, data):
    """Each call's first fragment names it (an index; or, Moonshot-style, an
    id and no index; or index 0 for all with distinct ids), its arguments
    come in pieces, and the pieces of different calls interleave in any
    order (continuations by index, or by id when there is no index)."""
    encoded = [json.dumps(c) for c in calls]
    pieces = {i: [e[k:k + 3] for k in range(0, len(e), 3)] for i, e in enumerate(encoded)}

    def head(i):
        entry = {"id": f"call_{i}", "type": "function", "function": {"name": f"tool{i}", "arguments": ""}}
        if shape == "index":
            entry["index"] = i
        elif shape == "index-0":
            entry["index"] = 0
        return entry

    def more(i, text):
        if shape == "index":
            return {"index": i, "function": {"arguments": text}}
        return {"index": 0, "id": f"call_{i}", "function": {"arguments": text}} if shape == "index-0" \
            else {"id": f"call_{i}", "function": {"arguments": text}}

    chunks = [{"choices": [{"delta": {"tool_calls": [head(i)]}}]} for i in range(len(calls))]
    order = [i for i, ps in pieces.items() for _ in ps]
    order = data.draw(st.permutations(order))
    cursor = dict.fromkeys(pieces, 0)
    for i in order:
        chunks.append({"choices": [{"delta": {"tool_calls": [more(i, pieces[i][cursor[i]])]}}]})
        cursor[i] += 1
    chunks.append({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    frames, error = translate({"upstream_model": "kimi-k2.6"}, [body])
    assert error is None
    events = parse_frames(frames)
    check_invariants(events, complete=True)
    got = fold(events)
    assert got["stop_reason"] == "tool_use"
    assert [(b["id"], b["name"], b["input"]) for b in got["content"]] == \
        [(f"call_{i}", f"tool{i}", c) for i, c in enumerate(calls)]
