"""A real ``redis-server`` for the tests, on a free port in a temp dir.

Installed by ``make test`` (Debian's ``redis-server``) when it can be; when
it is missing the test skips saying so, except under ``CI=true`` where it
fails: CI must really run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.procs import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


def require_redis_server() -> str:
    binary = redis_server_binary()
    if binary is None:
        reason = "redis-server is not installed (make redis-server installs it as root with apt)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


class RedisServer:
    """Owner of one redis-server process: :meth:`stop` kills and reaps it;
    :meth:`start` brings it back on the same port (a restart)."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"]
        log = open(self.workdir / "redis.log", "ab")
        with log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start: " + (self.workdir / "redis.log").read_text())
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path):
    binary = require_redis_server()
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(binary, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
