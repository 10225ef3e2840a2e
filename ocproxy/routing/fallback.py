"""The fallback loop: try each model of a chain until one succeeds.

One loop for every endpoint kind and for streaming and non-streaming alike;
what differs is passed in: the attempt function, and whether circuit breakers
take part (whole answers yes, streams no). Decisions come from the failure's kind
(``errors.classify``), never from where it happened.
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


def run_chain(
    chain: Sequence[ModelConfig],
    attempt: Callable[[ModelConfig], T],
    *,
    key_count: int,
    is_cancelled: Callable[[], bool],
    breakers: BreakerRegistry | None,
    trace: Trace | None = None,
) -> ChainResult[T]:
    """Run ``attempt`` over ``chain`` until one succeeds.

    Raises ``ClientGone`` when the client left (nothing is charged),
    ``ChainExhausted`` when every model failed. Exceptions other than
    ``AttemptFailure`` (e.g. a stream that broke after its payload began)
    propagate unchanged: they end the chain.
    """
    trace = trace or Trace()
    blocked: set[str] = set()
    total = len(chain)
    for position, model in enumerate(chain, 1):
        if is_cancelled():
            raise ClientGone()
        if model.provider in blocked:
            trace.tried.append(f"{model.model_id}:provider-blocked")
            trace.failures.append((model.model_id, model.provider, "skipped (provider blocked)"))
            continue
        breaker = breakers.get(model.model_id) if breakers is not None else None
        if breaker is not None and not breaker.allow():
            log.info("circuit breaker open, skipping model model=%s", model.model_id)
            trace.tried.append(f"{model.model_id}:breaker-open")
            trace.skipped_open += 1
            trace.failures.append((model.model_id, model.provider, "circuit breaker open"))
            continue
        trace.attempts += 1
        log.debug("attempting model model=%s attempt=%d/%d", model.model_id, position, total)
        started = time.monotonic()
        try:
            value = attempt(model)
        except AttemptFailure as failure:
            if is_cancelled():
                raise ClientGone() from None
            verdict = classify(failure, key_count)
            elapsed_ms = (time.monotonic() - started) * 1000
            trace.tried.append(f"{model.model_id}:{failure.cause}")
            trace.failures.append((model.model_id, model.provider, failure))
            if verdict is Verdict.BLOCK_PROVIDER:
                blocked.add(model.provider)
                log.warning(
                    "provider blocked for this request (auth or usage limit) provider=%s model=%s error=%s",
                    model.provider, model.model_id, failure,
                )
            elif verdict is Verdict.CHARGE:
                if breaker is not None:
                    breaker.record_failure()
                log.warning(
                    "model failed, trying fallback model=%s error=%s remaining=%d ms=%.0f",
                    model.model_id, failure, total - position, elapsed_ms,
                )
            else:
                log.warning(
                    "non-retryable error (skipping circuit breaker), trying fallback model=%s error=%s remaining=%d",
                    model.model_id, failure, total - position,
                )
            continue
        if breaker is not None:
            breaker.record_success()
        trace.tried.append(f"{model.model_id}:ok")
        return ChainResult(value, model, trace)
    if breakers is not None:
        breakers.reset_all()  # the client's retry may try every model again
    raise ChainExhausted(trace)
