"""Per-model circuit breakers.

A breaker stops the non-streaming fallback loop from wasting a request's
time on a model that keeps failing with retryable errors. The state table
is reproduced exactly from the Go proxy, quirks included: the request that
moves open → half_open is admitted without counting as a probe, so up to
four requests get through in half-open before three successes close it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ocproxy.config.types import DEFAULTS

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# The config's defaults, for a breaker made without settings or given a non-positive one.
DEFAULT_THRESHOLD = DEFAULTS.breaker_threshold
DEFAULT_RECOVERY_S = DEFAULTS.breaker_recovery_ms / 1000.0
HALF_OPEN_MAX = 3  # fixed: probes admitted in half-open, and successes to close

Clock = Callable[[], float]


def _threshold(value: int) -> int:
    return value if value > 0 else DEFAULT_THRESHOLD


def _recovery(value: float) -> float:
    return value if value > 0 else DEFAULT_RECOVERY_S


class CircuitBreaker:
    """One model id's breaker; every method is atomic."""

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        recovery_s: float = DEFAULT_RECOVERY_S,
        clock: Clock = time.monotonic,
    ):
        # Guards state, failures, successes, probes, last_failure and the two
        # parameters: concurrent requests for the same model read-modify-write
        # them, and a hot reload may change the parameters meanwhile.
        self._lock = threading.Lock()
        self._clock = clock
        self._threshold = _threshold(threshold)
        self._recovery = _recovery(recovery_s)
        self._state = CLOSED
        self._failures = 0
        self._successes = 0
        self._probes = 0
        self._last_failure = 0.0

    @property
    def state(self) -> str:
        """The stored state: an expired ``open`` stays ``open`` until the
        next ``allow()`` (what /health reports)."""
        with self._lock:
            return self._state

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "state": self._state,
                "failures": self._failures,
                "successes": self._successes,
                "probes": self._probes,
                "last_failure": self._last_failure,
            }

    def configure(self, threshold: int, recovery_s: float) -> None:
        """New parameters (hot reload); the state is kept."""
        with self._lock:
            self._threshold = _threshold(threshold)
            self._recovery = _recovery(recovery_s)

    def allow(self) -> bool:
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._last_failure > self._recovery:
                    self._state = HALF_OPEN
                    self._probes = 0
                    return True
                return False
            if self._probes < HALF_OPEN_MAX:
                self._probes += 1
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._state == CLOSED:
                self._failures = 0
            elif self._state == HALF_OPEN:
                self._successes += 1
                if self._successes >= HALF_OPEN_MAX:
                    self._state = CLOSED
                    self._failures = 0
                    self._successes = 0
            # open: a late success from before the breaker opened changes nothing

    def record_failure(self) -> None:
        with self._lock:
            self._last_failure = self._clock()
            self._failures += 1
            if self._state == CLOSED:
                if self._failures >= self._threshold:
                    self._state = OPEN
            elif self._state == HALF_OPEN:
                self._state = OPEN
                self._successes = 0

    def reset(self) -> None:
        """Closed with every counter at 0."""
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._successes = 0
            self._probes = 0


def _same_name(model_id: str) -> str:
    return model_id


class BreakerRegistry:
    """Process-wide breakers, one per ``model_id`` (Go and Zen share one),
    created on first use and kept; survives config reloads. ``label`` maps
    an id to the name its breaker is kept under (``state.names``: names
    neither configured nor in the catalog share one), so the table stays
    bounded whatever clients send."""

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        recovery_s: float = DEFAULT_RECOVERY_S,
        clock: Clock = time.monotonic,
        label: Callable[[str], str] = _same_name,
    ):
        # Guards the breaker dict and the parameters handed to new breakers;
        # never held while a breaker's own lock is taken, except in
        # configure() (registry → breaker order only, so no deadlock).
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._threshold = _threshold(threshold)
        self._recovery = _recovery(recovery_s)
        self._clock = clock
        self._label = label

    def get(self, model_id: str) -> CircuitBreaker:
        name = self._label(model_id)
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._make(name)
                self._breakers[name] = breaker
            return breaker

    def for_request(self, stored: frozenset[str] | None) -> "BreakerRegistry":
        """The breakers one request asks: in memory, all of them as they are."""
        return self

    def _make(self, name: str) -> CircuitBreaker:
        """A new breaker for ``name`` (called with ``_lock`` held)."""
        return CircuitBreaker(self._threshold, self._recovery, self._clock)

    def _all(self) -> list[CircuitBreaker]:
        with self._lock:
            return list(self._breakers.values())

    def reset_all(self) -> None:
        """Close every breaker, not only the chain's: the
        client's retry after a fully failed request may try every model."""
        for breaker in self._all():
            breaker.reset()

    def states(self) -> dict[str, str]:
        with self._lock:
            items = list(self._breakers.items())
        return {model_id: breaker.state for model_id, breaker in sorted(items)}

    def configure(self, threshold: int, recovery_s: float) -> None:
        """Apply reloaded parameters to existing and future breakers."""
        with self._lock:
            self._threshold = _threshold(threshold)
            self._recovery = _recovery(recovery_s)
            for breaker in self._breakers.values():
                breaker.configure(self._threshold, self._recovery)
