"""The requests being relayed, for a graceful shutdown: refuse new ones,
end each open stream with an ``error`` event, wait for the rest."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

from ocproxy.errors import ProxyError
from ocproxy.relay import ServerClosing
from ocproxy.streaming import StreamResponse, whole_error
from ocproxy.translate.sse import error_frame
from ocproxy.upstream.attempt import CancelScope


#: A stream whose headers had not gone out yet is answered as a refused request.
_SHUTTING_DOWN = whole_error("529 Overloaded", ProxyError(529, "server is shutting down").body())


class InFlight:
    """The requests being relayed, so that a shutdown can refuse new ones,
    end each open stream with an ``error`` event and wait for the rest.

    ``_lock`` guards ``_whole`` (non-streaming requests being answered),
    ``_streams`` (each open stream -> its cancel switch) and ``_closing``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._whole = 0
        self._streams: dict[StreamResponse, CancelScope] = {}
        self._closing = False

    @contextmanager
    def whole(self):
        """Count one non-streaming request for as long as it is answered."""
        with self._lock:
            if self._closing:
                raise ProxyError(529, "server is shutting down")
            self._whole += 1
        try:
            yield
        finally:
            with self._lock:
                self._whole -= 1

    def add_stream(self, response: StreamResponse, scope: CancelScope) -> None:
        with self._lock:
            if self._closing:
                raise ProxyError(529, "server is shutting down")
            self._streams[response] = scope

    def forget_stream(self, response: StreamResponse) -> None:
        with self._lock:
            self._streams.pop(response, None)

    def idle(self) -> bool:
        with self._lock:
            return self._whole == 0 and not self._streams

    def close(self, timeout: float) -> None:
        """Refuse new requests; give every open stream its ``error`` frame,
        then abort its upstream. The host delivers the frame and closes the
        iterable, which joins the pump; a stream the host has not closed
        within ``timeout`` is closed here."""
        with self._lock:
            self._closing = True
            open_streams = list(self._streams.items())
        for response, scope in open_streams:
            response.writer.fail(_SHUTTING_DOWN, [error_frame("server shutting down")])
            scope.cancel(ServerClosing())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._streams:
                    break
            time.sleep(0.02)
        with self._lock:
            leftovers = list(self._streams)
        for response in leftovers:
            response.close()
