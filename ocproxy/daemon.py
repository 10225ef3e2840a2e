"""Pid file, background launch, ``stop`` and ``status``.

One instance per port: the pid and log files live in ``~/.config/ocproxy``
and carry the port (``ocproxy-3456.pid``), so two instances on two ports
coexist and ``stop``/``status`` (``-p N`` or the config's port) address the
right one. "Running" means signal 0 reaches the pid, the process is not a
zombie (a server that exited but was not reaped yet must not block
``stop``/``serve``) and its command line is ocproxy's: a stale pid that the
system gave to another program is never signalled.

Exit codes: 0 running/stopped, 3 not running, 1 errors.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time

from ocproxy.config import config_dir

log = logging.getLogger("ocproxy.server")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3

#: How long in-flight requests and streams may run on after SIGTERM/SIGINT.
GRACE_SECONDS = 10.0
GRACE_ENV = "OCPROXY_SHUTDOWN_GRACE_MS"

#: What a server's shutdown may take past its grace period (closing leftover
#: streams, joining request threads, each bounded at 5 s), plus a margin:
#: ``stop`` waits ``grace + STOP_MARGIN_SECONDS``, and the systemd unit's
#: ``TimeoutStopSec`` is the default grace plus this.
STOP_MARGIN_SECONDS = 20.0

#: How long ``serve -b`` waits for the server to listen.
START_WAIT_SECONDS = 30.0


def grace_from_env(env=os.environ) -> float:
    """``OCPROXY_SHUTDOWN_GRACE_MS`` (milliseconds, >= 0) or the 10 s default."""
    text = env.get(GRACE_ENV, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value >= 0:
            return value / 1000.0
        log.warning("ignoring %s=%r: not a whole number of milliseconds", GRACE_ENV, text)
    return GRACE_SECONDS


def stop_wait_seconds(env=os.environ) -> float:
    return grace_from_env(env) + STOP_MARGIN_SECONDS


def state_dir(env=os.environ) -> str:
    """``~/.config/ocproxy``; the system temp dir when no home is known."""
    if not env.get("HOME") and not os.path.expanduser("~").startswith(os.sep):
        return tempfile.gettempdir()
    return config_dir(env)


def pid_path(port: int, env=os.environ) -> str:
    return os.path.join(state_dir(env), f"ocproxy-{port}.pid")


def log_path(port: int, env=os.environ) -> str:
    return os.path.join(state_dir(env), f"ocproxy-{port}.log")


def ensure_dir(env=os.environ) -> str:
    path = state_dir(env)
    os.makedirs(path, mode=0o755, exist_ok=True)
    return path


def read_pid(path: str) -> int | None:
    """The pid in the file, or None when missing/unreadable/non-numeric.

    Tolerant: surrounding whitespace (a trailing newline from a hand edit or
    another tool) is ignored.
    """
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid(path: str, pid: int | None = None) -> str:
    """Write the pid (decimal, no newline) atomically, so a concurrent
    ``status`` never reads a half-written number."""
    ensure_dir()
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(str(pid or os.getpid()))
    os.replace(tmp, path)
    return path


def remove_pid(path: str, only_if: int | None = None) -> None:
    """Delete the pid file; with ``only_if``, only while it still names that
    pid (a server must not delete the file of an instance started after it)."""
    if only_if is not None and read_pid(path) != only_if:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_alive(pid: int) -> bool:
    """Signal 0 succeeds and the process is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            # "pid (comm) S ...": the state follows the last ')' (comm may hold spaces/parens)
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): signal 0 is all we have


def command_line(pid: int) -> list[str] | None:
    """The process's arguments; None when they cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return []  # /proc exists and the process does not
    except OSError:
        pass
    try:  # no /proc (macOS): ps
        out = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.split() if out.returncode == 0 else []


def is_ocproxy(pid: int) -> bool:
    """The pid runs ``ocproxy serve`` (console script, ``bin/ocproxy`` or
    ``python -m ocproxy``). Unknown (no way to read a command line): True,
    as signal 0 alone said before."""
    args = command_line(pid)
    if args is None:
        return True
    return "serve" in args and any(os.path.basename(a) == "ocproxy" for a in args)


def _live_server(pid: int | None) -> bool:
    return pid is not None and is_alive(pid) and is_ocproxy(pid)


def check_not_running(port: int) -> int | None:
    """For ``serve`` (foreground and launcher): the pid of a live server on
    ``port``, after printing "already running"; None when we may start (a
    stale file is removed)."""
    path = pid_path(port)
    pid = read_pid(path)
    if pid is None or pid == os.getpid():
        return None
    if _live_server(pid):
        print(f"Error: server is already running on port {port} (PID {pid})", file=sys.stderr)
        return pid
    remove_pid(path, only_if=pid)
    return None


def start_background(child_args: list[str], port: int) -> int:
    """``serve -b``: spawn ``serve --_daemonize ...`` detached; return once
    it listens (its pid file names it: the server writes it after binding),
    or exit 1 with the child's own error when it died first (port taken).

    The caller (cli) has already loaded the config and exits 2 on errors, so
    a bad config never spawns a child that would only die into the log file.
    """
    ensure_dir()
    if check_not_running(port) is not None:
        return EXIT_ERROR
    log_file = log_path(port)
    command = [sys.executable, "-m", "ocproxy", *child_args, "--_daemonize"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        with open(os.devnull, "rb") as devnull, open(log_file, "ab") as log_out:
            start_of_run = log_out.tell()
            child = subprocess.Popen(
                command, stdin=devnull, stdout=log_out, stderr=subprocess.STDOUT,
                cwd=state_dir(), env=env, start_new_session=True, close_fds=True,
            )
    except OSError as exc:
        print(f"Error: failed to start server: {exc}", file=sys.stderr)
        return EXIT_ERROR
    deadline = time.monotonic() + START_WAIT_SECONDS
    while read_pid(pid_path(port)) != child.pid:
        if child.poll() is not None:
            print(f"Error: server exited with status {child.returncode} before listening", file=sys.stderr)
            for line in _log_since(log_file, start_of_run):
                if line.startswith("Error:"):
                    print(f"  {line}", file=sys.stderr)
            print(f"  Log file: {log_file}", file=sys.stderr)
            return EXIT_ERROR
        if time.monotonic() >= deadline:
            print(f"Error: server (PID {child.pid}) not listening after {START_WAIT_SECONDS:.0f} s; "
                  f"see {log_file}", file=sys.stderr)
            child.returncode = 0  # it may still come up; it is not ours to reap
            return EXIT_ERROR
        time.sleep(0.05)
    print("Started ocproxy in background")
    print(f"  PID: {child.pid}")
    print(f"  Log file: {log_file}")
    print(f"  PID file: {pid_path(port)}")
    print(f"  Stop with: ocproxy stop --port {port}")
    # The child lives on in its own session; dropping our handle is fine
    # (subprocess would only warn that it is "still running").
    child.returncode = 0
    return EXIT_OK


def _log_since(path: str, offset: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(65536).decode(errors="replace").splitlines()
    except OSError:
        return []


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _stale(path: str, pid: int) -> int:
    remove_pid(path, only_if=pid)
    if is_alive(pid):
        print(f"Server is not running (stale PID file: PID {pid} is another program)")
    else:
        print("Server is not running (stale PID file)")
    return EXIT_NOT_RUNNING


def stop(port: int) -> int:
    """SIGTERM the server on ``port`` and wait for it to go: its grace
    period plus a margin."""
    path = pid_path(port)
    pid = read_pid(path)
    if pid is None:
        print(f"Error: server is not running on port {port} (no PID file)", file=sys.stderr)
        return EXIT_NOT_RUNNING
    if not _live_server(pid):
        return _stale(path, pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return _stale(path, pid)
    except PermissionError as exc:
        print(f"Error: failed to stop server: cannot send SIGTERM: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Sent stop signal to server (PID {pid})", flush=True)
    wait = stop_wait_seconds()
    if not wait_gone(pid, wait):
        print(f"Error: server (PID {pid}) still running after {wait:.0f} s", file=sys.stderr)
        return EXIT_ERROR
    remove_pid(path, only_if=pid)  # the server removes it itself; this covers a crash
    return EXIT_OK


def status(port: int) -> int:
    """Say whether the server on ``port`` runs: exit 0 if it does, 3 if not."""
    path = pid_path(port)
    pid = read_pid(path)
    if pid is None:
        print(f"Server is not running on port {port}")
        return EXIT_NOT_RUNNING
    if not _live_server(pid):
        return _stale(path, pid)
    print(f"Server is running on port {port} (PID {pid})")
    return EXIT_OK
