"""The fallback loop: try each model of a chain until one succeeds.

One loop for every endpoint kind and for streaming and non-streaming alike;
what differs is passed in: the attempt function, and whether a streamed
attempt may race the chain's next model (hedging). Decisions come from the
failure's kind (``errors.classify``), never from where it happened.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, Sequence, TypeVar

from ocproxy.config import ModelConfig
from ocproxy.errors import AttemptFailure, ClientGone, ProxyError, Verdict, classify, exhausted_error
from ocproxy.routing.breaker import BreakerRegistry

log = logging.getLogger("ocproxy.fallback")

T = TypeVar("T")


@dataclass
class Trace:
    """What the loop did, for the request log line and metrics."""

    tried: list[str] = field(default_factory=list)  # "model_id:outcome"
    attempts: int = 0
    skipped_open: int = 0
    #: (model id, provider, the failure or why the model was skipped), for
    #: the client's error message and /health
    failures: list[tuple[str, str, AttemptFailure | str]] = field(default_factory=list)


@dataclass
class ChainResult(Generic[T]):
    value: T
    model: ModelConfig
    trace: Trace


class ChainExhausted(Exception):
    """Every model failed or was skipped (and the client is still there)."""

    def __init__(self, trace: Trace):
        super().__init__("all models failed")
        self.trace = trace

    def error(self, prefix: str, secrets: Sequence[str] = ()) -> ProxyError:
        """What the client is told: each model and what it answered, with
        ``secrets`` (the keys) redacted."""
        return exhausted_error(self.trace.failures, prefix, secrets)


@dataclass
class Contest(Generic[T]):
    """How a hedged attempt ended when one contestant answered: the
    ``winner``'s value, the contestants that failed before it (charged as
    any failure), and those closed because another won (never charged)."""

    value: T
    winner: ModelConfig
    failed: list[tuple[ModelConfig, AttemptFailure]] = field(default_factory=list)
    closed: list[ModelConfig] = field(default_factory=list)


class ContestLost(Exception):
    """Every contestant of a hedged attempt failed (in this order)."""

    def __init__(self, failed: list[tuple[ModelConfig, AttemptFailure]]):
        super().__init__("every hedged model failed")
        self.failed = failed


def run_chain(
    chain: Sequence[ModelConfig],
    attempt: Callable[..., T],
    *,
    key_count: int,
    is_cancelled: Callable[[], bool],
    breakers: BreakerRegistry | None,
    trace: Trace | None = None,
    hedged: bool = False,
) -> ChainResult[T]:
    """Run ``attempt`` over ``chain`` until one succeeds.

    Raises ``ClientGone`` when the client left (nothing is charged),
    ``ChainExhausted`` when every model failed. Exceptions other than
    ``AttemptFailure`` (e.g. a stream that broke after its payload began)
    propagate unchanged: they end the chain.

    With ``hedged``, the call is ``attempt(model, next_model)`` and returns
    a :class:`Contest` (or raises ``ContestLost``): ``next_model()`` hands
    over the chain's next model that may be tried now (or None), which the
    chain then does not try again.
    """
    trace = trace or Trace()
    blocked: set[str] = set()
    pending = list(chain)
    total = len(chain)
    breaker_of = (lambda m: breakers.get(m.model_id)) if breakers is not None else (lambda m: None)

    def next_allowed() -> ModelConfig | None:
        """Pop models until one may be tried: its provider is not blocked
        and its breaker lets it through. Skips are recorded."""
        while pending:
            model = pending.pop(0)
            if model.provider in blocked:
                trace.tried.append(f"{model.model_id}:provider-blocked")
                trace.failures.append((model.model_id, model.provider, "skipped (provider blocked)"))
                continue
            breaker = breaker_of(model)
            if breaker is not None and not breaker.allow():
                log.info("circuit breaker open, skipping model model=%s", model.model_id)
                trace.tried.append(f"{model.model_id}:breaker-open")
                trace.skipped_open += 1
                trace.failures.append((model.model_id, model.provider, "circuit breaker open"))
                continue
            return model
        return None

    def failed(model: ModelConfig, failure: AttemptFailure, elapsed_ms: float) -> None:
        verdict = classify(failure, key_count)
        trace.tried.append(f"{model.model_id}:{failure.cause}")
        trace.failures.append((model.model_id, model.provider, failure))
        left = len(pending)
        if verdict is Verdict.BLOCK_PROVIDER:
            blocked.add(model.provider)
            log.warning(
                "provider blocked for this request (auth or usage limit) provider=%s model=%s error=%s",
                model.provider, model.model_id, failure,
            )
        elif verdict is Verdict.CHARGE:
            breaker = breaker_of(model)
            if breaker is not None:
                breaker.record_failure()
            log.warning(
                "model failed, trying fallback model=%s error=%s remaining=%d ms=%.0f",
                model.model_id, failure, left, elapsed_ms,
            )
        else:
            log.warning(
                "non-retryable error (skipping circuit breaker), trying fallback model=%s error=%s remaining=%d",
                model.model_id, failure, left,
            )

    def hedge_partner() -> ModelConfig | None:
        model = next_allowed()
        if model is not None:
            trace.attempts += 1
            log.info("no first byte yet, starting a hedge model=%s", model.model_id)
        return model

    while True:
        if is_cancelled():
            raise ClientGone()
        model = next_allowed()
        if model is None:
            break
        trace.attempts += 1
        log.debug("attempting model model=%s attempt=%d/%d", model.model_id, total - len(pending), total)
        started = time.monotonic()
        try:
            if not hedged:
                value, winner = attempt(model), model
            else:
                contest = attempt(model, hedge_partner)
                for loser, failure in contest.failed:
                    failed(loser, failure, (time.monotonic() - started) * 1000)
                for loser in contest.closed:
                    trace.tried.append(f"{loser.model_id}:hedge-closed")
                value, winner = contest.value, contest.winner
        except AttemptFailure as failure:
            if is_cancelled():
                raise ClientGone() from None
            failed(model, failure, (time.monotonic() - started) * 1000)
            continue
        except ContestLost as lost:
            if is_cancelled():
                raise ClientGone() from None
            for loser, failure in lost.failed:
                failed(loser, failure, (time.monotonic() - started) * 1000)
            continue
        breaker = breaker_of(winner)
        if breaker is not None:
            breaker.record_success()
        trace.tried.append(f"{winner.model_id}:ok")
        return ChainResult(value, winner, trace)
    if breakers is not None:
        breakers.reset_all()  # the client's retry may try every model again
    raise ChainExhausted(trace)
