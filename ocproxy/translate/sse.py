"""SSE framing and the Anthropic event sequence shared by every translated stream.

Pure: bytes and dicts in, complete frames (``bytes``) out. Each returned frame
is one whole ``event: …\\ndata: …\\n\\n`` unit, so the writer can treat it as
indivisible (streaming.md ST-10, ST-60).

``MessageEmitter`` owns the block-index bookkeeping that the chat, Responses
and Gemini translators all need (ST-30…ST-35, ST-42, ST-46), so none of them
re-implements it.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from typing import Protocol

from ocproxy.errors import UpstreamDataError

KEEPALIVE = b":keepalive\n\n"
THINKING_SIGNATURE = "proxy-thinking-placeholder"

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _utf8(json_text: str) -> bytes:
    """UTF-8 bytes of serialised JSON. JSON lets an upstream send a lone
    surrogate (``"\\ud83d"``); Python decodes it to a str that strict UTF-8
    cannot encode, which crashed the translator. Inside JSON text such a code
    point can only sit in a string literal, where ``backslashreplace`` writes
    exactly the JSON escape ``\\udXXX`` again: valid JSON, same meaning."""
    return json_text.encode("utf-8", "backslashreplace")


#: Public name for the surrogate-safe encoder (request/response bodies too).
utf8_json = _utf8


def dumps(obj) -> str:
    """Compact, UTF-8-preserving JSON on one line (never raw newlines)."""
    return _dumps(obj)


def encode_event(event: dict) -> bytes:
    return _utf8(f"event: {event['type']}\ndata: {_dumps(event)}\n\n")


def error_frame(message: str, kind: str = "api_error") -> bytes:
    return encode_event({"type": "error", "error": {"type": kind, "message": message}})


# Unique ids: a per-process random prefix plus a counter. The counter is an
# itertools.count, whose next() is atomic under the GIL; _id_lock guards it
# anyway so the guarantee does not rest on an implementation detail.
_id_prefix = os.urandom(6).hex()
_id_counter = itertools.count(1)
_id_lock = threading.Lock()


def unique_suffix() -> str:
    with _id_lock:
        n = next(_id_counter)
    return f"{_id_prefix}{n:06x}"


def new_message_id() -> str:
    return "msg_" + unique_suffix()


def new_tool_id() -> str:
    return "toolu_" + unique_suffix()


class LineBuffer:
    """Splits a byte stream into lines as soon as each ``\\n`` arrives (ST-40).

    Lines are returned stripped of surrounding whitespace (``\\r`` included).
    ``flush`` returns the unterminated last line at EOF. An unfinished line
    is kept as a list of pieces and joined once, when its end arrives, so a
    10 MB line read in 64 kB pieces costs linear time, not quadratic.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data:
            if data:
                self._pending.append(data)
            return []
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending = []
        parts = data.split(b"\n")
        rest = parts.pop()
        if rest:
            self._pending.append(rest)
        return [p.strip() for p in parts]

    def flush(self) -> list[bytes]:
        rest = b"".join(self._pending).strip()
        self._pending = []
        return [rest] if rest else []


def data_payload(line: bytes) -> bytes | None:
    """The payload of a ``data:`` line (one optional leading space removed),
    or ``None`` for every other line and for an empty payload (ST-41)."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:]
    if payload[:1] == b" ":
        payload = payload[1:]
    return payload or None


class StreamTranslator(Protocol):
    """What the streaming shell drives for each attempt.

    ``feed`` gets raw upstream bytes as they arrive and returns complete
    frames to write, in order. ``close`` is called at upstream EOF (or once
    ``done`` turned true) and returns the closing frames; it raises
    ``UpstreamDataError`` when the attempt produced nothing usable (ST-46).
    Both raise ``AttemptFailure`` subclasses for failures inside the data.
    """

    #: True for raw Anthropic passthrough: the heartbeat must stay silent
    #: between the upstream's own events (ST-51, ST-72).
    pauses_heartbeat: bool
    #: True once the upstream said it is finished ([DONE], response.completed…).
    done: bool

    def feed(self, data: bytes) -> list[bytes]: ...

    def close(self) -> list[bytes]: ...


class LineTranslator:
    """The reading loop shared by the line-oriented translators (Responses,
    Gemini): lines as they arrive, ``_line`` for each, ``_end_of_stream`` at
    EOF unless the upstream already said it was done.

    A failure found after frames of the same read is raised by the *next*
    call, so what the client sees does not depend on how the upstream's
    bytes were split into reads.
    """

    pauses_heartbeat = False

    def __init__(self, model_id: str):
        self.emitter = MessageEmitter(model_id)
        self.done = False
        self._lines = LineBuffer()
        self._failure: UpstreamDataError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        out: list[bytes] = []
        try:
            for line in self._lines.feed(data):
                if self.done:
                    break
                out.extend(self._line(line))
        except UpstreamDataError as exc:
            if not out:
                raise
            self._failure = exc
        return out

    def close(self) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        if self.done:
            return []
        out: list[bytes] = []
        for line in self._lines.flush():
            out.extend(self._line(line))
        if not self.done:
            out.extend(self._end_of_stream())
        return out

    def _line(self, line: bytes) -> list[bytes]:
        raise NotImplementedError

    def _end_of_stream(self) -> list[bytes]:
        raise NotImplementedError


def _text_delta_template(index: int) -> tuple[bytes, bytes]:
    head = (
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
        '"delta":{"type":"text_delta","text":' % index
    ).encode()
    return head, b"}}\n\n"


class MessageEmitter:
    """Builds one Anthropic message event sequence.

    Rules kept here: ``message_start`` is written lazily before the first
    other frame and at most once (ST-42, ST-35); block indices run 0, 1, 2…
    without gaps or reuse (ST-30); at most one text-or-thinking block is open
    and it is closed before a different kind opens (ST-32); tool blocks stay
    open until ``close_all`` (ST-33); closing is in ascending index order and a
    thinking block gets its signature delta first (ST-34).
    """

    def __init__(self, model: str, message_id: str | None = None):
        self.model = model
        self.message_id = message_id or new_message_id()
        self.started = False
        self.tool_emitted = False
        self._next_index = 0
        self._open: dict[int, str] = {}  # index -> "text" | "thinking" | "tool_use"
        self._flow: tuple[int, str] | None = None  # the open text/thinking block
        self._tools: dict[object, int] = {}  # upstream tool key -> block index
        self._text_head = b""
        self._text_tail = b""

    # -- building blocks -------------------------------------------------

    def _start_message(self, out: list[bytes]) -> None:
        if not self.started:
            self.started = True
            out.append(
                encode_event(
                    {
                        "type": "message_start",
                        "message": {
                            "id": self.message_id,
                            "type": "message",
                            "role": "assistant",
                            "content": [],
                            "model": self.model,
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 0, "output_tokens": 0},
                        },
                    }
                )
            )

    def _open_block(self, kind: str, block: dict, out: list[bytes]) -> int:
        self._start_message(out)
        index = self._next_index
        self._next_index += 1
        self._open[index] = kind
        out.append(encode_event({"type": "content_block_start", "index": index, "content_block": block}))
        return index

    def _close(self, index: int, out: list[bytes]) -> None:
        kind = self._open.pop(index)
        if kind == "thinking":
            out.append(
                encode_event(
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "signature_delta", "signature": THINKING_SIGNATURE},
                    }
                )
            )
        out.append(encode_event({"type": "content_block_stop", "index": index}))
        if self._flow and self._flow[0] == index:
            self._flow = None

    def _ensure_flow(self, kind: str, out: list[bytes]) -> int:
        if self._flow and self._flow[1] == kind:
            return self._flow[0]
        if self._flow:
            self._close(self._flow[0], out)
        block = {"type": "text", "text": ""} if kind == "text" else {
            "type": "thinking",
            "thinking": "",
            "signature": THINKING_SIGNATURE,
        }
        index = self._open_block(kind, block, out)
        self._flow = (index, kind)
        if kind == "text":
            self._text_head, self._text_tail = _text_delta_template(index)
        return index

    # -- public API ------------------------------------------------------

    def text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if text:
            self._ensure_flow("text", out)
            out.append(self._text_head + _utf8(_dumps(text)) + self._text_tail)
        return out

    def text_json(self, json_string: bytes) -> list[bytes]:
        """Fast path: ``json_string`` is an already-encoded, non-empty JSON
        string literal (quotes included) known to be equivalent to the text."""
        out: list[bytes] = []
        self._ensure_flow("text", out)
        out.append(self._text_head + json_string + self._text_tail)
        return out

    def thinking(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if text:
            index = self._ensure_flow("thinking", out)
            out.append(
                encode_event(
                    {"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": text}}
                )
            )
        return out

    def tool_is_open(self, key: object) -> bool:
        return key in self._tools

    def tool_start(self, key: object, tool_id: str | None, name: str) -> list[bytes]:
        """Open a tool_use block for upstream call ``key`` (closing an open
        text/thinking block first)."""
        out: list[bytes] = []
        if self._flow:
            self._close(self._flow[0], out)
        block = {"type": "tool_use", "id": tool_id or new_tool_id(), "name": name, "input": {}}
        self._tools[key] = self._open_block("tool_use", block, out)
        self.tool_emitted = True
        return out

    def tool_args(self, key: object, partial_json: str) -> list[bytes]:
        if not partial_json or key not in self._tools:
            return []
        return [
            encode_event(
                {
                    "type": "content_block_delta",
                    "index": self._tools[key],
                    "delta": {"type": "input_json_delta", "partial_json": partial_json},
                }
            )
        ]

    def close_all(self) -> list[bytes]:
        """Close every open block in ascending index order; forget tool keys."""
        out: list[bytes] = []
        for index in sorted(self._open):
            self._close(index, out)
        self._tools.clear()
        return out

    def finish(self, stop_reason: str, usage: dict | None) -> list[bytes]:
        """The closing frames: message_start if still owed, every open block
        closed, one message_delta, message_stop (ST-46, ST-47)."""
        out: list[bytes] = []
        self._start_message(out)
        out.extend(self.close_all())
        if self.tool_emitted and stop_reason == "end_turn":
            stop_reason = "tool_use"
        out.append(
            encode_event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": usage or {"input_tokens": 0, "output_tokens": 0},
                }
            )
        )
        out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        return out
