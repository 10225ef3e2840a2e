"""The writer, the heartbeat ticker and the WSGI iterable."""

from __future__ import annotations

import threading
import time

import pytest

from ocproxy import streaming
from ocproxy.streaming import Heartbeat, StreamResponse, StreamWriter
from ocproxy.translate.sse import KEEPALIVE


def drain(writer: StreamWriter) -> bytes:
    out = []
    while True:
        data = writer.take()
        if data is None:
            return b"".join(out)
        out.append(data)


def test_no_keepalive_before_the_head_is_decided():
    writer = StreamWriter(interval=0.01)
    writer.keepalive(time.monotonic() + 10)  # waiting for the first payload: headers not out, nothing sent
    assert writer.head is None
    head = ("200 OK", [("x-ocproxy-model", "m")])
    writer.write([b"event: x\ndata: {}\n\n"], head)
    assert writer.head == head
    assert writer.take() == b"event: x\ndata: {}\n\n"
    writer.keepalive(time.monotonic() + 1)
    writer.finish()
    assert drain(writer) == KEEPALIVE


def test_a_failure_before_the_head_is_a_whole_answer_after_it_an_error_event():
    whole = (("429 Too Many Requests", [("Retry-After", "30")]), b'{"type":"error"}')
    before = StreamWriter(interval=10)
    before.fail(whole, [b"event: error\n\n"])
    assert before.head == whole[0]
    assert drain(before) == b'{"type":"error"}'
    after = StreamWriter(interval=10)
    after.write([b"event: a\n\n"])
    after.fail(whole, [b"event: error\n\n"])
    assert after.head[0] == "200 OK"
    assert drain(after) == b"event: a\n\nevent: error\n\n"


def test_ten_threads_hundred_lines_each_stay_intact():
    writer = StreamWriter(interval=0.001)
    heartbeat = Heartbeat()
    heartbeat.add(writer)  # keep-alives race the writers the whole time

    def produce(t):
        for i in range(100):
            assert writer.write([f"event: t\ndata: {{\"t\":{t},\"i\":{i}}}\n\n".encode()])

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(10)]
    result = []
    reader = threading.Thread(target=lambda: result.append(drain(writer)))
    reader.start()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    writer.finish()
    reader.join(5)
    heartbeat.stop()
    frames = [f for f in result[0].split(b"\n\n") if f]
    events = [f for f in frames if f != b":keepalive"]
    assert len(events) == 1000
    assert len(set(events)) == 1000
    for frame in events:
        assert frame.startswith(b"event: t\ndata: {")


def test_nothing_after_the_terminal_frame():
    writer = StreamWriter(interval=0.001)
    writer.finish([b"event: message_stop\ndata: {}\n\n"])
    assert writer.write([b"late"]) is False
    writer.keepalive(time.monotonic() + 10)
    assert drain(writer).endswith(b"event: message_stop\ndata: {}\n\n")


def test_keepalives_do_not_count_as_payload():
    writer = StreamWriter(interval=0.01)
    writer.keepalive(time.monotonic() + 1)
    assert writer.payload_written is False
    writer.write([b"event: a\ndata: {}\n\n"])
    assert writer.payload_written is True


def test_paused_writer_gets_no_keepalive():
    writer = StreamWriter(interval=0.01)
    writer.write([b"a"])
    assert writer.take() == b"a"
    writer.pause(True)
    writer.keepalive(time.monotonic() + 5)
    writer.finish([b"x"])
    assert drain(writer) == b"x"


def test_keepalive_only_after_one_silent_interval():
    writer = StreamWriter(interval=10)
    writer.write([b"a"])
    writer.take()
    writer.keepalive(time.monotonic() + 1)  # 1 s of 10: nothing
    writer.keepalive(time.monotonic() + 11)  # past the interval: one
    writer.finish()
    assert drain(writer) == KEEPALIVE


def test_host_not_taking_frames_marks_client_gone(monkeypatch):
    monkeypatch.setattr(streaming, "WRITE_STALL_SECONDS", 0.02)
    writer = StreamWriter(interval=0.001)
    called = []
    writer.on_gone(lambda: called.append(True))
    writer.write([b"a"])  # never taken
    writer.keepalive(time.monotonic() + 1)
    assert writer.gone and called == [True]
    assert writer.write([b"x"]) is False


def test_close_joins_the_pump_and_unregisters_the_heartbeat():
    heartbeat = Heartbeat()
    writer = StreamWriter(interval=0.01)
    released = threading.Event()
    cancelled = threading.Event()

    def pump(w):
        w.write([b"a"])
        while not cancelled.is_set():
            time.sleep(0.005)
        released.set()

    response = StreamResponse(writer, pump, heartbeat, cancelled.set)
    assert next(response) == b"a"
    assert heartbeat.open_streams == 1
    response.close()  # the client went away
    assert released.is_set()
    assert heartbeat.open_streams == 0
    heartbeat.stop()
    assert not any(t.name == "ocproxy-heartbeat" for t in threading.enumerate())


def test_heartbeat_stops_writing_to_a_finished_stream():
    heartbeat = Heartbeat()
    writer = StreamWriter(interval=0.005)
    writer.write([b"a"])
    heartbeat.add(writer)
    time.sleep(0.05)
    writer.finish([b"END"])
    time.sleep(0.05)
    heartbeat.discard(writer)
    heartbeat.stop()
    out = drain(writer)
    assert out.endswith(b"END")
    assert out.count(KEEPALIVE) >= 2


def test_pump_crash_still_ends_the_response():
    heartbeat = Heartbeat()
    writer = StreamWriter(interval=1)

    def pump(w):
        raise RuntimeError("boom")

    started = []
    response = StreamResponse(writer, pump, heartbeat, lambda: None, start_response=lambda *head: started.append(head))
    assert b"internal proxy error" in b"".join(response)
    assert started[0][0] == "500 Internal Server Error"
    response.close()
    heartbeat.stop()


@pytest.mark.parametrize("interval_ms, expected", [(0, 3.0), (-5, 3.0), (250, 0.25)])
def test_non_positive_interval_falls_back_to_default(interval_ms, expected):
    from ocproxy.config import Config

    assert Config(heartbeat_interval_ms=interval_ms).heartbeat_interval == expected


class _Watch:
    def __init__(self, interval: float):
        self.interval = interval
        self.ticked = threading.Event()

    def tick(self, now: float) -> None:
        self.ticked.set()


def test_a_watch_on_an_idle_ticker_wakes_it():
    heartbeat = Heartbeat()
    heartbeat.start()
    try:
        time.sleep(0.05)  # the ticker has nothing to do and waits until woken
        watch = _Watch(0.05)
        heartbeat.watch(watch)
        assert watch.ticked.wait(5)
        heartbeat.unwatch(watch)
    finally:
        heartbeat.stop()


def test_watches_the_ticker_already_serves_do_not_wake_it():
    """One watch per non-streaming request: waking the ticker for each one
    cost two context switches a request."""
    rounds = []

    def clock() -> float:
        rounds.append(1)  # the ticker reads the clock once per round
        return time.monotonic()

    heartbeat = Heartbeat(clock=clock)
    standing = _Watch(0.2)
    heartbeat.watch(standing)
    try:
        assert standing.ticked.wait(5)
        before = len(rounds)
        for _ in range(200):
            item = _Watch(0.2)
            heartbeat.watch(item)
            heartbeat.unwatch(item)
            time.sleep(0.001)  # a request's upstream call; the ticker gets to run
        assert len(rounds) - before < 50  # ~1 a 0.2 s tick; once one per watch
        urgent = _Watch(0.001)
        heartbeat.watch(urgent)  # shorter than the ticker's wait: it is woken
        assert urgent.ticked.wait(5)
    finally:
        heartbeat.stop()


# -- direct delivery: the host lends its connection (ocproxy serve) ----------

from ocproxy.http1 import _LentConnection  # noqa: E402


class _Lent:
    """A real socket pair: the writer sends through ``_LentConnection`` on
    one end, the test reads the other. Chunk framing is the host's: here
    frames go out as they are."""

    def __init__(self, sndbuf: int | None = None):
        import socket

        self.ours, self.theirs = socket.socketpair()
        if sndbuf:
            self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            self.theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
        self.heads = []
        self.sink = _LentConnection(self.ours, lambda status, headers: self.heads.append((status, headers)),
                                    lambda data: data)

    def read_to_eof(self) -> bytes:
        out = []
        while chunk := self.theirs.recv(65536):
            out.append(chunk)
        return b"".join(out)

    def read_all(self) -> bytes:
        self.ours.close()
        try:
            return self.read_to_eof()
        finally:
            self.theirs.close()


def test_direct_delivery_sends_each_frame_as_it_is_written_with_the_head_once():
    lent = _Lent()
    writer = StreamWriter(interval=10)
    writer.deliver_to(lent.sink)
    head = ("200 OK", [("x-ocproxy-model", "m")])
    assert writer.write([b"event: a\n\n"], head)
    assert lent.theirs.recv(100) == b"event: a\n\n"  # already on the wire, no host iteration
    writer.keepalive(time.monotonic() + 11)
    assert writer.write([b"event: b\n\n"])
    writer.finish([b"event: stop\n\n"])
    assert writer.flush()
    assert lent.read_all() == KEEPALIVE + b"event: b\n\nevent: stop\n\n"
    assert lent.heads == [head]


def test_a_keepalive_never_waits_on_a_client_that_stopped_reading():
    """The ticker serves every stream: a keep-alive to a full socket keeps
    what did not fit and sends it, whole and in order, before the next frame."""
    import socket

    lent = _Lent(sndbuf=4096)
    writer = StreamWriter(interval=1)
    writer.deliver_to(lent.sink)
    writer.write([b"x" * 100], ("200 OK", []))
    lent.ours.setblocking(False)
    sent = 100
    try:  # fill both socket buffers
        while True:
            sent += lent.ours.send(b"y" * 65536)
    except BlockingIOError:
        pass
    lent.ours.setblocking(True)
    writer.keepalive(time.monotonic() + 2)  # returns: the ticker did not wait
    assert not writer.gone and lent.sink._kept  # the socket was full: the keep-alive waits its turn
    got = []
    reader = threading.Thread(target=lambda: got.append(lent.read_to_eof()))
    reader.start()
    writer.finish([b"event: stop\n\n"])
    assert writer.flush()  # the request thread's last send: waits for the client
    lent.ours.shutdown(socket.SHUT_WR)
    reader.join()
    lent.read_all()
    data = got[0]
    assert len(data) == sent + len(KEEPALIVE) + len(b"event: stop\n\n")
    assert data.endswith(KEEPALIVE + b"event: stop\n\n")


def test_a_send_blocked_on_a_client_that_takes_nothing_fails_once_it_stalled(monkeypatch):
    """The writing thread waits for the client; the ticker finds the stall,
    marks the client gone, and shuts the connection so that wait ends."""
    monkeypatch.setattr(streaming, "WRITE_STALL_SECONDS", 0.5)
    lent = _Lent(sndbuf=4096)
    writer = StreamWriter(interval=0.1)
    cancelled = []
    writer.on_gone(lambda: cancelled.append(True))
    writer.deliver_to(lent.sink)
    writer.write([b"x"], ("200 OK", []))
    results = []
    sending = threading.Thread(target=lambda: results.append(writer.write([b"y" * (16 << 20)])))
    sending.start()
    heartbeat = Heartbeat()
    heartbeat.add(writer)
    try:
        sending.join(30)
    finally:
        heartbeat.stop()
    assert not sending.is_alive()
    assert results == [False] and writer.gone and cancelled == [True]
    lent.read_all()


def test_run_here_runs_the_pump_in_the_calling_thread():
    heartbeat = Heartbeat()
    lent = _Lent()
    writer = StreamWriter(interval=10)
    pumped_in = []

    def pump(w):
        pumped_in.append(threading.current_thread())
        w.write([b"event: a\n\n"])
        w.finish([b"event: stop\n\n"])

    response = StreamResponse(writer, pump, heartbeat, lambda: None)
    try:
        assert response.run_here(lent.sink) is True
        assert pumped_in == [threading.current_thread()]
        response.close()
        assert heartbeat.open_streams == 0
        assert lent.read_all() == b"event: a\n\nevent: stop\n\n"
        assert lent.heads == [streaming.OK_HEAD]
    finally:
        heartbeat.stop()


def test_run_here_says_so_when_the_client_left_before_anything_was_sent():
    heartbeat = Heartbeat()
    lent = _Lent()
    writer = StreamWriter(interval=10)
    response = StreamResponse(writer, lambda w: w.mark_gone(), heartbeat, lambda: None)
    try:
        assert response.run_here(lent.sink) is False
        response.close()
        assert lent.read_all() == b"" and lent.heads == []
    finally:
        heartbeat.stop()
