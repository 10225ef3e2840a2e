"""A process that starts and stops as told, through the real CLI as
subprocesses, exit codes asserted: ``serve -b`` returns once listening and
fails with the bind error; one pid file per instance (port), so two
instances coexist; ``stop`` never signals a pid that is not ocproxy; waitress
stops on SIGTERM with SIGINT ignored; hot reload does not block on a FIFO.
"""

from __future__ import annotations

import os
import re
import signal
import socket

import pytest
import requests

from ocproxy import daemon, server
from ocproxy.streaming import StreamResponse
from tests.fakes import chat_completion, json_body
from tests.procs import GO_CHAT, PYTHON, clean_env, cli, config_dict, free_port, wait_for, wait_health, write_json
from tests.test_wsgi_hosts import _binary

KEY = "sk-instances-upstream-SECRET-77aa55"


class Home:
    def __init__(self, tmp_path, upstream, grace_ms=5000):
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.state = self.home / ".config" / "ocproxy"
        self.tmp = tmp_path
        self.upstream = upstream
        self.env = clean_env(self.home, OCPROXY_SHUTDOWN_GRACE_MS=str(grace_ms))

    def config(self, name: str, port: int, **over):
        path = self.tmp / f"{name}.json"
        write_json(path, config_dict(self.upstream, port, KEY, **over))
        return path

    def cli(self, *args):
        return cli(self.env, *args)

    def pid_file(self, port: int):
        return self.state / f"ocproxy-{port}.pid"


@pytest.fixture
def home(tmp_path, upstream):
    return Home(tmp_path, upstream)


def _started_pid(run) -> int:
    return int(re.search(r"^  PID: (\d+)$", run.stdout, re.M).group(1))


def test_serve_b_on_a_taken_port_exits_1_with_the_bind_error(home):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        run = home.cli("serve", "-b", "--config", str(home.config("a", port)))
    assert run.returncode == 1, run.stdout
    assert "before listening" in run.stderr
    assert f"Error: server failed: listen on 127.0.0.1:{port}" in run.stderr
    assert "Address already in use" in run.stderr
    assert "Started ocproxy" not in run.stdout
    assert not home.pid_file(port).exists()


def test_two_instances_coexist_and_stop_status_address_each(home, procs):
    home.upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    port_a, port_b = free_port(), free_port()
    run_a = home.cli("serve", "-b", "--config", str(home.config("a", port_a)))
    run_b = home.cli("serve", "-b", "--config", str(home.config("b", port_b)))
    assert (run_a.returncode, run_b.returncode) == (0, 0), run_a.stderr + run_b.stderr
    pid_a, pid_b = _started_pid(run_a), _started_pid(run_b)
    procs.adopt(pid_a)
    procs.adopt(pid_b)
    # Returned once listening: both answer now, no polling.
    for port in (port_a, port_b):
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    assert home.pid_file(port_a).read_text() == str(pid_a)
    assert home.pid_file(port_b).read_text() == str(pid_b)

    st = home.cli("status", "--port", str(port_a))
    assert (st.returncode, st.stdout.strip()) == (0, f"Server is running on port {port_a} (PID {pid_a})")
    st = home.cli("status", "--config", str(home.tmp / "b.json"))
    assert (st.returncode, st.stdout.strip()) == (0, f"Server is running on port {port_b} (PID {pid_b})")

    stop = home.cli("stop", "--config", str(home.tmp / "a.json"))
    assert stop.returncode == 0, stop.stderr
    assert wait_for(lambda: not daemon.is_alive(pid_a), 5)
    assert daemon.is_alive(pid_b)
    assert requests.get(f"http://127.0.0.1:{port_b}/health", timeout=5).status_code == 200
    assert home.cli("status", "--port", str(port_a)).returncode == 3
    assert home.cli("stop", "--port", str(port_b)).returncode == 0
    assert not home.pid_file(port_b).exists()


def test_stop_never_signals_a_live_pid_that_is_not_ocproxy(home, procs):
    port = free_port()
    other = procs.start(["sleep", "60"], home.env, name="sleep")
    home.state.mkdir(parents=True)
    home.pid_file(port).write_text(str(other.pid))
    stop = home.cli("stop", "--port", str(port))
    assert stop.returncode == 3
    assert stop.stdout.strip() == f"Server is not running (stale PID file: PID {other.pid} is another program)"
    assert other.popen.poll() is None  # untouched
    assert not home.pid_file(port).exists()
    # nor does the stale file keep a server from starting on that port
    home.pid_file(port).write_text(str(other.pid))
    run = home.cli("serve", "-b", "--config", str(home.config("a", port)))
    assert run.returncode == 0, run.stderr
    procs.adopt(_started_pid(run))
    assert home.cli("stop", "--port", str(port)).returncode == 0
    assert other.popen.poll() is None


def test_stop_waits_past_the_grace_period_and_the_unit_leaves_a_margin():
    # What shutdown may take after the grace: app.close (streams, bounded at
    # InFlight's 5 s) and the request-thread joins (server.JOIN_SECONDS).
    after_grace = StreamResponse.JOIN_SECONDS + server.JOIN_SECONDS
    env = {daemon.GRACE_ENV: "45000"}
    assert daemon.stop_wait_seconds(env) > 45 + after_grace
    assert daemon.stop_wait_seconds({}) > daemon.GRACE_SECONDS + after_grace
    unit = (__import__("tests.procs", fromlist=["ROOT"]).ROOT / "etc" / "ocproxy.service").read_text()
    timeout = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
    assert timeout > daemon.GRACE_SECONDS + after_grace


def test_waitress_stops_on_sigterm_with_sigint_ignored(home, procs):
    waitress = _binary("waitress-serve")
    if waitress is None:
        pytest.skip("waitress is not installed in this environment")
    port = free_port()
    env = dict(home.env, OCPROXY_CONFIG=str(home.config("w", port)))
    # A background job from a script: `trap '' INT` is inherited across exec.
    proc = procs.start(["sh", "-c", f"trap '' INT; exec {waitress} --listen=127.0.0.1:{port} "
                                    "--threads=4 ocproxy.wsgi:application"], env, name="waitress")
    wait_health(f"http://127.0.0.1:{port}", proc, timeout=20)
    with open(f"/proc/{proc.pid}/status") as fh:
        ignored = int(re.search(r"^SigIgn:\s+([0-9a-f]+)$", fh.read(), re.M).group(1), 16)
    assert ignored & (1 << (signal.SIGINT - 1)), "the host should start with SIGINT ignored"
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.output()
    assert "server stopped" in proc.output()


def test_hot_reload_does_not_block_on_a_fifo_config_path(home, procs):
    home.upstream.on(GO_CHAT, json_body(chat_completion("ok")))
    port = free_port()
    path = home.config("r", port, hot_reload=True)
    proc = procs.start([PYTHON, "-m", "ocproxy", "serve", "--config", str(path)], home.env, name="serve")
    url = f"http://127.0.0.1:{port}"
    wait_health(url, proc)
    os.unlink(path)
    os.mkfifo(path)  # nobody ever writes to it: opening it for reading would block
    assert wait_for(lambda: "is not a regular file" in proc.output(), 5), proc.output()
    proc.signal(signal.SIGHUP)  # a reload asked for directly is refused the same way
    assert wait_for(lambda: proc.output().count("is not a regular file") >= 2, 5), proc.output()
    resp = requests.post(url + "/v1/messages", timeout=10, json={
        "model": "claude-sonnet-4-6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200 and resp.json()["content"][0]["text"] == "ok"
    proc.signal(signal.SIGTERM)  # joins the watcher thread: it must not be stuck in open()
    assert proc.wait(20) == 0, proc.output()
