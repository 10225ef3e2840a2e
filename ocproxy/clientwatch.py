"""Is the client still there? ``poll`` plus a one-byte ``MSG_PEEK``.

A non-streaming request waits on its upstream for up to ``timeout_ms``; when
its client leaves meanwhile, the attempt in flight is aborted at once instead
of running to its deadline, and no further model is tried.
"""

from __future__ import annotations

import select
import socket
import threading
from typing import Callable

from ocproxy.errors import ClientGone
from ocproxy.upstream.attempt import CancelScope


def client_socket(environ: dict) -> socket.socket | None:
    """The client's socket, where the host exposes it (werkzeug, gunicorn)."""
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    return sock if isinstance(sock, socket.socket) else None


def peer_closed(sock: socket.socket) -> bool:
    """For a socket that polled readable: did the client close its side?
    (Readable with data means a pipelined request: the client is there.)"""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def gone_probe(environ: dict) -> Callable[[], bool]:
    """A check that is true once the client closed its side; under hosts that
    do not expose the socket the client is assumed present."""
    sock = client_socket(environ)
    if sock is None:
        return lambda: False

    def gone() -> bool:
        # poll, not select: select() refuses descriptors past 1023. One poll
        # object per call: a poll object refuses concurrent use.
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0)) and peer_closed(sock)
        except (OSError, ValueError):
            return True

    return gone


class ClientWatch:
    """Watches the clients of every non-streaming request that waits on its
    upstream and cancels the request of one that left.

    It is a watch of the shared ticker (``streaming.Heartbeat``), so a
    request costs no thread of its own, and one ``poll`` per tick covers
    every socket: a tick over N waiting requests is one syscall, not 2N that
    each let go of the GIL. It is registered with the ticker only while it
    has sockets, so an idle proxy's ticker sleeps.

    ``_lock`` guards ``_waiting`` (each client socket -> its request's
    cancel switch).
    """

    interval = 0.1  # seconds between two probes

    def __init__(self, ticker):
        self._ticker = ticker
        self._lock = threading.Lock()
        self._waiting: dict[socket.socket, CancelScope] = {}

    def add(self, sock: socket.socket, scope: CancelScope) -> None:
        with self._lock:
            first = not self._waiting
            self._waiting[sock] = scope
            if first:
                self._ticker.watch(self)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            if self._waiting.pop(sock, None) is not None and not self._waiting:
                self._ticker.unwatch(self)

    def tick(self, now: float) -> None:
        with self._lock:
            waiting = list(self._waiting.items())
        by_fd = {sock.fileno(): (sock, scope) for sock, scope in waiting}
        by_fd.pop(-1, None)  # closed under us: its request is ending anyway
        if not by_fd:
            return
        poller = select.poll()  # poll, not select: descriptors past 1023 are common here
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        for fd, _events in poller.poll(0):
            sock, scope = by_fd[fd]
            if peer_closed(sock):
                scope.cancel(ClientGone())
