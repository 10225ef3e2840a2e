"""Fake OpenCode upstreams for the benchmark (no ocproxy imports).

* ``fast``: answers every POST at once from memory -- the completion JSON,
  or the 2,000-delta SSE body when the request says ``Accept:
  text/event-stream``. Used only when nginx is not installed (nginx serves
  the same two files faster).
* ``slow``: one selector thread holding many streams open: per request it
  sends a text delta every ``--gap`` seconds, ``--deltas`` of them, then
  the finish chunk and ``[DONE]``. Used for the held-streams RSS test.

Run: ``python bench/fakeup.py fast|slow --port N``; prints ``ready <port>``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import selectors
import socket
import sys
import threading
import time

MODEL = "kimi-k2.6"


def completion_json() -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 9, "total_tokens": 34},
    }).encode()


def _chunk(delta: dict, finish=None) -> bytes:
    return b"data: " + json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }).encode() + b"\n\n"


def role_chunk() -> bytes:
    return _chunk({"role": "assistant", "content": ""})


def text_chunk(i: int) -> bytes:
    return _chunk({"content": f"word{i} "})


def end_chunks() -> bytes:
    usage = b"data: " + json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL,
        "choices": [], "usage": {"prompt_tokens": 25, "completion_tokens": 2000, "total_tokens": 2025},
    }).encode() + b"\n\n"
    return _chunk({}, "stop") + usage + b"data: [DONE]\n\n"


def stream_sse(n: int = 2000) -> bytes:
    return role_chunk() + b"".join(text_chunk(i) for i in range(n)) + end_chunks()


def _read_request(sock: socket.socket, buf: bytearray) -> tuple[bytes, bytes] | None:
    """(head, body) of one request from ``buf`` (consumed), or None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    total = end + 4 + length
    if len(buf) < total:
        return None
    body = bytes(buf[end + 4:total])
    del buf[:total]
    return head, body


# -- fast ----------------------------------------------------------------------


def serve_fast(listener: socket.socket) -> None:
    json_body, sse_body = completion_json(), stream_sse()
    json_resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                 % len(json_body)) + json_body
    sse_resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n"
                % len(sse_body)) + sse_body

    def conn(sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        try:
            while True:
                req = _read_request(sock, buf)
                if req is None:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                    continue
                head = req[0].lower()
                sock.sendall(sse_resp if b"text/event-stream" in head else json_resp)
        except OSError:
            pass
        finally:
            sock.close()

    # A thread per connection, ending with it. Their owner is the process:
    # the benchmark kills its process group when done (servers.stop), and
    # nothing here outlives that.
    while True:
        s, _ = listener.accept()
        threading.Thread(target=conn, args=(s,), daemon=True).start()


# -- slow ----------------------------------------------------------------------


def serve_slow(listener: socket.socket, deltas: int, gap: float) -> None:
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    buffers: dict[socket.socket, bytearray] = {}
    timers: list[tuple[float, int, socket.socket, int]] = []  # (when, seq, sock, next delta index)
    seq = 0
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

    def drop(sock: socket.socket) -> None:
        if sock in buffers:
            del buffers[sock]
            try:
                sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    def send(sock: socket.socket, data: bytes) -> bool:
        try:
            sock.sendall(data)  # tiny writes never fill the buffer
            return True
        except OSError:
            drop(sock)
            return False

    while True:
        timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else None
        for key, _ in sel.select(timeout):
            if key.fileobj is listener:
                while True:
                    try:
                        s, _ = listener.accept()
                    except BlockingIOError:
                        break
                    s.setblocking(True)
                    s.settimeout(5)
                    buffers[s] = bytearray()
                    sel.register(s, selectors.EVENT_READ, None)
                continue
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                drop(sock)
                continue
            buf = buffers.get(sock)
            if buf is None:
                continue
            buf += data
            if _read_request(sock, buf) is not None:
                if send(sock, head + role_chunk() + text_chunk(0)):
                    seq += 1
                    heapq.heappush(timers, (time.monotonic() + gap, seq, sock, 1))
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, sock, i = heapq.heappop(timers)
            if sock not in buffers:
                continue
            if i < deltas:
                if send(sock, text_chunk(i)):
                    seq += 1
                    heapq.heappush(timers, (now + gap, seq, sock, i + 1))
            else:
                if send(sock, end_chunks()):
                    drop(sock)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fast", "slow"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--deltas", type=int, default=4)
    ap.add_argument("--gap", type=float, default=2.5)
    args = ap.parse_args()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(4096)
    print("ready", listener.getsockname()[1], flush=True)
    if args.mode == "fast":
        serve_fast(listener)
    else:
        serve_slow(listener, args.deltas, args.gap)
    return 0


if __name__ == "__main__":
    sys.exit(main())
