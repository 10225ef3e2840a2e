"""Upstream faults through the real server: refused connections,
resets, 200s that carry HTML or nothing, broken SSE lines, a 10 MB SSE line,
invalid UTF-8, bodies that never end and headers that never come. Each one
becomes the right fallback (the next model is called and answers) or a clean
error event, inside the configured timeouts, and leaves no thread or socket
behind."""

from __future__ import annotations

import gzip
import json
import socket
import time

import pytest

from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, ZEN_CHAT, ZEN_MODELS, ZEN_RESPONSES, make_config
from tests.fakes import (chat_auto, chat_completion, chat_text_chunks, chunk, chunked, endless_body, json_body,
                         no_headers, raw_response, reset_after, sse, status)
from tests.resources import Baseline
from tests.sseclient import post_stream, stream_body

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
ROLE_ONLY = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}


def text_chunk(t):
    return {"choices": [{"index": 0, "delta": {"content": t}}]}


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connect() is refused
    return port


def fallback_config(upstream, first_endpoint="chat", **kw):
    """model-a (Zen, on ``first_endpoint``) → model-b (Go chat)."""
    a = ModelConfig(provider="opencode-zen", model_id="model-a", endpoint=first_endpoint)
    b = ModelConfig(provider="opencode-go", model_id="model-b", endpoint="chat")
    return make_config(upstream, models={"default": a, "fast": a},
                       fallbacks={"default": (b,), "fast": (b,)}, **kw)


FIRST_PATH = {"chat": ZEN_CHAT, "responses": ZEN_RESPONSES,
              "gemini": ZEN_MODELS + "/model-a:generateContent",
              "gemini-stream": ZEN_MODELS + "/model-a:streamGenerateContent"}


def first_path(endpoint, streaming):
    if endpoint == "gemini" and streaming:
        return FIRST_PATH["gemini-stream"]
    return FIRST_PATH[endpoint]


def call(sdk, proxy):
    # closed after the call: its kept-alive connection would otherwise stay
    # in the client's pool and count as a socket the test left open
    with sdk(proxy) as client:
        return client.messages.create(**BODY)


def second_called(upstream) -> bool:
    return [r.json["model"] for r in upstream.calls(GO_CHAT)] == ["model-b"]


def texts_of(cap):
    return "".join(e["delta"].get("text", "") for e in cap.events if e["type"] == "content_block_delta")


def assert_stream_ok(cap, text):
    assert cap.status == 200
    assert cap.types.count("message_start") == 1 and cap.types[-1] == "message_stop", cap.types
    assert "error" not in cap.types
    assert texts_of(cap) == text


@pytest.fixture
def start_proxy(upstream):
    """conftest's ``start_proxy``, plus: once the test's proxies are
    stopped, no thread and no socket beyond those before it may remain."""
    from tests.conftest import RunningProxy

    base = Baseline().__enter__()
    running = []

    def start(config):
        proxy = RunningProxy(config)
        running.append(proxy)
        return proxy

    yield start
    for proxy in running:
        proxy.stop()
    base.check()


# -- connection refused ----------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_connection_refused_falls_back(upstream, start_proxy, sdk, streaming):
    upstream.on(GO_CHAT, chat_auto("from b"))
    cfg = fallback_config(upstream)
    dead = cfg.opencode_zen.__class__(**{**cfg.opencode_zen.__dict__,
                                         "base_url": f"http://127.0.0.1:{closed_port()}/v1/chat/completions"})
    proxy = start_proxy(cfg.__class__(**{**cfg.__dict__, "opencode_zen": dead}))
    started = time.monotonic()
    if streaming:
        assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    else:
        assert call(sdk, proxy).content[0].text == "from b"
    assert time.monotonic() - started < 3
    assert second_called(upstream)


def test_connection_refused_everywhere_is_502_and_error_event(upstream, start_proxy, sdk):
    import anthropic

    port = closed_port()
    cfg = make_config(upstream)
    dead = cfg.opencode_go.__class__(**{**cfg.opencode_go.__dict__,
                                        "base_url": f"http://127.0.0.1:{port}/v1/chat/completions"})
    proxy = start_proxy(cfg.__class__(**{**cfg.__dict__, "opencode_go": dead}))
    with pytest.raises(anthropic.APIStatusError) as err:
        call(sdk, proxy)
    assert err.value.status_code == 502
    cap = post_stream(proxy.url, stream_body())
    assert cap.status == 502
    assert json.loads(cap.body)["error"]["message"] == "all upstream models failed: kimi-k2.6: connect refused"


# -- resets ------------------------------------------------------------------------


def test_reset_before_any_payload_falls_back_invisibly(upstream, start_proxy):
    upstream.on(ZEN_CHAT, reset_after(ROLE_ONLY, 0.1))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    assert second_called(upstream)


def test_reset_mid_stream_after_payload_ends_with_one_error_event(upstream, start_proxy):
    upstream.on(ZEN_CHAT, reset_after(ROLE_ONLY, text_chunk("Hel"), text_chunk("lo"), 0.1))
    upstream.on(GO_CHAT, chat_auto("never"))
    proxy = start_proxy(fallback_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    assert cap.types == ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
                         "error"]
    assert cap.events[-1]["error"] == {"type": "api_error",
                                       "message": "all upstream models failed after SSE payload started"}
    assert texts_of(cap) == "Hello"
    assert upstream.calls(GO_CHAT) == []  # no fallback once the client saw payload


def test_reset_mid_json_body_falls_back(upstream, start_proxy, sdk):
    half = json.dumps(chat_completion("from a")).encode()[:40]
    upstream.on(ZEN_CHAT, raw_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n"
                                       b"\r\n" + half), )
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "from b"
    assert second_called(upstream)


# -- unusable 200s -----------------------------------------------------------------

HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>cloudflare</body></html>"


def html_200(h, rec):
    h.send_head(200, content_type="text/html; charset=utf-8", length=len(HTML))
    h.wfile.write(HTML)


def empty_200(content_type):
    def script(h, rec):
        h.send_head(200, content_type=content_type, length=0)

    return script


def empty_200_no_length(h, rec):
    h.send_head(200, content_type="text/event-stream")  # then close: EOF, no bytes


UNUSABLE = {"html": html_200, "empty": empty_200("application/json"), "empty-sse": empty_200_no_length,
            "json-array": json_body([1, 2]), "json-error-object": json_body({"error": {"message": "quota"}})}


@pytest.mark.parametrize("endpoint", ["chat", "responses", "gemini"])
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_unusable_200_falls_back(upstream, start_proxy, sdk, endpoint, streaming):
    """Every UNUSABLE answer, one after the other on the same proxy."""
    proxy = start_proxy(fallback_config(upstream, endpoint))
    path = first_path(endpoint, streaming)
    for n, (kind, script) in enumerate(UNUSABLE.items(), 1):
        upstream.on(path, script)
        upstream.on(GO_CHAT, chat_auto(f"from b {kind}"))
        started = time.monotonic()
        if streaming:
            assert_stream_ok(post_stream(proxy.url, stream_body()), f"from b {kind}")
        else:
            assert call(sdk, proxy).content[0].text == f"from b {kind}", kind
        assert time.monotonic() - started < 3, kind
        assert len(upstream.calls(path)) == n, kind
        assert [r.json["model"] for r in upstream.calls(GO_CHAT)] == ["model-b"] * n, kind


# -- broken SSE data ----------------------------------------------------------------


def test_one_invalid_json_line_is_skipped_and_the_stream_goes_on(upstream, start_proxy):
    upstream.on(ZEN_CHAT, sse(ROLE_ONLY, text_chunk("a"), b'data: {"choices":[{"delta":{"content":"b"\n\n',
                              text_chunk("c"), *chat_text_chunks([])[1:]))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "ac")
    assert upstream.calls(GO_CHAT) == []


def test_only_invalid_json_lines_fall_back_before_payload(upstream, start_proxy):
    upstream.on(ZEN_CHAT, sse(*[b"data: {oops %d\n\n" % i for i in range(6)], "[DONE]"))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    assert second_called(upstream)


def test_invalid_json_lines_after_payload_end_with_an_error_event(upstream, start_proxy):
    upstream.on(ZEN_CHAT, sse(text_chunk("ok"), *[b"data: {oops %d\n\n" % i for i in range(6)], "[DONE]"))
    proxy = start_proxy(fallback_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    assert cap.types[-1] == "error" and cap.types.count("error") == 1
    assert texts_of(cap) == "ok"


def test_invalid_utf8_in_sse_lines_is_skipped_not_relayed(upstream, start_proxy):
    bad = b'data: {"choices":[{"index":0,"delta":{"content":"\xff\xfe bad"}}]}\n\n'
    upstream.on(ZEN_CHAT, sse(ROLE_ONLY, text_chunk("a"), bad, text_chunk("b"), *chat_text_chunks([])[1:]))
    proxy = start_proxy(fallback_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    cap.body.decode("utf-8")  # strict: the client never gets invalid UTF-8
    assert_stream_ok(cap, "ab")


def test_multibyte_characters_split_across_reads_arrive_whole(upstream, start_proxy):
    line = ("data: " + json.dumps(text_chunk("é😀\u2028ü"), ensure_ascii=False) + "\n\n").encode()
    cut = line.index("😀".encode()) + 2  # inside the 4-byte sequence
    upstream.on(ZEN_CHAT, sse(ROLE_ONLY, line[:cut], 0.05, line[cut:], *chat_text_chunks([])[1:]))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "é😀\u2028ü")


def test_invalid_utf8_json_body_falls_back(upstream, start_proxy, sdk):
    raw = json.dumps(chat_completion("X")).encode().replace(b'"X"', b'"\xff\xfe"')
    upstream.on(ZEN_CHAT, status(200, raw=raw))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "from b"


def test_a_single_10mb_sse_line_is_relayed(upstream, start_proxy, sdk):
    big = ("0123456789abcdef" * (10 * 1024 * 1024 // 16))
    upstream.on(ZEN_CHAT, sse(ROLE_ONLY, text_chunk(big), *chat_text_chunks([])[1:]))
    proxy = start_proxy(fallback_config(upstream))
    started = time.monotonic()
    cap = post_stream(proxy.url, stream_body(), timeout=30)
    assert_stream_ok(cap, big)
    assert time.monotonic() - started < 10
    # and through the official SDK too
    with sdk(proxy) as client, client.messages.stream(**BODY) as stream:
        assert stream.get_final_message().content[0].text == big


# -- time limits ----------------------------------------------------------------------


def test_json_body_that_never_ends_hits_the_attempt_limit_and_falls_back(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, endless_body(b" ", every=0.05, content_type="application/json"))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream, timeout_ms=800))
    started = time.monotonic()
    assert call(sdk, proxy).content[0].text == "from b"
    assert 0.7 < time.monotonic() - started < 3
    assert upstream.calls(ZEN_CHAT)[0].closed_by_peer_at is not None  # the connection was dropped


def test_stream_that_never_ends_hits_the_attempt_limit_and_falls_back(upstream, start_proxy):
    upstream.on(ZEN_CHAT, endless_body(b": keep-alive\n\n", every=0.05))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream, streaming_timeout_ms=800, stream_timeout_ms=5000))
    started = time.monotonic()
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    assert 0.7 < time.monotonic() - started < 3
    deadline = time.monotonic() + 2
    while upstream.calls(ZEN_CHAT)[0].closed_by_peer_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.calls(ZEN_CHAT)[0].closed_by_peer_at is not None


def test_stream_that_never_ends_after_payload_ends_with_an_error_event(upstream, start_proxy):
    def script(h, rec):
        h.send_head(200, content_type="text/event-stream")
        h.wfile.write(b"data: " + json.dumps(text_chunk("partial")).encode() + b"\n\n")
        h.wfile.flush()
        endless = endless_body(b": keep-alive\n\n", every=0.05)
        while not h.wait_or_peer_close(0.05, rec):
            h.wfile.write(b": keep-alive\n\n")
            h.wfile.flush()
        del endless

    upstream.on(ZEN_CHAT, script)
    proxy = start_proxy(fallback_config(upstream, streaming_timeout_ms=800, stream_timeout_ms=5000))
    started = time.monotonic()
    cap = post_stream(proxy.url, stream_body())
    assert time.monotonic() - started < 3
    assert texts_of(cap) == "partial"
    assert cap.types[-1] == "error"
    assert cap.events[-1]["error"]["message"] == "all upstream models failed after SSE payload started"


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_headers_that_never_come_hit_the_limit_and_fall_back(upstream, start_proxy, sdk, streaming):
    upstream.on(ZEN_CHAT, no_headers(30))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream, timeout_ms=800, streaming_timeout_ms=800,
                                        stream_timeout_ms=800))
    started = time.monotonic()
    if streaming:
        assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    else:
        assert call(sdk, proxy).content[0].text == "from b"
    assert 0.7 < time.monotonic() - started < 3
    assert second_called(upstream)


def test_idle_gap_before_payload_falls_back_on_the_idle_limit(upstream, start_proxy):
    upstream.on(ZEN_CHAT, sse(ROLE_ONLY, 30.0))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream, streaming_timeout_ms=20_000, stream_timeout_ms=500))
    started = time.monotonic()
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    assert 0.4 < time.monotonic() - started < 2.5


def test_status_line_then_silence_hits_the_limit(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, raw_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", hold=30))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream, timeout_ms=800))
    started = time.monotonic()
    assert call(sdk, proxy).content[0].text == "from b"
    assert time.monotonic() - started < 3


def test_garbage_status_line_falls_back(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, raw_response(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "from b"
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")


# -- chunked framing and compression --------------------------------------------------
# Reads wait for data in the connection's own buffer before taking it (issue
# #6); these prove that wait neither stalls on a chunk split across writes nor
# turns a framing error into anything but a fallback or one error event.


def test_chunks_split_across_writes_arrive_whole(upstream, start_proxy):
    hel = chunk(text_chunk("Hel"))
    size_line, rest = hel.split(b"\r\n", 1)
    upstream.on(ZEN_CHAT, chunked(
        chunk(ROLE_ONLY),
        size_line + b"\r\n", 0.05, rest[:-2], 0.05, b"\r\n",  # size line, data, CRLF apart
        chunk(text_chunk("lo")) + chunk(text_chunk("!")),  # two chunks in one write
        *[chunk(part) for part in chat_text_chunks([])[1:]], b"0\r\n", 0.05, b"\r\n"))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "Hello!")
    assert upstream.calls(GO_CHAT) == []


def test_a_bad_chunk_size_before_payload_falls_back(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, chunked(chunk(ROLE_ONLY), b"zz\r\n"))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")
    upstream.on(ZEN_CHAT, chunked(b"zz\r\n", content_type="application/json"))
    assert call(sdk, proxy).content[0].text == "from b"


def test_a_bad_chunk_size_after_payload_ends_with_one_error_event(upstream, start_proxy):
    upstream.on(ZEN_CHAT, chunked(chunk(ROLE_ONLY), chunk(text_chunk("Hel")), 0.05, b"zz\r\n"))
    upstream.on(GO_CHAT, chat_auto("never"))
    proxy = start_proxy(fallback_config(upstream))
    cap = post_stream(proxy.url, stream_body())
    assert cap.types[-1] == "error" and cap.types.count("error") == 1, cap.types
    assert texts_of(cap) == "Hel"
    assert upstream.calls(GO_CHAT) == []


def test_an_endless_chunk_size_line_falls_back(upstream, start_proxy):
    upstream.on(ZEN_CHAT, chunked(b"1" * 70000))  # beyond http.client's line limit
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")


def test_an_empty_answer_on_a_connection_kept_open_falls_back_at_once(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, raw_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                       b"Content-Length: 0\r\nConnection: close\r\n\r\n", hold=10))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream, timeout_ms=8000))
    started = time.monotonic()
    assert call(sdk, proxy).content[0].text == "from b"
    assert time.monotonic() - started < 3  # not the 8 s read limit: there was nothing to wait for


def test_a_corrupt_gzip_stream_falls_back(upstream, start_proxy):
    upstream.on(ZEN_CHAT, chunked(chunk(b"\x1f\x8b\x08\x00garbage"), b"0\r\n\r\n", content_encoding="gzip"))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "from b")


def test_upstream_calls_ask_for_identity_and_a_compressed_answer_is_still_read(upstream, start_proxy, sdk):
    """Compressed bytes once reached the JSON parser as they were: every
    non-streaming answer from an upstream that gzips (as CDNs do when asked)
    failed as invalid JSON."""
    body = gzip.compress(json.dumps(chat_completion("from a")).encode())
    upstream.on(ZEN_CHAT, chunked(chunk(body), b"0\r\n\r\n", content_type="application/json",
                                  content_encoding="gzip"))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "from a"
    events = b"".join(chunk(part) for part in chat_text_chunks(["zipped"]))
    upstream.on(ZEN_CHAT, chunked(chunk(gzip.compress(events)), b"0\r\n\r\n", content_encoding="gzip"))
    assert_stream_ok(post_stream(proxy.url, stream_body()), "zipped")
    assert upstream.calls(GO_CHAT) == []
    assert {r.headers.get("accept-encoding") for r in upstream.calls(ZEN_CHAT)} == {"identity"}
