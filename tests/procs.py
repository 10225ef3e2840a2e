"""Helpers for tests that run ocproxy (or a WSGI host) as a real subprocess.

Every process is started in its own session so a test can kill the whole
group; :class:`Procs` is the owner that kills and reaps whatever is still
running when the test ends, pass or fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.fakes import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GO_CHAT = "/go/v1/chat/completions"
GO_MESSAGES = "/go/v1/messages"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path, **extra: str) -> dict:
    """The test process's environment minus every ocproxy/legacy variable,
    with a throwaway HOME, so the user's real config and pid file are never
    touched."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OCPROXY_", "ROUTATIC_PROXY_", "OC_GO_CC_"))}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def config_dict(upstream: FakeUpstream, port: int, key: str, model: str = "kimi-k2.6", **over) -> dict:
    data = {
        "api_key": key,
        "host": "127.0.0.1",
        "port": port,
        "respect_requested_model": False,
        "models": {"default": {"provider": "opencode-go", "model_id": model},
                   "fast": {"provider": "opencode-go", "model_id": model}},
        "opencode_go": {"base_url": upstream.url(GO_CHAT), "anthropic_base_url": upstream.url(GO_MESSAGES),
                        "timeout_ms": 10000, "streaming_timeout_ms": 30000},
        "opencode_zen": {"base_url": upstream.url("/zen/v1/chat/completions"),
                         "anthropic_base_url": upstream.url("/zen/v1/messages"), "timeout_ms": 10000},
        "heartbeat_interval_ms": 100,
        "logging": {"level": "info", "requests": False},
        "quota": {"enabled": False},  # a test never asks the real OpenCode for its usage
    }
    data.update(over)
    return data


def write_json(path: Path, data: dict, size: int | None = None) -> None:
    """Write in place; ``size`` pads with trailing whitespace to that length
    (a test can then keep mtime, size and inode unchanged)."""
    text = json.dumps(data, indent=1)
    if size is not None:
        assert len(text) <= size
        text = text.ljust(size)
    path.write_text(text)


def replace_by_rename(path: Path, text: str) -> None:
    """Save the way many editors do: write a temp file, rename it over."""
    tmp = path.with_name(path.name + ".tmp~")
    tmp.write_text(text)
    os.replace(tmp, path)


class Proc:
    def __init__(self, popen: subprocess.Popen, log: Path):
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)


class Procs:
    """Owner of every process a test starts (and of pids it learns about,
    e.g. a daemon child); :meth:`cleanup` kills their groups and reaps."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.started: list[Proc] = []
        self.foreign: list[int] = []  # pids we did not spawn directly (daemon children)
        self._n = 0

    def start(self, args: list[str], env: dict, name: str = "proc", cwd: Path | None = None) -> Proc:
        self._n += 1
        log = self.tmp / f"{name}-{self._n}.out"
        with open(log, "wb") as out:
            popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=env, cwd=str(cwd or ROOT), start_new_session=True)
        proc = Proc(popen, log)
        self.started.append(proc)
        return proc

    def adopt(self, pid: int) -> None:
        self.foreign.append(pid)

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.popen.poll() is None:
                _killpg(proc.pid)
            try:
                proc.popen.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.foreign:
            _killpg(pid)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def cli(env: dict, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "ocproxy", *args], env=env, cwd=str(ROOT), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def wait_health(url: str, proc: Proc | None = None, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(f"process exited {proc.popen.returncode}:\n{proc.output()}")
        try:
            resp = requests.get(url + "/health", timeout=1)
            if resp.status_code == 200:
                return resp.json()
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{url} not healthy after {timeout}s ({last}):\n{proc.output() if proc else ''}")


def wait_for(predicate, timeout: float, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def parse_sse(raw: bytes) -> list[tuple[str, object]]:
    """Split a raw SSE body into frames and check each one is whole: every
    frame is a ``:keepalive`` comment or ``event:`` + one JSON ``data:``
    line, and the body ends on a frame boundary (no cut frame). Returns
    ``(event, data)`` pairs, ``(":keepalive", None)`` for comments."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), f"body ends inside a frame: {text[-200:]!r}"
    frames = []
    for block in text[:-2].split("\n\n"):
        lines = block.split("\n")
        if lines == [":keepalive"]:
            frames.append((":keepalive", None))
            continue
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:], block
        frames.append((lines[0][7:], data))
    return frames


def message_body(stream: bool, text: str = "hi", model: str = "claude-sonnet-4-6", **extra) -> dict:
    return {"model": model, "max_tokens": 100, "stream": stream,
            "messages": [{"role": "user", "content": text}], **extra}
