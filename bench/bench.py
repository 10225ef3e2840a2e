"""ocproxy speed and footprint benchmark (issue #6). Run: ``make bench``.

One run measures, side by side:

* ``relay``    -- bench/relay.py, the thinnest werkzeug + requests text relay;
* ``ocproxy``  -- the real ``ocproxy serve`` (werkzeug threaded server);
* ``gunicorn`` -- ``gunicorn -k gthread --threads 64 -w 2 ocproxy.wsgi:application``
  (where a production host's extra throughput lies; not a target).

against a fake upstream on loopback: nginx serving a static completion JSON
and a static 2,000-delta SSE file when nginx is installed (``make bench``
installs nginx and wrk when run as root), else bench/fakeup.py. Held streams
go to bench/fakeup.py's slow upstream (one selector thread).

Figures: non-streaming req/s and p50/p99 at concurrency 1, 16, 64 (wrk
when installed, else a thread + http.client keep-alive load generator; the
servers take turns, medians of ``--rounds`` turns each); time
to first byte and total time of one 2,000-delta stream (median of N);
completed 2,000-delta streams/s at concurrency 16; RSS (VmRSS from
/proc/<pid>/status; summed over gunicorn's processes) idle and peak with 200
and 1,000 slow streams held open by a selector client, heartbeats on, every
delta counted; and ocproxy / relay ratios against the issue's targets.

Every process started here is in its own process group and is killed in a
``finally``. Timing claims live here, never in the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
sys.path.insert(0, HERE)
import fakeup  # noqa: E402

NONSTREAM_BODY = json.dumps({
    "model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "You are a helpful assistant.",
    "messages": [{"role": "user", "content": "Say hello."}],
}).encode()
STREAM_BODY = json.dumps({
    "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True, "system": "You are a helpful assistant.",
    "messages": [{"role": "user", "content": "Write 2,000 words."}],
}).encode()
SLOW_BODY = json.dumps({
    "model": "bench-slow", "max_tokens": 1024, "stream": True,
    "messages": [{"role": "user", "content": "Take your time."}],
}).encode()
DELTAS = 2000
SLOW_DELTAS, SLOW_GAP = 4, 2.5  # held streams: 4 deltas 2.5 s apart, heartbeat every 1 s

_procs: list[subprocess.Popen] = []


# -- processes -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(cmd: list[str], env: dict | None = None, log: str | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
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


# -- load generation -----------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk_run(port: int, conns: int, seconds: float, tmp: str) -> dict:
    script = os.path.join(tmp, "post.lua")
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    f"wrk.body = {json.dumps(NONSTREAM_BODY.decode())}\n")
    out = subprocess.run(["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}/v1/messages"], capture_output=True, text=True, timeout=seconds + 30)
    text = out.stdout
    if "Requests/sec" not in text:
        raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", text).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors:.*", text)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(bad.group(1)) if bad else 0,
            "socket_errors": errs.group(0) if errs else ""}


def run_workers(worker, conns: int) -> float:
    """Seconds until ``worker(i)``, run in ``conns`` threads at once, ended
    in every one of them."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0


def py_load(port: int, conns: int, seconds: float) -> dict:
    """Thread per connection, http.client keep-alive (when wrk is missing)."""
    import http.client

    lat: list[list[float]] = [[] for _ in range(conns)]
    errors = [0]
    end = time.monotonic() + seconds

    def worker(i: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port)
        while time.monotonic() < end:
            t0 = time.perf_counter()
            c.request("POST", "/v1/messages", NONSTREAM_BODY, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            lat[i].append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                errors[0] += 1
        c.close()

    took = run_workers(worker, conns)
    all_lat = sorted(x for xs in lat for x in xs)
    return {"rps": len(all_lat) / took, "p50": all_lat[len(all_lat) // 2],
            "p99": all_lat[min(len(all_lat) - 1, int(len(all_lat) * 0.99))], "errors": errors[0], "socket_errors": ""}


def _request(body: bytes) -> bytes:
    return (b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


def dechunk(raw: bytes) -> tuple[bytes, bytes]:
    """(headers, body) of a whole HTTP response, chunked or not."""
    head, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" not in head.lower():
        return head, body
    out, i = [], 0
    while i < len(body):
        j = body.find(b"\r\n", i)
        if j < 0:
            break
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            break
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2
    return head, b"".join(out)


def stream_once(port: int) -> tuple[float, float, int, bool]:
    """(ms to first byte, ms total, deltas, message_stop seen) of one stream."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    chunks = []
    t0 = time.perf_counter()
    s.sendall(_request(STREAM_BODY))
    first = None
    while True:
        data = s.recv(262144)
        if first is None:
            first = time.perf_counter()
        if not data:
            break
        chunks.append(data)
    total = time.perf_counter()
    s.close()
    _, body = dechunk(b"".join(chunks))
    return ((first - t0) * 1000, (total - t0) * 1000, body.count(b"event: content_block_delta"),
            b"event: message_stop" in body)


def streams_per_second(port: int, conns: int, seconds: float) -> tuple[float, int]:
    done = [0] * conns
    bad = [0]
    end = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < end:
            _, _, deltas, ok = stream_once(port)
            if deltas != DELTAS or not ok:
                bad[0] += 1
            done[i] += 1

    took = run_workers(worker, conns)
    return sum(done) / took, bad[0]


def hold_streams(port: int, n: int, pid: int, timeout: float) -> dict:
    """Open ``n`` slow streams with one selector (no thread per stream);
    sample the server's RSS until every stream ended; count frames."""
    sel = selectors.DefaultSelector()
    bufs: dict[socket.socket, list[bytes]] = {}
    open_socks: set[socket.socket] = set()
    req = _request(SLOW_BODY)
    peak = 0
    peak_threads = 0
    failed_connects = 0
    t0 = time.monotonic()
    pending = n
    while (pending or open_socks) and time.monotonic() - t0 < timeout:
        for _ in range(min(pending, 50)):  # ramp: 50 connects per loop turn
            try:
                s = socket.create_connection(("127.0.0.1", port), 5)
                s.sendall(req)
                s.setblocking(False)
            except OSError:
                failed_connects += 1
                pending -= 1
                continue
            pending -= 1
            bufs[s] = []
            open_socks.add(s)
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(0.05):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                bufs[s].append(data)
            else:
                sel.unregister(s)
                s.close()
                open_socks.discard(s)
        peak = max(peak, rss_kb(pid))
        peak_threads = max(peak_threads, threads_of(pid))
    for s in list(open_socks):
        sel.unregister(s)
        s.close()
    deltas = stops = keepalives = errors = 0
    for chunks in bufs.values():
        _, body = dechunk(b"".join(chunks))
        deltas += body.count(b"event: content_block_delta")
        stops += body.count(b"event: message_stop")
        keepalives += body.count(b":keepalive")
        errors += body.count(b"event: error")
    expected = n * SLOW_DELTAS
    return {"peak_rss_mb": peak / 1024, "peak_threads": peak_threads, "deltas": deltas, "expected": expected,
            "lost": expected - deltas, "complete": stops, "keepalives": keepalives, "errors": errors,
            "unfinished": len(open_socks), "failed_connects": failed_connects,
            "seconds": time.monotonic() - t0}


# -- servers under test ----------------------------------------------------------


def ocproxy_config(tmp: str, port: int, up: int, slow: int) -> str:
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
    path = os.path.join(tmp, f"ocproxy-{port}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def start_server(kind: str, tmp: str, up: int, slow: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, HOME=tmp, OCPROXY_SHUTDOWN_GRACE_MS="0", PYTHONDONTWRITEBYTECODE="1")
    env.pop("OCPROXY_API_KEY", None)
    log = os.path.join(tmp, f"{kind}.log")
    if kind == "relay":
        cmd = [PY, os.path.join(HERE, "relay.py"), "--port", str(port),
               "--upstream", f"http://127.0.0.1:{up}/v1/chat/completions",
               "--slow-upstream", f"http://127.0.0.1:{slow}/v1/chat/completions"]
    elif kind == "ocproxy":
        cmd = [PY, "-m", "ocproxy", "serve", "--config", ocproxy_config(tmp, port, up, slow)]
    else:
        env["OCPROXY_CONFIG"] = ocproxy_config(tmp, port, up, slow)
        cmd = [os.path.join(os.path.dirname(PY), "gunicorn"), "-k", "gthread", "--threads", "64", "-w", "2",
               "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048", "ocproxy.wsgi:application"]
    p = spawn(cmd, env=env, log=log)
    wait_port(port, p)
    time.sleep(0.5)  # let gunicorn's workers come up
    return p, port


def warm_up(kind: str, p: subprocess.Popen, port: int) -> dict:
    """A few requests of each kind (imports, pools, the token encoder), then
    the idle RSS."""
    for _ in range(20):
        py_load(port, 1, 0.05)
        stream_once(port)
    time.sleep(0.5)
    return {"idle_rss_mb": rss_kb(p.pid) / 1024}


def load_points(servers: dict, results: dict, tmp: str, args, wrk: bool) -> None:
    """Non-streaming req/s at each concurrency, the servers taking turns:
    ``args.rounds`` rounds of one load point each, medians kept. Measured one
    server after the other, a shared 2-core machine's drift between the two
    phases moved the ratio by 10-20 %; interleaved, both see the same drift."""
    for c in (1, 16, 64):
        samples: dict = {kind: [] for kind in servers}
        for _ in range(args.rounds):
            for kind, (p, port) in servers.items():
                cpu0, t0 = cpu_seconds(p.pid), time.monotonic()
                r = wrk_run(port, c, args.seconds, tmp) if wrk else py_load(port, c, args.seconds)
                r["cpu_us"] = (cpu_seconds(p.pid) - cpu0) / max(1.0, r["rps"] * (time.monotonic() - t0)) * 1e6
                samples[kind].append(r)
        for kind, runs in samples.items():
            results[kind][f"c{c}"] = {key: statistics.median(r[key] for r in runs)
                                      for key in ("rps", "p50", "p99", "cpu_us")}
            results[kind][f"c{c}"]["errors"] = sum(r["errors"] for r in runs)


def measure_streams(kind: str, p: subprocess.Popen, port: int, args) -> dict:
    res: dict = {}
    runs = [stream_once(port) for _ in range(args.streams)]
    cpu0 = cpu_seconds(p.pid)
    runs += [stream_once(port) for _ in range(args.streams)]
    res["stream_cpu_ms"] = (cpu_seconds(p.pid) - cpu0) / args.streams * 1000
    res["ttfb_ms"] = statistics.median(r[0] for r in runs)
    res["stream_ms"] = statistics.median(r[1] for r in runs)
    res["stream_ok"] = all(r[2] == DELTAS and r[3] for r in runs)
    res["streams_s"], res["streams_bad"] = streams_per_second(port, 16, args.seconds)
    if kind == "gunicorn":
        res["held"] = {}  # 2 workers x 64 threads cannot hold 200+ streams: each stream holds a host thread
    else:
        time.sleep(1.0)
        res["held"] = {n: hold_streams(port, n, p.pid, SLOW_DELTAS * SLOW_GAP + 30) for n in args.held}
    return res


# -- report ----------------------------------------------------------------------


def fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


def report(results: dict, upstream_desc: str, loadgen: str, args) -> str:
    kinds = [k for k in ("relay", "ocproxy", "gunicorn") if k in results]
    lines = [f"upstream: {upstream_desc}; load: {loadgen}; cpus: {os.cpu_count()}; "
             f"{args.rounds} x {args.seconds:g}s per load point (servers taking turns), {args.streams} streams for medians", ""]
    head = f"{'':34}" + "".join(f"{k:>16}" for k in kinds)
    lines.append(head)

    def row(label, get, spec=".0f"):
        cells = []
        for k in kinds:
            try:
                v = get(results[k])
            except (KeyError, TypeError):
                v = None
            cells.append(f"{fmt(v, spec):>16}" if not isinstance(v, str) else f"{v:>16}")
        lines.append(f"{label:34}" + "".join(cells))

    for c in (1, 16, 64):
        row(f"non-stream c={c} req/s", lambda r, c=c: r[f"c{c}"]["rps"])
        row(f"non-stream c={c} p50 / p99 ms",
            lambda r, c=c: f"{r[f'c{c}']['p50']:.2f} / {r[f'c{c}']['p99']:.2f}")
        row(f"non-stream c={c} server CPU us/req", lambda r, c=c: r[f"c{c}"]["cpu_us"])
        row(f"non-stream c={c} errors", lambda r, c=c: r[f"c{c}"]["errors"], "d")
    row("2,000-delta stream TTFB ms", lambda r: r["ttfb_ms"], ".2f")
    row("2,000-delta stream total ms", lambda r: r["stream_ms"], ".1f")
    row("2,000-delta stream server CPU ms", lambda r: r["stream_cpu_ms"], ".1f")
    row("  every delta + message_stop", lambda r: "yes" if r["stream_ok"] else "NO")
    row("2,000-delta streams/s c=16", lambda r: r["streams_s"], ".1f")
    row("  incomplete streams", lambda r: r["streams_bad"], "d")
    row("RSS idle MB (after warm-up)", lambda r: r["idle_rss_mb"], ".1f")
    for n in args.held:
        row(f"RSS {n} held streams MB (peak)", lambda r, n=n: r["held"][n]["peak_rss_mb"], ".1f")
        row(f"  threads at peak", lambda r, n=n: r["held"][n]["peak_threads"], "d")
        row(f"  deltas lost / expected", lambda r, n=n: f"{r['held'][n]['lost']}/{r['held'][n]['expected']}")
        row(f"  streams completed", lambda r, n=n: r["held"][n]["complete"], "d")
        row(f"  keep-alives received", lambda r, n=n: r["held"][n]["keepalives"], "d")
    if "gunicorn" in kinds:
        lines.append("(gunicorn: 2 workers x 64 threads hold at most 128 streams, so no held-stream rows; "
                     "RSS is master + workers)")

    if "relay" in results and "ocproxy" in results:
        o, b = results["ocproxy"], results["relay"]
        lines += ["", "ocproxy / relay                    ratio   target"]

        def ratio(label, x, y, target, ok):
            verdict = "" if target.startswith("(") else ("MET" if ok(x / y) else "NOT MET")
            lines.append(f"{label:34} {x / y:5.2f}   {target:<22} {verdict}".rstrip())

        for c in (1, 16, 64):
            ratio(f"req/s c={c}", o[f"c{c}"]["rps"], b[f"c{c}"]["rps"], ">= 0.80", lambda v: v >= 0.8)
        ratio("2,000-delta stream time", o["stream_ms"], b["stream_ms"], "<= 1.00 (no slower)", lambda v: v <= 1.0)
        ratio("streams/s c=16", o["streams_s"], b["streams_s"], "(info)", lambda v: True)
        for c in (1, 16):
            ratio(f"server CPU per request c={c}", o[f"c{c}"]["cpu_us"], b[f"c{c}"]["cpu_us"],
                  "(info: load-independent)", lambda v: True)
        lines.append(f"{'ocproxy idle RSS MB':34} {o['idle_rss_mb']:5.1f}   < 60 MB                "
                     f"{'MET' if o['idle_rss_mb'] < 60 else 'NOT MET'}")
        big = max(args.held) if args.held else None
        if big:
            h = o["held"][big]
            ok = h["peak_rss_mb"] < 150 and h["lost"] == 0 and h["complete"] == big
            lines.append(f"{f'ocproxy {big} held streams MB':34} {h['peak_rss_mb']:5.1f}   < 150 MB, none lost     "
                         f"{'MET' if ok else 'NOT MET'} (lost {h['lost']}, completed {h['complete']}/{big})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each load point")
    ap.add_argument("--rounds", type=int, default=3, help="turns each server takes at each load point (medians)")
    ap.add_argument("--streams", type=int, default=15, help="streams timed for the medians")
    ap.add_argument("--held", type=int, nargs="*", default=[200, 1000], help="held-stream counts")
    ap.add_argument("--only", nargs="*", default=["relay", "ocproxy", "gunicorn"])
    ap.add_argument("--python-upstream", action="store_true", help="use bench/fakeup.py even if nginx exists")
    ap.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(args.held or [0]) * 2 + 512
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
        except (ValueError, OSError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        print(f"note: open-file limit {soft} is too low for {max(args.held)} held streams; "
              f"capping held streams at {(soft - 512) // 2}", file=sys.stderr)
        args.held = [min(n, max(0, (soft - 512) // 2)) for n in args.held]

    wrk = bool(shutil.which("wrk")) and not args.python_load
    if not wrk and not args.python_load:
        print("note: wrk not found (make bench installs it as root); using the Python load generator, "
              "whose own CPU use lowers every req/s figure", file=sys.stderr)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    tmp = tempfile.mkdtemp(prefix="ocproxy-bench-")
    results: dict = {}
    try:
        up, desc = start_upstream(tmp, args.python_upstream)
        slow_port = free_port()
        slow = spawn([PY, os.path.join(HERE, "fakeup.py"), "slow", "--port", str(slow_port),
                      "--deltas", str(SLOW_DELTAS), "--gap", str(SLOW_GAP)])
        wait_port(slow_port, slow)
        servers = {}
        for kind in args.only:
            print(f"starting {kind} ...", file=sys.stderr, flush=True)
            p, port = servers[kind] = start_server(kind, tmp, up, slow_port)
            results[kind] = warm_up(kind, p, port)
        print("non-streaming load points, servers taking turns ...", file=sys.stderr, flush=True)
        load_points(servers, results, tmp, args, wrk)
        for kind, (p, port) in servers.items():
            print(f"streams: {kind} ...", file=sys.stderr, flush=True)
            results[kind].update(measure_streams(kind, p, port, args))
        print(report(results, desc, "wrk" if wrk else "python threads + http.client", args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for p in list(_procs):
            stop(p)
        if os.environ.get("BENCH_KEEP_TMP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
