"""``ocproxy serve``: werkzeug's threaded server around the application.

Owns the process-level concerns: binding, the pid file, the banner, signals,
the grace period on shutdown, and (via ``ocproxy.reload``) hot reload. One
thread per connection, kept open between requests (HTTP/1.1 keep-alive, see
``ConnectionHandler``); no write timeout (a stream may last as long as its upstream
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

import errno
import collections
import ipaddress
import logging
import os
import resource
import selectors
import signal
import socket
import sys
import threading
import time

from werkzeug.serving import ThreadedWSGIServer, get_sockaddr, select_address_family

from ocproxy import __version__, daemon
from ocproxy.app import ProxyApp
from ocproxy.daemon import GRACE_SECONDS, grace_from_env
from ocproxy.config import Config
from ocproxy.config.types import DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_READ_TIMEOUT_MS
from ocproxy.errors import error_body
from ocproxy.http1 import (CLIENT_SILENCE_SECONDS, KEEPALIVE_IDLE_SECONDS, MAX_REQUESTS_PER_CONNECTION,
                           ConnectionHandler)
from ocproxy.logs import secrets_of, setup_logging
from ocproxy.reload import ConfigHolder, Reloader

log = logging.getLogger("ocproxy.server")

#: After the grace period and ``app.close()``: how long to wait for request
#: threads to deliver their last bytes before giving up on them.
JOIN_SECONDS = 5.0

#: accept() failing for want of descriptors or memory: wait, do not spin
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_BACKOFF_FIRST, _BACKOFF_MOST = 0.05, 1.0

_OVERLOADED = error_body(503, "too many connections, retry shortly", "overloaded_error")
#: The whole answer to a connection beyond max_connections, sent by the
#: accept loop itself: no thread, no parsing.
REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
           % (len(_OVERLOADED), _OVERLOADED))
#: A refused connection stays open this long after its 503, so the request
#: the client sends meanwhile lands in a socket that is still there (a
#: closed one answers it with a reset, which can cost the client the 503);
#: at most this many wait so at once.
REFUSED_LINGER_SECONDS = 1.0
MAX_LINGERING = 256


class _Server(ThreadedWSGIServer):
    """werkzeug's threaded server, plus a record of its request threads.

    werkzeug makes them daemon threads and forgets them, so nothing could
    wait for in-flight requests at shutdown. ``_live_lock`` guards ``_live``,
    the set of request threads still running, ``_idle``, the kept
    connections waiting for their next request, and ``stopping``.

    Keep-alive bounds: ``keepalive_idle`` seconds a kept connection may wait
    for its next request, ``max_requests`` answered on one connection;
    ``client_silence`` seconds a client may send or take nothing.

    Connection bounds: at most ``max_connections`` held at once. At the cap
    a new connection takes the place of the one that has waited longest for
    a request (a slow or idle client), so slow clients cannot lock others
    out; when every connection is busy with a request, the new one gets a
    503 from the accept loop. A request must arrive whole within
    ``request_deadline`` seconds. ``_live_lock`` also guards ``_open``
    (each connection held -> since when it waits for a request, None while
    one is served) and ``_refusing``.
    """

    keepalive_idle = KEEPALIVE_IDLE_SECONDS
    client_silence = CLIENT_SILENCE_SECONDS
    max_requests = MAX_REQUESTS_PER_CONNECTION
    max_connections = DEFAULT_MAX_CONNECTIONS
    request_deadline = DEFAULT_REQUEST_READ_TIMEOUT_MS / 1000.0

    def __init__(self, *args, **kwargs):
        self._live_lock = threading.Lock()
        self._live: set[threading.Thread] = set()
        self._idle: set[socket.socket] = set()
        self._open: dict[socket.socket, float | None] = {}
        self._refusing = False
        self.stopping = False
        # accept-loop only (no lock): out of descriptors, the wait before the
        # next try, and refused connections waiting to be closed
        self._fd_short = False
        self._fd_backoff = _BACKOFF_FIRST
        self._lingering: collections.deque[tuple[float, socket.socket]] = collections.deque()
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
                    wait = max(self._lingering[0][0] - time.monotonic(), 0) if self._lingering else None
                    ready = selector.select(wait)
                    if self._stop_accepting.is_set():
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._accept()
                    self._close_refused(time.monotonic())
        finally:
            self._close_refused(None)
            self._accept_done.set()
            self.server_close()

    def _accept(self) -> None:
        """One connection from the listening socket. Out of descriptors, the
        loop waits (longer each time, up to a second) instead of spinning on
        a socket that stays readable, and says so once."""
        try:
            request, client_address = self.get_request()
        except OSError as exc:
            if exc.errno in _OUT_OF_DESCRIPTORS:
                if not self._fd_short:
                    self._fd_short, self._fd_backoff = True, _BACKOFF_FIRST
                    log.error("cannot accept connections: %s (descriptor limit %s); waiting for some to close",
                              exc.strerror, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                self._stop_accepting.wait(self._fd_backoff)
                self._fd_backoff = min(self._fd_backoff * 2, _BACKOFF_MOST)
            return
        if self._fd_short:
            self._fd_short = False
            log.warning("accepting connections again")
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def _refuse(self, sock: socket.socket) -> None:
        """The fast 503 from the accept loop, which never blocks on it."""
        try:
            sock.setblocking(False)
            sock.send(REFUSED)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            _close_drained(sock)
            return
        if len(self._lingering) >= MAX_LINGERING:
            _close_drained(self._lingering.popleft()[1])
        self._lingering.append((time.monotonic() + REFUSED_LINGER_SECONDS, sock))

    def _close_refused(self, now: float | None) -> None:
        """Close the refused connections whose time is up (all: None)."""
        while self._lingering and (now is None or self._lingering[0][0] <= now):
            _close_drained(self._lingering.popleft()[1])

    def _admit(self, sock: socket.socket) -> bool:
        """Room for ``sock``: below the cap, or by closing the connection
        that has waited longest for a request. False: every one is busy."""
        victim = None
        with self._live_lock:
            if len(self._open) >= self.max_connections:
                waiting = [(since, s) for s, since in self._open.items() if since is not None]
                if not waiting:
                    first, self._refusing = not self._refusing, True
                    if first:
                        log.warning("max_connections=%d reached, every connection busy: answering 503",
                                    self.max_connections)
                    return False
                victim = min(waiting, key=lambda item: item[0])[1]
                del self._open[victim]
            self._open[sock] = time.monotonic()
            self._refusing = False
        if victim is not None:
            try:
                victim.shutdown(socket.SHUT_RDWR)  # its thread reads EOF and ends
            except OSError:
                pass
        return True

    def mark_busy(self, sock: socket.socket) -> None:
        """A request's headers are in: this connection is no longer evictable."""
        with self._live_lock:
            if sock in self._open:
                self._open[sock] = None

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
            if sock in self._open:
                self._open[sock] = time.monotonic()
            return True

    def is_stopping(self) -> bool:
        with self._live_lock:
            return self.stopping

    def leave_idle(self, sock: socket.socket) -> bool:
        """The wait is over; False if the server stopped meanwhile."""
        with self._live_lock:
            self._idle.discard(sock)
            if sock in self._open:
                self._open[sock] = time.monotonic()  # a new request began arriving
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
        if not self._admit(request):
            self._refuse(request)
            return
        thread = threading.Thread(target=self._serve_one, args=(request, client_address),
                                  name="ocproxy-request", daemon=True)
        with self._live_lock:
            self._live.add(thread)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: refuse like a full server
            with self._live_lock:
                self._live.discard(thread)
                self._open.pop(request, None)
            self._refuse(request)

    def _serve_one(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.discard(threading.current_thread())
                self._open.pop(request, None)

    def live_threads(self) -> list[threading.Thread]:
        with self._live_lock:
            return list(self._live)


def _close_drained(sock: socket.socket) -> None:
    """Close a non-blocking socket after reading what the client sent: unread
    bytes would make the close a reset."""
    try:
        for _ in range(16):  # bounded: a client sending without end gets its reset
            if not sock.recv(65536):
                break
    except OSError:
        pass
    finally:
        sock.close()


def ensure_descriptors(max_connections: int) -> None:
    """Raise the soft descriptor limit to what ``max_connections`` needs (a
    client socket and an upstream one each, plus some), as far as the hard
    limit allows; say so when it is not enough."""
    needed = 2 * max_connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft < needed:
        log.warning("max_connections=%d needs about %d file descriptors but the limit is %d: "
                    "raise it (LimitNOFILE= in the systemd unit, ulimit -n) or lower max_connections",
                    max_connections, needed, soft)


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
        sock.listen(1024)  # a burst of connections waits here, not in SYN retries
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
            self.httpd = _Server(cfg.host, cfg.port, self.app, handler=ConnectionHandler, fd=sock.fileno())
        finally:
            sock.close()
        # read at start, like host and port
        self.httpd.max_connections = max(cfg.max_connections, 1)
        self.httpd.request_deadline = cfg.request_read_timeout
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
    # Our line format has no process id, and every LogRecord asked the kernel
    # for it (a WSGI host keeps it: gunicorn's own format prints it).
    logging.logProcesses = False
    try:
        return _run(config, config_path, cli_host, cli_port, daemon_child)
    finally:
        logs.stop()


def _run(config: Config, config_path: str | None, cli_host: str | None, cli_port: int | None,
         daemon_child: bool) -> int:
    # A daemon child's launcher checked already; port 0 takes a free port.
    if not daemon_child and config.port and daemon.check_not_running(config.port) is not None:
        return 1
    holder = ConfigHolder(config, cli_host=cli_host, cli_port=cli_port)
    ensure_descriptors(config.max_connections)
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
    pid_file = daemon.pid_path(server.port)
    try:
        daemon.write_pid(pid_file, os.getpid())
    except OSError as exc:  # status/stop will not see us; serving still works
        log.warning("cannot write pid file %s: %s", pid_file, exc)
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
        daemon.remove_pid(pid_file, only_if=os.getpid())
    log.info("server stopped")
    return 0
