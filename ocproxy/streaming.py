"""The streaming model: writer, heartbeat ticker, pump thread, WSGI iterable.

A WSGI application cannot write to the socket from two threads; it returns an
iterable that the host drains in the request thread. So, under a WSGI host:

* the **pump** thread runs the fallback loop and puts complete frames into the
  :class:`StreamWriter`;
* the **heartbeat** (:class:`Heartbeat`, one thread for *all* open streams)
  puts ``:keepalive`` frames into a writer that has been silent for one
  interval;
* the **iterable** (:class:`StreamResponse`) is the only code that hands bytes
  to the host. Every item it yields is made of whole frames, so a keep-alive
  can never land inside an event.

The status line and headers wait until the answer is known: the first
payload frame (a 200 naming the model that answered) or a failure before
any payload (a whole JSON error with its own status, e.g. 401 or 429 with
``Retry-After``, which the client's SDK raises as it would for a
non-streaming request). Keep-alives start only once the headers are out.

When the host closes the iterable (client gone) the writer is marked gone, the
pump's upstream read is aborted through the cancel hook, and the pump thread
is joined before ``close`` returns, so no thread outlives its response.

Under ``ocproxy serve`` the host lends its connection instead
(:meth:`StreamResponse.run_here`): the request thread runs the pump itself and
the writer sends each frame as it is written, the heartbeat's keep-alives
without ever waiting on the socket. No pump thread, no queue between threads:
a held stream costs one thread, and a frame no hand-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable, Protocol

from ocproxy.translate.sse import KEEPALIVE, error_frame

log = logging.getLogger("ocproxy.stream")

#: A response's status line and headers, as ``start_response`` takes them.
Head = tuple[str, list[tuple[str, str]]]

SSE_HEADERS = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]
OK_HEAD: Head = ("200 OK", SSE_HEADERS)


def whole_error(status: str, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> tuple[Head, bytes]:
    """A JSON error answer for a stream that failed before its headers."""
    return (status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers]), body


_PUMP_CRASHED = whole_error(
    "500 Internal Server Error", b'{"type":"error","error":{"type":"api_error","message":"internal proxy error"}}')

#: An item the host has not taken within this many seconds means the client
#: stopped reading (a full socket buffer); tests may shorten it.
WRITE_STALL_SECONDS = 5.0
#: Output queued behind the oldest item the host has not taken, beyond this
#: many bytes, means the client stopped reading: it is treated as gone
#: before a fast upstream fills memory in those seconds. (One large event
#: alone is not that: it is a single item.) Tests may shorten it.
MAX_QUEUED_BYTES = 4 * 1024 * 1024


class Sink(Protocol):
    """A connection lent to one stream by its host (see ``StreamResponse.run_here``)."""

    def send(self, data: bytes, head: Head | None, wait: bool) -> int:
        """Send ``data``, after the status line and headers ``head`` when
        given (the first send). ``wait=False`` sends only what the socket
        takes now and keeps the rest to go first next time; returns how many
        bytes are kept. Raises ``OSError`` when the client is gone."""

    def abort(self) -> None:
        """Shut the connection down, so that a send blocked on it fails."""


class StreamWriter:
    """Ordered frames for one client response.

    ``_cond`` (and the lock inside it) guards every field below but those of
    direct delivery: the queue, ``head`` (the status line and headers, once
    decided), ``payload_written``, ``finished``, ``gone``, ``paused``, the
    time of the last write and of the oldest frame not sent yet, and the
    bytes queued (bounded by ``MAX_QUEUED_BYTES``).

    Direct delivery (:meth:`deliver_to`): the queue holds what is written
    until the writing thread sends it. ``_send_lock`` guards the sink,
    ``_head_sent`` and ``_kept``; it is taken before ``_cond``, never
    inside it.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[bytes] = deque()
        self._head: Head | None = None
        self._payload_written = False
        self._finished = False
        self._gone = False
        self._paused = False
        self._last_write = clock()
        self._oldest_pending: float | None = None
        self._queued = 0
        self._on_gone: Callable[[], None] | None = None
        self._sink: Sink | None = None  # set once, before any frame, by deliver_to
        self._send_lock = threading.Lock()
        self._head_sent = False
        self._kept = 0  # bytes the sink kept from a send that could not wait

    def deliver_to(self, sink: Sink) -> None:
        """Send frames through ``sink`` in the thread that writes them,
        instead of queueing them for the WSGI iterable."""
        self._sink = sink

    # -- producer side (pump, heartbeat) ----------------------------------

    def write(self, frames: Iterable[bytes], head: Head | None = None) -> bool:
        """Queue payload frames (direct delivery: send them, waiting for the
        client); False when the response is over or the client left (the
        caller then stops writing). ``head`` becomes the response's status
        and headers if none was decided yet: the first payload is what
        decides them. A client that let more than ``MAX_QUEUED_BYTES`` pile
        up is gone from here on."""
        data = b"".join(frames)
        with self._cond:
            if self._finished or self._gone:
                return False
            if data:
                if self._head is None:
                    self._head = head or OK_HEAD
                self._push(data)
                self._payload_written = True
            piled_up = (self._sink is None and bool(self._items)
                        and self._queued - len(self._items[0]) > MAX_QUEUED_BYTES)
            if piled_up:
                self._mark_gone_locked()
        if self._sink is not None:
            return self.flush(wait=True)
        if piled_up:
            log.info("client stopped reading: %d bytes queued, ending the stream", MAX_QUEUED_BYTES)
            self._run_on_gone()
            return False
        return True

    def finish(self, frames: Iterable[bytes] = ()) -> None:
        """Queue the terminal frames and end the response in one step, so no
        keep-alive can follow them."""
        data = b"".join(frames)
        with self._cond:
            if self._finished:
                return
            if data and not self._gone:
                if self._head is None:
                    self._head = OK_HEAD
                self._push(data)
                self._payload_written = True
            self._finished = True
            self._cond.notify_all()
        self._try_flush()

    def fail(self, whole: tuple[Head, bytes], frames: Iterable[bytes]) -> None:
        """End the response with an error: while no header went out, the
        ``whole`` answer (its own status, headers and body); after that the
        SSE ``frames`` (an ``error`` event). One step, so the choice cannot
        race the first payload."""
        with self._cond:
            if self._finished:
                return
            if not self._gone:
                if self._head is None:
                    self._head, data = whole
                else:
                    data = b"".join(frames)
                self._push(data)
            self._finished = True
            self._cond.notify_all()
        self._try_flush()

    def keepalive(self, now: float) -> None:
        """Heartbeat tick: a keep-alive when silent for one interval; a
        stalled host (item not taken, or not sent, for too long) means the
        client is gone."""
        fire_gone = False
        with self._cond:
            if self._finished or self._gone or self._head is None:  # no keep-alive before the headers
                return
            if self._oldest_pending is not None and now - self._oldest_pending > WRITE_STALL_SECONDS:
                fire_gone = self._mark_gone_locked()
            elif not self._paused and now - self._last_write >= self.interval:
                self._push(KEEPALIVE)
        if fire_gone:
            log.info("client took nothing for %.0f s, ending the stream", WRITE_STALL_SECONDS)
            self._run_on_gone()
        else:
            self._try_flush()

    def _try_flush(self) -> None:
        """Direct delivery from a thread that must not wait on the client
        (the heartbeat, a shutdown) or has nothing more to say: send what
        the socket takes now; the writing thread sends the rest."""
        if self._sink is not None:
            self.flush(wait=False)

    def flush(self, wait: bool = True) -> bool:
        """Direct delivery: send what is queued, oldest first; False once the
        client is gone. Without ``wait``, nothing waits: not for another
        thread's send, not for room in the socket."""
        if not self._send_lock.acquire(blocking=wait):
            return True  # the thread sending now sends these after its own
        try:
            while True:
                with self._cond:
                    if self._gone:
                        return False
                    data = b"".join(self._items)
                    self._items.clear()
                    self._queued = 0
                    head = None if self._head_sent else self._head
                if not data and not self._kept:
                    return True
                try:
                    self._kept = self._sink.send(data, head, wait)  # type: ignore[union-attr]
                except OSError:
                    self.mark_gone()
                    return False
                self._head_sent = True
                with self._cond:
                    if not self._items:
                        if not self._kept:
                            self._oldest_pending = None
                        return True
                    self._oldest_pending = self._clock()  # what came during the send waits from now
        finally:
            self._send_lock.release()

    def pause(self, paused: bool) -> None:
        """Raw passthrough: no keep-alive between the upstream's own events."""
        with self._cond:
            self._paused = paused
            self._last_write = self._clock()

    def _push(self, data: bytes) -> None:
        self._items.append(data)
        self._queued += len(data)
        now = self._clock()
        self._last_write = now
        if self._oldest_pending is None:
            self._oldest_pending = now
        self._cond.notify()

    # -- state -----------------------------------------------------------

    @property
    def head(self) -> Head | None:
        """The status line and headers, once the first payload or a failure
        decided them."""
        with self._cond:
            return self._head

    @property
    def payload_written(self) -> bool:
        with self._cond:
            return self._payload_written

    @property
    def done(self) -> bool:
        with self._cond:
            return self._finished or self._gone

    @property
    def gone(self) -> bool:
        with self._cond:
            return self._gone

    def on_gone(self, callback: Callable[[], None]) -> None:
        with self._cond:
            self._on_gone = callback

    def mark_gone(self) -> None:
        with self._cond:
            fire = self._mark_gone_locked()
        if fire:
            self._run_on_gone()

    def _mark_gone_locked(self) -> bool:
        if self._gone or self._finished:
            return False
        self._gone = True
        self._items.clear()
        self._queued = 0
        self._cond.notify_all()
        return True

    def _run_on_gone(self) -> None:
        with self._cond:
            callback = self._on_gone
        if callback is not None:
            callback()
        if self._sink is not None:  # a send blocked on the departed client fails now
            self._sink.abort()

    # -- consumer side (the WSGI iterable) ---------------------------------

    def take(self) -> bytes | None:
        """Everything queued, as one bytestring of whole frames; ``None``
        once the response is over and drained."""
        with self._cond:
            while not self._items and not self._finished and not self._gone:
                self._cond.wait()
            if self._gone or not self._items:
                return None
            data = b"".join(self._items) if len(self._items) > 1 else self._items[0]
            self._items.clear()
            self._queued = 0
            self._oldest_pending = None
            return data


class Heartbeat:
    """One ticker thread for every open response (not a thread per request):
    keep-alives for open streams, and the periodic checks of *watches* —
    objects with ``interval`` and ``tick(now)``, such as the client-gone probe
    of a non-streaming request.

    ``_cond`` guards ``_writers``, ``_watches``, ``_running``, ``_sleep`` and
    ``_woken``. The thread is started by :meth:`start` and stopped and joined
    by :meth:`stop` — its owner is the application object.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._writers: set[StreamWriter] = set()
        self._watches: set = set()
        self._running = False
        self._thread: threading.Thread | None = None
        self._sleep: float | None = None  # the ticker's planned wait; None: until woken
        self._woken = False  # a wake-up asked for since the ticker planned that wait

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, name="ocproxy-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    def add(self, writer: StreamWriter) -> None:
        with self._cond:
            self._writers.add(writer)
            self._wake_for(writer.interval / 4)
        self.start()

    def discard(self, writer: StreamWriter) -> None:
        with self._cond:
            self._writers.discard(writer)

    def watch(self, item) -> None:
        with self._cond:
            self._watches.add(item)
            self._wake_for(item.interval)
        self.start()

    def _wake_for(self, period: float) -> None:
        """Wake the ticker only when it sleeps longer than ``period``: a busy
        proxy adds a watch per request, and waking the thread for each cost
        two context switches a request for nothing. Called under ``_cond``."""
        if self._sleep is None or self._sleep > period:
            self._woken = True
            self._cond.notify_all()

    def unwatch(self, item) -> None:
        with self._cond:
            self._watches.discard(item)

    @property
    def open_streams(self) -> int:
        with self._cond:
            return len(self._writers)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._running:
                    return
                writers = list(self._writers)
                watches = list(self._watches)
                intervals = [w.interval / 4 for w in writers] + [w.interval for w in watches]
                tick = min(max(min(intervals), 0.001), 0.25) if intervals else None
                self._sleep, self._woken = tick, False
            now = self._clock()
            for writer in writers:
                try:
                    writer.keepalive(now)
                except Exception:  # a broken writer must not stop every other stream's heartbeat
                    log.exception("heartbeat tick failed")
            for item in watches:
                try:
                    item.tick(now)
                except Exception:
                    log.exception("watch tick failed")
            with self._cond:
                # _woken: something needing a shorter tick arrived while this
                # round ran; a notify sent then had no waiter to wake.
                if self._running and not self._woken:
                    self._cond.wait(tick)


class StreamResponse:
    """The WSGI response iterable of one streaming request.

    ``pump(writer)`` runs in a thread started on the first ``next``; it must
    end the writer (``finish`` or ``fail``) however it ends. ``cancel()`` is
    called when the client goes so the pump's upstream read is aborted at
    once. ``start_response`` is called from the host's thread with the
    writer's head just before the first item is handed over (PEP 3333 lets
    the iterable's first iteration do it).

    A host that lends its connection calls :meth:`run_here` instead of
    iterating: the pump runs in the host's thread and sends its own frames.

    ``_lock`` guards ``_thread``, ``_here`` and ``_closed``: the host
    iterates and closes in its request thread, but ``ProxyApp.close`` may
    close a response the host abandoned from the thread that shuts the
    server down.
    """

    JOIN_SECONDS = 5.0

    def __init__(
        self,
        writer: StreamWriter,
        pump: Callable[[StreamWriter], None],
        heartbeat: Heartbeat,
        cancel: Callable[[], None],
        on_done: Callable[[], None] | None = None,
        start_response: Callable | None = None,
    ):
        self._writer = writer
        self._start_response = start_response
        self._started = False  # only the host's thread reads and sets it
        self._pump = pump
        self._heartbeat = heartbeat
        self._cancel = cancel
        self._on_done = on_done
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._here: threading.Event | None = None  # set when a pump run by run_here ended
        self._closed = False
        writer.on_gone(cancel)

    @property
    def writer(self) -> StreamWriter:
        return self._writer

    def __iter__(self):
        return self

    def run_here(self, sink: Sink) -> bool:
        """Run the pump in the calling thread (the host's), its frames sent
        through ``sink`` as they are written. True when the answer went out
        whole; False when the client left (the host then closes the
        connection) or the response was already under way or closed."""
        with self._lock:
            if self._thread is not None or self._here is not None or self._closed:
                return False
            self._here = threading.Event()
        self._writer.deliver_to(sink)
        self._heartbeat.add(self._writer)
        try:
            self._run_pump()
            sent = self._writer.flush(wait=True)  # what a thread that could not wait left
            return sent and self._writer.head is not None
        finally:
            self._here.set()

    def __next__(self) -> bytes:
        with self._lock:
            if self._here is not None:
                raise RuntimeError("a stream run by run_here is not iterated")
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run_pump, name="ocproxy-pump", daemon=True)
                self._heartbeat.add(self._writer)
                self._thread.start()
        data = self._writer.take()
        if not self._started:
            # None here: the client left before any header was decided.
            head = self._writer.head if data is not None else ("499 Client Closed Request", [("Content-Length", "0")])
            self._started = True
            if self._start_response is not None:
                self._start_response(*head)
        if data is None:
            raise StopIteration
        return data

    def _run_pump(self) -> None:
        try:
            self._pump(self._writer)
        except BaseException:  # the pump must always end the response
            log.exception("stream pump crashed")
            self._writer.fail(_PUMP_CRASHED, [error_frame("internal proxy error")])
        finally:
            self._writer.finish()

    def close(self) -> None:
        """Called by the host when the response ends, normally or not."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread, here = self._thread, self._here
        self._writer.mark_gone()  # no-op after a normal finish
        self._heartbeat.discard(self._writer)
        running = False  # the pump, in its own thread or in the host's (run_here)
        if thread is not None:
            thread.join(self.JOIN_SECONDS)
            running = thread.is_alive()
        elif here is not None:
            running = not here.wait(self.JOIN_SECONDS)
        if running:
            log.warning("stream pump still running %.0fs after close", self.JOIN_SECONDS)
        if self._on_done is not None:
            self._on_done()
