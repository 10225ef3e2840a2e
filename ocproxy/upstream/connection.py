"""Upstream connections that an attempt can reach, with fewer syscalls.

Both ways of calling an upstream use these: urllib3's pools under requests
(streams, and whatever needs requests' own handling) and the direct pools
of ``direct.py`` (whole answers). A connection hands its socket to the
calling thread's ``Attempt`` once the request is sent, so the attempt can
set read timeouts and shut a blocked read down from another thread.

Every syscall made with a timeout lets go of the GIL and, with other
requests waiting for it, costs context switches; so sockets here skip an
unchanged ``settimeout`` and a small request goes out in one send.

Both paths also say a failed call the same way (:func:`connection_failed`
and its neighbours), so fallback and breakers see one set of errors.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading

from urllib3.exceptions import ProtocolError

from ocproxy.errors import UpstreamConnectionError

#: ``.attempt``: the Attempt the calling thread is making; ``.read_timeout``:
#: the timeout its reads will use (one value per thread, no lock needed).
current = threading.local()


class _KeepsTimeout:
    """A ``settimeout`` to the value the socket already has does nothing:
    urllib3 sets it twice per request, each an ioctl that lets go of the GIL."""

    __slots__ = ()  # adds nothing to the socket's layout, so a socket's class can be swapped for it

    def settimeout(self, value):
        if value != self.gettimeout():
            super().settimeout(value)


class _TimeoutKeepingSocket(_KeepsTimeout, socket.socket):
    """An upstream connection's plain socket, with fewer syscalls that let
    go of the GIL: no unchanged ``settimeout``, and ``sendall`` polls only
    when the send buffer is full."""

    __slots__ = ()

    def sendall(self, data, flags=0):
        """With a timeout, CPython polls before every send, though a request
        nearly always fits the send buffer: write first (the descriptor of a
        socket with a timeout is non-blocking), and leave only what did not
        fit to ``sendall``, which waits for room within the timeout."""
        timeout = self.gettimeout()
        if flags or not timeout:
            return super().sendall(data, flags)
        try:
            sent = os.write(self.fileno(), data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            super().sendall(memoryview(data)[sent:])


class _TimeoutKeepingSSLSocket(_KeepsTimeout, ssl.SSLSocket):
    """A TLS connection's socket, without the unchanged ``settimeout``."""


_KEEPING = {socket.socket: _TimeoutKeepingSocket, ssl.SSLSocket: _TimeoutKeepingSSLSocket}

#: A request body up to this size goes out in one send with its head;
#: urllib3 sends them apart, two syscalls each letting go of the GIL.
JOIN_BODY_MAX = 256 << 10


class Tracked:
    """Mixin: a connection hands its socket to the calling thread's Attempt
    once the request is sent (both urllib3 and http.client connect lazily
    inside request()),
    sends a small request whole, and leaves its socket's timeout alone when
    it would not change."""

    _head: bytes | None = None  # b"": the head is to be held for the body; then the head

    def connect(self):
        super().connect()  # type: ignore[misc]
        # The same socket, with a settimeout that skips unchanged values; a
        # wrapper urllib3 uses for TLS through a TLS proxy is left as it is.
        keeping = _KEEPING.get(type(self.sock))  # type: ignore[attr-defined]
        if keeping is not None:
            self.sock.__class__ = keeping  # type: ignore[attr-defined]

    def request(self, method, url, body=None, headers=None, **kwargs):  # type: ignore[override]
        if self.sock is not None:  # type: ignore[attr-defined]
            # A kept connection: there is no connect for urllib3's connect
            # timeout to bound, so the request is sent under the read
            # timeout it already has, rather than switched to the connect
            # timeout and back.
            read_timeout = getattr(current, "read_timeout", None)
            if read_timeout is not None:
                self.timeout = read_timeout
        if isinstance(body, bytes) and 0 < len(body) <= JOIN_BODY_MAX and not kwargs.get("chunked"):
            self._head = b""
        try:
            result = super().request(method, url, body, headers, **kwargs)  # type: ignore[misc]
        finally:
            self._head = None
        attempt = getattr(current, "attempt", None)
        if attempt is not None:
            attempt.attach(self.sock)  # type: ignore[attr-defined]
        return result

    def send(self, data):
        """The head of a request whose body is small waits for the body."""
        head = self._head
        if head is not None and isinstance(data, bytes):
            if head == b"":
                self._head = data
                return
            self._head = None
            data = head + data
        elif head:
            self._head = None
            super().send(head)  # type: ignore[misc]
        super().send(data)  # type: ignore[misc]


# -- what a failed call says ------------------------------------------------

#: The most of an error answer's body that is read.
MAX_ERROR_BODY = 1 << 20

#: _reason's findings as the client's error message says them (DNS, TLS and
#: other failures stay "connection failed": their text carries the URL).
_SAID_AS = {"connection refused": "connect refused", "connection reset": "connection reset"}


def connection_failed(exc: BaseException) -> UpstreamConnectionError:
    """The upstream could not be reached, or broke off before answering."""
    reason = _reason(exc)
    return UpstreamConnectionError(f"connection to upstream failed: {reason}",
                                   refused_or_reset=reason in _SAID_AS,
                                   reason=_SAID_AS.get(reason, "connection failed"))


def request_failed(exc: BaseException) -> UpstreamConnectionError:
    """The request could not be sent as it stands (a header refused, say)."""
    return UpstreamConnectionError(f"upstream request failed: {exc}", refused_or_reset=False, reason="request failed")


def too_large() -> UpstreamConnectionError:
    return UpstreamConnectionError("upstream response too large", refused_or_reset=False, reason="response too large")


def _reason(exc: BaseException) -> str:
    """What broke the connection, from the exception types in ``exc``'s
    chain (never its text, which carries the URL)."""
    seen: set[int] = set()
    pending: list = [exc]
    while pending:
        err = pending.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        # urllib3 wraps every failure mid-request as "Connection aborted."
        if isinstance(err, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ProtocolError)):
            return "connection reset"
        pending += [err.__cause__, err.__context__, getattr(err, "reason", None), *err.args]
    return str(exc)[:300]
