"""A scriptable fake OpenCode upstream on a real local socket.

Each path gets a queue of *scripts*; a request takes the next one (the last
one repeats). A script is a function ``(handler, recorded) -> None`` that
writes raw bytes with whatever timing the test needs, so streams, stalls,
resets and held headers are all real socket behaviour.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    path: str
    headers: dict
    body: bytes
    started: float = field(default_factory=time.monotonic)
    closed_by_peer_at: float | None = None  # set when the proxy dropped the connection

    @property
    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeUpstream = self.server.fake  # type: ignore[attr-defined]
        rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        script = fake._next_script(self.path)
        with fake._lock:
            fake.requests.append(rec)
        try:
            script(self, rec)
        except (BrokenPipeError, ConnectionResetError):
            rec.closed_by_peer_at = time.monotonic()
        self.close_connection = True

    do_GET = do_POST  # model-list endpoints: GET {base}/models

    # -- primitives for scripts --------------------------------------------

    def send_head(self, status=200, content_type="application/json", length=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

    def wait_or_peer_close(self, seconds: float, rec: Recorded) -> bool:
        """Sleep up to ``seconds``; True (and recorded) if the peer closed."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.connection], [], [], min(left, 0.02))
            if r:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if data == b"":
                    rec.closed_by_peer_at = time.monotonic()
                    return True


class FakeUpstream:
    def __init__(self):
        self._lock = threading.Lock()  # guards requests and _scripts
        self.requests: list[Recorded] = []
        self._scripts: dict[str, list] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def url(self, path: str) -> str:
        return self.base + path

    def on(self, path: str, *scripts) -> "FakeUpstream":
        with self._lock:
            self._scripts[path] = list(scripts)
        return self

    def _next_script(self, path: str):
        with self._lock:
            queue = self._scripts.get(path.split("?")[0]) or self._scripts.get(path)
            if not queue:
                return status(404, {"error": "no script for " + path})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def calls(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path.split("?")[0] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


# -- scripts ------------------------------------------------------------------


def json_body(obj, status_code: int = 200):
    data = json.dumps(obj).encode()

    def script(h: _Handler, rec: Recorded):
        h.send_head(status_code, length=len(data))
        h.wfile.write(data)

    return script


def status(code: int, obj=None, raw: bytes | None = None, content_type="application/json"):
    data = raw if raw is not None else json.dumps(obj or {"error": {"message": f"status {code}"}}).encode()

    def script(h: _Handler, rec: Recorded):
        h.send_head(code, content_type=content_type, length=len(data))
        h.wfile.write(data)

    return script


def sse(*parts, delay: float = 0.0, hold_headers: float = 0.0, end_stall: float = 0.0):
    """Stream ``parts`` (bytes, dicts as ``data:`` chunks, "[DONE]", or a
    float meaning "sleep that long, watching for the peer to close")."""

    def script(h: _Handler, rec: Recorded):
        if hold_headers and h.wait_or_peer_close(hold_headers, rec):
            return
        h.send_head(200, content_type="text/event-stream")
        if _write_parts(h, rec, parts, pause=lambda: bool(delay) and h.wait_or_peer_close(delay, rec)):
            return
        if end_stall:
            h.wait_or_peer_close(end_stall, rec)

    return script


def _write_parts(h: _Handler, rec: Recorded, parts, pause=None) -> bool:
    """Write each part (see :func:`_frame`) and flush it; a number sleeps
    that long, watching for the peer to close. ``pause()`` runs after each
    write; True from it stops. True when the peer left or pause stopped."""
    for part in parts:
        if isinstance(part, (int, float)):
            if h.wait_or_peer_close(float(part), rec):
                return True
            continue
        h.wfile.write(_frame(part))
        h.wfile.flush()
        if pause is not None and pause():
            return True
    return False


def _frame(part) -> bytes:
    if isinstance(part, bytes):
        return part
    if part == "[DONE]":
        return b"data: [DONE]\n\n"
    return b"data: " + json.dumps(part).encode() + b"\n\n"


def chat_text_chunks(text_parts, finish="stop", usage=None):
    """OpenAI chat chunks for the given text deltas."""
    out = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    out += [{"choices": [{"index": 0, "delta": {"content": t}}]} for t in text_parts]
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        out.append({"choices": [], "usage": usage})
    out.append("[DONE]")
    return out


def chat_completion(text="", tool_calls=None, reasoning=None, finish="stop", usage=None, model="m"):
    message = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = reasoning
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


# -- scripts for upstreams that misbehave ----------------------------------------


def chat_auto(text: str = "ok", usage=None):
    """Answer like a chat upstream in whichever mode the request asked for:
    SSE chunks when ``"stream": true``, else one completion."""

    def script(h: _Handler, rec: Recorded):
        try:
            streaming = bool(json.loads(rec.body).get("stream"))
        except ValueError:
            streaming = False
        if streaming:
            sse(*chat_text_chunks([text], usage=usage or {"prompt_tokens": 3, "completion_tokens": 1}))(h, rec)
        else:
            json_body(chat_completion(text, usage=usage))(h, rec)

    return script


def reset_after(*parts, delay: float = 0.0):
    """Stream ``parts`` like :func:`sse`, then reset the connection (RST, via
    SO_LINGER 0) instead of closing it."""
    import struct

    def script(h: _Handler, rec: Recorded):
        h.send_head(200, content_type="text/event-stream")
        if _write_parts(h, rec, parts, pause=lambda: time.sleep(delay) if delay else None):
            return
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    return script


def raw_response(data: bytes, hold: float = 0.0):
    """Write ``data`` verbatim (status line and headers included), optionally
    keep the connection open ``hold`` seconds, then close."""

    def script(h: _Handler, rec: Recorded):
        h.wfile.write(data)
        h.wfile.flush()
        if hold:
            h.wait_or_peer_close(hold, rec)

    return script


def endless_body(piece: bytes = b": still here\n\n", every: float = 0.05, content_type="text/event-stream",
                 limit: float = 30.0):
    """Headers, then ``piece`` every ``every`` seconds until the peer leaves
    (or ``limit`` seconds): a body that never ends but is never idle."""

    def script(h: _Handler, rec: Recorded):
        h.send_head(200, content_type=content_type)
        end = time.monotonic() + limit
        while time.monotonic() < end:
            h.wfile.write(piece)
            h.wfile.flush()
            if h.wait_or_peer_close(every, rec):
                return

    return script


def no_headers(hold: float = 30.0):
    """Read the request, then send nothing at all until the peer leaves."""

    def script(h: _Handler, rec: Recorded):
        h.wait_or_peer_close(hold, rec)

    return script


def _peer_closed_within(h: _Handler, seconds: float) -> bool:
    """Like ``_Handler.wait_or_peer_close`` but with poll(), which (unlike
    select()) takes descriptors past 1024: load tests open thousands."""
    poller = select.poll()
    poller.register(h.connection, select.POLLIN | select.POLLHUP | select.POLLERR)
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        if poller.poll(max(1, int(left * 1000))):
            try:
                data = h.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data == b"":
                return True
            time.sleep(min(left, 0.01))  # pipelined bytes: not a close


def sse_many(*parts):
    """:func:`sse` for load tests: floats sleep watching the peer with poll()."""

    def script(h: _Handler, rec: Recorded):
        h.send_head(200, content_type="text/event-stream")
        for part in parts:
            if isinstance(part, (int, float)):
                if _peer_closed_within(h, float(part)):
                    rec.closed_by_peer_at = time.monotonic()
                    return
                continue
            h.wfile.write(_frame(part))
            h.wfile.flush()

    return script


# -- chunked framing and compression (the read path waits in peek) --------------


def chunk(frame) -> bytes:
    """One HTTP/1.1 chunk carrying ``frame`` (bytes, a dict or "[DONE]")."""
    data = _frame(frame)
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunked(*parts, content_type="text/event-stream", content_encoding=None):
    """A ``Transfer-Encoding: chunked`` answer written exactly as given:
    bytes go out raw, so a test can split a chunk's size line, data and CRLF
    across writes (or send a broken size line); a float sleeps, watching for
    the peer to close. Real upstreams behind CDNs stream this way."""

    def script(h: _Handler, rec: Recorded):
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        if content_encoding:
            h.send_header("Content-Encoding", content_encoding)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.flush()
        _write_parts(h, rec, parts)

    return script
