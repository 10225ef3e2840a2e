"""HTTP/1.1 keep-alive under ``ocproxy serve``, through the real server:
several requests on one connection (SDK and raw sockets, pipelined in
order), a finished stream followed by another request, a kept connection
the client closes, the idle bound, the request cap, shutdown with idle kept
connections, and the framing a kept connection must refuse (smuggling).
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.conftest import GO_CHAT, make_config
from tests.fakes import chat_auto
from tests.procs import wait_for

GOOD = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def proxy(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    return start_proxy(make_config(upstream))


def count_connections(p) -> list:
    """Wrap the server's accept hand-off: the list grows by one per TCP connection."""
    accepted: list = []
    httpd = p.server.httpd
    original = httpd.process_request

    def counting(request, client_address):
        accepted.append(client_address)
        return original(request, client_address)

    httpd.process_request = counting
    return accepted


def connect(p) -> socket.socket:
    return socket.create_connection(("127.0.0.1", p.server.port), timeout=10)


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n" % len(body) + extra + b"\r\n" + body)


def get(path: str, extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


class Reader:
    """Reads responses off one socket the way an HTTP/1.1 client does."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("closed mid-response")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("closed mid-body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self) -> tuple[int, dict, bytes]:
        status = int(self._line().split(b" ", 2)[1])
        headers = {}
        while line := self._line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        if "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self._line().split(b";")[0], 16):
                body += self._exact(size)
                assert self._exact(2) == b"\r\n"
            assert self._line() == b""
        else:
            body = b""
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return status, headers, body

    def at_eof(self) -> bool:
        """True once the server closed its side (nothing more was sent)."""
        if self.buf:
            return False
        try:
            return not self._fill()
        except ConnectionResetError:
            return True


# -- several requests on one connection -------------------------------------------------


def test_sdk_sends_several_requests_over_one_connection(proxy, sdk):
    accepted = count_connections(proxy)
    client = sdk(proxy)
    try:
        for _ in range(5):
            msg = client.messages.create(**GOOD)
            assert msg.content[0].text == "fine"
        assert len(accepted) == 1
    finally:
        client.close()
    assert wait_for(lambda: not proxy.server.httpd.live_threads(), 10)


def test_sdk_stream_then_messages_reuse_the_connection(proxy, sdk):
    p = proxy
    accepted = count_connections(p)
    client = sdk(p)
    try:
        with client.messages.stream(**GOOD) as stream:
            assert stream.get_final_text() == "fine"
        assert client.messages.create(**GOOD).content[0].text == "fine"
        with client.messages.stream(**GOOD) as stream:
            assert stream.get_final_text() == "fine"
        assert len(accepted) == 1
    finally:
        client.close()


def test_raw_requests_one_after_another_on_one_socket(proxy):
    body = json.dumps(GOOD).encode()
    with connect(proxy) as s:
        r = Reader(s)
        for _ in range(3):
            s.sendall(post("/v1/messages", body))
            status, headers, data = r.response()
            assert status == 200 and json.loads(data)["content"][0]["text"] == "fine"
            assert headers.get("connection") != "close"


def test_pipelined_requests_are_answered_in_order(proxy):
    tokens = json.dumps({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with connect(proxy) as s:
        s.sendall(get("/health") + post("/v1/messages", json.dumps(GOOD).encode())
                  + get("/v1/models") + post("/v1/messages/count_tokens", tokens))
        r = Reader(s)
        answers = [r.response() for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 200, 200]
    assert "status" in json.loads(answers[0][2])
    assert json.loads(answers[1][2])["content"][0]["text"] == "fine"
    assert "data" in json.loads(answers[2][2])
    assert "input_tokens" in json.loads(answers[3][2])


def test_chunked_request_body_then_next_request_on_the_same_socket(proxy):
    body = json.dumps(GOOD).encode()
    chunked = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % 10 + body[:10] + b"\r\n"
               + b"%x\r\n" % (len(body) - 10) + body[10:] + b"\r\n0\r\n\r\n")
    with connect(proxy) as s:
        r = Reader(s)
        s.sendall(chunked)
        assert r.response()[0] == 200
        s.sendall(post("/v1/messages", body))
        status, _, data = r.response()
        assert status == 200 and json.loads(data)["content"][0]["text"] == "fine"


def test_finished_stream_keeps_the_connection_for_the_next_request(proxy):
    body = json.dumps({**GOOD, "stream": True}).encode()
    with connect(proxy) as s:
        r = Reader(s)
        for _ in range(2):
            s.sendall(post("/v1/messages", body))
            status, headers, data = r.response()
            assert status == 200 and headers["transfer-encoding"] == "chunked"
            assert headers.get("connection") != "close"
            assert b"event: message_stop" in data


# -- the connection's end --------------------------------------------------------------


def test_kept_connection_closed_by_client_between_requests_frees_its_thread(proxy):
    body = json.dumps(GOOD).encode()
    s = connect(proxy)
    r = Reader(s)
    s.sendall(post("/v1/messages", body))
    assert r.response()[0] == 200
    assert len(proxy.server.httpd.live_threads()) == 1  # waiting for the next request
    s.close()
    assert wait_for(lambda: not proxy.server.httpd.live_threads(), 10)
    with connect(proxy) as s2:
        s2.sendall(post("/v1/messages", body))
        assert Reader(s2).response()[0] == 200


def test_idle_kept_connection_is_closed_by_the_server(proxy):
    proxy.server.httpd.keepalive_idle = 0.3
    with connect(proxy) as s:
        r = Reader(s)
        s.sendall(get("/health"))
        status, headers, _ = r.response()
        assert status == 200 and headers["keep-alive"] == "timeout=0"
        assert r.at_eof()
    assert wait_for(lambda: not proxy.server.httpd.live_threads(), 10)


def test_request_cap_closes_the_connection_after_the_last_allowed_request(proxy):
    proxy.server.httpd.max_requests = 3
    with connect(proxy) as s:
        r = Reader(s)
        for n in range(1, 4):
            s.sendall(get("/health"))
            status, headers, _ = r.response()
            assert status == 200
            assert (headers.get("connection") == "close") == (n == 3)
        assert r.at_eof()


def test_client_asking_for_close_gets_it(proxy):
    with connect(proxy) as s:
        r = Reader(s)
        s.sendall(get("/health", b"Connection: close\r\n") + get("/health"))
        status, headers, _ = r.response()
        assert status == 200 and headers["connection"] == "close"
        assert r.at_eof()  # the second request was not read


def test_http_1_0_request_is_answered_and_closed(proxy):
    with connect(proxy) as s:
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        r = Reader(s)
        status, headers, _ = r.response()
        assert status == 200 and headers["connection"] == "close"
        assert r.at_eof()


def test_refused_unread_body_closes_the_connection(proxy):
    too_big = proxy.holder.current.max_request_bytes + 1
    with connect(proxy) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % too_big + b"{" * 1000)
        r = Reader(s)
        status, headers, _ = r.response()
        assert status == 413 and headers["connection"] == "close"


def test_shutdown_closes_idle_kept_connections(upstream):
    from tests.conftest import RunningProxy

    upstream.on(GO_CHAT, chat_auto("fine"))
    p = RunningProxy(make_config(upstream))
    try:
        s = connect(p)
        r = Reader(s)
        s.sendall(get("/health"))
        assert r.response()[0] == 200
        p.stop(grace=30.0)  # returns once nothing is in flight: the idle connection holds nothing
        assert not p.server.httpd.live_threads()
        assert r.at_eof()
        s.close()
    finally:
        p.server.httpd.server_close()


# -- framing a kept connection cannot trust (request smuggling) ---------------------------


SMUGGLED = get("/v1/models")


@pytest.mark.parametrize("framing", [
    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
    b"Content-Length: 4\r\nContent-Length: 40\r\n",
    b"Transfer-Encoding: chunked, identity\r\n",
    b"Transfer-Encoding: xchunked\r\n",
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    b"Content-Length: +4\r\n",
], ids=["cl_then_te", "te_then_cl", "two_lengths", "chunked_not_last", "unknown_coding", "te_twice", "signed_length"])
def test_conflicting_framing_is_400_and_the_connection_closes(proxy, framing):
    with connect(proxy) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + framing + b"\r\n0\r\n\r\n" + SMUGGLED)
        r = Reader(s)
        status, headers, data = r.response()
        assert status == 400 and headers["connection"] == "close"
        assert json.loads(data)["error"]["type"] == "invalid_request_error"
        assert r.at_eof()  # the smuggled GET was never answered


# -- the bounds on a silent client (the socket has no timeout; see _DeadlineReader) ----------


def test_client_silent_mid_request_is_dropped_after_the_silence_bound(proxy):
    proxy.server.httpd.client_silence = 0.5  # well inside the 60 s whole-request deadline
    with connect(proxy) as s:
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert Reader(s).at_eof()
    assert wait_for(lambda: not proxy.server.httpd.live_threads(), 10)


def test_client_silent_between_requests_is_dropped_after_the_idle_bound(proxy):
    proxy.server.httpd.keepalive_idle = 0.5
    with connect(proxy) as s:
        r = Reader(s)
        s.sendall(post("/v1/messages", json.dumps(GOOD).encode()))
        assert r.response()[0] == 200
        assert r.at_eof()
    assert wait_for(lambda: not proxy.server.httpd.live_threads(), 10)


def test_client_that_stops_reading_a_large_answer_is_dropped_after_the_silence_bound(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("x" * (24 << 20)))  # far more than both socket buffers hold
    proxy = start_proxy(make_config(upstream))
    proxy.server.httpd.client_silence = 0.5
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    try:
        s.connect(("127.0.0.1", proxy.server.port))
        s.sendall(post("/v1/messages", json.dumps(GOOD).encode()))  # and read nothing
        assert wait_for(lambda: upstream.calls(GO_CHAT), 30)  # the answer is on its way
        assert wait_for(lambda: proxy.server.httpd.live_threads() == [], 60)
        received = 0
        try:
            while chunk := s.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 24 << 20  # cut off, not delivered late
    finally:
        s.close()
