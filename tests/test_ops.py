"""Operations through the real CLI: background mode, pid file, status/stop,
shutdown, hot reload, logging and the systemd unit.

Every test runs ``python -m ocproxy`` as a subprocess with a throwaway HOME,
a FakeUpstream on a real socket, and requests / the anthropic SDK as client.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests.fakes import chat_completion, chat_text_chunks, json_body, sse, status
from tests.procs import (
    GO_CHAT, PYTHON, clean_env, cli, config_dict, free_port, message_body, parse_sse,
    replace_by_rename, wait_for, wait_health, write_json,
)

KEY = "sk-ops-upstream-SECRET-5f1e2d3c4b5a69788796"


class Box:
    """One proxy install in a throwaway HOME."""

    def __init__(self, tmp_path, upstream, procs, grace_ms=5000, **cfg):
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.state = self.home / ".config" / "ocproxy"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = tmp_path / "conf" / "config.json"
        self.config_path.parent.mkdir()
        self.cfg = config_dict(upstream, self.port, KEY, **cfg)
        write_json(self.config_path, self.cfg)
        self.env = clean_env(self.home, OCPROXY_SHUTDOWN_GRACE_MS=str(grace_ms))
        self.procs = procs

    @property
    def pid_file(self):
        return self.state / f"ocproxy-{self.port}.pid"

    @property
    def log_file(self):
        return self.state / f"ocproxy-{self.port}.log"

    def cli(self, *args, **kw):
        return cli(self.env, *args, **kw)

    def serve(self):
        proc = self.procs.start([PYTHON, "-m", "ocproxy", "serve", "--config", str(self.config_path)],
                                self.env, name="serve")
        wait_health(self.url, proc)
        return proc


@pytest.fixture
def box(tmp_path, upstream, procs):
    return lambda **kw: Box(tmp_path, upstream, procs, **kw)


def post(url, body, **kw):
    return requests.post(url + "/v1/messages", json=body, timeout=kw.pop("timeout", 20), **kw)


# -- background mode, status, stop -------------------------------------------


def test_serve_background_then_status_request_and_stop(box, upstream, procs):
    b = box()
    upstream.on(GO_CHAT, json_body(chat_completion("hello from upstream")))
    run = b.cli("serve", "-b", "--config", str(b.config_path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Started ocproxy in background"
    child = int(re.fullmatch(r"  PID: (\d+)", lines[1]).group(1))
    procs.adopt(child)
    assert lines[2:] == [f"  Log file: {b.log_file}", f"  PID file: {b.pid_file}",
                         f"  Stop with: ocproxy stop --port {b.port}"]
    # `serve -b` returned once the server listens: no waiting needed here.
    health = requests.get(b.url + "/health", timeout=5).json()
    # pid file: the child's own pid, decimal, no newline
    assert b.pid_file.read_text() == str(child)

    st = b.cli("status", "--config", str(b.config_path))
    assert (st.returncode, st.stdout.strip()) == (0, f"Server is running on port {b.port} (PID {child})")

    import anthropic

    client = anthropic.Anthropic(base_url=b.url, api_key="unused", max_retries=0, timeout=20)
    msg = client.messages.create(model="claude-sonnet-4-6", max_tokens=50,
                                 messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text == "hello from upstream"

    # /health through the running process: version, uptime, breakers, counters
    health = requests.get(b.url + "/health", timeout=5)
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    h = health.json()
    from ocproxy import __version__
    assert (h["status"], h["service"], h["version"]) == ("ok", "ocproxy", __version__)
    assert isinstance(h["uptime_s"], int) and h["uptime_s"] >= 0
    assert h["metrics"]["requests_received"] == 1 and h["metrics"]["requests_success"] == 1
    assert h["metrics"]["streams_open"] == 0
    assert h["models"] == {"kimi-k2.6": 1}
    assert isinstance(h["circuit_breakers"], dict)
    metrics = requests.get(b.url + "/metrics", timeout=5).text
    assert "streams_open" in metrics and "uptime_seconds" in metrics

    stop = b.cli("stop", "--port", str(b.port))
    assert stop.returncode == 0, stop.stderr
    assert stop.stdout.strip() == f"Sent stop signal to server (PID {child})"
    assert not b.pid_file.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(b.url + "/health", timeout=2)
    st = b.cli("status", "--port", str(b.port))
    assert (st.returncode, st.stdout.strip()) == (3, f"Server is not running on port {b.port}")
    log = b.log_file.read_text()
    assert "Starting ocproxy v" in log and "request completed" in log and "server stopped" in log


def test_serve_background_with_bad_config_exits_2_without_spawning(box):
    b = box()
    b.config_path.write_text('{"api_key": "x", "port": "not-a-port"}')
    run = b.cli("serve", "-b", "--config", str(b.config_path))
    assert run.returncode == 2
    assert run.stderr.startswith("Error: failed to load config")
    assert "Started ocproxy" not in run.stdout
    assert not b.pid_file.exists() and not b.log_file.exists()


def test_status_and_stop_with_missing_stale_or_garbage_pid_file(box):
    b = box()
    port = ("--port", str(b.port))
    st = b.cli("status", *port)
    assert (st.returncode, st.stdout.strip()) == (3, f"Server is not running on port {b.port}")
    stop = b.cli("stop", *port)
    assert (stop.returncode, stop.stderr.strip()) == (
        3, f"Error: server is not running on port {b.port} (no PID file)")

    dead = subprocess.Popen(["true"])
    dead.wait()
    b.state.mkdir(parents=True)
    b.pid_file.write_text(f"{dead.pid}\n")  # a trailing newline is tolerated
    st = b.cli("status", *port)
    assert (st.returncode, st.stdout.strip()) == (3, "Server is not running (stale PID file)")
    assert not b.pid_file.exists()

    b.pid_file.write_text(str(dead.pid))
    stop = b.cli("stop", *port)
    assert (stop.returncode, stop.stdout.strip()) == (3, "Server is not running (stale PID file)")
    assert not b.pid_file.exists()

    # A live pid that is not ocproxy (this test process): never "running"
    # (tolerant read of the surrounding whitespace too).
    b.pid_file.write_text(f" {os.getpid()} \n")
    st = b.cli("status", *port)
    assert (st.returncode, st.stdout.strip()) == (
        3, f"Server is not running (stale PID file: PID {os.getpid()} is another program)")
    b.pid_file.write_text("garbage")
    assert b.cli("status", *port).returncode == 3


def test_serve_prints_banner_refuses_a_second_server_and_exits_0_on_sigterm(box):
    b = box()
    dead = subprocess.Popen(["true"])
    dead.wait()
    b.state.mkdir(parents=True)
    b.pid_file.write_text(str(dead.pid))  # stale: serve removes it and starts
    first = b.serve()
    out = first.output()
    assert out.startswith(
        "Starting ocproxy v" + __import__("ocproxy").__version__ + "\n"
        f"Listening on 127.0.0.1:{b.port}\n"
        f"Forwarding to: {b.cfg['opencode_go']['base_url']}\n\n"
        "Configure Claude Code with:\n"
        f"  export ANTHROPIC_BASE_URL=http://127.0.0.1:{b.port}\n"
        "  export ANTHROPIC_AUTH_TOKEN=unused\n\n"
    ), out
    assert b.pid_file.read_text() == str(first.pid)

    again = b.cli("serve", "--config", str(b.config_path))
    assert again.returncode == 1
    assert again.stderr.strip() == f"Error: server is already running on port {b.port} (PID {first.pid})"
    again_bg = b.cli("serve", "-b", "--config", str(b.config_path))
    assert again_bg.returncode == 1 and "already running" in again_bg.stderr

    # hot_reload is off: SIGHUP is logged and ignored, not fatal
    first.signal(signal.SIGHUP)
    assert wait_for(lambda: "SIGHUP ignored" in first.output(), 5)
    assert first.popen.poll() is None

    first.signal(signal.SIGTERM)
    assert first.wait(15) == 0
    assert not b.pid_file.exists()
    out = first.output()
    assert "shutting down server" in out and "server stopped" in out


def test_serve_decodes_an_upstream_answer_as_utf8_and_prints_no_warning(box, upstream):
    upstream.on(GO_CHAT, json_body(chat_completion("plain ünïcode")))
    b = box()
    proc = b.serve()
    r = post(b.url, message_body(False))
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "plain ünïcode"
    assert "Warning" not in proc.output()


def test_serve_bind_failure_exits_1(box):
    b = box()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", b.port))
        taken.listen(1)
        run = b.cli("serve", "--config", str(b.config_path))
    assert run.returncode == 1
    assert run.stderr.startswith("Error: server failed:"), run.stderr
    assert not b.pid_file.exists()


# -- graceful shutdown ---------------------------------------------------------


def _stream_with_sigterm(b, proc, check_refused=True):
    """Start a streaming request, SIGTERM the server after the first text
    delta, check the listener is closed while the stream still runs, and
    return the raw body."""
    raw = b""
    sent = None
    with requests.post(b.url + "/v1/messages", json=message_body(True), stream=True, timeout=30) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_content(chunk_size=None):
            raw += chunk
            if sent is None and b"content_block_delta" in raw:
                proc.signal(signal.SIGTERM)
                sent = time.monotonic()
                if check_refused:
                    time.sleep(0.5)  # the accept loop polls every 0.2 s
                    with pytest.raises(ConnectionRefusedError):
                        socket.create_connection(("127.0.0.1", b.port), timeout=2).close()
    assert sent is not None
    return raw, sent


def test_sigterm_lets_an_inflight_stream_finish(box, upstream):
    b = box(grace_ms=5000)
    words = [f"w{i} " for i in range(10)]
    upstream.on(GO_CHAT, sse(*chat_text_chunks(words), delay=0.3))  # ~3 s of stream
    proc = b.serve()
    raw, _ = _stream_with_sigterm(b, proc)
    frames = parse_sse(raw)
    names = [name for name, _ in frames if name != ":keepalive"]
    assert names[-1] == "message_stop" and "error" not in names
    text = "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta")
    assert text == "".join(words)
    assert proc.wait(10) == 0
    assert not b.pid_file.exists()


def test_sigterm_past_the_grace_period_ends_the_stream_with_an_error_event(box, upstream):
    b = box(grace_ms=800)
    upstream.on(GO_CHAT, sse(*chat_text_chunks([f"w{i} " for i in range(30)]), delay=0.3))  # ~9 s
    proc = b.serve()
    raw, sent = _stream_with_sigterm(b, proc, check_refused=False)
    frames = parse_sse(raw)  # asserts no frame was cut
    names = [name for name, _ in frames if name != ":keepalive"]
    assert names[-1] == "error" and "message_stop" not in names
    assert frames[-1][1]["error"]["message"] == "server shutting down"
    assert time.monotonic() - sent < 5
    assert proc.wait(10) == 0
    assert not b.pid_file.exists()
    # the upstream call was abandoned (cancelled), not left running
    assert wait_for(lambda: upstream.calls(GO_CHAT)[-1].closed_by_peer_at is not None, 5)


# -- hot reload ------------------------------------------------------------------


def _routed_model(b, upstream) -> str:
    resp = post(b.url, message_body(False))
    assert resp.status_code == 200, resp.text
    return upstream.calls(GO_CHAT)[-1].json["model"]


def test_hot_reload_by_rename_and_sighup_and_a_broken_edit_changes_nothing(box, upstream):
    upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    b = box(model="kimi-k2.6", hot_reload=True)
    proc = b.serve()
    assert _routed_model(b, upstream) == "kimi-k2.6"

    # an editor-style save (temp file renamed over the config) is active within 2 s
    replace_by_rename(b.config_path, json.dumps(config_dict(upstream, b.port, KEY, model="glm-5.1", hot_reload=True)))
    t0 = time.monotonic()
    assert wait_for(lambda: _routed_model(b, upstream) == "glm-5.1", 2.0, step=0.1)
    assert time.monotonic() - t0 < 2.0

    # a broken edit changes nothing and is logged
    replace_by_rename(b.config_path, '{"api_key": ')
    assert wait_for(lambda: "config reload failed" in proc.output(), 3)
    assert _routed_model(b, upstream) == "glm-5.1"

    # SIGHUP reloads at once. Same inode, size and mtime: the file watcher
    # cannot see this edit, only the signal can. Also drops the level to warn.
    cfg = config_dict(upstream, b.port, KEY, model="glm-5.2", hot_reload=True, logging={"level": "warn"})
    replace_by_rename(b.config_path, json.dumps(config_dict(upstream, b.port, KEY, model="glm-5.1",
                                                            hot_reload=True)).ljust(4000))
    time.sleep(1.0)  # let the watcher settle on this version
    st = os.stat(b.config_path)
    write_json(b.config_path, cfg, size=4000)
    os.utime(b.config_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(b.config_path).st_ino == st.st_ino
    time.sleep(1.0)
    assert _routed_model(b, upstream) == "glm-5.1"  # the watcher did not notice
    proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "received SIGHUP, reloading config" in proc.output(), 2)
    assert wait_for(lambda: _routed_model(b, upstream) == "glm-5.2", 1.0, step=0.1)
    # the reload callback applied logging.level=warn: no more info lines
    before = proc.output().count("request completed")
    _routed_model(b, upstream)
    time.sleep(0.2)
    assert proc.output().count("request completed") == before
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0


# -- logging and the security default ------------------------------------------------


def test_log_never_shows_the_upstream_or_client_key(box, upstream, tmp_path):
    """Drive successes, upstream errors (500, 401 echoing the key), fallbacks,
    a bad request and a stream through a debug-level server that logs request
    headers, then grep everything it wrote for the key."""
    b = box(logging={"level": "debug", "requests": True},
            fallbacks={"default": [{"provider": "opencode-go", "model_id": "glm-5.1"}],
                       "fast": [{"provider": "opencode-go", "model_id": "glm-5.1"}]})
    echo = {"error": {"message": f"invalid api key: {KEY}", "detail": f"Bearer {KEY}"}}
    upstream.on(
        GO_CHAT,
        json_body(chat_completion("first ok")),                       # 1 success
        status(500), json_body(chat_completion("after fallback")),    # 2 500 -> fallback ok
        status(401, echo),                                            # 3 401 blocks the provider -> 401
        sse(*chat_text_chunks(["streamed ", "text"])),                # 4 stream
        json_body(chat_completion("last")),
    )
    proc = b.serve()
    client_secret = "client-side-secret-abcdef"
    headers = {"x-api-key": client_secret, "Authorization": f"Bearer {client_secret}", "Cookie": "s=cookie-secret"}
    bodies = []
    r = post(b.url, message_body(False), headers=headers)
    assert r.status_code == 200
    r = post(b.url, message_body(False), headers=headers)
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "after fallback"
    r = post(b.url, message_body(False), headers=headers)
    assert r.status_code == 401 and "invalid api key: [redacted]" in r.text
    bodies.append(r.text)
    r = requests.post(b.url + "/v1/messages", data=b'{"model": "x", "messages": 5}', headers=headers, timeout=10)
    assert r.status_code == 400
    bodies.append(r.text)
    r = post(b.url, message_body(True), headers=headers)
    assert r.status_code == 200 and "message_stop" in r.text
    bodies.append(r.text)
    bodies.append(requests.get(b.url + "/health", timeout=5).text)
    bodies.append(requests.get(b.url + "/metrics", timeout=5).text)
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0

    log = proc.output()
    assert log.count("request completed") >= 4, log
    assert "[redacted]" in log and "level=DEBUG" in log
    everything = log + "".join(bodies)
    for secret in (KEY, f"Bearer {KEY}", KEY[:20], client_secret, "cookie-secret"):
        assert secret not in everything, f"{secret!r} leaked"
    # the upstream really did get the key (so its absence above means something)
    assert upstream.calls(GO_CHAT)[0].headers["authorization"] == f"Bearer {KEY}"


def test_example_unit_matches_the_systemd_unit_command(tmp_path):
    """etc/ocproxy.service is the `systemd-unit` output with a generic ExecStart."""
    import configparser

    from tests.procs import ROOT

    env = clean_env(tmp_path)
    printed = cli(env, "systemd-unit", "-p", "4000")
    assert printed.returncode == 0 and "systemctl --user daemon-reload" in printed.stderr

    def parse(text):
        parser = configparser.ConfigParser(interpolation=None, strict=True)
        parser.optionxform = str
        parser.read_string(text)
        return {s: dict(parser[s]) for s in parser.sections()}

    example, generated = parse((ROOT / "etc" / "ocproxy.service").read_text()), parse(printed.stdout)
    assert generated["Service"].pop("ExecStart").endswith(" serve --port 4000")
    assert example["Service"].pop("ExecStart") == "%h/.local/bin/ocproxy serve"
    assert example == generated
    # systemd's stop timeout leaves a margin over the 10 s grace period for
    # closing leftover streams and joining threads (each bounded at 5 s).
    assert generated["Service"]["TimeoutStopSec"] == "30" and generated["Service"]["Restart"] == "on-failure"
