"""The WSGI application: routes, body limits, errors, and the two data paths.

Everything protocol-shaped happens in pure modules (request validation,
routing, translation); this module wires them to sockets and threads:
reading the body, calling the fallback loop with an attempt function, and
handing streams to the streaming shell.
"""

from __future__ import annotations

import itertools
import json
import logging
import select
import socket
import threading
import time
from typing import Callable, Iterable

from ocproxy import __version__, catalog
from ocproxy.config import Config, ConfigHolder, ModelConfig
from ocproxy.errors import AttemptFailure, ClientGone, ProxyError, UpstreamDataError, error_body
from ocproxy.metrics import Metrics
from ocproxy.ratelimit import RateLimiter, client_key
from ocproxy.request import MessagesRequest, parse_count_tokens_request, parse_messages_request
from ocproxy.routing.breaker import BreakerRegistry
from ocproxy.routing.chain import Route, RoutingError, build_route
from ocproxy.routing.fallback import ChainExhausted, Trace, run_chain
from ocproxy.streaming import Heartbeat, StreamResponse, StreamWriter
from ocproxy.tokens import count_text, count_tokens_endpoint
from ocproxy.translate.dialects import Dialect
from ocproxy.translate.sse import error_frame
from ocproxy.upstream import targets
from ocproxy.upstream.client import Attempt, CancelScope, UpstreamClient
from ocproxy.upstream.identity import KeyRotator, auth_headers, session_id

log = logging.getLogger("ocproxy.app")
access_log = logging.getLogger("ocproxy.access")

JSON = "application/json"
REDACTED_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization", "set-cookie"}


class ServerClosing(ClientGone):
    """The server is shutting down: stop like for a departed client; the
    stream already got its ``error`` frame from :meth:`ProxyApp.close`."""


class StreamBroken(Exception):
    """A stream failed after its payload began: no fallback, one error frame."""

    def __init__(self, failure: AttemptFailure):
        super().__init__(str(failure))
        self.failure = failure

    @property
    def client_message(self) -> str:
        if self.failure.cause == "stream-idle":
            return "stream idle after SSE payload started"
        return "all upstream models failed after SSE payload started"


class ProxyApp:
    """A PEP 3333 application. Owns the heartbeat thread, the upstream
    sessions and every pump thread; :meth:`close` stops and joins them."""

    def __init__(self, config: Config | ConfigHolder, client: UpstreamClient | None = None):
        self.holder = config if isinstance(config, ConfigHolder) else ConfigHolder(config)
        cfg = self.holder.current
        self.client = client or UpstreamClient()
        self.breakers = BreakerRegistry(cfg.breaker_threshold, cfg.breaker_recovery_ms / 1000.0)
        self.limiter = RateLimiter(cfg.rate_limit_per_minute)
        self.keys = KeyRotator()
        self.metrics = Metrics()
        self.heartbeat = Heartbeat()
        self._client_watch = _ClientWatch(self.heartbeat)
        self.started_at = time.time()
        count_text("warm up")  # load the encoder now, not inside the first request (~130 ms)
        self._ids = itertools.count(1)  # next() is atomic under the GIL; ids need only be unique
        self._lock = threading.Lock()  # guards _streams, _inflight and _closing
        self._inflight = 0  # non-streaming /v1/messages requests being answered
        self._streams: dict[StreamResponse, CancelScope] = {}  # open streams and their cancel switch
        self._closing = False
        self._routes: dict[str, dict[str, Callable]] = {
            "/v1/messages": {"POST": self._messages},
            "/v1/messages/count_tokens": {"POST": self._count_tokens},
            "/v1/models": {"GET": self._models},
            "/health": {"*": self._health},
            "/metrics": {"GET": self._prometheus},
        }

    # -- WSGI ------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        handlers = self._routes.get(path)
        try:
            if handlers is None:
                raise ProxyError(404, "not found")
            handler = handlers.get(method) or handlers.get("*")
            if handler is None:
                raise ProxyError(405, "Method not allowed")
            return handler(environ, start_response)
        except ProxyError as err:
            return self._error(start_response, err, environ.get("ocproxy.request_id"))
        except Exception:
            log.exception("unhandled error serving %s %s", method, path)
            return self._error(start_response, ProxyError(500, "internal error"), environ.get("ocproxy.request_id"))

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking work, end open streams with an ``error`` event, join
        every thread we own. Streams still open get the error frame first,
        then their upstream is aborted; the host delivers the frame and
        closes the iterable, which joins the pump."""
        with self._lock:
            self._closing = True
            open_streams = list(self._streams.items())
        for response, scope in open_streams:
            response.writer.finish([error_frame("server shutting down")])
            scope.cancel(ServerClosing())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._streams:
                    break
            time.sleep(0.02)
        with self._lock:
            leftovers = list(self._streams)
        for response in leftovers:  # the host never closed them: do it ourselves
            response.close()
        self.heartbeat.stop()
        self.client.close()

    def idle(self) -> bool:
        """No request in flight and no stream open (for graceful shutdown)."""
        with self._lock:
            return self._inflight == 0 and not self._streams

    @property
    def config(self) -> Config:
        return self.holder.current

    # -- helpers ---------------------------------------------------------

    def _error(self, start_response, err: ProxyError, request_id: str | None = None) -> list[bytes]:
        body = err.body()
        headers = [("Content-Type", JSON), ("Content-Length", str(len(body)))]
        if request_id:
            headers.append(("X-Request-ID", request_id))
        start_response(f"{err.status} {_reason(err.status)}", headers)
        return [body]

    def _json(self, start_response, obj, request_id: str | None = None, extra=()) -> list[bytes]:
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        headers = [("Content-Type", JSON), ("Content-Length", str(len(body))), *extra]
        if request_id:
            headers.append(("X-Request-ID", request_id))
        start_response("200 OK", headers)
        return [body]

    def _check_client_key(self, environ: dict, cfg: Config) -> None:
        if not cfg.client_api_keys:
            return
        # Either header may carry the key (contract.md): a client that sends
        # both (Claude Code with ANTHROPIC_AUTH_TOKEN plus a stray x-api-key)
        # is admitted when one of them is valid.
        candidates = [environ.get("HTTP_X_API_KEY", "")]
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if auth[:7].lower() == "bearer ":
            candidates.append(auth[7:].strip())
        if not any(c and c in cfg.client_api_keys for c in candidates):
            raise ProxyError(401, "invalid or missing API key")

    def _read_body(self, environ: dict, cfg: Config) -> bytes:
        limit = cfg.max_request_bytes
        length_text = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length_text:
            try:
                length = int(length_text)
            except ValueError:
                raise ProxyError(400, "invalid Content-Length") from None
            if length > limit:
                raise ProxyError(413, "request body too large")
            return _read_exactly(stream, length)
        if not environ.get("wsgi.input_terminated") and "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", ""):
            return b""
        chunks, size = [], 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise ProxyError(413, "request body too large")
            chunks.append(chunk)

    def _request_id(self, environ: dict) -> str:
        given = environ.get("HTTP_X_REQUEST_ID")
        rid = given if given else f"req-{int(time.time())}-{next(self._ids)}"
        environ["ocproxy.request_id"] = rid
        return rid

    def _log_request_headers(self, environ: dict, body_len: int) -> None:
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
                headers[name] = "[redacted]" if name in REDACTED_HEADERS else value
        access_log.info(
            "inbound request method=%s path=%s client=%s bytes=%d headers=%s",
            environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), environ.get("REMOTE_ADDR"), body_len,
            json.dumps(headers, sort_keys=True),
        )

    # -- routes ----------------------------------------------------------

    def _health(self, environ, start_response):
        snap = self.metrics.snapshot()
        metrics = {k: snap[k] for k in (
            "requests_received", "requests_success", "requests_failed", "requests_streamed",
            "upstream_calls", "rate_limited", "deduplicated", "p95_latency_ms", "p99_latency_ms",
            "fallbacks", "client_cancelled")}
        metrics["streams_open"] = self.heartbeat.open_streams
        body = {
            "status": "ok",
            "service": "ocproxy",
            "version": __version__,
            "uptime_s": int(time.time() - self.started_at),
            "metrics": metrics,
            "circuit_breakers": self.breakers.states(),
            "models": snap["models"],
        }
        return self._json(start_response, body, extra=[("X-Content-Type-Options", "nosniff")])

    def _prometheus(self, environ, start_response):
        text = self.metrics.prometheus(
            {
                "streams_open": ("Streaming responses currently open", self.heartbeat.open_streams),
                "uptime_seconds": ("Seconds since the proxy started", time.time() - self.started_at),
            },
            self.breakers.states(),
        ).encode()
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                  ("Content-Length", str(len(text)))])
        return [text]

    def _models(self, environ, start_response):
        return self._json(start_response, catalog.models_listing(self.config))

    def _count_tokens(self, environ, start_response):
        cfg = self.config
        self._check_client_key(environ, cfg)
        req = parse_count_tokens_request(self._read_body(environ, cfg))
        n = count_tokens_endpoint(req)
        return self._json(start_response, {"input_tokens": n, "token_count": n})

    def _messages(self, environ, start_response):
        started = time.monotonic()
        cfg = self.config  # one config for the whole request, even across a reload
        rid = self._request_id(environ)
        self._check_client_key(environ, cfg)
        self.limiter.configure(cfg.rate_limit_per_minute)
        if not self.limiter.allow(client_key(environ.get("HTTP_X_FORWARDED_FOR"), _peer(environ))):
            self.metrics.inc("rate_limited")
            log.warning("rate limited client=%s", _peer(environ))
            raise ProxyError(429, "rate limited")
        raw = self._read_body(environ, cfg)
        if cfg.log_requests:
            self._log_request_headers(environ, len(raw))
        req = parse_messages_request(raw)
        streaming = req.stream
        self.metrics.inc("requests_received")
        if streaming:
            self.metrics.inc("requests_streamed")
        log.info(
            "received request id=%s model=%s streaming=%s messages=%d tools=%d max_tokens=%s",
            rid, req.model, streaming, len(req.messages), len(req.tools), req.max_tokens,
        )
        self.breakers.configure(cfg.breaker_threshold, cfg.breaker_recovery_ms / 1000.0)
        try:
            route = build_route(req, cfg, streaming)
        except RoutingError as exc:
            log.error("routing failed id=%s: %s", rid, exc)
            raise ProxyError(500, "routing failed") from None
        log.info(
            "routing request id=%s scenario=%s model=%s provider=%s tokens=%d",
            rid, route.scenario, route.primary.model_id, route.primary.provider, route.token_count,
        )
        call = _Call(self, cfg, req, environ, rid, route, started)
        if streaming:
            return self._stream(call, start_response)
        with self._lock:
            if self._closing:
                raise ProxyError(529, "server is shutting down")
            self._inflight += 1
        try:
            return self._complete(call, start_response)
        finally:
            with self._lock:
                self._inflight -= 1

    # -- non-streaming ---------------------------------------------------

    def _complete(self, call: "_Call", start_response):
        cfg = call.cfg
        trace = Trace()
        gone = _client_gone_probe(call.environ)
        scope = CancelScope()
        client_sock = _client_socket(call.environ)
        if client_sock is not None:
            self._client_watch.add(client_sock, scope)

        def attempt(model: ModelConfig) -> bytes:
            dialect, url, headers, body = call.prepare(model, stream=False)
            timeout = cfg.provider(model).request_timeout
            handle = Attempt(time.monotonic() + timeout, timeout)
            scope.bind(handle)
            try:
                data = self.client.post(url, headers, body, handle)
            finally:
                scope.bind(None)
            return dialect.response(data, model)

        try:
            try:
                # The socket is probed only after an attempt: before the first
                # one the client has only just sent its request, and the watcher
                # would abort that attempt within a tick anyway.
                result = run_chain(call.route.chain, attempt, key_count=len(cfg.key_pool),
                                   is_cancelled=lambda: scope.cancelled or (trace.attempts > 0 and gone()),
                                   breakers=self.breakers, trace=trace)
            finally:
                if client_sock is not None:
                    self._client_watch.discard(client_sock)
        except ClientGone:
            self.metrics.inc("client_cancelled")
            log.info("request context canceled during non-streaming fallback id=%s", call.rid)
            call.log_done(trace, "cancelled")
            start_response("499 Client Closed Request", [("Content-Length", "0")])
            return []
        except ChainExhausted as exc:
            self.metrics.inc("requests_failed")
            self.metrics.inc("fallbacks", exc.trace.attempts)
            call.log_done(trace, "all-failed")
            status = 529 if exc.only_open_breakers else 502
            return self._error(start_response, ProxyError(status, "all models failed"), call.rid)
        self.metrics.inc("fallbacks", trace.attempts - 1)
        self.metrics.success(result.model.model_id, time.monotonic() - call.started)
        call.log_done(trace, "ok", result.model.model_id)
        return self._json(start_response, result.value, call.rid)

    # -- streaming -------------------------------------------------------

    def _stream(self, call: "_Call", start_response):
        cfg = call.cfg
        writer = StreamWriter(cfg.heartbeat_interval)
        scope = CancelScope()
        gone_probe = _client_gone_probe(call.environ)
        trace = Trace()

        def attempt(model: ModelConfig) -> None:
            dialect, url, headers, body = call.prepare(model, stream=True)
            provider = cfg.provider(model)
            upstream_attempt = Attempt(time.monotonic() + provider.streaming_timeout, provider.stream_idle_timeout)
            scope.bind(upstream_attempt)
            try:
                upstream = self.client.open_stream(url, headers, body, upstream_attempt)
                translator = dialect.translator(model)
                if translator.pauses_heartbeat:
                    writer.pause(True)
                try:
                    for chunk in upstream:
                        frames = translator.feed(chunk)
                        if frames and not writer.write(frames):
                            raise ClientGone()
                        if translator.done:
                            break
                    final = translator.close()
                finally:
                    upstream.close()
                    if translator.pauses_heartbeat:
                        writer.pause(False)
                if writer.gone:
                    raise ClientGone()
                writer.finish(final)
            except AttemptFailure as failure:
                if writer.gone or scope.cancelled:
                    raise ClientGone() from None
                if writer.payload_written:
                    raise StreamBroken(failure) from None
                raise
            finally:
                scope.bind(None)

        def pump(w: StreamWriter) -> None:
            first_attempt = time.monotonic()
            try:
                result = run_chain(call.route.chain, attempt, key_count=len(cfg.key_pool),
                                   is_cancelled=lambda: w.gone or scope.cancelled or gone_probe(),
                                   breakers=None, trace=trace)
            except ClientGone:
                self.metrics.inc("client_cancelled")
                log.debug("client disconnected during stream id=%s", call.rid)
                call.log_done(trace, "cancelled")
            except ChainExhausted:
                self.metrics.inc("requests_failed")
                w.finish([error_frame("all upstream models failed")])
                call.log_done(trace, "all-failed")
            except StreamBroken as broken:
                self.metrics.inc("requests_failed")
                log.warning("stream failed after payload started id=%s cause=%s error=%s",
                            call.rid, broken.failure.cause, broken.failure)
                w.finish([error_frame(broken.client_message)])
                call.log_done(trace, broken.failure.cause)
            except Exception:
                self.metrics.inc("requests_failed")
                log.exception("stream pump failed id=%s", call.rid)
                w.finish([error_frame("internal proxy error")])
                call.log_done(trace, "internal-error")
            else:
                self.metrics.inc("fallbacks", trace.attempts - 1)
                self.metrics.success(result.model.model_id, time.monotonic() - first_attempt)
                call.log_done(trace, "ok", result.model.model_id)

        def forget() -> None:
            with self._lock:
                self._streams.pop(response, None)

        response = StreamResponse(writer, pump, self.heartbeat, scope.cancel, on_done=forget)
        with self._lock:
            if self._closing:
                raise ProxyError(529, "server is shutting down")
            self._streams[response] = scope
        start_response("200 OK", [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
            ("X-Request-ID", call.rid),
        ])
        return response


class _Call:
    """What one ``/v1/messages`` request carries through its attempts."""

    def __init__(self, app: ProxyApp, cfg: Config, req: MessagesRequest, environ: dict, rid: str,
                 route: Route, started: float):
        self.app, self.cfg, self.req = app, cfg, req
        self.environ, self.rid, self.route, self.started = environ, rid, route, started
        self.session = session_id(environ.get("HTTP_X_CLAUDE_CODE_SESSION_ID"), req)

    def prepare(self, model: ModelConfig, stream: bool) -> tuple[Dialect, str, dict, bytes]:
        """The upstream URL, headers and body for one attempt on ``model``."""
        target = targets.resolve(self.cfg, model)
        dialect, endpoint, url = target.dialect, target.endpoint, target.url(stream)
        key = self.app.keys.next_key(model.provider, self.cfg.key_pool)
        headers = auth_headers(endpoint, key)
        headers["x-opencode-session"] = self.session
        if stream:
            headers["Accept"] = "text/event-stream"
        try:
            body = dialect.body(self.req, model, stream)
        except Exception as exc:  # a conversion bug must fail this attempt, not the request
            log.exception("building the %s request for %s failed", endpoint, model.model_id)
            raise UpstreamDataError(f"transform error: {exc}") from None
        return dialect, url, headers, body

    def log_done(self, trace: Trace, outcome: str, model: str | None = None) -> None:
        log.info(
            "request completed id=%s scenario=%s outcome=%s model=%s attempts=%d chain=%s ms=%.0f",
            self.rid, self.route.scenario, outcome, model or "-", trace.attempts, ",".join(trace.tried),
            (time.monotonic() - self.started) * 1000,
        )


class _ClientWatch:
    """Watches the clients of every non-streaming request that waits on its
    upstream: when one leaves, its attempt in flight is aborted at once (the
    upstream connection closed) instead of running on to its deadline,
    minutes later (operations.md §8.2, routing.md §8 step 6.1).

    Ticked by the shared heartbeat thread, so a request costs no thread of
    its own, and one ``poll`` per tick covers every socket: a tick over N
    waiting requests is one syscall, not 2N that each let go of the GIL.
    It is a heartbeat watch only while it has sockets, so an idle proxy's
    ticker sleeps.

    ``_lock`` guards ``_waiting`` (each client socket -> its request's
    cancel switch).
    """

    interval = 0.1  # seconds between two probes

    def __init__(self, heartbeat: Heartbeat):
        self._heartbeat = heartbeat
        self._lock = threading.Lock()
        self._waiting: dict[socket.socket, CancelScope] = {}

    def add(self, sock: socket.socket, scope: CancelScope) -> None:
        with self._lock:
            first = not self._waiting
            self._waiting[sock] = scope
            if first:
                self._heartbeat.watch(self)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            if self._waiting.pop(sock, None) is not None and not self._waiting:
                self._heartbeat.unwatch(self)

    def tick(self, now: float) -> None:
        with self._lock:
            waiting = list(self._waiting.items())
        by_fd = {sock.fileno(): (sock, scope) for sock, scope in waiting}
        by_fd.pop(-1, None)  # closed under us: its request is ending anyway
        if not by_fd:
            return
        poller = select.poll()  # poll, not select: descriptors past 1023 are common here
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        for fd, _events in poller.poll(0):
            sock, scope = by_fd[fd]
            if _peer_closed(sock):
                scope.cancel(ClientGone())


def _read_exactly(stream, length: int) -> bytes:
    chunks, left = [], length
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            raise ProxyError(400, "request body shorter than Content-Length")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _peer(environ: dict) -> str:
    return f"{environ.get('REMOTE_ADDR', '')}:{environ.get('REMOTE_PORT', '')}"


def _client_socket(environ: dict) -> socket.socket | None:
    """The client's socket, where the host exposes it (werkzeug, gunicorn)."""
    sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    return sock if isinstance(sock, socket.socket) else None


def _peer_closed(sock: socket.socket) -> bool:
    """For a socket that polled readable: did the client close its side?
    (Readable with data means a pipelined request: the client is there.)"""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except (OSError, ValueError):
        return True


def _client_gone_probe(environ: dict) -> Callable[[], bool]:
    """True once the client closed its side; elsewhere than werkzeug and
    gunicorn the client is assumed present."""
    sock = _client_socket(environ)
    if sock is None:
        return lambda: False

    def gone() -> bool:
        # poll, not select: select() refuses descriptors past 1023. One poll
        # object per call: a poll object refuses concurrent use.
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0)) and _peer_closed(sock)
        except (OSError, ValueError):
            return True

    return gone


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            413: "Request Entity Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 529: "Overloaded"}


def _reason(status: int) -> str:
    return _REASONS.get(status, "Error")


def create_app(config: Config | ConfigHolder) -> ProxyApp:
    """Build the WSGI application from a config (contract.md "Embedding")."""
    return ProxyApp(config)
