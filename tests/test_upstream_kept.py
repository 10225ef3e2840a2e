"""A kept (keep-alive) upstream connection, through the real server: the
requests on it arrive whole (head and small body go out in one send, a
large body after its head), and a read on it still times out at the
attempt's limit although its socket timeout is no longer set anew for
every request."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from ocproxy.config import ModelConfig
from ocproxy.upstream.connection import JOIN_BODY_MAX
from tests.conftest import GO_CHAT, ZEN_CHAT, make_config
from tests.fakes import chat_auto, chat_completion

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


def completion(text: str) -> bytes:
    data = json.dumps(chat_completion(text)).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)) + data


class KeptUpstream:
    """A chat upstream that keeps its connections open, serving one at a
    time. ``answers[i]`` answers the i-th request: the bytes to send, or None
    to stay silent until the peer leaves. ``requests`` records (connection
    number, head, body) of each. The accept thread is joined by close()."""

    def __init__(self, answers, tls: ssl.SSLContext | None = None):
        self._answers = list(answers)
        self._tls = tls
        self._lock = threading.Lock()  # guards requests
        self.requests: list[tuple[int, bytes, bytes]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="kept-upstream")
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}{ZEN_CHAT}"

    def _serve(self) -> None:
        number = 0
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            with conn:
                conn.settimeout(30)
                try:
                    if self._tls:
                        conn = self._tls.wrap_socket(conn, server_side=True)
                    self._one_connection(conn, number)
                except OSError:  # a TLS handshake or a connection that broke
                    pass
                finally:
                    conn.close()

    def _one_connection(self, conn: socket.socket, number: int) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(buf) < length:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            body, buf = buf[:length], buf[length:]
            with self._lock:
                self.requests.append((number, head, body))
                answer = self._answers.pop(0) if self._answers else None
            if answer is None:
                while conn.recv(65536):  # silent until the peer leaves
                    pass
                return
            conn.sendall(answer)

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(10)


@pytest.fixture
def kept():
    servers = []

    def start(answers, tls=None):
        servers.append(KeptUpstream(answers, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def config_for(upstream, kept_upstream, **kw):
    """model-a on the kept upstream, falling back to model-b on the fake one."""
    cfg = make_config(upstream, **kw)
    zen = dataclasses.replace(cfg.opencode_zen, base_url=kept_upstream.url)
    a = ModelConfig(provider="opencode-zen", model_id="model-a", endpoint="chat")
    b = ModelConfig(provider="opencode-go", model_id="model-b", endpoint="chat")
    return dataclasses.replace(cfg, opencode_zen=zen, models={"default": a, "fast": a},
                               fallbacks={"default": (b,), "fast": (b,)})


def test_requests_on_a_kept_upstream_connection_arrive_whole(upstream, kept, start_proxy, sdk):
    server = kept([completion("one"), completion("two"), completion("three"), completion("four")])
    proxy = start_proxy(config_for(upstream, server))
    # larger than the join limit, and than a send buffer holds: sent in parts
    large = dict(BODY, messages=[{"role": "user", "content": "x" * (JOIN_BODY_MAX + 1000)}])
    huge = dict(BODY, messages=[{"role": "user", "content": "y " * (3 << 20)}])
    with sdk(proxy) as client:
        texts = [client.messages.create(**body).content[0].text for body in (BODY, BODY, large, huge)]
    assert texts == ["one", "two", "three", "four"]
    assert [number for number, _, _ in server.requests] == [1, 1, 1, 1]  # one connection, kept
    sent = [json.loads(body) for _, _, body in server.requests]
    assert [s["model"] for s in sent] == ["model-a"] * 4
    assert sent[2]["messages"][-1]["content"] == "x" * (JOIN_BODY_MAX + 1000)
    assert sent[3]["messages"][-1]["content"] == "y " * (3 << 20)
    assert upstream.calls(GO_CHAT) == []


def test_a_silent_answer_on_a_kept_upstream_connection_hits_the_limit(upstream, kept, start_proxy, sdk):
    server = kept([completion("one"), None])
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(config_for(upstream, server, timeout_ms=800))
    with sdk(proxy) as client:
        assert client.messages.create(**BODY).content[0].text == "one"
        started = time.monotonic()
        assert client.messages.create(**BODY).content[0].text == "from b"
    assert 0.7 < time.monotonic() - started < 10  # the 0.8 s limit, not the 300 s default
    assert [number for number, _, _ in server.requests] == [1, 1]  # the second went out on the kept one


def test_a_kept_tls_upstream_connection_is_reused_and_still_times_out(upstream, kept, start_proxy, sdk,
                                                                      tmp_path, monkeypatch):
    if not shutil.which("openssl"):
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is needed to make the test certificate")
        pytest.skip("openssl is not installed: no certificate for the TLS upstream")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # read when the upstream session is made
    server = kept([completion("one"), completion("two"), None], tls)
    upstream.on(GO_CHAT, chat_auto("from b"))
    proxy = start_proxy(config_for(upstream, server, timeout_ms=800))
    with sdk(proxy) as client:
        assert [client.messages.create(**BODY).content[0].text for _ in range(2)] == ["one", "two"]
        started = time.monotonic()
        assert client.messages.create(**BODY).content[0].text == "from b"
    assert 0.7 < time.monotonic() - started < 10  # the 0.8 s limit, not the 300 s default
    assert [number for number, _, _ in server.requests] == [1, 1, 1]  # all three on one TLS connection
