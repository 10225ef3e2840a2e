"""``ocproxy.wsgi:application`` under real WSGI hosts.

The core streaming checks again, but with gunicorn (gthread) and waitress
as the server: the SDK assembles a stream, a slow stream carries
``:keepalive`` frames between whole events and is not buffered, and SIGTERM
to the host ends cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

import pytest
import requests

from tests.fakes import chat_text_chunks, sse
from tests.procs import GO_CHAT, clean_env, config_dict, free_port, message_body, parse_sse, wait_health, write_json

KEY = "sk-wsgi-upstream-SECRET-0a1b2c3d4e5f"
HOSTS = ("gunicorn", "waitress")


def _binary(name: str) -> str | None:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.access(beside, os.X_OK) else shutil.which(name)


def _command(host: str, port: int) -> list[str]:
    if host == "gunicorn":
        return [_binary("gunicorn"), "-k", "gthread", "--threads", "16", "-w", "1",
                "-b", f"127.0.0.1:{port}", "ocproxy.wsgi:application"]
    return [_binary("waitress-serve"), f"--listen=127.0.0.1:{port}", "--threads=16", "ocproxy.wsgi:application"]


class Host:
    def __init__(self, name, tmp_path, upstream, procs, grace_ms=5000):
        binary = "gunicorn" if name == "gunicorn" else "waitress-serve"
        if _binary(binary) is None:
            pytest.skip(f"{binary} is not installed in this environment")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = tmp_path / f"home-{name}"
        home.mkdir()
        config = tmp_path / f"config-{name}.json"
        write_json(config, config_dict(upstream, self.port, KEY))
        env = clean_env(home, OCPROXY_CONFIG=str(config), OCPROXY_SHUTDOWN_GRACE_MS=str(grace_ms))
        self.proc = procs.start(_command(name, self.port), env, name=name)
        wait_health(self.url, self.proc, timeout=20)


@pytest.mark.parametrize("host", HOSTS)
def test_streaming_under_a_wsgi_host(host, tmp_path, upstream, procs):
    """SDK stream assembly, then a slow stream read as raw bytes: the first
    delta arrives while the upstream is still sending (no buffering), and
    keep-alives sit only between whole events."""
    import anthropic

    h = Host(host, tmp_path, upstream, procs)
    words = [f"part{i} " for i in range(6)]
    upstream.on(GO_CHAT, sse(*chat_text_chunks(words)), sse(*chat_text_chunks(words), delay=0.3))

    client = anthropic.Anthropic(base_url=h.url, api_key="unused", max_retries=0, timeout=20)
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        assert stream.get_final_text() == "".join(words)

    raw, first_delta_at = b"", None
    started = time.monotonic()
    with requests.post(h.url + "/v1/messages", json=message_body(True), stream=True, timeout=20) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for chunk in resp.iter_content(chunk_size=None):
            raw += chunk
            if first_delta_at is None and b"content_block_delta" in raw:
                first_delta_at = time.monotonic() - started
    total = time.monotonic() - started
    frames = parse_sse(raw)
    names = [n for n, _ in frames]
    assert names.count("message_start") == 1 and names[-1] == "message_stop"
    text = "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta")
    assert text == "".join(words)
    # the upstream spends ~2 s sending; the first delta must not wait for its end
    assert total > 1.5 and first_delta_at < total - 1.0, (first_delta_at, total)
    # heartbeats (100 ms) between the 300 ms-apart events, never inside one
    first = names.index("content_block_delta")
    assert ":keepalive" in names[first:]


@pytest.mark.parametrize("host", HOSTS)
def test_sigterm_to_a_wsgi_host_ends_cleanly(host, tmp_path, upstream, procs):
    """SIGTERM mid-stream: the stream still completes (grace), the host exits 0."""
    h = Host(host, tmp_path, upstream, procs, grace_ms=5000)
    words = [f"w{i} " for i in range(6)]
    upstream.on(GO_CHAT, sse(*chat_text_chunks(words), delay=0.3))
    raw, sent = b"", False
    with requests.post(h.url + "/v1/messages", json=message_body(True), stream=True, timeout=20) as resp:
        for chunk in resp.iter_content(chunk_size=None):
            raw += chunk
            if not sent and b"content_block_delta" in raw:
                h.proc.signal(signal.SIGTERM)
                sent = True
    frames = parse_sse(raw)
    assert frames[-1][0] == "message_stop"
    assert "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta") == "".join(words)
    assert h.proc.wait(20) == 0, h.proc.output()
    out = h.proc.output()
    assert "Traceback" not in out, out
    assert KEY not in out


@pytest.mark.parametrize("host", HOSTS)
def test_a_stream_failing_before_its_payload_gets_the_status_under_a_wsgi_host(host, tmp_path, upstream, procs):
    """The head waits for the first payload under any PEP 3333 host: a
    streamed request whose every model failed is a 502 with a JSON body."""
    import anthropic

    from tests.fakes import status

    h = Host(host, tmp_path, upstream, procs)
    upstream.on(GO_CHAT, status(503, {"error": {"message": "overloaded"}}))
    client = anthropic.Anthropic(base_url=h.url, api_key="unused", max_retries=0, timeout=20)
    with pytest.raises(anthropic.InternalServerError) as info:
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=10,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            stream.get_final_text()
    assert info.value.status_code == 502
    assert info.value.body["error"]["message"] == "all upstream models failed: kimi-k2.6: 503 overloaded"
