"""One upstream attempt's limits and abort switch, and the per-request scope
that cancels whatever attempt is running.

An attempt has three limits requests does not know: a whole-attempt
deadline, an idle gap renewed by every byte (before the first payload byte,
the first-byte deadline), and "the client left, stop now". The connection
carrying the attempt registers its socket here, so the reading thread can
set the socket timeout before a read and any other thread can abort a
blocked read by shutting the socket down.
"""

from __future__ import annotations

import math
import socket
import threading
import time

from ocproxy.errors import (
    AttemptFailure,
    AttemptTimeout,
    ClientGone,
    FirstByteTimeout,
    StreamIdle,
)

#: How far past the attempt's deadline a read may be allowed to block
#: (seconds), so that its socket timeout need not be set before every read.
TIMEOUT_SLACK = 0.05


class Attempt:
    """Limits and the abort switch of one upstream attempt.

    The socket object itself is kept, not the connection: for a
    ``Connection: close`` answer http.client hands the socket over to the
    response and sets ``conn.sock`` to None, yet reads still go through it.

    ``_lock`` guards ``_sock`` and ``_abort``: the pump thread attaches the
    socket and reads, other threads call :meth:`abort`.
    """

    def __init__(self, deadline: float, idle: float, first_byte: float | None = None):
        self.deadline = deadline  # time.monotonic() value
        self._idle = idle  # seconds
        # A stream's longest wait for its first payload byte (headers
        # included); the pump calls payload_began() once payload went out.
        # Only the reading thread touches it.
        self._first_byte = first_byte
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._abort: BaseException | None = None

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sock = sock
            aborted = self._abort is not None
        if aborted:
            _shutdown(sock)

    def abort(self, reason: BaseException) -> None:
        """Make a blocked read return now; the reader raises ``reason``."""
        with self._lock:
            if self._abort is None:
                self._abort = reason
            sock = self._sock
        if sock is not None:
            _shutdown(sock)

    @property
    def abort_reason(self) -> BaseException | None:
        with self._lock:
            return self._abort

    @property
    def idle(self) -> float:
        """The longest silent wait allowed now, in seconds."""
        return self._first_byte if self._first_byte is not None else self._idle

    def payload_began(self) -> None:
        """From now on the idle limit between reads applies."""
        self._first_byte = None

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def next_wait(self) -> float:
        """How long the next read may block; raises if time is up. Rounded
        up to ``TIMEOUT_SLACK``, so that the reads of an attempt, and the
        requests on a kept connection, ask for the same socket timeout and
        need not set it again."""
        self.check()
        left = self.time_left()
        if left <= 0:
            raise AttemptTimeout("attempt deadline exceeded")
        return math.ceil(min(self.idle, left) / TIMEOUT_SLACK) * TIMEOUT_SLACK

    def check(self) -> None:
        reason = self.abort_reason
        if reason is not None:
            raise reason

    def set_read_timeout(self, seconds: float) -> None:
        """Every ``settimeout`` is a syscall that lets go of the GIL, and each
        needless hand-off costs context switches under concurrent requests.
        So the socket keeps its timeout when it is the same, or longer by at most
        ``TIMEOUT_SLACK`` -- a deadline-bound timeout shrinks by the time
        between two reads; overshooting the deadline by that is harmless."""
        with self._lock:
            sock = self._sock
        if sock is None:
            return
        current = sock.gettimeout()
        if current is not None and 0 <= current - seconds <= TIMEOUT_SLACK:
            return
        try:
            sock.settimeout(seconds)
        except OSError:
            pass  # already closed: the read reports it

    def timeout_failure(self) -> AttemptFailure:
        """A read timed out: was it the deadline or the idle limit? (They
        are told apart in logs and in the stream's error frame.)"""
        if self.time_left() <= 0.05:
            return AttemptTimeout("attempt deadline exceeded")
        if self._first_byte is not None:
            return FirstByteTimeout(f"no payload from upstream within {self._first_byte:g}s", self._first_byte)
        return StreamIdle(f"no data from upstream for {self._idle:g}s", self._idle)


class CancelScope:
    """Cancels whatever attempt a request is making, now or next.

    The client can leave while no attempt is running (between two models):
    an attempt bound after that is aborted as it is bound. ``_lock`` guards
    ``_attempt`` and ``_reason``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempt: Attempt | None = None
        self._reason: BaseException | None = None

    def bind(self, attempt: Attempt | None) -> None:
        with self._lock:
            self._attempt = attempt
            reason = self._reason
        if attempt is not None and reason is not None:
            attempt.abort(reason)

    def cancel(self, reason: BaseException | None = None) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason or ClientGone()
            attempt, reason = self._attempt, self._reason
        if attempt is not None:
            attempt.abort(reason)

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._reason is not None


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
