"""A raw SSE client for tests: real socket, bytes as they arrive, and a
strict frame checker (every frame whole, every data line valid JSON)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class StreamCapture:
    status: int
    headers: dict
    body: bytes = b""
    arrivals: list[tuple[float, bytes]] = field(default_factory=list)  # (seconds since request, chunk)
    elapsed: float = 0.0

    @property
    def frames(self) -> list[bytes]:
        return parse_frames(self.body)

    @property
    def events(self) -> list[dict]:
        return [json.loads(f.split(b"\ndata: ", 1)[1]) for f in self.frames if f != b":keepalive"]

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def first_arrival_of(self, needle: bytes) -> float | None:
        seen = b""
        for t, chunk in self.arrivals:
            seen += chunk
            if needle in seen:
                return t
        return None


def parse_frames(body: bytes) -> list[bytes]:
    """Split an SSE body into frames and check each one is whole."""
    assert body.endswith(b"\n\n") or body == b"", f"body ends mid-frame: {body[-80:]!r}"
    frames = [f for f in body.split(b"\n\n") if f]
    for frame in frames:
        if frame == b":keepalive":
            continue
        lines = frame.split(b"\n")
        assert len(lines) == 2, f"torn or merged frame: {frame[:200]!r}"
        assert lines[0].startswith(b"event: "), frame[:200]
        assert lines[1].startswith(b"data: "), frame[:200]
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:].decode(), frame[:200]
    return frames


def frame_events(frames: list[bytes]) -> list[dict]:
    """The events of a translator's frames, each checked to be one whole
    ``event: <type>`` / ``data: <json>`` frame whose type matches."""
    events = []
    for frame in frames:
        head, data = frame.decode().rstrip("\n").split("\n")
        event = json.loads(data[len("data: "):])
        assert head == f"event: {event['type']}"
        events.append(event)
    return events


def translate(translator, body: bytes, chunk: int | None = None) -> list[dict]:
    """Feed ``body`` to a stream translator (whole, or in ``chunk``-byte
    reads), close it, and return the events it produced."""
    pieces = [body] if chunk is None else [body[i:i + chunk] for i in range(0, len(body), chunk)]
    frames = []
    for piece in pieces:
        frames += translator.feed(piece)
    frames += translator.close()
    return frame_events(frames)


def post_stream(base_url: str, body: dict, *, headers: dict | None = None, close_after: float | None = None,
                timeout: float = 30.0) -> StreamCapture:
    """POST ``body`` and read the streamed answer; with ``close_after``,
    drop the connection that many seconds after the request was sent."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    payload = json.dumps(body).encode()
    start = time.monotonic()
    conn.request("POST", "/v1/messages", body=payload,
                 headers={"Content-Type": "application/json", **(headers or {})})
    if close_after is not None:
        # A stream's headers wait for its first payload: leave before them too.
        conn.sock.settimeout(close_after)
        try:
            resp = conn.getresponse()
        except TimeoutError:
            conn.sock.close()
            conn.close()
            return StreamCapture(0, {}, body=b"", elapsed=time.monotonic() - start)
        conn.sock.settimeout(timeout)
    else:
        resp = conn.getresponse()
    cap = StreamCapture(resp.status, {k.lower(): v for k, v in resp.getheaders()})
    chunks = []
    try:
        while True:
            if close_after is not None and time.monotonic() - start >= close_after:
                break
            data = resp.read1(65536)
            if not data:
                break
            cap.arrivals.append((time.monotonic() - start, data))
            chunks.append(data)
    finally:
        if close_after is not None:
            conn.sock and conn.sock.close()
        conn.close()
    cap.body = b"".join(chunks)
    cap.elapsed = time.monotonic() - start
    return cap


def stream_body(**extra) -> dict:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    body.update(extra)
    return body


def tool_input(events: list[dict], index: int) -> dict:
    """The arguments streamed into tool block ``index``, parsed."""
    parts = [
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == index and e["delta"]["type"] == "input_json_delta"
    ]
    return json.loads("".join(parts))


def accumulate(events: list[dict]) -> dict:
    """The message a client builds from the events: its content blocks (text,
    thinking with its signature, tool inputs parsed), stop reason and usage."""
    blocks: dict[int, dict] = {}
    partial: dict[int, str] = {}
    message = {"content": [], "stop_reason": None, "usage": None}
    for e in events:
        kind = e["type"]
        if kind == "content_block_start":
            blocks[e["index"]] = dict(e["content_block"])
        elif kind == "content_block_delta":
            d, block = e["delta"], blocks[e["index"]]
            if d["type"] == "text_delta":
                block["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                block["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                block["signature"] = d["signature"]
            elif d["type"] == "input_json_delta":
                partial[e["index"]] = partial.get(e["index"], "") + d["partial_json"]
        elif kind == "content_block_stop" and partial.get(e["index"]):
            blocks[e["index"]]["input"] = json.loads(partial[e["index"]])
        elif kind == "message_delta":
            message["stop_reason"] = e["delta"]["stop_reason"]
            message["usage"] = e["usage"]
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def check_grammar(events: list[dict]) -> None:
    """One message_start first, indices from 0 without gaps, every block
    stopped once before the single message_delta, message_stop last."""
    types = [e["type"] for e in events]
    assert types[0] == "message_start" and types.count("message_start") == 1
    assert types[-2:] == ["message_delta", "message_stop"] and types.count("message_delta") == 1
    starts = [e["index"] for e in events if e["type"] == "content_block_start"]
    stops = [e["index"] for e in events if e["type"] == "content_block_stop"]
    assert starts == list(range(len(starts)))
    assert sorted(stops) == starts
    delta_at = types.index("message_delta")
    assert all(i < delta_at for i, t in enumerate(types) if t == "content_block_stop")
