"""The processes a benchmark run starts -- the fake upstreams and the servers
under test -- and what /proc says about them (RSS, CPU, threads).

Every process is started in its own process group and recorded in
``_procs``; bench.py's ``main`` stops them all in a ``finally``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import fakeup  # bench/fakeup.py: bench.py's directory is on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable

DELTAS = 2000  # text deltas in the fake upstream's stream

#: Every process started and not yet stopped (one thread, the benchmark's
#: main thread, touches it; no lock).
_procs: list[subprocess.Popen] = []


# -- processes -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd: list[str], env: dict | None = None, log: str | None = None, cwd: str = ROOT) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    _procs.append(p)
    return p


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(8)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    else:  # the leader is gone; its group may not be
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if p in _procs:
        _procs.remove(p)


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (gunicorn's workers)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return pids


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` plus its children's (gunicorn workers)."""
    total = 0
    for p in with_children(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """user + system CPU of ``pid`` and its children (gunicorn workers): a
    per-request cost that other load on the machine hardly moves."""
    total = 0
    for p in with_children(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def threads_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- fake upstream -------------------------------------------------------------


def start_upstream(tmp: str, force_python: bool) -> tuple[int, str]:
    port = free_port()
    nginx = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if nginx and not force_python:
        www = os.path.join(tmp, "www", "s")
        os.makedirs(www)
        with open(os.path.join(www, "completion.json"), "wb") as f:
            f.write(fakeup.completion_json())
        with open(os.path.join(www, "stream.sse"), "wb") as f:
            f.write(fakeup.stream_sse(DELTAS))
        user = "user root;" if os.geteuid() == 0 else ""
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
{user}
daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; tcp_nodelay on; keepalive_requests 1000000; keepalive_timeout 120;
  client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
  uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
  types {{ application/json json; text/event-stream sse; }}
  map $http_accept $target {{ ~event-stream /s/stream.sse; default /s/completion.json; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ rewrite ^ $target last; }}
    location /s/ {{ root {tmp}/www; error_page 405 =200 $uri; }}
  }}
}}
""")
        p = spawn([nginx, "-p", tmp, "-c", conf, "-e", f"{tmp}/nginx-error.log"], log=f"{tmp}/nginx.out")
        wait_port(port, p)
        return port, "nginx (static files, 1 worker)"
    p = spawn([PY, os.path.join(HERE, "fakeup.py"), "fast", "--port", str(port)])
    wait_port(port, p)
    return port, "bench/fakeup.py fast (python; install nginx for a faster fake)"


# -- servers under test ----------------------------------------------------------


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or ("/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK)
                                            else None)


def start_redis(tmp: str) -> str:
    """A redis-server of our own for the ``gunicorn-redis`` row; its URL."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("redis-server is not installed (make test installs it as root with apt)")
    port = free_port()
    workdir = os.path.join(tmp, "redis")
    os.makedirs(workdir, exist_ok=True)
    p = spawn([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
               "--appendonly", "no"], log=os.path.join(tmp, "redis.log"))
    wait_port(port, p)
    return f"redis://127.0.0.1:{port}/0"


def ocproxy_config(tmp: str, port: int, up: int, slow: int, redis_url: str | None = None) -> str:
    cfg = {
        "api_key": "sk-bench-000000000000",
        "host": "127.0.0.1", "port": port,
        "heartbeat_interval_ms": 1000,
        "models": {"default": {"provider": "opencode-go", "model_id": "kimi-k2.6"},
                   "fast": {"provider": "opencode-go", "model_id": "kimi-k2.6"}},
        "model_overrides": {"bench-slow": {"provider": "opencode-zen", "model_id": "bench-slow", "endpoint": "chat"}},
        "opencode_go": {"base_url": f"http://127.0.0.1:{up}/v1/chat/completions",
                        "anthropic_base_url": f"http://127.0.0.1:{up}/v1/messages"},
        "opencode_zen": {"base_url": f"http://127.0.0.1:{slow}/v1/chat/completions",
                         "anthropic_base_url": f"http://127.0.0.1:{slow}/v1/messages"},
        "logging": {"level": "info"},
    }
    if redis_url:
        cfg["state"] = {"backend": "redis", "url": redis_url, "prefix": f"bench-{port}:"}
    path = os.path.join(tmp, f"ocproxy-{port}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


#: claude-code-router's CLI, installed from npm by ``make bench`` (optional target).
CCR_CLI = os.environ.get("CCR_CLI") or os.path.join(
    ROOT, ".cache", "claude-code-router", "node_modules", "@musistudio", "claude-code-router", "dist", "cli.js")


def ccr_installed() -> bool:
    return os.path.exists(CCR_CLI) and shutil.which("node") is not None


def ccr_home(tmp: str, port: int, up: int) -> str:
    """A HOME whose ~/.claude-code-router/config.json sends every request to
    the fake upstream as the one chat model, logging off (as ocproxy's
    counterpart: its own text relay with routing)."""
    home = os.path.join(tmp, "ccr-home")
    os.makedirs(os.path.join(home, ".claude-code-router"), exist_ok=True)
    with open(os.path.join(home, ".claude-code-router", "config.json"), "w") as f:
        json.dump({"HOST": "127.0.0.1", "PORT": port, "LOG": False, "NON_INTERACTIVE_MODE": True,
                   "Providers": [{"name": "bench", "api_base_url": f"http://127.0.0.1:{up}/v1/chat/completions",
                                  "api_key": "sk-bench-000000000000", "models": ["kimi-k2.6"]}],
                   "Router": {"default": "bench,kimi-k2.6"}}, f)
    return home


def start_server(kind: str, tmp: str, up: int, slow: int, root: str = ROOT,
                 redis_url: str | None = None) -> tuple[subprocess.Popen, int]:
    """Start ``kind`` with ``tmp`` as its HOME, running the ocproxy found in
    the checkout ``root`` (bench/ab.py passes other checkouts); the
    ``gunicorn-redis`` kind keeps its state in ``redis_url``."""
    port = free_port()
    env = dict(os.environ, HOME=tmp, OCPROXY_SHUTDOWN_GRACE_MS="0", PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=root)
    env.pop("OCPROXY_API_KEY", None)
    log = os.path.join(tmp, f"{kind}.log")
    if kind == "relay":
        cmd = [PY, os.path.join(HERE, "relay.py"), "--port", str(port),
               "--upstream", f"http://127.0.0.1:{up}/v1/chat/completions",
               "--slow-upstream", f"http://127.0.0.1:{slow}/v1/chat/completions"]
    elif kind == "ocproxy":
        cmd = [PY, "-m", "ocproxy", "serve", "--config", ocproxy_config(tmp, port, up, slow)]
    elif kind == "ccr":
        env["HOME"] = ccr_home(tmp, port, up)
        cmd = ["node", CCR_CLI, "start"]
    else:  # gunicorn, gunicorn-redis: the documented multi-worker setup (multiprocess metrics)
        env["OCPROXY_CONFIG"] = ocproxy_config(tmp, port, up, slow, redis_url if kind == "gunicorn-redis" else None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd = [os.path.join(os.path.dirname(PY), "gunicorn"), "-c", "python:ocproxy.gunicorn_conf",
               "-k", "gthread", "--threads", "64", "-w", "2",
               "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048", "ocproxy.wsgi:application"]
    p = spawn(cmd, env=env, log=log, cwd=root)
    wait_port(port, p, 60.0 if kind == "ccr" else 20.0)
    time.sleep(0.5)  # let gunicorn's workers come up
    return p, port
