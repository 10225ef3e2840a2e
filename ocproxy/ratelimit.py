"""Per-client request rate limit on ``POST /v1/messages``.

A fixed 60 s window per client key, refused when the window's tokens are
used up, as the Go proxy did; ``rate_limit_per_minute`` is configurable and
0 means off: a local single-user proxy must not throttle its own user.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

WINDOW_S = 60.0


def client_key(x_forwarded_for: str | None, peer: str) -> str:
    """First ``X-Forwarded-For`` entry, trimmed, when there is one; else the
    peer address (the caller passes ``host:port`` as Go does)."""
    if x_forwarded_for:
        first = x_forwarded_for.split(",", 1)[0].strip()
        if first:
            return first
    return peer


class RateLimiter:
    """Fixed-window limiter: ``per_minute`` requests per key per window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        # Guards _windows, _limit and _last_sweep: every request thread
        # reads and rewrites its key's window, and sweeps touch all keys.
        self._lock = threading.Lock()
        self._clock = clock
        self._limit = max(int(per_minute), 0)
        # key -> [window start, tokens left]
        self._windows: dict[str, list] = {}
        self._last_sweep = clock()

    def configure(self, per_minute: int) -> None:
        """New limit after a config reload; open windows are kept."""
        with self._lock:
            self._limit = max(int(per_minute), 0)

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)

    def allow(self, key: str) -> bool:
        with self._lock:
            if self._limit <= 0:
                return True
            now = self._clock()
            if now - self._last_sweep >= WINDOW_S:
                self._sweep(now)
            window = self._windows.get(key)
            if window is None or now - window[0] >= WINDOW_S:
                # the first request of a window consumes one of the tokens
                self._windows[key] = [now, self._limit - 1]
                return True
            if window[1] <= 0:
                return False
            window[1] -= 1
            return True

    def _sweep(self, now: float) -> None:
        """Drop expired windows (an expired window behaves exactly like no
        window), so memory stays bounded by the keys of the last minute.
        Runs at most once per window length, so it costs O(1) amortised."""
        self._windows = {k: w for k, w in self._windows.items() if now - w[0] < WINDOW_S}
        self._last_sweep = now
