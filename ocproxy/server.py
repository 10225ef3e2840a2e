"""``ocproxy serve``: werkzeug's threaded server around the application.

Owns the process-level concerns: binding, the pid file, the banner, signals,
the grace period on shutdown, and (via ``ocproxy.reload``) hot reload. One
thread per connection, kept open between requests (HTTP/1.1 keep-alive, see
``_Handler``); no write timeout (a stream may last as long as its upstream
keeps it alive).

Shutdown: the first SIGTERM/SIGINT stops the accept
loop, whose ``finally`` closes the listening socket, so new connections are
refused at once. In-flight requests and streams then get the grace period
(10 s; ``OCPROXY_SHUTDOWN_GRACE_MS`` overrides it, e.g. for tests) to end on
their own; whatever is still open after that is ended by
:meth:`ProxyApp.close` with an SSE ``error`` event ("server shutting down"),
request threads are joined, the pid file is removed, the log queue writes
its last lines and the exit code is 0. A second signal during the grace
period skips the rest of the wait.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time

from werkzeug.exceptions import ClientDisconnected, InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler, get_sockaddr, select_address_family

from ocproxy import __version__, daemon
from ocproxy.app import ProxyApp
from ocproxy.config import Config
from ocproxy.logs import secrets_of, setup_logging
from ocproxy.reload import ConfigHolder, Reloader

log = logging.getLogger("ocproxy.server")

#: How long in-flight requests and streams may run on after SIGTERM/SIGINT.
GRACE_SECONDS = 10.0
GRACE_ENV = "OCPROXY_SHUTDOWN_GRACE_MS"

#: After the grace period and ``app.close()``: how long to wait for request
#: threads to deliver their last bytes before giving up on them.
JOIN_SECONDS = 5.0


#: How long a kept connection may wait for its next request, and how many
#: requests one connection may carry before the answer says ``close``.
KEEPALIVE_IDLE_SECONDS = 60.0
MAX_REQUESTS_PER_CONNECTION = 1000


def grace_from_env(env=os.environ) -> float:
    """``OCPROXY_SHUTDOWN_GRACE_MS`` (milliseconds, >= 0) or the 10 s default."""
    text = env.get(GRACE_ENV, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value >= 0:
            return value / 1000.0
        log.warning("ignoring %s=%r: not a whole number of milliseconds", GRACE_ENV, text)
    return GRACE_SECONDS


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


class _Handler(WSGIRequestHandler):
    """HTTP/1.1 with keep-alive, a quiet access log, and an idle bound on
    the connection: a client that stops sending mid-request is dropped after
    ``timeout`` (300 s), so it cannot hold a thread forever.

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
    stopping. Otherwise the answer says ``Connection: close`` and werkzeug's
    drain runs as before. Between requests a kept connection waits at most
    ``server.keepalive_idle`` seconds for the next request line; pipelined
    requests are read one after the other from the same buffer, so they are
    answered in order.

    Writes to the client are buffered until werkzeug flushes, which it does
    after every item the application yields. Unbuffered (socketserver's
    default), the status line and headers went out in one send and the
    body in another, and each chunk of a stream in three (size line, data,
    CRLF); on a socket with a timeout every send is a poll and a sendto,
    each letting go of the GIL.
    """

    protocol_version = "HTTP/1.1"
    timeout = 300
    wbufsize = 16384

    def setup(self) -> None:
        super().setup()
        self.served = 0

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
            self.connection.settimeout(self.server.keepalive_idle)
            first = self.rfile.peek(1)
        except (OSError, ValueError):
            first = b""
        finally:
            if not self.server.leave_idle(self.connection):
                first = b""
        if not first:
            return False
        self.connection.settimeout(self.timeout)
        return True

    def _keep_alive_allowed(self) -> bool:
        return (not self.close_connection and self.request_version == "HTTP/1.1"
                and self.served < self.server.max_requests and not self.server.is_stopping())

    def run_wsgi(self) -> None:
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
            self.wfile.flush()
            return
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        self.environ = environ = self.make_environ()
        body = None
        if "wsgi.input_terminated" not in environ:
            length = int(self.headers.get("Content-Length", "0").strip() or 0)
            body = _SizedBody(self.rfile, length)
            environ["wsgi.input"] = io.BufferedReader(body, 65536) if length else body
        status_set: str | None = None
        headers_set: list[tuple[str, str]] | None = None
        status_sent: str | None = None
        chunk_response = False

        def body_read() -> bool:
            if body is not None:
                return body.left == 0
            return bool(getattr(environ["wsgi.input"], "_done", False))

        def write(data: bytes) -> None:
            nonlocal status_sent, chunk_response
            assert status_set is not None and headers_set is not None, "write() before start_response"
            if status_sent is None:
                status_sent = status_set
                code_str, _, msg = status_sent.partition(" ")
                code = int(code_str)
                self.send_response(code, msg)
                keys = set()
                for key, value in headers_set:
                    self.send_header(key, value)
                    keys.add(key.lower())
                bodyless = environ["REQUEST_METHOD"] == "HEAD" or 100 <= code < 200 or code in (204, 304)
                if "content-length" not in keys and not bodyless:
                    chunk_response = True
                    self.send_header("Transfer-Encoding", "chunked")
                if self._keep_alive_allowed() and body_read():
                    self.send_header("Keep-Alive", "timeout=%d" % self.server.keepalive_idle)
                else:
                    self.close_connection = True
                    self.send_header("Connection", "close")
                self.end_headers()
            if data:
                if chunk_response:
                    self.wfile.write(b"%x\r\n" % len(data))
                    self.wfile.write(data)
                    self.wfile.write(b"\r\n")
                else:
                    self.wfile.write(data)
            self.wfile.flush()

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
                for data in application_iter:
                    write(data)
                if status_sent is None:
                    write(b"")
                if chunk_response:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                completed = True
            finally:
                if not completed:
                    self.close_connection = True
                if self.close_connection:
                    _drain(self.connection, self.rfile)
                if hasattr(application_iter, "close"):
                    application_iter.close()

        try:
            execute(self.server.app)
        except (ConnectionError, socket.timeout):
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


def _drain(connection: socket.socket, rfile) -> None:
    """Before closing: read what the client still sends, bounded, so a
    refused body gets its answer instead of a reset (werkzeug's drain)."""
    selector = selectors.DefaultSelector()
    try:
        selector.register(connection, selectors.EVENT_READ)
        total = reads = 0
        while selector.select(timeout=0.01):
            data = rfile.read1(10_000_000)
            total += len(data)
            reads += 1
            if not data or total >= 10_000_000_000 or reads > 1000:
                break
    except (OSError, ValueError):
        pass
    finally:
        selector.close()


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server, plus a record of its request threads.

    werkzeug makes them daemon threads and forgets them, so nothing could
    wait for in-flight requests at shutdown. ``_live_lock`` guards ``_live``,
    the set of request threads still running, ``_idle``, the kept
    connections waiting for their next request, and ``stopping``.

    Keep-alive bounds: ``keepalive_idle`` seconds a kept connection may wait
    for its next request, ``max_requests`` answered on one connection.
    """

    keepalive_idle = KEEPALIVE_IDLE_SECONDS
    max_requests = MAX_REQUESTS_PER_CONNECTION

    def __init__(self, *args, **kwargs):
        self._live_lock = threading.Lock()
        self._live: set[threading.Thread] = set()
        self._idle: set[socket.socket] = set()
        self.stopping = False
        # The accept loop sleeps in poll() until a connection or a wake-up
        # byte from shutdown(); socketserver's loop woke every poll_interval
        # (0.2 s here) to look at its stop flag, idle or not.
        self._stop_accepting = threading.Event()
        self._accept_done = threading.Event()
        super().__init__(*args, **kwargs)
        # after werkzeug's __init__, which calls server_close() itself
        self._wake_r, self._wake_w = socket.socketpair()

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Accept until :meth:`shutdown`; the listening socket is closed on
        the way out (as werkzeug's loop does)."""
        try:
            with selectors.PollSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stop_accepting.is_set():
                    ready = selector.select()
                    if self._stop_accepting.is_set():
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()
        finally:
            self._accept_done.set()
            self.server_close()

    def shutdown(self) -> None:
        """Stop the accept loop and wait until it has left."""
        self._stop_accepting.set()
        try:
            self._wake_w.send(b"\0")
        except (OSError, ValueError):  # the loop already left and closed it
            pass
        self._accept_done.wait()

    def server_close(self) -> None:
        """The listening socket and the wake-up pair (called once the
        accept loop has left, or when it never ran)."""
        super().server_close()
        if hasattr(self, "_wake_r"):
            self._wake_r.close()
            self._wake_w.close()

    def enter_idle(self, sock: socket.socket) -> bool:
        """A kept connection starts waiting for its next request; False
        once the server is stopping (the connection is closed instead)."""
        with self._live_lock:
            if self.stopping:
                return False
            self._idle.add(sock)
            return True

    def is_stopping(self) -> bool:
        with self._live_lock:
            return self.stopping

    def leave_idle(self, sock: socket.socket) -> bool:
        """The wait is over; False if the server stopped meanwhile."""
        with self._live_lock:
            self._idle.discard(sock)
            return not self.stopping

    def stop_keepalive(self) -> None:
        """Stopping: answers from now on say ``Connection: close`` and every
        kept connection waiting idle is shut, which ends its wait at once (a
        request that arrives in that instant is refused by the close, as
        after any idle timeout)."""
        with self._live_lock:
            self.stopping = True
            idle = list(self._idle)
        for sock in idle:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def process_request(self, request, client_address):
        thread = threading.Thread(target=self._serve_one, args=(request, client_address),
                                  name="ocproxy-request", daemon=True)
        with self._live_lock:
            self._live.add(thread)
        thread.start()

    def _serve_one(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.discard(threading.current_thread())

    def live_threads(self) -> list[threading.Thread]:
        with self._live_lock:
            return list(self._live)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """Bind ourselves so a failure is an ``OSError`` we can report; werkzeug
    would print its own text and ``sys.exit(1)``."""
    family = select_address_family(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(get_sockaddr(host, int(port), family))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """A running proxy: the WSGI server, its app, and the shutdown logic."""

    def __init__(self, holder: ConfigHolder):
        self.holder = holder
        self.app = ProxyApp(holder)
        cfg = holder.current
        sock = _listen(cfg.host, cfg.port)
        try:
            # werkzeug dups the descriptor; ours is closed right after.
            self.httpd = _Server(cfg.host, cfg.port, self.app, handler=_Handler, fd=sock.fileno())
        finally:
            sock.close()
        self._stop_requested = threading.Event()
        self._hurry = threading.Event()  # a second signal: skip the rest of the grace period
        self._shutdown_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def serve(self) -> None:
        """Accept until :meth:`request_stop`; the listening socket is closed
        when this returns (werkzeug's ``serve_forever`` does it)."""
        self.httpd.serve_forever()

    def request_stop(self) -> None:
        """Safe from a signal handler: ``serve_forever``'s own thread cannot
        call ``shutdown()`` itself, so a helper thread does it (joined in
        :meth:`drain`). A repeated call cuts the grace period short."""
        if self._stop_requested.is_set():
            self._hurry.set()
            return
        self._stop_requested.set()
        self.httpd.stop_keepalive()
        self._shutdown_thread = threading.Thread(target=self.httpd.shutdown, name="ocproxy-shutdown", daemon=True)
        self._shutdown_thread.start()

    def drain(self, grace: float = GRACE_SECONDS) -> None:
        """After the listener closed: let requests and streams finish within
        ``grace``, then end the rest with an error event and join every
        request thread (bounded, so a stuck client cannot hold the exit)."""
        deadline = time.monotonic() + grace
        while not self._idle() and time.monotonic() < deadline and not self._hurry.is_set():
            time.sleep(0.05)
        if not self._idle():
            log.info("grace period over, closing %d open request(s)", len(self.httpd.live_threads()))
        self.app.close()
        join_deadline = time.monotonic() + JOIN_SECONDS
        for thread in self.httpd.live_threads():
            thread.join(max(0.0, join_deadline - time.monotonic()))
        left = self.httpd.live_threads()
        if left:
            log.warning("%d request thread(s) still running at exit", len(left))
        if self._shutdown_thread is not None:
            self._shutdown_thread.join()
        self.httpd.server_close()

    def _idle(self) -> bool:
        return self.app.idle() and not self.httpd.live_threads()


def run(config: Config, config_path: str | None = None, cli_host: str | None = None,
        cli_port: int | None = None, daemon_child: bool = False) -> int:
    """Serve in the foreground until SIGINT/SIGTERM; returns the exit code.

    ``config`` already carries the CLI host/port (``load_config`` applied
    them); the holder keeps them so every reload re-applies them. The pid
    file is written once the socket is bound (a server that could not bind
    never claims to run) and removed on the way out.
    """
    logs = setup_logging(config.log_level, secrets=secrets_of(config))
    try:
        return _run(config, config_path, cli_host, cli_port, daemon_child)
    finally:
        logs.stop()


def _run(config: Config, config_path: str | None, cli_host: str | None, cli_port: int | None,
         daemon_child: bool) -> int:
    if not daemon_child and daemon.check_not_running() is not None:
        return 1
    holder = ConfigHolder(config, cli_host=cli_host, cli_port=cli_port)
    if not _is_loopback(config.host) and not config.client_api_keys:
        log.warning(
            "listening on %s without client_api_keys: anyone who can reach this address can spend "
            "your OpenCode credit; set client_api_keys or bind 127.0.0.1", config.host,
        )
    try:
        server = Server(holder)
    except OSError as exc:
        print(f"Error: server failed: listen on {config.host}:{config.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    grace = grace_from_env()
    try:
        daemon.write_pid(os.getpid())
    except OSError as exc:  # status/stop will not see us; serving still works
        log.warning("cannot write pid file %s: %s", daemon.pid_path(), exc)
    watcher = None
    try:
        if config.hot_reload and config_path:
            watcher = Reloader(holder, config_path, cli_host=cli_host, cli_port=cli_port)
            watcher.start()

        def on_signal(signum, frame):
            if server._stop_requested.is_set():
                log.info("second signal %d: ending open requests now", signum)
            else:
                log.info("shutting down server... (signal %d)", signum)
            server.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if hasattr(signal, "SIGHUP"):
            if watcher is not None:
                signal.signal(signal.SIGHUP, lambda s, f: watcher.reload_now("received SIGHUP, reloading config"))
            else:
                signal.signal(signal.SIGHUP, lambda s, f: log.info("SIGHUP ignored: hot_reload is off"))

        print(f"Starting ocproxy v{__version__}")
        print(f"Listening on {config.host}:{server.port}")
        print(f"Forwarding to: {config.opencode_go.base_url}")
        print()
        print("Configure Claude Code with:")
        print(f"  export ANTHROPIC_BASE_URL=http://{config.host}:{server.port}")
        print("  export ANTHROPIC_AUTH_TOKEN=unused")
        print(flush=True)
        server.serve()
        server.drain(grace)
    finally:
        if watcher is not None:
            watcher.stop()
        daemon.remove_pid(only_if=os.getpid())
    log.info("server stopped")
    return 0
