"""Hostile clients against the real server: malformed and truncated
JSON, wrong types at every field, 100k-deep nesting, 40 MB bodies (declared
and chunked), a client dribbling its body a byte at a time, clients vanishing
mid-body and mid-stream. Each gets the right Anthropic error (or is dropped),
the next request is served normally, and no thread or socket is left behind.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from ocproxy.config import ModelConfig
from tests.conftest import GO_CHAT, make_config
from tests.fakes import chat_auto, chat_text_chunks, sse
from tests.resources import Baseline
from tests.sseclient import parse_frames, post_stream, stream_body

GOOD = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
JSON_CT = {"Content-Type": "application/json"}


@pytest.fixture
def proxy(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    p = start_proxy(make_config(upstream))
    # warm up both paths so lazily started threads (heartbeat) are in the baseline
    assert_served(p)
    assert_stream_served(p)
    return p


@pytest.fixture(scope="module")
def shared_proxy():
    """One proxy for the many cheap refusal cases."""
    from tests.conftest import RunningProxy
    from tests.fakes import FakeUpstream

    fake = FakeUpstream()
    fake.on(GO_CHAT, chat_auto("fine"))
    p = RunningProxy(make_config(fake))
    yield p
    p.stop()
    fake.close()


def port_of(p) -> int:
    return p.server.port


def request(p, body: bytes, headers=None, path="/v1/messages", method="POST", timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port_of(p), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={**JSON_CT, **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def assert_served(p):
    status, _, data = request(p, json.dumps(GOOD).encode())
    assert status == 200, data[:300]
    assert json.loads(data)["content"][0]["text"] == "fine"


def assert_stream_served(p):
    cap = post_stream(p.url, stream_body())
    assert cap.status == 200 and cap.types[-1] == "message_stop", cap.body[-300:]


def assert_error(status, headers, data, code, kind, needle=""):
    assert status == code, data[:300]
    assert headers["content-type"] == "application/json"
    body = json.loads(data)
    assert body["type"] == "error" and body["error"]["type"] == kind, body
    assert needle in body["error"]["message"], body


def raw_exchange(p, payload: bytes, timeout=10) -> bytes:
    """Send raw bytes, half-close, read the whole answer."""
    with socket.create_connection(("127.0.0.1", port_of(p)), timeout=timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        assert data[size:size + 2] == b"\r\n", "bad chunk framing"
        data = data[size + 2:]
    return out


def read_response(s: socket.socket) -> bytes:
    """Read one response the way an HTTP client does (headers, then
    Content-Length bytes, or to EOF without one), not waiting for the close:
    after refusing a body werkzeug drains what the client still sends and
    only closes once the client does."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while length is None or len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return head + b"\r\n\r\n" + rest
    except (ConnectionResetError, socket.timeout):
        return data


# -- malformed bodies -----------------------------------------------------------

MALFORMED = [
    ("truncated", b'{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","cont'),
    ("trailing_garbage", json.dumps(GOOD).encode() + b"}}"),
    ("single_quotes", b"{'model':'x'}"),
    ("nan", b'{"model":"m","max_tokens":NaN,"messages":[{"role":"user","content":"x"}]}'),
    ("infinity", b'{"model":"m","temperature":Infinity,"messages":[{"role":"user","content":"x"}]}'),
    ("bad_utf8", b'{"model":"m","messages":[{"role":"user","content":"\xff\xfe"}]}'),
    ("utf16_bom", '{"model":"m"}'.encode("utf-16")),
    ("nul_bytes", b"\x00" * 64),
    ("bare_string", b'"hello"'),
    ("bare_null", b"null"),
    ("empty", b""),
    ("only_whitespace", b" \r\n\t "),
    ("unterminated_string", b'{"model":"m'),
    ("control_char_in_string", b'{"model":"m\x01","messages":[{"role":"user","content":"x"}]}'),
]


@pytest.mark.parametrize("body", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_json_is_400_and_next_request_served(shared_proxy, body):
    assert_error(*request(shared_proxy, body), 400, "invalid_request_error")
    assert_served(shared_proxy)


def test_malformed_bodies_leave_no_thread_or_socket(proxy):
    with Baseline() as base:
        for _, body in MALFORMED:
            assert_error(*request(proxy, body), 400, "invalid_request_error")
        assert_served(proxy)
    base.check()


def _with(path, value):
    req = json.loads(json.dumps({**GOOD, "system": "s", "tools": [{"name": "t", "input_schema": {}}],
                                 "stop_sequences": ["x"],
                                 "messages": [{"role": "user", "content": [
                                     {"type": "text", "text": "a"},
                                     {"type": "tool_result", "tool_use_id": "x", "content": "r"}]}]}))
    node = req
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return req


WRONG_TYPES = [
    (("model",), 1, "model"), (("model",), ["m"], "model"), (("messages",), "hi", "messages"),
    (("messages",), {"role": "user"}, "messages"), (("messages", 0), "hi", "messages[0]"),
    (("messages", 0, "role"), 1, "messages[0].role"), (("messages", 0, "content"), 5, "messages[0].content"),
    (("messages", 0, "content"), {"type": "text"}, "messages[0].content"),
    (("messages", 0, "content", 0), "a", "messages[0].content[0]"),
    (("messages", 0, "content", 0, "type"), 3, "messages[0].content[0].type"),
    (("messages", 0, "content", 0, "text"), ["a"], "messages[0].content[0].text"),
    (("messages", 0, "content", 1, "content"), 7, "messages[0].content[1].content"),
    (("messages", 0, "content", 1, "content"), [1], "messages[0].content[1].content[0]"),
    (("system",), 5, "system"), (("system",), [1], "system[0]"), (("tools",), {"name": "t"}, "tools"),
    (("tools", 0), "t", "tools[0]"), (("tools", 0, "name"), None, "tools[0].name"),
    (("tools", 0, "name"), 9, "tools[0].name"), (("stop_sequences",), "x", "stop_sequences"),
    (("stop_sequences", 0), 1, "stop_sequences[0]"), (("stream",), "yes", "stream"), (("stream",), 1, "stream"),
    (("max_tokens",), "16", "max_tokens"), (("max_tokens",), 1.5, "max_tokens"), (("max_tokens",), True, "max_tokens"),
    (("temperature",), "hot", "temperature"), (("temperature",), True, "temperature"), (("top_p",), [], "top_p"),
    (("top_k",), 2.5, "top_k"), (("metadata",), [], "metadata"), (("thinking",), "on", "thinking"),
    (("tool_choice",), "auto", "tool_choice"),
]


@pytest.mark.parametrize("path,value,field", WRONG_TYPES, ids=[f"{'.'.join(map(str, w[0]))}={w[1]!r}"
                                                                 for w in WRONG_TYPES])
def test_wrong_type_at_every_field_is_400_naming_it(shared_proxy, path, value, field):
    proxy = shared_proxy
    assert_error(*request(proxy, json.dumps(_with(path, value)).encode()), 400, "invalid_request_error", field)
    status, headers, data = request(proxy, json.dumps(_with(path, value)).encode(),
                                    path="/v1/messages/count_tokens")
    assert_error(status, headers, data, 400, "invalid_request_error", field)
    assert_served(proxy)


@pytest.mark.parametrize("opener,closer", [(b"[", b"]"), (b'{"a":', b"}")], ids=["arrays", "objects"])
def test_100k_deep_nesting_is_400_not_a_crash(proxy, opener, closer):
    deep = opener * 100_000 + b"1" + closer * 100_000
    body = b'{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":' + deep + b"}"
    with Baseline() as base:
        started = time.monotonic()
        assert_error(*request(proxy, body), 400, "invalid_request_error", "nested too deeply")
        assert_error(*request(proxy, deep), 400, "invalid_request_error")
        assert time.monotonic() - started < 5
        assert_served(proxy)
    base.check()


def test_bad_content_length_values(proxy):
    for value in (b"abc", b"-5", b"1e3"):
        data = raw_exchange(proxy, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: " + value + b"\r\nConnection: close\r\n\r\n{}")
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0
        assert status == 400, (value, data[:200])
    assert_served(proxy)


# -- big bodies ---------------------------------------------------------------------

FORTY_MB = 40 * 1024 * 1024


def _padded_body(size: int) -> bytes:
    head = b'{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"'
    tail = b'"}]}'
    n = size - len(head) - len(tail)
    return head + (b"lorem ipsum " * (n // 12 + 1))[:n] + tail


def test_40mb_body_with_content_length_is_413(proxy):
    with Baseline() as base:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % FORTY_MB)
            body = _padded_body(FORTY_MB)
            sent = 0
            try:  # the server answers without reading: sending may stop early
                s.settimeout(2)
                while sent < len(body):
                    sent += s.send(body[sent:sent + (1 << 20)])
            except OSError:
                pass
            s.settimeout(10)
            data = read_response(s)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), data[:200]
        assert json.loads(rest)["error"]["type"] == "request_too_large"
        assert time.monotonic() - started < 8
        assert_served(proxy)
    base.check()


def test_40mb_chunked_body_without_content_length_is_413(proxy):
    body = _padded_body(FORTY_MB)

    def chunks():
        for i in range(0, len(body), 1 << 20):
            yield body[i:i + (1 << 20)]

    with Baseline() as base:
        conn = http.client.HTTPConnection("127.0.0.1", port_of(proxy), timeout=20)
        try:
            try:
                conn.request("POST", "/v1/messages", body=chunks(), headers=JSON_CT, encode_chunked=True)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused once past the limit: the answer is already there
            resp = conn.getresponse()
            assert resp.status == 413
            assert json.loads(resp.read())["error"]["type"] == "request_too_large"
        finally:
            conn.close()
        assert_served(proxy)
    base.check()


def test_a_body_just_under_the_limit_is_served(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    # 30 MiB of text is ~5M tokens, more than any catalog model holds (those
    # are skipped since issue 15): a model the catalog does not know takes it
    local = ModelConfig(model_id="local-model")
    proxy = start_proxy(make_config(upstream, models={"default": local, "fast": local}))
    status, _, data = request(proxy, _padded_body(30 * 1024 * 1024), timeout=30)
    assert status == 200, data[:200]


def test_a_body_larger_than_every_models_context_is_prompt_too_long(proxy):
    status, _, data = request(proxy, _padded_body(4 * 1024 * 1024), timeout=30)
    assert status == 400, data[:200]
    message = json.loads(data)["error"]["message"]
    assert message.startswith("prompt is too long: ") and message.endswith(" tokens > 262144 maximum")


# -- slow and vanishing clients ----------------------------------------------------


def test_slow_client_a_byte_at_a_time_is_served_and_blocks_no_one(proxy):
    body = json.dumps(GOOD).encode()
    result = {}

    def slow():
        with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=15) as s:
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
            # a few bytes per second for two seconds, then the rest at once
            for i in range(10):
                s.sendall(body[i:i + 1])
                time.sleep(0.2)
            s.sendall(body[10:])
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            result["data"] = data

    with Baseline() as base:
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        # meanwhile, other clients are served at once
        for _ in range(3):
            started = time.monotonic()
            assert_served(proxy)
            assert_stream_served(proxy)
            assert time.monotonic() - started < 1.5
        assert t.is_alive(), "the slow client should still be sending"
        t.join(15)
        head, _, rest = result["data"].partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), result["data"][:200]
        assert json.loads(rest)["content"][0]["text"] == "fine"
    base.check()


def test_client_vanishing_mid_body_is_dropped_and_nothing_leaks(proxy, upstream):
    body = json.dumps(GOOD).encode()
    before = len(upstream.calls(GO_CHAT))
    with Baseline() as base:
        for cut in (1, len(body) // 2, len(body) - 1):
            with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=5) as s:
                s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body[:cut])
        # a chunked body that stops mid-chunk
        with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=5) as s:
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n100\r\n" + body[:20])
        # headers only, then gone
        with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=5) as s:
            s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
        # half a request line
        with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=5) as s:
            s.sendall(b"POST /v1/mess")
        time.sleep(0.3)
        assert_served(proxy)
    base.check()
    assert len(upstream.calls(GO_CHAT)) == before + 1  # only the good request reached the upstream


def test_client_vanishing_mid_stream_frees_the_upstream(proxy, upstream):
    def text_chunk(t):
        return {"choices": [{"index": 0, "delta": {"content": t}}]}

    upstream.on(GO_CHAT, sse(text_chunk("Hello"), 10.0), chat_auto("fine"))
    with Baseline() as base:
        cap = post_stream(proxy.url, stream_body(), close_after=0.4)
        assert b"Hello" in cap.body
        deadline = time.monotonic() + 3
        call = upstream.calls(GO_CHAT)[-1]
        while call.closed_by_peer_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert call.closed_by_peer_at is not None, "the upstream connection was not closed"
        assert_stream_served(proxy)
        assert_served(proxy)
    base.check()
    assert proxy.app.heartbeat.open_streams == 0


def test_client_vanishing_right_after_the_request_of_a_stream(proxy, upstream):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["slow"]), delay=0.3), chat_auto("fine"))
    body = json.dumps(stream_body()).encode()
    with Baseline() as base:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=5) as s:
                s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
                s.recv(10)  # the first bytes of the answer, then gone
        assert_served(proxy)
    base.check()


def test_many_garbage_connections_then_normal_service(proxy):
    garbage = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
               b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n",
               b"POST /v1/messages HTTP/9.9\r\n\r\n", b"\r\n\r\n\r\n", b"GARBAGE\r\n\r\n",
               b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]
    with Baseline() as base:
        for payload in garbage:
            data = raw_exchange(proxy, payload, timeout=5)
            # http.server answers what it cannot parse as HTTP/0.9 (bare HTML)
            assert not data or data.startswith(b"HTTP/1.") or b"Error code: " in data, data[:100]
        assert_served(proxy)
        assert_stream_served(proxy)
    base.check()


def test_stream_frames_stay_whole_for_a_client_that_reads_one_byte_at_a_time(proxy, upstream):
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["a" * 300, "b\u2028", "c"]), delay=0.05))
    body = json.dumps(stream_body()).encode()
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        data = b""
        while True:
            b = s.recv(1)
            if not b:
                break
            data += b
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"200" in head.split(b"\r\n")[0]
    if b"transfer-encoding: chunked" in head.lower():
        rest = dechunk(rest)
    frames = parse_frames(rest)
    assert frames[-1].startswith(b"event: message_stop")


def test_a_refused_body_gets_its_answer_and_end_while_the_client_still_sends(proxy):
    """The server ends its side right after the 413, then reads what the
    client still sends: the client learns of the refusal (and sees EOF)
    without having to stop sending first. A drain with the write side open
    kept the connection's end back for as long as the client kept sending."""
    piece = b"x" * 16384
    sent = [0]
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", port_of(proxy)), timeout=10) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % FORTY_MB)

        def send_slowly():
            try:
                while not stop.is_set() and sent[0] < FORTY_MB:
                    s.sendall(piece)
                    sent[0] += len(piece)
                    time.sleep(0.001)
            except OSError:
                pass

        sender = threading.Thread(target=send_slowly)
        sender.start()
        try:
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            sent_at_eof = sent[0]
        finally:
            stop.set()
            sender.join()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"Connection: close" in answer
    # the old drain read on (up to 1,000 reads) before closing: ~16 MB here
    assert sent_at_eof < 4 * 1024 * 1024, sent_at_eof
    assert_served(proxy)
