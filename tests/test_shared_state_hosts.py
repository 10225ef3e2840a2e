"""gunicorn with several worker processes, through real sockets: with the
Redis state backend the workers share one rate limit, one breaker per model
and one set of metrics; Redis going away mid-run fails no request; the memory
backend under several workers says so once at start."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time

import pytest
import requests

from tests.fakes import chat_completion, json_body, status
from tests.procs import GO_CHAT, clean_env, config_dict, free_port, message_body, wait_health, write_json

KEY = "sk-shared-state-upstream-SECRET-77aa"
FAILING, WORKING = "glm-5.1", "kimi-k2.6"


def _gunicorn() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    found = beside if os.access(beside, os.X_OK) else shutil.which("gunicorn")
    if found is None:
        pytest.skip("gunicorn is not installed in this environment")
    return found


def by_model(h, rec):
    """The failing model answers 500, every other one a completion."""
    model = json.loads(rec.body).get("model")
    if model == FAILING:
        status(500, {"error": {"message": "upstream exploded"}})(h, rec)
    else:
        json_body(chat_completion("fine", model=model))(h, rec)


class Gunicorn:
    def __init__(self, tmp_path, upstream, procs, workers: int, **config):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = tmp_path / f"home-{self.port}"
        home.mkdir()
        path = tmp_path / f"config-{self.port}.json"
        write_json(path, config_dict(upstream, self.port, KEY, **config))
        self.tmpdir = tmp_path / f"tmp-{self.port}"  # where gunicorn_conf makes its metrics directory
        self.tmpdir.mkdir()
        env = clean_env(home, OCPROXY_CONFIG=str(path), TMPDIR=str(self.tmpdir))
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = procs.start([_gunicorn(), "-c", "python:ocproxy.gunicorn_conf", "-w", str(workers),
                                 "-b", f"127.0.0.1:{self.port}", "ocproxy.wsgi:application"], env, name="gunicorn")
        wait_health(self.url, self.proc, timeout=30)

    def post(self, **headers) -> requests.Response:
        # a new connection each time, so the requests spread over the workers
        return requests.post(self.url + "/v1/messages", json=message_body(False), timeout=20,
                             headers={"Connection": "close", **headers})

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=10, headers={"Connection": "close"})


def redis_state(server, **more) -> dict:
    return {"state": {"backend": "redis", "url": server.url, "prefix": "t-hosts:"}, **more}


def chain_config() -> dict:
    return {"models": {"default": {"provider": "opencode-go", "model_id": FAILING},
                       "fast": {"provider": "opencode-go", "model_id": FAILING}},
            "fallbacks": {"default": [{"provider": "opencode-go", "model_id": WORKING}]},
            "circuit_breaker": {"threshold": 3, "recovery_timeout_ms": 600000}}


def test_four_workers_share_one_rate_limit_through_redis(tmp_path, upstream, procs, redis_server):
    upstream.on(GO_CHAT, by_model)
    host = Gunicorn(tmp_path, upstream, procs, 4, rate_limit_per_minute=10, **redis_state(redis_server))
    # one client (the same forwarded address, and the same peer) on 30 fresh connections
    codes = [host.post(**{"X-Forwarded-For": "10.1.2.3"}).status_code for _ in range(30)]
    assert codes.count(200) == 10 and codes.count(429) == 20, codes
    assert KEY not in host.proc.output()


def test_four_workers_share_breakers_and_metrics_and_survive_redis_stopping(tmp_path, upstream, procs,
                                                                             redis_server):
    upstream.on(GO_CHAT, by_model)
    host = Gunicorn(tmp_path, upstream, procs, 4, **redis_state(redis_server), **chain_config())
    answers = [host.post() for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 8
    assert {r.headers["x-ocproxy-model"] for r in answers} == {WORKING}  # the fallback answered
    failing_calls = [c for c in upstream.calls(GO_CHAT) if c.json["model"] == FAILING]
    assert len(failing_calls) == 3  # the threshold, not threshold x workers
    # every scrape, whichever worker answers it, reads the total of all workers
    for _ in range(10):
        text = host.get("/metrics").text
        assert re.search(r"^ocproxy_requests_received_total 8\.0$", text, re.M), text
        assert re.search(rf'^ocproxy_model_success_total\{{model="{WORKING}"\}} 8\.0$', text, re.M), text
        assert f'ocproxy_circuit_breaker_open{{model="{FAILING}",state="open"}} 1.0' in text
        health = host.get("/health").json()
        assert health["metrics"]["requests_received"] == 8 and health["models"] == {WORKING: 8}
        assert health["circuit_breakers"][FAILING] == "open"

    redis_server.stop()
    codes = [host.post().status_code for _ in range(12)]
    assert codes == [200] * 12  # per-process breakers take over: slower, never failing
    from tests.procs import wait_for

    def unreachable() -> list[str]:  # the workers' log lines reach the pipe a little later
        return [line for line in host.proc.output().splitlines()
                if "logger=ocproxy.state" in line and "unreachable" in line]

    assert wait_for(unreachable, 10), host.proc.output()
    out = host.proc.output()
    assert 1 <= len(unreachable()) <= 4, out  # one per worker that noticed, not one per request
    assert "Traceback" not in out and KEY not in out
    assert 'worker processes with state "memory"' not in out  # the start-up warning is for the memory backend
    text = host.get("/metrics").text
    assert re.search(r"^ocproxy_requests_received_total 20\.0$", text, re.M), text


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_memory_state_warning_and_metrics_that_outlive_a_dead_worker(tmp_path, upstream, procs):
    """Two workers, state in memory: one warning at start. A worker killed
    mid-run takes none of the counts with it (its files stay in the sum);
    the master removes the metrics directory when it exits."""
    upstream.on(GO_CHAT, by_model)
    host = Gunicorn(tmp_path, upstream, procs, 2)
    assert [host.post().status_code for _ in range(6)] == [200] * 6
    out = host.proc.output()
    assert out.count('worker processes with state "memory"') == 1, out
    (metrics_dir,) = list(host.tmpdir.glob("ocproxy-metrics-*"))
    victim = _children(host.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while victim in _children(host.proc.pid) or len(_children(host.proc.pid)) < 2:
        assert time.monotonic() < deadline, "gunicorn did not replace the killed worker"
        time.sleep(0.1)
    for _ in range(6):
        assert re.search(r"^ocproxy_requests_received_total 6\.0$", host.get("/metrics").text, re.M)
    assert [host.post().status_code for _ in range(2)] == [200] * 2
    assert host.get("/health").json()["metrics"]["requests_received"] == 8
    host.proc.signal(signal.SIGTERM)
    assert host.proc.wait(20) == 0, host.proc.output()
    assert not metrics_dir.exists()


def test_streams_open_is_the_sum_of_every_workers_open_streams(tmp_path, upstream, procs):
    """Eight streams held open over four workers: every scrape of /metrics
    and /health, whichever worker answers it, counts all eight; once the
    clients leave, none."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.fakes import chat_text_chunks, sse

    held = 8
    role, text, *end = chat_text_chunks(["held"])
    upstream.on(GO_CHAT, *[sse(role, text, 30.0, *end) for _ in range(held)])  # 30 s: until the client leaves
    host = Gunicorn(tmp_path, upstream, procs, 4)

    def open_stream(_):
        resp = requests.post(host.url + "/v1/messages", json=message_body(True), stream=True, timeout=20,
                             headers={"Connection": "close"})
        assert resp.status_code == 200
        return resp

    with ThreadPoolExecutor(held) as pool:
        streams = list(pool.map(open_stream, range(held)))
    try:
        for _ in range(8):
            assert re.search(rf"^ocproxy_streams_open {held}\.0$", host.get("/metrics").text, re.M)
            assert host.get("/health").json()["metrics"]["streams_open"] == held
    finally:
        for resp in streams:
            resp.close()
    from tests.procs import wait_for
    assert wait_for(lambda: host.get("/health").json()["metrics"]["streams_open"] == 0, 20)
