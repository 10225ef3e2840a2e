"""OpenAI Chat Completions SSE in, Anthropic SSE frames out.

A pure state machine: the streaming shell hands it upstream bytes as they
arrive and writes whatever frames come back; nothing here reads a socket,
starts a thread or looks at a clock, so every rule is tested with plain byte
strings. Block bookkeeping (lazy ``message_start``, indices, closing order)
is ``MessageEmitter``'s job; this module decides *what* the upstream chunks
mean.
"""

from __future__ import annotations

import json
import re

from ..errors import UpstreamDataError
from .chat_response import REASONING_KEYS, STOP_REASONS, reasoning_text
from .emitter import MessageEmitter
from .ids import IdFactory
from .message import error_text
from .sse import DecodingTranslator, data_payload
from .think_tags import THINKING, ThinkTagSplitter, starts_inside_reasoning
from .usage import anthropic_usage

#: More than this many undecodable lines in a row fail the attempt: the
#: upstream is not speaking Chat Completions, and waiting longer helps nobody.
MAX_DECODE_FAILURES = 3

_loads = json.loads
_scanstring = json.decoder.scanstring

# The fast path: most chunks of a long answer only carry text, so their
# shape ("skeleton") is proven once and later chunks skip json.loads. It
# stays because it cuts the server CPU of a long stream by about a third
# (make bench, 2,000-delta stream); with it off ocproxy is slower than the
# plain relay.
_CONTENT_KEY = b'"content":'
# A byte that makes a raw string body differ from its own decoded-and-
# re-encoded form: a backslash (escape) or a raw control byte (invalid JSON).
_NOT_VERBATIM = re.compile(rb"[\x00-\x1f\\]")
# The rest of a JSON string body with escapes, up to and including its
# closing quote (unrolled so it stays linear on long values).
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Two different probe values put in place of the text when a chunk skeleton
# is verified (see ``_learn``); their JSON literals and decoded values.
_PROBE_A, _PROBE_A_VALUE = b"\\u0000\\u0001", "\x00\x01"
_PROBE_B, _PROBE_B_VALUE = b"\\u0001\\u0000", "\x01\x00"
_MAX_SKELETONS = 8


def _plain_text_skeleton(chunk: object, probe: str) -> bool:
    """True when the full chunk handler would do nothing with ``chunk`` but
    emit ``choices[0].delta.content`` (== ``probe``) as text. Deliberately
    stricter than the handler: a false "no" only costs speed."""
    if type(chunk) is not dict or chunk.get("usage") is not None or chunk.get("error"):
        return False
    choices = chunk.get("choices")
    if type(choices) is not list or not choices:
        return False
    choice = choices[0]
    if type(choice) is not dict or choice.get("usage") is not None:
        return False
    delta = choice.get("delta")
    if type(delta) is not dict or delta.get("content") != probe:
        return False
    return (
        all(delta.get(key) in (None, "") for key in REASONING_KEYS)
        and delta.get("tool_calls") in (None, [])
        and choice.get("finish_reason") in (None, "")
    )


def _probe_content(chunk: object) -> object:
    try:
        return chunk["choices"][0]["delta"]["content"]  # type: ignore[index]
    except (TypeError, LookupError):
        return None


def _index(entry: dict) -> object:
    """A call's ``index``, or None when absent or unusable as a key."""
    key = entry.get("index")
    if isinstance(key, bool) or not isinstance(key, (int, float, str)):
        return None
    return key


def _nonempty(value) -> str | None:
    return value if isinstance(value, str) and value else None


class _ToolCall:
    __slots__ = ("id", "name", "pending", "opened", "closed")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.pending: list[str] = []  # arguments that came before the name
        self.opened = False
        self.closed = False


class ToolCallFragments:
    """Which streamed tool-call fragment belongs to which call.

    A fragment names its call by ``index`` (the standard), else by ``id``
    (Moonshot sends parallel calls with ids and no index), else by its place
    in the chunk's list (Moonshot's continuations have neither), else it
    continues the latest call. A known index that arrives with a different
    id belongs to the call with that id, or starts one: some upstreams
    number every parallel call 0.
    """

    def __init__(self) -> None:
        self.calls: list[_ToolCall] = []
        self._by_index: dict[object, int] = {}
        self._by_id: dict[str, int] = {}
        self._by_position: dict[int, int] = {}
        self._last: int | None = None

    def locate(self, entry: dict, position: int) -> int:
        index = _index(entry)
        call_id = _nonempty(entry.get("id"))
        if call_id is None and index is not None and index in self._by_index:
            number = self._last = self._by_index[index]  # the common continuation
            return number
        number = None
        if index is not None:
            number = self._by_index.get(index)
            if number is not None and call_id and self.calls[number].id not in (None, call_id):
                number = self._by_id.get(call_id)  # another call under the same index: known, or new
        elif call_id is not None:
            number = self._by_id.get(call_id)
            if number is None:
                number = self._new()
            self._by_position[position] = number
        else:
            number = self._by_position.get(position, self._last)
        if number is None:
            number = self._new()
        if index is not None:
            self._by_index[index] = number
        if call_id is not None:
            self._by_id.setdefault(call_id, number)
        self._last = number
        return number

    def _new(self) -> int:
        self.calls.append(_ToolCall())
        return len(self.calls) - 1

    def close_all(self) -> None:
        """After a finish_reason: later fragments of these calls are ghosts;
        a call never named is dropped."""
        for call in self.calls:
            call.closed = True


class ChatStreamTranslator(DecodingTranslator):
    """Translates one attempt's Chat Completions stream.

    ``fast_path=False`` turns off the shortcut for plain text chunks so
    tests can prove that it changes nothing but speed.
    """

    def __init__(self, model_id: str, ids: IdFactory, *, fast_path: bool = True,
                 upstream_model: str | None = None):
        super().__init__()
        self._emitter = MessageEmitter(model_id, ids)
        self._fast_path = fast_path
        self._failures = 0  # consecutive decode failures
        self._handled = False  # any chunk handled at all: else "empty stream"
        self._usage: dict | None = None  # top-level usage: wins
        self._choice_usage: dict | None = None  # Moonshot's choices[0].usage
        self._stop: str | None = None
        self._think = ThinkTagSplitter(starts_inside=starts_inside_reasoning(upstream_model or model_id))
        self._tools = ToolCallFragments()
        # Verified chunk skeletons for the fast path: (len(prefix), prefix, suffix).
        self._skeletons: list[tuple[int, bytes, bytes]] = []
        self._fast_hits = 0
        self._fast_learned = 0  # verification attempts, bounded by hits

    def _end(self, out: list[bytes]) -> None:
        if not self._handled:
            raise UpstreamDataError("empty stream")
        # EOF and [DONE] end alike; the emitter makes the stop reason agree
        # with whether a tool_use block was emitted.
        self._flush_text(out)
        usage = self._usage if self._usage is not None else self._choice_usage
        out += self._emitter.finish(self._stop or "end_turn", anthropic_usage(usage))

    def _item(self, line: bytes, out: list[bytes]) -> None:
        payload = data_payload(line)
        if payload is None:
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

    # -- one chunk -------------------------------------------------------

    def _chunk(self, chunk: dict, out: list[bytes]) -> None:
        error = chunk.get("error")
        if error:
            # OpenRouter and Moonshot report a failure mid-stream as a chunk
            # with an error object: a failed attempt, never a clean end.
            raise UpstreamDataError("upstream error in stream: " + error_text(error))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage  # the last one wins
        choices = chunk.get("choices")
        if type(choices) is not list or not choices:
            return
        choice = choices[0]
        if type(choice) is not dict:
            return
        usage = choice.get("usage")
        if isinstance(usage, dict):
            self._choice_usage = usage
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = {}
        emitter = self._emitter

        reasoning = reasoning_text(delta)
        if reasoning:
            self._think.reasoning_sent_apart()
            out += emitter.thinking(reasoning)

        content = delta.get("content")
        if isinstance(content, list):
            content = "".join(
                part["text"]
                for part in content
                if type(part) is dict and part.get("type") == "text" and isinstance(part.get("text"), str)
            )
        if content and isinstance(content, str):
            self._text(self._think.feed(content), out)

        calls = delta.get("tool_calls")
        if type(calls) is list:
            for position, call in enumerate(calls):
                if type(call) is dict:
                    self._tool_call(call, position, out)

        finish = choice.get("finish_reason")
        if finish and isinstance(finish, str):
            if finish == "error":
                raise UpstreamDataError('upstream stream ended with finish_reason "error"')
            # Blocks close now, but message_delta waits for the end of the
            # stream: usage usually arrives in a later chunk.
            self._flush_text(out)
            out += emitter.close_all()
            self._tools.close_all()
            self._stop = STOP_REASONS.get(finish, "end_turn")

    def _text(self, pieces: list[tuple[str, str]], out: list[bytes]) -> None:
        for kind, piece in pieces:
            out += self._emitter.thinking(piece) if kind == THINKING else self._emitter.text(piece)

    def _flush_text(self, out: list[bytes]) -> None:
        """Text the think-tag splitter still holds goes out before a tool
        call or the end."""
        self._text(self._think.flush(), out)

    def _tool_call(self, entry: dict, position: int, out: list[bytes]) -> None:
        number = self._tools.locate(entry, position)
        call = self._tools.calls[number]
        if call.closed:
            return  # ghost fragment of a call already finished
        function = entry.get("function")
        if type(function) is not dict:
            function = {}
        arguments = _nonempty(function.get("arguments"))
        if call.opened:  # repeated ids and names are the same call's
            if arguments:
                out += self._emitter.tool_args(number, arguments)  # verbatim, never re-encoded
            return
        if call.id is None:
            call.id = _nonempty(entry.get("id"))
        if call.name is None:
            call.name = _nonempty(function.get("name"))
        if arguments:
            call.pending.append(arguments)  # the name may still come
        if call.name is None:
            return
        self._flush_text(out)
        out += self._emitter.tool_start(number, call.id, call.name)
        call.opened = True
        if call.pending:
            out += self._emitter.tool_args(number, "".join(call.pending))
            call.pending = []

    # -- fast path -------------------------------------------------------

    def _fast(self, p: bytes) -> list[bytes] | None:
        """Frames for a plain text chunk without ``json.loads``, or ``None``
        when the full parse must decide.

        The chunk is cut into prefix + text literal + suffix, and the
        prefix/suffix pair (the "skeleton", constant across a stream's text
        chunks) is proven once by ``_learn`` to mean "only this text". The
        literal then goes out byte for byte when that is exactly what
        re-encoding would give, else it is decoded on its own; either way
        the frames equal the full parse's.
        """
        if not self._think.passthrough:
            return None  # the think-tag splitter may still change this text
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
            return []  # empty text: handled, no frame
        literal = p[j - 1 : end + 1]
        if verbatim:
            # No escapes and no control bytes: the encoding of the decoded
            # text is these very bytes, once they are known to be UTF-8.
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
