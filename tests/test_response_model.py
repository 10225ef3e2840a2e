"""Issue #15 item 2: every answer names the model the client asked for.

Claude Code keeps thinking blocks in its history only when the response's
model equals the one it requested; the upstream's own id goes to the
x-ocproxy-model header instead (tested end to end in test_e2e_client_model).
"""

import json

import pytest

from ocproxy.config import ModelConfig
from ocproxy.translate.anthropic import PassthroughStream, check_response, renamed_message_start
from ocproxy.translate.dialects import DIALECTS
from ocproxy.translate.ids import sequential

NAME = "claude-opus-4-8"

UPSTREAM_ANSWERS = {
    "chat": {"id": "c", "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]},
    "responses": {"status": "completed", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": "hi"}]}]},
    "gemini": {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]},
    "anthropic": {"id": "m", "type": "message", "role": "assistant", "model": "minimax-m3",
                  "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn"},
}


@pytest.mark.parametrize("endpoint", sorted(UPSTREAM_ANSWERS))
def test_whole_answer_names_the_requested_model(endpoint):
    data = json.dumps(UPSTREAM_ANSWERS[endpoint]).encode()
    out = DIALECTS[endpoint].response(data, ModelConfig(model_id="upstream-id"), sequential(), [], NAME)
    assert json.loads(out)["model"] == NAME


STREAMS = {
    "chat": [b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n', b"data: [DONE]\n\n"],
    "responses": [b'data: {"type":"response.output_text.delta","delta":"hi"}\n\n'],
    "gemini": [b'data: {"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}\n\n'],
    "anthropic": [b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","model":"minimax-m3",'
                  b'"content":[]}}\n\n'],
}


@pytest.mark.parametrize("endpoint", sorted(STREAMS))
def test_streamed_message_start_names_the_requested_model(endpoint):
    t = DIALECTS[endpoint].translator(ModelConfig(model_id="upstream-id"), sequential(), NAME)
    frames = b"".join(f for chunk in STREAMS[endpoint] for f in t.feed(chunk))
    start = next(line for line in frames.split(b"\n") if b'"message_start"' in line and line.startswith(b"data:"))
    assert json.loads(start[5:])["message"]["model"] == NAME


def test_passthrough_whole_answer_verbatim_when_it_already_names_the_model():
    body = b'{"type":"message","model":"claude-opus-4-8",  "x" : 1.50}'
    assert check_response(body, NAME) is body
    assert check_response(body) is body


def test_passthrough_whole_answer_renamed_rest_kept():
    body = json.dumps(UPSTREAM_ANSWERS["anthropic"]).encode()
    out = json.loads(check_response(body, NAME))
    assert out == {**UPSTREAM_ANSWERS["anthropic"], "model": NAME}


def test_passthrough_stream_renames_only_message_start():
    events = [
        b": upstream comment\r\n\r\n",
        b"event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"minimax-m3\","
        b"\"usage\":{\"input_tokens\":1}}}\r\n\r\n",
        b"event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"delta\":"
        b"{\"type\":\"text_delta\",\"text\":\"message_start minimax-m3\"}}\r\n\r\n",
    ]
    t = PassthroughStream(NAME)
    out = [f for e in events for f in t.feed(e)]
    assert out[0] == events[0] and out[2] == events[2]  # untouched bytes
    assert out[1].startswith(b"event: message_start\r\ndata: ") and out[1].endswith(b"\r\n\r\n")
    data = json.loads(out[1].split(b"data: ", 1)[1])
    assert data == {"type": "message_start", "message": {"model": NAME, "usage": {"input_tokens": 1}}}


def test_passthrough_stream_without_a_name_is_byte_for_byte():
    event = b'event: message_start\ndata: {"type":"message_start","message":{"model":"x"}}\n\n'
    assert PassthroughStream().feed(event) == [event]


@pytest.mark.parametrize("event", [
    b"event: message_start\ndata: not json\n\n",
    b'event: ping\ndata: {"type":"ping","note":"message_start"}\n\n',
])
def test_renamed_message_start_leaves_other_events(event):
    assert renamed_message_start(event, NAME) is None
    assert PassthroughStream(NAME).feed(event) == [event]
