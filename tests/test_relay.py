"""What a failed streamed attempt becomes (client gone / stream broken /
fall back), as a table, then through ``StreamRelay.attempt`` with a fake
upstream client and a fake writer: no socket, no thread."""

from __future__ import annotations

import time

import pytest

from ocproxy.config import ModelConfig
from ocproxy.errors import ClientGone, StreamIdle, UpstreamConnectionError, UpstreamHTTPError
from ocproxy.relay import Call, Next, Services, StreamBroken, StreamRelay, after_failure, copy_stream
from ocproxy.request import parse_messages_request
from ocproxy.routing.chain import build_route
from ocproxy.upstream.attempt import CancelScope
from ocproxy.upstream.identity import KeyRotator
from tests.fakes import chat_text_chunks
from tests.fake_client import FakeUpstreamClient, config, sse_chunks


@pytest.mark.parametrize("client_gone, payload_written, expected", [
    (False, False, Next.FALL_BACK),
    (False, True, Next.STREAM_BROKEN),
    (True, False, Next.CLIENT_GONE),
    (True, True, Next.CLIENT_GONE),
])
def test_after_failure(client_gone, payload_written, expected):
    assert after_failure(client_gone=client_gone, payload_written=payload_written) is expected


class FakeWriter:
    """The part of ``StreamWriter`` the relay uses, with switches a test flips."""

    def __init__(self, accept: bool = True):
        self.accept = accept  # False: the client left, writes are refused
        self.written: list[bytes] = []
        self.finished: list[bytes] | None = None
        self.pauses: list[bool] = []
        self.sources: list[str] = []

    def set_source(self, name: str) -> None:
        self.sources.append(name)

    def write(self, frames, head=None) -> bool:
        if not self.accept:
            return False
        if not self.written:
            self.head = head  # the first payload decides the response head
        self.written += frames
        return True

    def finish(self, frames=()) -> None:
        self.finished = list(frames)

    def pause(self, paused: bool) -> None:
        self.pauses.append(paused)

    @property
    def gone(self) -> bool:
        return not self.accept

    @property
    def payload_written(self) -> bool:
        return bool(self.written)


def relay_for(fake: FakeUpstreamClient, writer: FakeWriter, scope: CancelScope | None = None) -> StreamRelay:
    cfg = config("model-a", "model-b")
    req = parse_messages_request(b'{"model":"m","max_tokens":5,"stream":true,'
                                 b'"messages":[{"role":"user","content":"hi"}]}')
    call = Call(cfg, req, {}, "req-1", build_route(req, cfg, True), time.monotonic())
    services = Services(fake, KeyRotator(), None, None, None)  # breakers, metrics, watch: unused by attempt
    return StreamRelay(call, services, writer, scope or CancelScope())


MODEL = ModelConfig(model_id="model-a")
HELLO = sse_chunks(*chat_text_chunks(["hello"]))


def test_attempt_writes_frames_and_finishes():
    fake, writer = FakeUpstreamClient(model_a=[HELLO]), FakeWriter()
    relay_for(fake, writer).attempt(MODEL)
    assert writer.written and writer.finished
    assert b"message_stop" in writer.finished[-1]
    assert fake.closed_streams == 1


def test_failure_before_payload_falls_back():
    fake, writer = FakeUpstreamClient(model_a=[UpstreamHTTPError(503, "busy")]), FakeWriter()
    with pytest.raises(UpstreamHTTPError):
        relay_for(fake, writer).attempt(MODEL)
    assert not writer.written and writer.finished is None


def test_failure_after_payload_is_a_broken_stream():
    fake, writer = FakeUpstreamClient(model_a=[HELLO[:2] + [StreamIdle("quiet")]]), FakeWriter()
    with pytest.raises(StreamBroken) as info:
        relay_for(fake, writer).attempt(MODEL)
    assert info.value.client_message == "stream idle after SSE payload started"
    assert fake.closed_streams == 1


def test_failure_after_the_client_left_is_client_gone():
    scope = CancelScope()
    scope.cancel()
    fake, writer = FakeUpstreamClient(model_a=[UpstreamConnectionError("aborted")]), FakeWriter()
    with pytest.raises(ClientGone):
        relay_for(fake, writer, scope).attempt(MODEL)


def test_a_refused_write_stops_the_copy_and_closes_the_upstream():
    fake, writer = FakeUpstreamClient(model_a=[HELLO]), FakeWriter(accept=False)
    with pytest.raises(ClientGone):
        relay_for(fake, writer).attempt(MODEL)
    assert fake.closed_streams == 1 and writer.finished is None


class _Passthrough:
    """A translator that stops at its first chunk (its dialect pauses the heartbeat)."""

    def __init__(self):
        self.done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        self.done = True
        return [chunk]

    def close(self) -> list[bytes]:
        return [b"end"]


def test_copy_stream_pauses_the_heartbeat_around_a_passthrough_and_stops_when_done():
    class Upstream(list):
        closed = False

        def close(self):
            self.closed = True

    upstream, writer = Upstream([b"one", b"two"]), FakeWriter()
    copy_stream(upstream, _Passthrough(), writer, pauses_heartbeat=True)
    assert writer.written == [b"one"] and writer.finished == [b"end"]
    assert writer.pauses == [True, False] and upstream.closed


def test_in_flight_counts_whole_requests_and_refuses_new_work_once_closing():
    from ocproxy.errors import ProxyError
    from ocproxy.inflight import InFlight

    inflight = InFlight()
    with inflight.whole():
        assert not inflight.idle()
    assert inflight.idle()
    inflight.close(timeout=0.1)
    with pytest.raises(ProxyError) as info:
        with inflight.whole():
            pass
    assert info.value.status == 529
    with pytest.raises(ProxyError):
        inflight.add_stream(object(), CancelScope())
