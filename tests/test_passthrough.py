"""Raw Anthropic passthrough: the body goes out as the client wrote it but for
the routed model, Claude Code's custom tool types and our own placeholder
thinking blocks; the upstream's events come back whole and unchanged."""

from __future__ import annotations

import json
import random

import pytest

from ocproxy.errors import UpstreamDataError
from ocproxy.translate.anthropic import PassthroughStream, check_response, passthrough_body
from ocproxy.translate.dialects import DIALECTS
from ocproxy.translate.sse import THINKING_SIGNATURE


def forward(body, model="new-model") -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return passthrough_body(raw, model)


# ---------------------------------------------------------------------------
# the request body


def test_model_replaced_stream_kept():
    out = json.loads(forward(b'{"model":"old-model","stream":true}'))
    assert out == {"model": "new-model", "stream": True}


def test_whitespace_does_not_matter():
    out = json.loads(forward(b'{  "model"  :   "old-model"  ,   "stream": true}'))
    assert out["model"] == "new-model" and out["stream"] is True


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"stream":true}', id="no-model"),
        pytest.param(b"{invalid json}", id="invalid-json"),
        pytest.param(b'{"model": 42, "stream": true}', id="model-not-string"),
        pytest.param(b'["model", "old"]', id="not-object"),
        pytest.param(b'{"model": "new-model" , "x": 1}', id="already-routed-model"),
        pytest.param(b'{"model": "old", "t": NaN}', id="nan-not-json"),
        pytest.param(b'{"model": "old", "t": 1e999}', id="overflowing-number"),
        pytest.param(b'{"model": "old\xff"}', id="invalid-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_body_byte_identical_when_nothing_to_edit(raw):
    assert forward(raw) == raw


def test_nested_model_untouched():
    out = json.loads(forward(b'{"model":"old","nested":{"model":"don\'t touch me"}}'))
    assert out == {"model": "new-model", "nested": {"model": "don't touch me"}}


SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}


def test_custom_type_removed_everything_else_kept():
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "sys"}],
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "custom", "name": "my_tool", "description": "mine", "input_schema": SCHEMA},
            {"type": "custom", "name": "other_tool", "description": "other", "input_schema": {"type": "object"}},
        ],
    }
    out = json.loads(forward(body))
    assert out["tools"] == [
        {"name": "my_tool", "description": "mine", "input_schema": SCHEMA},
        {"name": "other_tool", "description": "other", "input_schema": {"type": "object"}},
    ]
    assert {k: v for k, v in out.items() if k not in ("tools", "model")} == {
        k: v for k, v in body.items() if k not in ("tools", "model")
    }
    assert out["max_tokens"] == 4096


def test_other_tool_types_unchanged():
    tools = [
        {"type": "function", "name": "f", "input_schema": SCHEMA},
        {"type": "web_search_20250305", "name": "web_search"},
    ]
    raw = json.dumps({"tools": tools}).encode()  # no model key: nothing to edit at all
    assert forward(raw) == raw
    out = json.loads(forward({"model": "old", "tools": tools}))
    assert out["tools"] == tools


def test_streaming_request_for_minimax_keeps_anthropic_tools():
    body = {
        "model": "claude-sonnet-4-5",
        "stream": True,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": SCHEMA}],
    }
    out = json.loads(forward(body, "minimax-m3"))
    assert out["model"] == "minimax-m3"
    assert out["tools"][0]["input_schema"] == SCHEMA
    assert "function" not in out["tools"][0]


def test_non_ascii_and_numbers_survive():
    raw = '{"model":"old","system":"Grüße 日本","temperature":0.7,"big":12345678901234567890,"f":1.5e3}'.encode()
    out = forward(raw)
    assert "Grüße 日本".encode() in out  # not \\u-escaped
    parsed = json.loads(out)
    assert parsed["temperature"] == 0.7 and parsed["big"] == 12345678901234567890 and parsed["f"] == 1500.0


def test_lone_surrogate_still_valid_json():
    out = forward(b'{"model":"old","s":"\\ud800"}')
    assert json.loads(out) == {"model": "new-model", "s": "\ud800"}


# ---------------------------------------------------------------------------
# contract "Decisions": placeholder thinking removed, real thinking kept


def test_placeholder_thinking_removed_real_signature_kept():
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "from a translated stream", "signature": THINKING_SIGNATURE},
                    {"type": "text", "text": "answer"},
                ],
            },
            {"role": "user", "content": "more"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "genuine", "signature": "EqQBCkgIAhABGAIiQL"},
                    {"type": "tool_use", "id": "t", "name": "f", "input": {}},
                ],
            },
        ],
    }
    out = json.loads(forward(body, "claude-sonnet-4-5"))  # same model: only the thinking edit
    assert out["messages"][1]["content"] == [{"type": "text", "text": "answer"}]
    assert out["messages"][3] == body["messages"][3]
    assert out["messages"][0] == body["messages"][0] and out["messages"][2] == body["messages"][2]


def test_real_signature_only_body_is_byte_identical():
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "real"}]}],
    }
    raw = json.dumps(body, indent=2).encode()
    assert forward(raw, "claude-sonnet-4-5") == raw


# ---------------------------------------------------------------------------
# check_response (non-streaming 2xx body)


def test_check_response_object_returned_verbatim():
    body = b'{"id": "msg_1", "type": "message", "content": []}'
    assert check_response(body) is body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<html><body>Gateway</body></html>", id="html-page"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1,2]", id="json-array"),
        pytest.param(b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}', id="error-object"),
    ],
)
def test_check_response_rejects_unusable(body):
    with pytest.raises(UpstreamDataError):
        check_response(body)


# ---------------------------------------------------------------------------
# PassthroughStream: whole upstream events forwarded as they complete

EVENTS = [
    b'event: message_start\ndata: {"type":"message_start","message":{"model":"up"}}\n\n',
    b"event: ping\ndata: {}\n\n",
    b'event: content_block_delta\r\ndata: {"type":"content_block_delta","delta":{"text":"a\\n\\nb"}}\r\n\r\n',
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]
STREAM = b"".join(EVENTS)


def run(chunks):
    stream = PassthroughStream()
    frames = []
    for chunk in chunks:
        frames.extend(stream.feed(chunk))
    return frames, stream.close()


def test_passthrough_stream_protocol_flags():
    stream = PassthroughStream()
    assert DIALECTS["anthropic"].pauses_heartbeat is True and stream.done is False
    stream.feed(STREAM)
    assert stream.done is False


def test_passthrough_stream_one_chunk_many_events():
    frames, rest = run([STREAM])
    assert frames == EVENTS and rest == []


def test_passthrough_stream_byte_by_byte():
    frames, rest = run([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert frames == EVENTS and rest == []


@pytest.mark.parametrize("seed", range(20), ids=[f"random-split-{i}" for i in range(20)])
def test_passthrough_stream_arbitrary_chunk_boundaries(seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 30)))
    chunks = [STREAM[a:b] for a, b in zip([0] + cuts, cuts + [len(STREAM)])]
    frames, rest = run(chunks)
    assert frames == EVENTS and rest == []


@pytest.mark.parametrize("cut", [1, 2, 3], ids=["crlf-split-after-1", "crlf-split-after-2", "crlf-split-after-3"])
def test_passthrough_stream_crlf_terminator_split(cut):
    event = b"data: x\r\n\r\n"
    head, tail = event[: len(event) - 4 + cut], event[len(event) - 4 + cut :]
    stream = PassthroughStream()
    assert stream.feed(head) == []
    assert stream.feed(tail) == [event]


def test_passthrough_stream_single_huge_event_in_many_chunks():
    payload = b"data: " + b"x" * 5_000_000 + b"\n\n"
    stream = PassthroughStream()
    frames = []
    for i in range(0, len(payload), 4096):
        frames.extend(stream.feed(payload[i : i + 4096]))
    assert frames == [payload]
    assert stream.close() == []


def test_passthrough_stream_close_returns_unterminated_remainder():
    frames, rest = run([EVENTS[0], b'event: message_stop\ndata: {"type":"message_stop"}\n'])
    assert frames == [EVENTS[0]]
    assert rest == [b'event: message_stop\ndata: {"type":"message_stop"}\n']


def test_close_without_any_byte_is_an_empty_stream():
    stream = PassthroughStream()
    assert stream.feed(b"") == []
    with pytest.raises(UpstreamDataError, match="empty stream"):
        stream.close()


def test_close_after_only_whitespace_is_success():
    stream = PassthroughStream()
    assert stream.feed(b"\n") == []
    assert stream.close() == [b"\n"]


def test_a_body_forwarded_unedited_says_why_through_the_dialect_warnings():
    """A number past float range cannot go back out as plain JSON, so the
    body is sent as the client wrote it and the relay gets a line to log."""
    from ocproxy.config import ModelConfig
    from ocproxy.request import parse_messages_request

    raw = b'{"model":"claude-x","max_tokens":5,"temperature":1e400,"messages":[{"role":"user","content":"hi"}]}'
    warnings: list[str] = []
    wire = DIALECTS["anthropic"].body(parse_messages_request(raw), ModelConfig(model_id="minimax-m2.5"), False, warnings)
    assert wire == raw
    assert len(warnings) == 1 and "forwarding it unchanged" in warnings[0]
