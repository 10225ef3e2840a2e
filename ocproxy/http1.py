"""One HTTP/1.1 connection under ``ocproxy serve``: requests read with strict
framing, kept open between requests (keep-alive) with an idle bound and a
request cap, and closed cleanly when a body was not read to its end.

werkzeug's own handler answers every request with ``Connection: close`` and
then drains what the client still sends; here a body is never read past its
end, so a connection can carry the next request.
"""

from __future__ import annotations

import email.utils
import io
import logging
import select
import socket
import struct
import time

from werkzeug.exceptions import ClientDisconnected, InternalServerError
from werkzeug.serving import WSGIRequestHandler

log = logging.getLogger("ocproxy.server")

#: How long a kept connection may wait for its next request, and how many
#: requests one connection may carry before the answer says ``close``.
KEEPALIVE_IDLE_SECONDS = 60.0
MAX_REQUESTS_PER_CONNECTION = 1000
#: The longest a client may stay silent while we read from it, or take
#: nothing while we write to it, before its connection is dropped.
CLIENT_SILENCE_SECONDS = 300.0


class _SizedBody(io.RawIOBase):
    """A request body with a ``Content-Length``: never reads past it (the
    next request on a kept connection starts right after), and knows whether
    the application read all of it (only then may the connection be kept)."""

    def __init__(self, rfile, length: int):
        self._rfile = rfile
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buf)[:self.left]
        n = self._rfile.readinto(view)
        if not n:
            raise ClientDisconnected()
        self.left -= n
        return n


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, bounded by ``deadline`` (a monotonic time,
    or None) when one is set: a request must arrive whole, headers and body,
    by then, however it trickles in; ``gap`` (seconds) bounds each silent
    wait in any case. Past either a read raises ``TimeoutError``.

    The socket is blocking, without a Python timeout: CPython polls before
    every recv on a socket that has one, and each poll lets go of the GIL,
    which under concurrent requests hands it to another thread and costs
    context switches. So a read first takes what is already there
    (``MSG_DONTWAIT``, one syscall) and polls, with the bound, only when
    nothing is."""

    def __init__(self, sock: socket.socket, gap: float):
        self._sock = sock
        self.deadline: float | None = None
        self._gap = gap
        self._poller = select.poll()  # poll, not select: descriptors past 1023 are common here
        self._poller.register(sock, select.POLLIN)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while True:
            wait = self._gap
            if self.deadline is not None:
                wait = min(wait, self.deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError("request not received in time")
            try:
                return self._sock.recv_into(buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            if not self._poller.poll(wait * 1000):
                raise TimeoutError("request not received in time")


def framing_error(headers) -> str | None:
    """Why a request's framing is refused, or None. Two ways to say where a
    body ends, or a coding other than plain ``chunked``, would let a front
    proxy and this server disagree on where the next request starts
    (request smuggling): 400 and the connection is closed."""
    codings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if codings and lengths:
        return "both Transfer-Encoding and Content-Length"
    if codings and [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
        return "unsupported Transfer-Encoding"
    if len(lengths) > 1:
        return "more than one Content-Length"
    if lengths and not lengths[0].strip().isdigit():
        return "invalid Content-Length"
    return None


class ConnectionHandler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, a quiet access log, and an idle bound on
    the connection: a client that stops sending mid-request, or stops
    taking an answer, is dropped after ``server.client_silence`` seconds
    (300), so it cannot hold a thread forever.

    Keep-alive: werkzeug's own ``run_wsgi`` answers every request with
    ``Connection: close``, because after the application it drains whatever
    the client still sends (so a refused big body gets its 413 instead of a
    reset), which on a kept connection would swallow the next request. Here
    the body of a ``Content-Length`` request is read through
    :class:`_SizedBody`, which never reads past it, and a chunked body
    through werkzeug's ``DechunkedInput``, which stops at its last chunk; a
    connection is kept only when the application read the whole body, the
    answer is framed (``Content-Length`` or chunked), the client did not ask
    for ``close``, the request cap is not reached and the server is not
    stopping. Otherwise the answer says ``Connection: close``, our side is
    shut and what the client still sends is drained (``_lingering_close``).
    Between requests a kept connection waits at most
    ``server.keepalive_idle`` seconds for the next request line; pipelined
    requests are read one after the other from the same buffer, so they are
    answered in order.

    Each item the application yields leaves in one send, with the status
    line and headers before the first and the chunk framing around it:
    every send lets go of the GIL, so three sends per chunk cost three
    hand-offs. No write buffer: the item is joined with its framing once,
    instead of copied through a 16 kB buffer each connection kept for life.

    A streaming answer that can send itself (``run_here``) is not iterated:
    the connection is lent to it (:class:`_LentConnection`), so its frames
    leave from this thread as they are made, with no second thread and no
    queue between the two.
    """

    protocol_version = "HTTP/1.1"
    timeout = None  # no socket timeout: the reader polls itself (see _DeadlineReader)
    wbufsize = 0

    def setup(self) -> None:
        silence = self.server.client_silence
        if self.request.gettimeout() is not None:
            self.request.settimeout(None)
        # Writes are bounded by the kernel (a send that can place nothing for
        # this long fails with EAGAIN), not by a poll before every send.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                struct.pack("ll", int(silence), int(silence % 1 * 1e6)))
        super().setup()
        self.served = 0
        self._date = (0, "")  # (second, Date header value) for _http_date
        self.rfile.close()  # the socket's own reader, replaced by one with a deadline
        self._reader = _DeadlineReader(self.connection, silence)
        self.rfile = io.BufferedReader(self._reader)
        self._reader.deadline = time.monotonic() + self.server.request_deadline

    def _http_date(self) -> str:
        """The Date header's value, formatted once a second per connection
        rather than for every answer."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, email.utils.formatdate(now, usegmt=True))
        return self._date[1]

    def log_error(self, format, *args):
        # a timed-out or malformed request: attacker-driven, so not a warning
        log.debug("client %s: %s", self.client_address[0], format % args)

    def log_request(self, code="-", size="-"):
        pass

    def handle_one_request(self) -> None:
        if self.served and not self._await_next_request():
            self.close_connection = True
            return
        self.served += 1
        super().handle_one_request()

    def _await_next_request(self) -> bool:
        """On a kept connection: wait, idle, for the first byte of the next
        request. False when the client closed, the idle bound passed or the
        server is stopping (it shuts idle connections down)."""
        if not self.server.enter_idle(self.connection):
            return False
        try:
            # The idle bound is the reader's deadline, not the socket's
            # timeout: setting that twice a request cost two syscalls, each
            # letting go of the GIL (a pipelined request already buffered is
            # returned without any read).
            self._reader.deadline = time.monotonic() + self.server.keepalive_idle
            first = self.rfile.peek(1)
        except (OSError, ValueError):
            first = b""
        finally:
            if not self.server.leave_idle(self.connection):
                first = b""
        if not first:
            return False
        self._reader.deadline = time.monotonic() + self.server.request_deadline
        return True

    def _keep_alive_allowed(self) -> bool:
        return (not self.close_connection and self.request_version == "HTTP/1.1"
                and self.served < self.server.max_requests and not self.server.is_stopping())

    def run_wsgi(self) -> None:
        self.server.mark_busy(self.connection)
        try:
            self._answer()
        finally:
            if self.close_connection:
                _lingering_close(self.connection, self.rfile)

    def _answer(self) -> None:
        reason = framing_error(self.headers)
        if reason is not None:
            body = ('{"type":"error","error":{"type":"invalid_request_error","message":"%s"}}'
                    % reason).encode()
            self.close_connection = True
            self.send_response(400, "Bad Request")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            return
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        self.environ = environ = self.make_environ()
        body = None
        if "wsgi.input_terminated" not in environ:
            length = int(self.headers.get("Content-Length", "0").strip() or 0)
            # Unbuffered: werkzeug's LimitedStream reads it 64 kB at a time
            # anyway, and a 64 kB buffer here stayed allocated for as long as
            # a stream held the request (tracemalloc: 64 of the 131 kB of
            # Python memory each held stream added).
            environ["wsgi.input"] = body = _SizedBody(self.rfile, length)
        status_set: str | None = None
        headers_set: list[tuple[str, str]] | None = None
        status_sent: str | None = None
        chunk_response = False

        def body_read() -> bool:
            if body is not None:
                return body.left == 0
            return bool(getattr(environ["wsgi.input"], "_done", False))

        def frame(data: bytes) -> bytes:
            """``data`` as it goes on the wire: after the status line and
            headers if none went out yet, inside its chunk framing if the
            answer is chunked."""
            nonlocal status_sent, chunk_response
            assert status_set is not None and headers_set is not None, "write() before start_response"
            out = []
            if status_sent is None:
                status_sent = status_set
                self._reader.deadline = None  # the request is in; the answer has no deadline
                code_str, _, msg = status_sent.partition(" ")
                code = int(code_str)
                # The head as send_response/send_header/end_headers write it,
                # built in one piece: those calls were 3 % of the GIL time of
                # a non-streaming request (py-spy, bench/README.md).
                lines = ["%s %d %s\r\nServer: %s\r\nDate: %s\r\n"
                         % (self.protocol_version, code, msg, self.version_string(), self._http_date())]
                keys = set()
                for key, value in headers_set:
                    lines.append("%s: %s\r\n" % (key, value))
                    lower = key.lower()
                    keys.add(lower)
                    if lower == "connection":
                        if value.lower() == "close":
                            self.close_connection = True
                        elif value.lower() == "keep-alive":
                            self.close_connection = False
                bodyless = environ["REQUEST_METHOD"] == "HEAD" or 100 <= code < 200 or code in (204, 304)
                if "content-length" not in keys and not bodyless:
                    chunk_response = True
                    lines.append("Transfer-Encoding: chunked\r\n")
                if self._keep_alive_allowed() and body_read():
                    lines.append("Keep-Alive: timeout=%d\r\n\r\n" % self.server.keepalive_idle)
                else:
                    self.close_connection = True
                    lines.append("Connection: close\r\n\r\n")
                if self.request_version != "HTTP/0.9":  # a 0.9 answer is the body alone
                    out.append("".join(lines).encode("latin-1", "strict"))
            if data:
                out.extend((b"%x\r\n" % len(data), data, b"\r\n") if chunk_response else (data,))
            return b"".join(out) if len(out) != 1 else out[0]

        def write(data: bytes) -> None:
            out = frame(data)
            if out:
                self.wfile.write(out)

        def start_response(status, headers, exc_info=None):
            nonlocal status_set, headers_set
            if exc_info:
                try:
                    if status_sent is not None:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif headers_set:
                raise AssertionError("Headers already set")
            status_set = status
            headers_set = headers
            return write

        def execute(app) -> None:
            application_iter = app(environ, start_response)
            completed = False
            try:
                run_here = getattr(application_iter, "run_here", None)
                if run_here is not None:  # a stream that sends its own frames through our connection
                    if not run_here(_LentConnection(self.connection, start_response, frame)):
                        return
                else:
                    for data in application_iter:
                        write(data)
                if status_sent is None:
                    write(b"")
                if chunk_response:
                    self.wfile.write(b"0\r\n\r\n")
                completed = True
            finally:
                # The iterable is closed before any read: werkzeug's own
                # handler drained first, and a reset client made that read
                # raise, so the stream was never closed (streams_open stuck,
                # its body held, shutdown waiting out the grace period).
                if hasattr(application_iter, "close"):
                    application_iter.close()
                if not completed:
                    self.close_connection = True

        try:
            execute(self.server.app)
        except (ConnectionError, socket.timeout, BlockingIOError):  # BlockingIOError: SO_SNDTIMEO ran out
            self.close_connection = True
        except Exception as exc:
            self.close_connection = True
            if self.server.passthrough_errors:
                raise
            if status_sent is None:
                status_set = headers_set = None
                try:
                    execute(InternalServerError())
                except Exception:
                    pass
            log.error("error on request: %r", exc, exc_info=exc)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            # The client left with bytes still buffered for it: closing the
            # writer failed after closing its half, and the reader must be
            # closed too, or the socket's descriptor outlives the request.
            self.rfile.close()


class _LentConnection:
    """The connection as a stream sends through it itself
    (``streaming.Sink``): the pump's frames from the request thread, waiting
    for the client; the heartbeat's keep-alives from the ticker, never
    waiting. The stream's writer sends one frame at a time, so this needs no
    lock of its own."""

    def __init__(self, sock: socket.socket, start_response, frame):
        self._sock = sock
        self._start_response = start_response
        self._frame = frame
        self._kept = b""  # what a send that could not wait left, to go first next time

    def send(self, data: bytes, head, wait: bool) -> int:
        if head is not None:
            self._start_response(*head)
        out = self._frame(data)
        if self._kept:
            out, self._kept = self._kept + out, b""
        if wait:
            self._sock.sendall(out)  # bounded by SO_SNDTIMEO: BlockingIOError past it
            return 0
        try:
            sent = self._sock.send(out, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        self._kept = out[sent:]
        return len(self._kept)

    def abort(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already shut, or the client reset it
            pass


def _lingering_close(connection: socket.socket, rfile) -> None:
    """Before closing: end our side at once (the client sees the answer's
    end now, not after the drain), then read what the client still sends,
    bounded, so a refused body gets its answer instead of a reset.

    werkzeug drains with the write side open, so every ``Connection: close``
    answer reached its client's EOF 10 ms late (the drain's last wait): the
    time the bench measured for a 2,000-delta stream was half that wait."""
    try:
        connection.shutdown(socket.SHUT_WR)
    except (OSError, ValueError):  # the client already left
        return
    poller = select.poll()
    poller.register(connection, select.POLLIN)
    total = reads = 0
    try:
        while poller.poll(10):
            data = rfile.read1(10_000_000)
            total += len(data)
            reads += 1
            if not data or total >= 10_000_000_000 or reads > 1000:
                break
    except (OSError, ValueError):
        pass
