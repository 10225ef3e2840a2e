"""One request's trip upstream and back, whole or streamed.

For each model the fallback loop tries, a :class:`Leg` builds the upstream
call (URL, headers, body); the client sends it; the dialect turns the answer
(or each streamed chunk) into Anthropic Messages output; a stream is written
to the :class:`~ocproxy.streaming.StreamWriter`. What happens after a failed
streamed attempt is decided by :func:`after_failure`, a plain function.

The app (``app.py``) does HTTP: it calls :func:`answer_whole` and renders
what it returns or raises, or hands a :class:`StreamRelay`'s ``pump`` to the
streaming shell.
"""

from __future__ import annotations

import enum
import http
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from ocproxy.capture import Capture, StreamTee
from ocproxy.clientwatch import ClientWatch, client_socket, gone_probe
from ocproxy.config import Config, ModelConfig
from ocproxy.errors import AttemptFailure, ClientGone, ProxyError, UpstreamDataError, describe
from ocproxy.hedging import HedgeClosed, Race
from ocproxy.logs import secrets_of
from ocproxy.metrics import Metrics
from ocproxy.request import MessagesRequest
from ocproxy.routing.breaker import BreakerRegistry
from ocproxy.routing.chain import Route
from ocproxy.routing.fallback import ChainExhausted, ChainResult, Contest, Trace, run_chain
from ocproxy.streaming import SSE_HEADERS, Head, StreamWriter, whole_error
from ocproxy.translate import content
from ocproxy.translate.ids import sequential
from ocproxy.translate.sse import error_frame
from ocproxy.upstream import targets
from ocproxy.upstream.attempt import Attempt, CancelScope
from ocproxy.upstream.client import UpstreamClient
from ocproxy.upstream.identity import KeyRotator, session_id, upstream_headers
from ocproxy.usage.record import AnswerTokens

log = logging.getLogger("ocproxy.app")


class ServerClosing(ClientGone):
    """The server is shutting down: stop like for a departed client; the
    stream already got its ``error`` frame from ``ProxyApp.close``."""


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


@dataclass
class Services:
    """What every request's relay shares for the app's life. The app owns
    these objects and closes them (``ProxyApp.close``)."""

    client: UpstreamClient
    keys: KeyRotator
    breakers: BreakerRegistry
    metrics: Metrics
    watch: ClientWatch
    capture: Capture | None = None  # logging.capture: every upstream exchange to a file


@dataclass
class Call:
    """What one ``/v1/messages`` request carries through its attempts."""

    cfg: Config
    req: MessagesRequest
    environ: dict
    rid: str
    route: Route
    started: float  # time.monotonic() when the request arrived
    session: str = field(init=False)
    #: the model_id that answered (the x-ocproxy-model header); "" until one did
    answered_by: str = field(init=False, default="")
    #: called once when the request ended, however it ended (the usage ledger)
    on_done: Callable[["Call", Trace, str], None] | None = None
    #: the status the client was given (an error's, when every model failed)
    status: int = field(init=False, default=200)
    #: time.monotonic() of the first payload byte to the client; None before it
    first_byte_at: float | None = field(init=False, default=None)
    #: the answer's token counts, read from what the client was sent
    tokens: AnswerTokens = field(init=False, default_factory=AnswerTokens)
    #: the breakers this request asks (``for_request``); None: the services' own
    breakers: BreakerRegistry | None = None

    def __post_init__(self) -> None:
        self.session = session_id(self.environ.get("HTTP_X_CLAUDE_CODE_SESSION_ID"), self.req)

    def log_done(self, trace: Trace, outcome: str, model: str | None = None) -> None:
        log.info(
            "request completed id=%s scenario=%s outcome=%s model=%s attempts=%d chain=%s ms=%.0f",
            self.rid, self.route.scenario, outcome, model or "-", trace.attempts, ",".join(trace.tried),
            (time.monotonic() - self.started) * 1000,
        )
        if self.on_done is not None:
            self.on_done(self, trace, outcome)


class Leg:
    """The upstream call of one attempt on ``model``, and the conversions of
    its answer. Every call into a dialect is here and nowhere else."""

    def __init__(self, call: Call, model: ModelConfig, stream: bool, keys: KeyRotator):
        target = targets.resolve(call.cfg, model)
        self.model = model
        self._rid = call.rid
        self._dialect = target.dialect
        # The answer speaks the client's model name, whoever answers it.
        self._name = call.req.model or model.model_id
        # message and tool ids of this attempt's answer; random reseeds itself in a
        # forked child, and os.urandom was a getrandom syscall letting go of the GIL
        self._ids = sequential(f"{random.getrandbits(64):016x}")
        self.url = target.url(stream)
        self.headers = upstream_headers(target.endpoint, keys.next_key(model.provider, call.cfg.key_pool),
                                        target.provider.user_agent, call.environ)
        self.headers["x-opencode-session"] = call.session
        if stream:
            self.headers["Accept"] = "text/event-stream"
        # Only a reply whose limit came from the config can be cut "by the config".
        self._cap_binding = content.capped_by_setting(call.req, model)
        self._asked = call.req.max_tokens
        warnings: list[str] = []
        try:
            self.body = self._dialect.body(call.req, model, stream, warnings)
        except Exception as exc:  # a conversion bug must fail this attempt, not the request
            log.exception("building the %s request for %s failed", target.endpoint, model.model_id)
            raise UpstreamDataError(f"transform error: {exc}") from None
        self._log(warnings)

    def answer(self, data: bytes) -> bytes:
        """A whole upstream answer as an Anthropic Messages response body."""
        warnings: list[str] = []
        message = self._dialect.response(data, self.model, self._ids, warnings, self._name)
        self._log(warnings)
        if self._cap_binding and cut_at_max_tokens([message]):
            self.warn_cut()
        return message

    def warn_cut(self) -> None:
        log.warning("reply cut at max_tokens=%d, the max_tokens setting of model %s in the config "
                    "(the client asked for %s): raise or remove that setting id=%s",
                    self.model.max_tokens, self.model.model_id, self._asked, self._rid)

    def _log(self, warnings: list[str]) -> None:
        for warning in warnings:
            log.warning("%s id=%s", warning, self._rid)

    def translator(self):
        """A fresh stream translator: ``feed(bytes) -> frames``, ``close()``,
        ``done``."""
        translator = self._dialect.translator(self.model, self._ids, self._name)
        return CutWatch(translator, self.warn_cut) if self._cap_binding else translator

    @property
    def pauses_heartbeat(self) -> bool:
        """Raw passthrough carries the upstream's own pings: ours stay silent."""
        return self._dialect.pauses_heartbeat


#: A stop_reason of max_tokens as an event's own key; inside a JSON string the
#: quotes would be escaped, so text that merely mentions it does not match.
_MAX_TOKENS_STOP = re.compile(rb'"stop_reason"\s*:\s*"max_tokens"')


def cut_at_max_tokens(frames: list[bytes]) -> bool:
    """Some frame (or a whole message) ends the reply at its token limit."""
    return any(_MAX_TOKENS_STOP.search(f) for f in frames)


class CutWatch:
    """A stream translator that calls ``on_cut`` once when the reply it
    translates stops at max_tokens; everything else passes through."""

    def __init__(self, inner, on_cut: Callable[[], None]):
        self._inner, self._on_cut = inner, on_cut

    def _check(self, frames: list[bytes]) -> list[bytes]:
        if self._on_cut is not None and frames and cut_at_max_tokens(frames):
            self._on_cut()
            self._on_cut = None
        return frames

    def feed(self, chunk: bytes) -> list[bytes]:
        return self._check(self._inner.feed(chunk))

    def close(self) -> list[bytes]:
        return self._check(self._inner.close())

    @property
    def done(self) -> bool:
        return self._inner.done


# -- whole answers ----------------------------------------------------------


class WholeRelay:
    """The attempts of one non-streaming request; ``scope`` aborts the one
    in flight when the client leaves."""

    def __init__(self, call: Call, services: Services, scope: CancelScope):
        self.call, self.services, self.scope = call, services, scope

    def attempt(self, model: ModelConfig) -> bytes:
        leg = Leg(self.call, model, False, self.services.keys)
        timeout = self.call.cfg.provider(model).request_timeout
        handle = Attempt(time.monotonic() + timeout, timeout)
        self.scope.bind(handle)
        capture = self.services.capture
        try:
            data = self.services.client.post(leg.url, leg.headers, leg.body, handle)
        except AttemptFailure as failure:
            if capture is not None:
                capture.exchange(self.call.rid, model.model_id, leg.url, leg.headers, leg.body,
                                 getattr(failure, "status", None), getattr(failure, "body", "").encode(), str(failure))
            raise
        finally:
            self.scope.bind(None)
        if capture is not None:
            capture.exchange(self.call.rid, model.model_id, leg.url, leg.headers, leg.body, 200, data)
        return leg.answer(data)


def answer_whole(call: Call, services: Services) -> bytes:
    """The response body of a non-streaming request. Raises ``ClientGone``
    when the client left, and when every model failed the ``ProxyError``
    that says why (401, 429, 502 or 529; see ``ChainExhausted.error``)."""
    trace = Trace()
    scope = CancelScope()
    relay = WholeRelay(call, services, scope)
    gone = gone_probe(call.environ)
    sock = client_socket(call.environ)
    if sock is not None:
        services.watch.add(sock, scope)
    metrics = services.metrics
    try:
        try:
            # The socket is probed only after an attempt: before the first
            # one the client has only just sent its request, and the watch
            # would abort that attempt within a tick anyway.
            result = run_chain(call.route.chain, relay.attempt, key_count=len(call.cfg.key_pool),
                               is_cancelled=lambda: scope.cancelled or (trace.attempts > 0 and gone()),
                               breakers=call.breakers or services.breakers, trace=trace)
        finally:
            if sock is not None:
                services.watch.discard(sock)
    except ClientGone:
        metrics.inc("client_cancelled")
        log.info("request context canceled during non-streaming fallback id=%s", call.rid)
        call.status = 499
        call.log_done(trace, "cancelled")
        raise
    except ChainExhausted as exc:
        metrics.inc("requests_failed")
        metrics.inc("fallbacks", exc.trace.attempts)
        err = exc.error("all models failed", secrets_of(call.cfg))
        call.status = err.status
        call.log_done(trace, "all-failed")
        _record_failures(call, metrics, trace, ok=False)
        raise err from None
    call.first_byte_at = time.monotonic()
    if call.on_done is not None:
        call.tokens.feed_body(result.value)
    _succeeded(call, metrics, trace, result, call.started)
    return result.value


def _record_failures(call: Call, metrics: Metrics, trace: Trace, ok: bool) -> None:
    """Each model's failure and the request's outcome, for /health."""
    for model_id, _, failure in trace.failures:
        if isinstance(failure, AttemptFailure):
            metrics.model_failed(model_id, describe(failure, secrets_of(call.cfg)))
    metrics.outcome(ok)


def _succeeded(call: Call, metrics: Metrics, trace: Trace, result: ChainResult, since: float) -> None:
    call.answered_by = result.model.model_id
    _record_failures(call, metrics, trace, ok=True)
    metrics.inc("fallbacks", trace.attempts - 1)
    metrics.success(result.model.model_id, time.monotonic() - since)
    call.log_done(trace, "ok", result.model.model_id)


# -- streams ------------------------------------------------------------------


class Next(enum.Enum):
    """What a failed streamed attempt leads to."""

    CLIENT_GONE = "client-gone"  # stop quietly: nothing to answer, nothing charged
    STREAM_BROKEN = "stream-broken"  # the client already has payload: one error frame, no fallback
    FALL_BACK = "fall-back"  # the client saw nothing yet: the chain tries its next model


def after_failure(*, client_gone: bool, payload_written: bool) -> Next:
    """Decide what a failed streamed attempt becomes. A departed client
    wins over everything (its failure is our abort); after payload went
    out a second model's answer cannot be spliced into the first one."""
    if client_gone:
        return Next.CLIENT_GONE
    if payload_written:
        return Next.STREAM_BROKEN
    return Next.FALL_BACK


def stream_head(rid: str, model_id: str) -> Head:
    """A stream's 200 head, sent with its first payload: it names the model
    that answered."""
    return "200 OK", [*SSE_HEADERS, ("X-Request-ID", rid), ("x-ocproxy-model", model_id)]


def status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Overloaded" if status == 529 else f"{status} Error"


def error_answer(rid: str, err: ProxyError) -> tuple[Head, bytes]:
    """``err`` as a whole JSON answer, for a stream that failed before its
    headers: the same status, type and ``Retry-After`` as a non-streaming
    request gets, so the client's SDK raises (and retries) alike."""
    return whole_error(status_line(err.status), err.body(), [("X-Request-ID", rid), *err.headers])


def copy_stream(upstream, translator, writer: StreamWriter, pauses_heartbeat: bool = False,
                payload_began: Callable[[], None] | None = None, head: Head | None = None,
                claim: Callable[[], bool] | None = None,
                seen: Callable[[list[bytes]], None] | None = None) -> None:
    """Translate ``upstream`` chunk by chunk into ``writer``, then finish it.
    Raises ``ClientGone`` when the writer refuses frames (client left).
    ``payload_began`` is called once, after the first frames went out;
    ``head`` goes out with them. ``claim`` (hedging) is asked before the
    first frames: False means another attempt won, and this one stops.
    ``seen`` is called with every batch of frames written (usage counting)."""
    began = False

    def first(frames: list[bytes]) -> None:
        nonlocal began
        if claim is not None and not claim():
            raise HedgeClosed()
        # Paused from the first payload on (no keep-alive goes out before
        # it anyway), so a hedged attempt that lost never touches the switch.
        if pauses_heartbeat:
            writer.pause(True)
        began = True
        if not writer.write(frames, head):
            raise ClientGone()
        if seen is not None:
            seen(frames)
        if payload_began is not None:
            payload_began()

    try:
        for chunk in upstream:
            frames = translator.feed(chunk)
            if frames:
                if not began:
                    first(frames)
                elif not writer.write(frames):
                    raise ClientGone()
                elif seen is not None:
                    seen(frames)
            if translator.done:
                break
        final = translator.close()
        if final and not began:  # the closing frames are the whole payload
            first(final)
            final = []
    finally:
        upstream.close()
        if pauses_heartbeat and began:
            writer.pause(False)
    if writer.gone:
        raise ClientGone()
    if seen is not None:
        seen(final)
    writer.finish(final)


class StreamRelay:
    """The attempts of one streaming request, run by :meth:`pump` in the
    stream's pump thread. ``scope`` is cancelled when the client leaves or
    the server closes, which aborts the upstream read in flight."""

    def __init__(self, call: Call, services: Services, writer: StreamWriter, scope: CancelScope):
        self.call, self.services, self.writer, self.scope = call, services, writer, scope
        self.trace = Trace()
        self._gone = gone_probe(call.environ)
        self._sock = client_socket(call.environ)
        self._current = ""  # the model of the attempt in flight

    def attempt(self, model: ModelConfig, scope: CancelScope | None = None,
                claim: Callable[[], bool] | None = None) -> None:
        """One streamed attempt on ``model``; a hedged race runs it with the
        contestant's own ``scope`` and ``claim``."""
        scope = scope or self.scope
        self._current = model.model_id
        leg = Leg(self.call, model, True, self.services.keys)
        provider = self.call.cfg.provider(model)
        handle = Attempt(time.monotonic() + provider.streaming_timeout, provider.stream_idle_timeout,
                         first_byte=provider.first_byte_timeout)
        scope.bind(handle)
        capture, tee, error = self.services.capture, None, ""
        try:
            upstream = self.services.client.open_stream(leg.url, leg.headers, leg.body, handle)
            if capture is not None:
                upstream = tee = StreamTee(upstream)
            copy_stream(upstream, leg.translator(), self.writer, leg.pauses_heartbeat,
                        lambda: (self._payload_began(handle), self._unwatch()),
                        stream_head(self.call.rid, model.model_id), claim,
                        self.call.tokens.feed if self.call.on_done is not None else None)
        except AttemptFailure as failure:
            error = str(failure)
            decision = after_failure(client_gone=self.writer.gone or self.scope.cancelled,
                                     payload_written=self.writer.payload_written)
            if decision is Next.CLIENT_GONE:
                raise ClientGone() from None
            if decision is Next.STREAM_BROKEN:
                raise StreamBroken(failure) from None
            raise
        finally:
            scope.bind(None)
            if capture is not None:
                capture.exchange(self.call.rid, model.model_id, leg.url, leg.headers, leg.body,
                                 200 if tee is not None else None, bytes(tee.kept) if tee else b"", error)

    def _payload_began(self, handle: Attempt) -> None:
        handle.payload_began()
        self.call.first_byte_at = time.monotonic()

    def hedged_attempt(self, model: ModelConfig, partner: Callable[[], ModelConfig | None]) -> Contest:
        hedge_after = self.call.route.primary.hedge_after_ms / 1000.0
        return Race(self, hedge_after).run(model, partner)

    def cancelled(self) -> bool:
        return self.writer.gone or self.scope.cancelled or self._gone()

    def _unwatch(self) -> None:
        """Once the headers are out, writes and keep-alives notice a
        departed client; the socket watch is for the wait before them."""
        if self._sock is not None:
            self.services.watch.discard(self._sock)

    def pump(self, writer: StreamWriter) -> None:
        """Run the chain; end ``writer`` however it ends. Breakers are
        consulted and charged as for a whole answer, for failures before
        the first payload byte; a stream broken after it charges nothing."""
        call, metrics, trace = self.call, self.services.metrics, self.trace
        first_attempt = time.monotonic()
        # No keep-alive goes out before the headers, so a client that hangs
        # up meanwhile is seen by the socket watch (as for a whole answer).
        if self._sock is not None:
            self.services.watch.add(self._sock, self.scope)
        try:
            try:
                hedged = call.route.primary.hedge_after_ms > 0
                result = run_chain(call.route.chain, self.hedged_attempt if hedged else self.attempt,
                                   key_count=len(call.cfg.key_pool), is_cancelled=self.cancelled,
                                   breakers=call.breakers or self.services.breakers, trace=trace, hedged=hedged)
            finally:
                self._unwatch()
        except ClientGone:
            metrics.inc("client_cancelled")
            log.debug("client disconnected during stream id=%s", call.rid)
            call.status = 499
            call.log_done(trace, "cancelled")
        except ChainExhausted as exc:
            metrics.inc("requests_failed")
            _record_failures(call, metrics, trace, ok=False)
            err = exc.error("all upstream models failed", secrets_of(call.cfg))
            writer.fail(error_answer(call.rid, err), [error_frame(err.message, err.kind)])
            call.status = err.status
            call.log_done(trace, "all-failed")
        except StreamBroken as broken:
            metrics.inc("requests_failed")
            log.warning("stream failed after payload started id=%s cause=%s error=%s",
                        call.rid, broken.failure.cause, broken.failure)
            _record_failures(call, metrics, trace, ok=False)
            writer.finish([error_frame(broken.client_message)])
            call.status = 502
            call.answered_by = self._current  # it answered in part
            call.log_done(trace, broken.failure.cause)
        except Exception:
            metrics.inc("requests_failed")
            log.exception("stream pump failed id=%s", call.rid)
            writer.fail(error_answer(call.rid, ProxyError(500, "internal proxy error")),
                        [error_frame("internal proxy error")])
            call.status = 500
            call.log_done(trace, "internal-error")
        else:
            _succeeded(call, metrics, trace, result, first_attempt)
