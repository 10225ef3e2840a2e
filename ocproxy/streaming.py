"""The streaming model: writer, heartbeat ticker, pump thread, WSGI iterable.

A WSGI application cannot write to the socket from two threads; it returns an
iterable that the host drains in the request thread. So:

* the **pump** thread runs the fallback loop and puts complete frames into the
  :class:`StreamWriter`;
* the **heartbeat** (:class:`Heartbeat`, one thread for *all* open streams)
  puts ``:keepalive`` frames into a writer that has been silent for one
  interval;
* the **iterable** (:class:`StreamResponse`) is the only code that hands bytes
  to the host. Every item it yields is made of whole frames, so a keep-alive
  can never land inside an event.

When the host closes the iterable (client gone) the writer is marked gone, the
pump's upstream read is aborted through the cancel hook, and the pump thread
is joined before ``close`` returns, so no thread outlives its response.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable

from ocproxy.translate.sse import KEEPALIVE

log = logging.getLogger("ocproxy.stream")

#: An item the host has not taken within this many seconds means the client
#: stopped reading (a full socket buffer); tests may shorten it.
WRITE_STALL_SECONDS = 5.0


class StreamWriter:
    """Ordered frames for one client response.

    ``_cond`` (and the lock inside it) guards every field below: the queue,
    ``payload_written``, ``finished``, ``gone``, ``paused``, the time of the
    last write and of the oldest frame the host has not taken yet, the
    source of the frames being written and the source of the first payload.

    ``first_keepalive=False`` holds the first item back until there is
    payload or a keep-alive is due (one interval), so that the response
    headers, which leave with the first item, can name who wrote it.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic,
                 first_keepalive: bool = True):
        self.interval = interval
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        # A first item makes the headers leave at once.
        self._items: deque[bytes] = deque([KEEPALIVE] if first_keepalive else [])
        self._payload_written = False
        self._source = ""
        self._payload_source: str | None = None
        self._finished = False
        self._gone = False
        self._paused = False
        now = clock()
        self._last_write = now
        self._oldest_pending: float | None = now if first_keepalive else None
        self._on_gone: Callable[[], None] | None = None

    # -- producer side (pump, heartbeat) ----------------------------------

    def write(self, frames: Iterable[bytes]) -> bool:
        """Queue payload frames; False when the response is over or the
        client left (the caller then stops writing)."""
        data = b"".join(frames)
        with self._cond:
            if self._finished or self._gone:
                return False
            if data:
                self._push(data)
                if not self._payload_written:
                    self._payload_source = self._source or None
                self._payload_written = True
            return True

    def set_source(self, name: str) -> None:
        """Who writes the payload frames that follow (a model id; "" for
        the pump itself, whose frames name no model)."""
        with self._cond:
            self._source = name

    @property
    def payload_source(self) -> str | None:
        """The source set when the first payload frame was written; None
        before it, or when the pump wrote it (an error after every model failed)."""
        with self._cond:
            return self._payload_source

    def finish(self, frames: Iterable[bytes] = ()) -> None:
        """Queue the terminal frames and end the response in one step, so no
        keep-alive can follow them."""
        data = b"".join(frames)
        with self._cond:
            if self._finished:
                return
            if data and not self._gone:
                self._push(data)
                if not self._payload_written:
                    self._payload_source = self._source or None
                self._payload_written = True
            self._finished = True
            self._cond.notify_all()

    def keepalive(self, now: float) -> None:
        """Heartbeat tick: a keep-alive when silent for one interval; a
        stalled host (item not taken for too long) means the client is gone."""
        fire_gone = False
        with self._cond:
            if self._finished or self._gone:
                return
            if self._oldest_pending is not None and now - self._oldest_pending > WRITE_STALL_SECONDS:
                fire_gone = self._mark_gone_locked()
            elif not self._paused and now - self._last_write >= self.interval:
                self._push(KEEPALIVE)
        if fire_gone:
            self._run_on_gone()

    def pause(self, paused: bool) -> None:
        """Raw passthrough: no keep-alive between the upstream's own events."""
        with self._cond:
            self._paused = paused
            self._last_write = self._clock()

    def _push(self, data: bytes) -> None:
        self._items.append(data)
        now = self._clock()
        self._last_write = now
        if self._oldest_pending is None:
            self._oldest_pending = now
        self._cond.notify()

    # -- state -----------------------------------------------------------

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
        self._cond.notify_all()
        return True

    def _run_on_gone(self) -> None:
        with self._cond:
            callback = self._on_gone
        if callback is not None:
            callback()

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
    end the writer (``finish``) however it ends. ``cancel()`` is called when
    the client goes so the pump's upstream read is aborted at once.

    ``_lock`` guards ``_thread`` and ``_closed``: the host iterates and
    closes in its request thread, but ``ProxyApp.close`` may close a
    response the host abandoned from the thread that shuts the server down.
    """

    JOIN_SECONDS = 5.0

    def __init__(
        self,
        writer: StreamWriter,
        pump: Callable[[StreamWriter], None],
        heartbeat: Heartbeat,
        cancel: Callable[[], None],
        on_done: Callable[[], None] | None = None,
        start: Callable[[], None] | None = None,
    ):
        self._writer = writer
        # Called once, just before the first item is handed to the host: the
        # WSGI start_response, when the headers depend on that first item.
        self._start = start
        self._pump = pump
        self._heartbeat = heartbeat
        self._cancel = cancel
        self._on_done = on_done
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        writer.on_gone(cancel)

    @property
    def writer(self) -> StreamWriter:
        return self._writer

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run_pump, name="ocproxy-pump", daemon=True)
                self._heartbeat.add(self._writer)
                self._thread.start()
        data = self._writer.take()
        if self._start is not None:
            start, self._start = self._start, None  # only the request thread iterates
            start()
        if data is None:
            raise StopIteration
        return data

    def _run_pump(self) -> None:
        try:
            self._pump(self._writer)
        except BaseException:  # the pump must always end the response
            log.exception("stream pump crashed")
        finally:
            self._writer.finish()

    def close(self) -> None:
        """Called by the host when the response ends, normally or not."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._writer.mark_gone()  # no-op after a normal finish
        self._heartbeat.discard(self._writer)
        if thread is not None:
            thread.join(self.JOIN_SECONDS)
            if thread.is_alive():
                log.warning("stream pump still running %.0fs after close", self.JOIN_SECONDS)
        if self._on_done is not None:
            self._on_done()
