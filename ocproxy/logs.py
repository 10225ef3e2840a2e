"""Logging set-up: one structured line per event, level from config/env.

Every line passes through :class:`RedactingFormatter`, which replaces the
configured secrets (upstream API keys, client API keys) wherever they
appear. Code never logs a key on purpose, but upstream error bodies are
logged (they are what explains a failure) and an upstream may echo the key
it was sent ("invalid api key: sk-..."); redacting the final text is the one
place that catches every such path. Text is cut only after it was redacted
(:func:`clip`), so a cut can never leave part of a key behind.

Every message is one line: CR, LF and other control characters in it (a
client's model name, request id or header, an upstream's error body) are
written as escapes, so no value can forge a log line. A traceback follows
its message on lines of its own, each indented.
"""

from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import time
from logging.handlers import QueueHandler, QueueListener
from typing import Iterable

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}

REDACTED = "[redacted]"
#: Shorter strings are not treated as secrets: replacing "a" everywhere
#: would garble the log and such a key protects nothing anyway.
MIN_SECRET_LEN = 6

#: Lock ``_secrets_lock`` guards writes to ``_secrets``; the formatter reads
#: the tuple reference without it (one atomic load of an immutable tuple).
_secrets_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def level_of(name: str) -> int:
    """Any unknown level name behaves as info: a typo must not silence the log."""
    return _LEVELS.get((name or "").lower(), logging.INFO)


def set_secrets(secrets: Iterable[str]) -> None:
    """Strings that must never reach a log line; longest first, so a key
    that contains another one is replaced whole."""
    global _secrets
    unique = {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
    with _secrets_lock:
        _secrets = tuple(sorted(unique, key=len, reverse=True))


def secrets_of(config) -> list[str]:
    """The secrets a Config carries: every upstream key (an upstream may echo
    ``api_key`` even when ``api_keys`` replaces it) and the client keys."""
    return [s for s in (config.api_key, *config.api_keys, *(k.key for k in config.client_api_keys)) if s]


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clip(text: str, limit: int) -> str:
    """``text`` redacted, then cut to ``limit`` characters: the other order
    would leave the start of a key that straddles the cut."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit]


#: C0 controls, DEL, C1 controls and the Unicode line and paragraph
#: separators: anything a terminal or a log reader may take for a new line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match) -> str:
    char = match.group(0)
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def one_line(text: str) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x1b``...)."""
    return _CONTROL.sub(_escape_one, text) if _CONTROL.search(text) else text


def _indent(text: str) -> str:
    """A traceback's lines, indented: a line that starts at the margin is
    always the start of a log line."""
    return "\n".join("    " + one_line(line) for line in text.splitlines())


class OneLineFormatter(logging.Formatter):
    """The message on one line (control characters escaped), a traceback
    indented below it, the whole redacted."""

    def format(self, record: logging.LogRecord) -> str:
        msg, args = record.msg, record.args
        record.msg, record.args = one_line(record.getMessage()), None
        try:
            return redact(super().format(record))
        finally:
            record.msg, record.args = msg, args

    def formatException(self, ei) -> str:
        return _indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indent(super().formatStack(stack_info))


#: The name it had before it also kept every message on one line.
RedactingFormatter = OneLineFormatter


LINE_FORMAT = "time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


#: How long the listener lets lines gather after the first one arrives
#: before it writes them, so it wakes once per burst instead of once per
#: line. Woken per line, it cost 15 % of req/s at one connection
#: (bench/README.md). A log line may trail its event by this much.
GATHER_SECONDS = 0.05


class _Enqueue(QueueHandler):
    """Merges the message into the record in the caller's thread (on one
    line), and formats any traceback there too (indented), while the
    objects they name still exist. It is the logger's only handler, so the
    record is changed in place rather than copied as the stdlib does for
    the sake of other handlers."""

    def __init__(self, records) -> None:
        super().__init__(records)
        self.setFormatter(OneLineFormatter())

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        formatter = self.formatter
        record.msg, record.args = one_line(record.getMessage()), None
        if record.exc_info:
            record.exc_text = formatter.formatException(record.exc_info)
        if record.stack_info:
            record.exc_text = "\n".join(filter(None, [record.exc_text, formatter.formatStack(record.stack_info)]))
            record.stack_info = None
        record.exc_info = None
        return record


class _BatchWriter(logging.StreamHandler):
    """Formats each line as it is handled and writes the lines gathered so
    far in one write when flushed. Used only by the listener thread."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._lines: list[str] = []  # guarded by the handler's own lock
        self._last: logging.LogRecord | None = None  # named when a write fails

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
        self._last = record

    def flush(self) -> None:
        with self.lock:
            if not self._lines:
                return
            text, self._lines = "".join(self._lines), []
            try:
                self.stream.write(text)
                super().flush()
            except Exception:
                self.handleError(self._last)


class _Listener(QueueListener):
    """The stdlib listener, plus a short gathering pause (GATHER_SECONDS),
    one write for everything it found queued, and flush markers: an Event
    found on the queue is set once every line queued before it is written."""

    def dequeue(self, block: bool):
        if block and self.queue.empty():
            record = self.queue.get()
            time.sleep(GATHER_SECONDS)
            return record
        return self.queue.get(block)

    def handle(self, record) -> None:
        if not isinstance(record, threading.Event):
            super().handle(record)
        if isinstance(record, threading.Event) or self.queue.empty():
            self._write()
        if isinstance(record, threading.Event):
            record.set()

    def _write(self) -> None:
        for handler in self.handlers:
            handler.flush()


class LogQueue:
    """Log lines from any thread go onto a queue; one listener thread writes
    them to ``stream``, whole and in the order they were queued.

    Why not a plain ``logging.StreamHandler`` on the logger: it writes and
    flushes every line under one handler-wide lock, so under load request
    threads queue behind whichever thread sits in ``write()``. Here a
    request thread only merges the message and appends the record to a
    ``queue.SimpleQueue`` (whose ``put`` is safe even from a signal handler
    that interrupts another ``put``); the listener formats, redacts and
    writes.

    Owner of the listener thread: :meth:`start` starts it and :meth:`stop`
    writes what is queued and joins it. ``_lock`` guards ``_running``.
    ``records`` replaces the queue (tests pass one that misbehaves).
    """

    def __init__(self, stream, fmt: str = LINE_FORMAT, logger: logging.Logger | None = None,
                 records: queue.SimpleQueue | None = None) -> None:
        self.queue = queue.SimpleQueue() if records is None else records
        self.handler = _Enqueue(self.queue)
        self._writer = _BatchWriter(stream)
        self._writer.setFormatter(RedactingFormatter(fmt))
        self._listener = _Listener(self.queue, self._writer)
        # after stop() a line is written by the thread that logs it
        self.output = logging.StreamHandler(stream)
        self.output.setFormatter(RedactingFormatter(fmt))
        self._logger = logger
        self._lock = threading.Lock()
        self._running = False

    def start(self) -> None:
        """Start the listener and send ``logger``'s lines to the queue."""
        with self._lock:
            if self._running:
                return
            self._running = True
        self._listener.start()
        if self._logger is not None:
            self._logger.addHandler(self.handler)
            self._logger.removeHandler(self.output)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every line queued so far is written; False on timeout."""
        with self._lock:
            running = self._running
        if not running:
            return True
        written = threading.Event()
        self.queue.put(written)
        return written.wait(timeout)

    def stop(self) -> None:
        """Write every queued line, then join the listener. A line logged
        after this is written by its own thread, straight to the stream."""
        with self._lock:
            if not self._running:
                return
            self._running = False
        if self._logger is not None:
            self._logger.addHandler(self.output)
            self._logger.removeHandler(self.handler)
        self._listener.stop()
        self._writer.flush()  # what came with the stop sentinel


#: The process's one LogQueue, made by the first setup_logging; guarded by
#: ``_setup_lock``.
_setup_lock = threading.Lock()
_installed: LogQueue | None = None


def setup_logging(level: str, stream=None, secrets: Iterable[str] = ()) -> LogQueue:
    """Send the ``ocproxy`` loggers' lines to ``stream`` (stdout) through a
    :class:`LogQueue`, and return it: the caller owns it and must
    :meth:`~LogQueue.stop` it at shutdown so the last lines are written."""
    global _installed
    with _setup_lock:
        if _installed is None:
            root = logging.getLogger("ocproxy")
            root.propagate = False
            _installed = LogQueue(stream or sys.stdout, logger=root)
        logs = _installed
    logs.start()
    set_secrets(secrets)
    set_level(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return logs


def set_level(level: str) -> None:
    logging.getLogger("ocproxy").setLevel(level_of(level))


def apply_config(config) -> None:
    """Hot-reload callback: level and secrets follow the new config."""
    set_secrets(secrets_of(config))
    set_level(config.log_level)
