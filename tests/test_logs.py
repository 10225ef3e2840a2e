"""The log handler: whole lines, in order, none waiting behind a slow write."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading

from ocproxy.logs import RedactingFormatter, SharedWriterHandler, set_secrets


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


def logger_with(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler.setFormatter(RedactingFormatter("%(threadName)s %(message)s"))
    return logger


def stuck_writer(name: str, line: str):
    """A handler whose thread "writer" is inside a write that blocks until
    ``stream.gate`` opens, having logged ``line``."""
    stream = GatedStream()
    handler = SharedWriterHandler(stream)
    log = logger_with(handler, name)
    writer = threading.Thread(target=log.info, args=(line,), name="writer")
    writer.start()
    assert stream.entered.wait(10)
    return stream, handler, log, writer


def test_logs_many_threads_every_line_whole_and_in_each_threads_order():
    stream = io.StringIO()
    log = logger_with(SharedWriterHandler(stream), "test.logs.many")
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

    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * 300
    for n in range(8):
        mine = [line for line in lines if line.startswith(f"w{n} ")]
        assert mine == [f"w{n} worker={n} line={i} {'x' * 200}" for i in range(300)]


def test_logs_a_thread_never_waits_for_another_threads_write_and_its_line_follows():
    stream, _, log, writer = stuck_writer("test.logs.gated", "first")

    # The writer is stuck in write(); another thread's line is queued and
    # the call returns without touching the stream.
    other = threading.Thread(target=log.info, args=("second",), name="other")
    other.start()
    other.join(5)
    assert not other.is_alive()
    assert stream.getvalue() == ""

    stream.gate.set()
    writer.join(5)
    assert stream.getvalue() == "writer first\nother second\n"
    assert stream.writes == 2


def test_logs_flush_waits_for_the_write_in_progress():
    stream, handler, _, writer = stuck_writer("test.logs.flush", "last words")
    flushed = threading.Event()
    flusher = threading.Thread(target=lambda: (handler.flush(), flushed.set()))
    flusher.start()
    assert not flushed.wait(0.2)
    stream.gate.set()
    assert flushed.wait(5)
    assert stream.getvalue() == "writer last words\n"
    writer.join(5)
    flusher.join(5)


def test_logs_a_failing_stream_is_reported_and_does_not_wedge_the_handler(capsys, monkeypatch):
    class Broken(io.StringIO):
        fail = True

        def write(self, text):
            if self.fail:
                raise BrokenPipeError("reader went away")
            return super().write(text)

    monkeypatch.setattr(logging, "raiseExceptions", True)
    stream = Broken()
    log = logger_with(SharedWriterHandler(stream), "test.logs.broken")
    log.info("lost")
    assert "BrokenPipeError" in capsys.readouterr().err
    stream.fail = False
    log.info("delivered")
    assert stream.getvalue() == "MainThread delivered\n"


def test_logs_9_secrets_are_redacted_by_the_shared_writer():
    stream = io.StringIO()
    log = logger_with(SharedWriterHandler(stream), "test.logs.secret")
    set_secrets(["sk-upstream-secret-123"])
    try:
        log.info("upstream said: invalid api key sk-upstream-secret-123")
    finally:
        set_secrets([])
    assert stream.getvalue() == "MainThread upstream said: invalid api key [redacted]\n"


def test_logs_a_line_logged_while_writing_follows_without_deadlock():
    """A signal handler that logs runs in the thread that may be writing."""

    class Reentrant(io.StringIO):
        def write(self, text):
            if "outer" in text:
                log.info("inner")
            return super().write(text)

    stream = Reentrant()
    log = logger_with(SharedWriterHandler(stream), "test.logs.reentrant")
    log.info("outer")
    assert stream.getvalue() == "MainThread outer\nMainThread inner\n"


SIGNAL_WHILE_QUEUEING = r"""
import io, logging, signal, sys
from ocproxy.logs import SharedWriterHandler

class SignalOnAppend(list):
    def append(self, item):
        super().append(item)
        if item == "outer":
            signal.raise_signal(signal.SIGUSR1)  # runs the handler inside the queueing lock

stream = io.StringIO()
handler = SharedWriterHandler(stream)
handler._pending = SignalOnAppend()
log = logging.getLogger("reentrant")
log.addHandler(handler)
log.setLevel(logging.INFO)
signal.signal(signal.SIGUSR1, lambda *_: log.info("from the signal handler"))
log.info("outer")
sys.stdout.write(stream.getvalue())
"""


def test_logs_a_signal_handler_that_logs_while_a_line_is_queued_does_not_deadlock():
    done = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_QUEUEING], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "outer\nfrom the signal handler\n"


def test_logs_an_interrupted_write_hands_the_job_to_the_next_line():
    class InterruptedOnce(io.StringIO):
        interrupted = False

        def write(self, text):
            if not self.interrupted:
                self.interrupted = True
                raise KeyboardInterrupt
            return super().write(text)

    stream = InterruptedOnce()
    log = logger_with(SharedWriterHandler(stream), "test.logs.interrupted")
    try:
        log.info("interrupted")
    except KeyboardInterrupt:
        pass
    log.info("next")
    assert stream.getvalue() == "MainThread next\n"
