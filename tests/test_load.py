"""Load: many concurrent slow streams through the real werkzeug
server with heartbeats on. Every byte the clients receive is parsed strictly
(zero torn or merged frames, one message per stream, the whole text), RSS
stays flat once the streams are running, and the thread and socket counts
come back to their baseline afterwards.

``test_load_500_streams_60s`` is marked ``load`` (``make test-load``); the
small ``test_load_100_streams_5s`` runs in the normal suite on every CI run.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from tests.conftest import GO_CHAT, RunningProxy, make_config
from tests.fakes import FakeUpstream, sse_many
from tests.resources import Baseline, open_sockets, rss_bytes, thread_names
from tests.sseclient import parse_frames, stream_body

ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}


def slow_stream(chunks: int, interval: float, tag: str):
    """A chat stream of ``chunks`` text deltas, one every ``interval`` s."""
    parts: list = [ROLE]
    for i in range(chunks):
        parts += [{"choices": [{"index": 0, "delta": {"content": f"{tag}{i}\u2028é "}}]}, interval]
    parts += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": chunks}}, "[DONE]"]
    return sse_many(*parts)


def expected_text(chunks: int, tag: str) -> str:
    return "".join(f"{tag}{i}\u2028é " for i in range(chunks))


@dataclass
class Client:
    sock: socket.socket
    data: bytearray = field(default_factory=bytearray)
    done: bool = False


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return bytes(out)
        out += data[pos:pos + size]
        assert data[pos + size:pos + size + 2] == b"\r\n", "corrupted chunk framing"
        pos += size + 2


class ForkedUpstream:
    """A FakeUpstream in a child process serving ``slow_stream`` on GO_CHAT
    (two short warm-up streams first); quacks like FakeUpstream for
    ``make_config``."""

    def __init__(self, chunks: int, interval: float):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=self._serve, args=(child, chunks, interval), daemon=True)
        self._proc.start()
        self.port = parent.recv()
        self._pipe = parent

    @staticmethod
    def _serve(pipe, chunks, interval):
        fake = FakeUpstream()
        fake.httpd.socket.listen(4096)  # room for every stream's upstream connect at once
        warm = slow_stream(2, 0.2, "t")
        fake.on(GO_CHAT, warm, warm, slow_stream(chunks, interval, "t"))
        pipe.send(fake.httpd.server_port)
        pipe.recv()  # until told to stop
        fake.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        try:
            self._pipe.send("stop")
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self._pipe.close()


def run_clients(port: int, n: int, deadline: float, request: bytes) -> list[Client]:
    """Open ``n`` streams (gradually, to be kind to the listen backlog) and
    read them all from one selector loop until each ends."""
    sel = selectors.DefaultSelector()
    clients = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(request)
        s.setblocking(False)
        c = Client(s)
        clients.append(c)
        sel.register(s, selectors.EVENT_READ, c)
        if i % 50 == 49:
            _pump(sel, 0.01)
    open_count = n
    while open_count and time.monotonic() < deadline:
        open_count -= _pump(sel, 0.5)
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
        key.fileobj.close()
    sel.close()
    return clients


def _pump(sel, timeout) -> int:
    finished = 0
    for key, _ in sel.select(timeout):
        c: Client = key.data
        try:
            chunk = c.sock.recv(262144)
        except BlockingIOError:
            continue
        except ConnectionError:
            chunk = b""
        if chunk:
            c.data += chunk
        else:
            c.done = True
            sel.unregister(c.sock)
            c.sock.close()
            finished += 1
    return finished


def check_stream(raw: bytes, text: str, keepalives: bool = True) -> None:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no response head: {raw[:200]!r}"
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    frames = parse_frames(body)  # strict: every frame whole, every data line JSON
    events = [json.loads(f.split(b"\ndata: ", 1)[1]) for f in frames if f != b":keepalive"]
    types = [e["type"] for e in events]
    assert types.count("message_start") == 1 and types[0] == "message_start"
    assert types[-1] == "message_stop" and "error" not in types
    got = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert got == text
    if keepalives:  # they start with the headers: only gaps longer than the heartbeat carry one
        assert frames.count(b":keepalive") >= 1


def run_load(n: int, seconds: float, interval: float = 0.25, heartbeat_ms: int = 100):
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(8192, resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
                                                resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    chunks = max(1, int(seconds / interval))
    # The fake upstream runs in its own (forked) process: on a small CI box
    # one interpreter's GIL cannot serve both sides of 500 streams, and the
    # proxy's own RSS and threads are what is measured here.
    fake = ForkedUpstream(chunks, interval)
    proxy = RunningProxy(make_config(fake, heartbeat_interval_ms=heartbeat_ms, stream_timeout_ms=30_000,
                                     streaming_timeout_ms=int(seconds * 3000) + 60_000))
    try:
        proxy.server.httpd.socket.listen(4096)
        port = proxy.server.port
        payload = json.dumps(stream_body()).encode()
        # These clients read each answer to EOF, so they ask for the close
        # (the server keeps HTTP/1.1 connections open otherwise).
        request = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        # warm-up: lazily started threads (heartbeat) belong to the baseline
        for c in run_clients(port, 2, time.monotonic() + 30, request):
            check_stream(bytes(c.data), expected_text(2, "t"), keepalives=False)  # 0.2 s gaps
        base = Baseline(settle=20).__enter__()
        rss_start = rss_bytes()
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()

        def sample():
            t0 = time.monotonic()
            while not stop.wait(0.5):
                samples.append((time.monotonic() - t0, rss_bytes(), len(thread_names())))

        sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        sampler.start()
        started = time.monotonic()
        clients = run_clients(port, n, started + seconds * 2 + 60, request)
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()

        unfinished = [c for c in clients if not c.done]
        assert not unfinished, f"{len(unfinished)} of {n} streams did not end"
        failures = []
        for i, c in enumerate(clients):
            try:
                check_stream(bytes(c.data), expected_text(chunks, "t"))
            except AssertionError as exc:
                failures.append((i, str(exc)[:300]))
        assert not failures, f"{len(failures)} corrupted stream(s), first: {failures[:3]}"
        assert elapsed < seconds * 2 + 30, f"{n} streams of {seconds}s took {elapsed:.1f}s"

        peak_threads = max(s[2] for s in samples)
        assert peak_threads >= n, "the streams were not concurrent"
        # memory: bounded overall, and flat once every stream is open (no
        # growth per frame: the second half of the run may not grow it)
        peak = max(s[1] for s in samples)
        half = [s[1] for s in samples if s[0] >= seconds / 2]
        growth = peak - rss_start
        assert growth < 2 * 1024 * 1024 * n, f"RSS grew {growth >> 20} MiB for {n} streams"
        if len(half) >= 4:
            assert max(half) - half[0] < 64 * 1024 * 1024, f"RSS kept growing: {[h >> 20 for h in half]} MiB"
        base.check()
        assert proxy.app.heartbeat.open_streams == 0
        return {"elapsed": elapsed, "rss_growth_mib": growth >> 20, "peak_threads": peak_threads,
                "sockets_after": open_sockets()}
    finally:
        proxy.stop()
        fake.close()


def test_load_100_streams_5s():
    stats = run_load(100, 5.0)
    print("load 100x5s:", stats)


@pytest.mark.load
def test_load_500_streams_60s():
    stats = run_load(500, 60.0, interval=0.5, heartbeat_ms=250)
    print("load 500x60s:", stats)
