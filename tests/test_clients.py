"""Who the client is, and what it may do, attacked through the real server
on real sockets: rate limits per client with and without keep-alive,
X-Forwarded-For from untrusted and trusted peers (distinct loopback
addresses as distinct peers), client keys on every route, session ids the
client controls, connections beyond max_connections, a client that trickles
its request, and one that stops reading a fast stream."""

from __future__ import annotations

import hashlib
import functools
import http.client
import json
import socket
import threading
import time

import anthropic
import requests

from ocproxy import clients, streaming
from ocproxy.config import ClientKey
from tests.conftest import GO_CHAT, make_config
from tests.fakes import chat_auto, chat_completion, json_body, no_headers
from tests.procs import wait_for
from tests.resources import rss_bytes

MODEL = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "Hello"}]
GOOD = json.dumps({"model": MODEL, "max_tokens": 10, "messages": USER}).encode()
JSON_CT = {"Content-Type": "application/json"}


def post(proxy, path="/v1/messages", body=GOOD, headers=None, source="127.0.0.1", conn=None):
    """One request from ``source`` (a loopback address): a new connection
    unless ``conn`` is given. Returns (status, parsed body)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30,
                                              source_address=(source, 0))
    try:
        conn.request("POST", path, body=body, headers={**JSON_CT, **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        if own:
            conn.close()
    return resp.status, json.loads(data) if data else None


def get(proxy, path, headers=None, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, data


# -- rate limits ------------------------------------------------------------------


def test_rate_limit_holds_on_new_connections_and_on_one_kept_connection(upstream, start_proxy):
    """Keyed by IP, never host:port: a new connection per request does not
    reset it. 127.0.0.2 is another client with its own window."""
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, rate_limit_per_minute=3))
    assert [post(proxy)[0] for _ in range(4)] == [200, 200, 200, 429]  # four connections
    kept = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30, source_address=("127.0.0.2", 0))
    try:
        got = [post(proxy, source="127.0.0.2", conn=kept)[0] for _ in range(4)]
    finally:
        kept.close()
    assert got == [200, 200, 200, 429]
    assert len(upstream.calls(GO_CHAT)) == 6
    status, body = post(proxy, source="127.0.0.2")
    assert status == 429 and body["error"]["type"] == "rate_limit_error"


def test_rate_limit_counts_count_tokens_too(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, rate_limit_per_minute=2))
    assert post(proxy, "/v1/messages/count_tokens")[0] == 200
    assert post(proxy)[0] == 200
    assert post(proxy, "/v1/messages/count_tokens")[0] == 429
    assert post(proxy)[0] == 429


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, rate_limit_per_minute=2, trusted_proxies=("127.0.0.2",)))
    spoofs = [f"10.0.0.{i}" for i in range(5)]
    got = [post(proxy, headers={"X-Forwarded-For": s}, source="127.0.0.1")[0] for s in spoofs]
    assert got == [200, 200, 429, 429, 429]  # one client, whatever it claims


def test_forwarded_for_from_a_trusted_proxy_names_the_client_right_most_first(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, rate_limit_per_minute=2,
                                    trusted_proxies=("127.0.0.2/32", "192.168.0.0/16")))

    def via_proxy(xff):
        return post(proxy, headers={"X-Forwarded-For": xff}, source="127.0.0.2")[0]

    assert via_proxy("10.1.1.1") == 200
    # the client put a fake entry first; our proxy appended what it saw
    assert via_proxy("6.6.6.6, 10.1.1.1") == 200
    # a second trusted hop (192.168.x) is skipped: the client is still 10.1.1.1
    assert via_proxy("7.7.7.7, 10.1.1.1, 192.168.4.4") == 429
    assert via_proxy("10.2.2.2") == 200  # another client behind the same proxy
    # the trusted proxy itself, without the header, is one client of its own
    assert post(proxy, source="127.0.0.2")[0] == 200


def test_client_ip_table():
    env = {"REMOTE_ADDR": "127.0.0.2", "HTTP_X_FORWARDED_FOR": "1.1.1.1, garbage, 10.0.0.9, 127.0.0.3"}
    trusted = ("127.0.0.0/8",)
    assert clients.client_ip(env, trusted) == "10.0.0.9"
    assert clients.client_ip(env, ()) == "127.0.0.2"
    assert clients.client_ip({**env, "REMOTE_ADDR": "::ffff:127.0.0.2"}, trusted) == "10.0.0.9"
    # every hop trusted: the left-most address is the client
    assert clients.client_ip({"REMOTE_ADDR": "127.0.0.2", "HTTP_X_FORWARDED_FOR": "127.0.0.9"}, trusted) == "127.0.0.9"
    # garbage right after our proxy: believe no further than the proxy itself
    assert clients.client_ip({"REMOTE_ADDR": "127.0.0.2", "HTTP_X_FORWARDED_FOR": "x"}, trusted) == "127.0.0.2"
    assert clients.client_ip({"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "2001:db8::7"}, ("::1",)) == "2001:db8::7"


# -- client keys ------------------------------------------------------------------

KEYS = (ClientKey("alice", "alice-key-0123456789"), ClientKey("bob", "bob-key-0123456789"))


def test_every_route_needs_a_key_but_a_bare_liveness_answer(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, client_api_keys=KEYS))
    routes = [("POST", "/v1/messages"), ("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models"),
              ("GET", "/metrics"), ("POST", "/health"), ("DELETE", "/health")]
    for method, path in routes:
        for headers in ({}, {"x-api-key": "wrong-key-0123456789"}, {"Authorization": "Bearer alice-key-01234567"}):
            status, body = get(proxy, path, {**JSON_CT, **headers}, method)
            assert status == 401, (method, path, headers)
            assert body["error"]["type"] == "authentication_error"
    assert get(proxy, "/health") == (200, {"status": "ok"})  # liveness, and nothing else
    status, _ = get(proxy, "/health", method="HEAD")
    assert status == 200
    for headers in ({"x-api-key": "alice-key-0123456789"}, {"Authorization": "Bearer bob-key-0123456789"}):
        status, health = get(proxy, "/health", headers)
        assert status == 200 and {"metrics", "circuit_breakers", "version"} <= set(health)
        assert get(proxy, "/v1/models", headers)[0] == 200
        assert get(proxy, "/metrics", headers)[0] == 200
        assert post(proxy, "/v1/messages/count_tokens", headers=headers)[0] == 200
        assert post(proxy, headers=headers)[0] == 200
    assert len(upstream.calls(GO_CHAT)) == 2


def test_an_upstream_echoing_a_client_key_is_redacted_in_the_answer_and_health(upstream, start_proxy):
    """Client keys are secrets like the upstream keys: a failing upstream
    that quotes one does not hand it to another client or to /health."""
    def echo(h, rec):
        body = json.dumps({"error": {"message": "refused alice-key-0123456789 and bob-key-0123456789"}}).encode()
        h.send_head(500, length=len(body))
        h.wfile.write(body)

    upstream.on(GO_CHAT, echo)
    proxy = start_proxy(make_config(upstream, client_api_keys=KEYS))
    status, body = post(proxy, headers={"x-api-key": "alice-key-0123456789"})
    assert status == 502 and "[redacted]" in body["error"]["message"], body
    _, health = get(proxy, "/health", {"x-api-key": "bob-key-0123456789"})
    for text in (json.dumps(body), json.dumps(health)):
        assert "alice-key-0123456789" not in text and "bob-key-0123456789" not in text


def test_named_keys_are_the_rate_limited_client_wherever_they_connect_from(upstream, start_proxy, caplog):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, client_api_keys=KEYS, rate_limit_per_minute=2))
    alice, bob = {"x-api-key": "alice-key-0123456789"}, {"x-api-key": "bob-key-0123456789"}
    assert post(proxy, headers=alice, source="127.0.0.1")[0] == 200
    assert post(proxy, headers=alice, source="127.0.0.2")[0] == 200
    assert post(proxy, headers=alice, source="127.0.0.3")[0] == 429  # same client, third address
    assert post(proxy, headers=bob, source="127.0.0.1")[0] == 200  # another name, its own window


def test_authenticate_compares_every_key_with_compare_digest(monkeypatch):
    """Constant time: compare_digest on bytes (it refuses non-ASCII str) for
    every configured key, even after a match."""
    compared = []
    real = clients.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(clients.hmac, "compare_digest", spy)
    keys = (ClientKey("a", "key-aaaaaaaa"), ClientKey("b", "schlüssel-bbbbbb"), ClientKey("c", "key-cccccccc"))
    assert clients.authenticate({"HTTP_X_API_KEY": "key-aaaaaaaa"}, keys).name == "a"
    assert len(compared) == 3 and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in compared)
    # a header arrives latin-1 decoded; the key's own UTF-8 bytes still match
    latin1 = "schlüssel-bbbbbb".encode("utf-8").decode("latin-1")
    assert clients.authenticate({"HTTP_AUTHORIZATION": "Bearer " + latin1}, keys) is None
    assert clients.authenticate({"HTTP_AUTHORIZATION": "Bearer schlüssel-bbbbbb"}, keys).name == "b"
    assert clients.authenticate({"HTTP_X_API_KEY": "key-aaaaaaa"}, keys) is None
    assert clients.authenticate({}, keys) is None


# -- session ids ------------------------------------------------------------------


def test_session_ids_that_are_not_plain_ascii_or_too_long_are_hashed_not_a_500(upstream, start_proxy):
    upstream.on(GO_CHAT, json_body(chat_completion("fine")))
    proxy = start_proxy(make_config(upstream))
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0, timeout=30)
    cases = [
        ("会话-1", None),
        ("x" * 500, None),
        ("line\r\nbreak", None),
        ("plain-session-123", "plain-session-123"),
    ]
    for session, expected in cases:
        msg = client.messages.create(model=MODEL, max_tokens=10, messages=USER,
                                     metadata={"user_id": json.dumps({"session_id": session})})
        assert msg.content[0].text == "fine"
        sent = upstream.calls(GO_CHAT)[-1].headers["x-opencode-session"]
        if expected is not None:
            assert sent == expected
        else:
            assert sent == "ocproxy-" + hashlib.sha256(session.encode("utf-8")).hexdigest()[:32]
    # a header with bytes beyond ASCII (werkzeug reads them as Latin-1)
    status, _ = post(proxy, headers={"x-claude-code-session-id": "sessão-9".encode("utf-8").decode("latin-1")})
    assert status == 200
    sent = upstream.calls(GO_CHAT)[-1].headers["x-opencode-session"]
    assert sent.startswith("ocproxy-") and len(sent) == 40


# -- connections ------------------------------------------------------------------


def test_beyond_max_connections_with_every_one_busy_a_fast_503_then_recovery(upstream, start_proxy):
    upstream.on(GO_CHAT, no_headers(hold=30), no_headers(hold=30), chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, max_connections=2, timeout_ms=30_000))
    held = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", proxy.server.port))
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(GOOD), GOOD))
        held.append(sock)
    assert wait_for(lambda: len(upstream.calls(GO_CHAT)) == 2, 20)
    status, body = post(proxy)
    assert status == 503 and body["error"]["type"] == "overloaded_error"
    for sock in held:
        sock.close()  # the client left: its request ends, its connection is free
    assert wait_for(lambda: all(c.closed_by_peer_at for c in upstream.calls(GO_CHAT)), 20)
    assert wait_for(lambda: len(proxy.server.httpd.live_threads()) == 0, 20)
    assert post(proxy)[0] == 200


def test_a_new_connection_takes_the_place_of_the_one_waiting_longest(upstream, start_proxy):
    """At the cap, connections still waiting for a request (slow or idle)
    give way: a client that sends its request at once is served."""
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, max_connections=5))
    slow = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", proxy.server.port))
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        slow.append(sock)
    assert wait_for(lambda: len(proxy.server.httpd.live_threads()) == 5, 20)
    try:
        assert post(proxy)[0] == 200
        # the oldest slow connection was closed to make room
        slow[0].settimeout(10)
        assert slow[0].recv(1) == b""
    finally:
        for sock in slow:
            sock.close()


def test_a_client_trickling_its_headers_is_dropped_at_the_deadline(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, request_read_timeout_ms=1000))
    request = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 400 + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", proxy.server.port))
    sent = 0
    try:
        for byte in request:  # one byte every 20 ms: never an idle gap, 8 s in all
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            sent += 1
            if _readable(sock):  # the server closed (or reset) the connection
                break
            time.sleep(0.02)
    finally:
        sock.close()
    assert sent < len(request)  # dropped before it could finish
    assert post(proxy)[0] == 200  # the proxy serves others


def test_a_body_trickling_past_the_deadline_gets_408(upstream, start_proxy):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, request_read_timeout_ms=1000))
    sock = socket.create_connection(("127.0.0.1", proxy.server.port))
    answer = b""
    try:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(GOOD))
        for byte in GOOD:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if _readable(sock):
                break
            time.sleep(0.05)
        sock.settimeout(10)
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert b"request body not received in time" in answer
    assert upstream.calls(GO_CHAT) == []
    assert post(proxy)[0] == 200


def _readable(sock) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


_PIECE = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "y" * 16000}}]}).encode() + b"\n\n"
_FIRST = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}).encode()


def _firehose(h, rec, released: threading.Event | None = None):
    """As fast as the proxy takes it, up to 2 GB; notes when the proxy hangs up.
    With ``released``, the flood waits for it after the first text."""
    h.send_head(200, content_type="text/event-stream")
    rec.sent = 0
    try:
        h.wfile.write(_FIRST + b"\n\n")
        if released is not None:
            h.wfile.write(_PIECE)  # the first payload: the proxy's head goes out with it
            h.wfile.flush()
            released.wait(30)
        for _ in range(2_000_000_000 // len(_PIECE)):
            h.wfile.write(_PIECE)
            rec.sent += len(_PIECE)
    except OSError:
        rec.closed_by_peer_at = time.monotonic()


def _stop_reading_after_the_head(port: int) -> socket.socket:
    """A streaming request from a client with a small receive buffer that
    reads the status line and then never reads again; the upstream must
    see the proxy hang up."""
    body = json.dumps({"model": MODEL, "max_tokens": 10, "messages": USER, "stream": True}).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    try:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert sock.recv(16).startswith(b"HTTP/1.1 200")
        # ... and never reads again
        return sock
    except BaseException:
        sock.close()
        raise


def test_a_client_that_stops_reading_a_fast_stream_holds_the_upstream_back_then_is_gone(
        upstream, start_proxy, monkeypatch):
    """Under ocproxy serve the stream sends in its request thread: a client
    that stops reading stops the upstream reads too (nothing piles up in the
    proxy), and once it has taken nothing for the stall time it is gone. The
    upstream is closed, nothing is charged."""
    monkeypatch.setattr(streaming, "WRITE_STALL_SECONDS", 1.0)
    upstream.on(GO_CHAT, _firehose, chat_auto("fine"))
    proxy = start_proxy(make_config(upstream, breaker_threshold=1))
    before = rss_bytes()
    sock = _stop_reading_after_the_head(proxy.server.port)
    try:
        assert wait_for(lambda: [c.closed_by_peer_at is not None for c in upstream.calls(GO_CHAT)] == [True], 60)
        grown = rss_bytes() - before
    finally:
        sock.close()
    # What the upstream got out: the socket buffers on the way, not 2 GB.
    assert upstream.calls(GO_CHAT)[0].sent < 32 * 1024 * 1024
    assert grown < 64 * 1024 * 1024, grown
    health = requests.get(proxy.url + "/health", timeout=10).json()
    assert health["metrics"]["client_cancelled"] == 1
    assert all(state == "closed" for state in health["circuit_breakers"].values())
    assert post(proxy)[0] == 200  # threshold 1: a charge would have opened the breaker


def test_under_a_wsgi_host_a_client_that_stops_reading_a_fast_stream_is_gone_at_the_byte_cap(
        upstream, monkeypatch):
    """A WSGI host iterates the response in its request thread while the pump
    queues frames: the 5 s stall timer is set out of reach, so only the byte
    cap can end this. The upstream is closed, memory stays bounded."""
    from werkzeug.serving import make_server

    from ocproxy.app import ProxyApp

    monkeypatch.setattr(streaming, "MAX_QUEUED_BYTES", 1024 * 1024)
    monkeypatch.setattr(streaming, "WRITE_STALL_SECONDS", 3600)
    # The flood starts once the head is out: a host thread slow to take its
    # first frame is not a client that stopped reading.
    released = threading.Event()
    upstream.on(GO_CHAT, functools.partial(_firehose, released=released))
    app = ProxyApp(make_config(upstream))
    host = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=host.serve_forever, name="test-werkzeug-host")
    serving.start()
    before = rss_bytes()
    try:
        sock = _stop_reading_after_the_head(host.server_port)
        released.set()
        try:
            assert wait_for(lambda: [c.closed_by_peer_at is not None for c in upstream.calls(GO_CHAT)] == [True], 60)
            grown = rss_bytes() - before
        finally:
            sock.close()
        assert grown < 64 * 1024 * 1024, grown
        assert wait_for(lambda: app.metrics.snapshot()["client_cancelled"] == 1, 10)
    finally:
        host.shutdown()
        serving.join()
        host.server_close()
        app.close()


def test_the_byte_cap_counts_what_waits_behind_the_oldest_item(monkeypatch):
    """One event larger than the cap is a large event, not a stalled
    client; what piles up behind it is."""
    monkeypatch.setattr(streaming, "MAX_QUEUED_BYTES", 1000)
    writer = streaming.StreamWriter(1.0)
    gone = []
    writer.on_gone(lambda: gone.append(True))
    assert writer.write([b"x" * 5000])  # one large event, the first the host will take
    assert all(writer.write([b"y" * 100]) for _ in range(10))  # 1000 bytes behind it
    assert not gone
    assert not writer.write([b"z"])  # one byte more: the client stopped reading
    assert gone == [True] and writer.gone and writer.take() is None
