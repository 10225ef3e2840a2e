"""OpenAI Chat Completions SSE in, Anthropic SSE frames out (streaming.md §5).

A pure state machine: the streaming shell hands it upstream bytes as they
arrive and writes whatever frames come back; nothing here reads a socket,
starts a thread or looks at a clock, so every rule of ST-40…ST-47 is tested
with plain byte strings. Block bookkeeping (lazy ``message_start``, indices,
closing order) is ``MessageEmitter``'s job; this module decides *what* the
upstream chunks mean.

Failures inside the data raise ``UpstreamDataError``. When a failing line
follows lines that already produced frames in the same ``feed`` call, those
frames are returned first and the failure is raised by the next call: what
the client sees must not depend on how the upstream's bytes happened to be
split into reads.
"""

from __future__ import annotations

import json
import re

from ..errors import UpstreamDataError
from .chat_response import STOP_REASONS
from .sse import MessageEmitter
from .usage import anthropic_usage

#: ST-40 allows no limit below 32 MiB; a longer line is refused so a broken
#: upstream that never sends ``\n`` cannot grow the buffer without bound.
MAX_LINE_BYTES = 32 * 1024 * 1024

#: ST-41 item 5: more than this many undecodable lines in a row fail the attempt.
MAX_DECODE_FAILURES = 3

_loads = json.loads
_scanstring = json.decoder.scanstring

# Fast path (ST-45) helpers.
_CONTENT_KEY = b'"content":'
# A byte that makes a raw string body differ from its own decoded-and-
# re-encoded form: a backslash (escape) or a raw control byte (invalid JSON).
_NOT_VERBATIM = re.compile(rb"[\x00-\x1f\\]")
# The rest of a JSON string body with escapes, up to and including its
# closing quote (unrolled so it stays linear on long values).
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# Two different probe values put in place of the text when a chunk skeleton
# is verified (see ``_learn``); their JSON literals and decoded values.
_PROBE_A, _PROBE_A_VALUE = b"\\u0000\\u0001", "\x00\x01"
_PROBE_B, _PROBE_B_VALUE = b"\\u0001\\u0000", "\x01\x00"
_MAX_SKELETONS = 8


def _plain_text_skeleton(chunk: object, probe: str) -> bool:
    """True when the full chunk handler would do nothing with ``chunk`` but
    emit ``choices[0].delta.content`` (== ``probe``) as text. Deliberately
    stricter than the handler: a false "no" only costs speed."""
    if type(chunk) is not dict or chunk.get("usage") is not None:
        return False
    choices = chunk.get("choices")
    if type(choices) is not list or not choices:
        return False
    choice = choices[0]
    if type(choice) is not dict:
        return False
    delta = choice.get("delta")
    if type(delta) is not dict or delta.get("content") != probe:
        return False
    return (
        delta.get("reasoning_content") in (None, "")
        and delta.get("tool_calls") in (None, [])
        and choice.get("finish_reason") in (None, "")
    )


def _probe_content(chunk: object) -> object:
    try:
        return chunk["choices"][0]["delta"]["content"]  # type: ignore[index]
    except (TypeError, LookupError):
        return None


def _tool_key(entry: dict) -> object:
    """ST-43.5: calls are told apart by ``index`` (0 when absent); a value
    that cannot be a dict key is treated as absent rather than crashing."""
    key = entry.get("index")
    if key is None or not isinstance(key, (int, float, str)):
        return 0
    return key


def _error_message(error: object) -> str:
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message[:500]
        return json.dumps(error, ensure_ascii=False)[:500]
    return str(error)[:500]


class ChatStreamTranslator:
    """Translates one attempt's Chat Completions stream (implements
    ``sse.StreamTranslator``).

    ``fast_path=False`` turns off the ST-45 shortcut so tests can prove that
    it changes nothing but speed.
    """

    pauses_heartbeat = False

    def __init__(self, model_id: str, message_id: str | None = None, *, fast_path: bool = True):
        self._emitter = MessageEmitter(model_id, message_id)
        self._fast_path = fast_path
        self.done = False
        self._closed = False
        self._failure: UpstreamDataError | None = None
        self._pending: list[bytes] = []  # pieces of the unterminated last line
        self._pending_len = 0
        self._failures = 0  # consecutive decode failures (ST-41.5)
        self._handled = False  # any chunk handled at all (ST-46 "empty stream")
        self._usage: dict | None = None
        self._stop: str | None = None
        # Verified chunk skeletons for the fast path: (len(prefix), prefix, suffix).
        self._skeletons: list[tuple[int, bytes, bytes]] = []
        self._fast_hits = 0
        self._fast_learned = 0  # verification attempts, bounded by hits

    # -- StreamTranslator ------------------------------------------------

    def feed(self, data: bytes) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        if self.done or self._closed or not data:
            return []
        out: list[bytes] = []
        try:
            self._feed(data, out)
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
        if not self.done and self._pending:
            # ST-40: a final line without "\n" is handled too.
            line = b"".join(self._pending)
            self._pending = []
            self._line(line.strip(), out)
        if not self._handled:
            raise UpstreamDataError("empty stream")
        # ST-46: EOF and [DONE] end alike; emitter.finish turns end_turn into
        # tool_use when a tool_use block was emitted.
        out += self._emitter.finish(self._stop or "end_turn", anthropic_usage(self._usage))
        return out

    # -- lines (ST-40, ST-41) -------------------------------------------

    def _feed(self, data: bytes, out: list[bytes]) -> None:
        lines = data.split(b"\n")
        last = lines.pop()
        if not lines:
            # No line end yet: keep the piece; joining happens once, when the
            # "\n" arrives, so a huge line costs linear time however it is split.
            self._pending.append(last)
            self._pending_len += len(last)
            if self._pending_len > MAX_LINE_BYTES:
                raise UpstreamDataError("SSE line longer than 32 MiB")
            return
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending = []
        self._pending_len = 0
        for line in lines:
            if len(line) > MAX_LINE_BYTES:
                raise UpstreamDataError("SSE line longer than 32 MiB")
            line = line.strip()
            if line:  # the blank line after every event: skip the call
                self._line(line, out)
                if self.done:
                    return  # ST-41.4: nothing after [DONE] is read
        if last:
            self._pending.append(last)
            self._pending_len = len(last)

    def _line(self, line: bytes, out: list[bytes]) -> None:
        # Empty lines, comments, event:, id:, retry: are ignored (ST-41.1-2).
        if not line.startswith(b"data:"):
            return
        payload = line[6:] if len(line) > 5 and line[5] == 32 else line[5:]
        if not payload:
            return
        if payload == b"[DONE]":
            self.done = True
            return
        if self._fast_path:
            frames = self._fast(payload)
            if frames is not None:
                self._failures = 0
                self._handled = True
                self._fast_hits += 1
                out += frames
                return
        try:
            chunk = _loads(payload.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            chunk = None
        if type(chunk) is not dict:
            self._failures += 1
            if self._failures > MAX_DECODE_FAILURES:
                raise UpstreamDataError("too many consecutive SSE decode failures")
            return
        self._failures = 0
        self._chunk(chunk, out)
        self._handled = True

    # -- one chunk (ST-41.6, ST-43) --------------------------------------

    def _chunk(self, chunk: dict, out: list[bytes]) -> None:
        choices = chunk.get("choices")
        if type(choices) is not list or not choices:
            choices = None
            if chunk.get("error") is not None:
                raise UpstreamDataError("upstream error in stream: " + _error_message(chunk["error"]))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage  # the last one wins
        if choices is None:
            return
        choice = choices[0]
        if type(choice) is not dict:
            return
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = {}
        emitter = self._emitter

        reasoning = delta.get("reasoning_content")
        if reasoning and isinstance(reasoning, str):
            out += emitter.thinking(reasoning)

        content = delta.get("content")
        if isinstance(content, list):
            content = "".join(
                part["text"]
                for part in content
                if type(part) is dict and part.get("type") == "text" and isinstance(part.get("text"), str)
            )
        if content and isinstance(content, str):
            out += emitter.text(content)

        calls = delta.get("tool_calls")
        if type(calls) is list:
            for call in calls:
                if type(call) is not dict:
                    continue
                key = _tool_key(call)
                function = call.get("function")
                if type(function) is not dict:
                    function = {}
                if not emitter.tool_is_open(key):
                    name = function.get("name")
                    if not name or not isinstance(name, str):
                        continue  # ghost fragment of a call already closed
                    call_id = call.get("id")
                    out += emitter.tool_start(key, call_id if isinstance(call_id, str) and call_id else None, name)
                arguments = function.get("arguments")
                if arguments and isinstance(arguments, str):
                    out += emitter.tool_args(key, arguments)  # verbatim, never re-encoded

        finish = choice.get("finish_reason")
        if finish and isinstance(finish, str):
            # Blocks close now, but message_delta waits for the end of the
            # stream: usage usually arrives in a later chunk (ST-47).
            out += emitter.close_all()
            self._stop = STOP_REASONS.get(finish, "end_turn")

    # -- fast path (ST-45) -----------------------------------------------

    def _fast(self, p: bytes) -> list[bytes] | None:
        """Frames for a plain text chunk without ``json.loads``, or ``None``
        when the full parse must decide.

        Instead of the reference's substring guesses, the chunk is cut into
        prefix + text literal + suffix, and the prefix/suffix pair (the
        "skeleton", constant across a stream's text chunks) is proven once by
        ``_learn`` to mean "only this text". The literal then goes out byte
        for byte when that is exactly what re-encoding would give, else it is
        decoded on its own — either way the frames equal the full parse's.
        """
        i = p.find(_CONTENT_KEY)
        if i < 0:
            return None
        j = i + 10
        n = len(p)
        if j < n and p[j] == 32:
            j += 1
        if j >= n or p[j] != 34:
            return None
        j += 1  # first byte of the string body
        end = p.find(b'"', j)
        if end < 0:
            return None
        verbatim = _NOT_VERBATIM.search(p, j, end) is None
        if not verbatim:
            match = _STRING_REST.match(p, j)
            if match is None:
                return None
            end = match.end() - 1  # the closing quote
        tail = n - end
        for prefix_len, prefix, suffix in self._skeletons:
            if prefix_len == j and len(suffix) == tail and p.startswith(prefix) and p.endswith(suffix):
                break
        else:
            if not self._learn(p[:j], p[end:]):
                return None
        if end == j:
            return []  # empty text: handled, no frame (ST-42)
        literal = p[j - 1 : end + 1]
        if verbatim:
            # No escapes and no control bytes: json.dumps(ensure_ascii=False)
            # of the decoded text is these very bytes, once they are UTF-8.
            if not literal.isascii():
                try:
                    literal.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            return self._emitter.text_json(literal)
        try:
            text = literal.decode("utf-8")
            value, stop = _scanstring(text, 1)
        except ValueError:
            return None
        if stop != len(text):
            return None
        return self._emitter.text(value)

    def _learn(self, prefix: bytes, suffix: bytes) -> bool:
        """Prove that every chunk ``prefix + <string literal> + suffix`` is a
        plain text chunk whose text is that literal.

        Parsing the skeleton with two different probe literals shows that
        ``choices[0].delta.content`` comes from the literal's position (a
        value fixed elsewhere in the skeleton could not equal both probes);
        the other members cannot depend on the literal, so one check of them
        covers every text. Attempts are bounded by the hits they buy, so a
        stream whose skeleton changes on every chunk costs only a few probes.
        """
        if self._fast_learned > 32 + self._fast_hits // 4:
            return False
        self._fast_learned += 1
        try:
            a = _loads((prefix + _PROBE_A + suffix).decode("utf-8"))
            if not _plain_text_skeleton(a, _PROBE_A_VALUE):
                return False
            b = _loads((prefix + _PROBE_B + suffix).decode("utf-8"))
        except (ValueError, RecursionError):
            return False
        if _probe_content(b) != _PROBE_B_VALUE:
            return False
        if len(self._skeletons) >= _MAX_SKELETONS:
            del self._skeletons[0]
        self._skeletons.append((len(prefix), prefix, suffix))
        return True
