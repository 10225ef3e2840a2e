"""The client-gone probe on a socket pair: no server, no ticker thread."""

from __future__ import annotations

import socket

from ocproxy.clientwatch import ClientWatch, gone_probe, peer_closed
from ocproxy.upstream.attempt import CancelScope


class FakeTicker:
    def __init__(self):
        self.watches = set()

    def watch(self, item):
        self.watches.add(item)

    def unwatch(self, item):
        self.watches.discard(item)


def test_probe_sees_the_peer_close_but_not_a_pipelined_request():
    ours, theirs = socket.socketpair()
    try:
        gone = gone_probe({"werkzeug.socket": ours})
        assert not gone()
        theirs.sendall(b"GET /next HTTP/1.1\r\n")  # readable with data: still there
        assert not gone() and not peer_closed(ours)
        assert ours.recv(100)
        theirs.close()
        assert gone()
    finally:
        ours.close()


def test_without_a_socket_the_client_is_assumed_present():
    assert gone_probe({})() is False
    assert gone_probe({"werkzeug.socket": "not a socket"})() is False


def test_watch_cancels_only_the_request_whose_client_left_and_unregisters_when_empty():
    ticker = FakeTicker()
    watch = ClientWatch(ticker)
    (a, a_peer), (b, b_peer) = socket.socketpair(), socket.socketpair()
    scope_a, scope_b = CancelScope(), CancelScope()
    try:
        watch.add(a, scope_a)
        watch.add(b, scope_b)
        assert ticker.watches == {watch}
        watch.tick(0.0)
        assert not scope_a.cancelled and not scope_b.cancelled
        a_peer.close()
        watch.tick(0.0)
        assert scope_a.cancelled and not scope_b.cancelled
        watch.discard(a)
        assert ticker.watches == {watch}
        watch.discard(b)
        assert ticker.watches == set()
    finally:
        for s in (a, b, b_peer):
            s.close()
