"""Streaming end to end: real proxy server, real fake upstream sockets, bytes
read off the wire and parsed strictly."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import threading
import time


from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, GO_MESSAGES, chain, make_config
from tests.fakes import chat_text_chunks, sse, status
from tests.sseclient import parse_frames, post_stream, stream_body


def text_chunk(t):
    return {"choices": [{"index": 0, "delta": {"content": t}}]}


ROLE_ONLY = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
FINISH = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def tool_chunks(call_id, name, args_parts):
    out = [{"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}}]}]
    out += [{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}}]}
            for p in args_parts]
    out += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, "[DONE]"]
    return out


def two_models(upstream, **kw):
    """Chain a → b where each model is told apart by the body it receives."""
    return make_config(upstream, **chain("model-a", "model-b"), **kw)


def models_called(upstream):
    return [r.json["model"] for r in upstream.calls(GO_CHAT)]


# -- the SDK assembles what the proxy sends ----------------------------------


def test_sdk_stream_assembles_text_exactly(upstream, start_proxy, sdk):
    parts = ["Hel", "lo, ", "\"wor\\ld\"", "\n", "café 😀", " \u2028end"]
    upstream.on(GO_CHAT, sse(*chat_text_chunks(parts, usage={"prompt_tokens": 7, "completion_tokens": 6}),
                             delay=0.005))
    proxy = start_proxy(make_config(upstream))
    with sdk(proxy).messages.stream(model="claude-x", max_tokens=50,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(parts)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 6)


def test_sdk_stream_assembles_tool_input_exactly(upstream, start_proxy, sdk):
    args = {"path": "/tmp/a \"b\".txt", "content": "line1\nline2 ünïcode", "n": [1, 2.5, None]}
    encoded = json.dumps(args)
    pieces = [encoded[i:i + 7] for i in range(0, len(encoded), 7)]
    upstream.on(GO_CHAT, sse(*tool_chunks("call_1", "Write", pieces), delay=0.002))
    proxy = start_proxy(make_config(upstream))
    with sdk(proxy).messages.stream(
        model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "write"}],
        tools=[{"name": "Write", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    [block] = final.content
    assert block.type == "tool_use" and block.name == "Write" and block.id == "call_1"
    assert block.input == args


def test_tool_call_as_first_block_is_index_0(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(*tool_chunks("call_9", "Read", ['{"p":', '"x"}'])))
    proxy = start_proxy(make_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    starts = [e for e in cap.events if e["type"] == "content_block_start"]
    assert [s["index"] for s in starts] == [0]
    assert starts[0]["content_block"] == {"type": "tool_use", "id": "call_9", "name": "Read", "input": {}}


def test_headers_and_first_keepalive(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["x"])))
    proxy = start_proxy(make_config(upstream))
    cap = post_stream(proxy.url, stream_body(), headers={"X-Request-ID": "abc-1"})
    assert cap.status == 200
    assert cap.headers["content-type"] == "text/event-stream"
    assert cap.headers["cache-control"] == "no-cache"
    assert cap.headers["x-accel-buffering"] == "no"
    assert cap.headers["x-request-id"] == "abc-1"
    assert "content-length" not in cap.headers
    assert cap.headers["x-ocproxy-model"] == "kimi-k2.6"
    # The headers wait for the first payload: no keep-alive comes before it.
    assert cap.body.startswith(b"event: message_start\n")
    assert cap.types[0] == "message_start" and cap.types[-1] == "message_stop"


# -- what the handler does with each upstream behaviour --------------------------


def test_all_models_fail_gives_one_error_frame(upstream, start_proxy):
    upstream.on(GO_CHAT, status(500))
    proxy = start_proxy(two_models(upstream))
    cap = post_stream(proxy.url, stream_body())
    # Nothing reached the client: the failure is the whole answer's status and body.
    assert cap.status == 502 and cap.headers["content-type"] == "application/json"
    assert json.loads(cap.body)["error"] == {"type": "api_error", "message": "all upstream models failed: "
                                             "model-a: 500 status 500; model-b: 500 status 500"}
    assert models_called(upstream) == ["model-a", "model-b"]


def test_idle_before_output_falls_back_invisibly(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(ROLE_ONLY, 5.0), sse(*chat_text_chunks(["Hello"])))
    proxy = start_proxy(two_models(upstream, stream_timeout_ms=300))
    cap = post_stream(proxy.url, stream_body())
    assert cap.types.count("message_start") == 1
    assert "error" not in cap.types and cap.types[-1] == "message_stop"
    assert [e["delta"]["text"] for e in cap.events if e["type"] == "content_block_delta"] == ["Hello"]
    assert models_called(upstream) == ["model-a", "model-b"]
    assert cap.elapsed < 3


def test_idle_after_output_ends_with_error_and_no_fallback(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(text_chunk("Hello"), 5.0), sse(*chat_text_chunks(["never"])))
    proxy = start_proxy(two_models(upstream, stream_timeout_ms=300))
    cap = post_stream(proxy.url, stream_body())
    assert cap.types == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert cap.events[-1]["error"]["message"] == "stream idle after SSE payload started"
    assert models_called(upstream) == ["model-a"]
    health = proxy.app.metrics.snapshot()
    assert health["requests_failed"] == 1


def test_attempt_limit_before_headers_moves_on(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["late"]), hold_headers=5.0), sse(*chat_text_chunks(["B"])))
    proxy = start_proxy(two_models(upstream, streaming_timeout_ms=300))
    cap = post_stream(proxy.url, stream_body())
    assert models_called(upstream) == ["model-a", "model-b"]
    assert [e["delta"]["text"] for e in cap.events if e["type"] == "content_block_delta"] == ["B"]
    assert cap.elapsed < 2.5


def test_attempt_limit_with_a_stalled_body_ends_within_2s(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(ROLE_ONLY, 10.0))
    cfg = make_config(upstream, streaming_timeout_ms=400, stream_timeout_ms=60_000)
    proxy = start_proxy(cfg)
    cap = post_stream(proxy.url, stream_body())
    assert cap.elapsed < 2
    assert cap.status == 502
    assert "all upstream models failed" in json.loads(cap.body)["error"]["message"]


def test_attempt_limit_after_payload_reports_it(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(text_chunk("a"), text_chunk("b"), 10.0))
    proxy = start_proxy(make_config(upstream, streaming_timeout_ms=400, stream_timeout_ms=60_000))
    cap = post_stream(proxy.url, stream_body())
    assert cap.elapsed < 2
    assert cap.events[-1]["error"]["message"] == "all upstream models failed after SSE payload started"


def test_client_gone_before_the_first_attempt_calls_no_upstream(upstream, start_proxy):
    """The client sends its request and hangs up at once. It runs in a
    process of its own: a client thread in this process needs the GIL
    back after its send, and the proxy's request thread could route the
    request and call the upstream before that thread got to close."""
    import subprocess
    import sys

    upstream.on(GO_CHAT, sse(*chat_text_chunks(["x"])))
    proxy = start_proxy(make_config(upstream))
    body = json.dumps(stream_body()).encode()
    port = int(proxy.url.rsplit(":", 1)[1])
    request = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
    client = ("import socket, sys; s = socket.create_connection(('127.0.0.1', int(sys.argv[1]))); "
              "s.sendall(sys.stdin.buffer.read()); s.close()")
    subprocess.run([sys.executable, "-c", client, str(port)], input=request, check=True, timeout=30)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and proxy.app.metrics.snapshot()["client_cancelled"] == 0:
        time.sleep(0.02)
    assert proxy.app.metrics.snapshot()["client_cancelled"] == 1
    assert upstream.calls(GO_CHAT) == []


def test_disconnect_mid_stream_aborts_upstream_and_tries_nothing_else(upstream, start_proxy, caplog):
    upstream.on(GO_CHAT, sse(text_chunk("Hello"), 10.0), sse(*chat_text_chunks(["never"])))
    proxy = start_proxy(two_models(upstream))
    ocproxy_log = logging.getLogger("ocproxy")  # may not propagate to root once setup_logging ran
    ocproxy_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="ocproxy"):  # held until the pump has logged
            cap = post_stream(proxy.url, stream_body(), close_after=0.3)
            closed_at = time.monotonic()
            deadline = closed_at + 3
            while time.monotonic() < deadline and upstream.calls(GO_CHAT)[0].closed_by_peer_at is None:
                time.sleep(0.01)
            assert b"Hello" in cap.body
            first = upstream.calls(GO_CHAT)[0]
            assert first.closed_by_peer_at is not None
            assert first.closed_by_peer_at - closed_at < 1.0 + 2 * 0.1  # two heartbeat intervals + 1 s
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and proxy.app.metrics.snapshot()["client_cancelled"] == 0:
                time.sleep(0.01)
            time.sleep(0.3)
    finally:
        ocproxy_log.removeHandler(caplog.handler)
    assert models_called(upstream) == ["model-a"]
    snap = proxy.app.metrics.snapshot()
    assert snap["requests_failed"] == 0 and snap["client_cancelled"] == 1
    records = [r for r in caplog.records if "client disconnected during stream" in r.getMessage()]
    assert records and all(r.levelno == logging.DEBUG for r in records)
    assert set(proxy.app.breakers.states().values()) <= {"closed"}


def passthrough_config(upstream, **kw):
    m3 = ModelConfig(model_id="minimax-m3")
    return make_config(upstream, models={"default": m3, "fast": m3}, **kw)


def test_passthrough_gets_no_keepalive_inside_or_after_start(upstream, start_proxy):
    start = b'event: message_start\ndata: {"type":"message_start"}\n\n'
    delta = b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'
    upstream.on(GO_MESSAGES, sse(start, 1.0, delta))
    proxy = start_proxy(passthrough_config(upstream, heartbeat_interval_ms=100))
    cap = post_stream(proxy.url, stream_body())
    assert start in cap.body and delta in cap.body
    after = cap.body[cap.body.index(b"event: message_start"):]
    assert b":keepalive" not in after
    assert cap.body.endswith(delta)


def test_passthrough_flushes_each_event_at_once(upstream, start_proxy):
    start = b'event: message_start\ndata: {"type":"message_start"}\n\n'
    upstream.on(GO_MESSAGES, sse(start, 2.0, b'event: message_stop\ndata: {"type":"message_stop"}\n\n'))
    proxy = start_proxy(passthrough_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    first = cap.first_arrival_of(b"message_start")
    assert first is not None and first < 0.5


def test_no_torn_frames_under_a_fast_heartbeat(upstream, start_proxy, sdk):
    parts = []
    for burst in range(60):  # deltas every 2 ms in bursts, with gaps the 5 ms heartbeat fills
        parts += [text_chunk(f"<{burst}:{i}>") for i in range(10)]
        parts.append(0.02)
    upstream.on(GO_CHAT, sse(ROLE_ONLY, *parts, FINISH, "[DONE]", delay=0.002))
    proxy = start_proxy(make_config(upstream, heartbeat_interval_ms=5))
    cap = post_stream(proxy.url, stream_body())
    frames = parse_frames(cap.body)  # asserts every frame is whole and valid
    assert frames.count(b":keepalive") > 5
    text = "".join(e["delta"]["text"] for e in cap.events if e["type"] == "content_block_delta")
    assert text == "".join(f"<{b}:{i}>" for b in range(60) for i in range(10))
    with sdk(proxy).messages.stream(model="x", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream) == text


def test_passthrough_body_and_fallback_after_500(upstream, start_proxy):
    ok = b'event: message_start\ndata: {"type":"message_start"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    upstream.on(GO_MESSAGES, status(500), sse(ok))
    m3, m27 = ModelConfig(model_id="minimax-m3"), ModelConfig(model_id="minimax-m2.7")
    proxy = start_proxy(make_config(upstream, models={"default": m3, "fast": m3},
                                    fallbacks={"default": (m27,), "fast": (m27,)}))
    tools = [{"type": "custom", "name": "read_file", "description": "Read",
              "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]
    cap = post_stream(proxy.url, stream_body(model="claude-opus-4-8", tools=tools))
    calls = upstream.calls(GO_MESSAGES)
    assert [c.json["model"] for c in calls] == ["minimax-m3", "minimax-m2.7"]
    sent_tool = calls[0].json["tools"][0]
    assert "input_schema" in sent_tool and "function" not in sent_tool and "type" not in sent_tool
    assert calls[0].headers["x-api-key"] and calls[0].headers["anthropic-version"] == "2023-06-01"
    assert cap.body.endswith(ok)


def test_first_delta_reaches_the_client_at_once(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(text_chunk("first"), 2.0, text_chunk("second"), FINISH, "[DONE]"))
    proxy = start_proxy(make_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    assert cap.first_arrival_of(b'"first"') < 0.5
    assert cap.first_arrival_of(b'"second"') > 1.5


def test_a_stream_outliving_the_idle_limit_lives_while_bytes_flow(upstream, start_proxy):
    parts = [text_chunk(str(i)) for i in range(25)]
    upstream.on(GO_CHAT, sse(ROLE_ONLY, *parts, FINISH, "[DONE]", delay=0.1))
    proxy = start_proxy(make_config(upstream, timeout_ms=300, stream_timeout_ms=300, streaming_timeout_ms=60_000))
    cap = post_stream(proxy.url, stream_body())
    assert cap.elapsed > 2.0  # eight times the idle limit, and whole
    assert cap.types[-1] == "message_stop"
    assert "error" not in cap.types


def test_empty_upstream_stream_falls_back(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(b": just a comment\n\n", "[DONE]"), sse(*chat_text_chunks(["B"])))
    proxy = start_proxy(two_models(upstream))
    cap = post_stream(proxy.url, stream_body())
    assert models_called(upstream) == ["model-a", "model-b"]
    assert cap.types[-1] == "message_stop"


def test_error_chunk_before_output_falls_back(upstream, start_proxy):
    upstream.on(GO_CHAT, sse({"error": {"message": "overloaded"}}), sse(*chat_text_chunks(["B"])))
    proxy = start_proxy(two_models(upstream))
    cap = post_stream(proxy.url, stream_body())
    assert models_called(upstream) == ["model-a", "model-b"]
    assert cap.types.count("message_start") == 1 and cap.types[-1] == "message_stop"


def test_concurrent_slow_streams_never_tear_or_interleave(upstream, start_proxy):
    """50 streams at once, 100 ms heartbeat, events slower than it, so
    keep-alives and events race in every stream."""
    words = [f"w{i}-" for i in range(12)]
    upstream.on(GO_CHAT, sse(*chat_text_chunks(words), delay=0.13))
    proxy = start_proxy(make_config(upstream, heartbeat_interval_ms=100))
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        caps = list(pool.map(lambda _: post_stream(proxy.url, stream_body()), range(50)))
    for cap in caps:
        frames = parse_frames(cap.body)
        assert frames.count(b":keepalive") >= 2
        assert cap.types.count("message_start") == 1 and cap.types[-1] == "message_stop"
        assert "".join(e["delta"]["text"] for e in cap.events if e["type"] == "content_block_delta") == "".join(words)
    assert proxy.app.heartbeat.open_streams == 0


def test_a_stream_under_ocproxy_serve_is_sent_by_its_request_thread_alone(upstream, start_proxy):
    """ocproxy serve lends the connection to the stream: while it runs there
    is no pump thread, the keep-alives still come, and the SDK gets it whole."""
    words = ["slow ", "but ", "whole"]
    seen_during = []
    parts = []
    for chunk in chat_text_chunks(words):
        parts += [chunk, 0.3]
    upstream.on(GO_CHAT, sse(*parts))
    proxy = start_proxy(make_config(upstream))  # keep-alives every 0.1 s

    def look() -> None:
        while not upstream.calls(GO_CHAT):
            time.sleep(0.01)
        time.sleep(0.2)
        seen_during.append([t.name for t in threading.enumerate() if t.name.startswith("ocproxy-")])

    looking = threading.Thread(target=look)
    looking.start()
    cap = post_stream(proxy.url, stream_body())
    looking.join()
    assert seen_during and not [name for name in seen_during[0] if name.startswith("ocproxy-pump")]
    assert any(name.startswith("ocproxy-request") for name in seen_during[0])
    assert parse_frames(cap.body).count(b":keepalive") >= 2
    assert cap.types[0] == "message_start" and cap.types[-1] == "message_stop"
    assert "".join(e["delta"]["text"] for e in cap.events if e["type"] == "content_block_delta") == "".join(words)


def test_threads_are_back_to_baseline_after_streams(upstream, start_proxy):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["a", "b"]), delay=0.01))
    proxy = start_proxy(make_config(upstream))
    post_stream(proxy.url, stream_body())  # warm up the heartbeat and pools
    before = {t.name for t in threading.enumerate() if t.name.startswith("ocproxy-pump")}
    for _ in range(10):
        post_stream(proxy.url, stream_body())
    time.sleep(0.2)
    after = [t for t in threading.enumerate() if t.name.startswith("ocproxy-pump")]
    assert not after and not before
