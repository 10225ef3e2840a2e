"""Per-client request rate limit on ``POST /v1/messages``.

A fixed 60 s window per client key, refused when the window's tokens are
used up, as the Go proxy did; ``rate_limit_per_minute`` is configurable and
0 means off: a local single-user proxy must not throttle its own user.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Callable

WINDOW_S = 60.0
#: Most client keys held at once (about 200 bytes each): past it the oldest
#: window is dropped, so a flood of distinct clients cannot grow memory.
MAX_KEYS = 65_536
#: Longer keys are stored as their hash, so the key text is bounded too.
MAX_KEY_CHARS = 128


def bounded_key(key: str) -> str:
    """``key`` itself when short, else a fixed-length digest of it."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def client_key(x_forwarded_for: str | None, peer: str) -> str:
    """First ``X-Forwarded-For`` entry, trimmed, when there is one; else the
    peer address (the caller passes ``host:port`` as Go does)."""
    if x_forwarded_for:
        first = x_forwarded_for.split(",", 1)[0].strip()
        if first:
            return first
    return peer


class RateLimiter:
    """Fixed-window limiter: ``per_minute`` requests per key per window,
    at most ``max_keys`` windows held (the oldest goes first)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS):
        # Guards _windows and _limit: every request thread reads and
        # rewrites its key's window and drops expired ones.
        self._lock = threading.Lock()
        self._clock = clock
        self._limit = max(int(per_minute), 0)
        self._max_keys = max(int(max_keys), 1)
        # key -> [window start, tokens left], in order of window start
        # (a new window is re-inserted at the end), so the first is the oldest
        self._windows: dict[str, list] = {}

    @property
    def limit(self) -> int:
        with self._lock:
            return self._limit

    def configure(self, per_minute: int) -> None:
        """New limit after a config reload; open windows are kept."""
        with self._lock:
            self._limit = max(int(per_minute), 0)

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)

    def admit(self, key: str) -> tuple[bool, frozenset[str] | None]:
        """``allow`` plus what a shared backend learns on the way (the
        stored breakers); in memory there is nothing more to learn."""
        return self.allow(key), None

    def allow(self, key: str) -> bool:
        with self._lock:
            if self._limit <= 0:
                return True
            now = self._clock()
            self._drop_expired(now)
            key = bounded_key(key)
            window = self._windows.get(key)
            if window is None or now - window[0] >= WINDOW_S:
                self._windows.pop(key, None)
                while len(self._windows) >= self._max_keys:
                    del self._windows[next(iter(self._windows))]  # the oldest window
                # the first request of a window consumes one of the tokens
                self._windows[key] = [now, self._limit - 1]
                return True
            if window[1] <= 0:
                return False
            window[1] -= 1
            return True

    def _drop_expired(self, now: float) -> None:
        """Drop expired windows (an expired window behaves exactly like no
        window). Windows are ordered by start, so the expired ones are a
        prefix: amortised O(1) per request."""
        windows = self._windows
        while windows:
            oldest = next(iter(windows))
            if now - windows[oldest][0] < WINDOW_S:
                return
            del windows[oldest]
