"""Pid file, background launch, ``stop`` and ``status``.

One instance per user: the pid and log files live in ``~/.config/ocproxy``
whatever ``--config`` says, so ``ocproxy stop`` finds a server started with
any config. "Running" means signal 0 reaches the pid (pid reuse may give a
false positive, a rare and harmless one), except that a zombie counts as gone:
a server that exited but was not reaped yet must not block ``stop``/``serve``.

Exit codes: 0 running/stopped, 3 not running, 1 errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

from ocproxy.config import config_dir

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3

PID_NAME = "ocproxy.pid"
LOG_NAME = "ocproxy.log"

#: How long ``stop`` waits for the server to disappear. The server's own
#: shutdown takes up to its grace period (10 s) plus the close of leftover
#: streams, so 15 s (systemd's TimeoutStopSec in our unit) makes
#: ``ocproxy stop && ocproxy serve`` work after a busy server.
STOP_WAIT_SECONDS = 15.0


def state_dir(env=os.environ) -> str:
    """``~/.config/ocproxy``; the system temp dir when no home is known."""
    if not env.get("HOME") and not os.path.expanduser("~").startswith(os.sep):
        return tempfile.gettempdir()
    return config_dir(env)


def pid_path(env=os.environ) -> str:
    return os.path.join(state_dir(env), PID_NAME)


def log_path(env=os.environ) -> str:
    return os.path.join(state_dir(env), LOG_NAME)


def ensure_dir(env=os.environ) -> str:
    path = state_dir(env)
    os.makedirs(path, mode=0o755, exist_ok=True)
    return path


def read_pid(path: str | None = None) -> int | None:
    """The pid in the file, or None when missing/unreadable/non-numeric.

    Tolerant: surrounding whitespace (a trailing newline from a hand edit or
    another tool) is ignored.
    """
    try:
        with open(path or pid_path(), encoding="ascii", errors="replace") as fh:
            text = fh.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid(pid: int | None = None, path: str | None = None) -> str:
    """Write the pid (decimal, no newline) atomically, so a concurrent
    ``status`` never reads a half-written number."""
    ensure_dir()
    path = path or pid_path()
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(str(pid or os.getpid()))
    os.replace(tmp, path)
    return path


def remove_pid(only_if: int | None = None, path: str | None = None) -> None:
    """Delete the pid file; with ``only_if``, only while it still names that
    pid (a server must not delete the file of an instance started after it)."""
    path = path or pid_path()
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


def running_pid() -> int | None:
    """The live server's pid; a stale pid file is removed on the way."""
    pid = read_pid()
    if pid is None:
        return None
    if is_alive(pid):
        return pid
    remove_pid(only_if=pid)
    return None


def check_not_running() -> int | None:
    """For ``serve`` (foreground and launcher): the pid of a live server, after
    printing "already running"; None when we may start (stale file removed)."""
    pid = read_pid()
    if pid is None or pid == os.getpid():
        return None
    if is_alive(pid):
        print(f"Error: server is already running (PID {pid})", file=sys.stderr)
        return pid
    remove_pid(only_if=pid)
    return None


def start_background(child_args: list[str]) -> int:
    """``serve -b``: spawn ``serve --_daemonize ...`` detached and return.

    The caller (cli) has already loaded the config and exits 2 on errors, so
    a bad config never spawns a child that would only die into the log file.
    """
    ensure_dir()
    if check_not_running() is not None:
        return EXIT_ERROR
    log_file = log_path()
    command = [sys.executable, "-m", "ocproxy", *child_args, "--_daemonize"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        with open(os.devnull, "rb") as devnull, open(log_file, "ab") as log:
            child = subprocess.Popen(
                command, stdin=devnull, stdout=log, stderr=subprocess.STDOUT,
                cwd=state_dir(), env=env, start_new_session=True, close_fds=True,
            )
    except OSError as exc:
        print(f"Error: failed to start server: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print("Started ocproxy in background")
    print(f"  Launcher PID: {child.pid}")
    print(f"  Log file: {log_file}")
    print(f"  PID file: {pid_path()}")
    print("  Stop with: ocproxy stop")
    # The child lives on in its own session; dropping our handle is fine
    # (subprocess would only warn that it is "still running").
    child.returncode = 0
    return EXIT_OK


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop() -> int:
    """SIGTERM the server and wait for it to go."""
    pid = read_pid()
    if pid is None:
        print("Error: server is not running (no PID file)", file=sys.stderr)
        return EXIT_NOT_RUNNING
    if not is_alive(pid):
        remove_pid(only_if=pid)
        print("Server is not running (stale PID file)")
        return EXIT_NOT_RUNNING
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        remove_pid(only_if=pid)
        print("Server is not running (stale PID file)")
        return EXIT_NOT_RUNNING
    except PermissionError as exc:
        print(f"Error: failed to stop server: cannot send SIGTERM: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Sent stop signal to server (PID {pid})", flush=True)
    if not wait_gone(pid, STOP_WAIT_SECONDS):
        print(f"Error: server (PID {pid}) still running after {STOP_WAIT_SECONDS:.0f} s", file=sys.stderr)
        return EXIT_ERROR
    remove_pid(only_if=pid)  # the server removes it itself; this covers a crash
    return EXIT_OK


def status() -> int:
    """Say whether the server runs: exit 0 if it does, 3 if not."""
    pid = read_pid()
    if pid is None:
        print("Server is not running")
        return EXIT_NOT_RUNNING
    if not is_alive(pid):
        remove_pid(only_if=pid)
        print("Server is not running (stale PID file)")
        return EXIT_NOT_RUNNING
    print(f"Server is running (PID {pid})")
    return EXIT_OK
