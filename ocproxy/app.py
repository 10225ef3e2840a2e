"""The WSGI application: routes, auth, rate limit, body read, error rendering.

Only HTTP lives here. What a ``/v1/messages`` request does upstream — the
fallback loop, translation, the stream pump — is in ``relay.py``; the
writer, the ticker and the response iterable are in ``streaming.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import os
import sqlite3
import time
from typing import Callable, Iterable
from urllib.parse import parse_qs

from werkzeug.exceptions import ClientDisconnected, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.sansio.utils import get_content_length
from werkzeug.wsgi import get_input_stream

from ocproxy import __version__, fastheaders, listing, tokens
from ocproxy.clients import Client, identify
from ocproxy.clientwatch import ClientWatch
from ocproxy.config import Config
from ocproxy.capture import Capture
from ocproxy.catalog import GO
from ocproxy.errors import ClientGone, ProxyError, UpstreamHTTPError
from ocproxy.metrics import Metrics
from ocproxy.reload import ConfigHolder
from ocproxy.inflight import InFlight
from ocproxy.logs import secrets_of
from ocproxy.relay import Call, Services, StreamRelay, answer_whole
from ocproxy.request import parse_count_tokens_request, parse_messages_request
from ocproxy.routing.chain import PromptTooLong, Route, RoutingError, build_route
from ocproxy.state import build_state
from ocproxy.state.names import ModelNames
from ocproxy.streaming import Heartbeat, StreamResponse, StreamWriter
from ocproxy.tokens import count_tokens_endpoint
from ocproxy.upstream.attempt import CancelScope
from ocproxy.upstream.client import UpstreamClient
from ocproxy.usage import dashboard
from ocproxy.usage.account import row_of
from ocproxy.usage.ledger import Ledger, connect
from ocproxy.usage.quota import Quota, limit_window

log = logging.getLogger("ocproxy.app")
access_log = logging.getLogger("ocproxy.access")

JSON = "application/json"
REDACTED_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization", "set-cookie"}

# /health answers any method (as the Go proxy did); the other routes one each.
URLS = Map(
    [
        Rule("/v1/messages", endpoint="messages", methods=["POST"]),
        Rule("/v1/messages/count_tokens", endpoint="count_tokens", methods=["POST"]),
        Rule("/v1/models", endpoint="models", methods=["GET"]),
        Rule("/v1/models/<path:model_id>", endpoint="model", methods=["GET"]),
        Rule("/health", endpoint="health"),
        Rule("/metrics", endpoint="metrics", methods=["GET"]),
        Rule("/ui", endpoint="ui", methods=["GET"]),
    ],
    merge_slashes=False,  # "//health" is not a route: 404, not a redirect
)

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 413: "Request Entity Too Large", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 529: "Overloaded"}


#: This process's id for request ids, kept up to date across a fork: asking
#: the kernel for it on every request was a syscall each. Written only here
#: and in a forked child before it runs another thread, so no lock.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class ProxyApp:
    """A PEP 3333 application. Owns the ticker thread, the upstream sessions
    and every pump thread; :meth:`close` stops and joins them."""

    def __init__(self, config: Config | ConfigHolder, client: UpstreamClient | None = None):
        self.holder = config if isinstance(config, ConfigHolder) else ConfigHolder(config)
        cfg = self.holder.current
        fastheaders.install()  # request and upstream answer headers, without the email parser
        self.client = client or UpstreamClient()
        # breakers and metric series only for configured and catalog models
        self.names = ModelNames(lambda: self.holder.current)
        self.state = build_state(cfg, self.names)  # breakers, rate limits, key rotation: memory or Redis
        self.breakers = self.state.breakers
        self.limiter = self.state.limiter
        self.metrics = Metrics(self.names.label)
        self.heartbeat = Heartbeat()  # the shared ticker: keep-alives and client watches
        self.capture = (Capture(cfg.capture_dir, cfg.capture_max_bytes, cfg.capture_backups, tuple(secrets_of(cfg)))
                        if cfg.capture_dir else None)
        self.services = Services(self.client, self.state.keys, self.breakers, self.metrics, ClientWatch(self.heartbeat),
                                 self.capture)
        self.started_at = time.time()
        tokens.preload()  # the encoder now, not inside the first request
        self.inflight = InFlight()
        self.ledger = Ledger(cfg.usage_database_path or None, cfg.usage_retention_days, cfg.usage_enabled)
        self.quota = Quota(cfg.quota_url, cfg.key_pool[0], cfg.quota_switch_at_percent, publish=self.ledger.record)
        self._ids_lock = threading.Lock()  # guards _ids
        self._ids = itertools.count(1)  # request ids: with the pid, unique on the host
        self._handlers: dict[str, Callable] = {
            "messages": self._messages,
            "count_tokens": self._count_tokens,
            "models": self._models,
            "model": self._model,
            "health": self._health,
            "metrics": self._prometheus,
            "ui": self._ui,
        }

    # -- WSGI ------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            try:
                endpoint, args = URLS.bind("ocproxy").match(path, method)
            except NotFound:
                raise ProxyError(404, "not found") from None
            except MethodNotAllowed as exc:
                allow = [("Allow", ", ".join(sorted(exc.valid_methods or ())))]
                return self._error(environ, start_response, ProxyError(405, "Method not allowed"), allow)
            if endpoint == "ui":
                _ui_key(environ)  # a browser brings the key as ?key= once, then as a cookie
            client = identify(environ, self.config)
            if client is None:
                if endpoint == "health" and method in ("GET", "HEAD"):
                    # liveness for probes that hold no key: nothing more
                    return self._json(environ, start_response, {"status": "ok"})
                if endpoint == "messages":
                    self._request_id(environ)  # a refused request still gets its id
                raise ProxyError(401, "invalid or missing API key")
            environ["ocproxy.client"] = client
            environ["ocproxy.route_args"] = args
            return self._handlers[endpoint](environ, start_response)
        except ProxyError as err:
            return self._error(environ, start_response, err)
        except Exception:
            log.exception("unhandled error serving %s %s", method, path)
            return self._error(environ, start_response, ProxyError(500, "internal error"))

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking work, end open streams with an ``error`` event, join
        every thread we own (pumps, then the ticker)."""
        self.inflight.close(timeout)
        self.heartbeat.stop()
        self.quota.close()
        self.ledger.close()
        if self.capture is not None:
            self.capture.close()
        self.client.close()
        self.state.close()

    def idle(self) -> bool:
        """No request in flight and no stream open (for graceful shutdown)."""
        return self.inflight.idle()

    @property
    def config(self) -> Config:
        return self.holder.current

    # -- rendering -------------------------------------------------------

    def _error(self, environ, start_response, err: ProxyError, extra=()) -> Iterable[bytes]:
        headers = [*extra]
        request_id = environ.get("ocproxy.request_id")
        if request_id:
            headers.append(("X-Request-ID", request_id))
        return _respond(environ, start_response, err.status, err.body(), JSON, [*headers, *err.headers])

    def _json(self, environ, start_response, obj, extra=()) -> Iterable[bytes]:
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        headers = [*extra]
        request_id = environ.get("ocproxy.request_id")
        if request_id:
            headers.append(("X-Request-ID", request_id))
        return _respond(environ, start_response, 200, body, JSON, headers)

    # -- request checks --------------------------------------------------

    def _rate_limit(self, client: Client, cfg: Config) -> None:
        """429 once ``client`` used up its requests of this minute."""
        self.limiter.configure(cfg.rate_limit_per_minute)
        if not self.limiter.allow(client.key):
            self._limited(client)

    def _admit(self, client: Client, cfg: Config):
        """The rate limit of a messages request, and the breakers it will
        ask: with Redis, one round trip decides both."""
        self.limiter.configure(cfg.rate_limit_per_minute)
        allowed, stored = self.limiter.admit(client.key)
        if not allowed:
            self._limited(client)
        return self.breakers.for_request(stored)

    def _limited(self, client: Client) -> None:
        self.metrics.inc("rate_limited")
        log.warning("rate limited client=%s", client.key)
        raise ProxyError(429, "rate limited")

    def _request_id(self, environ: dict) -> str:
        rid = environ.get("HTTP_X_REQUEST_ID")
        if not rid:
            with self._ids_lock:
                # the pid keeps ids unique across the worker processes of a WSGI host
                rid = f"req-{int(time.time())}-{_pid}-{next(self._ids)}"
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
            "rate_limited", "p95_latency_ms", "p99_latency_ms", "fallbacks", "client_cancelled")}
        # The Go proxy's field set: "upstream_calls" counted the same moments
        # as requests_success, and its request dedup was never on.
        metrics["upstream_calls"] = snap["requests_success"]
        metrics["deduplicated"] = 0
        metrics["streams_open"] = snap["streams_open"]
        breakers = self.breakers.states()
        # Degraded while a breaker is not closed or the last requests all
        # failed (a fully failed request closes every breaker again).
        degraded = any(state != "closed" for state in breakers.values()) or self.metrics.recent_all_failed()
        body = {
            "status": "degraded" if degraded else "ok",
            "service": "ocproxy",
            "version": __version__,
            "uptime_s": int(time.time() - self.started_at),
            "metrics": metrics,
            "circuit_breakers": breakers,
            "last_failures": self.metrics.last_failures(),
            "models": snap["models"],
        }
        quota = self.quota.snapshot()
        if quota:
            body["go_quota"] = quota
        return self._json(environ, start_response, body, extra=[("X-Content-Type-Options", "nosniff")])

    def _prometheus(self, environ, start_response):
        gauges = {
            "uptime_seconds": ("Seconds since the proxy started", time.time() - self.started_at),
        }
        for window in self.quota.windows():
            gauges[f"go_quota_{window.window}_percent"] = (
                f"Percent of the OpenCode Go {window.window} usage window used", window.percent)
        text = self.metrics.prometheus(gauges, self.breakers.states())
        return _respond(environ, start_response, 200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _ui(self, environ, start_response):
        """The dashboard (its key was checked like any route's, see _ui_key)."""
        cfg = self.config
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        extra = []
        given = query.pop("key", "")
        if given and cfg.client_api_keys:
            extra.append(("Set-Cookie", f"{UI_COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/ui"))
        filters = {k: query[k] for k in ("model", "session", "outcome") if query.get(k)}
        live = {"breakers": self.breakers.states(), "streams_open": self.metrics.snapshot()["streams_open"],
                "quota": self.quota.snapshot(), "version": __version__}
        snap = dashboard.Snapshot(hours=24)
        if cfg.usage_database_path and os.path.exists(cfg.usage_database_path):
            try:
                conn = connect(cfg.usage_database_path, readonly=True)
                try:
                    snap = dashboard.collect(conn, 24, filters=filters)
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                log.warning("dashboard cannot read the usage ledger: %s", exc)
        page = dashboard.render(snap, live, filters).encode()
        extra += [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                  ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")]
        return _respond(environ, start_response, 200, page, "text/html; charset=utf-8", extra)

    def _models(self, environ, start_response):
        try:
            page = listing.parse_page(parse_qs(environ.get("QUERY_STRING", "")))
            body = listing.models_listing(self.config, page)
        except listing.ListingError as exc:
            raise ProxyError(400, str(exc)) from None
        return self._json(environ, start_response, body)

    def _model(self, environ, start_response):
        model_id = environ["ocproxy.route_args"]["model_id"]
        info = listing.model_info(self.config, model_id)
        if info is None:
            raise ProxyError(404, f"model {model_id!r} not found (GET /v1/models lists them)")
        return self._json(environ, start_response, info)

    def _count_tokens(self, environ, start_response):
        cfg = self.config
        self._rate_limit(environ["ocproxy.client"], cfg)
        req = parse_count_tokens_request(read_body(environ, cfg.max_request_bytes))
        n = count_tokens_endpoint(req)
        return self._json(environ, start_response, {"input_tokens": n, "token_count": n})

    def _messages(self, environ, start_response):
        started = time.monotonic()
        cfg = self.config  # one config for the whole request, even across a reload
        rid = self._request_id(environ)
        client: Client = environ["ocproxy.client"]
        breakers = self._admit(client, cfg)
        raw = read_body(environ, cfg.max_request_bytes)
        if cfg.log_requests:
            self._log_request_headers(environ, len(raw))
        req = parse_messages_request(raw)
        self.metrics.inc("requests_received")
        if req.stream:
            self.metrics.inc("requests_streamed")
        log.info(
            "received request id=%s client=%s model=%s streaming=%s messages=%d tools=%d max_tokens=%s",
            rid, client.key, req.model, req.stream, len(req.messages), len(req.tools), req.max_tokens,
        )
        self.breakers.configure(cfg.breaker_threshold, cfg.breaker_recovery_ms / 1000.0)
        try:
            route = build_route(req, cfg, req.stream)
        except RoutingError as exc:
            log.error("routing failed id=%s: %s", rid, exc)
            raise ProxyError(500, "routing failed") from None
        except PromptTooLong as exc:
            log.warning("no model can hold the request id=%s: %s", rid, exc)
            raise ProxyError(400, str(exc)) from None
        route = self._quota_route(route, rid)
        log.info(
            "routing request id=%s scenario=%s model=%s provider=%s tokens=%d",
            rid, route.scenario, route.primary.model_id, route.primary.provider, route.token_count,
        )
        call = Call(cfg, req, environ, rid, route, started, breakers=breakers)
        call.on_done = self._account
        if req.stream:
            return self._stream(call, start_response)
        try:
            with self.inflight.whole():
                body = answer_whole(call, self.services)
        except ClientGone:  # nobody is left to read an answer
            start_response("499 Client Closed Request", [("Content-Length", "0")])
            return []
        # The body names the client's model; this header the one that answered.
        return self._json(environ, start_response, body, extra=[("x-ocproxy-model", call.answered_by)])

    def _quota_route(self, route: Route, rid: str) -> Route:
        """Skip Go models while a Go usage window is exhausted or past
        ``quota.switch_at_percent``, if the chain has another model."""
        self.quota.touch()
        paused = self.quota.go_paused()
        if not paused:
            return route
        others = tuple(m for m in route.chain if m.provider != GO)
        if not others or len(others) == len(route.chain):
            return route
        log.info("skipping OpenCode Go models id=%s: %s", rid, paused)
        return dataclasses.replace(route, chain=others)

    def _account(self, call: Call, trace, outcome: str) -> None:
        """After every request: its tokens in /metrics, its ledger row, and
        what a Go usage-limit answer says about the quota."""
        for _, provider, failure in trace.failures:
            if provider == GO and isinstance(failure, UpstreamHTTPError):
                window = limit_window(failure.body, failure.retry_after, time.time())
                if window is not None:
                    self.quota.exhausted(window)
        client = call.environ.get("ocproxy.client")
        row = row_of(call, trace, outcome, client.name if client is not None else "")
        if row.model:
            self.metrics.usage(row.model, row.tokens, row.cost_usd)
        if self.ledger.enabled:
            self.ledger.record(row)

    def _stream(self, call: Call, start_response):
        writer = StreamWriter(call.cfg.heartbeat_interval)
        scope = CancelScope()
        relay = StreamRelay(call, self.services, writer, scope)
        # The headers leave with the first payload (naming the model that
        # answered) or as the whole error when every model failed before it.
        def done() -> None:
            self.inflight.forget_stream(response)
            self.metrics.stream_closed()

        response = StreamResponse(writer, relay.pump, self.heartbeat, scope.cancel, on_done=done,
                                  start_response=start_response)
        self.inflight.add_stream(response, scope)
        self.metrics.stream_opened()
        return response


def read_body(environ: dict, limit: int) -> bytes:
    """The request body: 413 past ``limit`` bytes, 400 when the client sends
    less than its ``Content-Length`` or a ``Content-Length`` that is no number."""
    declared = environ.get("CONTENT_LENGTH") or ""
    if declared:
        try:
            int(declared)
        except ValueError:
            raise ProxyError(400, "invalid Content-Length") from None
    sized = get_content_length(declared or None, environ.get("HTTP_TRANSFER_ENCODING")) is not None
    if not sized and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
        # A host that hands a chunked body on undecoded still ends it: read to its end.
        environ.setdefault("wsgi.input_terminated", True)
    # Without a length, reading one byte past the limit is what proves a body too large.
    most = limit if sized else limit + 1
    try:
        body = get_input_stream(environ, max_content_length=most).read()
    except RequestEntityTooLarge:
        raise ProxyError(413, "request body too large") from None
    except ClientDisconnected as exc:
        # werkzeug turns every read error into this; a timeout is the
        # server's deadline for a whole request, not a short body
        if isinstance(exc.__context__, TimeoutError):
            raise ProxyError(408, "request body not received in time", "invalid_request_error") from None
        raise ProxyError(400, "request body shorter than Content-Length") from None
    except TimeoutError:
        raise ProxyError(408, "request body not received in time", "invalid_request_error") from None
    if len(body) > limit:
        raise ProxyError(413, "request body too large")
    return body


UI_COOKIE = "ocproxy_key"


def _ui_key(environ: dict) -> None:
    """The dashboard's key from ``?key=`` or its cookie, as if sent as x-api-key."""
    if environ.get("HTTP_X_API_KEY") or environ.get("HTTP_AUTHORIZATION"):
        return
    query = parse_qs(environ.get("QUERY_STRING", ""))
    given = (query.get("key") or [""])[-1] or _cookie(environ, UI_COOKIE)
    if given:
        environ["HTTP_X_API_KEY"] = given


def _cookie(environ: dict, name: str) -> str:
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def _respond(environ, start_response, status: int, body: bytes, content_type: str, headers=()) -> list[bytes]:
    """A whole response; a HEAD request gets the headers alone. Plain tuples
    rather than a werkzeug Response: on the non-streaming path that object
    cost more CPU than the rest of the app's own work for a request."""
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def create_app(config: Config | ConfigHolder) -> ProxyApp:
    """Build the WSGI application from a config object."""
    return ProxyApp(config)
