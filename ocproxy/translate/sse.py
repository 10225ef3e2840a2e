"""SSE on the wire: one decoder for every upstream stream, and the framing of
what the proxy writes.

Pure: bytes in, lines or whole events (``bytes``) out. Every frame the proxy
writes is one whole ``event: …\\ndata: …\\n\\n`` unit, so the writer can keep
it indivisible and a keep-alive never lands inside one.
"""

from __future__ import annotations

import json
from typing import Protocol

from ocproxy.errors import UpstreamDataError

KEEPALIVE = b":keepalive\n\n"
THINKING_SIGNATURE = "proxy-thinking-placeholder"

#: The longest line (or, for passthrough, event) an upstream may send. Big
#: enough for a whole file as tool arguments on one line; without a limit an
#: upstream that never ends a line would grow the buffer without bound.
MAX_BYTES = 32 * 1024 * 1024

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def utf8_json(json_text: str) -> bytes:
    """UTF-8 bytes of serialised JSON. JSON lets an upstream send a lone
    surrogate (``"\\ud83d"``); Python decodes it to a str that strict UTF-8
    cannot encode. Inside JSON text such a code point can only sit in a
    string literal, where ``backslashreplace`` writes exactly the JSON escape
    ``\\udXXX`` again: valid JSON, same meaning."""
    return json_text.encode("utf-8", "backslashreplace")


def dumps(obj) -> str:
    """Compact, UTF-8-preserving JSON on one line (never raw newlines)."""
    return _dumps(obj)


def encode_event(event: dict) -> bytes:
    return utf8_json(f"event: {event['type']}\ndata: {_dumps(event)}\n\n")


def error_frame(message: str, kind: str = "api_error") -> bytes:
    return encode_event({"type": "error", "error": {"type": kind, "message": message}})


def data_payload(line: bytes) -> bytes | None:
    """The payload of a ``data:`` line (one optional leading space removed),
    or ``None`` for every other line and for an empty payload."""
    if not line.startswith(b"data:"):
        return None
    payload = line[6:] if line[5:6] == b" " else line[5:]
    return payload or None


def _opens_object(line: bytes) -> bool:
    """A ``data:`` line whose payload starts a JSON object and does not end it."""
    return line[-1:] != b"}" and line.startswith(b"data:") and line[5:].lstrip()[:1] == b"{"


def _too_long() -> UpstreamDataError:
    return UpstreamDataError("SSE line longer than 32 MiB")


class SSEDecoder:
    """Splits an upstream byte stream at CRLF, LF or lone CR line ends.

    By default ``feed`` returns each complete line as soon as its line end
    arrives, stripped of surrounding whitespace, blank lines left out: the
    translators act on every ``data:`` line at once instead of waiting for
    the blank line that ends the event. The exception is an event whose
    JSON is spread over several ``data:`` lines: a ``data:`` line that opens
    an object without closing it is held, and the event's data lines come
    out as one ``data:`` line, joined with ``\n`` as SSE joins them, once
    a line closes the object or the blank line ends the event. With ``whole_events`` it returns each
    event's own bytes (terminator included) once a blank line ends it, for
    passthrough. A CR at the very end of the input is held back until the
    next byte shows whether it is half of a CRLF. Unfinished input is kept as
    pieces and joined once, so a huge line read in small pieces costs linear
    time; past ``MAX_BYTES`` it fails the attempt.
    """

    __slots__ = ("_event", "_event_len", "_held", "_pending", "_pending_len", "_whole_events")

    def __init__(self, *, whole_events: bool = False) -> None:
        self._whole_events = whole_events
        self._pending: list[bytes] = []  # the unterminated last line
        self._pending_len = 0
        self._event: list[bytes] = []  # whole_events: raw lines of the open event
        self._event_len = 0
        self._held: list[bytes] = []  # data payloads of an event whose JSON is still open

    def feed(self, data: bytes) -> list:
        """Complete lines (or events), then an ``UpstreamDataError`` as the
        last item once the cap is passed: what came before it still counts."""
        held_cr = self._pending and self._pending[-1][-1:] == b"\r"
        if b"\n" not in data and b"\r" not in data and not held_cr:
            return self._hold(data, []) if data else []
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending = []
            self._pending_len = 0
        lines = data.splitlines(True)
        rest = lines.pop() if lines[-1][-1:] != b"\n" else b""  # unterminated, or a CR a LF may follow
        if self._whole_events:
            out = self._events(lines)
        elif len(data) <= MAX_BYTES:
            out = [s for s in map(bytes.strip, lines) if s]
            if self._held or any(map(_opens_object, out)):
                out = self._join_data(lines)
        else:
            out = self._long_lines(lines)
        return self._hold(rest, out) if rest else out

    def close(self) -> list[bytes]:
        """At EOF: the unterminated rest (passthrough: as it is)."""
        rest = b"".join(self._event + self._pending)
        self._event, self._pending = [], []
        if self._whole_events:
            return [rest] if rest else []
        out = self._join_data([rest.strip(), b""]) if self._held else [rest.strip()]
        return [line for line in out if line]

    def _join_data(self, lines: list[bytes]) -> list:
        """Lines as ``feed`` returns them, the data lines of an event whose
        JSON object spans several of them joined into one."""
        out: list = []
        held = self._held
        for line in map(bytes.strip, lines):
            payload = data_payload(line) if line.startswith(b"data:") else None
            if held and (payload is not None or not line):
                if payload is not None:
                    held.append(payload)
                if not line or payload.endswith(b"}"):
                    out.append(b"data: " + b"\n".join(held))
                    held.clear()
                elif sum(map(len, held)) > MAX_BYTES:
                    out.append(_too_long())
                    break
            elif payload is not None and payload[:1] == b"{" and payload[-1:] != b"}":
                held.append(payload)
            elif line:
                out.append(line)
        return out

    def _hold(self, piece: bytes, out: list) -> list:
        self._pending.append(piece)
        self._pending_len += len(piece)
        if self._pending_len + self._event_len > MAX_BYTES and not (out and isinstance(out[-1], Exception)):
            out.append(_too_long())
        return out

    def _long_lines(self, lines: list[bytes]) -> list:
        out: list = []
        for line in lines:
            if len(line) > MAX_BYTES:
                out.append(_too_long())
                break
            line = line.strip()
            if line:
                out.append(line)
        return out

    def _events(self, lines: list[bytes]) -> list:
        """A blank line ends a non-empty event; a blank line with nothing
        before it stays with the next event, as the upstream sent it."""
        out: list = []
        event = self._event
        for line in lines:
            if event and line in (b"\n", b"\r\n", b"\r"):
                event.append(line)
                out.append(b"".join(event))
                event.clear()
                self._event_len = 0
            else:
                event.append(line)
                self._event_len += len(line)
                if self._event_len > MAX_BYTES:
                    out.append(_too_long())
                    break
        return out


class StreamTranslator(Protocol):
    """What the streaming shell drives for each attempt.

    ``feed`` gets raw upstream bytes as they arrive and returns complete
    frames to write, in order. ``close`` is called at upstream EOF (or once
    ``done`` turned true) and returns the closing frames; it raises
    ``UpstreamDataError`` when the attempt produced nothing usable. Both
    raise ``AttemptFailure`` subclasses for failures inside the data.
    """

    #: True once the upstream said it is finished ([DONE], response.completed…).
    done: bool

    def feed(self, data: bytes) -> list[bytes]: ...

    def close(self) -> list[bytes]: ...


class DecodingTranslator:
    """The reading loop every stream translator shares: decoded lines (or
    passthrough events) go to ``_item`` one by one; ``_end`` gives the
    closing frames at EOF. Nothing after ``done`` is read.

    A failure found after frames of the same read is raised by the *next*
    call, so what the client sees does not depend on how the upstream's
    bytes were split into reads.
    """

    whole_events = False

    def __init__(self) -> None:
        self.done = False
        self._decoder = SSEDecoder(whole_events=self.whole_events)
        self._failure: UpstreamDataError | None = None
        self._closed = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        out: list[bytes] = []
        if self.done or self._closed:
            return out
        try:
            for item in self._decoder.feed(data):
                if isinstance(item, UpstreamDataError):
                    raise item
                self._item(item, out)
                if self.done:
                    break
        except UpstreamDataError as exc:
            if not out:
                raise
            self._failure = exc
        return out

    def close(self) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            return []
        self._closed = True
        out: list[bytes] = []
        if not self.done:
            for item in self._decoder.close():
                self._item(item, out)
        self._end(out)
        return out

    def _item(self, item: bytes, out: list[bytes]) -> None:
        raise NotImplementedError

    def _end(self, out: list[bytes]) -> None:
        raise NotImplementedError
