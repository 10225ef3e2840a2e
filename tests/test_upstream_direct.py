"""Whole answers go to a directly reached upstream over http.client, not
requests; the upstream must not see a difference. Through the real server
with the SDK: the same headers as a stream's, kept connections the
upstream closed while idle, redirects (sent again through requests), and
encodings; the body decoding itself on its own."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import resource
import socket
import zlib

import pytest

from ocproxy.errors import UpstreamConnectionError
from ocproxy.upstream.direct import _decoded, _dropped
from tests.conftest import GO_CHAT, ZEN_CHAT
from tests.fakes import chat_auto, chat_completion, chat_text_chunks, raw_response, sse
from tests.sseclient import post_stream, stream_body
from tests.test_upstream_faults import BODY, call, fallback_config


def kept_alive_answer(text: str) -> bytes:
    """A completion that says nothing of closing, from an upstream that closes anyway."""
    data = json.dumps(chat_completion(text)).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)) + data


def test_a_whole_answer_goes_out_with_the_headers_a_stream_goes_out_with(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, chat_auto("whole"), sse(*chat_text_chunks(["streamed"]), "[DONE]"))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "whole"
    post_stream(proxy.url, stream_body())
    whole, streamed = upstream.calls(ZEN_CHAT)
    assert json.loads(whole.body)["stream"] is False and json.loads(streamed.body)["stream"] is True
    differ = {"content-length", "accept"}
    assert {k: v for k, v in whole.headers.items() if k not in differ} == \
        {k: v for k, v in streamed.headers.items() if k not in differ}
    assert whole.headers["accept"] == "*/*" and streamed.headers["accept"] == "text/event-stream"
    assert whole.headers["accept-encoding"] == "identity" and whole.headers["user-agent"].startswith("ocproxy/")


def test_a_kept_connection_the_upstream_closed_while_idle_is_not_used_again(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, raw_response(kept_alive_answer("one")), raw_response(kept_alive_answer("two")))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "one"
    assert call(sdk, proxy).content[0].text == "two"
    assert upstream.calls(GO_CHAT) == []  # nothing failed over


def test_a_redirected_whole_answer_is_followed_as_requests_follows_it(upstream, start_proxy, sdk):
    moved = "/moved/v1/chat/completions"
    upstream.on(ZEN_CHAT, raw_response(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\n"
                                       b"Content-Length: 0\r\nConnection: close\r\n\r\n" % upstream.url(moved).encode()))
    upstream.on(moved, chat_auto("from the new place"))
    proxy = start_proxy(fallback_config(upstream))
    assert call(sdk, proxy).content[0].text == "from the new place"
    [first, again] = upstream.calls(ZEN_CHAT)  # once directly, once through requests
    [there] = upstream.calls(moved)
    assert first.body == again.body == there.body and json.loads(there.body)["model"] == "model-a"
    assert upstream.calls(GO_CHAT) == []


def test_an_answer_in_an_encoding_we_cannot_read_fails_over_and_says_which(upstream, start_proxy, sdk, caplog):
    data = b"\x00not brotli we can read"
    upstream.on(ZEN_CHAT, raw_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: br\r\n"
                                       b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(data), data)))
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(fallback_config(upstream))
    with caplog.at_level("WARNING"):
        assert call(sdk, proxy).content[0].text == "from b"
    assert "unsupported content-encoding: br" in caplog.text


@pytest.mark.parametrize("encoding, packed", [
    ("gzip", gzip.compress(b'{"a": 1}')),
    ("x-gzip", gzip.compress(b'{"a": 1}')),
    ("deflate", zlib.compress(b'{"a": 1}')),  # zlib-wrapped, as the standard says
    ("deflate", zlib.compress(b'{"a": 1}')[2:-4]),  # raw, as some servers send it
    ("identity", b'{"a": 1}'),
    (None, b'{"a": 1}'),
])
def test_a_body_is_decoded_as_requests_would_hand_it_over(encoding, packed):
    assert _decoded(encoding, packed, 1000) == b'{"a": 1}'


def test_a_compressed_body_that_unpacks_past_the_limit_is_refused_before_it_is_all_unpacked():
    bomb = gzip.compress(b"0" * (10 << 20))
    with pytest.raises(UpstreamConnectionError, match="too large"):
        _decoded("gzip", bomb, 1 << 20)


@pytest.mark.parametrize("packed, why", [
    (b"\x1f\x8b\x08\x00garbage", "it ends early"),
    (gzip.compress(b'{"a": 1}')[:-6], "it ends early"),
    (b"not gzip at all", "incorrect header check"),
])
def test_a_corrupt_compressed_body_is_a_read_failure(packed, why):
    with pytest.raises(UpstreamConnectionError, match=f"bad gzip body: .*{why}") as caught:
        _decoded("gzip", packed, 1000)
    assert caught.value.reason == "read failed"


def test_a_gzip_body_of_several_members_is_read_whole():
    assert _decoded("gzip", gzip.compress(b'{"a": ') + gzip.compress(b"1}"), 1000) == b'{"a": 1}'


def test_the_request_body_arrives_unchanged(upstream, start_proxy, sdk):
    upstream.on(ZEN_CHAT, chat_auto("ok"))
    proxy = start_proxy(fallback_config(upstream))
    call(sdk, proxy)
    [sent] = upstream.calls(ZEN_CHAT)
    assert int(sent.headers["content-length"]) == len(sent.body)
    assert json.loads(sent.body)["messages"][-1]["content"] == BODY["messages"][-1]["content"]


@pytest.mark.parametrize("high_descriptor", [False, True])
def test_an_idle_connection_counts_as_dropped_once_the_upstream_closed_it(high_descriptor):
    """Also past descriptor 1023, where select() cannot look (a proxy holding
    a thousand streams has descriptors that high)."""
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    ours, theirs = socket.socketpair()
    try:
        if high_descriptor:
            if limits[1] != resource.RLIM_INFINITY and limits[1] < 2048:
                pytest.skip("the open-file limit does not reach 2048")
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(limits[0], 2048), limits[1]))
            high = os.dup2(ours.fileno(), 2000)
            ours.close()
            ours = socket.socket(fileno=high)
        conn = http.client.HTTPConnection("127.0.0.1")
        conn.sock = ours
        assert _dropped(conn) is False
        theirs.close()
        assert _dropped(conn) is True
    finally:
        ours.close()
        theirs.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
