"""The log queue: whole lines, in order, none waiting behind a slow write."""

from __future__ import annotations

import io
import logging
import queue
import subprocess
import sys
import threading

from ocproxy.logs import LogQueue, set_secrets

FORMAT = "%(threadName)s %(message)s"


class GatedStream(io.StringIO):
    """A stream whose first write blocks until the test opens the gate,
    standing in for a terminal or pipe that is slow to drain."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.writes = 0

    def write(self, text):
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            assert self.gate.wait(10)
        return super().write(text)


def logger_with(stream, name: str, records=None) -> tuple[LogQueue, logging.Logger]:
    """A started LogQueue writing ``name``'s lines to ``stream``; its listener
    is stopped (and joined) after the test."""
    logger = logging.getLogger(name)
    logger.handlers[:] = []
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logs = LogQueue(stream, FORMAT, logger=logger, records=records)
    logs.start()
    _started.append(logs)
    return logs, logger


_started: list[LogQueue] = []


def teardown_function(_):
    while _started:
        _started.pop().stop()


def stuck_writer(name: str, line: str):
    """A LogQueue whose listener is inside a write that blocks until
    ``stream.gate`` opens, writing ``line`` logged by thread "writer"."""
    stream = GatedStream()
    logs, log = logger_with(stream, name)
    writer = threading.Thread(target=log.info, args=(line,), name="writer")
    writer.start()
    assert stream.entered.wait(10)
    return stream, logs, log, writer


def test_logs_many_threads_every_line_whole_and_in_each_threads_order():
    stream = io.StringIO()
    logs, log = logger_with(stream, "test.logs.many")
    start = threading.Barrier(8)

    def burst(n: int) -> None:
        start.wait()
        for i in range(300):
            log.info("worker=%d line=%d %s", n, i, "x" * 200)

    threads = [threading.Thread(target=burst, args=(n,), name=f"w{n}") for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logs.stop()

    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * 300
    for n in range(8):
        mine = [line for line in lines if line.startswith(f"w{n} ")]
        assert mine == [f"w{n} worker={n} line={i} {'x' * 200}" for i in range(300)]


def test_logs_a_thread_never_waits_for_a_slow_write_and_its_line_follows():
    stream, logs, log, writer = stuck_writer("test.logs.gated", "first")
    # The listener is stuck in write(); the thread that logged has returned.
    writer.join(5)
    assert not writer.is_alive()

    # Another thread's line is queued and the call returns without touching
    # the stream.
    other = threading.Thread(target=log.info, args=("second",), name="other")
    other.start()
    other.join(5)
    assert not other.is_alive()
    assert stream.getvalue() == ""

    stream.gate.set()
    assert logs.flush(5)
    assert stream.getvalue() == "writer first\nother second\n"
    assert stream.writes == 2


def test_logs_flush_waits_for_the_write_in_progress():
    stream, logs, _, writer = stuck_writer("test.logs.flush", "last words")
    flushed = threading.Event()
    flusher = threading.Thread(target=lambda: (logs.flush(), flushed.set()))
    flusher.start()
    assert not flushed.wait(0.2)
    stream.gate.set()
    assert flushed.wait(5)
    assert stream.getvalue() == "writer last words\n"
    writer.join(5)
    flusher.join(5)


def test_logs_stop_writes_every_queued_line_and_joins_the_listener():
    stream, logs, log, writer = stuck_writer("test.logs.stop", "first")
    log.info("queued")
    stopped = threading.Event()
    stopper = threading.Thread(target=lambda: (logs.stop(), stopped.set()))
    stopper.start()
    assert not stopped.wait(0.2)
    stream.gate.set()
    assert stopped.wait(5)
    assert stream.getvalue() == "writer first\nMainThread queued\n"
    assert not [t for t in threading.enumerate() if t.name.endswith("(_monitor)")]
    # After stop, a line is written by the thread that logs it.
    log.info("late")
    assert stream.getvalue().endswith("MainThread late\n")
    writer.join(5)
    stopper.join(5)


def test_logs_a_failing_stream_is_reported_and_does_not_wedge_the_handler(capsys, monkeypatch):
    class Broken(io.StringIO):
        fail = True

        def write(self, text):
            if self.fail:
                raise BrokenPipeError("reader went away")
            return super().write(text)

    monkeypatch.setattr(logging, "raiseExceptions", True)
    stream = Broken()
    logs, log = logger_with(stream, "test.logs.broken")
    log.info("lost")
    assert logs.flush(5)
    assert "BrokenPipeError" in capsys.readouterr().err
    stream.fail = False
    log.info("delivered")
    assert logs.flush(5)
    assert stream.getvalue() == "MainThread delivered\n"


def test_logs_secrets_are_redacted_in_every_line():
    stream = io.StringIO()
    logs, log = logger_with(stream, "test.logs.secret")
    set_secrets(["sk-upstream-secret-123"])
    try:
        log.info("upstream said: invalid api key sk-upstream-secret-123")
        assert logs.flush(5)
    finally:
        set_secrets([])
    assert stream.getvalue() == "MainThread upstream said: invalid api key [redacted]\n"


def test_logs_a_line_logged_while_queueing_follows_without_deadlock():
    """A signal handler that logs runs in the thread that may be queueing."""

    class Reentrant(queue.SimpleQueue):
        def put_nowait(self, item):
            super().put_nowait(item)
            if getattr(item, "msg", None) == "outer":
                log.info("inner")

    stream = io.StringIO()
    logs, log = logger_with(stream, "test.logs.reentrant", Reentrant())
    log.info("outer")
    assert logs.flush(5)
    assert stream.getvalue() == "MainThread outer\nMainThread inner\n"


def test_logs_a_line_logged_by_the_writing_thread_itself_follows():
    class LogsWhileWriting(io.StringIO):
        def write(self, text):
            if "outer" in text:
                log.info("inner")
            return super().write(text)

    stream = LogsWhileWriting()
    logs, log = logger_with(stream, "test.logs.writer-logs")
    log.info("outer")
    assert logs.flush(5)
    assert logs.flush(5)  # "inner" was queued while "outer" was being written
    lines = stream.getvalue().splitlines()
    assert lines[0] == "MainThread outer" and lines[1].endswith(" inner") and len(lines) == 2


SIGNAL_WHILE_QUEUEING = r"""
import io, logging, queue, signal, sys
from ocproxy.logs import LogQueue

class SignalOnPut(queue.SimpleQueue):
    def put_nowait(self, item):
        super().put_nowait(item)
        if getattr(item, "msg", None) == "outer":
            signal.raise_signal(signal.SIGUSR1)  # runs the handler inside the queueing handler's lock

stream = io.StringIO()
log = logging.getLogger("reentrant")
log.setLevel(logging.INFO)
logs = LogQueue(stream, "%(message)s", logger=log, records=SignalOnPut())
logs.start()
signal.signal(signal.SIGUSR1, lambda *_: log.info("from the signal handler"))
log.info("outer")
logs.stop()
sys.stdout.write(stream.getvalue())
"""


def test_logs_a_signal_handler_that_logs_while_a_line_is_queued_does_not_deadlock():
    done = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_QUEUEING], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "outer\nfrom the signal handler\n"


def test_logs_an_interrupted_log_call_does_not_stop_the_next_line():
    class InterruptedOnce(queue.SimpleQueue):
        interrupted = False

        def put_nowait(self, item):
            if not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt
            super().put_nowait(item)

    stream = io.StringIO()
    logs, log = logger_with(stream, "test.logs.interrupted", InterruptedOnce())
    try:
        log.info("interrupted")
    except KeyboardInterrupt:
        pass
    log.info("next")
    assert logs.flush(5)
    assert stream.getvalue() == "MainThread next\n"
