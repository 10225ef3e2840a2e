"""Whole answers over pooled http.client connections, without requests.

A non-streaming attempt through requests and urllib3 spent about 30 % of
its CPU in their general machinery: prepared requests, cookie jars, retry
objects, pool queues, header dicts (py-spy; side by side under wrk at 16
connections, 878 -> 1,223 req/s). An answer read whole needs none of it.
So an origin reached directly (no proxy, no credentials in its URL) gets
this path for whole answers. Streams keep requests, and so does whatever
this path does not handle: a redirect is sent again through requests.

The rules are requests' rules as :mod:`ocproxy.upstream.client` uses them:
the same headers, the same CA bundle, a connect timeout of at most 30 s,
every read bounded by the attempt, the same errors for the same failures.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
import zlib

import certifi

from ocproxy.errors import AttemptFailure, UpstreamConnectionError, UpstreamHTTPError
from ocproxy.upstream.attempt import Attempt
from ocproxy.upstream.connection import MAX_ERROR_BODY, Tracked, connection_failed, current, request_failed, too_large

#: One read asks for this much; most whole answers take one read.
READ_SIZE = 1 << 16


class _HTTPConnection(Tracked, http.client.HTTPConnection):
    pass


class _HTTPSConnection(Tracked, http.client.HTTPSConnection):
    pass


class Redirected(Exception):
    """The upstream answered 3xx: requests follows redirects, this path does not."""


class DirectPool:
    """Idle kept connections to one origin, newest first.

    ``_lock`` guards ``_idle``; a connection in use belongs to its thread.
    """

    def __init__(self, scheme: str, host: str, port: int | None, maxsize: int, ca_bundle: str | None):
        self._scheme, self._host, self._port = scheme, host, port
        self._maxsize = maxsize
        self._context = _tls_context(ca_bundle) if scheme == "https" else None
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []

    def _get(self, connect_timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if not _dropped(conn):
                return conn
            conn.close()
        if self._context is not None:
            return _HTTPSConnection(self._host, self._port, timeout=connect_timeout, context=self._context)
        return _HTTPConnection(self._host, self._port, timeout=connect_timeout)

    def _put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def post(self, path: str, headers: dict, body: bytes, attempt: Attempt, max_bytes: int) -> bytes:
        """The whole body of a 2xx answer; raises the attempt's failures as
        the requests path does, or :class:`Redirected`."""
        wait = attempt.next_wait()
        conn = self._get(min(wait, 30.0))
        current.attempt, current.read_timeout = attempt, wait
        try:
            conn.request("POST", path, body, headers)
            attempt.set_read_timeout(attempt.next_wait())
            response = conn.getresponse()
        except BaseException as exc:
            conn.close()
            attempt.check()
            if isinstance(exc, TimeoutError):
                raise attempt.timeout_failure() from None
            if isinstance(exc, (OSError, http.client.HTTPException)):
                raise connection_failed(exc) from None
            if isinstance(exc, ValueError):  # a header http.client refuses to send
                raise request_failed(exc) from None
            raise
        finally:
            current.attempt = current.read_timeout = None
        keep = False
        try:
            attempt.check()
            if 300 <= response.status < 400:
                raise Redirected(response.status)
            if response.status < 400:
                data = _decoded(response.getheader("Content-Encoding"), _read(response, attempt, max_bytes), max_bytes)
                keep = not response.will_close
                return data
            try:
                text = _decoded(response.getheader("Content-Encoding"), _read(response, attempt, MAX_ERROR_BODY),
                                MAX_ERROR_BODY).decode("utf-8", "replace")
            except AttemptFailure:
                text = ""
            raise UpstreamHTTPError(response.status, text, response.getheader("Retry-After"))
        finally:
            response.close()  # read to its end, yet http.client counts it open until closed
            if keep:
                self._put(conn)
            else:
                conn.close()


def _read(response: http.client.HTTPResponse, attempt: Attempt, limit: int) -> bytes:
    """The body, each read bounded by the attempt; past ``limit`` is an error."""
    chunks = []
    size = 0
    while True:
        attempt.set_read_timeout(attempt.next_wait())
        try:
            data = response.read1(READ_SIZE)
        except TimeoutError:
            attempt.check()
            raise attempt.timeout_failure() from None
        except (OSError, http.client.HTTPException) as exc:
            attempt.check()
            raise UpstreamConnectionError(f"upstream read failed: {exc!r}", reason="read failed") from None
        attempt.check()  # an abort shows up as EOF: never mistake it for success
        if not data:
            if response.length:  # read1 ends quietly where read would raise
                short = http.client.IncompleteRead(b"".join(chunks), response.length)
                raise UpstreamConnectionError(f"upstream read failed: {short!r}", reason="read failed")
            return b"".join(chunks)
        size += len(data)
        if size > limit:
            raise too_large()
        chunks.append(data)


def _decoded(encoding: str | None, body: bytes, limit: int) -> bytes:
    """The body as requests would hand it over: gzip and deflate undone
    (an upstream may compress though we ask for identity), bounded."""
    kind = (encoding or "identity").strip().lower()
    if kind in ("", "identity"):
        return body
    if kind in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, kind, limit)
    if kind == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, kind, limit)  # zlib-wrapped, as the standard says
        except UpstreamConnectionError as exc:
            if exc.reason != "read failed":
                raise
            return _inflate(body, -zlib.MAX_WBITS, kind, limit)  # raw, as some servers send it
    raise UpstreamConnectionError(f"upstream sent an unsupported content-encoding: {kind[:40]}",
                                  refused_or_reset=False, reason="read failed")


def _inflate(body: bytes, wbits: int, kind: str, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:  # a gzip body may hold several members, one after another
        decoder = zlib.decompressobj(wbits)
        try:
            part = decoder.decompress(body, limit + 1 - size)
        except zlib.error as exc:
            raise _unreadable(kind, str(exc)) from None
        size += len(part)
        if size > limit:
            raise too_large()
        if not decoder.eof:
            raise _unreadable(kind, "it ends early")
        parts.append(part)
        body = decoder.unused_data
        if not body or kind == "deflate":
            return b"".join(parts)


def _unreadable(kind: str, why: str) -> UpstreamConnectionError:
    return UpstreamConnectionError(f"upstream read failed: bad {kind} body: {why}", refused_or_reset=False,
                                   reason="read failed")


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle kept connection the upstream closed (or wrote to) is unusable."""
    sock = conn.sock
    if sock is None:
        return True
    poller = select.poll()  # not select(): descriptors past 1023 are common with many streams open
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verification as requests does it: its CA bundle (certifi's, or the
    one REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE names), host names checked."""
    if ca_bundle is None:
        ca_bundle = certifi.where()
    if os.path.isdir(ca_bundle):
        context = ssl.create_default_context(capath=ca_bundle)
    else:
        context = ssl.create_default_context(cafile=ca_bundle)
    context.set_alpn_protocols(["http/1.1"])
    return context
