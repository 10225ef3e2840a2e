"""Attacks on ``ocproxy serve`` as a real subprocess, reading its log: a key
echoed at every offset of an upstream error body, log lines forged with
CR/LF, 2,000 slow-loris connections against max_connections, and a process
out of file descriptors."""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import time

import anthropic
import pytest
import requests

from tests.fakes import chat_auto
from tests.procs import GO_CHAT, PYTHON, clean_env, config_dict, free_port, wait_for, wait_health, write_json

KEY = "sk-Zq8vX3pL9wKt7RmN2bYc4d"
ALICE = "alice-Hj5Tq2Wm8Xr4Lp9Nz3Vb"
MODEL = "claude-sonnet-4-6"
USER = [{"role": "user", "content": "Hello"}]


def serve(tmp_path, procs, upstream, name="serve", preexec=None, **cfg):
    home = tmp_path / f"home-{name}"
    home.mkdir()
    port = free_port()
    path = tmp_path / f"{name}.json"
    write_json(path, config_dict(upstream, port, KEY, **cfg))
    env = clean_env(home, OCPROXY_SHUTDOWN_GRACE_MS="500")
    if preexec is None:
        proc = procs.start([PYTHON, "-m", "ocproxy", "serve", "--config", str(path)], env, name=name)
    else:
        proc = _start_with(procs, [PYTHON, "-m", "ocproxy", "serve", "--config", str(path)], env, name, preexec)
    url = f"http://127.0.0.1:{port}"
    wait_health(url, proc)
    return proc, port, url


def _start_with(procs, args, env, name, preexec):
    """Procs.start with a preexec_fn (a resource limit for the child)."""
    import subprocess

    from tests.procs import Proc, ROOT

    log = procs.tmp / f"{name}.out"
    with open(log, "wb") as out:
        popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 cwd=str(ROOT), start_new_session=True, preexec_fn=preexec)
    proc = Proc(popen, log)
    procs.started.append(proc)
    return proc


def fragments(secret: str, size: int = 5) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def log_lines(proc) -> list[str]:
    return proc.output().splitlines()


def flushed(proc, marker: str) -> None:
    """The log queue writes in batches: wait for a line we know comes last."""
    assert wait_for(lambda: marker in proc.output(), 15), proc.output()[-2000:]


# -- redaction before truncation, one line per message ---------------------------


def test_a_key_at_every_offset_of_a_2kb_error_body_never_reaches_the_log_or_the_client(tmp_path, procs, upstream):
    size = 2048

    def echo_key(h, rec):  # the body quotes the key at the offset the request names
        offset = int(json.loads(rec.body)["messages"][0]["content"])
        body = ("." * offset + KEY + "." * size)[:size].encode()
        h.send_head(500, content_type="text/plain", length=len(body))
        h.wfile.write(body)

    upstream.on(GO_CHAT, echo_key)
    proc, port, url = serve(tmp_path, procs, upstream, circuit_breaker={"threshold": 100000})
    session = requests.Session()
    answers = []
    for offset in range(size - len(KEY) + 1):
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": str(offset)}]}
        resp = session.post(url + "/v1/messages", json=body, timeout=30)
        assert resp.status_code == 502
        answers.append(resp.text)
    answers.append(session.get(url + "/health", timeout=30).text)
    answers.append(session.get(url + "/metrics", timeout=30).text)
    session.post(url + "/v1/messages", json={"model": "end-of-offsets", "max_tokens": 1, "messages": USER}, timeout=30)
    flushed(proc, "end-of-offsets")
    out = proc.output()
    assert out.count("API error 500") >= size - len(KEY) + 1  # every failure was logged
    assert "[redacted]" in out
    for piece in fragments(KEY):
        assert piece not in out, piece
        assert not any(piece in a for a in answers), piece


def test_cr_lf_and_control_characters_in_client_values_do_not_forge_log_lines(tmp_path, procs, upstream):
    upstream.on(GO_CHAT, chat_auto("fine"))
    proc, port, url = serve(tmp_path, procs, upstream,
                            client_api_keys=["plain-key-0123456789", {"name": "alice", "key": ALICE}])
    forged = "time=2026-01-01 level=ERROR logger=ocproxy msg=FORGED"
    client = anthropic.Anthropic(base_url=url, api_key=ALICE, max_retries=0, timeout=30)
    msg = client.messages.create(model=f"evil\r\n{forged}\x1b[31m\u2028{forged}", max_tokens=10, messages=USER,
                                 metadata={"user_id": json.dumps({"session_id": f"s\n{forged}"})},
                                 extra_headers={"X-Request-ID": "rid-\x7f-1"})
    assert msg.content[0].text == "fine"
    session = upstream.calls(GO_CHAT)[-1].headers["x-opencode-session"]
    assert session.startswith("ocproxy-") and "\n" not in session
    client.messages.create(model="end-marker", max_tokens=10, messages=USER)
    flushed(proc, "end-marker")
    lines = log_lines(proc)
    assert not any(line.startswith(forged) or line.startswith("\x1b") for line in lines)
    received = [line for line in lines if "received request" in line and "evil" in line]
    assert len(received) == 1
    # escaped in place, the line whole; the client is named, its key is not
    assert "evil\\r\\n" + forged + "\\x1b[31m\\u2028" + forged in received[0]
    assert "client=alice " in received[0] and "id=rid-\\x7f-1" in received[0]
    assert ALICE not in proc.output()
    for line in lines:
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]", line), line


# -- connections -------------------------------------------------------------------


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _raise_own_descriptor_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this test opens {needed} sockets; the descriptor limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _closed_by_server(sock: socket.socket) -> bool:
    # non-blocking: on a socket with a timeout, Python waits out the timeout
    # for data even with MSG_DONTWAIT
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_2000_slow_loris_connections_do_not_lock_out_a_real_client(tmp_path, procs, upstream):
    """Each loris sends half its headers and nothing more (the request
    deadline is set far away: the connection cap alone must hold). A real
    client still gets its answer, and when the loris go the proxy is back
    to its few threads."""
    _raise_own_descriptor_limit(2600)
    upstream.on(GO_CHAT, chat_auto("fine"))
    proc, port, url = serve(tmp_path, procs, upstream, max_connections=300, request_read_timeout_ms=600_000)
    # one request first: the threads a served request starts for good (the
    # usage ledger's writer, the heartbeat) are part of the baseline
    assert requests.post(url + "/v1/messages", json={"model": MODEL, "max_tokens": 10, "messages": USER},
                         timeout=30).status_code == 200
    baseline = _threads(proc.pid)
    loris = []
    try:
        for _ in range(2000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: appli")
            loris.append(sock)
        assert wait_for(lambda: _threads(proc.pid) <= baseline + 300 + 20, 30), _threads(proc.pid)
        # the answer, not its speed, is the assertion here (make bench measures speed)
        client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0, timeout=60)
        assert client.messages.create(model=MODEL, max_tokens=10, messages=USER).content[0].text == "fine"
        closed = sum(_closed_by_server(s) for s in loris)
        assert closed >= 2000 - 300 - 1, closed  # the oldest gave way, at most max_connections stay
    finally:
        for sock in loris:
            sock.close()
    assert wait_for(lambda: _threads(proc.pid) <= baseline + 2, 30), _threads(proc.pid)
    assert requests.post(url + "/v1/messages", json={"model": MODEL, "max_tokens": 10, "messages": USER},
                         timeout=30).status_code == 200
    assert proc.popen.poll() is None


def test_out_of_descriptors_the_accept_loop_waits_and_says_so_once(tmp_path, procs, upstream):
    """With 64 descriptors and 200 idle connections, accept() fails with
    EMFILE while the listening socket stays readable: the loop must back
    off, not spin. Once the connections close it serves again."""
    upstream.on(GO_CHAT, chat_auto("fine"))

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proc, port, url = serve(tmp_path, procs, upstream, name="emfile", preexec=limit, request_read_timeout_ms=600_000)
    # serve could not raise its limit to what max_connections needs, and says so
    # (through the log queue, which may write it after /health answers)
    assert wait_for(lambda: "needs about 2112 file descriptors but the limit is 64" in proc.output(), 30)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(200)]
    try:
        assert wait_for(lambda: "cannot accept connections" in proc.output(), 30), proc.output()[-2000:]
        before = _cpu_seconds(proc.pid)
        time.sleep(2.0)  # a window to measure CPU over, not a timing assertion
        used = _cpu_seconds(proc.pid) - before
        assert used < 0.5, f"accept loop spun: {used:.2f} s of CPU in 2 s"
        assert proc.output().count("cannot accept connections") == 1
    finally:
        for sock in idle:
            sock.close()
    assert wait_for(lambda: "accepting connections again" in proc.output(), 30), proc.output()[-2000:]
    resp = wait_for(lambda: _try_post(url), 30)
    assert resp is not None and resp.status_code == 200


def _try_post(url):
    try:
        return requests.post(url + "/v1/messages", json={"model": MODEL, "max_tokens": 10, "messages": USER},
                             timeout=10)
    except requests.RequestException:
        return None
