"""Every stream is released: a client that reads a stream to its
``message_stop`` and then resets the connection (RST: SO_LINGER 0, what a
killed client or a load balancer does) leaves nothing behind, under
``ocproxy serve``, gunicorn and waitress.

The fault's cause was the host's work after the last item (the terminal
chunk, the post-response read) raising on the reset socket before the
response iterable was closed; a leaked stream kept ``streams_open`` up, its
request body in memory, and made shutdown wait the whole grace period. The
grace period here is 60 s, so a host that exits 0 within the 20 s wait after
SIGTERM proves no stream was left open.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct

import pytest
import requests

from tests.fakes import chat_text_chunks, sse
from tests.procs import GO_CHAT, PYTHON, clean_env, config_dict, free_port, wait_health, write_json
from tests.test_wsgi_hosts import _binary

KEY = "sk-release-upstream-SECRET-9f8e7d"
CLIENTS = 200
PAD = "x" * 200_000  # a leaked stream keeps its request body: 200 of them are 40 MB


def _command(host: str, port: int, config) -> list[str]:
    if host == "serve":
        return [PYTHON, "-m", "ocproxy", "serve", "--config", str(config)]
    if host == "gunicorn":
        return [_binary("gunicorn"), "-k", "gthread", "--threads", "16", "-w", "1",
                "-b", f"127.0.0.1:{port}", "ocproxy.wsgi:application"]
    return [_binary("waitress-serve"), f"--listen=127.0.0.1:{port}", "--threads=16", "ocproxy.wsgi:application"]


def _rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (gunicorn's worker)."""
    total = 0
    pids = [pid]
    children = f"/proc/{pid}/task/{pid}/children"
    if os.path.exists(children):
        with open(children) as f:
            pids += [int(p) for p in f.read().split()]
    for p in pids:
        with open(f"/proc/{p}/statm") as f:
            total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def _read_to_message_stop_then_reset(port: int, body: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: ocproxy\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        seen = b""
        while b"event: message_stop" not in seen:
            data = sock.recv(65536)
            assert data, f"connection closed before message_stop: {seen[-300:]!r}"
            seen += data
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST, not FIN


def _start(host: str, tmp_path, upstream, procs, grace_ms: int):
    """``host`` serving the fake upstream with a shutdown grace of
    ``grace_ms``, answering /health; (process, port, base URL)."""
    port = free_port()
    config = tmp_path / "config.json"
    write_json(config, config_dict(upstream, port, KEY))
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home, OCPROXY_CONFIG=str(config), OCPROXY_SHUTDOWN_GRACE_MS=str(grace_ms))
    proc = procs.start(_command(host, port, config), env, name=host)
    url = f"http://127.0.0.1:{port}"
    wait_health(url, proc, timeout=20)
    return proc, port, url


@pytest.mark.parametrize("host", ["serve", "gunicorn", "waitress"])
def test_clients_resetting_after_message_stop_leave_no_stream_open(host, tmp_path, upstream, procs):
    if host != "serve" and _binary("gunicorn" if host == "gunicorn" else "waitress-serve") is None:
        pytest.skip(f"{host} is not installed in this environment")
    upstream.on(GO_CHAT, sse(*chat_text_chunks(["released"])))
    proc, port, url = _start(host, tmp_path, upstream, procs, grace_ms=60000)
    body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 10, "stream": True,
                       "messages": [{"role": "user", "content": PAD}]}).encode()

    for _ in range(20):  # warm up: pools, caches, allocator arenas
        _read_to_message_stop_then_reset(port, body)
    before = _rss(proc.pid)
    for _ in range(CLIENTS):
        _read_to_message_stop_then_reset(port, body)

    def open_streams() -> int:
        return requests.get(url + "/health", timeout=5).json()["metrics"]["streams_open"]

    from tests.procs import wait_for
    assert wait_for(lambda: open_streams() == 0, timeout=10), open_streams()
    grown = _rss(proc.pid) - before
    assert grown < 16 * 2**20, f"RSS grew {grown / 2**20:.1f} MB over {CLIENTS} streams"
    assert len(upstream.calls(GO_CHAT)) == CLIENTS + 20

    proc.signal(signal.SIGTERM)
    # Far below the 60 s grace: nothing was left open to wait for.
    assert proc.wait(20) == 0, proc.output()
    out = proc.output()
    assert "Traceback" not in out, out


@pytest.mark.parametrize("host", ["serve", "waitress"])
def test_sigterm_while_a_stream_waits_for_its_first_byte_answers_529(host, tmp_path, upstream, procs):
    """No header went out yet, so the stream ended by shutdown is a whole
    529 overloaded_error, which the SDK raises (and Claude Code retries)."""
    import threading

    import anthropic

    if host != "serve" and _binary("waitress-serve") is None:
        pytest.skip("waitress is not installed in this environment")
    from tests.fakes import no_headers

    upstream.on(GO_CHAT, no_headers(hold=30.0))
    proc, _, url = _start(host, tmp_path, upstream, procs, grace_ms=300)
    client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0, timeout=20)
    raised: list[BaseException] = []

    def call() -> None:
        try:
            with client.messages.stream(model="claude-sonnet-4-6", max_tokens=10,
                                        messages=[{"role": "user", "content": "hi"}]) as s:
                s.get_final_text()
        except anthropic.APIStatusError as exc:
            raised.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    from tests.procs import wait_for
    assert wait_for(lambda: len(upstream.calls(GO_CHAT)) == 1, 10)
    proc.signal(signal.SIGTERM)
    caller.join(20)
    assert not caller.is_alive()
    assert raised and raised[0].status_code == 529
    assert raised[0].body["error"] == {"type": "overloaded_error", "message": "server is shutting down"}
    assert proc.wait(20) == 0, proc.output()
