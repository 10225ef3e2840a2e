"""The benchmark's clients: wrk or a Python load generator for non-streaming
requests, a one-stream reader, streams/s, and one selector holding many slow
streams open.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import subprocess
import threading
import time

from servers import DELTAS, rss_kb, threads_of

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
SLOW_DELTAS, SLOW_GAP = 4, 2.5  # held streams: 4 deltas 2.5 s apart, heartbeat every 1 s


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
