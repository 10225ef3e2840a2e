"""Chat Completions stream → Anthropic SSE frames.

Every example runs through ``run``, which feeds the upstream body whole, byte
by byte and in random splits (the output must not depend on how reads split
the bytes), with and without the fast path for plain text chunks (it must
change nothing but speed), and checks the framing and block-order invariants
on every result.
"""

from __future__ import annotations

import json
import random
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocproxy.errors import UpstreamDataError
from ocproxy.translate import sse
from ocproxy.translate.chat_stream import ChatStreamTranslator
from ocproxy.translate.ids import sequential

MODEL = "kimi-k2.6"
MID = "msg_test000001"  # the first id sequential("test") gives
ZERO = {"input_tokens": 0, "output_tokens": 0}

# -- building upstream bodies ------------------------------------------------


def enc(chunk) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    return json.dumps(chunk, separators=(",", ":")).encode()


def body(*chunks, done=True) -> bytes:
    """SSE body: each chunk as ``data: …`` plus a blank line; ``[DONE]`` last
    unless ``done=False`` (the upstream just hits EOF)."""
    lines = [b"data: " + enc(c) + b"\n\n" for c in chunks]
    if done:
        lines.append(b"data: [DONE]\n\n")
    return b"".join(lines)


def text(s):
    return {"choices": [{"delta": {"content": s}}]}


def think(s):
    return {"choices": [{"delta": {"reasoning_content": s}}]}


def call(index, id=None, name=None, args=None):
    entry = {"index": index}
    if id is not None:
        entry["id"] = id
        entry["type"] = "function"
    function = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    entry["function"] = function
    return {"choices": [{"delta": {"tool_calls": [entry]}}]}


def finish(reason):
    return {"choices": [{"delta": {}, "finish_reason": reason}]}


def usage(**u):
    return {"choices": [], "usage": u}


# -- running a translator ----------------------------------------------------

_GENERATED_TOOL_ID = re.compile(rb"toolu_test[0-9a-f]+")


def translate(pieces, fast_path=True):
    """Frames (generated tool ids normalised) and the failure text or None."""
    t = ChatStreamTranslator(MODEL, sequential("test"), fast_path=fast_path)
    frames: list[bytes] = []
    error = None
    try:
        for piece in pieces:
            frames += t.feed(piece)
        frames += t.close()
    except UpstreamDataError as exc:
        error = str(exc)
    return [_GENERATED_TOOL_ID.sub(b"toolu_GENERATED", f) for f in frames], error


def splits(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 40)
        out.append(data[i : i + n])
        i += n
    return out


def run(data: bytes):
    """Translate ``data`` every way; all must agree. Returns (events, error)."""
    frames, error = translate([data])
    assert translate([data], fast_path=False) == (frames, error), "fast path changed the output"
    assert translate([data[i : i + 1] for i in range(len(data))]) == (frames, error), "byte-by-byte differs"
    for seed in range(3):
        assert translate(splits(data, seed)) == (frames, error), f"random split {seed} differs"
    events = parse_frames(frames)
    check_invariants(events, complete=error is None)
    return events, error


_FRAME = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]+)\n\n")


def parse_frames(frames: list[bytes]) -> list[dict]:
    """Each frame is exactly one ``event:``/``data:`` pair with the
    event name equal to the JSON type, JSON on one line."""
    events = []
    for frame in frames:
        m = _FRAME.fullmatch(frame)
        assert m, frame
        event = json.loads(m.group(2))
        assert event["type"] == m.group(1).decode()
        events.append(event)
    return events


def check_invariants(events: list[dict], complete: bool) -> None:
    """The block-order rules on one translated response."""
    if not events:
        assert not complete
        return
    assert events[0]["type"] == "message_start"
    assert events[0]["message"]["usage"] == ZERO
    assert events[0]["message"]["id"] == MID
    assert sum(e["type"] == "message_start" for e in events) == 1
    next_index = 0
    open_: dict[int, str] = {}
    stopped: set[int] = set()
    for n, e in enumerate(events[1:], 1):
        kind = e["type"]
        if kind == "content_block_start":
            assert e["index"] == next_index, "indices 0, 1, 2… without gaps or reuse"
            next_index += 1
            block = e["content_block"]
            required = {"text": {"type", "text"}, "thinking": {"type", "thinking", "signature"},
                        "tool_use": {"type", "id", "name", "input"}}[block["type"]]
            assert set(block) == required, "every block carries its required fields"
            if block["type"] != "tool_use":
                assert not any(k != "tool_use" for k in open_.values()), "at most one text/thinking block open"
            else:
                assert block["input"] == {} and block["id"]
            open_[e["index"]] = block["type"]
        elif kind == "content_block_delta":
            assert e["index"] in open_, "delta only for an open block"
            want = {"text": {"text_delta"}, "thinking": {"thinking_delta", "signature_delta"},
                    "tool_use": {"input_json_delta"}}[open_[e["index"]]]
            assert e["delta"]["type"] in want
        elif kind == "content_block_stop":
            index = e["index"]
            assert index in open_ and index not in stopped, "exactly one stop per block"
            if open_[index] == "thinking":
                prev = events[n - 1]
                assert prev["type"] == "content_block_delta" and prev["index"] == index
                assert prev["delta"] == {"type": "signature_delta", "signature": sse.THINKING_SIGNATURE}, "thinking closes with its signature"
            del open_[index]
            stopped.add(index)
        elif kind == "message_delta":
            assert not open_, "message_delta after every content_block_stop"
            assert events[n + 1:] == [{"type": "message_stop"}]
            assert set(e["usage"]) >= {"input_tokens", "output_tokens"}
        else:
            assert kind == "message_stop" and n == len(events) - 1
    if complete:
        assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
        assert len(stopped) == next_index, "every started block stopped"


def notation(events: list[dict]) -> list[tuple]:
    """Short names for events: S, start, text, think, sig, json, stop, D, E."""
    out = []
    for e in events:
        kind = e["type"]
        if kind == "message_start":
            out.append(("S",))
        elif kind == "content_block_start":
            b = e["content_block"]
            if b["type"] == "tool_use":
                out.append(("start", e["index"], "tool_use", b["id"], b["name"]))
            else:
                out.append(("start", e["index"], b["type"]))
        elif kind == "content_block_delta":
            d = e["delta"]
            if d["type"] == "text_delta":
                out.append(("text", e["index"], d["text"]))
            elif d["type"] == "thinking_delta":
                out.append(("think", e["index"], d["thinking"]))
            elif d["type"] == "signature_delta":
                out.append(("sig", e["index"]))
            else:
                assert d["type"] == "input_json_delta", d
                out.append(("json", e["index"], d["partial_json"]))
        elif kind == "content_block_stop":
            out.append(("stop", e["index"]))
        elif kind == "message_delta":
            assert e["delta"]["stop_sequence"] is None
            out.append(("D", e["delta"]["stop_reason"], e["usage"]))
        else:
            out.append(("E",))
    return out


S, E = ("S",), ("E",)


def start(i, kind, id=None, name=None):
    return ("start", i, kind, id, name) if kind == "tool_use" else ("start", i, kind)


def D(reason, usage=None):
    return ("D", reason, usage or ZERO)


T = lambda i, s: ("text", i, s)
TH = lambda i, s: ("think", i, s)
J = lambda i, s: ("json", i, s)
SIG = lambda i: ("sig", i)
STOP = lambda i: ("stop", i)
GEN = "toolu_GENERATED"


# -- exact framing -------------------------------------------------------

SX1_OUT = """\
event: message_start
data: {"type":"message_start","message":{"id":"<id>","type":"message","role":"assistant","content":[],"model":"kimi-k2.6","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":0,"output_tokens":0}}

event: message_stop
data: {"type":"message_stop"}

"""


def test_exact_framing():
    data = body(
        '{"choices":[{"delta":{"content":"Hello"}}]}',
        '{"choices":[{"delta":{"content":" world"}}]}',
        '{"choices":[{"delta":{},"finish_reason":"stop"}]}',
    )
    run(data)
    frames, error = translate([data])
    assert error is None
    got = b"".join(frames).decode().replace(MID, "<id>")
    want_frames = SX1_OUT.split("\n\n")[:-1]
    got_frames = got.split("\n\n")
    assert got_frames[-1] == "" and len(got_frames) - 1 == len(want_frames)
    for g, w in zip(got_frames, want_frames):
        g_event, g_data = g.split("\n")
        w_event, w_data = w.split("\n")
        assert g_event == w_event
        assert g_data.startswith("data: ") and json.loads(g_data[6:]) == json.loads(w_data[6:])


def test_generated_message_id_is_unique():
    ids = sequential()
    a = ChatStreamTranslator(MODEL, ids)
    b = ChatStreamTranslator(MODEL, ids)
    ids = []
    for t in (a, b):
        frames = t.feed(body(text("x"))) + t.close()
        ids.append(parse_frames(frames)[0]["message"]["id"])
    assert all(i.startswith("msg_") for i in ids) and ids[0] != ids[1]


# -- event sequences -----------------------------------------------------------

ARGS = '{"path":"/tmp/x"}'

CASES = [
    pytest.param(
        body(think("Thinking..."), text("Hello"), text(" world"), finish("stop")),
        [S, start(0, "thinking"), TH(0, "Thinking..."), SIG(0), STOP(0), start(1, "text"),
         T(1, "Hello"), T(1, " world"), STOP(1), D("end_turn"), E],
        id="thinking-then-text",
    ),
    pytest.param(
        body(
            '{"choices":[{"delta":{"reasoning_content":"Thinking..."}}]}',
            '{"choices":[{"delta":{},"finish_reason":"stop"}]}',
            '{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120}}',
        ),
        [S, start(0, "thinking"), TH(0, "Thinking..."), SIG(0), STOP(0),
         D("end_turn", {"input_tokens": 100, "output_tokens": 20}), E],
        id="thinking-only-with-usage",
    ),
    pytest.param(
        body(
            '{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"toolu_abc","type":"function","function":{"name":"read_file","arguments":""}}]}}]}',
            '{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"path\\":\\"/tmp/x\\"}"}}]}}]}',
            '{"choices":[{"delta":{},"finish_reason":"tool_use"}]}',
        ),
        [S, start(0, "tool_use", "toolu_abc", "read_file"), J(0, ARGS), STOP(0), D("tool_use"), E],
        id="tool-call-args-in-second-chunk",
    ),
    pytest.param(
        body(call(0, "call_1", "get_weather", ""), call(0, args='{"loc'), call(0, args='ation":"NYC"}'),
             finish("tool_calls")),
        [S, start(0, "tool_use", "call_1", "get_weather"), J(0, '{"loc'), J(0, 'ation":"NYC"}'), STOP(0),
         D("tool_use"), E],
        id="tool-args-in-fragments",
    ),
    pytest.param(
        body(text("Let me check that for you."), call(0, "toolu_x", "get_data"), call(0, args='{"id":1}'),
             finish("tool_use")),
        [S, start(0, "text"), T(0, "Let me check that for you."), STOP(0),
         start(1, "tool_use", "toolu_x", "get_data"), J(1, '{"id":1}'), STOP(1), D("tool_use"), E],
        id="text-then-tool",
    ),
    pytest.param(
        body(think("hmm"), call(0, "toolu_y", "f", '{"a":1}'), finish("tool_calls")),
        [S, start(0, "thinking"), TH(0, "hmm"), SIG(0), STOP(0), start(1, "tool_use", "toolu_y", "f"),
         J(1, '{"a":1}'), STOP(1), D("tool_use"), E],
        id="thinking-then-tool",
    ),
    pytest.param(
        body(call(0, "call_s", "search"), call(1, "call_l", "lookup"), call(0, args='{"q'),
             call(1, args='{"id'), call(0, args='uery":"go"}'), call(1, args='":"42"}'), finish("tool_use")),
        [S, start(0, "tool_use", "call_s", "search"), start(1, "tool_use", "call_l", "lookup"),
         J(0, '{"q'), J(1, '{"id'), J(0, 'uery":"go"}'), J(1, '":"42"}'), STOP(0), STOP(1), D("tool_use"), E],
        id="two-tools-interleaved",
    ),
    pytest.param(
        body(
            '{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"toolu_abc","type":"function","function":{"name":"read_file","arguments":""}}]}}]}',
            call(0, args=""),  # empty arguments for the open key: nothing
            call(0, "toolu_abc", "read_file", ARGS),  # repeated id/name: continuation, no second start
            '{"choices":[{"delta":{},"finish_reason":"tool_use"}]}',
            '{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":""}}]}}]}',  # ghost
            call(0, args='{"late":1}'),  # ghost with arguments: still ignored
        ),
        [S, start(0, "tool_use", "toolu_abc", "read_file"), J(0, ARGS), STOP(0), D("tool_use"), E],
        id="continuation-and-ghost-fragments",
    ),
    pytest.param(
        body(call(0, "c0", "a", "{}"), call(1, "c1", "b", "{}"), finish("tool_use"),
             '{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}'),
        [S, start(0, "tool_use", "c0", "a"), J(0, "{}"), start(1, "tool_use", "c1", "b"), J(1, "{}"),
         STOP(0), STOP(1), D("tool_use", {"input_tokens": 10, "output_tokens": 5}), E],
        id="two-tools-then-usage",
    ),
    pytest.param(
        body('{"choices":[{"delta":{"content":"Hello"},"finish_reason":"stop"}]}'),
        [S, start(0, "text"), T(0, "Hello"), STOP(0), D("end_turn"), E],
        id="text-and-finish-in-one-chunk",
    ),
    pytest.param(
        body(call(0, "call_w", "weather", ""),
             {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"loc":"Beijing"}'}}]},
                           "finish_reason": "tool_calls"}]}),
        [S, start(0, "tool_use", "call_w", "weather"), J(0, '{"loc":"Beijing"}'), STOP(0), D("tool_use"), E],
        id="args-and-finish-in-one-chunk",
    ),
    pytest.param(
        body(call(0, "call_r", "read_file", ""), call(0, args='{"path":"/tmp/test"}'), done=False),
        [S, start(0, "tool_use", "call_r", "read_file"), J(0, '{"path":"/tmp/test"}'), STOP(0), D("tool_use"), E],
        id="tool-call-cut-by-EOF",
    ),
    pytest.param(
        body(text("Hello"), done=False),
        [S, start(0, "text"), T(0, "Hello"), STOP(0), D("end_turn", ZERO), E],
        id="text-cut-by-EOF",
    ),
    pytest.param(
        body('{"choices":[{"delta":{"reasoning_content":"Thinking...","content":"Hello"}}]}', text(" world"),
             finish("stop")),
        [S, start(0, "thinking"), TH(0, "Thinking..."), SIG(0), STOP(0), start(1, "text"), T(1, "Hello"),
         T(1, " world"), STOP(1), D("end_turn"), E],
        id="reasoning-and-content-reasoning-key-first",
    ),
    pytest.param(
        body('{"choices":[{"delta":{"content":"Hello","reasoning_content":"Thinking..."}}]}', text(" world"),
             finish("stop")),
        [S, start(0, "thinking"), TH(0, "Thinking..."), SIG(0), STOP(0), start(1, "text"), T(1, "Hello"),
         T(1, " world"), STOP(1), D("end_turn"), E],
        id="reasoning-and-content-content-key-first",
    ),
    pytest.param(
        body('{"choices":[{"delta":{"reasoning_content":""}}]}', text("Only text"), finish("stop")),
        [S, start(0, "text"), T(0, "Only text"), STOP(0), D("end_turn"), E],
        id="empty-reasoning-ignored",
    ),
    pytest.param(
        body('{"choices":[{"delta":{"content":[{"type":"text","text":"Vedo uno screenshot."}]}}]}',
             {"choices": [{"delta": {"content": [{"type": "text", "text": "a"}, {"type": "image_url"},
                                                 {"type": "text", "text": "b"}]}}]},
             finish("stop")),
        [S, start(0, "text"), T(0, "Vedo uno screenshot."), T(0, "ab"), STOP(0), D("end_turn"), E],
        id="content-as-list-of-parts",
    ),
    pytest.param(
        body(usage(prompt_tokens=123, completion_tokens=45, prompt_cache_hit_tokens=100,
                   prompt_cache_miss_tokens=23), text("x")),
        [S, start(0, "text"), T(0, "x"), STOP(0),
         D("end_turn", {"input_tokens": 23, "output_tokens": 45, "cache_read_input_tokens": 100}), E],
        id="cache-hit-and-miss-make-the-prompt",
    ),
    pytest.param(
        body(text("x"), finish("stop"), usage(prompt_tokens=100, completion_tokens=5, prompt_cache_hit_tokens=60,
                                              prompt_cache_miss_tokens=30)),
        [S, start(0, "text"), T(0, "x"), STOP(0),
         D("end_turn", {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 60,
                        "cache_creation_input_tokens": 30}), E],
        id="cache-counts-apart-from-the-prompt",
    ),
    pytest.param(
        body("{garbage", "{garbage", "{garbage", text("ok"), finish("stop")),
        [S, start(0, "text"), T(0, "ok"), STOP(0), D("end_turn"), E],
        id="three-decode-failures-are-skipped",
    ),
    pytest.param(
        body("{garbage", "42", "[1]", text("a"), b"\xff\xfe{}", "nul", '"s"', text("b")),
        [S, start(0, "text"), T(0, "a"), T(0, "b"), STOP(0), D("end_turn"), E],
        id="decode-failure-count-resets",
    ),
    pytest.param(
        body(text("A"), call(0, "call_f", "f"), text("B"), finish("stop")),
        [S, start(0, "text"), T(0, "A"), STOP(0), start(1, "tool_use", "call_f", "f"), start(2, "text"),
         T(2, "B"), STOP(1), STOP(2), D("tool_use"), E],
        id="text-after-tool-opens-a-new-block",
    ),
    pytest.param(
        b'data:{"choices":[{"delta":{"content":"x"}}]}\r\n\r\n: keep-alive\n: OPENROUTER PROCESSING\n'
        b"event: foo\nid: 7\nretry: 100\ndata:\ndata: \n\ndata:[DONE]\r\n",
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn"), E],
        id="comments-fields-empty-data-and-CRLF",
    ),
    # more rules
    pytest.param(
        body(text("cut"), finish("length")),
        [S, start(0, "text"), T(0, "cut"), STOP(0), D("max_tokens"), E],
        id="length-is-max_tokens",
    ),
    pytest.param(
        body(text("x"), finish("content_filter")),
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn"), E],
        id="content_filter-is-end_turn",
    ),
    pytest.param(
        body(text("x"), finish("stop"), text("y"), finish("length")),
        [S, start(0, "text"), T(0, "x"), STOP(0), start(1, "text"), T(1, "y"), STOP(1), D("max_tokens"), E],
        id="later-finish-overwrites",
    ),
    pytest.param(
        body(call(0, "c", "f", "{}"), finish("stop")),
        [S, start(0, "tool_use", "c", "f"), J(0, "{}"), STOP(0), D("tool_use"), E],
        id="stop-with-tool-is-tool_use",
    ),
    pytest.param(
        body(call(0, None, "f", "{}")),
        [S, start(0, "tool_use", GEN, "f"), J(0, "{}"), STOP(0), D("tool_use"), E],
        id="missing-tool-id-is-generated",
    ),
    pytest.param(
        body({"choices": [{"delta": {"tool_calls": [{"id": "c9", "function": {"name": "f", "arguments": "{"}}]}}]},
             {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "}"}}]}}]}),
        [S, start(0, "tool_use", "c9", "f"), J(0, "{"), J(0, "}"), STOP(0), D("tool_use"), E],
        id="tool-index-absent-is-0",
    ),
    pytest.param(
        body(text("a"), think("b"), text("c")),
        [S, start(0, "text"), T(0, "a"), STOP(0), start(1, "thinking"), TH(1, "b"), SIG(1), STOP(1),
         start(2, "text"), T(2, "c"), STOP(2), D("end_turn"), E],
        id="text-thinking-alternate",
    ),
    pytest.param(
        body(call(0, "c", "f"), think("r"), call(0, args="{}")),
        [S, start(0, "tool_use", "c", "f"), start(1, "thinking"), TH(1, "r"), J(0, "{}"), STOP(0), SIG(1),
         STOP(1), D("tool_use"), E],
        id="thinking-while-tool-open",
    ),
    pytest.param(
        body(usage(prompt_tokens=1, completion_tokens=1), text("x"),
             {"choices": [{"delta": {}}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}},
             {"choices": [{"delta": {}}], "usage": None}),
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn", {"input_tokens": 7, "output_tokens": 3}), E],
        id="last-usage-wins",
    ),
    pytest.param(
        body('{"choices":[{"delta":{"role":"assistant","content":""}}]}'),
        [S, D("end_turn"), E],
        id="role-only-chunk-is-handled",
    ),
    # tool-call fragments: which call a fragment belongs to
    pytest.param(
        body({"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": ""}},
                                                     {"id": "b", "function": {"name": "g", "arguments": ""}}]}}]},
             {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "{}"}},
                                                     {"function": {"arguments": "[]"}}]}}]}),
        [S, start(0, "tool_use", "a", "f"), start(1, "tool_use", "b", "g"), J(0, "{}"), J(1, "[]"), STOP(0), STOP(1),
         D("tool_use"), E],
        id="indexless-calls-continued-by-position",
    ),
    pytest.param(
        body({"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}}]},
             {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "}"}}]}}]},
             {"choices": [{"delta": {"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{"}}]}}]},
             {"choices": [{"delta": {"tool_calls": [{"id": "b", "function": {"arguments": "}"}}]}}]}),
        [S, start(0, "tool_use", "a", "f"), J(0, "{"), J(0, "}"), start(1, "tool_use", "b", "g"), J(1, "{"), J(1, "}"),
         STOP(0), STOP(1), D("tool_use"), E],
        id="indexless-calls-by-id-and-latest",
    ),
    pytest.param(
        body(call(0, "a", "f", "{}"), call(0, "b", "g", "{}"), call(0, args="")),
        [S, start(0, "tool_use", "a", "f"), J(0, "{}"), start(1, "tool_use", "b", "g"), J(1, "{}"), STOP(0), STOP(1),
         D("tool_use"), E],
        id="reused-index-with-a-new-id-is-a-new-call",
    ),
    pytest.param(
        body(call(0, "a", None, '{"x"'), call(0, args=":1"), call(0, name="f", args="}"), finish("tool_calls")),
        [S, start(0, "tool_use", "a", "f"), J(0, '{"x":1}'), STOP(0), D("tool_use"), E],
        id="arguments-before-the-name-are-kept",
    ),
    pytest.param(
        body(text("x"), call(0, "a", None, "{}"), finish("tool_calls")),
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn"), E],
        id="call-never-named-is-dropped",
    ),
    # reasoning and text shapes
    pytest.param(
        body(text("<think>plan"), text("</think>\n\nanswer"), finish("stop")),
        [S, start(0, "thinking"), TH(0, "plan"), SIG(0), STOP(0), start(1, "text"), T(1, "answer"), STOP(1),
         D("end_turn"), E],
        id="think-tags-become-a-thinking-block",
    ),
    pytest.param(
        body(text("use "), text("<think> tags"), finish("stop")),
        [S, start(0, "text"), T(0, "use "), T(0, "<think> tags"), STOP(0), D("end_turn"), E],
        id="think-tag-inside-the-answer-stays-text",
    ),
    pytest.param(
        body({"choices": [{"delta": {"reasoning": "r"}}]}, text("t")),
        [S, start(0, "thinking"), TH(0, "r"), SIG(0), STOP(0), start(1, "text"), T(1, "t"), STOP(1), D("end_turn"), E],
        id="reasoning-key",
    ),
    # usage where the provider puts it
    pytest.param(
        body(text("x"), {"choices": [{"delta": {}, "finish_reason": "stop", "usage": {"prompt_tokens": 5,
                                                                                       "completion_tokens": 2}}]}),
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn", {"input_tokens": 5, "output_tokens": 2}), E],
        id="usage-inside-the-choice",
    ),
    pytest.param(
        body({"choices": [{"delta": {"content": "x"}, "usage": {"prompt_tokens": 5, "completion_tokens": 2}}]},
             usage(prompt_tokens=7, completion_tokens=3, prompt_tokens_details={"cached_tokens": 4})),
        [S, start(0, "text"), T(0, "x"), STOP(0),
         D("end_turn", {"input_tokens": 3, "output_tokens": 3, "cache_read_input_tokens": 4}), E],
        id="top-level-usage-wins-and-cached-tokens-move-out-of-input",
    ),
    pytest.param(
        body(text("x"), done=False).rstrip(b"\n"),
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn"), E],
        id="last-line-without-newline",
    ),
    pytest.param(
        body(text("x")) + body(text("after done"), "{bad", "{bad", "{bad", "{bad", done=False),
        [S, start(0, "text"), T(0, "x"), STOP(0), D("end_turn"), E],
        id="nothing-read-after-DONE",
    ),
]


@pytest.mark.parametrize("data, expected", CASES)
def test_stream_examples(data, expected):
    events, error = run(data)
    assert error is None
    assert notation(events) == expected


ESCAPES = [
    ('{"choices":[{"delta":{"content":"say \\"hi\\" now"}}]}', 'say "hi" now'),
    ('{"choices":[{"delta":{"content":"line1\\nline2"}}]}', "line1\nline2"),
    ('{"choices":[{"delta":{"content":"C:\\\\dir\\\\"}}]}', "C:\\dir\\"),
    ('{"choices":[{"delta":{"content":"caf\\u00e9 \\ud83d\\ude00"}}]}', "café 😀"),
    ('{"choices":[{"delta":{"content":"a\\"b"},"finish_reason":null}]}', 'a"b'),
]


@pytest.mark.parametrize("payload, want", ESCAPES, ids=[f"escapes-row{i}" for i in range(1, 6)])
def test_escapes(payload, want):
    events, error = run(body(payload, finish("stop")))
    assert error is None
    assert notation(events) == [S, start(0, "text"), T(0, want), STOP(0), D("end_turn"), E]
    # repeated, so the second line goes through a learned fast-path skeleton
    events, _ = run(body(payload, payload))
    assert notation(events)[2:4] == [T(0, want), T(0, want)]


# -- failures ----------------------------------------------------------------

FAILURES = [
    pytest.param(body("{garbage", "{garbage", "{garbage", "{garbage", text("late")),
                 "too many consecutive SSE decode failures", id="four-decode-failures"),
    pytest.param(body("{x", "1", "null", b"\xc3\x28"), "too many consecutive SSE decode failures",
                 id="non-objects-and-bad-utf8-count"),
    pytest.param(b"", "empty stream", id="empty-body"),
    pytest.param(b": comment\nevent: x\n\n", "empty stream", id="only-comments"),
    pytest.param(b"data: [DONE]\n\n", "empty stream", id="only-DONE"),
    pytest.param(b'{"error":{"message":"bad key"}}\n', "empty stream", id="non-SSE-error-body"),
    pytest.param(body("{bad", done=False), "empty stream", id="only-undecodable"),
    pytest.param(body({"error": {"message": "rate limited", "code": 429}}),
                 "upstream error in stream: rate limited", id="error-chunk"),
    pytest.param(body({"error": "overloaded", "choices": []}), "upstream error in stream: overloaded",
                 id="error-chunk-empty-choices"),
    # an error object fails the attempt even when the chunk also has choices
    pytest.param(body({"error": {"message": "overloaded"}, "choices": [{"delta": {"content": "x"}}]}),
                 "upstream error in stream: overloaded", id="error-with-choices-fails"),
    pytest.param(body(text("x"), finish("error")), 'upstream stream ended with finish_reason "error"',
                 id="finish-reason-error-fails"),
]


@pytest.mark.parametrize("data, message", FAILURES)
def test_attempt_failures(data, message):
    _, error = run(data)
    assert error == message


def test_frames_before_failure_are_not_lost():
    """Frames from earlier lines of the same read are returned; the failure
    follows on the next call, so the result matches line-by-line reads."""
    t = ChatStreamTranslator(MODEL, sequential("test"))
    frames = t.feed(body(text("Hello"), {"error": {"message": "boom"}}))
    assert notation(parse_frames(frames)) == [S, start(0, "text"), T(0, "Hello")]
    with pytest.raises(UpstreamDataError, match="boom"):
        t.feed(b"data: " + enc(text("more")) + b"\n")
    with pytest.raises(UpstreamDataError, match="boom"):
        t.close()


def test_message_start_is_lazy():
    t = ChatStreamTranslator(MODEL, sequential("test"))
    assert t.feed(b": OPENROUTER PROCESSING\n\n") == []
    assert t.feed(body('{"choices":[{"delta":{"role":"assistant","content":""}}]}', done=False)) == []
    assert t.feed(body(usage(prompt_tokens=5), done=False)) == []
    frames = t.feed(body(text("hi"), done=False))
    assert notation(parse_frames(frames)) == [S, start(0, "text"), T(0, "hi")]


def test_line_handled_at_its_newline():
    """No waiting for a blank line, a buffer to fill or more data."""
    t = ChatStreamTranslator(MODEL, sequential("test"))
    line = b"data: " + enc(text("now"))
    assert t.feed(line) == []
    assert len(t.feed(b"\r\n")) == 3  # S, start, text


def test_DONE_sets_done_and_stops_reading():
    t = ChatStreamTranslator(MODEL, sequential("test"))
    t.feed(body(text("x"), done=False))
    assert not t.done
    assert t.feed(b"data: [DONE]\n\ndata: {bad\n\n") == []
    assert t.done
    assert t.feed(body(text("ignored"))) == []
    assert notation(parse_frames(t.close())) == [STOP(0), D("end_turn"), E]
    assert t.close() == []


def test_line_over_32_MiB_fails():
    t = ChatStreamTranslator(MODEL, sequential("test"))
    t.feed(b"data: " + b"x" * (1 << 20))
    with pytest.raises(UpstreamDataError, match="32 MiB"):
        for _ in range(40):
            t.feed(b"x" * (1 << 20))


# -- big lines ---------------------------------------------------------------


def test_ten_MB_tool_argument_in_one_line():
    arguments = json.dumps({"content": "line \"quoted\"\n" * 700_000 + "é"})
    assert len(arguments) > 10_000_000
    data = body(call(0, "call_big", "write_file", ""), call(0, args=arguments), finish("tool_calls"))
    t0 = time.perf_counter()
    frames, error = translate([data[i : i + 65536] for i in range(0, len(data), 65536)])
    elapsed = time.perf_counter() - t0
    assert error is None
    events = parse_frames(frames)
    check_invariants(events, complete=True)
    assert notation(events) == [S, start(0, "tool_use", "call_big", "write_file"), J(0, arguments), STOP(0),
                                D("tool_use"), E]
    assert elapsed < 5, f"{elapsed:.2f}s for a 10 MB line"


def test_ten_MB_line_in_small_reads_is_linear():
    content = "x" * 10_000_000
    data = body(text(content), done=False)
    t0 = time.perf_counter()
    frames, error = translate([data[i : i + 1024] for i in range(0, len(data), 1024)])
    elapsed = time.perf_counter() - t0
    assert error is None and notation(parse_frames(frames))[2] == T(0, content)
    assert elapsed < 5, f"{elapsed:.2f}s: quadratic buffering?"


# -- fast path -------------------------------------------------------------------

OPENAI_LIKE = '{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"k","choices":[{{"index":0,"delta":{{"content":{0}}},"finish_reason":null}}]}}'
SPACED = '{{"choices": [{{"index": 0, "delta": {{"role": "assistant", "content": {0}}}, "finish_reason": null}}]}}'
BARE = '{{"choices":[{{"delta":{{"content":{0}}}}}]}}'

EDGE = [
    pytest.param([BARE.format('"a\tb"')], id="raw-control-char"),
    pytest.param([BARE.format('"ok"'), BARE.format('"a\\qb"'), BARE.format('"ok"')], id="bad-escape"),
    pytest.param([BARE.format('"\\u12"'), BARE.format('"\\u12g4"')], id="short-unicode-escape"),
    pytest.param(['{"choices":[{"delta":{"content":"unterminated}}]}'], id="unterminated"),
    pytest.param([BARE.format('"x\\"')], id="escaped-final-quote"),
    pytest.param([BARE.format('"\\ud83d"'), BARE.format('"a\\udc00b"')], id="lone-surrogates"),
    pytest.param([BARE.format('"ok"').encode(), BARE.format('"a\xff\xfeb"').encode("latin-1"),
                  BARE.format('"é"').encode()], id="invalid-utf8"),
    pytest.param([BARE.format('"ok"'), BARE.format('"\u2028\u2029\x7f/\\/"')], id="U+2028-DEL-solidus"),
    pytest.param(['{"choices":[],"x":{"delta":{"content":"hi"}}}'], id="marker-outside-choices"),
    pytest.param(['{"error":{"delta":{"content":"x"}}}'], id="marker-inside-error"),
    pytest.param(['{"choices":[{"delta":{"content":"a","content":"b"}}]}'] * 2, id="duplicate-key"),
    # a later duplicate equal to the first probe's value: only the second probe tells
    pytest.param(['{"choices":[{"delta":{"content":"X","content":"\\u0000\\u0001"}}]}'] * 2,
                 id="duplicate-key-equal-to-probe"),
    pytest.param(['{"choices":[{"x":{"content":"evil"},"delta":{"content":"good"}}]}'] * 2,
                 id="earlier-content-member"),
    pytest.param(['{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}'] * 2, id="second-choice"),
    pytest.param(['{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}', BARE.format('"b"')],
                 id="finish-in-skeleton"),
    pytest.param(['{"choices":[{"delta":{"content":"a"}}],"usage":{"prompt_tokens":3}}'] * 2,
                 id="usage-in-skeleton"),
    pytest.param(['{"choices":[{"delta":{"content":"a"}}],"usage":null}'] * 2, id="null-usage"),
    pytest.param(['{"choices":[{"delta":{"content":"a","reasoning_content":"r"}}]}'] * 2, id="reasoning-after"),
    pytest.param(['{"choices":[{"delta":{"content":"a","tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}'] * 2,
                 id="tool-call-after"),
    pytest.param(['{"choices":[{"delta":{"content":5}}]}', '{"choices":[{"delta":{"content":null}}]}'],
                 id="non-string-content"),
    pytest.param([BARE.format('"a"') + " trailing", BARE.format('"a"') + "}"], id="bad-suffix"),
    pytest.param(['{"choices":[{"delta":{"content": "spaced"}}]}'] * 2, id="space-after-colon"),
    pytest.param([OPENAI_LIKE.format('""'), OPENAI_LIKE.format('"x"'), OPENAI_LIKE.format('"\\"y\\""')],
                 id="empty-then-text"),
    pytest.param([BARE.format('"x"') + "   "] * 2, id="trailing-space"),
]


@pytest.mark.parametrize("payloads", EDGE)
def test_fast_path_edge_cases(payloads):
    data = body(*payloads, *payloads)
    assert translate([data]) == translate([data], fast_path=False)
    run(data)


def test_fast_path_is_taken_for_plain_text():
    """Every text chunk after the first: the first one shows the think-tag
    splitter that the answer does not open with a think tag."""
    t = ChatStreamTranslator(MODEL, sequential("test"))
    for s in ("a", "b\\n", "c\\u00e9", "d"):
        t.feed(b"data: " + OPENAI_LIKE.format(f'"{s}"').encode() + b"\n\n")
    assert t._fast_hits == 3


_specials = st.sampled_from(['"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "\u2028",
                             "\u2029", "😀", "é", "/", "\ufeff", "\ud83d", "\ude00"])
_texts = st.text(alphabet=st.one_of(_specials, st.characters(exclude_categories=[])), max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(_texts, min_size=1, max_size=5),
    ensure_ascii=st.booleans(),
    template=st.sampled_from([BARE, OPENAI_LIKE, SPACED]),
)
def test_fast_path_equivalence(texts, ensure_ascii, template):
    """Generated text, encoded with and without ensure_ascii (lone surrogates
    then become invalid UTF-8: a decode failure on both paths) → the same
    frames and outcome as the full parse."""
    lines = []
    for s in texts:
        literal = json.dumps(s, ensure_ascii=ensure_ascii)
        lines.append(template.format(literal).encode("utf-8", "surrogatepass"))
    data = body(*lines, *lines)
    assert translate([data]) == translate([data], fast_path=False)


# -- the invariant helper itself must be able to fail ---------------------------

_MS = {"type": "message_start", "message": {"id": MID, "usage": ZERO}}
_TEXT0 = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
_THINK0 = {"type": "content_block_start", "index": 0,
           "content_block": {"type": "thinking", "thinking": "", "signature": sse.THINKING_SIGNATURE}}
_END = [{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": ZERO},
        {"type": "message_stop"}]


@pytest.mark.parametrize("events", [
    pytest.param([_MS, {**_TEXT0, "index": 1}, {"type": "content_block_stop", "index": 1}, *_END], id="index-gap"),
    pytest.param([_MS, _TEXT0, {"type": "content_block_stop", "index": 0},
                  {"type": "content_block_stop", "index": 0}, *_END], id="double-stop"),
    pytest.param([_MS, _TEXT0, *_END], id="message_delta-before-block-stop"),
    pytest.param([_MS, _THINK0, {"type": "content_block_stop", "index": 0}, *_END], id="thinking-without-signature"),
    pytest.param([_MS, {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
                  {"type": "content_block_stop", "index": 0}, *_END], id="text-block-missing-text"),
    pytest.param([_MS, _MS, *_END], id="two-message_starts"),
])
def test_invariant_helper_rejects(events):
    with pytest.raises(AssertionError):
        check_invariants(events, complete=True)
